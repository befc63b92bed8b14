//! Shape ops: reshape (flatten, unflatten), slice and concat.
//!
//! They move numbers without changing them, so their backward passes move gradients back the
//! same way: reshape the gradient back; put a slice's gradient into a zero tensor at the place
//! it came from; cut a concatenation's gradient into the pieces that were joined. A VAE's
//! encoder ends in one linear layer of 2·z outputs, and `slice` splits it into μ and log σ².

use crate::autodiff::graph::{Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use ndarray::{Axis, Slice};

/// Reshape on the tape: same numbers, same order, new shape.
///
/// # Shapes
/// x (…) → y (`shape`), with the same number of elements.
#[derive(Debug)]
pub struct Reshape;

impl Graph {
    /// Gives `x` a new shape with the same number of elements (row-major order is kept).
    ///
    /// # Errors
    /// [`Error::Shape`] when the element counts differ.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        self.live(&[x])?;
        let from = self.shape(x).to_vec();
        if from.iter().product::<usize>() != shape.iter().product::<usize>() {
            return Err(Error::shape(
                "reshape",
                format!("cannot reshape {from:?} into {shape:?}: element counts differ"),
            ));
        }
        let mut y = self.alloc(shape);
        kernels::elementwise::copy(self.data(x), crate::autodiff::graph::as_slice_mut(&mut y));
        Ok(self.record(Reshape, &[x], y))
    }

    /// (N, d₁, d₂, …) → (N, d₁·d₂·…): what sits between a conv encoder and its linear layers.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` has no axes.
    pub fn flatten(&mut self, x: Var) -> Result<Var> {
        self.live(&[x])?;
        let shape = self.shape(x).to_vec();
        let Some((&n, rest)) = shape.split_first() else {
            return Err(Error::shape("flatten", "cannot flatten a scalar"));
        };
        self.reshape(x, &[n, rest.iter().product()])
    }
}

impl Backward for Reshape {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let mut d_x = ctx.alloc_like_input(0);
        kernels::elementwise::copy(
            ctx.d_y_slice(),
            crate::autodiff::graph::as_slice_mut(&mut d_x),
        );
        Ok([Some(d_x)].into())
    }
}

/// A contiguous range along one axis.
///
/// # Shapes
/// x (… dₖ …) → y (… end−start …).
#[derive(Debug)]
pub struct SliceAxis {
    axis: usize,
    start: usize,
    end: usize,
}

impl Graph {
    /// Elements `start..end` along `axis`.
    ///
    /// # Errors
    /// [`Error::Shape`] when the axis or range is out of bounds or empty.
    pub fn slice(&mut self, x: Var, axis: usize, start: usize, end: usize) -> Result<Var> {
        self.live(&[x])?;
        let shape = self.shape(x).to_vec();
        if axis >= shape.len() || start >= end || end > shape[axis] {
            return Err(Error::shape(
                "slice",
                format!("range {start}..{end} along axis {axis} does not fit shape {shape:?}"),
            ));
        }
        let mut out_shape = shape;
        out_shape[axis] = end - start;
        let mut y = self.alloc(&out_shape);
        y.assign(
            &self
                .value(x)
                .slice_axis(Axis(axis), Slice::from(start..end)),
        );
        Ok(self.record(SliceAxis { axis, start, end }, &[x], y))
    }
}

impl Backward for SliceAxis {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let mut d_x = ctx.alloc_like_input(0);
        d_x.fill(0.0);
        d_x.slice_axis_mut(Axis(self.axis), Slice::from(self.start..self.end))
            .assign(ctx.d_y());
        Ok([Some(d_x)].into())
    }
}

/// Joins tensors along one axis.
///
/// # Shapes
/// xᵢ (… dᵢ …), equal except along `axis` → y (… Σdᵢ …).
#[derive(Debug)]
pub struct Concat {
    axis: usize,
    lens: Vec<usize>,
}

impl Graph {
    /// Concatenates `xs` along `axis`.
    ///
    /// # Errors
    /// [`Error::Shape`] for an empty list, or shapes that differ off the axis.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        self.live(xs)?;
        let Some(&first) = xs.first() else {
            return Err(Error::shape("concat", "nothing to concatenate"));
        };
        let mut out_shape = self.shape(first).to_vec();
        if axis >= out_shape.len() {
            return Err(Error::shape(
                "concat",
                format!("axis {axis} does not exist in shape {out_shape:?}"),
            ));
        }
        let mut lens = Vec::with_capacity(xs.len());
        for &x in xs {
            let s = self.shape(x);
            let off_axis_equal = s.len() == out_shape.len()
                && s.iter()
                    .zip(&out_shape)
                    .enumerate()
                    .all(|(k, (a, b))| k == axis || a == b);
            if !off_axis_equal {
                return Err(Error::shape(
                    "concat",
                    format!("shape {s:?} does not match {out_shape:?} off axis {axis}"),
                ));
            }
            lens.push(s[axis]);
        }
        out_shape[axis] = lens.iter().sum();
        let mut y = self.alloc(&out_shape);
        let mut start = 0;
        for (&x, &len) in xs.iter().zip(&lens) {
            y.slice_axis_mut(Axis(axis), Slice::from(start..start + len))
                .assign(&self.value(x));
            start += len;
        }
        Ok(self.record(Concat { axis, lens }, xs, y))
    }
}

impl Backward for Concat {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let mut start = 0;
        let mut grads = Vec::with_capacity(self.lens.len());
        for (i, &len) in self.lens.iter().enumerate() {
            let piece = ctx
                .d_y()
                .slice_axis(Axis(self.axis), Slice::from(start..start + len));
            start += len;
            if ctx.needs(i) {
                let mut d_x = ctx.alloc_like_input(i);
                d_x.assign(&piece);
                grads.push(Some(d_x));
            } else {
                grads.push(None);
            }
        }
        Ok(grads.into())
    }
}
