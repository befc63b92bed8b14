//! Layers: the building blocks of a model, each owning named parameters.
//!
//! A [`Module`] turns an input `Var` into an output `Var` on a [`Graph`], putting its
//! parameters on the tape as it goes. Its parameters carry names — `weight`, `bias`,
//! `running_mean` — and containers prefix their children's names (`encoder.0.weight`), exactly
//! as PyTorch's `state_dict` does, so a checkpoint means the same thing in both.
//!
//! Reading order: [`init`] (where weights start) → [`linear`] → [`conv`] → [`norm`]
//! (batch norm, dropout) → [`shape`] (activations, flatten, pooling as layers) →
//! [`sequential`].

pub mod conv;
pub mod grad_check;
pub mod init;
pub mod linear;
pub mod norm;
pub mod sequential;
pub mod shape;

pub use conv::{Conv2d, ConvTranspose2d, Kernel};
pub use grad_check::grad_check_module;
pub use init::Init;
pub use linear::Linear;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, Dropout};
pub use sequential::Sequential;
pub use shape::{Act, Flatten, MaxPool2d, Unflatten, Upsample};

use crate::autodiff::Activation;
use crate::autodiff::{Graph, ParamId, Var};
use crate::error::{Error, Result};
use ndarray::{ArcArray, ArrayD, IxDyn};
use std::collections::BTreeMap;
use std::fmt;

/// A tensor a layer owns: a trainable parameter (weights, biases) or a buffer (batch norm's
/// running statistics), which is saved with the model but not trained by gradient.
#[derive(Debug)]
pub struct Param {
    id: ParamId,
    trainable: bool,
    /// The current numbers. Optimisers update them in place.
    ///
    /// An `ArcArray` is an array behind a reference count: the tape takes a second handle to
    /// these numbers instead of a copy (see [`Graph::param`]). It reads and writes like any
    /// array; a write while another handle exists copies the numbers first, so a handle never
    /// sees another's writes.
    pub value: ArcArray<f32, IxDyn>,
}

impl Param {
    /// A trainable parameter.
    pub fn new(value: ArrayD<f32>) -> Self {
        Param {
            id: ParamId::fresh(),
            trainable: true,
            value: value.into_shared(),
        }
    }

    /// A buffer: saved and loaded, never given to the optimiser.
    pub fn buffer(value: ArrayD<f32>) -> Self {
        Param {
            id: ParamId::fresh(),
            trainable: false,
            value: value.into_shared(),
        }
    }

    /// The identity the tape knows this parameter by.
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// Whether the optimiser updates it.
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    /// Puts the current value on the tape (once per step; asking again returns the same `Var`).
    pub fn on(&self, g: &mut Graph) -> Var {
        g.param(self.id, &self.value)
    }
}

/// A layer or a model: something with a forward pass and named tensors.
pub trait Module: fmt::Debug + Send {
    /// Computes the output for `x`, recording on `g`.
    ///
    /// # Errors
    /// Shape errors from the ops, naming the layer where a container knows it.
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var>;

    /// Calls `f(name, tensor)` for every parameter and buffer; `name` is the name so far
    /// (empty at the top), which each level extends with its part (see [`Name`]).
    fn visit(&self, _name: &mut Name, _f: &mut dyn FnMut(&str, &Param)) {}

    /// As [`Module::visit`], with mutable access (optimisers, checkpoint loading).
    fn visit_mut(&mut self, _name: &mut Name, _f: &mut dyn FnMut(&str, &mut Param)) {}

    /// Switches between training and evaluation behaviour (dropout, batch norm).
    fn set_training(&mut self, _training: bool) {}

    /// Hands a layer that draws random numbers in its forward pass (dropout) a new
    /// generator seed. The trainer calls it before every step with a seed derived from the
    /// run's seed, the epoch and the batch, so that a run resumed from a checkpoint draws the
    /// same masks as one that never stopped. Containers pass a different seed to each child.
    fn reseed(&mut self, _seed: u64) {}

    /// The activation this layer is, when it is nothing but one: a container may then fuse
    /// it into the layer before (see [`Module::forward_then`]).
    fn as_activation(&self) -> Option<Activation> {
        None
    }

    /// This layer's forward followed by `act`, as one fused op, for a layer that can apply
    /// an activation to its output while computing it (convolutions, linear layers); `None` for the
    /// others, whose caller then runs the activation as a layer of its own. The numbers are
    /// the same either way.
    fn forward_then(&mut self, _g: &mut Graph, _x: Var, _act: Activation) -> Option<Result<Var>> {
        None
    }

    /// The reshape this layer is, when it is nothing but one (`Flatten`, `Unflatten`): a
    /// container may then let the layer beside it read or write through it in place (see
    /// [`Module::forward_flat`]).
    fn as_reshape(&self) -> Option<shape::Reshaping<'_>> {
        None
    }

    /// This layer's forward on x read as (N, features), whatever x's shape, then `act`, with
    /// the output in the shape (N, `tail`…) when `tail` is given: the layer together with a
    /// `Flatten` before it, an activation and an `Unflatten` after it, as one op with no
    /// copy. For layers that read their input as rows of features (linear layers); `None`
    /// for the others.
    fn forward_flat(
        &mut self,
        _g: &mut Graph,
        _x: Var,
        _act: Option<Activation>,
        _tail: Option<&[usize]>,
    ) -> Option<Result<Var>> {
        None
    }
}

/// `prefix.name`, or `name` when the prefix is empty: how nested names are built.
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A parameter's dotted name ("decoder.9.weight"), built in place while a visit walks down
/// the model: each level appends its part, visits below it, and takes the part off again. One
/// buffer serves every name, so once it has grown to the longest one a visit of the whole
/// model allocates nothing — the optimiser visits every parameter at every step.
#[derive(Clone, Debug, Default)]
pub struct Name(String);

impl Name {
    /// The name so far.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Runs `f` with `.part` appended to the name (no dot at the top level), then restores it.
    pub fn with<R>(&mut self, part: impl fmt::Display, f: impl FnOnce(&mut Name) -> R) -> R {
        use fmt::Write;
        let len = self.0.len();
        if len > 0 {
            self.0.push('.');
        }
        // Invariant: writing to a String cannot fail.
        write!(self.0, "{part}").unwrap_or_else(|_| unreachable!("a String takes any text"));
        let out = f(self);
        self.0.truncate(len);
        out
    }
}

/// Every parameter and buffer, by name, copied: what a checkpoint stores.
pub fn state_dict(m: &dyn Module) -> BTreeMap<String, ArrayD<f32>> {
    let mut out = BTreeMap::new();
    m.visit(&mut Name::default(), &mut |name, p| {
        out.insert(name.to_string(), p.value.to_owned());
    });
    out
}

/// Loads tensors by name into a model. Every tensor of the model must be present with its
/// exact shape; names the model does not have are ignored, except that they are returned so a
/// caller can report them.
///
/// # Errors
/// [`Error::Architecture`] naming the first missing or mis-shaped tensor.
pub fn load_state_dict(
    m: &mut dyn Module,
    state: &BTreeMap<String, ArrayD<f32>>,
) -> Result<Vec<String>> {
    let mut problem = None;
    let mut used = std::collections::BTreeSet::new();
    m.visit_mut(&mut Name::default(), &mut |name, p| {
        if problem.is_some() {
            return;
        }
        match state.get(name) {
            None => {
                problem = Some(Error::Architecture {
                    layer: name.to_string(),
                    detail: "missing from the checkpoint".into(),
                })
            }
            Some(v) if v.shape() != p.value.shape() => {
                problem = Some(Error::Architecture {
                    layer: name.to_string(),
                    detail: format!(
                        "the checkpoint holds shape {:?}, the model expects {:?}",
                        v.shape(),
                        p.value.shape()
                    ),
                })
            }
            Some(v) => {
                p.value.assign(v);
                used.insert(name.to_string());
            }
        }
    });
    match problem {
        Some(e) => Err(e),
        None => Ok(state
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()),
    }
}

/// The number of trainable scalars in a model.
pub fn parameter_count(m: &dyn Module) -> usize {
    let mut count = 0;
    m.visit(&mut Name::default(), &mut |_, p| {
        if p.is_trainable() {
            count += p.value.len();
        }
    });
    count
}

/// A weight and an optional bias: what [`Linear`], [`Conv2d`] and [`ConvTranspose2d`] own.
#[derive(Debug)]
pub struct WeightBias {
    /// The weight, in PyTorch's layout for the layer.
    pub weight: Param,
    /// The bias, one number per output feature or channel, if the layer has one.
    pub bias: Option<Param>,
}

impl WeightBias {
    /// A weight of `shape` and, if `bias`, a bias of `bias_len`, drawn by `init`.
    pub fn new(
        shape: &[usize],
        bias_len: usize,
        bias: bool,
        init: Init,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let weight = Param::new(init.weight(shape, rng));
        let bias = bias.then(|| Param::new(init.bias(bias_len, shape, rng)));
        WeightBias { weight, bias }
    }

    /// Both on the tape.
    pub fn on(&self, g: &mut Graph) -> (Var, Option<Var>) {
        (self.weight.on(g), self.bias.as_ref().map(|b| b.on(g)))
    }

    /// Visits `name.weight` and `name.bias`.
    pub fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        name.with("weight", |n| f(n.as_str(), &self.weight));
        if let Some(b) = &self.bias {
            name.with("bias", |n| f(n.as_str(), b));
        }
    }

    /// Visits `name.weight` and `name.bias`, mutably.
    pub fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        name.with("weight", |n| f(n.as_str(), &mut self.weight));
        if let Some(b) = &mut self.bias {
            name.with("bias", |n| f(n.as_str(), b));
        }
    }
}
