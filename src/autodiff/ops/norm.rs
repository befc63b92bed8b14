//! Batch normalisation and dropout: the two layers that behave differently in training and
//! evaluation.

use super::X;
use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use kernels::batch_norm::{self, Channels, Normalization};
use rand::Rng;

/// Batch normalisation per channel, for (N, C) and (N, C, …) inputs (BatchNorm1d and 2d).
///
/// # Shapes
/// x (N, C, …) · γ (C) · β (C) → y (N, C, …).
///
/// # Gradients
/// Training mode (statistics from this batch), M values per channel:
/// ∂L/∂β = Σ ∂L/∂y, ∂L/∂γ = Σ ∂L/∂y ⊙ x̂,
/// ∂L/∂x = γ/(M·σ) · (M·∂L/∂y − ∂L/∂β − x̂·∂L/∂γ). Evaluation mode: ∂L/∂x = γ/σ · ∂L/∂y.
#[derive(Debug)]
pub struct BatchNorm {
    layout: Channels,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    training: bool,
}

/// The batch statistics a training-mode batch norm used, for updating running estimates.
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel variance, biased (divided by M), as used for normalising.
    pub var: Vec<f32>,
    /// M, the number of values per channel (for the unbiased estimate M/(M−1)·var).
    pub count: usize,
}

impl Graph {
    fn batch_norm_dims(&self, x: Var, gamma: Var, beta: Var) -> Result<Channels> {
        self.live(&[x, gamma, beta])?;
        let s = self.shape(x);
        if s.len() < 2 {
            return Err(Error::shape(
                "batch_norm",
                format!("the input must be (N, C, …), it is {s:?}"),
            ));
        }
        let (n, c, inner) = (s[0], s[1], s[2..].iter().product::<usize>());
        if self.shape(gamma) != [c] || self.shape(beta) != [c] {
            return Err(Error::shape(
                "batch_norm",
                format!(
                    "γ and β must be [{c}], they are {:?} and {:?}",
                    self.shape(gamma),
                    self.shape(beta)
                ),
            ));
        }
        Ok(Channels { n, c, inner })
    }

    /// Training-mode batch norm: normalises with this batch's statistics, returned for the
    /// layer's running estimates.
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not (N, C, …) or γ, β are not (C).
    pub fn batch_norm_train(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> Result<(Var, BatchStats)> {
        let layout = self.batch_norm_dims(x, gamma, beta)?;
        let (mut mean, mut var) = (vec![0.0; layout.c], vec![0.0; layout.c]);
        batch_norm::channel_stats(layout, self.data(x), &mut mean, &mut var);
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let op = BatchNorm {
            layout,
            mean: mean.clone(),
            inv_std,
            training: true,
        };
        let y = self.batch_norm_apply(x, gamma, beta, op);
        let count = layout.n * layout.inner;
        Ok((y, BatchStats { mean, var, count }))
    }

    /// Evaluation-mode batch norm with fixed (running) statistics.
    ///
    /// # Errors
    /// As [`Graph::batch_norm_train`], and if the statistics are not (C).
    pub fn batch_norm_eval(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        mean: &[f32],
        var: &[f32],
        eps: f32,
    ) -> Result<Var> {
        let layout = self.batch_norm_dims(x, gamma, beta)?;
        if mean.len() != layout.c || var.len() != layout.c {
            let detail = format!("running statistics must have {} channels", layout.c);
            return Err(Error::shape("batch_norm", detail));
        }
        let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let op = BatchNorm {
            layout,
            mean: mean.to_vec(),
            inv_std,
            training: false,
        };
        Ok(self.batch_norm_apply(x, gamma, beta, op))
    }

    fn batch_norm_apply(&mut self, x: Var, gamma: Var, beta: Var, op: BatchNorm) -> Var {
        let shape = self.shape(x).to_vec();
        let mut y = self.alloc(&shape);
        let norm = Normalization {
            mean: &op.mean,
            inv_std: &op.inv_std,
            gamma: self.data(gamma),
        };
        batch_norm::normalize(
            op.layout,
            norm,
            self.data(beta),
            self.data(x),
            as_slice_mut(&mut y),
        );
        // Read back in this order by backward: X, then GAMMA and BETA.
        self.record(op, &[x, gamma, beta], y)
    }
}

/// Where batch norm's scale γ and shift β sit among its inputs (x is [`X`]).
const GAMMA: usize = 1;
/// See [`GAMMA`].
const BETA: usize = 2;

impl Backward for BatchNorm {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (x, gamma, d_y) = (ctx.input_slice(X), ctx.input_slice(GAMMA), ctx.d_y_slice());
        let c = self.layout.c;
        let (mut d_gamma, mut d_beta) = (ctx.alloc(&[c]), ctx.alloc(&[c]));
        let mut d_x = ctx.needs(X).then(|| ctx.alloc_like_input(X));
        let norm = Normalization {
            mean: &self.mean,
            inv_std: &self.inv_std,
            gamma,
        };
        let grads = batch_norm::Grads {
            d_x: d_x.as_mut().map(as_slice_mut),
            d_gamma: as_slice_mut(&mut d_gamma),
            d_beta: as_slice_mut(&mut d_beta),
        };
        batch_norm::backward(self.layout, norm, x, d_y, self.training, grads);
        Ok([
            d_x,
            ctx.needs(GAMMA).then_some(d_gamma),
            ctx.needs(BETA).then_some(d_beta),
        ]
        .into())
    }
}
/// Inverted dropout: during training each element is zeroed with probability p and the
/// survivors are scaled by 1/(1 − p), so evaluation needs no rescaling.
///
/// # Shapes
/// x (…) → y (same shape).
///
/// # Gradients
/// ∂L/∂x = ∂L/∂y ⊙ mask, the same mask (0 or 1/(1 − p)) forward drew.
#[derive(Debug)]
pub struct Dropout {
    mask: Vec<f32>,
}

impl Graph {
    /// Training-mode dropout with drop probability `p`, drawing the mask from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`] unless 0 ≤ p < 1.
    pub fn dropout(&mut self, x: Var, p: f32, rng: &mut impl Rng) -> Result<Var> {
        self.live(&[x])?;
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config(
                "dropout probability",
                format!("{p} is not in [0, 1)"),
            ));
        }
        let keep = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..self.value(x).len())
            .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
            .collect();
        let shape = self.shape(x).to_vec();
        let mut y = self.alloc(&shape);
        kernels::elementwise::zip_map(self.data(x), &mask, as_slice_mut(&mut y), |v, m| v * m);
        Ok(self.record(Dropout { mask }, &[x], y))
    }
}

impl Backward for Dropout {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (d_y, shape) = (ctx.d_y_slice(), ctx.input_shape(0));
        Ok([ctx.grad_for(0, shape, |d_x| {
            kernels::elementwise::zip_map(d_y, &self.mask, d_x, |g, m| g * m)
        })]
        .into())
    }
}
