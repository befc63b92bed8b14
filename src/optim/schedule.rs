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

/// Cosine annealing: the rate falls from lr₀ to `min_lr` along half a cosine over `period`
/// epochs, lr(e) = min + (lr₀ − min)·(1 + cos(π·e/period))/2, and stays at `min_lr` after
/// it. PyTorch's `CosineAnnealingLR` has the same curve up to `period` (its `T_max`), then
/// climbs back up; here a run trained past its period (with `--resume --epochs`) keeps the
/// smallest rate instead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineLr {
    /// The rate at epoch 0.
    pub initial_lr: f64,
    /// Epochs from lr₀ to `min_lr`.
    pub period: usize,
    /// The rate at the end of the period.
    pub min_lr: f64,
}

impl CosineLr {
    /// A schedule from `initial_lr` down to `min_lr` over `period` epochs.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero period, or a minimum that is negative or above lr₀.
    pub fn new(initial_lr: f64, period: usize, min_lr: f64) -> Result<Self> {
        if period == 0 {
            return Err(Error::config("cosine period", "must be at least one epoch"));
        }
        if !(min_lr >= 0.0 && min_lr <= initial_lr) {
            return Err(Error::config(
                "cosine minimum rate",
                format!("{min_lr} must be in [0, {initial_lr}] (the starting rate)"),
            ));
        }
        Ok(CosineLr {
            initial_lr,
            period,
            min_lr,
        })
    }

    /// The learning rate for `epoch` (from 0).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let progress = epoch.min(self.period) as f64 / self.period as f64;
        let cosine = (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0;
        self.min_lr + (self.initial_lr - self.min_lr) * cosine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_multiplies_every_step_size_epochs() -> Result<()> {
        let s = StepLr::new(1.0, 3, 0.5)?;
        let rates: Vec<f64> = (0..7).map(|e| s.lr_at(e)).collect();
        assert_eq!(rates, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
        Ok(())
    }

    #[test]
    fn cosine_falls_from_the_rate_to_the_minimum_and_stays() -> Result<()> {
        let s = CosineLr::new(1e-2, 4, 1e-4)?;
        assert_eq!(s.lr_at(0), 1e-2);
        let half = (1e-2 + 1e-4) / 2.0;
        assert!((s.lr_at(2) - half).abs() < 1e-12, "{}", s.lr_at(2));
        assert!((s.lr_at(4) - 1e-4).abs() < 1e-12);
        assert_eq!(s.lr_at(9), s.lr_at(4));
        let rates: Vec<f64> = (0..=4).map(|e| s.lr_at(e)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        Ok(())
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(StepLr::new(1.0, 0, 0.5).is_err());
        assert!(StepLr::new(1.0, 2, 1.5).is_err());
        assert!(CosineLr::new(1.0, 0, 0.0).is_err());
        assert!(CosineLr::new(1.0, 5, 2.0).is_err());
        assert!(CosineLr::new(1.0, 5, -1.0).is_err());
    }
}
