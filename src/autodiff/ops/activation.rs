//! Activations and the softmax family on the tape. The formulas and their derivatives are
//! tabulated in [`kernels::elementwise`]; backward reads x or y, whichever the derivative needs.

use crate::autodiff::graph::{as_slice, as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::{Error, Result};
pub use kernels::elementwise::Activation;

/// An element-wise activation.
///
/// # Shapes
/// x (…) → y (same shape).
///
/// # Gradients
/// ∂L/∂x = ∂L/∂y ⊙ f′(x) (ReLU: 1 where x > 0; sigmoid: y(1 − y); SELU below zero: y + λα …).
#[derive(Debug)]
pub struct ActivationOp {
    act: Activation,
}

impl Graph {
    /// Applies `act` element by element.
    ///
    /// # Errors
    /// [`Error::Graph`] if `x` is stale; so do the shorthands below.
    pub fn activation(&mut self, x: Var, act: Activation) -> Result<Var> {
        self.live(&[x])?;
        let shape = self.shape(x).to_vec();
        let mut y = self.alloc(&shape);
        kernels::elementwise::forward(act, self.data(x), as_slice_mut(&mut y));
        Ok(self.record(ActivationOp { act }, &[x], y))
    }
    /// max(0, x).
    pub fn relu(&mut self, x: Var) -> Result<Var> {
        self.activation(x, Activation::Relu)
    }
    /// x if x > 0 else slope·x.
    pub fn leaky_relu(&mut self, x: Var, slope: f32) -> Result<Var> {
        self.activation(x, Activation::LeakyRelu { slope })
    }
    /// SELU with PyTorch's α and λ.
    pub fn selu(&mut self, x: Var) -> Result<Var> {
        self.activation(x, Activation::Selu)
    }
    /// 1 / (1 + e⁻ˣ).
    pub fn sigmoid(&mut self, x: Var) -> Result<Var> {
        self.activation(x, Activation::Sigmoid)
    }
    /// tanh x.
    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        self.activation(x, Activation::Tanh)
    }
}

impl Backward for ActivationOp {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (x, y, d_y) = (ctx.input_slice(0), as_slice(ctx.output()), ctx.d_y_slice());
        let shape = ctx.input_shape(0);
        Ok([ctx.grad_for(0, shape, |d_x| {
            kernels::elementwise::backward(self.act, x, y, d_y, d_x)
        })]
        .into())
    }
}

/// Softmax or log-softmax over the last axis.
///
/// # Shapes
/// x (…, C) → y (…, C), each row of C summing to 1 (softmax) or log-summing to 0.
///
/// # Gradients
/// softmax: ∂L/∂x = y ⊙ (∂L/∂y − Σ_row ∂L/∂y ⊙ y);
/// log-softmax: ∂L/∂x = ∂L/∂y − softmax(x) · Σ_row ∂L/∂y.
#[derive(Debug)]
pub struct Softmax {
    log: bool,
    cols: usize,
}

impl Graph {
    /// Softmax over the last axis: turns scores into probabilities.
    ///
    /// # Errors
    /// [`Error::Shape`] for a scalar or an empty last axis.
    pub fn softmax(&mut self, x: Var) -> Result<Var> {
        self.softmax_impl(x, false)
    }

    /// log(softmax(x)) over the last axis, computed without forming softmax (stable).
    ///
    /// # Errors
    /// As [`Graph::softmax`].
    pub fn log_softmax(&mut self, x: Var) -> Result<Var> {
        self.softmax_impl(x, true)
    }

    fn softmax_impl(&mut self, x: Var, log: bool) -> Result<Var> {
        self.live(&[x])?;
        let shape = self.shape(x).to_vec();
        let cols = match shape.last() {
            Some(&c) if c > 0 => c,
            _ => {
                return Err(Error::shape(
                    "softmax",
                    format!("needs a non-empty last axis, the shape is {shape:?}"),
                ))
            }
        };
        let mut y = self.alloc(&shape);
        if log {
            kernels::reduce::log_softmax_rows(self.data(x), cols, as_slice_mut(&mut y));
        } else {
            kernels::reduce::softmax_rows(self.data(x), cols, as_slice_mut(&mut y));
        }
        Ok(self.record(Softmax { log, cols }, &[x], y))
    }
}

impl Backward for Softmax {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (y, d_y, cols) = (as_slice(ctx.output()), ctx.d_y_slice(), self.cols);
        let shape = ctx.input_shape(0);
        Ok([ctx.grad_for(0, shape, |d_x| {
            if self.log {
                kernels::reduce::log_softmax_backward_rows(y, d_y, cols, d_x)
            } else {
                kernels::reduce::softmax_backward_rows(y, d_y, cols, d_x)
            }
        })]
        .into())
    }
}
