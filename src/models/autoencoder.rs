//! An autoencoder built from a [`ModelSpec`]: plain, convolutional, or variational.
//!
//! The default model, `conv-selu`, stage by stage:
//!
//! ```text
//! encoder: 1×28×28 →conv s2 p1→ 6×14×14 →conv s2 p1→ 39×7×7 →conv s2 p0→ 72×3×3
//!          →flatten→ 648 →linear→ 145 →linear→ 98 →linear→ 52 →linear→ code (6)
//! decoder: code (6) →linear→ 52 →linear→ 98 →linear→ 145 →linear→ 648 →unflatten→ 72×3×3
//!          →convᵀ s2 p0→ 39×7×7 →convᵀ s2 p1 op1→ 6×14×14 →convᵀ s2 p1 op1→ 1×28×28 →sigmoid
//! ```
//!
//! Every shape was worked out and checked by [`super::plan`] before any weight exists; this
//! file only turns the plan's layers into modules.
//!
//! ## Variational
//! With `variational = true` the encoder's last linear layer has 2·latent outputs: the first
//! half is the mean μ of a Gaussian over codes, the second its log-variance ln σ². Training
//! samples a code z = μ + σ ⊙ ε (the reparameterisation trick, [`crate::autodiff::ops::sample`])
//! and adds the KL term that keeps q(z|x) near N(0, I); everything else — reconstructions,
//! evaluation, the codes a picture shows — uses the mean μ. The equivalent PyTorch module is
//! the same two `nn.Sequential`s with `mu, logvar = encoder(x).chunk(2, dim=1)`, so a
//! checkpoint loads there too.
//!
//! Layers are numbered as in PyTorch's `nn.Sequential` (activations take an index too), so
//! `encoder.7.weight` here is `encoder.7.weight` in a PyTorch checkpoint of the same model.

use super::plan::ModelPlan;
use super::spec::ModelSpec;
use crate::autodiff::{Graph, Var};
use crate::error::Result;
use crate::nn::{Module, Name, Param, Sequential};
use rand::Rng;

/// An encoder and a decoder.
#[derive(Debug)]
pub struct Autoencoder {
    /// Image → code (→ μ and ln σ² side by side, for a VAE).
    pub encoder: Sequential,
    /// Code → image.
    pub decoder: Sequential,
    spec: ModelSpec,
    plan: ModelPlan,
}

/// What the encoder says about an image: its code, and for a VAE the log-variance around it.
#[derive(Clone, Copy, Debug)]
pub struct Encoded {
    /// The code (for a VAE, the mean μ of q(z|x)), (N, latent).
    pub mean: Var,
    /// For a VAE, ln σ² of q(z|x), (N, latent); `None` for a plain autoencoder.
    pub logvar: Option<Var>,
}

impl Autoencoder {
    /// Builds the layers described by `spec`, initialised from `rng`.
    ///
    /// # Errors
    /// As [`ModelPlan::new`]: invalid settings, or the first layer whose shapes do not fit.
    pub fn new(spec: &ModelSpec, rng: &mut impl Rng) -> Result<Self> {
        let plan = ModelPlan::new(spec)?;
        let mut encoder = Sequential::new("encoder");
        for l in &plan.encoder {
            encoder.push(l.layer.build(spec.init, rng)?);
        }
        let mut decoder = Sequential::new("decoder");
        for l in &plan.decoder {
            decoder.push(l.layer.build(spec.init, rng)?);
        }
        Ok(Autoencoder {
            encoder,
            decoder,
            spec: spec.clone(),
            plan,
        })
    }

    /// The description this model was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Every layer's shapes, parameters and multiply-adds.
    pub fn plan(&self) -> &ModelPlan {
        &self.plan
    }

    /// The size of the code.
    pub fn latent(&self) -> usize {
        self.spec.latent
    }

    /// Whether this is a variational autoencoder.
    pub fn is_variational(&self) -> bool {
        self.spec.variational
    }

    /// Image batch (N, C, H, W) → what the encoder says about each image.
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn encode_full(&mut self, g: &mut Graph, x: Var) -> Result<Encoded> {
        let out = self.encoder.forward(g, x)?;
        if !self.spec.variational {
            return Ok(Encoded {
                mean: out,
                logvar: None,
            });
        }
        let z = self.spec.latent;
        Ok(Encoded {
            mean: g.slice(out, 1, 0, z)?,
            logvar: Some(g.slice(out, 1, z, 2 * z)?),
        })
    }

    /// Image batch (N, C, H, W) → codes (N, latent); for a VAE the mean code μ.
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn encode(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        Ok(self.encode_full(g, x)?.mean)
    }

    /// Codes (N, latent) → image batch (N, C, H, W).
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn decode(&mut self, g: &mut Graph, z: Var) -> Result<Var> {
        self.decoder.forward(g, z)
    }

    /// One line per layer with its output shape for one image.
    pub fn summary(&self) -> Vec<String> {
        self.plan.summary()
    }

    /// The reconstructions of `images` (each of the model's input shape, one after another):
    /// through the mean code for a VAE.
    ///
    /// # Errors
    /// Shape errors if `images` does not hold whole images of the model's input shape.
    pub fn reconstruct(&mut self, images: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.reconstruct_into(images, INFER_BATCH, &mut out)?;
        Ok(out)
    }

    /// [`Autoencoder::reconstruct`] with `batch` images per forward pass, written into `out`
    /// (emptied first; its capacity is kept). Called again with the same `out`, it allocates
    /// nothing: this is how `handgrad bench` times inference, one pass per batch as a training
    /// step makes one.
    ///
    /// # Errors
    /// As [`Autoencoder::reconstruct`].
    pub fn reconstruct_into(
        &mut self,
        images: &[f32],
        batch: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let shape = self.spec.input;
        out.clear();
        on_inference_graph(self, images, &shape, batch, |m, g, x| {
            let y = m.forward(g, x)?;
            out.extend_from_slice(g.data(y));
            Ok(())
        })
    }

    /// The codes of `images`, latent values per image one after another: for a VAE, the
    /// means μ and, second, the log-variances.
    ///
    /// # Errors
    /// As [`Autoencoder::reconstruct`].
    pub fn codes(&mut self, images: &[f32]) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let shape = self.spec.input;
        let variational = self.spec.variational;
        let mut out = infer(self, images, &shape, |m, g, x| {
            let e = m.encode_full(g, x)?;
            Ok(std::iter::once(e.mean).chain(e.logvar).collect())
        })?;
        let logvar = if variational { out.pop() } else { None };
        Ok((out.pop().unwrap_or_default(), logvar))
    }

    /// The images the decoder makes of `codes` (latent values per code, one after another).
    ///
    /// # Errors
    /// Shape errors if `codes` does not hold whole codes.
    pub fn decode_codes(&mut self, codes: &[f32]) -> Result<Vec<f32>> {
        let latent = [self.spec.latent];
        let mut out = infer(self, codes, &latent, |m, g, z| Ok(vec![m.decode(g, z)?]))?;
        Ok(out.pop().unwrap_or_default())
    }
}

/// Runs `f` with `model` over `data` (N samples of `sample_len` values, shaped `shape` each) in chunks
/// of [`INFER_BATCH`], on a tape that records nothing, with the model in evaluation
/// mode; concatenates what `f` returns for each chunk.
///
/// # Errors
/// What `f` returns; a shape error if `data` does not hold whole samples.
pub fn infer<M: Module>(
    model: &mut M,
    data: &[f32],
    shape: &[usize],
    f: impl Fn(&mut M, &mut Graph, Var) -> Result<Vec<Var>>,
) -> Result<Vec<Vec<f32>>> {
    let mut outputs: Vec<Vec<f32>> = Vec::new();
    on_inference_graph(model, data, shape, INFER_BATCH, |m, g, x| {
        let vars = f(m, g, x)?;
        outputs.resize_with(vars.len(), Vec::new);
        for (out, v) in outputs.iter_mut().zip(vars) {
            out.extend_from_slice(g.data(v));
        }
        Ok(())
    })?;
    Ok(outputs)
}

/// The loop under [`infer`]: for each chunk of `batch` samples of `data`, a fresh start of
/// this thread's non-recording graph with the chunk as its constant input, then `each`.
/// The model is in evaluation mode throughout and back in training mode afterwards, also
/// after an error.
fn on_inference_graph<M: Module>(
    model: &mut M,
    data: &[f32],
    shape: &[usize],
    batch: usize,
    mut each: impl FnMut(&mut M, &mut Graph, Var) -> Result<()>,
) -> Result<()> {
    let sample_len: usize = shape.iter().product();
    if batch == 0 {
        return Err(crate::Error::config("batch", "must be at least 1"));
    }
    // This thread's inference graph, taken out while in use (a nested call makes its own).
    let mut g = INFER_GRAPH.with(|slot| slot.take()).unwrap_or_default();
    g.set_recording(false);
    model.set_training(false);
    // (N, shape…), N set per chunk: ndarray keeps up to four axes in place, so an image or a
    // vector batch needs no allocation.
    let mut dims = ndarray::Dimension::insert_axis(&ndarray::IxDyn(shape), ndarray::Axis(0));
    let result = (|| {
        for chunk in data.chunks(batch * sample_len.max(1)) {
            g.reset();
            dims[0] = chunk.len() / sample_len.max(1);
            let view = ndarray::ArrayViewD::from_shape(dims.clone(), chunk)
                .map_err(|e| crate::Error::shape("batch", e.to_string()))?;
            let x = g.constant_view(view);
            each(model, &mut g, x)?;
        }
        Ok(())
    })();
    model.set_training(true);
    g.reset();
    INFER_GRAPH.with(|slot| slot.set(Some(g)));
    result
}

thread_local! {
    /// The graph [`infer`] runs on, kept between calls: its buffer pool then holds every
    /// activation buffer from the first call on. A new graph per call would allocate them all
    /// again, and the operating system would hand out (and zero) fresh pages for the large
    /// ones (figures: docs/performance.md, "Measurements behind the code").
    static INFER_GRAPH: std::cell::Cell<Option<Graph>> = const { std::cell::Cell::new(None) };
}

/// Samples per forward pass when a model is applied to a whole array (evaluation pictures,
/// codes for plots): bounds the memory one pass needs.
pub const INFER_BATCH: usize = 500;

impl Module for Autoencoder {
    /// Reconstructs `x` through its code (for a VAE, through the mean code μ).
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let z = self.encode(g, x)?;
        self.decoder.forward(g, z)
    }

    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        name.with("encoder", |n| self.encoder.visit(n, f));
        name.with("decoder", |n| self.decoder.visit(n, f));
    }

    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        name.with("encoder", |n| self.encoder.visit_mut(n, f));
        name.with("decoder", |n| self.decoder.visit_mut(n, f));
    }

    fn set_training(&mut self, training: bool) {
        self.encoder.set_training(training);
        self.decoder.set_training(training);
    }

    fn reseed(&mut self, seed: u64) {
        self.encoder.reseed(crate::seed::child(seed, 0));
        self.decoder.reseed(crate::seed::child(seed, 1));
    }
}
