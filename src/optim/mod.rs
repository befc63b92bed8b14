//! Optimisers: how gradients become parameter updates, and schedules for the learning rate.
//!
//! After [`Graph::backward`], every parameter θ has a gradient ∂L/∂θ on the tape.
//! [`Optimizer::step`] walks the model's named parameters, fetches each gradient and applies
//! the optimiser's rule in place. The rules keep per-parameter state (momentum, second
//! moments) keyed by the parameter's **name**, so the state can be saved in a checkpoint and
//! restored into a freshly built model.
//!
//! Reading order: [`sgd`] (the plain rule and momentum) → [`adam`] → [`adagrad`] →
//! [`plateau`] (ReduceLROnPlateau) → [`schedule`] (step decay) → [`early_stop`].

pub mod adagrad;
pub mod adam;
pub mod early_stop;
pub mod plateau;
pub mod schedule;
pub mod sgd;

pub use adagrad::AdaGrad;
pub use adam::Adam;
pub use early_stop::{EarlyStopping, Verdict};
pub use plateau::{Mode, ReduceLrOnPlateau, ThresholdMode};
pub use schedule::StepLr;
pub use sgd::Sgd;

use crate::autodiff::Graph;
use crate::error::{Error, Result};
use crate::nn::Module;
use std::collections::BTreeMap;

/// A rule that updates parameters from their gradients.
pub trait Optimizer: std::fmt::Debug + Send {
    /// Updates one parameter tensor, named `name`, in place from its gradient.
    fn update(&mut self, name: &str, param: &mut [f32], grad: &[f32]);

    /// The current learning rate.
    fn lr(&self) -> f32;

    /// Sets the learning rate (schedulers call this).
    fn set_lr(&mut self, lr: f32);

    /// The per-parameter state by name, for checkpoints: each entry a list of named vectors
    /// (e.g. Adam's `exp_avg`, `exp_avg_sq` and `step`).
    fn state(&self) -> BTreeMap<String, BTreeMap<String, Vec<f32>>>;

    /// Restores state saved by [`Optimizer::state`].
    ///
    /// # Errors
    /// [`Error::Config`] when an entry lacks a vector this optimiser needs.
    fn load_state(&mut self, state: &BTreeMap<String, BTreeMap<String, Vec<f32>>>) -> Result<()>;

    /// One update of every trainable parameter of `model` that has a gradient on `g`.
    fn step(&mut self, model: &mut dyn Module, g: &Graph) {
        model.visit_mut("", &mut |name, p| {
            if !p.is_trainable() {
                return;
            }
            let Some(grad) = g.param_grad(p.id()) else {
                return;
            };
            // Invariant: parameter values and tape gradients are both standard-layout arrays.
            let (Some(values), Some(grad)) = (p.value.as_slice_mut(), grad.as_slice()) else {
                unreachable!("parameters and gradients are contiguous")
            };
            self.update(name, values, grad);
        });
    }
}

/// Checks a hyperparameter is finite and at least `min`.
pub(crate) fn check_at_least(what: &'static str, value: f32, min: f32) -> Result<()> {
    if value.is_finite() && value >= min {
        Ok(())
    } else {
        Err(Error::config(
            what,
            format!("{value} must be a finite number ≥ {min}"),
        ))
    }
}

/// Reads a named vector from one parameter's saved state.
pub(crate) fn saved<'a>(
    entry: &'a BTreeMap<String, Vec<f32>>,
    name: &str,
    key: &str,
) -> Result<&'a [f32]> {
    entry
        .get(key)
        .map(Vec::as_slice)
        .ok_or_else(|| Error::config("optimizer state", format!("{name} has no {key:?}")))
}
