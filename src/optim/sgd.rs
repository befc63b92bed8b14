//! Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay.
//!
//! θ ← θ − lr·g, where g = ∂L/∂θ + wd·θ. With momentum μ, a velocity accumulates past
//! gradients, b ← μ·b + g (b = g on the first step), and the update uses b — or, with
//! Nesterov, g + μ·b, a look-ahead. PyTorch's formulation (dampening 0).

use super::{check_at_least, saved, Optimizer};
use crate::error::Result;
use std::collections::BTreeMap;

/// SGD with momentum.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f32,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    velocity: BTreeMap<String, Vec<f32>>,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a negative or non-finite rate.
    pub fn new(lr: f32) -> Result<Self> {
        check_at_least("learning rate", lr, 0.0)?;
        Ok(Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            velocity: BTreeMap::new(),
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
        let (lr, mu, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        if mu == 0.0 {
            for (p, &g) in param.iter_mut().zip(grad) {
                *p -= lr * (g + wd * *p);
            }
            return;
        }
        let first = !self.velocity.contains_key(name);
        let b = self
            .velocity
            .entry(name.to_string())
            .or_insert_with(|| vec![0.0; param.len()]);
        for ((p, &g), v) in param.iter_mut().zip(grad).zip(b.iter_mut()) {
            let g = g + wd * *p;
            *v = if first { g } else { mu * *v + g };
            *p -= lr * if nesterov { g + mu * *v } else { *v };
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> BTreeMap<String, BTreeMap<String, Vec<f32>>> {
        self.velocity
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    BTreeMap::from([("momentum_buffer".to_string(), v.clone())]),
                )
            })
            .collect()
    }

    fn load_state(&mut self, state: &BTreeMap<String, BTreeMap<String, Vec<f32>>>) -> Result<()> {
        let mut velocity = BTreeMap::new();
        for (name, entry) in state {
            velocity.insert(
                name.clone(),
                saved(entry, name, "momentum_buffer")?.to_vec(),
            );
        }
        self.velocity = velocity;
        Ok(())
    }
}
