//! The tape: reverse-mode automatic differentiation as a list of recorded operations.
//!
//! Training needs ∂L/∂θ for every parameter θ. The chain rule gives it if we remember how the
//! loss was computed. So every op run through a [`Graph`] *records* itself: its output value,
//! which values it read (its inputs), and a small struct that knows how to turn ∂L/∂output
//! into ∂L/∂input (its [`Backward`]). The records form a Wengert list — a straight-line
//! program — in creation order, which is already a topological order: an op can only read
//! values created before it.
//!
//! [`Graph::backward`] seeds ∂L/∂L = 1 and walks the list **in reverse**. Each node hands the
//! gradient arriving at its output to its op's backward, and adds (`+=`, never `=`) the
//! returned gradients into its inputs' slots. A value read by two ops therefore receives both
//! contributions — that sum *is* the multivariate chain rule.
//!
//! A [`Var`] is an index into the list (`Copy`, no reference counting), stamped with the
//! graph it belongs to and the step it was made in: after [`Graph::reset`] the list is reused
//! for the next step, and an old `Var` would silently name some other value, so ops refuse it
//! with an error instead. Parameters enter
//! the tape through [`Graph::param`], which remembers their [`ParamId`] so the optimiser can
//! ask for ∂L/∂θ afterwards. [`Graph::reset`] clears the list for the next step and keeps the
//! buffers (see [`super::buffers`]).
//!
//! This file is the tape itself: [`Graph::record`] (the one door into it), [`Graph::backward`]
//! (the walk) and `accumulate` (the one place gradients are summed). Its rooms, in
//! `src/autodiff/graph/`: `leaves.rs` (how data, constants and parameters enter the tape),
//! `backward.rs` (the [`Backward`] trait and what an op's backward may read) and `inspect.rs`
//! ([`Graph::dump`], [`Graph::trace`], [`Graph::profile`], the non-finite search). Timing
//! watches the tape from outside, through a [`TapeObserver`].
//!
//! Next: [`super::ops`], where each op's forward and backward stand side by side.

mod backward;
mod inspect;
mod leaves;
mod value;

pub(crate) use backward::{as_slice, as_slice_mut};
pub use backward::{Backward, BackwardCtx, Grads};
pub(crate) use inspect::all_finite;
pub use inspect::{Pass, Place};

use super::buffers::BufferPool;
use super::observe::TapeObserver;
use crate::error::{Error, Result};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use value::Value;

/// A value on the tape: an index into the graph's node list, with the graph's identity and
/// the step (the number of resets so far) it was created in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var {
    index: usize,
    graph: u32,
    step: u32,
}

impl Var {
    /// Position on the tape (creation order).
    pub fn index(self) -> usize {
        self.index
    }
}

/// A process-unique identity for a parameter tensor, so the tape can map gradients back to the
/// [`crate::nn::Param`] they belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

impl ParamId {
    /// A fresh id, never handed out before in this process.
    pub fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        ParamId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One record on the tape.
struct Node {
    value: Value,
    inputs: Vec<Var>,
    /// `None` for leaves (data, parameters) and for anything recorded without gradients.
    op: Option<Box<dyn Backward>>,
    requires_grad: bool,
    /// The layer that recorded it, as an index into `Graph::scopes`.
    scope: usize,
    /// The op's Rust type, for the profiler ("leaf" for data and parameters).
    kind: &'static str,
}

/// The tape of one forward pass, and the gradients of one backward pass.
///
/// # Example
/// ```
/// use handgrad::autodiff::Graph;
/// use ndarray::arr1;
/// # fn main() -> handgrad::Result<()> {
/// let mut g = Graph::new();
/// let x = g.leaf(arr1(&[3.0f32]).into_dyn(), true);
/// let y = g.mul(x, x)?;            // y = x²
/// let l = g.sum(y)?;
/// g.backward(l)?;
/// assert_eq!(g.grad(x).unwrap()[[0]], 6.0); // dy/dx = 2x
/// # Ok(()) }
/// ```
pub struct Graph {
    /// This graph's identity, stamped into its `Var`s.
    id: u32,
    /// How many times the tape was reset: `Var`s of earlier steps are stale.
    step: u32,
    nodes: Vec<Node>,
    grads: Vec<Option<ArrayD<f32>>>,
    params: HashMap<ParamId, Var>,
    pool: BufferPool,
    recording: bool,
    conv_algo: kernels::conv2d::Conv2dAlgo,
    /// Layer names seen so far (index 0 is "", outside any layer); kept across resets, so a
    /// step names its layers without allocating.
    scopes: Vec<String>,
    /// The scope new nodes are recorded in.
    scope: usize,
    /// Watches the tape, when one is set ([`Graph::observe`]): the profiler, say.
    observer: Option<Box<dyn TapeObserver>>,
    /// Input lists of the last step's nodes, emptied and kept for the next step's.
    spare_inputs: Vec<Vec<Var>>,
    /// The last step's backward objects by tape position. A training loop records the same
    /// ops in the same order every step, so the op recorded at a position is almost always
    /// of the type that was there before, and is moved into that box instead of a new one.
    spare_ops: Vec<Option<Box<dyn Backward>>>,
}

/// `op` in a box: `spare`, when it holds an op of the same type (moved into it, no
/// allocation), else a new one.
fn boxed<T: Backward>(op: T, spare: Option<Box<dyn Backward>>) -> Box<dyn Backward> {
    match spare {
        Some(mut spare) => {
            let any: &mut dyn std::any::Any = spare.as_mut();
            match any.downcast_mut::<T>() {
                Some(slot) => {
                    *slot = op;
                    spare
                }
                None => Box::new(op),
            }
        }
        None => Box::new(op),
    }
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    /// An empty tape that records gradients and convolves with im2col + GEMM.
    pub fn new() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        Graph {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            step: 0,
            nodes: Vec::new(),
            grads: Vec::new(),
            params: HashMap::new(),
            pool: BufferPool::default(),
            recording: true,
            conv_algo: kernels::conv2d::Conv2dAlgo::default(),
            scopes: vec![String::new()],
            scope: 0,
            observer: None,
            spare_inputs: Vec::new(),
            spare_ops: Vec::new(),
        }
    }

    /// Lets `observer` watch every node recorded and every backward call from now on
    /// (replacing any observer set before).
    pub fn observe(&mut self, observer: Box<dyn TapeObserver>) {
        self.observer = Some(observer);
    }

    /// The observer set with [`Graph::observe`], if it is a `T`.
    pub fn observer<T: TapeObserver>(&self) -> Option<&T> {
        self.observer.as_ref()?.as_any().downcast_ref()
    }

    /// Which convolution implementation ops use from now on.
    pub fn set_conv_algo(&mut self, algo: kernels::conv2d::Conv2dAlgo) {
        self.conv_algo = algo;
    }

    /// The convolution implementation in use.
    pub fn conv_algo(&self) -> kernels::conv2d::Conv2dAlgo {
        self.conv_algo
    }

    /// Turns gradient recording off (evaluation) or back on. Without recording, ops still
    /// compute their values but keep no backward information, and nothing requires a gradient.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Records the nodes that follow as belonging to layer `name` (a [`crate::nn::Sequential`]
    /// calls this around each child), so errors and diagnostics can name the layer. Returns
    /// the scope to restore with [`Graph::leave_scope`].
    pub fn enter_scope(&mut self, name: &str) -> usize {
        let previous = self.scope;
        self.scope = match self.scopes.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                self.scopes.push(name.to_string());
                self.scopes.len() - 1
            }
        };
        previous
    }

    /// Goes back to the scope [`Graph::enter_scope`] returned.
    pub fn leave_scope(&mut self, previous: usize) {
        self.scope = previous.min(self.scopes.len() - 1);
    }

    /// Whether ops are being recorded for backward.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Clears the tape for the next step, keeping every buffer for reuse. Every `Var` made so
    /// far becomes stale: ops refuse it.
    pub fn reset(&mut self) {
        self.step = self.step.wrapping_add(1);
        if let Some(o) = self.observer.as_mut() {
            o.step_started();
        }
        self.spare_ops.clear();
        for node in self.nodes.drain(..) {
            if let Value::Pooled(value) = node.value {
                self.pool.recycle(value);
            }
            self.spare_ops.push(node.op);
            let mut list = node.inputs;
            if list.capacity() > 0 {
                list.clear();
                self.spare_inputs.push(list);
            }
        }
        for grad in self.grads.drain(..).flatten() {
            self.pool.recycle(grad);
        }
        self.params.clear();
    }

    /// Floats held by the buffer pool's spares: after [`Graph::reset`] this is what the next
    /// step can reuse without allocating.
    pub fn pooled_floats(&self) -> usize {
        self.pool.spare_floats()
    }

    /// Number of values on the tape.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tape is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A handle to node `index` of this step.
    fn var(&self, index: usize) -> Var {
        Var {
            index,
            graph: self.id,
            step: self.step,
        }
    }

    /// Why `v` cannot be used on this graph now, if it cannot.
    fn stale(&self, v: Var) -> Option<String> {
        if v.graph != self.id {
            Some(format!(
                "%{} belongs to another graph; a Var can only be used on the graph that made it",
                v.index
            ))
        } else if v.step != self.step || v.index >= self.nodes.len() {
            Some(format!(
                "%{} was made before the graph was reset; a Var is only valid within the step \
                 (between two resets) that made it",
                v.index
            ))
        } else {
            None
        }
    }

    /// Checks that every `Var` an op was given is a value of this graph's current step. Every
    /// op calls it first, so a stale handle is an error, never a read of some other value.
    ///
    /// # Errors
    /// [`Error::Graph`] naming the first stale handle.
    pub fn live(&self, vars: &[Var]) -> Result<()> {
        match vars.iter().find_map(|&v| self.stale(v)) {
            Some(detail) => Err(Error::Graph { detail }),
            None => Ok(()),
        }
    }

    /// The node behind `v`.
    ///
    /// # Panics
    /// If `v` is stale (see [`Graph::live`]), with a message saying so: reading a value
    /// through a stale handle is a bug in the calling code, as indexing past a slice's end is.
    fn node(&self, v: Var) -> &Node {
        if let Some(why) = self.stale(v) {
            panic!("{why}");
        }
        &self.nodes[v.index]
    }

    /// Appends the result of an op: its value, the inputs it read and its backward.
    ///
    /// This is the one door through which every op enters the tape, built-in or your own. The
    /// output needs a gradient if any input does; without recording, the op is dropped.
    pub fn record<T: Backward>(&mut self, op: T, inputs: &[Var], value: ArrayD<f32>) -> Var {
        debug_assert!(
            value.is_standard_layout(),
            "{op:?} produced a non-contiguous value"
        );
        let requires_grad = self.recording && inputs.iter().any(|&v| self.node(v).requires_grad);
        let kind = std::any::type_name_of_val(&op);
        if let Some(o) = self.observer.as_mut() {
            o.recorded(self.nodes.len(), kind);
        }
        let (op, inputs): (Option<Box<dyn Backward>>, Vec<Var>) = if requires_grad {
            let mut list = self.spare_inputs.pop().unwrap_or_default();
            list.extend_from_slice(inputs);
            let spare = self
                .spare_ops
                .get_mut(self.nodes.len())
                .and_then(Option::take);
            (Some(boxed(op, spare)), list)
        } else {
            (None, Vec::new())
        };
        self.nodes.push(Node {
            value: Value::Pooled(value),
            inputs,
            op,
            requires_grad,
            scope: self.scope,
            kind,
        });
        self.var(self.nodes.len() - 1)
    }

    /// The value of `v`.
    ///
    /// # Panics
    /// If `v` is stale (made before the last [`Graph::reset`], or by another graph).
    /// If `v` is a parameter and the optimiser's step has run since (see
    /// [`Graph::release_params`]): its value is then read from its layer.
    pub fn value(&self, v: Var) -> ArrayViewD<'_, f32> {
        self.node(v).value.view()
    }

    /// The value of `v` as a flat row-major slice.
    ///
    /// # Panics
    /// As [`Graph::value`].
    pub fn data(&self, v: Var) -> &[f32] {
        self.node(v).value.as_slice()
    }

    /// The shape of `v`.
    ///
    /// # Panics
    /// As [`Graph::value`].
    pub fn shape(&self, v: Var) -> &[usize] {
        self.node(v).value.shape()
    }

    /// Whether gradients flow back into `v`.
    ///
    /// # Panics
    /// As [`Graph::value`].
    pub fn requires_grad(&self, v: Var) -> bool {
        self.node(v).requires_grad
    }

    /// The single number held by a scalar (or one-element) value.
    ///
    /// # Errors
    /// [`Error::Shape`] when `v` holds more than one number.
    pub fn scalar(&self, v: Var) -> Result<f32> {
        self.live(&[v])?;
        match self.data(v) {
            [x] => Ok(*x),
            other => Err(Error::shape(
                "scalar",
                format!(
                    "expected one number, the value has shape {:?} ({} numbers)",
                    self.shape(v),
                    other.len()
                ),
            )),
        }
    }

    /// A buffer from the pool for an op's output (contents unspecified).
    pub fn alloc(&mut self, shape: &[usize]) -> ArrayD<f32> {
        self.pool.alloc(shape)
    }

    /// Backpropagates from a scalar loss: afterwards [`Graph::grad`] holds ∂loss/∂v for every
    /// leaf `v` that requires a gradient.
    ///
    /// # Errors
    /// [`Error::Graph`] if `loss` is not a single number or does not depend on anything that
    /// requires a gradient (recorded without gradients, say); errors from an op's backward.
    pub fn backward(&mut self, loss: Var) -> Result<()> {
        self.live(&[loss])?;
        if self.node(loss).value.len() != 1 {
            return Err(Error::Graph {
                detail: format!(
                    "backward needs a scalar loss, this value has shape {:?}",
                    self.shape(loss)
                ),
            });
        }
        let seed = self.unit_seed(loss)?;
        self.backward_from(loss, seed)
    }

    /// ∂loss/∂loss = 1, shaped like `loss`, in a pooled buffer.
    fn unit_seed(&mut self, loss: Var) -> Result<ArrayD<f32>> {
        self.live(&[loss])?;
        let shape = IxDyn(self.node(loss).value.shape());
        let mut seed = self.pool.alloc(ndarray::Dimension::slice(&shape));
        seed.fill(1.0);
        Ok(seed)
    }

    /// Backpropagates with an explicit seed ∂L/∂y for `y` (any shape): the gradient of
    /// L = Σ seed ⊙ y. [`Graph::backward`] is this with a seed of 1.
    ///
    /// # Errors
    /// As [`Graph::backward`], and [`Error::Shape`] if the seed's shape differs from `y`'s.
    pub fn backward_from(&mut self, y: Var, seed: ArrayD<f32>) -> Result<()> {
        self.backward_walk(y, seed, |_, _| false).map(|_| ())
    }

    /// The walk: from `y`, seeded with ∂L/∂y, every node in reverse creation order hands the
    /// gradient at its output to its op's backward and adds what comes back into its inputs'
    /// gradients. `stop_after(d_y, input_grads)` may end the walk after a node (the non-finite
    /// search does); the node's index is returned then.
    fn backward_walk(
        &mut self,
        y: Var,
        seed: ArrayD<f32>,
        mut stop_after: impl FnMut(&ArrayD<f32>, &[Option<ArrayD<f32>>]) -> bool,
    ) -> Result<Option<usize>> {
        self.live(&[y])?;
        if seed.shape() != self.shape(y) {
            return Err(Error::shape(
                "backward",
                format!(
                    "seed shape {:?} differs from the value's {:?}",
                    seed.shape(),
                    self.shape(y)
                ),
            ));
        }
        if !self.node(y).requires_grad {
            return Err(Error::Graph {
                detail:
                    "backward: this value does not depend on anything that requires a gradient \
                         (was it computed with recording off, from constants only?)"
                        .into(),
            });
        }
        for old in self.grads.drain(..).flatten() {
            self.pool.recycle(old);
        }
        self.grads.resize_with(y.index + 1, || None);
        self.grads[y.index] = Some(seed);
        for i in (0..=y.index).rev() {
            let Some(op) = self.nodes[i].op.as_ref() else {
                continue;
            };
            let Some(d_y) = self.grads[i].take() else {
                continue;
            };
            let node = &self.nodes[i];
            let mut ctx = BackwardCtx {
                nodes: &self.nodes,
                inputs: &node.inputs,
                output: node.value.pooled(),
                d_y: &d_y,
                pool: &mut self.pool,
            };
            if let Some(o) = self.observer.as_mut() {
                o.backward_started(i, node.kind);
            }
            let mut input_grads = op.backward(&mut ctx)?;
            if let Some(o) = self.observer.as_mut() {
                o.backward_finished(i, node.kind);
            }
            if stop_after(&d_y, input_grads.as_slice()) {
                return Ok(Some(i));
            }
            for k in 0..input_grads.as_slice().len() {
                if let Some(grad) = input_grads.take(k) {
                    let input = self.nodes[i].inputs[k];
                    self.accumulate(i, input, grad)?;
                }
            }
            // An intermediate's gradient is not needed once passed on: recycle it.
            self.pool.recycle(d_y);
        }
        Ok(None)
    }

    /// grads[input] += grad: the one place where gradients are summed.
    fn accumulate(&mut self, from: usize, input: Var, grad: ArrayD<f32>) -> Result<()> {
        let want = self.nodes[input.index].value.shape();
        if grad.shape() != want {
            return Err(Error::Graph {
                detail: format!(
                    "backward of {:?} returned a gradient of shape {:?} for an input of shape {:?}",
                    self.nodes[from].op,
                    grad.shape(),
                    want
                ),
            });
        }
        if !self.nodes[input.index].requires_grad {
            self.pool.recycle(grad);
            return Ok(());
        }
        match &mut self.grads[input.index] {
            Some(existing) => {
                *existing += &grad;
                self.pool.recycle(grad);
            }
            slot @ None => *slot = Some(grad),
        }
        Ok(())
    }

    /// ∂L/∂v after [`Graph::backward`], for a leaf that requires a gradient (`None` if no path
    /// leads from `v` to the loss, or if `v` is stale). Intermediate values' gradients are
    /// recycled during the pass.
    pub fn grad(&self, v: Var) -> Option<&ArrayD<f32>> {
        if self.stale(v).is_some() {
            return None;
        }
        self.grads.get(v.index).and_then(Option::as_ref)
    }

    /// ∂L/∂θ for the parameter with this id, if it was used in this step.
    pub fn param_grad(&self, id: ParamId) -> Option<&ArrayD<f32>> {
        self.params.get(&id).and_then(|&v| self.grad(v))
    }

    /// Lets go of the tape's handles to the parameters' numbers (see [`Graph::param`]),
    /// keeping their shapes and gradients: after backward nothing on the tape reads them
    /// again, and while the tape holds a handle, updating a parameter in place would copy it
    /// first. [`crate::optim::Optimizer::step`] calls it before its update.
    pub fn release_params(&mut self) {
        for &var in self.params.values() {
            self.nodes[var.index].value.release();
        }
    }
}
