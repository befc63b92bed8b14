//! Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay.
//!
//! θ ← θ − lr·g, where g = ∂L/∂θ + wd·θ. With momentum μ, a velocity accumulates past
//! gradients, b ← μ·b + g (b = g on the first step), and the update uses b — or, with
//! Nesterov, g + μ·b, a look-ahead. PyTorch's formulation (dampening 0).

use super::{check_at_least, next_step, Common, Optimizer, Slots};
use crate::error::Result;
use crate::nn::Name;

/// SGD with momentum.
#[derive(Debug, Clone)]
pub struct Sgd {
    common: Common,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a negative or non-finite rate.
    pub fn new(lr: f32) -> Result<Self> {
        check_at_least("learning rate", lr, 0.0)?;
        let common = Common {
            lr,
            slots: Slots::new(&["step", "momentum_buffer"]),
            names: Name::default(),
        };
        Ok(Sgd {
            common,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        })
    }

    /// Adds momentum μ, Nesterov's variant if `nesterov`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a negative momentum.
    pub fn with_momentum(mut self, momentum: f32, nesterov: bool) -> Result<Self> {
        check_at_least("momentum", momentum, 0.0)?;
        (self.momentum, self.nesterov) = (momentum, nesterov);
        Ok(self)
    }

    /// Adds L2 weight decay.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a negative decay.
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Result<Self> {
        check_at_least("weight decay", weight_decay, 0.0)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }
}

impl Optimizer for Sgd {
    fn update(&mut self, name: &str, param: &mut [f32], grad: &[f32]) {
        let (lr, mu, wd, nesterov) = (
            self.common.lr,
            self.momentum,
            self.weight_decay,
            self.nesterov,
        );
        if mu == 0.0 {
            for (p, &g) in param.iter_mut().zip(grad) {
                *p -= lr * (g + wd * *p);
            }
            return;
        }
        let [step, velocity] = self.common.slots.of(name, param.len()) else {
            unreachable!("two SGD slots")
        };
        let first = next_step(step) == 1;
        for ((p, &g), b) in param.iter_mut().zip(grad).zip(velocity.iter_mut()) {
            let g = g + wd * *p;
            *b = if first { g } else { mu * *b + g };
            *p -= lr * if nesterov { g + mu * *b } else { *b };
        }
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}
