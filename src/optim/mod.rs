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
pub use schedule::{CosineLr, StepLr};
pub use sgd::Sgd;

use crate::autodiff::Graph;
use crate::error::{Error, Result};
use crate::nn::{Module, Name};
use std::collections::BTreeMap;

/// An optimiser's saved state: for each parameter name, its named vectors
/// (e.g. Adam's `step`, `exp_avg`, `exp_avg_sq`).
pub type State = BTreeMap<String, BTreeMap<String, Vec<f32>>>;

/// Per-parameter state vectors, created on first use: a `step` counter (one number) and the
/// optimiser's other slots (one number per weight, starting at 0).
#[derive(Debug, Clone)]
pub struct Slots {
    keys: &'static [&'static str],
    by_param: BTreeMap<String, Vec<Vec<f32>>>,
}

impl Slots {
    /// Slots named `keys` (the first should be `step`).
    pub fn new(keys: &'static [&'static str]) -> Self {
        Slots {
            keys,
            by_param: BTreeMap::new(),
        }
    }

    /// The vectors of parameter `name` with `len` weights, in the order of `keys`.
    pub fn of(&mut self, name: &str, len: usize) -> &mut [Vec<f32>] {
        // Look up first: the name is only copied into a new key on a parameter's first step.
        if !self.by_param.contains_key(name) {
            let fresh = self
                .keys
                .iter()
                .map(|&k| vec![0.0; if k == "step" { 1 } else { len }])
                .collect();
            self.by_param.insert(name.to_string(), fresh);
        }
        self.by_param
            .get_mut(name)
            .map(Vec::as_mut_slice)
            .unwrap_or_default()
    }

    /// Checks that every saved vector fits the parameter it belongs to: `len(name)` gives a
    /// parameter's number of weights, or `None` if the model has no such parameter.
    ///
    /// # Errors
    /// [`Error::Config`] naming the parameter and slot whose size differs, or a parameter the
    /// model does not have.
    pub fn check_sizes(&self, len: impl Fn(&str) -> Option<usize>) -> Result<()> {
        for (name, vectors) in &self.by_param {
            let Some(n) = len(name) else {
                return Err(Error::format(
                    "optimizer state",
                    format!("{name} is not a parameter of this model"),
                ));
            };
            for (key, v) in self.keys.iter().zip(vectors) {
                let want = if *key == "step" { 1 } else { n };
                if v.len() != want {
                    return Err(Error::format(
                        "optimizer state",
                        format!(
                            "{name}.{key} holds {} numbers, the parameter needs {want}",
                            v.len()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Everything, by parameter and slot name.
    pub fn export(&self) -> State {
        self.by_param
            .iter()
            .map(|(p, vs)| {
                (
                    p.clone(),
                    self.keys
                        .iter()
                        .map(|k| k.to_string())
                        .zip(vs.iter().cloned())
                        .collect(),
                )
            })
            .collect()
    }

    /// Replaces everything with a saved state.
    ///
    /// # Errors
    /// [`Error::Config`] when a parameter lacks one of the slots.
    pub fn import(&mut self, state: &State) -> Result<()> {
        let mut by_param = BTreeMap::new();
        for (name, entry) in state {
            let vectors = self
                .keys
                .iter()
                .map(|k| saved(entry, name, k).map(<[f32]>::to_vec))
                .collect::<Result<Vec<_>>>()?;
            by_param.insert(name.clone(), vectors);
        }
        self.by_param = by_param;
        Ok(())
    }
}

/// What every optimiser has: a learning rate and per-parameter slots.
#[derive(Debug, Clone)]
pub struct Common {
    /// The learning rate.
    pub lr: f32,
    /// Per-parameter state.
    pub slots: Slots,
    /// The buffer parameter names are built in at every step (see [`Name`]).
    pub names: Name,
}

/// A rule that updates parameters from their gradients.
pub trait Optimizer: std::fmt::Debug + Send {
    /// Updates one parameter tensor, named `name`, in place from its gradient.
    fn update(&mut self, name: &str, param: &mut [f32], grad: &[f32]);

    /// The learning rate and state every optimiser keeps.
    fn common(&self) -> &Common;

    /// Mutable access to [`Optimizer::common`].
    fn common_mut(&mut self) -> &mut Common;

    /// The current learning rate.
    fn lr(&self) -> f32 {
        self.common().lr
    }

    /// Sets the learning rate (schedulers call this).
    fn set_lr(&mut self, lr: f32) {
        self.common_mut().lr = lr;
    }

    /// The per-parameter state by name, for checkpoints.
    fn state(&self) -> State {
        self.common().slots.export()
    }

    /// Restores state saved by [`Optimizer::state`].
    ///
    /// # Errors
    /// [`Error::Config`] when an entry lacks a vector this optimiser needs.
    fn load_state(&mut self, state: &State) -> Result<()> {
        self.common_mut().slots.import(state)
    }

    /// One update of every trainable parameter of `model` that has a gradient on `g`.
    ///
    /// The tape first lets go of its handles to the parameters ([`Graph::release_params`]),
    /// so that each is then the only handle to its numbers and is updated where it lies.
    fn step(&mut self, model: &mut dyn Module, g: &mut Graph) {
        g.release_params();
        let mut names = std::mem::take(&mut self.common_mut().names);
        model.visit_mut(&mut names, &mut |name, p| {
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
        self.common_mut().names = names;
    }
}

/// Increments a parameter's step counter and returns the new count.
pub(crate) fn next_step(step: &mut [f32]) -> u64 {
    // Invariant: `Slots::of` creates every `step` slot with one element.
    step[0] += 1.0;
    step[0] as u64
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
        .ok_or_else(|| Error::format("optimizer state", format!("{name} has no {key:?}")))
}
