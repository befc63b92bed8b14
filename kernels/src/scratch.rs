//! Scratch memory that outlives a call.
//!
//! Some kernels need working space: im2col's column matrix, a table of offsets, phase planes,
//! per-group partial sums. Allocating it on every call would cost a trip to the allocator per
//! image per layer per step, and training would churn through gigabytes of short-lived
//! buffers. Instead each thread keeps its spare buffers here and lends them out: a training
//! step allocates its working space once, on the first step, and reuses it from then on.
//!
//! A buffer is taken out of the thread's stack while the borrower runs, so a nested call — rayon
//! may run another task on this thread while the borrower waits on a parallel GEMM — gets a
//! buffer of its own. Contents are stale: borrowers write before they read.

use std::cell::RefCell;
use std::thread::LocalKey;

thread_local! {
    /// Spare f32 buffers of this thread.
    static FLOATS: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    /// Spare f64 buffers of this thread (partial sums).
    static DOUBLES: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
    /// Spare index tables of this thread.
    static INDICES: RefCell<Vec<Vec<u32>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a slice of `len` elements borrowed from this thread's spares in `spares`.
fn borrow<T: Copy + Default, R>(
    spares: &'static LocalKey<RefCell<Vec<Vec<T>>>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buf = spares.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    let out = f(&mut buf[..len]);
    spares.with(|s| s.borrow_mut().push(buf));
    out
}

/// Runs `f` with `len` floats of scratch memory (stale contents).
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    borrow(&FLOATS, len, f)
}

/// Runs `f` with `len` f64 values of scratch memory (stale contents).
pub(crate) fn with_f64_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    borrow(&DOUBLES, len, f)
}

/// Runs `f` with a table of `len` indices (stale contents).
pub(crate) fn with_index_scratch<R>(len: usize, f: impl FnOnce(&mut [u32]) -> R) -> R {
    borrow(&INDICES, len, f)
}
