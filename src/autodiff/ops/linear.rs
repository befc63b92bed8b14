//! Fully connected layers: y = x·wᵀ + b, and the plain matrix product.
//!
//! Every number of the output depends on every number of the input, through its own weight.
//! An MLP autoencoder is nothing but these and activations: 784 → 392 → 8 → 392 → 784.
//!
//! The weight is stored PyTorch's way, (out, in), so checkpoints move between the two.
//!
//! A model runs a linear layer with the activation after it (and the reshapes around it) as
//! one op ([`super::fused`]); the op here is the plain one.

use super::{rank, x_w_b, B, LEFT, RIGHT, W, X};
use crate::autodiff::graph::{as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
use kernels::elementwise::Activation;
use kernels::gemm::{gemm, gemm_then, Epilogue, MatRef};
use ndarray::ArrayD;

impl Graph {
    /// x·wᵀ + b (`b` optional).
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not (N, in), w not (out, in), or b not (out).
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        self.live(&[x])?;
        rank("linear", "the input x", self.shape(x), 2)?;
        let (y, dims) = self.linear_value(x, w, b, None, None)?;
        let (inputs, n) = x_w_b(x, w, b);
        Ok(self.record(Linear { dims }, &inputs[..n], y))
    }
}

/// y = x·wᵀ + b on the tape.
///
/// # Shapes
/// x (N, in) · w (out, in) · b (out) → y (N, out).
///
/// # Gradients
/// * ∂L/∂x = ∂L/∂y · w        (N × out · out × in)
/// * ∂L/∂w = (∂L/∂y)ᵀ · x     (out × N · N × in): each weight sums over the batch
/// * ∂L/∂b = ∂L/∂y summed over the batch
#[derive(Debug)]
pub struct Linear {
    dims: LinearDims,
}

impl Backward for Linear {
    fn macs(&self) -> u128 {
        self.dims.macs()
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let d_y = ctx.d_y_slice();
        Ok(linear_grads(ctx, d_y, self.dims))
    }
}

/// The sizes of one linear layer's product: N samples, `d_in` features in, `d_out` out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LinearDims {
    pub(super) n: usize,
    pub(super) d_in: usize,
    pub(super) d_out: usize,
}

impl LinearDims {
    /// Multiply-adds of the forward product.
    pub(super) fn macs(self) -> u128 {
        (self.n * self.d_in * self.d_out) as u128
    }
}

/// ∂L/∂x, ∂L/∂w and ∂L/∂b of x·wᵀ + b from ∂L/∂(x·wᵀ + b) = `d_y` (the node's own ∂L/∂y, or
/// with an activation fused in, ∂L/∂y ⊙ f′).
pub(super) fn linear_grads(
    ctx: &mut BackwardCtx<'_>,
    d_y: &[f32],
    LinearDims { n, d_in, d_out }: LinearDims,
) -> Grads {
    let (x, w) = (ctx.input_slice(X), ctx.input_slice(W));
    let d_y_mat = MatRef::row_major(d_y, n, d_out);
    [
        // In x's own shape: (N, in), or (N, …) for a flattened input.
        ctx.grad_for(X, ctx.input_shape(X), |d_x| {
            gemm(1.0, d_y_mat, MatRef::row_major(w, d_out, d_in), 0.0, d_x)
        }),
        ctx.grad_for(W, &[d_out, d_in], |d_w| {
            gemm(1.0, d_y_mat.t(), MatRef::row_major(x, n, d_in), 0.0, d_w)
        }),
        ctx.grad_for(B, &[d_out], |d_b| {
            kernels::reduce::sum_axis(d_y, 1, n, d_out, d_b)
        }),
    ]
    .into()
}

impl Graph {
    /// Checks x (N, …), w (out, in) and b (out) against each other and computes
    /// act(x·wᵀ + b) into a buffer of shape (N, out), or (N, `tail`…) when given: what the
    /// plain op and the fused ones ([`super::fused`]) record alike.
    pub(super) fn linear_value(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        act: Option<Activation>,
        tail: Option<&[usize]>,
    ) -> Result<(ArrayD<f32>, LinearDims)> {
        self.live(&[x, w])?;
        if let Some(b) = b {
            self.live(&[b])?;
        }
        rank("linear", "the weight w", self.shape(w), 2)?;
        let Some((&n, features)) = self.shape(x).split_first().filter(|(_, f)| !f.is_empty())
        else {
            return Err(Error::shape(
                "linear",
                format!("input {:?} has no axis past the batch", self.shape(x)),
            ));
        };
        let d_in = features.iter().product();
        let (d_out, w_in) = (self.shape(w)[0], self.shape(w)[1]);
        if d_in != w_in {
            return Err(Error::shape(
                "linear",
                format!(
                    "input has {d_in} features but the weight expects {w_in} (x {:?}, w {:?})",
                    self.shape(x),
                    self.shape(w)
                ),
            ));
        }
        if let Some(b) = b {
            if self.shape(b) != [d_out] {
                return Err(Error::shape(
                    "linear",
                    format!("bias must be [{d_out}], it is {:?}", self.shape(b)),
                ));
            }
        }
        // The output's shape, (N, out) or (N, tail…), on the stack.
        let mut shape = [n, d_out, 0, 0, 0, 0];
        let dims = match tail {
            None => 2,
            Some(t) if t.len() < shape.len() && t.iter().product::<usize>() == d_out => {
                shape[1..=t.len()].copy_from_slice(t);
                1 + t.len()
            }
            Some(t) => {
                return Err(Error::shape(
                    "unflatten",
                    format!("cannot give the {d_out} outputs of a linear layer the shape {t:?}"),
                ))
            }
        };
        let mut y = self.alloc(&shape[..dims]);
        gemm_then(
            MatRef::row_major(self.data(x), n, d_in),
            MatRef::row_major(self.data(w), d_out, d_in).t(),
            Epilogue {
                bias: b.map(|b| self.data(b)),
                act,
            },
            as_slice_mut(&mut y),
        );
        Ok((y, LinearDims { n, d_in, d_out }))
    }
}

/// The matrix product a·b on the tape.
///
/// # Shapes
/// a (m, k) · b (k, n) → y (m, n).
///
/// # Gradients
/// ∂L/∂a = ∂L/∂y · bᵀ, ∂L/∂b = aᵀ · ∂L/∂y.
#[derive(Debug)]
pub struct MatMul {
    m: usize,
    k: usize,
    n: usize,
}

impl Graph {
    /// a·b for two matrices.
    ///
    /// # Errors
    /// [`Error::Shape`] unless a is (m, k) and b is (k, n).
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.live(&[a, b])?;
        rank("matmul", "a", self.shape(a), 2)?;
        rank("matmul", "b", self.shape(b), 2)?;
        let (m, k, k2, n) = (
            self.shape(a)[0],
            self.shape(a)[1],
            self.shape(b)[0],
            self.shape(b)[1],
        );
        if k != k2 {
            return Err(Error::shape(
                "matmul",
                format!(
                    "inner sizes differ: a {:?}, b {:?}",
                    self.shape(a),
                    self.shape(b)
                ),
            ));
        }
        let mut y = self.alloc(&[m, n]);
        gemm(
            1.0,
            MatRef::row_major(self.data(a), m, k),
            MatRef::row_major(self.data(b), k, n),
            0.0,
            as_slice_mut(&mut y),
        );
        Ok(self.record(MatMul { m, k, n }, &[a, b], y))
    }
}

impl Backward for MatMul {
    fn macs(&self) -> u128 {
        (self.m * self.k * self.n) as u128
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let MatMul { m, k, n } = *self;
        let (a, b) = (
            MatRef::row_major(ctx.input_slice(LEFT), m, k),
            MatRef::row_major(ctx.input_slice(RIGHT), k, n),
        );
        let d_y = MatRef::row_major(ctx.d_y_slice(), m, n);
        Ok([
            ctx.grad_for(LEFT, &[m, k], |d_a| gemm(1.0, d_y, b.t(), 0.0, d_a)),
            ctx.grad_for(RIGHT, &[k, n], |d_b| gemm(1.0, a.t(), d_y, 0.0, d_b)),
        ]
        .into())
    }
}
