//! Early stopping: end training when the validation loss has not improved for `patience`
//! epochs, and remember which epoch was best so its weights can be restored.

/// What the early-stopping rule says after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new best: save these weights.
    Improved,
    /// No improvement, but patience is not exhausted.
    Wait,
    /// Patience exhausted: stop and restore the best weights.
    Stop,
}

/// Early stopping on a metric where lower is better.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// An improvement must be larger than this.
    pub min_delta: f64,
    best: f64,
    best_epoch: Option<usize>,
    bad_epochs: usize,
}

impl EarlyStopping {
    /// A rule with the given patience and minimum improvement.
    pub fn new(patience: usize, min_delta: f64) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            best: f64::INFINITY,
            best_epoch: None,
            bad_epochs: 0,
        }
    }

    /// Feeds the metric of `epoch`.
    pub fn update(&mut self, epoch: usize, metric: f64) -> Verdict {
        if metric < self.best - self.min_delta {
            (self.best, self.best_epoch, self.bad_epochs) = (metric, Some(epoch), 0);
            return Verdict::Improved;
        }
        self.bad_epochs += 1;
        if self.bad_epochs >= self.patience {
            Verdict::Stop
        } else {
            Verdict::Wait
        }
    }

    /// The best metric so far and its epoch.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best_epoch.map(|e| (e, self.best))
    }

    /// Epochs since the last improvement.
    pub fn bad_epochs(&self) -> usize {
        self.bad_epochs
    }

    /// Restores the state (best metric, best epoch, bad epochs), for resuming.
    pub fn restore(&mut self, best: f64, best_epoch: Option<usize>, bad_epochs: usize) {
        (self.best, self.best_epoch, self.bad_epochs) = (best, best_epoch, bad_epochs);
    }
}
