//! What a node of the tape holds: its numbers, and whose they are.
//!
//! Most values are made during the step (an op's output, a batch of data) and live in a
//! buffer of the tape's pool, which takes it back at the next reset. A parameter is
//! different: its numbers belong to its layer and outlive every step. Copying them onto the
//! tape each step would cost a pass over every weight of the model (at batch 32 that copy was
//! 14 % of mlp4's forward pass, and it moved the weights out of the cache of the thread that
//! multiplies by them). So the tape holds a second handle to the same numbers instead:
//! [`crate::nn::Param`] keeps its value in an `ArcArray`, a reference-counted array, and the
//! tape clones the handle, not the data.
//!
//! Sharing has one rule: numbers with two handles are not written in place. ndarray's
//! `ArcArray` enforces it — writing through a handle that is not the only one copies the
//! numbers first ("copy on write") — so the optimiser would copy every weight if the tape
//! still held its handles. [`Graph::release_params`] drops them once backward no longer needs
//! them (the optimiser's step calls it first), and only the shape stays on the tape.
//!
//! [`Graph::release_params`]: super::Graph::release_params

use ndarray::{ArcArray, ArrayD, ArrayViewD, IxDyn};

/// One node's value.
#[derive(Debug)]
pub(crate) enum Value {
    /// A buffer of the tape's pool: returned to it when the tape is reset.
    Pooled(ArrayD<f32>),
    /// A parameter's own numbers, shared with its layer.
    Param(ArcArray<f32, IxDyn>),
    /// A parameter's handle after [`super::Graph::release_params`]: only the shape is kept.
    Released(IxDyn),
}

impl Value {
    /// The numbers as an array view.
    ///
    /// # Panics
    /// For a released parameter (a bug in the caller: its value is read from the layer).
    pub(crate) fn view(&self) -> ArrayViewD<'_, f32> {
        match self {
            Value::Pooled(a) => a.view(),
            Value::Param(a) => a.view(),
            Value::Released(_) => panic!("{RELEASED}"),
        }
    }

    /// The numbers, flat and row-major.
    ///
    /// # Panics
    /// As [`Value::view`].
    pub(crate) fn as_slice(&self) -> &[f32] {
        match self {
            Value::Pooled(a) => super::as_slice(a),
            // Parameters in another layout are copied into the pool when they enter the tape
            // (`Graph::param`), so a shared one is always contiguous.
            Value::Param(a) => a
                .as_slice()
                .unwrap_or_else(|| unreachable!("shared parameters are contiguous")),
            Value::Released(_) => panic!("{RELEASED}"),
        }
    }

    /// The numbers, when they are still on the tape (`None` for a released parameter).
    pub(crate) fn numbers(&self) -> Option<&[f32]> {
        match self {
            Value::Released(_) => None,
            held => Some(held.as_slice()),
        }
    }

    /// The shape (kept for a released parameter too).
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Value::Pooled(a) => a.shape(),
            Value::Param(a) => a.shape(),
            Value::Released(dim) => ndarray::Dimension::slice(dim),
        }
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// An op's output: always a pooled buffer (only leaves are parameters).
    pub(crate) fn pooled(&self) -> &ArrayD<f32> {
        match self {
            Value::Pooled(a) => a,
            _ => unreachable!("an op's output is a pooled buffer"),
        }
    }

    /// Drops the tape's handle to a parameter's numbers, keeping the shape.
    pub(crate) fn release(&mut self) {
        if let Value::Param(a) = self {
            *self = Value::Released(a.raw_dim());
        }
    }
}

/// What reading a released parameter through the tape says.
const RELEASED: &str = "this parameter's value was handed back to its layer \
    (Graph::release_params, which the optimiser's step calls); read it from the layer";
