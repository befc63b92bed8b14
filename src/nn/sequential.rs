//! A chain of layers, each feeding the next — how encoders and decoders are written.

use super::{join_name, Module, Param};
use crate::autodiff::{Graph, Var};
use crate::error::{Error, Result};

/// Layers applied in order. Children are named by their index, so the first layer's weight is
/// `0.weight` (and `encoder.0.weight` inside a model named `encoder`), PyTorch's convention.
///
/// A shape error inside a child comes back as [`Error::Architecture`] naming the layer, so an
/// inconsistent model description points at the exact place that does not fit.
#[derive(Debug, Default)]
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Module>>,
    /// `name.0`, `name.1`, …: each child's full name, made once (not on every step).
    child_names: Vec<String>,
}

impl Sequential {
    /// An empty chain; `name` is used in error messages (`encoder`, `decoder`).
    pub fn new(name: impl Into<String>) -> Self {
        Sequential {
            name: name.into(),
            layers: Vec::new(),
            child_names: Vec::new(),
        }
    }

    /// Appends a layer (builder style).
    pub fn with(mut self, layer: impl Module + 'static) -> Self {
        self.push(Box::new(layer));
        self
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.child_names
            .push(join_name(&self.name, &self.layers.len().to_string()));
        self.layers.push(layer);
    }

    /// The full name of layer `i` (`encoder.3`), as errors and checkpoints spell it.
    pub fn child_name(&self, i: usize) -> Option<&str> {
        self.child_names.get(i).map(String::as_str)
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Sequential {
    /// Runs layer `i` alone, its nodes recorded in the layer's scope (so diagnostics can name
    /// it); a shape error comes back naming the layer.
    ///
    /// # Errors
    /// [`Error::Architecture`] for shape errors, others unchanged.
    pub fn forward_layer(&mut self, i: usize, g: &mut Graph, x: Var) -> Result<Var> {
        g.live(&[x])?;
        let (Some(layer), Some(name)) = (self.layers.get_mut(i), self.child_names.get(i)) else {
            return Err(Error::Graph {
                detail: format!("{} has no layer {i}", self.name),
            });
        };
        let previous = g.enter_scope(name);
        let y = layer.forward(g, x);
        g.leave_scope(previous);
        y.map_err(|e| match e {
            Error::Shape { op, detail } => Error::Architecture {
                layer: name.clone(),
                detail: format!("{op} on input {:?}: {detail}", g.shape(x)),
            },
            other => other,
        })
    }
}

impl Module for Sequential {
    fn forward(&mut self, g: &mut Graph, mut x: Var) -> Result<Var> {
        for i in 0..self.layers.len() {
            x = self.forward_layer(i, g, x)?;
        }
        Ok(x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit(&join_name(prefix, &i.to_string()), f);
        }
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_mut(&join_name(prefix, &i.to_string()), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }
}
