//! How values enter the tape without an op: data and targets as constants (never a
//! gradient), leaves that want one, and parameters, remembered by their [`ParamId`] so the
//! optimiser can ask for ∂L/∂θ after backward.
//!
//! Every value is copied into (or handed over as) a buffer of the tape's pool, so that it
//! returns to the pool at the next reset and repeated steps allocate nothing; a parameter's
//! numbers are shared with its layer instead (see [`super::value`]).

use super::{Graph, Node, ParamId, Value, Var};
use ndarray::{ArcArray, ArrayD, ArrayViewD, IxDyn};

impl Graph {
    /// A data tensor that never gets a gradient (inputs, targets, noise).
    pub fn constant(&mut self, value: ArrayD<f32>) -> Var {
        self.leaf(value, false)
    }

    /// A constant that takes `value` as it is, without copying: for buffers that came from
    /// [`Graph::alloc`], so they return to the pool with the rest of the step's values.
    pub fn constant_owned(&mut self, value: ArrayD<f32>) -> Var {
        let value = if value.is_standard_layout() {
            value
        } else {
            self.pool.copy_of(&value.view())
        };
        self.push_leaf(value, false)
    }

    /// A copy of borrowed data as a constant, in a recycled buffer.
    pub fn constant_view(&mut self, value: ArrayViewD<'_, f32>) -> Var {
        let value = self.pool.copy_of(&value);
        self.push_leaf(value, false)
    }

    /// A leaf tensor; with `requires_grad` its gradient is kept after backward.
    ///
    /// The numbers are copied into a pooled buffer (and `value` is dropped): every buffer on
    /// the tape then comes from the pool and returns to it, so repeated steps allocate nothing.
    pub fn leaf(&mut self, value: ArrayD<f32>, requires_grad: bool) -> Var {
        let value = self.pool.copy_of(&value.view());
        self.push_leaf(value, requires_grad)
    }

    /// A parameter's current value as a leaf, remembered under its id. Asking twice in one
    /// step returns the same `Var`, so a shared parameter's gradients add up in one place.
    ///
    /// The numbers are not copied: the tape keeps a second handle to them (see
    /// `src/autodiff/graph/value.rs`) until [`Graph::release_params`] or the next reset.
    pub fn param(&mut self, id: ParamId, value: &ArcArray<f32, IxDyn>) -> Var {
        if let Some(&var) = self.params.get(&id) {
            return var;
        }
        let value = if value.is_standard_layout() {
            Value::Param(value.clone())
        } else {
            Value::Pooled(self.pool.copy_of(&value.view()))
        };
        let var = self.push_value(value, self.recording);
        self.params.insert(id, var);
        var
    }

    fn push_leaf(&mut self, value: ArrayD<f32>, requires_grad: bool) -> Var {
        self.push_value(Value::Pooled(value), requires_grad)
    }

    fn push_value(&mut self, value: Value, requires_grad: bool) -> Var {
        if let Some(o) = self.observer.as_mut() {
            o.recorded(self.nodes.len(), "leaf");
        }
        self.nodes.push(Node {
            value,
            inputs: Vec::new(),
            op: None,
            requires_grad: requires_grad && self.recording,
            scope: self.scope,
            kind: "leaf",
        });
        self.var(self.nodes.len() - 1)
    }
}
