//! Convolutions on the tape: conv2d (the encoder's downsampling) and conv_transpose2d (the
//! decoder's upsampling). The arithmetic lives in `kernels`; this file checks shapes, records
//! the node, and routes gradients to x, w and b.

use super::rank;
use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Graph, Var};
use crate::error::{Error, Result};
use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::conv_transpose2d::{self as convt, ConvTranspose2dGeometry, ConvTranspose2dSpec};
use ndarray::ArrayD;

/// Cross-correlates `x` with `w`, then adds `b` to every output channel.
///
/// # Shapes
/// x (N, C_in, H, W) · w (C_out, C_in, KH, KW) · b (C_out) → y (N, C_out, OH, OW),
/// with OH = (H + 2·pad − KH) / stride + 1, and OW likewise.
///
/// # Gradients
/// * ∂L/∂x = transposed convolution of ∂L/∂y with the same w, stride and pad
/// * ∂L/∂w = Σ over the batch of x correlated with ∂L/∂y
/// * ∂L/∂b = ∂L/∂y summed over N, OH and OW
///
/// Backward needs only x and w, which the tape already holds as this node's inputs.
#[derive(Debug)]
pub struct Conv2d {
    geom: Conv2dGeometry,
    algo: Conv2dAlgo,
}

/// Checks that an optional bias is a vector of `channels` numbers.
fn check_bias(g: &Graph, op: &'static str, b: Option<Var>, channels: usize) -> Result<()> {
    match b {
        Some(b) if g.shape(b) != [channels] => Err(Error::shape(
            op,
            format!("bias must be [{channels}], it is {:?}", g.shape(b)),
        )),
        _ => Ok(()),
    }
}

impl Graph {
    /// 2-D convolution with square stride and padding.
    ///
    /// # Errors
    /// [`Error::Shape`] when x or w is not 4-D, their channel counts differ, the bias is not
    /// (C_out), or the kernel does not fit the padded input.
    pub fn conv2d(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
    ) -> Result<Var> {
        rank("conv2d", "the input x", self.shape(x), 4)?;
        rank("conv2d", "the weight w", self.shape(w), 4)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs[1] != ws[1] {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "input has {} channels but the kernel expects {} (x {xs:?}, w {ws:?})",
                    xs[1], ws[1]
                ),
            ));
        }
        let spec = Conv2dSpec {
            n: xs[0],
            c_in: xs[1],
            h_in: xs[2],
            w_in: xs[3],
            c_out: ws[0],
            kh: ws[2],
            kw: ws[3],
            stride,
            pad,
        };
        let geom = Conv2dGeometry::new(spec)?;
        check_bias(self, "conv2d", b, spec.c_out)?;
        let algo = self.conv_algo();
        let mut y = self.alloc(&geom.output_shape());
        conv2d::forward(
            &geom,
            algo,
            self.data(x),
            self.data(w),
            b.map(|b| self.data(b)),
            as_slice_mut(&mut y),
        );
        let inputs: Vec<Var> = [Some(x), Some(w), b].into_iter().flatten().collect();
        Ok(self.record(Conv2d { geom, algo }, &inputs, y))
    }
}

impl Backward for Conv2d {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Vec<Option<ArrayD<f32>>>> {
        let (g, algo) = (&self.geom, self.algo);
        let (x, w, d_y) = (ctx.input_slice(0), ctx.input_slice(1), ctx.d_y_slice());
        Ok(vec![
            ctx.grad_for(0, &g.input_shape(), |d_x| {
                conv2d::backward_input(g, algo, d_y, w, d_x)
            }),
            ctx.grad_for(1, &g.weight_shape(), |d_w| {
                conv2d::backward_weight(g, algo, x, d_y, d_w)
            }),
            ctx.grad_for(2, &g.bias_shape(), |d_b| conv2d::backward_bias(g, d_y, d_b)),
        ])
    }
}

/// Transposed convolution: each input pixel scatters a weighted copy of the kernel.
///
/// # Shapes
/// x (N, C_in, H, W) · w (C_in, C_out, KH, KW) · b (C_out) → y (N, C_out, OH, OW),
/// with OH = (H − 1)·stride − 2·pad + KH + output_padding.
///
/// # Gradients
/// * ∂L/∂x = ordinary convolution of ∂L/∂y with the same w
/// * ∂L/∂w = Σ over the batch of ∂L/∂y correlated with x
/// * ∂L/∂b = ∂L/∂y summed over N, OH and OW
#[derive(Debug)]
pub struct ConvTranspose2d {
    geom: ConvTranspose2dGeometry,
    algo: Conv2dAlgo,
}

impl Graph {
    /// 2-D transposed convolution, PyTorch's `conv_transpose2d`.
    ///
    /// # Errors
    /// [`Error::Shape`] when x or w is not 4-D, x's channels differ from w's first axis, the
    /// bias is not (C_out), or `output_padding` is not smaller than the stride.
    pub fn conv_transpose2d(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
        output_padding: usize,
    ) -> Result<Var> {
        rank("conv_transpose2d", "the input x", self.shape(x), 4)?;
        rank("conv_transpose2d", "the weight w", self.shape(w), 4)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs[1] != ws[0] {
            return Err(Error::shape(
                "conv_transpose2d",
                format!(
                    "input has {} channels but the kernel expects {} (x {xs:?}, w {ws:?})",
                    xs[1], ws[0]
                ),
            ));
        }
        let spec = ConvTranspose2dSpec {
            n: xs[0],
            c_in: xs[1],
            h_in: xs[2],
            w_in: xs[3],
            c_out: ws[1],
            kh: ws[2],
            kw: ws[3],
            stride,
            pad,
            output_padding,
        };
        let geom = ConvTranspose2dGeometry::new(spec)?;
        check_bias(self, "conv_transpose2d", b, spec.c_out)?;
        let algo = self.conv_algo();
        let mut y = self.alloc(&geom.output_shape());
        convt::forward(
            &geom,
            algo,
            self.data(x),
            self.data(w),
            b.map(|b| self.data(b)),
            as_slice_mut(&mut y),
        );
        let inputs: Vec<Var> = [Some(x), Some(w), b].into_iter().flatten().collect();
        Ok(self.record(ConvTranspose2d { geom, algo }, &inputs, y))
    }
}

impl Backward for ConvTranspose2d {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Vec<Option<ArrayD<f32>>>> {
        let (g, algo) = (&self.geom, self.algo);
        let (x, w, d_y) = (ctx.input_slice(0), ctx.input_slice(1), ctx.d_y_slice());
        Ok(vec![
            ctx.grad_for(0, &g.input_shape(), |d_x| {
                convt::backward_input(g, algo, d_y, w, d_x)
            }),
            ctx.grad_for(1, &g.weight_shape(), |d_w| {
                convt::backward_weight(g, algo, x, d_y, d_w)
            }),
            ctx.grad_for(2, &g.bias_shape(), |d_b| convt::backward_bias(g, d_y, d_b)),
        ])
    }
}
