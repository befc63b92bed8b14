//! Losses: the single number training pushes down.
//!
//! An autoencoder's loss compares its output with its input. MSE treats pixels as numbers;
//! BCE treats each pixel as the probability of "ink", which suits MNIST's near-binary images
//! and a sigmoid output. A VAE adds the KL term that pulls its codes towards N(0, I). A
//! classifier built on the encoder uses cross-entropy.
//!
//! | loss | per element ℓ(p, t) | ∂ℓ/∂p | reduction |
//! |---|---|---|---|
//! | MSE | (p − t)² | 2(p − t) | mean over all elements, or sum |
//! | BCE | −t·ln p − (1 − t)·ln(1 − p) | (p − t) / (p(1 − p)) | mean or sum |
//! | BCE with logits | max(z, 0) − z·t + ln(1 + e^(−\|z\|)) | σ(z) − t | mean or sum |
//! | KL(N(μ, σ²) ‖ N(0, 1)) | −½(1 + ln σ² − μ² − σ²) | μ, and ½(σ² − 1) for ln σ² | sum, ÷ batch size |
//!
//! BCE clamps p to [ε, 1 − ε] because a saturated sigmoid gives exactly 0 or 1 in f32, where
//! ln would be −∞. BCE-with-logits never forms p at all: its rearranged formula is finite for
//! every z, which is why it is the stable choice when the model outputs logits.

use super::{rank, same_shape, LEFT, RIGHT};
use crate::autodiff::graph::{Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use kernels::elementwise::{sigmoid, zip_map};

/// How per-element losses are combined into one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Divide the sum by the number of elements (or, for NLL, of samples).
    #[default]
    Mean,
    /// The plain sum.
    Sum,
}

/// Probabilities are clamped to [ε, 1 − ε] inside BCE; 1 − 10⁻⁷ is the largest f32 below 1
/// that keeps ln(1 − p) finite with room to spare.
pub const BCE_EPS: f32 = 1e-7;

/// The element-wise losses, each a function of a prediction and a target (for KL: μ, ln σ²).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairLoss {
    /// (p − t)²
    Mse,
    /// binary cross-entropy on probabilities
    Bce,
    /// binary cross-entropy on logits
    BceWithLogits,
    /// KL divergence of N(μ, e^logvar) from N(0, 1), per latent dimension
    KlGaussian,
}

impl PairLoss {
    /// ℓ(a, b) for one element, in f64.
    #[inline(always)]
    fn term(self, a: f32, b: f32) -> f64 {
        let (a, b) = (a as f64, b as f64);
        match self {
            PairLoss::Mse => (a - b).powi(2),
            PairLoss::Bce => {
                let p = a.clamp(BCE_EPS as f64, 1.0 - BCE_EPS as f64);
                -(b * p.ln() + (1.0 - b) * (1.0 - p).ln())
            }
            PairLoss::BceWithLogits => a.max(0.0) - a * b + (-a.abs()).exp().ln_1p(),
            PairLoss::KlGaussian => -0.5 * (1.0 + b - a * a - b.exp()),
        }
    }

    /// ∂ℓ/∂a.
    #[inline(always)]
    fn d_first(self, a: f32, b: f32) -> f32 {
        match self {
            PairLoss::Mse => 2.0 * (a - b),
            PairLoss::Bce => {
                let p = a.clamp(BCE_EPS, 1.0 - BCE_EPS);
                (p - b) / (p * (1.0 - p))
            }
            PairLoss::BceWithLogits => sigmoid(a) - b,
            PairLoss::KlGaussian => a,
        }
    }

    /// ∂ℓ/∂b.
    #[inline(always)]
    fn d_second(self, a: f32, b: f32) -> f32 {
        match self {
            PairLoss::Mse => -2.0 * (a - b),
            PairLoss::Bce => {
                let p = a.clamp(BCE_EPS, 1.0 - BCE_EPS);
                (1.0 - p).ln() - p.ln()
            }
            PairLoss::BceWithLogits => -a,
            PairLoss::KlGaussian => 0.5 * (b.exp() - 1.0),
        }
    }

    fn name(self) -> &'static str {
        match self {
            PairLoss::Mse => "mse",
            PairLoss::Bce => "bce",
            PairLoss::BceWithLogits => "bce_with_logits",
            PairLoss::KlGaussian => "kl_gaussian",
        }
    }
}

/// `$body` with `$k` a constant equal to `$kind`: one copy of the body per loss. Inside
/// each copy the per-element functions fold to that loss's formula, so the loops over the
/// batch vectorise; with `kind` matched inside them, element by element, they did not
/// (figures: docs/performance.md, "Measurements behind the code").
macro_rules! for_each_loss {
    ($kind:expr, $k:ident => $body:expr) => {
        match $kind {
            PairLoss::Mse => {
                const $k: PairLoss = PairLoss::Mse;
                $body
            }
            PairLoss::Bce => {
                const $k: PairLoss = PairLoss::Bce;
                $body
            }
            PairLoss::BceWithLogits => {
                const $k: PairLoss = PairLoss::BceWithLogits;
                $body
            }
            PairLoss::KlGaussian => {
                const $k: PairLoss = PairLoss::KlGaussian;
                $body
            }
        }
    };
}

/// An element-wise loss reduced to a scalar.
///
/// # Shapes
/// a (…) · b (same shape) → y () a scalar.
///
/// # Gradients
/// ∂L/∂a = ∂L/∂y · scale · ∂ℓ/∂a and likewise for b, with scale the reduction's 1/count.
#[derive(Debug)]
pub struct PairLossOp {
    kind: PairLoss,
    scale: f32,
}

impl Graph {
    /// Σ scale·ℓ(a, b) for an element-wise loss.
    ///
    /// # Errors
    /// [`Error::Shape`] when the shapes differ or are empty.
    pub fn pair_loss(&mut self, kind: PairLoss, a: Var, b: Var, scale: f32) -> Result<Var> {
        self.live(&[a, b])?;
        same_shape(kind.name(), self.shape(a), self.shape(b))?;
        if self.value(a).is_empty() {
            return Err(Error::shape(kind.name(), "the inputs are empty"));
        }
        let (a_data, b_data) = (self.data(a), self.data(b));
        let total = for_each_loss!(kind, K => {
            kernels::reduce::sum_zip(a_data, b_data, |x, z| K.term(x, z))
        });
        let mut y = self.alloc(&[]);
        y.fill((total * scale as f64) as f32);
        Ok(self.record(PairLossOp { kind, scale }, &[a, b], y))
    }

    fn reduced(
        &mut self,
        kind: PairLoss,
        pred: Var,
        target: Var,
        reduction: Reduction,
    ) -> Result<Var> {
        self.live(&[pred, target])?;
        let scale = match reduction {
            Reduction::Mean => 1.0 / self.value(pred).len().max(1) as f32,
            Reduction::Sum => 1.0,
        };
        self.pair_loss(kind, pred, target, scale)
    }

    /// Mean (or summed) squared error.
    ///
    /// # Errors
    /// [`Error::Shape`] when prediction and target differ in shape.
    pub fn mse(&mut self, pred: Var, target: Var, reduction: Reduction) -> Result<Var> {
        self.reduced(PairLoss::Mse, pred, target, reduction)
    }

    /// Binary cross-entropy of probabilities `pred` against targets in [0, 1].
    ///
    /// # Errors
    /// As [`Graph::mse`].
    pub fn bce(&mut self, pred: Var, target: Var, reduction: Reduction) -> Result<Var> {
        self.reduced(PairLoss::Bce, pred, target, reduction)
    }

    /// Binary cross-entropy of sigmoid(`logits`) against targets, computed stably from logits.
    ///
    /// # Errors
    /// As [`Graph::mse`].
    pub fn bce_with_logits(
        &mut self,
        logits: Var,
        target: Var,
        reduction: Reduction,
    ) -> Result<Var> {
        self.reduced(PairLoss::BceWithLogits, logits, target, reduction)
    }

    /// KL(N(μ, e^logvar) ‖ N(0, I)), summed over latent dimensions and averaged over the batch:
    /// −½ Σ (1 + logvar − μ² − e^logvar) / N.
    ///
    /// # Errors
    /// [`Error::Shape`] unless μ and logvar are the same (N, Z) shape.
    pub fn kl_gaussian(&mut self, mu: Var, logvar: Var) -> Result<Var> {
        self.live(&[mu, logvar])?;
        rank("kl_gaussian", "μ", self.shape(mu), 2)?;
        let n = self.shape(mu)[0].max(1);
        self.pair_loss(PairLoss::KlGaussian, mu, logvar, 1.0 / n as f32)
    }
}

impl Backward for PairLossOp {
    /// "mse loss × 1/3136": the loss summed over every element, times its scale (the mean's
    /// 1/count, or 1/batch for a loss summed per image).
    fn label(&self) -> Option<String> {
        let inverse = 1.0 / self.scale;
        Some(if self.scale == 1.0 {
            format!("{} loss, summed", self.kind.name())
        } else if (inverse - inverse.round()).abs() < 1e-3 {
            format!("{} loss × 1/{}", self.kind.name(), inverse.round())
        } else {
            format!("{} loss × {}", self.kind.name(), self.scale)
        })
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (a, b) = (ctx.input_slice(LEFT), ctx.input_slice(RIGHT));
        let g = ctx.d_y_slice().first().copied().unwrap_or(0.0) * self.scale;
        let (kind, shape) = (self.kind, ctx.input_shape(LEFT));
        Ok([
            ctx.grad_for(LEFT, shape, |d_a| {
                for_each_loss!(kind, K => zip_map(a, b, d_a, move |x, z| g * K.d_first(x, z)))
            }),
            ctx.grad_for(RIGHT, shape, |d_b| {
                for_each_loss!(kind, K => zip_map(a, b, d_b, move |x, z| g * K.d_second(x, z)))
            }),
        ].into())
    }
}

/// Negative log-likelihood of integer class targets.
///
/// # Shapes
/// log_probs (N, C), targets N integers in 0..C → y () a scalar.
///
/// # Gradients
/// ∂L/∂log_probs is −scale at each sample's target class and 0 elsewhere.
#[derive(Debug)]
pub struct Nll {
    targets: Vec<usize>,
    scale: f32,
}

impl Graph {
    /// −Σᵢ log_probs[i, targetᵢ], divided by N for [`Reduction::Mean`].
    ///
    /// # Errors
    /// [`Error::Shape`] when log_probs is not (N, C), there are not N targets, or a target is
    /// not a class index below C.
    pub fn nll(&mut self, log_probs: Var, targets: &[usize], reduction: Reduction) -> Result<Var> {
        self.live(&[log_probs])?;
        rank("nll", "log_probs", self.shape(log_probs), 2)?;
        let (n, c) = (self.shape(log_probs)[0], self.shape(log_probs)[1]);
        if targets.len() != n {
            return Err(Error::shape(
                "nll",
                format!("{n} samples but {} targets", targets.len()),
            ));
        }
        if let Some((i, &t)) = targets.iter().enumerate().find(|&(_, &t)| t >= c) {
            return Err(Error::shape(
                "nll",
                format!("target {i} is class {t}, but there are only {c} classes"),
            ));
        }
        let scale = match reduction {
            Reduction::Mean => 1.0 / n.max(1) as f32,
            Reduction::Sum => 1.0,
        };
        let lp = self.data(log_probs);
        let total: f64 = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| -(lp[i * c + t] as f64))
            .sum();
        let mut y = self.alloc(&[]);
        y.fill((total * scale as f64) as f32);
        Ok(self.record(
            Nll {
                targets: targets.to_vec(),
                scale,
            },
            &[log_probs],
            y,
        ))
    }

    /// Cross-entropy of raw class scores against integer targets: NLL of log-softmax.
    ///
    /// # Errors
    /// As [`Graph::nll`].
    pub fn cross_entropy(
        &mut self,
        logits: Var,
        targets: &[usize],
        reduction: Reduction,
    ) -> Result<Var> {
        self.live(&[logits])?;
        rank("cross_entropy", "logits", self.shape(logits), 2)?;
        let log_probs = self.log_softmax(logits)?;
        self.nll(log_probs, targets, reduction)
    }
}

impl Backward for Nll {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let g = ctx.d_y_slice().first().copied().unwrap_or(0.0) * self.scale;
        let shape = ctx.input_shape(0);
        let c = shape[1];
        Ok([ctx.grad_for(0, shape, |d| {
            d.fill(0.0);
            for (i, &t) in self.targets.iter().enumerate() {
                d[i * c + t] = -g;
            }
        })]
        .into())
    }
}
