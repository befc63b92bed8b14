//! # handgrad
//!
//! A tensor engine written by hand, with reverse-mode automatic differentiation, that trains
//! autoencoders — plain, convolutional, denoising and variational — with no ML framework
//! underneath. It is meant to be read.
//!
//! ## Reading order
//! 1. [`autodiff::graph`]: the tape. How recording a computation lets us run it backwards
//!    (`record`, the backward walk and `accumulate`, one screen each).
//! 2. [`autodiff::ops`]: every operation, forward and backward side by side. The arithmetic
//!    itself lives in the `handgrad-kernels` crate (GEMM, convolutions, activations).
//! 3. [`autodiff::grad_check`](mod@autodiff::grad_check): how we know the backward passes are right.
//! 4. [`nn`]: layers with named parameters (Linear, Conv2d, ConvTranspose2d, BatchNorm, …)
//!    and the initialisers that decide where training starts.
//! 5. [`optim`]: SGD, Adam and AdaGrad, the learning-rate schedules and early stopping.
//! 6. [`data`]: MNIST's IDX files, finding and downloading datasets, splits and batches, and
//!    the corruptions a denoising autoencoder learns to undo.
//! 7. [`models`]: an autoencoder described as data, planned layer by layer with every shape
//!    checked, then built — plain, convolutional or variational.
//! 8. [`train`]: a run's configuration (presets, and the options given on top of them), what
//!    a model minimises, the training loop, evaluation, checkpoints, and the run folder.
//! 9. [`embed`]: PCA (with its own eigen-solver) and t-SNE, to compare codes with the
//!    best linear code and to look at them in 2-D.
//! 10. [`viz`]: the pictures — labelled image grids, loss curves, scatter plots.
//! 11. [`experiments`]: what each `handgrad` command does, on top of all the above:
//!     [`experiments::train`] (a run from start to finish), [`experiments::eval`] (test
//!     losses clean and corrupted beside the identity, reconstructions, denoising, noise
//!     sweeps) and [`experiments::generate`] (the decoder as a generator: random codes, class
//!     centroids, the 2-D manifold, interpolation); [`experiments::reproduce`] reruns a course
//!     report's protocol, one file per report.
//! 12. [`explore`]: a page in the browser to move through a trained run's code space and
//!     watch the decoder answer, served on 127.0.0.1.
//!
//! Helpers used throughout: [`names`] (the one list of every named choice), [`seed`] (one
//! named random stream per use), [`fs`] (atomic writes, and where outputs may go),
//! [`machine`] (memory and processor facts), [`error`].
//!
//! Each module uses only the modules of its own layer or below, and no two use each other:
//! `error`, `machine`, `seed` → `names`, `fs` → `autodiff`, `data`, `embed`, `viz` → `nn` →
//! `optim`, `models` → `train` → `experiments` → `explore` → the command line (`tests/layers.rs` holds it).
//!
//! The `handgrad` binary is a thin command line over [`experiments`]: `src/main.rs` holds
//! `main`, and `src/cli/` one file per command, each turning its options into a library call
//! and the answer into lines.
//!
//! Every fallible function returns [`Result`], with one [`Error`] type for the crate.

#![warn(missing_docs)]

pub mod autodiff;
pub mod data;
pub mod embed;
pub mod error;
pub mod experiments;
pub mod explore;
pub mod fs;
pub mod machine;
pub mod models;
pub mod names;
pub mod nn;
pub mod optim;
pub mod seed;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
