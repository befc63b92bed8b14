//! Every differentiable operation, one file per family, each op's forward and backward side
//! by side.
//!
//! Each op is a method on [`Graph`](super::Graph) that checks shapes, computes the output with
//! a kernel, and [`record`](super::Graph::record)s a small struct implementing
//! [`Backward`](super::Backward). Reading order:
//! [`arith`] (broadcasting +, −, ×, ÷ and unary maths) → [`reduce`] → [`shape`] →
//! [`linear`] → [`conv`] → [`pool`] → [`activation`] → [`norm`] (batch norm, dropout) →
//! [`loss`] → [`sample`] (the VAE's reparameterisation) → [`fused`] (a layer and its
//! activation as one op, what models run for speed).

pub mod activation;
pub mod arith;
pub mod conv;
pub mod fused;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod sample;
pub mod shape;

use crate::autodiff::graph::{BackwardCtx, Var};
use crate::error::{Error, Result};
use ndarray::{ArrayD, Axis};

// A node keeps its inputs in the order the op recorded them, and a backward pass reads them by
// position. These names say which position is which for the ops with several inputs.

/// A layer's input x: the first of (x, w, b) in linear and conv nodes (and batch norm's x).
pub(crate) const X: usize = 0;
/// A layer's weight w, the second of (x, w, b).
pub(crate) const W: usize = 1;
/// A layer's bias b, the third of (x, w, b); absent when the layer has no bias.
pub(crate) const B: usize = 2;
/// A layer's inputs (x, w, b) in the order its backward reads them, without the bias when
/// there is none: the array and how many of it are used (no list is allocated per call).
pub(crate) fn x_w_b(x: Var, w: Var, b: Option<Var>) -> ([Var; 3], usize) {
    match b {
        Some(b) => ([x, w, b], 3),
        None => ([x, w, w], 2),
    }
}
/// The left operand a of a two-operand op: a ∘ b, a·b, loss(a, b).
pub(crate) const LEFT: usize = 0;
/// The right operand b of a two-operand op.
pub(crate) const RIGHT: usize = 1;

/// Fails with [`Error::Shape`] unless `a` and `b` are the same shape.
pub(crate) fn same_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::shape(op, format!("shapes differ: {a:?} and {b:?}")))
    }
}

/// Fails with [`Error::Shape`] unless `shape` has `rank` axes.
pub(crate) fn rank(op: &'static str, what: &str, shape: &[usize], rank: usize) -> Result<()> {
    if shape.len() == rank {
        Ok(())
    } else {
        Err(Error::shape(
            op,
            format!("{what} must have {rank} axes, it has shape {shape:?}"),
        ))
    }
}

/// The shape two operands broadcast to, NumPy's rule: align trailing axes; each pair must be
/// equal or contain a 1, which stretches.
pub(crate) fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let axis = |s: &[usize], k: usize| {
        if k < rank - s.len() {
            1
        } else {
            s[k - (rank - s.len())]
        }
    };
    (0..rank)
        .map(|k| match (axis(a, k), axis(b, k)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::shape(
                op,
                format!("shapes {a:?} and {b:?} do not broadcast (axis {k})"),
            )),
        })
        .collect()
}

/// Sums a gradient of the broadcast shape back down to an operand's shape: over the leading
/// axes the operand lacked, and over every axis where it had length 1. This is backward of
/// broadcasting — a value copied to many places receives the sum of their gradients.
pub(crate) fn sum_to_shape(
    ctx: &mut BackwardCtx<'_>,
    full: ArrayD<f32>,
    target: &[usize],
) -> ArrayD<f32> {
    if full.shape() == target {
        return full;
    }
    let mut r = full.view().to_owned();
    while r.ndim() > target.len() {
        r = r.sum_axis(Axis(0));
    }
    for (ax, &len) in target.iter().enumerate() {
        if len == 1 && r.shape()[ax] != 1 {
            r = r.sum_axis(Axis(ax)).insert_axis(Axis(ax));
        }
    }
    // Hand back a pooled buffer (and recycle the full-size one), so the tape's buffers all
    // stay in the pool's cycle.
    ctx.recycle(full);
    let mut out = ctx.alloc(target);
    out.assign(&r);
    out
}
