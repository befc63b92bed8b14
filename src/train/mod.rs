//! Training: the configuration of a run, the epoch loop, checkpoints, and the files a run
//! folder holds.
//!
//! Reading order: [`config`] (a run described as data, the presets) → [`overrides`] (settings given on top
//! of a preset) → [`task`] (what a model
//! is trained to minimise: reconstruction, denoising, the VAE's two terms) → [`fit`] (the
//! loop: batches, loss, backward, optimiser step, validation, early stopping, learning-rate
//! schedule) → [`evaluate`](mod@evaluate) (a model's loss over a set, no gradients) →
//! [`checkpoint`] (saving tensors safely) → [`run_dir`] (a run folder's files) →
//! [`writer`] (writing them as training goes) → [`observe`] (telling the user, without
//! printing).

pub mod checkpoint;
pub mod config;
pub mod evaluate;
pub mod fit;
pub mod observe;
pub mod overrides;
pub mod run_dir;
pub mod task;
pub mod writer;

pub use config::{LossName, OptimizerName, PlateauSpec, Preset, RunConfig, TrainSpec, PRESETS};
pub use evaluate::{evaluate, Evaluation, EVAL_BATCH};
pub use fit::{EpochMetrics, Hooks, Outcome, TrainState, Trainer};
pub use observe::{Event, Observer, Silent};
pub use overrides::Overrides;
pub use run_dir::RunDir;
pub use task::{Batch, Task, Terms};
