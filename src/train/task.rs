//! What a model is trained to do: turn a batch into one number to push down.
//!
//! The training loop ([`super::fit`]) is the same for every model: draw a batch, compute a
//! loss, backward, step. What differs is the loss, and that is this trait. An autoencoder asks
//! for its input back:
//!
//! * plain: L = loss(decoder(encoder(x)), x), averaged over every pixel;
//! * denoising: the same with a corrupted x̃ going in and the clean x asked for
//!   (the training loop corrupts the batch; the task only sees `input` and `target`);
//! * variational: L = Σ_pixels loss(decoder(z), x) / N + β·KL(q(z|x) ‖ N(0, I)) with
//!   z = μ + σ ⊙ ε drawn per image. The reconstruction is summed per image so that it and
//!   the KL term (summed over code dimensions) weigh what they weigh in the VAE's derivation;
//!   averaged per pixel, the KL term would drown it and every output would be the mean image.
//!
//! A classifier ([`crate::models::classifier`]) asks for the right label instead:
//! cross-entropy of its class scores, reporting its accuracy.

use super::config::{LossName, TrainSpec};
use crate::autodiff::{Graph, Reduction, Var};
use crate::error::{Error, Result};
use crate::models::{Autoencoder, Classifier};
use crate::nn::Module;
use ndarray::ArrayViewD;
use rand::rngs::StdRng;

/// At most this many named numbers a batch reports besides the loss.
pub const MAX_TERMS: usize = 3;

/// The named numbers one batch reports besides its loss (a VAE's reconstruction and KL terms,
/// a classifier's accuracy), in the order of [`Task::term_names`]. A fixed-size array, so a
/// step allocates nothing to report them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Terms {
    values: [f64; MAX_TERMS],
    len: usize,
}

impl Terms {
    /// Appends one value (ignored past [`MAX_TERMS`], which no task reaches).
    pub fn push(&mut self, v: f64) {
        if let Some(slot) = self.values.get_mut(self.len) {
            *slot = v;
            self.len += 1;
        }
    }

    /// The values, in order.
    pub fn as_slice(&self) -> &[f64] {
        &self.values[..self.len]
    }
}

/// One batch as the tape sees it.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// What goes into the model (corrupted, for a denoising autoencoder), (N, …).
    pub input: Var,
    /// What the model should produce: the clean images, for an autoencoder.
    pub target: Var,
    /// Each sample's class.
    pub labels: &'a [u8],
}

/// A model with a loss: what [`super::Trainer`] trains.
pub trait Task: Module {
    /// The names of the numbers [`Task::loss`] reports besides the loss (`recon`, `kl`).
    fn term_names(&self) -> &'static [&'static str];

    /// Records the loss of one batch on `g` and returns it with the reported terms.
    /// `training` is false for validation and test passes (a VAE then uses its mean code);
    /// `rng` draws whatever the objective samples.
    ///
    /// # Errors
    /// Shape errors from the model.
    fn loss(
        &mut self,
        g: &mut Graph,
        batch: &Batch<'_>,
        spec: &TrainSpec,
        training: bool,
        rng: &mut StdRng,
    ) -> Result<(Var, Terms)>;
}

/// loss(output, target) with the given reduction.
///
/// # Errors
/// Shape errors if they differ.
pub fn reconstruction_loss(
    g: &mut Graph,
    loss: LossName,
    output: Var,
    target: Var,
    reduction: Reduction,
) -> Result<Var> {
    match loss {
        LossName::Mse => g.mse(output, target, reduction),
        LossName::Bce => g.bce(output, target, reduction),
    }
}

/// The mean per-pixel loss between two arrays of images, computed by the same code as
/// training's loss.
///
/// # Errors
/// Shape errors if the arrays differ in length.
pub fn pixel_loss(kind: LossName, output: &[f32], target: &[f32]) -> Result<f64> {
    let mut g = Graph::new();
    g.set_recording(false);
    let (a, b) = (
        g.constant_view(flat(output)?),
        g.constant_view(flat(target)?),
    );
    let l = reconstruction_loss(&mut g, kind, a, b, Reduction::Mean)?;
    Ok(g.scalar(l)? as f64)
}

/// A flat array as a 1-D view.
fn flat(d: &[f32]) -> Result<ArrayViewD<'_, f32>> {
    ArrayViewD::from_shape(vec![d.len()], d).map_err(|e| Error::shape("loss", e.to_string()))
}

impl Task for Autoencoder {
    fn term_names(&self) -> &'static [&'static str] {
        if self.is_variational() {
            &["recon", "kl"]
        } else {
            &[]
        }
    }

    fn loss(
        &mut self,
        g: &mut Graph,
        batch: &Batch<'_>,
        spec: &TrainSpec,
        training: bool,
        rng: &mut StdRng,
    ) -> Result<(Var, Terms)> {
        let mut terms = Terms::default();
        let encoded = self.encode_full(g, batch.input)?;
        let Some(logvar) = encoded.logvar else {
            let output = self.decode(g, encoded.mean)?;
            let loss = reconstruction_loss(g, spec.loss, output, batch.target, Reduction::Mean)?;
            return Ok((loss, terms));
        };
        let mu = encoded.mean;
        let z = if training {
            let eps = g.randn(&[g.shape(mu)[0], self.latent()], rng);
            g.reparameterize(mu, logvar, eps)?
        } else {
            mu
        };
        let output = self.decode(g, z)?;
        let n = g.shape(output)[0].max(1) as f32;
        let summed = reconstruction_loss(g, spec.loss, output, batch.target, Reduction::Sum)?;
        let recon = g.mul_scalar(summed, 1.0 / n)?;
        let kl = g.kl_gaussian(mu, logvar)?;
        let weighted = g.mul_scalar(kl, spec.beta)?;
        let total = g.add(recon, weighted)?;
        terms.push(g.scalar(recon)? as f64);
        terms.push(g.scalar(kl)? as f64);
        Ok((total, terms))
    }
}

impl Task for Classifier {
    fn term_names(&self) -> &'static [&'static str] {
        &["accuracy"]
    }

    /// Cross-entropy of the class scores, averaged over the batch; reports the share of the
    /// batch classified right.
    fn loss(
        &mut self,
        g: &mut Graph,
        batch: &Batch<'_>,
        _spec: &TrainSpec,
        _training: bool,
        _rng: &mut StdRng,
    ) -> Result<(Var, Terms)> {
        let logits = self.forward(g, batch.input)?;
        let classes = self.classes();
        let targets = self.targets(batch.labels);
        let loss = g.cross_entropy(logits, targets, Reduction::Mean)?;
        let predicted = Classifier::argmax(g.data(logits), classes);
        let right = predicted
            .iter()
            .zip(targets)
            .filter(|(p, t)| p == t)
            .count();
        let mut terms = Terms::default();
        terms.push(right as f64 / targets.len().max(1) as f64);
        Ok((loss, terms))
    }
}
