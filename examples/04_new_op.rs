//! Chapter 04, writing a new op: softplus, y = log(1 + eˣ), with its backward pass, proven
//! right by the gradient checker; then a planted mistake, and the checker catching it.
//!
//! Run with `cargo run --release --example 04_new_op`.

use handgrad::autodiff::{grad_check_report, Backward, BackwardCtx, Grads, Graph, Tolerance, Var};
use handgrad::Result;
use ndarray::{ArrayD, IxDyn};

/// softplus(x) = log(1 + eˣ): a smooth ReLU. Its derivative is the logistic σ(x) = 1/(1 + e⁻ˣ).
#[derive(Debug)]
struct Softplus;

impl Backward for Softplus {
    /// ∂L/∂x = ∂L/∂y · σ(x): the chain rule with the op's own derivative.
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let sigma = ctx.input(0).mapv(|x| 1.0 / (1.0 + (-x).exp()));
        Ok([Some(sigma * ctx.d_y())].into())
    }
}

/// The same op with a classic slip in its backward: σ(x)·(1 − σ(x)), the derivative of σ,
/// not of softplus.
#[derive(Debug)]
struct SoftplusWrong;

impl Backward for SoftplusWrong {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let slope = ctx.input(0).mapv(|x| {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        });
        Ok([Some(slope * ctx.d_y())].into())
    }
}

/// Records softplus of `x` on the tape: compute the value, then `record` it with the object
/// that knows the way back. This is all a new op needs.
fn softplus(g: &mut Graph, x: Var, wrong: bool) -> Var {
    let y = g.value(x).mapv(|v| v.exp().ln_1p());
    if wrong {
        g.record(SoftplusWrong, &[x], y)
    } else {
        g.record(Softplus, &[x], y)
    }
}

fn main() -> Result<()> {
    let x: ArrayD<f32> = ArrayD::from_shape_vec(
        IxDyn(&[2, 4]),
        vec![-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5, 3.0],
    )
    .map_err(|e| handgrad::Error::shape("x", e.to_string()))?;
    for wrong in [false, true] {
        let reports = grad_check_report(
            std::slice::from_ref(&x),
            |g, v| Ok(softplus(g, v[0], wrong)),
            Tolerance::default(),
        )?;
        let r = &reports[0];
        println!(
            "{} backward: max abs error {:.1e} over {} elements, {} outside the tolerance",
            if wrong {
                "the planted wrong"
            } else {
                "the correct"
            },
            r.max_abs_error,
            r.elements,
            r.failures
        );
        if let Some((k, analytic, numeric)) = r.worst {
            println!(
                "  worst element {k}: backward says {analytic:.5}, finite differences {numeric:.5}"
            );
        }
        assert_eq!(
            r.passed(),
            !wrong,
            "the checker must accept the right backward and reject the wrong one"
        );
    }
    println!("the checker accepts the right derivative and catches the wrong one");
    Ok(())
}
