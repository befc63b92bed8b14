//! The fully connected layer, y = x·wᵀ + b.

use super::{Init, Module, Name, Param, WeightBias};
use crate::autodiff::{Graph, Var};
use crate::error::Result;
use kernels::elementwise::Activation;
use rand::Rng;

/// A fully connected layer with weight (out, in) and optional bias (out).
///
/// # Shapes
/// x (N, in) → y (N, out).
#[derive(Debug)]
pub struct Linear {
    /// Weight (out, in) and bias (out).
    pub params: WeightBias,
}

impl Linear {
    /// A layer from `d_in` to `d_out` features, initialised by `init`.
    pub fn new(d_in: usize, d_out: usize, bias: bool, init: Init, rng: &mut impl Rng) -> Self {
        Linear {
            params: WeightBias::new(&[d_out, d_in], d_out, bias, init, rng),
        }
    }
}

impl Module for Linear {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = self.params.on(g);
        g.linear(x, w, b)
    }
    fn forward_then(&mut self, g: &mut Graph, x: Var, act: Activation) -> Option<Result<Var>> {
        let (w, b) = self.params.on(g);
        Some(g.linear_then(x, w, b, Some(act)))
    }
    fn forward_flat(
        &mut self,
        g: &mut Graph,
        x: Var,
        act: Option<Activation>,
        tail: Option<&[usize]>,
    ) -> Option<Result<Var>> {
        let (w, b) = self.params.on(g);
        Some(g.linear_flat(x, w, b, act, tail))
    }
    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        self.params.visit(name, f)
    }
    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        self.params.visit_mut(name, f)
    }
}
