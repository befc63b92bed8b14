//! AdaGrad: steps shrink for weights that have already moved a lot.
//!
//! s ← s + g², θ ← θ − lr_t · g / (√s + ε), with lr_t = lr / (1 + (t − 1)·lr_decay).
//! Because s only grows, the effective rate keeps falling — good for sparse features, often
//! too cautious for long training. PyTorch's formulation (initial accumulator 0, ε = 1e-10).

use super::{check_at_least, next_step, Common, Optimizer, Slots};
use crate::error::Result;
use crate::nn::Name;

/// The AdaGrad optimiser.
#[derive(Debug, Clone)]
pub struct AdaGrad {
    common: Common,
    lr_decay: f32,
    eps: f32,
    weight_decay: f32,
}

impl AdaGrad {
    /// AdaGrad with learning rate `lr`, no decay, ε = 1e-10.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a negative or non-finite rate.
    pub fn new(lr: f32) -> Result<Self> {
        check_at_least("learning rate", lr, 0.0)?;
        let common = Common {
            lr,
            slots: Slots::new(&["step", "sum"]),
            names: Name::default(),
        };
        Ok(AdaGrad {
            common,
            lr_decay: 0.0,
            eps: 1e-10,
            weight_decay: 0.0,
        })
    }

    /// Sets the learning-rate decay and L2 weight decay.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for negative values.
    pub fn with_decay(mut self, lr_decay: f32, weight_decay: f32) -> Result<Self> {
        check_at_least("learning-rate decay", lr_decay, 0.0)?;
        check_at_least("weight decay", weight_decay, 0.0)?;
        (self.lr_decay, self.weight_decay) = (lr_decay, weight_decay);
        Ok(self)
    }
}

impl Optimizer for AdaGrad {
    fn update(&mut self, name: &str, param: &mut [f32], grad: &[f32]) {
        let (lr, lr_decay, eps, wd) = (self.common.lr, self.lr_decay, self.eps, self.weight_decay);
        let [step, sum_sq] = self.common.slots.of(name, param.len()) else {
            unreachable!("two AdaGrad slots")
        };
        let t = next_step(step);
        let clr = lr / (1.0 + (t - 1) as f32 * lr_decay);
        for ((p, &g), s) in param.iter_mut().zip(grad).zip(sum_sq.iter_mut()) {
            let g = g + wd * *p;
            *s += g * g;
            *p -= clr * g / (s.sqrt() + eps);
        }
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}
