//! # handgrad-kernels: the raw compute under handgrad
//!
//! Everything an autoencoder spends its time on — matrix products, convolutions, pooling,
//! activations, reductions — written as plain functions over `&[f32]` slices. This crate knows
//! nothing about autodiff, files or models: `handgrad` records these calls on its tape and wires
//! their backward passes together.
//!
//! ## Conventions
//! * Every tensor is `f32`, contiguous and row-major. Images are **NCHW**: batch, channels,
//!   height, width, with width varying fastest.
//! * Shape letters, used the same way in every file: `n` batch size, `c_in`/`c_out` channels in
//!   and out, `h_in`/`w_in` input height and width, `kh`/`kw` kernel height and width,
//!   `h_out`/`w_out` output height and width. Docs write them N, C_in, H, W, KH, KW, OH, OW.
//! * A kernel writes **every** element of its output slice (it never reads what was there
//!   before), so callers may hand it a recycled buffer with stale contents.
//! * `d_` means ∂L/∂(that): `d_y` is the gradient arriving from above, `d_x` the one we return.
//!   Backward kernels are named per input: `backward_input`, `backward_weight`, `backward_bias`.
//!
//! ## The naive loop is the spec
//! Each kernel family keeps a `naive` implementation: plain nested loops that accumulate in
//! `f64`, written to be read and never optimised. The fast variants must agree with it, and the
//! tests compare them over a grid of shapes. When in doubt about what a kernel computes, read
//! its naive version first.
//!
//! ## Reading order
//! [`gemm`] (the one matrix product) → [`conv2d`] (geometry, then `naive`, `direct`,
//! [`im2col`](conv2d::im2col), `im2col_gemm`, `batched_gemm`, `phase_planes`) →
//! [`conv_transpose2d`] (the adjoint of conv2d) → [`pool`] → [`elementwise`] → [`reduce`] →
//! [`batch_norm`].
//!
//! The machinery that makes these fast sits in its own files, each opening with why it exists:
//! [`gemm::packed`] (the product's packing and micro-kernels), `gemm::thin` (products too thin
//! to pack), `simd` (choosing vector instructions at run time) and `scratch` (working memory
//! kept between calls).

#![warn(missing_docs)]

#[macro_use]
mod simd;

pub mod batch_norm;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod elementwise;
pub mod gemm;
pub mod peak;
pub mod pool;
pub mod reduce;
mod scratch;
pub mod transpose;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

static REFERENCE_LOOPS: AtomicBool = AtomicBool::new(false);

/// Makes every matrix product and every convolution in this process run on its naive
/// reference loop ([`gemm::naive`], [`conv2d::naive`]) instead of the fast kernels: the same
/// numbers (up to rounding), many times slower. For learning (`handgrad --naive`): seeing the
/// same loss come out of the loops one can read.
pub fn use_reference_loops(on: bool) {
    REFERENCE_LOOPS.store(on, Ordering::Relaxed);
}

/// Whether [`use_reference_loops`] is on.
pub fn reference_loops() -> bool {
    REFERENCE_LOOPS.load(Ordering::Relaxed)
}

/// A geometry that cannot exist: a kernel larger than its padded input, a zero stride, an
/// `output_padding` that is not smaller than the stride.
///
/// Kernels trust the geometry types ([`conv2d::Conv2dGeometry`] and friends) because their
/// constructors are the only place sizes are checked; this is the error those constructors give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometryError {
    /// Which geometry rejected the sizes, e.g. `"conv2d"`.
    pub op: &'static str,
    /// One sentence naming the offending sizes.
    pub detail: String,
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.detail)
    }
}

impl std::error::Error for GeometryError {}

/// Fails naming every size in `sizes` (as `(name, value)` pairs) that is zero: the first check
/// of every geometry constructor.
pub(crate) fn check_nonzero(
    op: &'static str,
    sizes: &[(&str, usize)],
) -> Result<(), GeometryError> {
    let zero: Vec<&str> = sizes
        .iter()
        .filter(|(_, v)| *v == 0)
        .map(|(name, _)| *name)
        .collect();
    if zero.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = sizes
        .iter()
        .map(|(name, v)| format!("{name} {v}"))
        .collect();
    Err(GeometryError {
        op,
        detail: format!(
            "{} must be at least 1 ({})",
            zero.join(", "),
            all.join(", ")
        ),
    })
}

/// Panics naming the kernel and every slice whose length differs from what the call's sizes
/// imply, given as `(name, got, want)`.
///
/// Kernels are handed sizes that a checked geometry (or the tape, from checked shapes) worked
/// out, so a mismatch is a bug in the caller, not bad user input. Without this check a release
/// build would silently stop at the shorter slice (`zip` does), computing garbage. It is one
/// comparison per slice per call: free next to the arithmetic that follows.
#[track_caller]
pub fn check_lens(kernel: &str, slices: &[(&str, usize, usize)]) {
    let wrong: Vec<String> = slices
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(name, got, want)| format!("{name} holds {got} values, the sizes need {want}"))
        .collect();
    assert!(wrong.is_empty(), "{kernel}: {}", wrong.join("; "));
}

/// Panics unless a bias, when given, holds one number per output channel: the check every
/// convolution and transposed convolution makes on its epilogue's bias (see [`check_lens`] for
/// why a mismatch is a panic, not an error).
#[track_caller]
pub(crate) fn check_bias(c_out: usize, b: Option<&[f32]>) {
    if let Some(b) = b {
        check_lens("bias", &[("b", b.len(), c_out)]);
    }
}

/// Below this many elements a kernel runs on the calling thread: splitting work across threads
/// costs a few microseconds, more than a small loop takes.
pub const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// How many elements each rayon task handles in element-wise kernels: large enough to amortise
/// scheduling, small enough to balance two to sixteen cores.
pub const PARALLEL_CHUNK: usize = 1 << 14;

#[cfg(test)]
mod testing;
