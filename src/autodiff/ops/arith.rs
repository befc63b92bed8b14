//! Arithmetic: broadcasting binary ops (+ − × ÷) and element-wise unary maths.
//!
//! Binary ops follow NumPy broadcasting: a bias of shape (C) adds to every row of an (N, C)
//! batch. In backward, the gradient for a broadcast operand is summed over the axes it was
//! stretched along (`sum_to_shape`, below).
//!
//! | op | ∂/∂a | ∂/∂b |
//! |---|---|---|
//! | a + b | 1 | 1 |
//! | a − b | 1 | −1 |
//! | a ⊙ b | b | a |
//! | a ⊘ b | 1/b | −a/b² |
//!
//! Unary ops read their derivative from the input x or the output y, whichever is cheaper:
//! (eˣ)′ = y, (ln x)′ = 1/x, (√x)′ = 1/(2y), (xᵖ)′ = p·xᵖ⁻¹.

use super::{broadcast_shape, sum_to_shape, LEFT, RIGHT};
use crate::autodiff::graph::{as_slice, as_slice_mut, Backward, BackwardCtx, Grads, Graph, Var};
use crate::error::Result;
use kernels::elementwise::{map, zip3_map, zip_map};
use ndarray::Zip;

/// The four broadcasting binary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a ⊙ b (element-wise)
    Mul,
    /// a ⊘ b (element-wise)
    Div,
}

impl BinaryKind {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
        }
    }
}

/// A broadcasting binary op on the tape.
///
/// # Shapes
/// a (…) ∘ b (…) → y (the broadcast shape of a and b).
///
/// # Gradients
/// See the table in the module docs; each gradient is then summed down to its operand's shape.
#[derive(Debug)]
pub struct Binary {
    kind: BinaryKind,
}

impl Graph {
    fn binary(&mut self, kind: BinaryKind, a: Var, b: Var) -> Result<Var> {
        self.live(&[a, b])?;
        let shape = broadcast_shape(kind.name(), self.shape(a), self.shape(b))?;
        let mut y = self.alloc(&shape);
        if self.shape(a) == self.shape(b) {
            zip_map(
                self.data(a),
                self.data(b),
                as_slice_mut(&mut y),
                move |x, z| kind.apply(x, z),
            );
        } else {
            Zip::from(&mut y)
                .and_broadcast(self.value(a))
                .and_broadcast(self.value(b))
                .for_each(|o, &x, &z| *o = kind.apply(x, z));
        }
        Ok(self.record(Binary { kind }, &[a, b], y))
    }

    /// a + b, broadcasting.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] when the shapes do not broadcast.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryKind::Add, a, b)
    }
    /// a − b, broadcasting.
    ///
    /// # Errors
    /// As [`Graph::add`].
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryKind::Sub, a, b)
    }
    /// a ⊙ b, element-wise, broadcasting.
    ///
    /// # Errors
    /// As [`Graph::add`].
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryKind::Mul, a, b)
    }
    /// a ⊘ b, element-wise, broadcasting.
    ///
    /// # Errors
    /// As [`Graph::add`].
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryKind::Div, a, b)
    }
}

impl Backward for Binary {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let (a, b, d_y) = (ctx.input(LEFT), ctx.input(RIGHT), ctx.d_y());
        let full = d_y.shape().to_vec();
        let kind = self.kind;
        // ∂y/∂a and ∂y/∂b at each element, as functions of (a, b).
        let d_a = |_x: f32, z: f32| match kind {
            BinaryKind::Add | BinaryKind::Sub => 1.0,
            BinaryKind::Mul => z,
            BinaryKind::Div => 1.0 / z,
        };
        let d_b = |x: f32, z: f32| match kind {
            BinaryKind::Add => 1.0,
            BinaryKind::Sub => -1.0,
            BinaryKind::Mul => x,
            BinaryKind::Div => -x / (z * z),
        };
        let mut grads = [None, None];
        for (i, local) in [(0, &d_a as &(dyn Fn(f32, f32) -> f32 + Sync)), (1, &d_b)] {
            if !ctx.needs(i) {
                continue;
            }
            let mut g = ctx.alloc(&full);
            Zip::from(&mut g)
                .and(d_y)
                .and_broadcast(&a)
                .and_broadcast(&b)
                .for_each(|o, &dy, &x, &z| *o = dy * local(x, z));
            let target = ctx.input_shape(i);
            grads[i] = Some(sum_to_shape(ctx, g, target));
        }
        Ok(grads.into())
    }
}

/// The element-wise unary maths ops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// √x
    Sqrt,
    /// xᵖ for a constant p
    Pow(f32),
    /// x + c for a constant c
    AddScalar(f32),
    /// c·x for a constant c
    MulScalar(f32),
}

impl UnaryKind {
    #[inline(always)]
    fn apply(self, x: f32) -> f32 {
        match self {
            UnaryKind::Exp => x.exp(),
            UnaryKind::Log => x.ln(),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Pow(p) => x.powf(p),
            UnaryKind::AddScalar(c) => x + c,
            UnaryKind::MulScalar(c) => c * x,
        }
    }

    /// dy/dx from the input x and output y.
    #[inline(always)]
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            UnaryKind::Exp => y,
            UnaryKind::Log => 1.0 / x,
            UnaryKind::Sqrt => 0.5 / y,
            UnaryKind::Pow(p) => p * x.powf(p - 1.0),
            UnaryKind::AddScalar(_) => 1.0,
            UnaryKind::MulScalar(c) => c,
        }
    }
}

/// An element-wise unary op on the tape.
///
/// # Shapes
/// x (…) → y (same shape).
///
/// # Gradients
/// ∂L/∂x = ∂L/∂y ⊙ f′(x), with f′ from the table in the module docs.
#[derive(Debug)]
pub struct Unary {
    kind: UnaryKind,
}

impl Graph {
    /// Applies an element-wise unary op.
    ///
    /// # Errors
    /// [`crate::Error::Graph`] if `x` is stale.
    pub fn unary(&mut self, kind: UnaryKind, x: Var) -> Result<Var> {
        self.live(&[x])?;
        let mut y = self.alloc(self.value(x).shape().to_vec().as_slice());
        map(self.data(x), as_slice_mut(&mut y), move |v| kind.apply(v));
        Ok(self.record(Unary { kind }, &[x], y))
    }
    /// eˣ.
    ///
    /// # Errors
    /// As [`Graph::unary`]; so do the other unary ops below.
    pub fn exp(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryKind::Exp, x)
    }
    /// ln x.
    #[allow(clippy::missing_errors_doc)]
    pub fn log(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryKind::Log, x)
    }
    /// √x.
    pub fn sqrt(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryKind::Sqrt, x)
    }
    /// xᵖ.
    pub fn pow(&mut self, x: Var, p: f32) -> Result<Var> {
        self.unary(UnaryKind::Pow(p), x)
    }
    /// x + c.
    pub fn add_scalar(&mut self, x: Var, c: f32) -> Result<Var> {
        self.unary(UnaryKind::AddScalar(c), x)
    }
    /// c·x.
    pub fn mul_scalar(&mut self, x: Var, c: f32) -> Result<Var> {
        self.unary(UnaryKind::MulScalar(c), x)
    }
    /// −x.
    pub fn neg(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryKind::MulScalar(-1.0), x)
    }
}

impl Backward for Unary {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let kind = self.kind;
        let mut d_x = ctx.alloc_like_input(0);
        zip3_map(
            ctx.input_slice(0),
            as_slice(ctx.output()),
            ctx.d_y_slice(),
            as_slice_mut(&mut d_x),
            move |x, y, g| g * kind.derivative(x, y),
        );
        Ok([Some(d_x)].into())
    }
}
