//! Convolutions on the tape: conv2d (the encoder's downsampling) and conv_transpose2d (the
//! decoder's upsampling). The arithmetic lives in `kernels` ([`kernels::conv2d`], whose
//! [`Conv2dAlgo`] picks the implementation; [`kernels::conv_transpose2d`] is the same
//! convolution run backwards); this file checks shapes, records the node, and routes
//! gradients to x, w and b. Both nodes hold one [`Conv2dGeometry`]: a transposed convolution
//! keeps the geometry of the convolution it is the adjoint of.
//!
//! A model runs each convolution with the activation after it as one op
//! ([`super::fused`]); the ops here are the plain ones, each gradient from its own kernel.

use super::{rank, x_w_b, B, W, X};
use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec, Epilogue};
use kernels::conv_transpose2d::{self, ConvTranspose2dSpec};

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
        let geom = self.conv2d_geometry(x, w, stride, pad)?;
        let algo = self.conv_algo();
        let node = Conv2d { geom, algo };
        self.record_conv(
            "conv2d",
            node,
            geom.output_shape(),
            (x, w, b),
            |x, w, bias, y| {
                conv2d::forward_with(&geom, algo, x, w, Epilogue { bias, act: None }, y)
            },
        )
    }
}

/// A conv2d node.
///
/// # Shapes
/// x (N, C_in, H, W) · w (C_out, C_in, KH, KW) · b (C_out) → y (N, C_out, OH, OW),
/// with OH = (H + 2·pad − KH) / stride + 1.
///
/// # Gradients
/// * ∂L/∂x: the transposed convolution of ∂L/∂y with the same w
/// * ∂L/∂w = Σ over the batch of the input correlated with ∂L/∂y
/// * ∂L/∂b = ∂L/∂y summed over N, OH and OW
///
/// Backward needs only x and w, which the tape already holds as this node's inputs.
#[derive(Debug)]
pub struct Conv2d {
    geom: Conv2dGeometry,
    algo: Conv2dAlgo,
}

impl Backward for Conv2d {
    fn macs(&self) -> u128 {
        self.geom.macs() as u128
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (g, algo) = (&self.geom, self.algo);
        let (x, w, d_y) = (ctx.input_slice(X), ctx.input_slice(W), ctx.d_y_slice());
        Ok([
            ctx.grad_for(X, &g.input_shape(), |d_x| {
                conv2d::backward_input(g, algo, d_y, w, d_x)
            }),
            ctx.grad_for(W, &g.weight_shape(), |d_w| {
                conv2d::backward_weight(g, algo, x, d_y, d_w)
            }),
            ctx.grad_for(B, &g.bias_shape(), |d_b| conv2d::backward_bias(g, d_y, d_b)),
        ]
        .into())
    }
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
        let adj = self.conv_transpose2d_adjoint(x, w, stride, pad, output_padding)?;
        let algo = self.conv_algo();
        let node = ConvTranspose2d { adj, algo };
        let op = "conv_transpose2d";
        self.record_conv(op, node, adj.input_shape(), (x, w, b), |x, w, bias, y| {
            conv_transpose2d::forward_with(&adj, algo, x, w, Epilogue { bias, act: None }, y)
        })
    }
}

/// A conv_transpose2d node, holding the geometry of its adjoint convolution `adj` (from this
/// layer's output back to its input; see [`conv_transpose2d::adjoint`]).
///
/// # Shapes
/// x (N, C_in, H, W) · w (C_in, C_out, KH, KW) · b (C_out) → y (N, C_out, OH, OW), with
/// OH = (H − 1)·stride − 2·pad + KH + output_padding; x is `adj`'s output, y its input.
///
/// # Gradients
/// * ∂L/∂x: the ordinary convolution of ∂L/∂y with the same w (`adj`'s forward)
/// * ∂L/∂w = Σ over the batch of ∂L/∂y correlated with x (`adj`'s weight gradient, roles swapped)
/// * ∂L/∂b = ∂L/∂y summed over N, OH and OW
#[derive(Debug)]
pub struct ConvTranspose2d {
    adj: Conv2dGeometry,
    algo: Conv2dAlgo,
}

impl Backward for ConvTranspose2d {
    fn macs(&self) -> u128 {
        self.adj.macs() as u128
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (adj, algo) = (&self.adj, self.algo);
        let (x, w, d_y) = (ctx.input_slice(X), ctx.input_slice(W), ctx.d_y_slice());
        Ok([
            ctx.grad_for(X, &adj.output_shape(), |d_x| {
                conv_transpose2d::backward_input(adj, algo, d_y, w, d_x)
            }),
            ctx.grad_for(W, &adj.weight_shape(), |d_w| {
                conv_transpose2d::backward_weight(adj, algo, x, d_y, d_w)
            }),
            ctx.grad_for(B, &[adj.spec().c_in], |d_b| {
                conv_transpose2d::backward_bias(adj, d_y, d_b)
            }),
        ]
        .into())
    }
}

/// What both convolution ops, plain and fused, check and record alike.
impl Graph {
    /// The geometry of conv2d(x, w) with this stride and padding, every size checked.
    pub(super) fn conv2d_geometry(
        &self,
        x: Var,
        w: Var,
        stride: usize,
        pad: usize,
    ) -> Result<Conv2dGeometry> {
        let ([n, c_in, h_in, w_in], [c_out, _, kh, kw]) = self.conv_operands("conv2d", x, w, 1)?;
        Ok(Conv2dGeometry::new(Conv2dSpec {
            n,
            c_in,
            h_in,
            w_in,
            c_out,
            kh,
            kw,
            stride,
            pad,
        })?)
    }

    /// The geometry of the convolution that conv_transpose2d(x, w) is the adjoint of.
    pub(super) fn conv_transpose2d_adjoint(
        &self,
        x: Var,
        w: Var,
        stride: usize,
        pad: usize,
        output_padding: usize,
    ) -> Result<Conv2dGeometry> {
        let ([n, c_in, h_in, w_in], [_, c_out, kh, kw]) =
            self.conv_operands("conv_transpose2d", x, w, 0)?;
        Ok(conv_transpose2d::adjoint(ConvTranspose2dSpec {
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
        })?)
    }

    /// Checks x and w are 4-D and that x's channels match w's axis `w_axis`; returns both shapes.
    pub(super) fn conv_operands(
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

    /// Checks the bias against C_out, runs `forward(x, w, b, y)` into a fresh (N, C_out, OH, OW)
    /// output and records `node`.
    pub(super) fn record_conv(
        &mut self,
        op: &'static str,
        node: impl Backward + 'static,
        y_shape: [usize; 4],
        (x, w, b): (Var, Var, Option<Var>),
        forward: impl FnOnce(&[f32], &[f32], Option<&[f32]>, &mut [f32]),
    ) -> Result<Var> {
        let c_out = y_shape[1];
        if let Some(b) = b {
            self.live(&[b])?;
            if self.shape(b) != [c_out] {
                return Err(Error::shape(
                    op,
                    format!("bias must be [{c_out}], it is {:?}", self.shape(b)),
                ));
            }
        }
        let mut y = self.alloc(&y_shape);
        forward(
            self.data(x),
            self.data(w),
            b.map(|b| self.data(b)),
            as_slice_mut(&mut y),
        );
        let (inputs, n) = x_w_b(x, w, b);
        Ok(self.record(node, &inputs[..n], y))
    }
}
