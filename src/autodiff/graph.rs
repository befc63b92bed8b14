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
//! Next: [`super::ops`], where each op's forward and backward stand side by side.

use super::buffers::BufferPool;
use crate::error::{Error, Result};
use ndarray::{ArrayD, ArrayViewD};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// How one op turns the gradient of its output into gradients of its inputs.
///
/// Implementations are small structs holding whatever forward computed that backward needs
/// beyond the input and output values (the tape keeps those): a convolution's geometry,
/// max-pool's winners, batch norm's statistics. `Debug` names the op in [`Graph::dump`].
pub trait Backward: fmt::Debug + Send + Sync {
    /// Given ∂L/∂y in `ctx`, returns ∂L/∂(input i) for each input, in order. Return `None`
    /// for inputs where [`BackwardCtx::needs`] is false (constants, data): skipping them saves
    /// work, e.g. the first convolution never computes a gradient for the images.
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Vec<Option<ArrayD<f32>>>>;

    /// Multiply-adds of the op's forward pass, for traces: the products (linear layers,
    /// convolutions) count theirs; element-wise ops and reshapes count 0.
    fn macs(&self) -> u128 {
        0
    }
}

/// What an op's backward may read, plus the buffer pool for its results. It reads the
/// inputs straight from the tape (no list is built per node).
pub struct BackwardCtx<'a> {
    nodes: &'a [Node],
    inputs: &'a [Var],
    output: &'a ArrayD<f32>,
    d_y: &'a ArrayD<f32>,
    pool: &'a mut BufferPool,
}

impl<'a> BackwardCtx<'a> {
    /// The value of input `i`, as forward saw it.
    pub fn input(&self, i: usize) -> &'a ArrayD<f32> {
        &self.nodes[self.inputs[i].index].value
    }
    /// Input `i`'s values as a flat slice.
    pub fn input_slice(&self, i: usize) -> &'a [f32] {
        as_slice(self.input(i))
    }
    /// Whether input `i` wants a gradient.
    pub fn needs(&self, i: usize) -> bool {
        self.nodes[self.inputs[i].index].requires_grad
    }
    /// The op's output value.
    pub fn output(&self) -> &'a ArrayD<f32> {
        self.output
    }
    /// ∂L/∂y, the gradient arriving at the output (same shape as the output).
    pub fn d_y(&self) -> &'a ArrayD<f32> {
        self.d_y
    }
    /// ∂L/∂y as a flat slice.
    pub fn d_y_slice(&self) -> &'a [f32] {
        as_slice(self.d_y)
    }
    /// A buffer for a result, contents unspecified: the caller writes every element.
    pub fn alloc(&mut self, shape: &[usize]) -> ArrayD<f32> {
        self.pool.alloc(shape)
    }
    /// A zeroed buffer for a result that is accumulated.
    pub fn zeros(&mut self, shape: &[usize]) -> ArrayD<f32> {
        self.pool.zeros(shape)
    }
    /// How many inputs the op read.
    pub fn inputs_len(&self) -> usize {
        self.inputs.len()
    }
    /// ∂L/∂(input i), computed by `kernel` into a fresh buffer of `shape` — or `None`, without
    /// running the kernel, when input `i` does not exist (an absent bias) or needs no gradient.
    pub fn grad_for(
        &mut self,
        i: usize,
        shape: &[usize],
        kernel: impl FnOnce(&mut [f32]),
    ) -> Option<ArrayD<f32>> {
        if i >= self.inputs.len() || !self.needs(i) {
            return None;
        }
        let mut d = self.pool.alloc(shape);
        kernel(as_slice_mut(&mut d));
        Some(d)
    }
    /// Returns a scratch tensor to the pool.
    pub fn recycle(&mut self, a: ArrayD<f32>) {
        self.pool.recycle(a);
    }
    /// ∂L/∂(input i) and ∂L/∂(input j), each shaped as given. When both are needed, `both`
    /// computes them in one call (for a kernel that shares work between the two); otherwise
    /// whichever is needed is computed alone, as by [`BackwardCtx::grad_for`].
    pub fn grads_for_pair(
        &mut self,
        (i, shape_i): (usize, &[usize]),
        (j, shape_j): (usize, &[usize]),
        both: impl FnOnce(&mut [f32], &mut [f32]),
        only_i: impl FnOnce(&mut [f32]),
        only_j: impl FnOnce(&mut [f32]),
    ) -> (Option<ArrayD<f32>>, Option<ArrayD<f32>>) {
        let wanted = |ctx: &Self, k: usize| k < ctx.inputs.len() && ctx.needs(k);
        if wanted(self, i) && wanted(self, j) {
            let (mut d_i, mut d_j) = (self.pool.alloc(shape_i), self.pool.alloc(shape_j));
            both(as_slice_mut(&mut d_i), as_slice_mut(&mut d_j));
            return (Some(d_i), Some(d_j));
        }
        (
            self.grad_for(i, shape_i, only_i),
            self.grad_for(j, shape_j, only_j),
        )
    }
    /// A buffer shaped like input `i` (the usual shape of its gradient).
    pub fn alloc_like_input(&mut self, i: usize) -> ArrayD<f32> {
        let shape = self.input(i).raw_dim();
        self.pool.alloc(ndarray::Dimension::slice(&shape))
    }
}

/// Whether every number of `a` is finite.
fn all_finite(a: &ArrayD<f32>) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// The flat, row-major data of a tape value.
pub(crate) fn as_slice(a: &ArrayD<f32>) -> &[f32] {
    // Invariant: every value on the tape is created in standard layout (by the pool, or
    // copied into it by `Graph::constant`), so it is one contiguous slice.
    a.as_slice()
        .unwrap_or_else(|| unreachable!("tape values are contiguous"))
}

/// Mutable flat data of a freshly allocated value (see [`as_slice`] for the invariant).
pub(crate) fn as_slice_mut(a: &mut ArrayD<f32>) -> &mut [f32] {
    a.as_slice_mut()
        .unwrap_or_else(|| unreachable!("tape values are contiguous"))
}

/// One record on the tape.
struct Node {
    value: ArrayD<f32>,
    inputs: Vec<Var>,
    /// `None` for leaves (data, parameters) and for anything recorded without gradients.
    op: Option<Box<dyn Backward>>,
    requires_grad: bool,
    /// The layer that recorded it, as an index into `Graph::scopes`.
    scope: usize,
    /// The op's Rust type, for the profiler ("leaf" for data and parameters).
    kind: &'static str,
}

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
    /// Time per op type, when profiling ([`Graph::enable_profile`]).
    profile: Option<Box<super::profile::Profile>>,
    /// Input lists of the last step's nodes, emptied and kept for the next step's.
    spare_inputs: Vec<Vec<Var>>,
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
            profile: None,
            spare_inputs: Vec::new(),
        }
    }

    /// Starts timing every op, forward and backward, from the next node on.
    pub fn enable_profile(&mut self) {
        self.profile = Some(Box::new(super::profile::Profile::new()));
    }

    /// Time per op type since [`Graph::enable_profile`], the most expensive first (empty when
    /// profiling is off).
    pub fn profile(&self) -> Vec<super::profile::ProfileRow> {
        self.profile.as_ref().map_or_else(Vec::new, |p| p.rows())
    }

    /// The tape as it stands (the last step, after a training step), one row per node: what
    /// `handgrad trace` prints. Times are filled in when profiling is on.
    pub fn trace(&self) -> Vec<super::profile::TraceRow> {
        let times = self.profile.as_deref();
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| super::profile::TraceRow {
                index: i,
                // An op's own description when it is short (`ActivationOp { act: Selu }`),
                // else its type's name.
                op: n
                    .op
                    .as_ref()
                    .map(|op| format!("{op:?}"))
                    .filter(|d| d.len() <= 30)
                    .unwrap_or_else(|| super::profile::short_type_name(n.kind)),
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
        if let Some(p) = self.profile.as_mut() {
            p.new_step();
        }
        for node in self.nodes.drain(..) {
            self.pool.recycle(node.value);
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
    pub fn param(&mut self, id: ParamId, value: &ArrayD<f32>) -> Var {
        if let Some(&var) = self.params.get(&id) {
            return var;
        }
        let copy = self.pool.copy_of(&value.view());
        let var = self.push_leaf(copy, self.recording);
        self.params.insert(id, var);
        var
    }

    fn push_leaf(&mut self, value: ArrayD<f32>, requires_grad: bool) -> Var {
        if let Some(p) = self.profile.as_mut() {
            p.forward("leaf");
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
    pub fn record(
        &mut self,
        op: impl Backward + 'static,
        inputs: &[Var],
        value: ArrayD<f32>,
    ) -> Var {
        debug_assert!(
            value.is_standard_layout(),
            "{op:?} produced a non-contiguous value"
        );
        let requires_grad = self.recording && inputs.iter().any(|&v| self.node(v).requires_grad);
        let kind = std::any::type_name_of_val(&op);
        if let Some(p) = self.profile.as_mut() {
            p.forward(kind);
        }
        let (op, inputs): (Option<Box<dyn Backward>>, Vec<Var>) = if requires_grad {
            let mut list = self.spare_inputs.pop().unwrap_or_default();
            list.extend_from_slice(inputs);
            (Some(Box::new(op)), list)
        } else {
            (None, Vec::new())
        };
        self.nodes.push(Node {
            value,
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
    pub fn value(&self, v: Var) -> &ArrayD<f32> {
        &self.node(v).value
    }

    /// The value of `v` as a flat row-major slice.
    ///
    /// # Panics
    /// As [`Graph::value`].
    pub fn data(&self, v: Var) -> &[f32] {
        as_slice(&self.node(v).value)
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
        let shape = self.node(loss).value.raw_dim();
        let mut seed = self.pool.alloc(ndarray::Dimension::slice(&shape));
        seed.fill(1.0);
        self.backward_from(loss, seed)
    }

    /// Backpropagates with an explicit seed ∂L/∂y for `y` (any shape): the gradient of
    /// L = Σ seed ⊙ y. [`Graph::backward`] is this with a seed of 1.
    ///
    /// # Errors
    /// As [`Graph::backward`], and [`Error::Shape`] if the seed's shape differs from `y`'s.
    pub fn backward_from(&mut self, y: Var, seed: ArrayD<f32>) -> Result<()> {
        self.backward_pass(y, seed, false).map(|_| ())
    }

    /// Backward from `y` as [`Graph::backward_from`], but checking every gradient an op
    /// returns; stops at the first op that turns finite gradients into NaN or infinity.
    fn backward_pass(&mut self, y: Var, seed: ArrayD<f32>, check: bool) -> Result<Option<Place>> {
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
                output: &node.value,
                d_y: &d_y,
                pool: &mut self.pool,
            };
            let started = self.profile.is_some().then(std::time::Instant::now);
            let input_grads = op.backward(&mut ctx)?;
            if let (Some(p), Some(t)) = (self.profile.as_mut(), started) {
                p.backward(i, node.kind, t.elapsed());
            }
            if check && all_finite(&d_y) {
                let bad = input_grads.iter().flatten().any(|g| !all_finite(g));
                if bad {
                    return Ok(Some(self.place(i, Pass::Backward)));
                }
            }
            for (k, grad) in input_grads.into_iter().enumerate() {
                if let Some(grad) = grad {
                    let input = self.nodes[i].inputs[k];
                    self.accumulate(i, input, grad)?;
                }
            }
            // An intermediate's gradient is not needed once passed on: recycle it.
            self.pool.recycle(d_y);
        }
        Ok(None)
    }

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
        let i = self.nodes.iter().position(|n| !all_finite(&n.value))?;
        Some(self.place(i, Pass::Forward))
    }

    /// Runs backward from the scalar `loss` again, checking every gradient as it is made, and
    /// names the first op whose backward turned finite gradients into NaN or infinity. For
    /// diagnosing a step whose parameter gradients came out non-finite; costs one backward.
    ///
    /// # Errors
    /// As [`Graph::backward`].
    pub fn first_non_finite_gradient(&mut self, loss: Var) -> Result<Option<Place>> {
        self.live(&[loss])?;
        let shape = self.node(loss).value.raw_dim();
        let mut seed = self.pool.alloc(ndarray::Dimension::slice(&shape));
        seed.fill(1.0);
        self.backward_pass(loss, seed, true)
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
