//! Parameter-free layers: activations, flatten/unflatten, pooling and upsampling. They hold
//! no tensors but take a place (and an index) in a [`super::Sequential`], as in PyTorch.

use super::Module;
use crate::autodiff::{Activation, Graph, Var};
use crate::error::{Error, Result};

/// An activation function as a layer.
#[derive(Debug, Clone, Copy)]
pub struct Act(pub Activation);

impl Module for Act {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.activation(x, self.0)
    }
    fn as_activation(&self) -> Option<Activation> {
        Some(self.0)
    }
}

/// (N, …) → (N, product of …): from feature maps to a vector per sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.flatten(x)
    }
    fn as_reshape(&self) -> Option<Reshaping<'_>> {
        Some(Reshaping::Flatten)
    }
}

/// What a reshaping layer does ([`Module::as_reshape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshaping<'a> {
    /// (N, …) → (N, product of …).
    Flatten,
    /// (N, features) → (N, shape…).
    Unflatten(&'a [usize]),
}

/// (N, features) → (N, shape…): from a vector per sample back to feature maps.
#[derive(Debug, Clone)]
pub struct Unflatten(pub Vec<usize>);

impl Module for Unflatten {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let n = *g
            .shape(x)
            .first()
            .ok_or_else(|| Error::shape("unflatten", "cannot unflatten a scalar"))?;
        let mut shape = vec![n];
        shape.extend_from_slice(&self.0);
        g.reshape(x, &shape)
    }
    fn as_reshape(&self) -> Option<Reshaping<'_>> {
        Some(Reshaping::Unflatten(&self.0))
    }
}

/// Max-pooling with a square window.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
}

impl Module for MaxPool2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.max_pool2d(x, self.kernel, self.stride)
    }
}

/// Nearest-neighbour upsampling by an integer factor.
#[derive(Debug, Clone, Copy)]
pub struct Upsample(pub usize);

impl Module for Upsample {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.upsample_nearest2d(x, self.0)
    }
}
