//! Building an autoencoder from a [`ModelSpec`], with every shape checked before training.
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
//! The decoder mirrors the encoder unless given explicitly. Mirroring a stride-2 convolution
//! needs care: 14 → 7 and 13 → 7 both happen, so the transposed convolution must be told which
//! size to restore. Its `output_padding` is worked out here from the encoder's sizes:
//! op = H_target − ((H_in − 1)·s − 2p + k), and must lie in [0, s).
//!
//! Layers are numbered as in PyTorch's `nn.Sequential` (activations take an index too), so
//! `encoder.7.weight` here is `encoder.7.weight` in a PyTorch checkpoint of the same model.

use super::config::{ActName, DecoderSpec, ModelSpec};
use crate::autodiff::{Graph, Var};
use crate::error::{Error, Result};
use crate::nn::{
    Act, Conv2d, ConvTranspose2d, Flatten, Init, Kernel, Linear, Module, Param, Sequential,
    Unflatten,
};
use kernels::conv2d::{Conv2dGeometry, Conv2dSpec};
use rand::Rng;

/// An encoder and a decoder.
#[derive(Debug)]
pub struct Autoencoder {
    /// Image → code.
    pub encoder: Sequential,
    /// Code → image.
    pub decoder: Sequential,
    spec: ModelSpec,
}

/// (channels, height, width) of a feature map.
type Chw = (usize, usize, usize);

impl Autoencoder {
    /// Builds the layers described by `spec`, initialised from `rng`.
    ///
    /// # Errors
    /// [`Error::Architecture`] naming the first layer whose shapes do not fit, including a
    /// decoder that does not restore the input size.
    pub fn new(spec: &ModelSpec, rng: &mut impl Rng) -> Result<Self> {
        let [c0, h0, w0] = spec.input;
        let init = spec.init;
        let act = spec.activation.activation();
        let mut encoder = Sequential::new("encoder");
        // Feature-map shapes after each conv, starting with the input: the decoder retraces them.
        let mut maps: Vec<Chw> = vec![(c0, h0, w0)];
        for conv in &spec.conv {
            let (c, h, w) = maps[maps.len() - 1];
            let layer_name = format!("encoder.{}", encoder.len());
            let geom = Conv2dGeometry::new(Conv2dSpec {
                n: 1,
                c_in: c,
                h_in: h,
                w_in: w,
                c_out: conv.channels,
                kh: conv.kernel,
                kw: conv.kernel,
                stride: conv.stride,
                pad: conv.padding,
            })
            .map_err(|e| Error::Architecture {
                layer: layer_name,
                detail: e.detail,
            })?;
            encoder.push(Box::new(Conv2d::new(
                c,
                conv.channels,
                Kernel::new(conv.kernel, conv.stride, conv.padding),
                init,
                rng,
            )));
            encoder.push(Box::new(Act(act)));
            maps.push((conv.channels, geom.h_out(), geom.w_out()));
        }
        let (cl, hl, wl) = maps[maps.len() - 1];
        let flat = cl * hl * wl;
        encoder.push(Box::new(Flatten));
        let mut width = flat;
        for &h in &spec.hidden {
            encoder.push(Box::new(Linear::new(width, h, true, init, rng)));
            encoder.push(Box::new(Act(act)));
            width = h;
        }
        encoder.push(Box::new(Linear::new(width, spec.latent, true, init, rng)));
        if let Some(code_act) = spec.code_activation {
            encoder.push(Box::new(Act(code_act.activation())));
        }

        let decoder = match &spec.decoder {
            None => mirror_decoder(spec, &maps, rng)?,
            Some(explicit) => explicit_decoder(spec, explicit, (cl, hl, wl), rng)?,
        };
        let mut model = Autoencoder {
            encoder,
            decoder,
            spec: spec.clone(),
        };
        model.check_round_trip()?;
        Ok(model)
    }

    /// The specification this model was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Runs one blank image through the whole model without recording: catches any shape
    /// mismatch, and checks the output has exactly the input's shape.
    fn check_round_trip(&mut self) -> Result<()> {
        let [c, h, w] = self.spec.input;
        let mut g = Graph::new();
        g.set_recording(false);
        let x = g.constant(ndarray::ArrayD::zeros(vec![1, c, h, w]));
        let y = self.forward(&mut g, x)?;
        let out = g.shape(y).to_vec();
        if out != [1, c, h, w] {
            let shown: Vec<String> = out[1..].iter().map(|d| d.to_string()).collect();
            return Err(Error::Architecture {
                layer: "decoder".into(),
                detail: format!("produces {}, the target is {c}×{h}×{w}", shown.join("×")),
            });
        }
        Ok(())
    }

    /// Image batch (N, C, H, W) → codes (N, latent).
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn encode(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        self.encoder.forward(g, x)
    }

    /// Codes (N, latent) → image batch (N, C, H, W).
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn decode(&mut self, g: &mut Graph, z: Var) -> Result<Var> {
        self.decoder.forward(g, z)
    }

    /// One line per layer with its output shape for one image: the model as a learner would
    /// draw it.
    ///
    /// # Errors
    /// Shape errors (none for a model that `new` accepted).
    pub fn summary(&mut self) -> Result<Vec<String>> {
        let [c, h, w] = self.spec.input;
        let mut g = Graph::new();
        g.set_recording(false);
        let mut x = g.constant(ndarray::ArrayD::zeros(vec![1, c, h, w]));
        let mut lines = vec![format!("input          {:?}", &g.shape(x)[1..])];
        for (part, seq) in [
            ("encoder", &mut self.encoder),
            ("decoder", &mut self.decoder),
        ] {
            let layers = seq.layers().len();
            for i in 0..layers {
                x = seq.forward_layer(i, &mut g, x)?;
                let mut params = 0;
                seq.layers()[i].visit("", &mut |_, p| params += p.value.len());
                let kind = format!("{:?}", seq.layers()[i]);
                let kind = kind
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("layer")
                    .to_string();
                lines.push(format!(
                    "{part}.{i:<6} {kind:<16} {:?}{}",
                    &g.shape(x)[1..],
                    if params > 0 {
                        format!("  {params} parameters")
                    } else {
                        String::new()
                    }
                ));
            }
        }
        Ok(lines)
    }
}

impl Module for Autoencoder {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let z = self.encoder.forward(g, x)?;
        self.decoder.forward(g, z)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.encoder
            .visit(&crate::nn::join_name(prefix, "encoder"), f);
        self.decoder
            .visit(&crate::nn::join_name(prefix, "decoder"), f);
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.encoder
            .visit_mut(&crate::nn::join_name(prefix, "encoder"), f);
        self.decoder
            .visit_mut(&crate::nn::join_name(prefix, "decoder"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.encoder.set_training(training);
        self.decoder.set_training(training);
    }
}

/// Linear layers from the code up to `flat` features, activation after each but the last.
fn decoder_linears(
    dec: &mut Sequential,
    latent: usize,
    hidden: &[usize],
    flat: usize,
    act: ActName,
    init: Init,
    rng: &mut impl Rng,
) {
    let mut width = latent;
    for &h in hidden {
        dec.push(Box::new(Linear::new(width, h, true, init, rng)));
        dec.push(Box::new(Act(act.activation())));
        width = h;
    }
    dec.push(Box::new(Linear::new(width, flat, true, init, rng)));
}

/// The decoder's tail: output activation (if any).
fn push_output(dec: &mut Sequential, spec: &ModelSpec) {
    if let Some(out) = spec.output_activation {
        dec.push(Box::new(Act(out.activation())));
    }
}

/// The mirror image of the encoder, with each transposed convolution's output_padding chosen
/// to restore the exact size its encoder convolution started from.
fn mirror_decoder(spec: &ModelSpec, maps: &[Chw], rng: &mut impl Rng) -> Result<Sequential> {
    let mut dec = Sequential::new("decoder");
    let (cl, hl, wl) = maps[maps.len() - 1];
    let hidden: Vec<usize> = spec.hidden.iter().rev().copied().collect();
    decoder_linears(
        &mut dec,
        spec.latent,
        &hidden,
        cl * hl * wl,
        spec.activation,
        spec.init,
        rng,
    );
    if spec.conv.is_empty() {
        push_output(&mut dec, spec);
        dec.push(Box::new(Unflatten(vec![cl, hl, wl])));
        return Ok(dec);
    }
    dec.push(Box::new(Act(spec.activation.activation())));
    dec.push(Box::new(Unflatten(vec![cl, hl, wl])));
    for (i, conv) in spec.conv.iter().enumerate().rev() {
        let ((c_out, h_t, w_t), (c_in, h_in, w_in)) = (maps[i], maps[i + 1]);
        let layer = format!("decoder.{}", dec.len());
        let grown = |len: usize| {
            ((len - 1) * conv.stride + conv.kernel) as isize - 2 * conv.padding as isize
        };
        let (op_h, op_w) = (h_t as isize - grown(h_in), w_t as isize - grown(w_in));
        let s = conv.stride as isize;
        if op_h != op_w || !(0..s).contains(&op_h) {
            return Err(Error::Architecture {
                layer,
                detail: format!(
                    "a transposed convolution (kernel {}, stride {}, padding {}) cannot restore {h_t}×{w_t} from {h_in}×{w_in}",
                    conv.kernel, conv.stride, conv.padding
                ),
            });
        }
        let kernel = Kernel::new(conv.kernel, conv.stride, conv.padding);
        dec.push(Box::new(ConvTranspose2d::new(
            c_in,
            c_out,
            kernel,
            op_h as usize,
            spec.init,
            rng,
        )));
        if i > 0 {
            dec.push(Box::new(Act(spec.activation.activation())));
        }
    }
    push_output(&mut dec, spec);
    Ok(dec)
}

/// A decoder given layer by layer; its output size is checked by the round trip in `new`.
fn explicit_decoder(
    spec: &ModelSpec,
    d: &DecoderSpec,
    last_map: Chw,
    rng: &mut impl Rng,
) -> Result<Sequential> {
    let mut dec = Sequential::new("decoder");
    let (cl, hl, wl) = last_map;
    decoder_linears(
        &mut dec,
        spec.latent,
        &d.hidden,
        cl * hl * wl,
        spec.activation,
        spec.init,
        rng,
    );
    if d.deconv.is_empty() {
        push_output(&mut dec, spec);
        dec.push(Box::new(Unflatten(vec![cl, hl, wl])));
        return Ok(dec);
    }
    dec.push(Box::new(Act(spec.activation.activation())));
    dec.push(Box::new(Unflatten(vec![cl, hl, wl])));
    let mut c_in = cl;
    for (i, l) in d.deconv.iter().enumerate() {
        if l.output_padding >= l.stride {
            return Err(Error::Architecture {
                layer: format!("decoder.{}", dec.len()),
                detail: format!(
                    "output_padding {} must be smaller than the stride {}",
                    l.output_padding, l.stride
                ),
            });
        }
        let kernel = Kernel::new(l.kernel, l.stride, l.padding);
        dec.push(Box::new(ConvTranspose2d::new(
            c_in,
            l.channels,
            kernel,
            l.output_padding,
            spec.init,
            rng,
        )));
        if i + 1 < d.deconv.len() {
            dec.push(Box::new(Act(spec.activation.activation())));
        }
        c_in = l.channels;
    }
    push_output(&mut dec, spec);
    Ok(dec)
}
