//! Gradient checking: comparing backward with finite differences.
//!
//! For any function y = f(x₁, …, xₖ) built on the tape, pick a fixed random tensor r shaped
//! like y and let L = Σ r ⊙ y. (A random r, not all ones, so that swapped or transposed
//! indices in a backward pass cannot cancel out.) Backward seeded with r gives the analytic
//! ∂L/∂x. Independently, for every element of every input,
//!
//! n = (L(x + h) − L(x − h)) / 2h,
//!
//! the central difference, whose error is O(h²). The check passes when
//! |a − n| ≤ abs + rel·max(|a|, |n|) for every element.
//!
//! ## Why f32 is good enough here, and how
//! The engine computes in f32 only. A finite difference divides a rounding error of about
//! ε·|L| (ε ≈ 6·10⁻⁸) by 2h, so a tiny h drowns in noise. With h = 10⁻², L accumulated in
//! f64 (so the sum itself adds no error), and per-element values of order 1, the noise floor
//! is about 10⁻⁵ and the truncation error about h²·|f‴| ≈ 10⁻⁴: both well below the
//! tolerance of 10⁻³ + 10⁻²·|a|, while a wrong backward — a missing term, a transposed weight,
//! a factor of two — is off by far more (a test plants one and checks it is caught). The
//! exact comparison against f64 numbers comes from elsewhere: every kernel is compared with
//! its naive loop accumulated in f64, and every op with PyTorch's float64 reference vectors.
//! Inputs near a kink (ReLU and SELU at 0) must stay more than h away from it.

use super::graph::{Graph, Var};
use crate::error::{Error, Result};
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How close analytic and numeric gradients must be.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Absolute slack, for gradients near zero.
    pub abs: f64,
    /// Relative slack, as a fraction of the larger magnitude.
    pub rel: f64,
    /// The finite-difference step h.
    pub h: f32,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            abs: 1e-3,
            rel: 1e-2,
            h: 1e-2,
        }
    }
}

/// Checks every input's gradient of `f` against central finite differences.
///
/// `f` builds the computation from the input `Var`s (in the order of `inputs`). Returns the
/// first mismatch as [`Error::GradientMismatch`], naming the input, the element and both values.
///
/// # Example
/// ```
/// use handgrad::autodiff::{grad_check, Tolerance};
/// use ndarray::array;
/// # fn main() -> handgrad::Result<()> {
/// let x = array![[0.5f32, -1.5], [2.0, 0.25]].into_dyn();
/// grad_check("x·x", &[x], |g, v| g.mul(v[0], v[0]), Tolerance::default())
/// # }
/// ```
pub fn grad_check(
    name: &str,
    inputs: &[ArrayD<f32>],
    f: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
    tol: Tolerance,
) -> Result<()> {
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|x| g.leaf(x.clone(), true)).collect();
    let y = f(&mut g, &vars)?;
    let r = seed_like(g.value(y));
    g.backward_from(y, r.clone())?;
    let analytic: Vec<ArrayD<f32>> = vars
        .iter()
        .zip(inputs)
        .map(|(&v, x)| {
            g.grad(v)
                .cloned()
                .unwrap_or_else(|| ArrayD::zeros(x.shape()))
        })
        .collect();

    let mut eval = Graph::new();
    eval.set_recording(false);
    let mut probe = inputs.to_vec();
    for (i, grad) in analytic.iter().enumerate() {
        compare(name, i, grad, tol, |k, delta| {
            let original = add_flat(&mut probe[i], k, delta);
            eval.reset();
            let vs: Vec<Var> = probe.iter().map(|x| eval.constant(x.clone())).collect();
            let y = f(&mut eval, &vs)?;
            let l = weighted_sum(eval.value(y), &r);
            set_flat(&mut probe[i], k, original);
            Ok(l)
        })?;
    }
    Ok(())
}

/// The core of every check (this file's and [`crate::nn::grad_check_module`]'s): for each element k of one input, compares the analytic gradient
/// with (L(+h) − L(−h)) / 2h, where `loss_at(k, δ)` evaluates L with element k moved by δ.
pub(crate) fn compare(
    name: &str,
    input: usize,
    analytic: &ArrayD<f32>,
    tol: Tolerance,
    mut loss_at: impl FnMut(usize, f32) -> Result<f64>,
) -> Result<()> {
    for (k, &a) in analytic.iter().enumerate() {
        let plus = loss_at(k, tol.h)?;
        let minus = loss_at(k, -tol.h)?;
        let numeric = (plus - minus) / (2.0 * tol.h as f64);
        let a = a as f64;
        if (a - numeric).abs() > tol.abs + tol.rel * a.abs().max(numeric.abs()) {
            return Err(Error::GradientMismatch {
                op: name.to_string(),
                input,
                index: k,
                analytic: a,
                numeric,
            });
        }
    }
    Ok(())
}

/// The fixed random r of L = Σ r ⊙ y, uniform in [−1, 1).
pub(crate) fn seed_like(y: &ArrayD<f32>) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    y.mapv(|_| rng.random_range(-1.0f32..1.0))
}

/// Σ r ⊙ y in f64.
pub(crate) fn weighted_sum(y: &ArrayD<f32>, r: &ArrayD<f32>) -> f64 {
    y.iter()
        .zip(r.iter())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Adds δ to the k-th element (row-major order), returning its old value.
pub(crate) fn add_flat(x: &mut ArrayD<f32>, k: usize, delta: f32) -> f32 {
    let mut old = 0.0;
    if let Some(e) = x.iter_mut().nth(k) {
        old = *e;
        *e += delta;
    }
    old
}

pub(crate) fn set_flat(x: &mut ArrayD<f32>, k: usize, v: f32) {
    if let Some(e) = x.iter_mut().nth(k) {
        *e = v;
    }
}
