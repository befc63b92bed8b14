//! Batch normalisation and dropout as layers: both behave differently in training and in
//! evaluation, which [`Module::set_training`] switches.

use super::{Module, Name, Param};
use crate::autodiff::{Graph, Var};
use crate::error::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Batch normalisation over channels (axis 1), for (N, C) inputs (BatchNorm1d) and
/// (N, C, H, W) inputs (BatchNorm2d) alike.
///
/// Tensors, PyTorch's names: `weight` γ and `bias` β (trainable), `running_mean` and
/// `running_var` (buffers). Training updates the running statistics with momentum m:
/// running ← (1 − m)·running + m·batch, using the unbiased batch variance, as PyTorch does.
#[derive(Debug)]
pub struct BatchNorm {
    /// γ, (C), starts at 1.
    pub weight: Param,
    /// β, (C), starts at 0.
    pub bias: Param,
    /// Running mean (C), starts at 0.
    pub running_mean: Param,
    /// Running variance (C), starts at 1.
    pub running_var: Param,
    /// Weight of the newest batch in the running statistics (PyTorch's default 0.1).
    pub momentum: f32,
    /// Added to the variance before the square root (PyTorch's default 1e-5).
    pub eps: f32,
    training: bool,
}

impl BatchNorm {
    /// Batch norm over `channels` channels with PyTorch's defaults.
    pub fn new(channels: usize) -> Self {
        let full = |v: f32| ArrayD::from_elem(IxDyn(&[channels]), v);
        BatchNorm {
            weight: Param::new(full(1.0)),
            bias: Param::new(full(0.0)),
            running_mean: Param::buffer(full(0.0)),
            running_var: Param::buffer(full(1.0)),
            momentum: 0.1,
            eps: 1e-5,
            training: true,
        }
    }
}

impl Module for BatchNorm {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (gamma, beta) = (self.weight.on(g), self.bias.on(g));
        if !self.training {
            let (mean, var) = (
                self.running_mean.value.iter().copied().collect::<Vec<_>>(),
                self.running_var.value.iter().copied().collect::<Vec<_>>(),
            );
            return g.batch_norm_eval(x, gamma, beta, &mean, &var, self.eps);
        }
        let (y, stats) = g.batch_norm_train(x, gamma, beta, self.eps)?;
        let m = self.momentum;
        let unbias = if stats.count > 1 {
            stats.count as f32 / (stats.count - 1) as f32
        } else {
            1.0
        };
        for (r, &b) in self.running_mean.value.iter_mut().zip(&stats.mean) {
            *r = (1.0 - m) * *r + m * b;
        }
        for (r, &b) in self.running_var.value.iter_mut().zip(&stats.var) {
            *r = (1.0 - m) * *r + m * b * unbias;
        }
        Ok(y)
    }

    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        name.with("weight", |n| f(n.as_str(), &self.weight));
        name.with("bias", |n| f(n.as_str(), &self.bias));
        name.with("running_mean", |n| f(n.as_str(), &self.running_mean));
        name.with("running_var", |n| f(n.as_str(), &self.running_var));
    }

    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        name.with("weight", |n| f(n.as_str(), &mut self.weight));
        name.with("bias", |n| f(n.as_str(), &mut self.bias));
        name.with("running_mean", |n| f(n.as_str(), &mut self.running_mean));
        name.with("running_var", |n| f(n.as_str(), &mut self.running_var));
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// Batch normalisation of (N, C) inputs: PyTorch's `BatchNorm1d`. The same layer as
/// [`BatchNorm`], which normalises over every axis but the channel axis.
pub type BatchNorm1d = BatchNorm;

/// Batch normalisation of (N, C, H, W) inputs: PyTorch's `BatchNorm2d`. The same layer as
/// [`BatchNorm`].
pub type BatchNorm2d = BatchNorm;

/// Inverted dropout: zeroes each element with probability `p` in training, scales the rest
/// by 1/(1 − p); does nothing in evaluation.
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    rng: StdRng,
    training: bool,
}

impl Dropout {
    /// Dropout with probability `p`, its masks drawn from a generator seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] unless 0 ≤ p < 1.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config(
                "dropout probability",
                format!("{p} is not in [0, 1)"),
            ));
        }
        Ok(Dropout {
            p,
            rng: StdRng::seed_from_u64(seed),
            training: true,
        })
    }
}

impl Module for Dropout {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        if self.training && self.p > 0.0 {
            g.dropout(x, self.p, &mut self.rng)
        } else {
            Ok(x)
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }
}
