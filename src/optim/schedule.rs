//! Step decay: multiply the learning rate by γ every `step_size` epochs.
//! lr(epoch) = lr₀ · γ^⌊epoch / step_size⌋ (epochs counted from 0), PyTorch's `StepLR`.

use crate::error::{Error, Result};

/// A step-decay schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// The rate at epoch 0.
    pub initial_lr: f64,
    /// Epochs between decays.
    pub step_size: usize,
    /// The decay factor.
    pub gamma: f64,
}

impl StepLr {
    /// A schedule from `initial_lr`, decaying by `gamma` every `step_size` epochs.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero step size or γ outside (0, 1].
    pub fn new(initial_lr: f64, step_size: usize, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(Error::config("step size", "must be at least one epoch"));
        }
        if !(gamma > 0.0 && gamma <= 1.0) {
            return Err(Error::config(
                "step decay gamma",
                format!("{gamma} must be in (0, 1]"),
            ));
        }
        Ok(StepLr {
            initial_lr,
            step_size,
            gamma,
        })
    }

    /// The learning rate for `epoch` (from 0).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.initial_lr * self.gamma.powi((epoch / self.step_size) as i32)
    }
}
