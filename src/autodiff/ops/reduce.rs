//! Sums and means, over everything or along one axis.
//!
//! A loss is a mean over pixels and images, so every training step ends in one of these.
//!
//! # Gradients
//! Each input element contributes once to its sum, so ∂(Σx)/∂xᵢ = 1 and ∂L/∂x is ∂L/∂y
//! copied back (broadcast) over the reduced axis; a mean divides that by the count.

use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use ndarray::Axis;

/// A sum or mean on the tape.
///
/// # Shapes
/// all: x (…) → y () a scalar; along `axis`: x (d₀ … dₖ …) → y with dₖ removed, or kept as 1
/// with `keep_dim`.
#[derive(Debug)]
pub struct Reduce {
    axis: Option<usize>,
    mean: bool,
}

impl Graph {
    /// Σ x over every element → a scalar.
    pub fn sum(&mut self, x: Var) -> Result<Var> {
        self.reduce_all(x, false)
    }

    /// The mean of every element → a scalar.
    pub fn mean(&mut self, x: Var) -> Result<Var> {
        self.reduce_all(x, true)
    }

    fn reduce_all(&mut self, x: Var, mean: bool) -> Result<Var> {
        self.live(&[x])?;
        let count = self.value(x).len();
        if count == 0 {
            return Err(Error::shape("sum", "cannot reduce an empty tensor"));
        }
        let total = kernels::reduce::sum(self.data(x));
        let mut y = self.alloc(&[]);
        y.fill(if mean {
            (total / count as f64) as f32
        } else {
            total as f32
        });
        Ok(self.record(Reduce { axis: None, mean }, &[x], y))
    }

    /// Σ x along `axis`; the axis is removed unless `keep_dim`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `axis` is out of range.
    pub fn sum_axis(&mut self, x: Var, axis: usize, keep_dim: bool) -> Result<Var> {
        self.reduce_axis(x, axis, keep_dim, false)
    }

    /// The mean along `axis`; the axis is removed unless `keep_dim`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `axis` is out of range.
    pub fn mean_axis(&mut self, x: Var, axis: usize, keep_dim: bool) -> Result<Var> {
        self.reduce_axis(x, axis, keep_dim, true)
    }

    fn reduce_axis(&mut self, x: Var, axis: usize, keep_dim: bool, mean: bool) -> Result<Var> {
        self.live(&[x])?;
        let shape = self.shape(x).to_vec();
        if axis >= shape.len() {
            return Err(Error::shape(
                "sum_axis",
                format!("axis {axis} does not exist in shape {shape:?}"),
            ));
        }
        let (outer, len, inner): (usize, usize, usize) = (
            shape[..axis].iter().product(),
            shape[axis],
            shape[axis + 1..].iter().product(),
        );
        let mut out_shape = shape.clone();
        if keep_dim {
            out_shape[axis] = 1;
        } else {
            out_shape.remove(axis);
        }
        let mut y = self.alloc(&out_shape);
        kernels::reduce::sum_axis(self.data(x), outer, len, inner, as_slice_mut(&mut y));
        if mean && len > 0 {
            y.mapv_inplace(|v| v / len as f32);
        }
        Ok(self.record(
            Reduce {
                axis: Some(axis),
                mean,
            },
            &[x],
            y,
        ))
    }
}

impl Backward for Reduce {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let x_shape = ctx.input_shape(0);
        let d_y = ctx.d_y();
        let mut d_x = ctx.alloc(x_shape);
        let count = match self.axis {
            None => x_shape.iter().product::<usize>(),
            Some(axis) => x_shape[axis],
        };
        let scale = if self.mean { 1.0 / count as f32 } else { 1.0 };
        match self.axis {
            None => d_x.fill(d_y.iter().next().copied().unwrap_or(0.0) * scale),
            Some(axis) => {
                // View ∂L/∂y with the reduced axis as length 1 (it may have been removed), then
                // broadcast it along that axis.
                let mut kept = x_shape.to_vec();
                kept[axis] = 1;
                let d_y = d_y
                    .view()
                    .into_shape_with_order(kept)
                    .map_err(|e| Error::shape("sum_axis", e.to_string()))?;
                for mut lane in d_x.axis_iter_mut(Axis(axis)) {
                    lane.assign(&d_y.index_axis(Axis(axis), 0));
                    lane.mapv_inplace(|v| v * scale);
                }
            }
        }
        Ok([Some(d_x)].into())
    }
}
