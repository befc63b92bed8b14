//! Recycled buffers for the tape.
//!
//! A training step allocates the same tensors every time: the same activations, the same
//! gradients, in the same sizes. Instead of returning them to the allocator when the step's
//! graph is cleared and asking for them again a moment later, [`BufferPool`] keeps them, keyed
//! by length, and hands them out again. After the first step, a step allocates (almost)
//! nothing.
//!
//! A recycled buffer holds the numbers of whatever used it last. [`BufferPool::alloc`] returns
//! it as is — every kernel overwrites its whole output — and [`BufferPool::zeros`] clears it
//! for code that accumulates.

use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;

/// At most this many spare buffers of one length are kept; beyond it they are freed. A step
/// needs only a few of each size, so the cap matters only if a caller's sizes keep changing.
const MAX_SPARES_PER_LEN: usize = 64;

/// Spare `Vec<f32>` buffers by length.
#[derive(Debug, Default)]
pub struct BufferPool {
    spares: HashMap<usize, Vec<Vec<f32>>>,
}

impl BufferPool {
    /// A tensor of this shape, contents unspecified (stale values from an earlier step).
    pub fn alloc(&mut self, shape: &[usize]) -> ArrayD<f32> {
        let len = shape.iter().product();
        let buf = self
            .spares
            .get_mut(&len)
            .and_then(Vec::pop)
            .unwrap_or_else(|| vec![0.0; len]);
        into_array(shape, buf)
    }

    /// A tensor of this shape filled with zeros.
    pub fn zeros(&mut self, shape: &[usize]) -> ArrayD<f32> {
        let mut a = self.alloc(shape);
        a.fill(0.0);
        a
    }

    /// A copy of `values` in a recycled buffer, always in standard (row-major) layout.
    ///
    /// A row-major source (a batch of data) is copied as a slice, on every thread when it
    /// is long; ndarray's general `assign` walks index by index on dynamic-rank arrays, which
    /// was 6 % of an mlp4 inference step.
    pub fn copy_of(&mut self, values: &ndarray::ArrayViewD<'_, f32>) -> ArrayD<f32> {
        let mut a = self.alloc(values.shape());
        match (values.as_slice(), a.as_slice_mut()) {
            (Some(from), Some(to)) => kernels::elementwise::copy(from, to),
            _ => a.assign(values),
        }
        a
    }

    /// Takes a tensor back for reuse.
    pub fn recycle(&mut self, a: ArrayD<f32>) {
        let (buf, offset) = a.into_raw_vec_and_offset();
        if offset.unwrap_or(0) != 0 || buf.is_empty() {
            return;
        }
        let spares = self.spares.entry(buf.len()).or_default();
        if spares.len() < MAX_SPARES_PER_LEN {
            spares.push(buf);
        }
    }

    /// How many floats the spare buffers hold, for memory reports.
    pub fn spare_floats(&self) -> usize {
        self.spares.iter().map(|(len, v)| len * v.len()).sum()
    }
}

/// Wraps a buffer of exactly `shape.iter().product()` floats as a row-major tensor.
pub(crate) fn into_array(shape: &[usize], buf: Vec<f32>) -> ArrayD<f32> {
    // Invariant: callers pass a buffer of the shape's length (the pool keys by length).
    ArrayD::from_shape_vec(IxDyn(shape), buf)
        .unwrap_or_else(|e| unreachable!("buffer length matches its shape: {e}"))
}
