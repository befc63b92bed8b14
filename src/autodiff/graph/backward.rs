//! What an op's backward is given, and what it gives back.
//!
//! Every op on the tape carries a small struct implementing [`Backward`]: given ∂L/∂y, the
//! gradient arriving at the op's output, it returns ∂L/∂x for each input. It reads what the
//! forward pass left on the tape through a [`BackwardCtx`] (the inputs, the output) and takes
//! buffers for its results from the tape's pool, so a training step allocates nothing new.

use super::Node;
use super::Var;
use crate::autodiff::buffers::BufferPool;
use crate::error::Result;
use ndarray::{ArrayD, ArrayViewD};
use std::fmt;

/// How one op turns the gradient of its output into gradients of its inputs.
///
/// Implementations are small structs holding whatever forward computed that backward needs
/// beyond the input and output values (the tape keeps those): a convolution's geometry,
/// max-pool's winners, batch norm's statistics. `Debug` names the op in [`Graph::dump`](super::Graph::dump).
pub trait Backward: std::any::Any + fmt::Debug + Send + Sync {
    /// Given ∂L/∂y in `ctx`, returns ∂L/∂(input i) for each input, in order: an array
    /// turned into [`Grads`], `Ok([d_x, d_w].into())`. Return `None` for inputs where
    /// [`BackwardCtx::needs`] is false (constants, data): skipping them saves work, e.g. the
    /// first convolution never computes a gradient for the images.
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads>;

    /// Multiply-adds of the op's forward pass, for traces: the products (linear layers,
    /// convolutions) count theirs; element-wise ops and reshapes count 0.
    fn macs(&self) -> u128 {
        0
    }

    /// What a trace calls the op when its type's name would hide something: a fused op
    /// names the activation it applies ("Conv2d + selu"), a loss its kind. `None`: the
    /// op's own description or type name will do.
    fn label(&self) -> Option<String> {
        None
    }
}

/// The gradients a backward returns, ∂L/∂(input i) in input order (`None` where none is
/// wanted). Most ops have one to three inputs (x, w, b) and their gradients are held in place,
/// so a backward call allocates no list; an op with more inputs (a concatenation of many)
/// uses the heap. Made from an array or a `Vec` with `.into()`.
#[derive(Debug)]
// The large variant is the point: boxing it would allocate at every backward call.
#[allow(clippy::large_enum_variant)]
pub enum Grads {
    /// Up to three gradients, in place: the array and how many of it are used.
    Few([Option<ArrayD<f32>>; 3], usize),
    /// Any number, on the heap.
    Many(Vec<Option<ArrayD<f32>>>),
}

impl Grads {
    /// The gradients, in input order.
    pub fn as_slice(&self) -> &[Option<ArrayD<f32>>] {
        match self {
            Grads::Few(few, len) => &few[..*len],
            Grads::Many(many) => many,
        }
    }

    /// Takes gradient `i` out (leaving `None`).
    pub fn take(&mut self, i: usize) -> Option<ArrayD<f32>> {
        match self {
            Grads::Few(few, len) => few[..*len].get_mut(i)?.take(),
            Grads::Many(many) => many.get_mut(i)?.take(),
        }
    }
}

impl<const N: usize> From<[Option<ArrayD<f32>>; N]> for Grads {
    fn from(grads: [Option<ArrayD<f32>>; N]) -> Self {
        if N > 3 {
            return Grads::Many(grads.into());
        }
        let mut few = [None, None, None];
        for (slot, grad) in few.iter_mut().zip(grads) {
            *slot = grad;
        }
        Grads::Few(few, N)
    }
}

impl From<Vec<Option<ArrayD<f32>>>> for Grads {
    fn from(grads: Vec<Option<ArrayD<f32>>>) -> Self {
        Grads::Many(grads)
    }
}

/// What an op's backward may read, plus the buffer pool for its results. It reads the
/// inputs straight from the tape (no list is built per node).
pub struct BackwardCtx<'a> {
    pub(super) nodes: &'a [Node],
    pub(super) inputs: &'a [Var],
    pub(super) output: &'a ArrayD<f32>,
    pub(super) d_y: &'a ArrayD<f32>,
    pub(super) pool: &'a mut BufferPool,
}

impl<'a> BackwardCtx<'a> {
    /// The value of input `i`, as forward saw it.
    pub fn input(&self, i: usize) -> ArrayViewD<'a, f32> {
        self.nodes[self.inputs[i].index].value.view()
    }
    /// Input `i`'s values as a flat slice.
    pub fn input_slice(&self, i: usize) -> &'a [f32] {
        self.nodes[self.inputs[i].index].value.as_slice()
    }
    /// The shape of input `i`.
    pub fn input_shape(&self, i: usize) -> &'a [usize] {
        self.nodes[self.inputs[i].index].value.shape()
    }
    /// Whether input `i` wants a gradient.
    pub fn needs(&self, i: usize) -> bool {
        self.nodes[self.inputs[i].index].requires_grad
    }
    /// The op's output value.
    pub fn output(&self) -> &'a ArrayD<f32> {
        self.output
    }
    /// ∂L/∂y, the gradient arriving at the output (same shape as the output).
    pub fn d_y(&self) -> &'a ArrayD<f32> {
        self.d_y
    }
    /// ∂L/∂y as a flat slice.
    pub fn d_y_slice(&self) -> &'a [f32] {
        as_slice(self.d_y)
    }
    /// A buffer for a result, contents unspecified: the caller writes every element.
    pub fn alloc(&mut self, shape: &[usize]) -> ArrayD<f32> {
        self.pool.alloc(shape)
    }
    /// A zeroed buffer for a result that is accumulated.
    pub fn zeros(&mut self, shape: &[usize]) -> ArrayD<f32> {
        self.pool.zeros(shape)
    }
    /// How many inputs the op read.
    pub fn inputs_len(&self) -> usize {
        self.inputs.len()
    }
    /// ∂L/∂(input i), computed by `kernel` into a fresh buffer of `shape` — or `None`, without
    /// running the kernel, when input `i` does not exist (an absent bias) or needs no gradient.
    pub fn grad_for(
        &mut self,
        i: usize,
        shape: &[usize],
        kernel: impl FnOnce(&mut [f32]),
    ) -> Option<ArrayD<f32>> {
        if i >= self.inputs.len() || !self.needs(i) {
            return None;
        }
        let mut d = self.pool.alloc(shape);
        kernel(as_slice_mut(&mut d));
        Some(d)
    }
    /// Returns a scratch tensor to the pool.
    pub fn recycle(&mut self, a: ArrayD<f32>) {
        self.pool.recycle(a);
    }
    /// A buffer shaped like input `i` (the usual shape of its gradient).
    pub fn alloc_like_input(&mut self, i: usize) -> ArrayD<f32> {
        self.pool.alloc(self.input_shape(i))
    }
}

/// The flat, row-major data of a tape value.
pub(crate) fn as_slice(a: &ArrayD<f32>) -> &[f32] {
    // Invariant: every value on the tape is created in standard layout (by the pool, or
    // copied into it by `Graph::constant`), so it is one contiguous slice.
    a.as_slice()
        .unwrap_or_else(|| unreachable!("tape values are contiguous"))
}

/// Mutable flat data of a freshly allocated value (see [`as_slice`] for the invariant).
pub(crate) fn as_slice_mut(a: &mut ArrayD<f32>) -> &mut [f32] {
    a.as_slice_mut()
        .unwrap_or_else(|| unreachable!("tape values are contiguous"))
}
