//! Convolutions on the tape: conv2d (the encoder's downsampling) and conv_transpose2d (the
//! decoder's upsampling). The arithmetic lives in `kernels`; this file checks shapes, records
//! the node, and routes gradients to x, w and b. Both ops share one node type, [`Conv`],
//! generic over the kernels' [`ConvLike`] geometry.

use super::rank;
use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Graph, Var};
use crate::error::{Error, Result};
use kernels::conv2d::{Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::conv_like::ConvLike;
use kernels::conv_transpose2d::{ConvTranspose2dGeometry, ConvTranspose2dSpec};
use ndarray::ArrayD;

/// A convolution-like node: conv2d or conv_transpose2d, by its geometry.
///
/// # Shapes
/// conv2d: x (N, C_in, H, W) · w (C_out, C_in, KH, KW) · b (C_out) → y (N, C_out, OH, OW),
/// with OH = (H + 2·pad − KH) / stride + 1.
/// conv_transpose2d: x (N, C_in, H, W) · w (C_in, C_out, KH, KW) · b (C_out) → y (N, C_out, OH, OW),
/// with OH = (H − 1)·stride − 2·pad + KH + output_padding.
///
/// # Gradients
/// * ∂L/∂x: for conv2d, the transposed convolution of ∂L/∂y with the same w; for
///   conv_transpose2d, the ordinary convolution
/// * ∂L/∂w = Σ over the batch of the input correlated with ∂L/∂y (roles swapped for the transpose)
/// * ∂L/∂b = ∂L/∂y summed over N, OH and OW
///
/// Backward needs only x and w, which the tape already holds as this node's inputs.
#[derive(Debug)]
pub struct Conv<G: ConvLike> {
    geom: G,
    algo: Conv2dAlgo,
}

impl Graph {
    /// Checks x and w are 4-D and that x's channels match w's axis `w_axis`; returns both shapes.
    fn conv_operands(
        &self,
        op: &'static str,
        x: Var,
        w: Var,
        w_axis: usize,
    ) -> Result<([usize; 4], [usize; 4])> {
        self.live(&[x, w])?;
        rank(op, "the input x", self.shape(x), 4)?;
        rank(op, "the weight w", self.shape(w), 4)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs[1] != ws[w_axis] {
            return Err(Error::shape(
                op,
                format!(
                    "input has {} channels but the kernel expects {} (x {xs:?}, w {ws:?})",
                    xs[1], ws[w_axis]
                ),
            ));
        }
        Ok(([xs[0], xs[1], xs[2], xs[3]], [ws[0], ws[1], ws[2], ws[3]]))
    }

    /// Runs the forward kernel of `geom` and records the node.
    fn record_conv<G: ConvLike>(&mut self, geom: G, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        let [c_out] = geom.bias_shape();
        if let Some(b) = b {
            self.live(&[b])?;
            if self.shape(b) != [c_out] {
                return Err(Error::shape(
                    G::OP,
                    format!("bias must be [{c_out}], it is {:?}", self.shape(b)),
                ));
            }
        }
        let algo = self.conv_algo();
        let mut y = self.alloc(&geom.output_shape());
        geom.forward(
            algo,
            self.data(x),
            self.data(w),
            b.map(|b| self.data(b)),
            as_slice_mut(&mut y),
        );
        let inputs: Vec<Var> = [Some(x), Some(w), b].into_iter().flatten().collect();
        Ok(self.record(Conv { geom, algo }, &inputs, y))
    }

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
        let ([n, c_in, h_in, w_in], [c_out, _, kh, kw]) = self.conv_operands("conv2d", x, w, 1)?;
        let geom = Conv2dGeometry::new(Conv2dSpec {
            n,
            c_in,
            h_in,
            w_in,
            c_out,
            kh,
            kw,
            stride,
            pad,
        })?;
        self.record_conv(geom, x, w, b)
    }

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
        let ([n, c_in, h_in, w_in], [_, c_out, kh, kw]) =
            self.conv_operands("conv_transpose2d", x, w, 0)?;
        let spec = ConvTranspose2dSpec {
            n,
            c_in,
            h_in,
            w_in,
            c_out,
            kh,
            kw,
            stride,
            pad,
            output_padding,
        };
        let geom = ConvTranspose2dGeometry::new(spec)?;
        self.record_conv(geom, x, w, b)
    }
}

impl<G: ConvLike> Backward for Conv<G> {
    fn macs(&self) -> u128 {
        self.geom.macs() as u128
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Vec<Option<ArrayD<f32>>>> {
        let (g, algo) = (&self.geom, self.algo);
        let (x, w, d_y) = (ctx.input_slice(0), ctx.input_slice(1), ctx.d_y_slice());
        Ok(vec![
            ctx.grad_for(0, &g.input_shape(), |d_x| {
                g.backward_input(algo, d_y, w, d_x)
            }),
            ctx.grad_for(1, &g.weight_shape(), |d_w| {
                g.backward_weight(algo, x, d_y, d_w)
            }),
            ctx.grad_for(2, &g.bias_shape(), |d_b| g.backward_bias(d_y, d_b)),
        ])
    }
}
