//! # handgrad
//!
//! A tensor engine written by hand, with reverse-mode automatic differentiation, that trains
//! autoencoders — plain, convolutional, denoising and variational — with no ML framework
//! underneath. It is meant to be read.
//!
//! ## Reading order
//! 1. [`autodiff::graph`]: the tape. How recording a computation lets us run it backwards.
//! 2. [`autodiff::ops`]: every operation, forward and backward side by side. The arithmetic
//!    itself lives in the `handgrad-kernels` crate (GEMM, convolutions, activations).
//! 3. [`autodiff::grad_check`]: how we know the backward passes are right.
//! 4. [`nn`]: layers with named parameters (Linear, Conv2d, ConvTranspose2d, BatchNorm, …)
//!    and the initialisers that decide where training starts.
//! 5. [`optim`]: SGD, Adam and AdaGrad, the learning-rate schedules and early stopping.
//! 6. [`data`]: MNIST's IDX files, finding and downloading datasets, splits and batches.
//! 7. [`models`]: an autoencoder described as data, built layer by layer, shapes checked.
//! 8. [`train`]: the training loop, checkpoints, and the pictures a run leaves behind.
//!
//! The `handgrad` binary (`src/main.rs`) is a thin command line over [`train::run`].
//!
//! Every fallible function returns [`Result`], with one [`Error`] type for the crate.

#![warn(missing_docs)]

pub mod autodiff;
pub mod data;
pub mod error;
pub mod models;
pub mod nn;
pub mod optim;
pub mod train;

pub use error::{Error, Result};
