//! Looking at the tape: the computation as text ([`Graph::dump`]), one row per node with
//! shapes, costs and times ([`Graph::trace`], what `handgrad trace` prints), the time per op
//! type ([`Graph::profile`]), and where a diverging step first produced a NaN or an infinity.
//!
//! None of this is needed to train; it is what makes the tape something a learner (or a
//! debugging developer) can see. The timing itself is a [`TapeObserver`](crate::autodiff::TapeObserver)
//! that watches the tape from outside: [`crate::autodiff::profile`].

use super::{as_slice, Graph, Var};
use crate::autodiff::profile::{short_type_name, Profile, ProfileRow, TraceRow};
use crate::error::Result;
use ndarray::ArrayD;
use std::fmt;

/// Which pass of a step a value belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The forward pass: an op's output.
    Forward,
    /// The backward pass: the gradient an op's backward returned for one of its inputs.
    Backward,
}

/// Where on the tape something happened: which node, which op, which layer, which pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The node's position on the tape.
    pub node: usize,
    /// The op, as `Debug` prints it (`Linear { n: 64, d_in: 145, d_out: 98 }`), or `leaf`.
    pub op: String,
    /// The layer that recorded it (`encoder.7`), empty outside any layer.
    pub scope: String,
    /// Forward or backward.
    pub pass: Pass,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pass = match self.pass {
            Pass::Forward => "forward pass",
            Pass::Backward => "backward pass",
        };
        let op = self.op.split([' ', '{', '(']).next().unwrap_or("op");
        match (op, self.scope.is_empty()) {
            ("leaf", true) => write!(f, "the input data (tape node %{})", self.node),
            ("leaf", false) => write!(
                f,
                "a parameter of layer {} (tape node %{}): the weights themselves already held it",
                self.scope, self.node
            ),
            (_, true) => write!(f, "the {pass} of {op} (tape node %{})", self.node),
            (_, false) => write!(
                f,
                "the {pass} of layer {} ({op}, tape node %{})",
                self.scope, self.node
            ),
        }
    }
}

/// Whether every number of a tape value (a gradient, say) is finite: the vectorised
/// [`kernels::reduce::all_finite`] over its contiguous numbers.
pub(crate) fn all_finite(values: &ArrayD<f32>) -> bool {
    kernels::reduce::all_finite(as_slice(values))
}

impl Graph {
    /// Starts timing every op, forward and backward, from the next node on.
    pub fn enable_profile(&mut self) {
        self.observe(Box::new(Profile::new()));
    }

    /// Time per op type since [`Graph::enable_profile`], the most expensive first (empty when
    /// profiling is off).
    pub fn profile(&self) -> Vec<ProfileRow> {
        self.observer::<Profile>()
            .map_or_else(Vec::new, Profile::rows)
    }

    /// The tape as it stands (the last step, after a training step), one row per node: what
    /// `handgrad trace` prints. Times are filled in when profiling is on.
    pub fn trace(&self) -> Vec<TraceRow> {
        let times = self.observer::<Profile>();
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| TraceRow {
                index: i,
                // The op's label if it has one (`Conv2d + selu`), else its own description
                // when short (`ActivationOp { act: Selu }`), else its type's name.
                op: n
                    .op
                    .as_ref()
                    .and_then(|op| op.label())
                    .or_else(|| {
                        n.op.as_ref()
                            .map(|op| format!("{op:?}"))
                            .filter(|d| d.len() <= 30)
                    })
                    .unwrap_or_else(|| short_type_name(n.kind)),
                scope: self.scopes.get(n.scope).cloned().unwrap_or_default(),
                inputs: n.inputs.iter().map(|v| v.index).collect(),
                input_shapes: n
                    .inputs
                    .iter()
                    .map(|v| self.nodes[v.index].value.shape().to_vec())
                    .collect(),
                output: n.value.shape().to_vec(),
                macs: n.op.as_ref().map_or(0, |op| op.macs()),
                forward: times.and_then(|p| p.node_forward(i)),
                backward: times.and_then(|p| p.node_backward(i)),
            })
            .collect()
    }

    /// Where node `node` sits: its op, its layer, the pass.
    fn place(&self, node: usize, pass: Pass) -> Place {
        let n = &self.nodes[node];
        Place {
            node,
            op: n
                .op
                .as_ref()
                .map_or_else(|| "leaf".to_string(), |op| format!("{op:?}")),
            scope: self.scopes[n.scope].clone(),
            pass,
        }
    }

    /// The first value on the tape, in creation order, that holds a NaN or an infinity: where
    /// a diverging forward pass went wrong. `None` if every value is finite.
    pub fn first_non_finite_value(&self) -> Option<Place> {
        let i = self.nodes.iter().position(|n| {
            n.value
                .numbers()
                .is_some_and(|data| !kernels::reduce::all_finite(data))
        })?;
        Some(self.place(i, Pass::Forward))
    }

    /// Runs backward from the scalar `loss` again, checking every gradient as it is made, and
    /// names the first op whose backward turned finite gradients into NaN or infinity. For
    /// diagnosing a step whose parameter gradients came out non-finite; costs one backward.
    ///
    /// # Errors
    /// As [`Graph::backward`].
    pub fn first_non_finite_gradient(&mut self, loss: Var) -> Result<Option<Place>> {
        let seed = self.unit_seed(loss)?;
        // Stop at the first op whose backward was handed finite gradients and gave back some
        // that are not.
        let node = self.backward_walk(loss, seed, |d_y, input_grads| {
            all_finite(d_y) && input_grads.iter().flatten().any(|g| !all_finite(g))
        })?;
        Ok(node.map(|i| self.place(i, Pass::Backward)))
    }

    /// One line per node: index, op (with its settings), inputs and shape. The computation as
    /// the tape saw it, for debugging and for learning.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let what = match &node.op {
                Some(op) => format!("{op:?}"),
                None if node.requires_grad => "leaf (requires grad)".to_string(),
                None => "leaf".to_string(),
            };
            let inputs: Vec<String> = node
                .inputs
                .iter()
                .map(|v| format!("%{}", v.index))
                .collect();
            out.push_str(&format!(
                "%{i} = {what}({}) : {:?}\n",
                inputs.join(", "),
                node.value.shape()
            ));
        }
        out
    }
}
