//! Training: the epoch loop, checkpoints, metrics and the pictures a run leaves behind.
//!
//! Reading order: [`checkpoint`] (saving tensors safely) → [`fit`] (the loop: batches,
//! loss, backward, optimiser step, validation, early stopping, learning-rate schedule) →
//! [`images`] (reconstruction grids) → [`plot`] (loss curves) → [`run`] (a run folder from
//! start to finish, as `handgrad train` uses it).

pub mod checkpoint;
pub mod fit;

pub use fit::{evaluate, EpochMetrics, Hooks, Outcome, TrainState, Trainer};
pub mod images;
pub mod plot;
pub mod run;
