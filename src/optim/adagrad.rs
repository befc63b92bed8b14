//! AdaGrad: steps shrink for weights that have already moved a lot.
//!
//! s ← s + g², θ ← θ − lr_t · g / (√s + ε), with lr_t = lr / (1 + (t − 1)·lr_decay).
//! Because s only grows, the effective rate keeps falling — good for sparse features, often
//! too cautious for long training. PyTorch's formulation (initial accumulator 0, ε = 1e-10).

use super::{check_at_least, saved, Optimizer};
use crate::error::Result;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct Accumulator {
    step: u64,
    sum_sq: Vec<f32>,
}

/// The AdaGrad optimiser.
#[derive(Debug, Clone)]
pub struct AdaGrad {
    lr: f32,
    lr_decay: f32,
    eps: f32,
    weight_decay: f32,
    acc: BTreeMap<String, Accumulator>,
}

impl AdaGrad {
    /// AdaGrad with learning rate `lr`, no decay, ε = 1e-10.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a negative or non-finite rate.
    pub fn new(lr: f32) -> Result<Self> {
        check_at_least("learning rate", lr, 0.0)?;
        Ok(AdaGrad {
            lr,
            lr_decay: 0.0,
            eps: 1e-10,
            weight_decay: 0.0,
            acc: BTreeMap::new(),
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
        let a = self
            .acc
            .entry(name.to_string())
            .or_insert_with(|| Accumulator {
                step: 0,
                sum_sq: vec![0.0; param.len()],
            });
        a.step += 1;
        let clr = self.lr / (1.0 + (a.step - 1) as f32 * self.lr_decay);
        let (eps, wd) = (self.eps, self.weight_decay);
        for ((p, &g), s) in param.iter_mut().zip(grad).zip(a.sum_sq.iter_mut()) {
            let g = g + wd * *p;
            *s += g * g;
            *p -= clr * g / (s.sqrt() + eps);
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> BTreeMap<String, BTreeMap<String, Vec<f32>>> {
        self.acc
            .iter()
            .map(|(k, a)| {
                (
                    k.clone(),
                    BTreeMap::from([
                        ("step".to_string(), vec![a.step as f32]),
                        ("sum".to_string(), a.sum_sq.clone()),
                    ]),
                )
            })
            .collect()
    }

    fn load_state(&mut self, state: &BTreeMap<String, BTreeMap<String, Vec<f32>>>) -> Result<()> {
        let mut acc = BTreeMap::new();
        for (name, entry) in state {
            let step = saved(entry, name, "step")?.first().copied().unwrap_or(0.0) as u64;
            acc.insert(
                name.clone(),
                Accumulator {
                    step,
                    sum_sq: saved(entry, name, "sum")?.to_vec(),
                },
            );
        }
        self.acc = acc;
        Ok(())
    }
}
