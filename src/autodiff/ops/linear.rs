//! Fully connected layers: y = x·wᵀ + b, and the plain matrix product.
//!
//! Every number of the output depends on every number of the input, through its own weight.
//! An MLP autoencoder is nothing but these and activations: 784 → 392 → 8 → 392 → 784.
//!
//! The weight is stored PyTorch's way, (out, in), so checkpoints move between the two.

use super::{before_activation, rank, B, LEFT, RIGHT, W, X};
use crate::autodiff::graph::{as_slice, as_slice_mut, Backward, BackwardCtx, Graph, Var};
use crate::error::{Error, Result};
use kernels::elementwise::Activation;
use kernels::gemm::{gemm, gemm_then, Epilogue, MatRef};
use ndarray::ArrayD;

/// y = x·wᵀ + b on the tape.
///
/// # Shapes
/// x (N, in) · w (out, in) · b (out) → y (N, out).
///
/// # Gradients
/// * ∂L/∂x = ∂L/∂y · w        (N × out · out × in)
/// * ∂L/∂w = (∂L/∂y)ᵀ · x     (out × N · N × in): each weight sums over the batch
/// * ∂L/∂b = ∂L/∂y summed over the batch
///
/// With an activation fused in (y = f(x·wᵀ + b)), ∂L/∂y is first turned into ∂L/∂(x·wᵀ + b)
/// = ∂L/∂y ⊙ f′, with f′ read off y. Recorded by [`Graph::linear_flat`], x may be any
/// (N, …) and y any (N, …) with the same numbers in the same places as (N, in) and (N, out).
#[derive(Debug)]
pub struct Linear {
    n: usize,
    d_in: usize,
    d_out: usize,
    act: Option<Activation>,
}

impl Graph {
    /// x·wᵀ + b (`b` optional).
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not (N, in), w not (out, in), or b not (out).
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        self.linear_then(x, w, b, None)
    }

    /// act(x·wᵀ + b) as one op: the product adds the bias as it stores each tile and applies
    /// the activation to each block of rows while it is in cache ([`gemm_then`]); the tape
    /// keeps only the activated output. As for the convolutions, an activation whose output
    /// does not decide its derivative (a leaky ReLU with a negative slope) runs as a separate
    /// op instead.
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
    /// [`Error::Shape`] when x has no axis past the batch, its per-sample size is not w's
    /// input size, b is not (out), or `tail` does not hold out values.
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
        let inputs: Vec<Var> = [Some(x), Some(w), b].into_iter().flatten().collect();
        let node = Linear {
            n,
            d_in,
            d_out,
            act,
        };
        Ok(self.record(node, &inputs, y))
    }
}

impl Backward for Linear {
    fn macs(&self) -> u128 {
        (self.n * self.d_in * self.d_out) as u128
    }

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Vec<Option<ArrayD<f32>>>> {
        let Linear {
            n,
            d_in,
            d_out,
            act,
        } = *self;
        let before_act = before_activation(ctx, act);
        let d_y = before_act.as_ref().map_or(ctx.d_y_slice(), as_slice);
        let (x, w) = (ctx.input_slice(X), ctx.input_slice(W));
        let d_y_mat = MatRef::row_major(d_y, n, d_out);
        let grads = vec![
            // In x's own shape: (N, in), or (N, …) for a flattened input.
            ctx.grad_for(X, ctx.input(X).shape(), |d_x| {
                gemm(1.0, d_y_mat, MatRef::row_major(w, d_out, d_in), 0.0, d_x)
            }),
            ctx.grad_for(W, &[d_out, d_in], |d_w| {
                gemm(1.0, d_y_mat.t(), MatRef::row_major(x, n, d_in), 0.0, d_w)
            }),
            ctx.grad_for(B, &[d_out], |d_b| {
                kernels::reduce::sum_axis(d_y, 1, n, d_out, d_b)
            }),
        ];
        if let Some(buffer) = before_act {
            ctx.recycle(buffer);
        }
        Ok(grads)
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

    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Vec<Option<ArrayD<f32>>>> {
        let MatMul { m, k, n } = *self;
        let (a, b) = (
            MatRef::row_major(ctx.input_slice(LEFT), m, k),
            MatRef::row_major(ctx.input_slice(RIGHT), k, n),
        );
        let d_y = MatRef::row_major(ctx.d_y_slice(), m, n);
        Ok(vec![
            ctx.grad_for(LEFT, &[m, k], |d_a| gemm(1.0, d_y, b.t(), 0.0, d_a)),
            ctx.grad_for(RIGHT, &[k, n], |d_b| gemm(1.0, a.t(), d_y, 0.0, d_b)),
        ])
    }
}
