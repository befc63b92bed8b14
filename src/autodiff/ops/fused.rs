//! Fused ops: a layer and the activation after it as one node, for speed. Read the plain ops
//! first ([`super::conv`], [`super::linear`], [`super::activation`]); these compute the same
//! numbers.
//!
//! A model's layers are nearly all "product, then activation": y = f(conv(x, w) + b) or
//! f(x·wᵀ + b). Run as two ops, the product's output is written to memory, read back by the
//! activation and written again, and the tape keeps both tensors. Fused, the kernel applies
//! the bias and f to each block of the output while it is still in cache ([`Epilogue`]), and
//! the tape keeps only y. Backward does not need the product's own output either: for every
//! activation but a leaky ReLU with a negative slope, f′ can be read off y itself (sigmoid:
//! y·(1 − y)), so ∂L/∂(product) = ∂L/∂y ⊙ f′ is computed first (`before_activation`) and the
//! plain op's gradients follow from it. An activation whose output does not decide its
//! derivative runs as a separate op instead.
//!
//! Two more savings live here. A convolution's input and weight gradients both read ∂L/∂y:
//! when both are wanted, one kernel call gathers it once for the two (`both_or_each`). And a
//! linear layer between a Flatten and an Unflatten reads and writes through them
//! ([`Graph::linear_flat`]), so neither reshape copies the batch.

use super::linear::{linear_grads, LinearDims};
use super::{rank, x_w_b, B, W, X};
use crate::autodiff::graph::{as_slice, as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::Result;
use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Epilogue};
use kernels::conv_transpose2d;
use kernels::elementwise::Activation;
use ndarray::ArrayD;

impl Graph {
    /// act(conv2d(x, w, b)) as one op (`act` `None`: the convolution alone, with its two
    /// gradients from one call). The activation is applied to each block of the output while
    /// the convolution still has it in cache, and the tape keeps only the activated output.
    ///
    /// # Errors
    /// As [`Graph::conv2d`].
    pub fn conv2d_then(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
        act: Option<Activation>,
    ) -> Result<Var> {
        if let Some(act) = act.filter(|a| !a.output_decides_derivative()) {
            let y = self.conv2d(x, w, b, stride, pad)?;
            return self.activation(y, act);
        }
        let geom = self.conv2d_geometry(x, w, stride, pad)?;
        let algo = self.conv_algo();
        let node = Conv2dThen { geom, algo, act };
        self.record_conv(
            "conv2d",
            node,
            geom.output_shape(),
            (x, w, b),
            |x, w, bias, y| conv2d::forward_with(&geom, algo, x, w, Epilogue { bias, act }, y),
        )
    }
}

/// A fused op's name in traces: the product, then the activation it applies in the same
/// pass ("Linear + selu"), which `explain` lists as a layer of its own.
fn with_activation(product: &str, act: Option<Activation>) -> String {
    match act {
        Some(a) => format!("{product} + {a}"),
        None => product.to_string(),
    }
}

/// act(conv2d(x, w, b)): a [`Conv2d`](super::conv::Conv2d) with an activation fused into its output.
///
/// # Gradients
/// As [`Conv2d`](super::conv::Conv2d)'s, from ∂L/∂(conv2d(x, w, b)) = ∂L/∂y ⊙ f′, with f′ read off y.
#[derive(Debug)]
pub struct Conv2dThen {
    geom: Conv2dGeometry,
    algo: Conv2dAlgo,
    act: Option<Activation>,
}

impl Backward for Conv2dThen {
    fn macs(&self) -> u128 {
        self.geom.macs() as u128
    }

    fn label(&self) -> Option<String> {
        Some(with_activation("Conv2d", self.act))
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (g, algo) = (&self.geom, self.algo);
        let (x, w) = (ctx.input_slice(X), ctx.input_slice(W));
        let shapes = [g.input_shape(), g.weight_shape()];
        Ok(conv_backward(
            ctx,
            self.act,
            (&shapes[0], &shapes[1], &g.bias_shape()),
            |d_y, d_x, d_w| conv2d::backward_input_and_weight(g, algo, x, d_y, w, d_x, d_w),
            |d_y, d_x| conv2d::backward_input(g, algo, d_y, w, d_x),
            |d_y, d_w| conv2d::backward_weight(g, algo, x, d_y, d_w),
            |d_y, d_b| conv2d::backward_bias(g, d_y, d_b),
        ))
    }
}

impl Graph {
    /// act(conv_transpose2d(x, w, b)) as one op, as [`Graph::conv2d_then`] is for conv2d.
    ///
    /// # Errors
    /// As [`Graph::conv_transpose2d`].
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose2d_then(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
        output_padding: usize,
        act: Option<Activation>,
    ) -> Result<Var> {
        if let Some(act) = act.filter(|a| !a.output_decides_derivative()) {
            let y = self.conv_transpose2d(x, w, b, stride, pad, output_padding)?;
            return self.activation(y, act);
        }
        let adj = self.conv_transpose2d_adjoint(x, w, stride, pad, output_padding)?;
        let (algo, op) = (self.conv_algo(), "conv_transpose2d");
        let node = ConvTranspose2dThen { adj, algo, act };
        self.record_conv(op, node, adj.input_shape(), (x, w, b), |x, w, bias, y| {
            conv_transpose2d::forward_with(&adj, algo, x, w, Epilogue { bias, act }, y)
        })
    }
}

/// act(conv_transpose2d(x, w, b)): a [`ConvTranspose2d`](super::conv::ConvTranspose2d) with an activation fused in.
///
/// # Gradients
/// As [`ConvTranspose2d`](super::conv::ConvTranspose2d)'s, from ∂L/∂y ⊙ f′.
#[derive(Debug)]
pub struct ConvTranspose2dThen {
    adj: Conv2dGeometry,
    algo: Conv2dAlgo,
    act: Option<Activation>,
}

impl Backward for ConvTranspose2dThen {
    fn macs(&self) -> u128 {
        self.adj.macs() as u128
    }

    fn label(&self) -> Option<String> {
        Some(with_activation("ConvTranspose2d", self.act))
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (adj, algo) = (&self.adj, self.algo);
        let (x, w) = (ctx.input_slice(X), ctx.input_slice(W));
        let shapes = [adj.output_shape(), adj.weight_shape()];
        Ok(conv_backward(
            ctx,
            self.act,
            (&shapes[0], &shapes[1], &[adj.spec().c_in]),
            |d_y, d_x, d_w| {
                conv_transpose2d::backward_input_and_weight(adj, algo, x, d_y, w, d_x, d_w)
            },
            |d_y, d_x| conv_transpose2d::backward_input(adj, algo, d_y, w, d_x),
            |d_y, d_w| conv_transpose2d::backward_weight(adj, algo, x, d_y, d_w),
            |d_y, d_b| conv_transpose2d::backward_bias(adj, d_y, d_b),
        ))
    }
}

/// The backward both fused convolution nodes share: ∂L/∂y is first taken back through the
/// activation ([`before_activation`]), then gives ∂L/∂x and ∂L/∂w (by `both` in one call when
/// both are wanted, else by `only_x` or `only_w`) and ∂L/∂b, for inputs of the given shapes.
/// Every kernel receives that ∂L/∂(the convolution's output) first.
#[allow(clippy::too_many_arguments)]
fn conv_backward(
    ctx: &mut BackwardCtx<'_>,
    act: Option<Activation>,
    (x_shape, w_shape, b_shape): (&[usize], &[usize], &[usize]),
    both: impl FnOnce(&[f32], &mut [f32], &mut [f32]),
    only_x: impl FnOnce(&[f32], &mut [f32]),
    only_w: impl FnOnce(&[f32], &mut [f32]),
    bias: impl FnOnce(&[f32], &mut [f32]),
) -> Grads {
    let before_act = before_activation(ctx, act);
    let d_y = before_act.as_ref().map_or(ctx.d_y_slice(), as_slice);
    let (d_x, d_w) = both_or_each(
        ctx,
        (X, x_shape),
        (W, w_shape),
        |d_x, d_w| both(d_y, d_x, d_w),
        |d_x| only_x(d_y, d_x),
        |d_w| only_w(d_y, d_w),
    );
    let d_b = ctx.grad_for(B, b_shape, |d_b| bias(d_y, d_b));
    if let Some(buffer) = before_act {
        ctx.recycle(buffer);
    }
    [d_x, d_w, d_b].into()
}

/// ∂L/∂(input i) and ∂L/∂(input j), each shaped as given. When both are needed, `both`
/// computes them in one call (for a kernel that shares work between the two); otherwise
/// whichever is needed is computed alone, as by [`BackwardCtx::grad_for`].
fn both_or_each(
    ctx: &mut BackwardCtx<'_>,
    (i, shape_i): (usize, &[usize]),
    (j, shape_j): (usize, &[usize]),
    both: impl FnOnce(&mut [f32], &mut [f32]),
    only_i: impl FnOnce(&mut [f32]),
    only_j: impl FnOnce(&mut [f32]),
) -> (Option<ArrayD<f32>>, Option<ArrayD<f32>>) {
    let wanted = |ctx: &BackwardCtx<'_>, k: usize| k < ctx.inputs_len() && ctx.needs(k);
    if wanted(ctx, i) && wanted(ctx, j) {
        let (mut d_i, mut d_j) = (ctx.alloc(shape_i), ctx.alloc(shape_j));
        both(as_slice_mut(&mut d_i), as_slice_mut(&mut d_j));
        return (Some(d_i), Some(d_j));
    }
    (
        ctx.grad_for(i, shape_i, only_i),
        ctx.grad_for(j, shape_j, only_j),
    )
}

impl Graph {
    /// act(x·wᵀ + b) as one op: the product adds the bias as it stores each tile and applies
    /// the activation to each block of rows while it is in cache
    /// ([`gemm_then`](kernels::gemm::gemm_then)); the tape keeps only the activated output.
    ///
    /// # Errors
    /// As [`Graph::linear`].
    pub fn linear_then(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        act: Option<Activation>,
    ) -> Result<Var> {
        self.live(&[x])?;
        rank("linear", "the input x", self.shape(x), 2)?;
        self.linear_flat(x, w, b, act, None)
    }

    /// [`Graph::linear_then`] of x flattened, with its output in the shape (N, `tail`…):
    /// Flatten → Linear → activation → Unflatten as one op. A reshape keeps every number in
    /// its place, so x (N, …) already *is* the matrix of N rows of its other axes' product,
    /// and the output's rows already are the unflattened samples: the op reads and writes
    /// them where they are, where two reshapes would each copy the batch forward and back.
    /// `tail` `None` gives (N, out).
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) when x has no axis past the batch, its per-sample
    /// size is not w's input size, b is not (out), or `tail` does not hold out values.
    pub fn linear_flat(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        act: Option<Activation>,
        tail: Option<&[usize]>,
    ) -> Result<Var> {
        if let Some(act) = act.filter(|a| !a.output_decides_derivative()) {
            let y = self.linear_flat(x, w, b, None, tail)?;
            return self.activation(y, act);
        }
        let (y, dims) = self.linear_value(x, w, b, act, tail)?;
        let (inputs, n) = x_w_b(x, w, b);
        Ok(self.record(LinearThen { dims, act }, &inputs[..n], y))
    }
}

/// act(x·wᵀ + b), with x and y read through any reshapes around it: a
/// [`Linear`](super::linear::Linear) with an activation fused in.
///
/// # Shapes
/// x (N, …) with `in` values per sample · w (out, in) · b (out) → y (N, out) or (N, tail…).
///
/// # Gradients
/// As `Linear`'s, from ∂L/∂(x·wᵀ + b) = ∂L/∂y ⊙ f′, with f′ read off y.
#[derive(Debug)]
pub struct LinearThen {
    dims: LinearDims,
    act: Option<Activation>,
}

impl Backward for LinearThen {
    fn macs(&self) -> u128 {
        self.dims.macs()
    }

    fn label(&self) -> Option<String> {
        Some(with_activation("Linear", self.act))
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let before_act = before_activation(ctx, self.act);
        let d_y = before_act.as_ref().map_or(ctx.d_y_slice(), as_slice);
        let grads = linear_grads(ctx, d_y, self.dims);
        if let Some(buffer) = before_act {
            ctx.recycle(buffer);
        }
        Ok(grads)
    }
}

/// ∂L/∂(the output before `act`), for a layer that fused `act` into its output: ∂L/∂y ⊙ f′,
/// with f′ read off the output y (which is all the tape keeps). `None` without an activation.
pub(crate) fn before_activation(
    ctx: &mut BackwardCtx<'_>,
    act: Option<Activation>,
) -> Option<ArrayD<f32>> {
    let act = act?;
    let (y, d_y) = (as_slice(ctx.output()), ctx.d_y_slice());
    let mut d_pre = ctx.alloc(ctx.output().shape());
    kernels::elementwise::backward_from_output(act, y, d_y, as_slice_mut(&mut d_pre));
    Some(d_pre)
}
