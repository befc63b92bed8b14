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
//!
//! Every fallible function returns [`Result`], with one [`Error`] type for the crate.

pub mod autodiff;
pub mod data;
pub mod error;
pub mod models;
pub mod nn;
pub mod optim;
pub mod train;

pub use error::{Error, Result};
