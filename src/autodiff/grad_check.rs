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

use super::catalog::{self, CaseOptions, OpCase};
use super::graph::{Graph, Var};
use crate::error::{Error, Result};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
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
/// worst mismatch of the first input that has one as [`Error::GradientMismatch`], naming the
/// input, the element and both values.
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
    for report in grad_check_report(inputs, f, tol)? {
        report.verdict(name)?;
    }
    Ok(())
}

/// How one input's gradient compared with finite differences.
#[derive(Clone, Debug, PartialEq)]
pub struct InputCheck {
    /// Which input (0, 1, … in the order given).
    pub input: usize,
    /// Elements compared.
    pub elements: usize,
    /// The largest |analytic − numeric|.
    pub max_abs_error: f64,
    /// The largest |analytic − numeric| / max(|analytic|, |numeric|), over elements where
    /// either is above the absolute tolerance (elsewhere a relative error means nothing).
    pub max_rel_error: f64,
    /// Elements outside the tolerance.
    pub failures: usize,
    /// The element furthest outside the tolerance (or, if none is, closest to it):
    /// (index, analytic, numeric).
    pub worst: Option<(usize, f64, f64)>,
}

impl InputCheck {
    /// Whether every element was within the tolerance.
    pub fn passed(&self) -> bool {
        self.failures == 0
    }

    /// `Ok` if it passed, else [`Error::GradientMismatch`] for its worst element.
    ///
    /// # Errors
    /// As said.
    pub fn verdict(&self, name: &str) -> Result<()> {
        match self.worst {
            Some((index, analytic, numeric)) if !self.passed() => Err(Error::GradientMismatch {
                op: name.to_string(),
                input: self.input,
                index,
                analytic,
                numeric,
            }),
            _ => Ok(()),
        }
    }
}

/// [`grad_check`], reporting every input's errors instead of stopping at the first mismatch:
/// what `handgrad gradcheck` prints.
///
/// # Errors
/// Errors from `f` itself (shape errors); mismatches are in the report, not errors.
pub fn grad_check_report(
    inputs: &[ArrayD<f32>],
    f: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
    tol: Tolerance,
) -> Result<Vec<InputCheck>> {
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
    let mut reports = Vec::new();
    for (i, grad) in analytic.iter().enumerate() {
        reports.push(measure(i, grad, tol, |k, delta| {
            let original = add_flat(probe[i].view_mut(), k, delta);
            eval.reset();
            let vs: Vec<Var> = probe.iter().map(|x| eval.constant(x.clone())).collect();
            let y = f(&mut eval, &vs)?;
            let l = weighted_sum(eval.value(y), &r);
            set_flat(probe[i].view_mut(), k, original);
            Ok(l)
        })?);
    }
    Ok(reports)
}

/// `handgrad gradcheck`: checks each named op of the [catalogue](super::catalog) on its case,
/// handing every case and its per-input reports to `show` as it goes. With `plant_bug`, a
/// deliberately wrong backward ([`catalog::plant_bug`]) follows each op, to show what a caught
/// mistake looks like.
///
/// # Errors
/// An unknown op name or a case that cannot be built, before anything is checked for that op;
/// once every op has been checked and shown, [`Error::GradientMismatch`] for the worst element
/// of the first op whose gradients disagree.
pub fn check_catalog(
    ops: &[&str],
    options: &CaseOptions,
    plant_bug: bool,
    tol: Tolerance,
    mut show: impl FnMut(&OpCase, &[InputCheck]),
) -> Result<()> {
    let mut first_mismatch = None;
    for name in ops {
        let case = catalog::case(name, options)?;
        let f = &case.f;
        let reports = grad_check_report(
            &case.inputs,
            |g, v| {
                let y = f(g, v)?;
                Ok(if plant_bug {
                    catalog::plant_bug(g, y)
                } else {
                    y
                })
            },
            tol,
        )?;
        show(&case, &reports);
        if first_mismatch.is_none() {
            first_mismatch = reports.iter().find_map(|r| r.verdict(case.name).err());
        }
    }
    first_mismatch.map_or(Ok(()), Err)
}

/// Compares every element of one input's analytic gradient with (L(+h) − L(−h)) / 2h, where
/// `loss_at(k, δ)` evaluates L with element k moved by δ.
pub(crate) fn measure(
    input: usize,
    analytic: &ArrayD<f32>,
    tol: Tolerance,
    mut loss_at: impl FnMut(usize, f32) -> Result<f64>,
) -> Result<InputCheck> {
    let mut report = InputCheck {
        input,
        elements: analytic.len(),
        max_abs_error: 0.0,
        max_rel_error: 0.0,
        failures: 0,
        worst: None,
    };
    let mut worst_excess = f64::NEG_INFINITY;
    for (k, &a) in analytic.iter().enumerate() {
        let plus = loss_at(k, tol.h)?;
        let minus = loss_at(k, -tol.h)?;
        let numeric = (plus - minus) / (2.0 * tol.h as f64);
        let a = a as f64;
        let err = (a - numeric).abs();
        let scale = a.abs().max(numeric.abs());
        report.max_abs_error = report.max_abs_error.max(err);
        if scale > tol.abs {
            report.max_rel_error = report.max_rel_error.max(err / scale);
        }
        let excess = err - (tol.abs + tol.rel * scale);
        if excess > 0.0 {
            report.failures += 1;
        }
        if excess > worst_excess {
            worst_excess = excess;
            report.worst = Some((k, a, numeric));
        }
    }
    Ok(report)
}

/// The check of [`crate::nn::grad_check_module`]: [`measure`], then the worst mismatch as an
/// error.
pub(crate) fn compare(
    name: &str,
    input: usize,
    analytic: &ArrayD<f32>,
    tol: Tolerance,
    loss_at: impl FnMut(usize, f32) -> Result<f64>,
) -> Result<()> {
    measure(input, analytic, tol, loss_at)?.verdict(name)
}

/// The fixed random r of L = Σ r ⊙ y, uniform in [−1, 1).
pub(crate) fn seed_like(y: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    y.mapv(|_| rng.random_range(-1.0f32..1.0))
}

/// Σ r ⊙ y in f64.
pub(crate) fn weighted_sum(y: ArrayViewD<'_, f32>, r: &ArrayD<f32>) -> f64 {
    y.iter()
        .zip(r.iter())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Adds δ to the k-th element (row-major order), returning its old value.
pub(crate) fn add_flat(mut x: ArrayViewMutD<'_, f32>, k: usize, delta: f32) -> f32 {
    let mut old = 0.0;
    if let Some(e) = x.iter_mut().nth(k) {
        old = *e;
        *e += delta;
    }
    old
}

pub(crate) fn set_flat(mut x: ArrayViewMutD<'_, f32>, k: usize, v: f32) {
    if let Some(e) = x.iter_mut().nth(k) {
        *e = v;
    }
}
