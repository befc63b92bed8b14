//! Max-pooling and nearest-neighbour upsampling on the tape.

use super::rank;
use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use kernels::pool::{self, MaxPool2dGeometry};

/// Keeps the largest value of each window.
///
/// # Shapes
/// x (N, C, H, W) → y (N, C, OH, OW), OH = (H − K)/stride + 1.
///
/// # Gradients
/// ∂L/∂x is zero except at each window's winner, which receives that window's ∂L/∂y. Forward
/// records the winners (`argmax`); backward only scatters.
#[derive(Debug)]
pub struct MaxPool2d {
    geom: MaxPool2dGeometry,
    argmax: Vec<u32>,
}

impl Graph {
    /// K×K max-pooling with the given stride (no padding).
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not 4-D or the window does not fit.
    pub fn max_pool2d(&mut self, x: Var, kernel: usize, stride: usize) -> Result<Var> {
        self.live(&[x])?;
        rank("max_pool2d", "the input x", self.shape(x), 4)?;
        let s = self.shape(x).to_vec();
        let geom = MaxPool2dGeometry::new(s[0] * s[1], s[2], s[3], kernel, stride)?;
        let mut y = self.alloc(&[s[0], s[1], geom.h_out, geom.w_out]);
        let mut argmax = vec![0u32; y.len()];
        pool::max_pool2d_forward(&geom, self.data(x), as_slice_mut(&mut y), &mut argmax);
        Ok(self.record(MaxPool2d { geom, argmax }, &[x], y))
    }
}

impl Backward for MaxPool2d {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (shape, d_y) = (ctx.input_shape(0), ctx.d_y_slice());
        Ok([ctx.grad_for(0, shape, |d_x| {
            pool::max_pool2d_backward(&self.geom, d_y, &self.argmax, d_x)
        })]
        .into())
    }
}

/// Repeats each pixel into a scale×scale block.
///
/// # Shapes
/// x (N, C, H, W) → y (N, C, H·scale, W·scale).
///
/// # Gradients
/// ∂L/∂x sums ∂L/∂y over each block (the pixel was copied to all of them).
#[derive(Debug)]
pub struct UpsampleNearest2d {
    scale: usize,
}

impl Graph {
    /// Nearest-neighbour upsampling by an integer factor.
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not 4-D or the scale is 0.
    pub fn upsample_nearest2d(&mut self, x: Var, scale: usize) -> Result<Var> {
        self.live(&[x])?;
        rank("upsample_nearest2d", "the input x", self.shape(x), 4)?;
        if scale == 0 {
            return Err(Error::shape(
                "upsample_nearest2d",
                "the scale must be at least 1",
            ));
        }
        let s = self.shape(x).to_vec();
        let mut y = self.alloc(&[s[0], s[1], s[2] * scale, s[3] * scale]);
        pool::upsample_nearest2d_forward(
            s[0] * s[1],
            s[2],
            s[3],
            scale,
            self.data(x),
            as_slice_mut(&mut y),
        );
        Ok(self.record(UpsampleNearest2d { scale }, &[x], y))
    }
}

impl Backward for UpsampleNearest2d {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (s, d_y) = (ctx.input_shape(0), ctx.d_y_slice());
        Ok([ctx.grad_for(0, s, |d_x| {
            pool::upsample_nearest2d_backward(s[0] * s[1], s[2], s[3], self.scale, d_y, d_x)
        })]
        .into())
    }
}
