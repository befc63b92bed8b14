//! Gradient checking for whole layers and models: every parameter's gradient, and the input's,
//! against central finite differences. The method and its tolerances are explained in
//! [`crate::autodiff::grad_check`](mod@crate::autodiff::grad_check); this file applies them to a [`Module`].

use super::{Module, Name};
use crate::autodiff::grad_check::{add_flat, compare, seed_like, set_flat, weighted_sum};
use crate::autodiff::{Graph, Tolerance};
use crate::error::Result;
use ndarray::{ArrayD, ArrayViewMutD};

/// Checks the gradients of a whole module — with respect to its input `x` (input 0) and to
/// every trainable parameter (inputs 1, 2, … in visiting order) — against finite differences.
///
/// The module must be deterministic (no dropout in training mode): it is run once per probe.
///
/// # Errors
/// The first mismatch as [`crate::Error::GradientMismatch`] (its `op` names the parameter), or any
/// error of the forward pass.
pub fn grad_check_module(
    name: &str,
    module: &mut dyn Module,
    x: &ArrayD<f32>,
    tol: Tolerance,
) -> Result<()> {
    let mut g = Graph::new();
    let xv = g.leaf(x.clone(), true);
    let y = module.forward(&mut g, xv)?;
    let r = seed_like(g.value(y));
    g.backward_from(y, r.clone())?;
    let mut analytic = vec![(
        format!("{name} input"),
        g.grad(xv)
            .cloned()
            .unwrap_or_else(|| ArrayD::zeros(x.shape())),
    )];
    module.visit(&mut Name::default(), &mut |pname, p| {
        if p.is_trainable() {
            let grad = g
                .param_grad(p.id())
                .cloned()
                .unwrap_or_else(|| ArrayD::zeros(p.value.shape()));
            analytic.push((pname.to_string(), grad));
        }
    });

    let mut eval = Graph::new();
    eval.set_recording(false);
    let mut x_probe = x.clone();
    for (i, (pname, grad)) in analytic.iter().enumerate() {
        compare(&format!("{name}: {pname}"), i, grad, tol, |k, delta| {
            // Input 0 is x; the others are the module's parameters, found by name. `shift`
            // adds δ and returns the old value, which is then written back exactly.
            let shift = |module: &mut dyn Module,
                         x_probe: &mut ArrayD<f32>,
                         d: Option<f32>,
                         restore: f32|
             -> f32 {
                let touch = |t: ArrayViewMutD<'_, f32>| match d {
                    Some(d) => add_flat(t, k, d),
                    None => {
                        set_flat(t, k, restore);
                        restore
                    }
                };
                if i == 0 {
                    return touch(x_probe.view_mut());
                }
                let mut old = 0.0;
                module.visit_mut(&mut Name::default(), &mut |n, p| {
                    if n == pname {
                        old = touch(p.value.view_mut());
                    }
                });
                old
            };
            let original = shift(module, &mut x_probe, Some(delta), 0.0);
            eval.reset();
            let xc = eval.constant(x_probe.clone());
            let out = module.forward(&mut eval, xc);
            shift(module, &mut x_probe, None, original);
            Ok(weighted_sum(eval.value(out?), &r))
        })?;
    }
    Ok(())
}
