//! Adam: per-parameter step sizes from running moments of the gradient.
//!
//! With g = ∂L/∂θ (+ wd·θ for L2 weight decay) and step count t:
//!
//! m ← β₁·m + (1 − β₁)·g        (mean of recent gradients: direction)
//! v ← β₂·v + (1 − β₂)·g²       (mean of recent squared gradients: scale)
//! θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
//!
//! The 1 − βᵗ factors undo the bias of m and v towards their zero start in the first steps.
//! Dividing by √v gives every weight a step of about lr whatever its gradient's scale, which
//! is why Adam trains autoencoders with little tuning. The arithmetic is PyTorch's, term for
//! term, so trajectories match its reference values.

use super::{check_at_least, next_step, Common, Optimizer, Slots};
use crate::error::{Error, Result};
use crate::nn::Name;

/// The Adam optimiser.
#[derive(Debug, Clone)]
pub struct Adam {
    common: Common,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults β = (0.9, 0.999), ε = 1e-8.
    ///
    /// # Errors
    /// [`Error::Config`] for a negative or non-finite rate.
    pub fn new(lr: f32) -> Result<Self> {
        check_at_least("learning rate", lr, 0.0)?;
        let common = Common {
            lr,
            slots: Slots::new(&["step", "exp_avg", "exp_avg_sq"]),
            names: Name::default(),
        };
        Ok(Adam {
            common,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        })
    }

    /// Sets β₁, β₂ (each in [0, 1)) and ε.
    ///
    /// # Errors
    /// [`Error::Config`] when a β is outside [0, 1) or ε is negative.
    pub fn with_betas(mut self, beta1: f32, beta2: f32, eps: f32) -> Result<Self> {
        for (what, b) in [("beta1", beta1), ("beta2", beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(what, format!("{b} is not in [0, 1)")));
            }
        }
        check_at_least("epsilon", eps, 0.0)?;
        (self.beta1, self.beta2, self.eps) = (beta1, beta2, eps);
        Ok(self)
    }

    /// Adds L2 weight decay (added to the gradient, as PyTorch's `Adam` does).
    ///
    /// # Errors
    /// [`Error::Config`] for a negative decay.
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Result<Self> {
        check_at_least("weight decay", weight_decay, 0.0)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }
}

impl Optimizer for Adam {
    fn update(&mut self, name: &str, param: &mut [f32], grad: &[f32]) {
        let (b1, b2, eps, wd, lr) = (
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.common.lr,
        );
        let [step, m, v] = self.common.slots.of(name, param.len()) else {
            unreachable!("three Adam slots")
        };
        let t = next_step(step) as i32;
        let bias1 = 1.0 - b1.powi(t);
        let bias2_sqrt = (1.0 - b2.powi(t)).sqrt();
        let step_size = lr / bias1;
        kernels::elementwise::update_with_moments(param, m, v, grad, move |p, m, v, g| {
            let g = g + wd * *p;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step_size * *m / (v.sqrt() / bias2_sqrt + eps);
        });
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}
