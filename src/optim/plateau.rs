//! ReduceLROnPlateau: lower the learning rate when the validation loss stops improving.
//!
//! After each epoch the scheduler sees one metric. If it has not improved on the best seen —
//! by more than `threshold` (relative or absolute) — for more than `patience` epochs in a row,
//! the rate is multiplied by `factor` (never below `min_lr`), and then `cooldown` epochs pass
//! before bad epochs count again. PyTorch's semantics exactly, including that a reduction
//! smaller than 1e-8 is skipped.

use super::check_at_least;
use crate::error::{Error, Result};

/// Whether a lower or a higher metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Lower is better (losses).
    #[default]
    Min,
    /// Higher is better (accuracies).
    Max,
}

/// How `threshold` is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThresholdMode {
    /// Improvement must exceed best·threshold.
    #[default]
    Rel,
    /// Improvement must exceed threshold.
    Abs,
}

/// The scheduler's settings and state.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    /// Min or max.
    pub mode: Mode,
    /// Multiplier applied on a plateau (PyTorch's default 0.1).
    pub factor: f64,
    /// Bad epochs tolerated before reducing (default 10).
    pub patience: usize,
    /// Minimum significant improvement (default 1e-4).
    pub threshold: f64,
    /// Relative or absolute threshold.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction (default 0).
    pub cooldown: usize,
    /// The rate never goes below this (default 0).
    pub min_lr: f64,
    best: f64,
    bad_epochs: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults with the given factor and patience.
    ///
    /// # Errors
    /// [`Error::Config`] unless 0 < factor < 1.
    pub fn new(factor: f64, patience: usize) -> Result<Self> {
        if !(factor > 0.0 && factor < 1.0) {
            return Err(Error::config(
                "plateau factor",
                format!("{factor} must be between 0 and 1"),
            ));
        }
        Ok(ReduceLrOnPlateau {
            mode: Mode::Min,
            factor,
            patience,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            best: f64::INFINITY,
            bad_epochs: 0,
            cooldown_left: 0,
        })
    }

    /// Sets the mode, and resets the best value to its worst.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.best = if mode == Mode::Min {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        self
    }

    /// Sets threshold, threshold mode, cooldown and minimum rate.
    ///
    /// # Errors
    /// [`Error::Config`] for a negative threshold or minimum rate.
    pub fn with_limits(
        mut self,
        threshold: f64,
        threshold_mode: ThresholdMode,
        cooldown: usize,
        min_lr: f64,
    ) -> Result<Self> {
        check_at_least("plateau threshold", threshold as f32, 0.0)?;
        check_at_least("minimum learning rate", min_lr as f32, 0.0)?;
        (
            self.threshold,
            self.threshold_mode,
            self.cooldown,
            self.min_lr,
        ) = (threshold, threshold_mode, cooldown, min_lr);
        Ok(self)
    }

    fn is_better(&self, metric: f64) -> bool {
        match (self.mode, self.threshold_mode) {
            (Mode::Min, ThresholdMode::Rel) => metric < self.best * (1.0 - self.threshold),
            (Mode::Min, ThresholdMode::Abs) => metric < self.best - self.threshold,
            (Mode::Max, ThresholdMode::Rel) => metric > self.best * (1.0 + self.threshold),
            (Mode::Max, ThresholdMode::Abs) => metric > self.best + self.threshold,
        }
    }

    /// Feeds one epoch's metric; returns the learning rate to use next (maybe `lr` unchanged).
    pub fn step(&mut self, metric: f64, lr: f64) -> f64 {
        if self.is_better(metric) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.patience {
            self.cooldown_left = self.cooldown;
            self.bad_epochs = 0;
            let reduced = (lr * self.factor).max(self.min_lr);
            if lr - reduced > 1e-8 {
                return reduced;
            }
        }
        lr
    }

    /// The scheduler's counters for checkpoints: the best metric (`None` before the first
    /// one), bad epochs, and cooldown epochs left.
    pub fn counters(&self) -> (Option<f64>, usize, usize) {
        (
            self.best.is_finite().then_some(self.best),
            self.bad_epochs,
            self.cooldown_left,
        )
    }

    /// Restores counters saved by [`ReduceLrOnPlateau::counters`].
    pub fn set_counters(&mut self, (best, bad_epochs, cooldown_left): (Option<f64>, usize, usize)) {
        let worst = if self.mode == Mode::Min {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        (self.best, self.bad_epochs, self.cooldown_left) =
            (best.unwrap_or(worst), bad_epochs, cooldown_left);
    }
}
