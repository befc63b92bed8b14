//! Where a step's time goes, op by op: what `handgrad train --profile` prints.
//!
//! The profiler is a [`TapeObserver`]: told of every node the tape records, it books the time
//! since the previous node to the op just recorded (an op computes its value, then records
//! it: the gap is its forward time, plus whatever little the model did in between), and it
//! times each op's backward call. Off, the tape pays one branch per node.

use super::observe::TapeObserver;
use std::any::Any;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Accumulated time per op type, and the current step's time per node.
#[derive(Debug)]
pub(crate) struct Profile {
    last: Instant,
    forward: BTreeMap<&'static str, (usize, Duration)>,
    backward: BTreeMap<&'static str, (usize, Duration)>,
    /// This step's forward time of each node, in tape order.
    step_forward: Vec<Duration>,
    /// This step's backward time of each node that had one.
    step_backward: Vec<Option<Duration>>,
    /// When the backward call under way started.
    backward_from: Instant,
}

impl TapeObserver for Profile {
    fn step_started(&mut self) {
        self.new_step();
    }

    fn recorded(&mut self, _node: usize, kind: &'static str) {
        self.forward(kind);
    }

    fn backward_started(&mut self, _node: usize, _kind: &'static str) {
        self.backward_from = Instant::now();
    }

    fn backward_finished(&mut self, node: usize, kind: &'static str) {
        let took = self.backward_from.elapsed();
        self.backward(node, kind, took);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Profile {
    pub(crate) fn new() -> Self {
        Profile {
            last: Instant::now(),
            forward: BTreeMap::new(),
            backward: BTreeMap::new(),
            step_forward: Vec::new(),
            step_backward: Vec::new(),
            backward_from: Instant::now(),
        }
    }

    /// A new step begins: restart the forward clock, forget the last step's per-node times.
    pub(crate) fn new_step(&mut self) {
        self.last = Instant::now();
        self.step_forward.clear();
        self.step_backward.clear();
    }

    /// Books the time since the last mark to `kind`'s forward pass (the node recorded next).
    pub(crate) fn forward(&mut self, kind: &'static str) {
        let now = Instant::now();
        let took = now - self.last;
        let e = self.forward.entry(kind).or_default();
        e.0 += 1;
        e.1 += took;
        self.step_forward.push(took);
        self.last = now;
    }

    /// Books one backward call of node `node`, of type `kind`.
    pub(crate) fn backward(&mut self, node: usize, kind: &'static str, took: Duration) {
        let e = self.backward.entry(kind).or_default();
        e.0 += 1;
        e.1 += took;
        if self.step_backward.len() <= node {
            self.step_backward.resize(node + 1, None);
        }
        self.step_backward[node] = Some(took);
    }

    /// Node `i`'s forward time in the current step.
    pub(crate) fn node_forward(&self, i: usize) -> Option<Duration> {
        self.step_forward.get(i).copied()
    }

    /// Node `i`'s backward time in the current step.
    pub(crate) fn node_backward(&self, i: usize) -> Option<Duration> {
        self.step_backward.get(i).copied().flatten()
    }

    /// One row per op type, the most expensive first.
    pub(crate) fn rows(&self) -> Vec<ProfileRow> {
        let mut kinds: Vec<&'static str> = self
            .forward
            .keys()
            .chain(self.backward.keys())
            .copied()
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut rows: Vec<ProfileRow> = kinds
            .into_iter()
            .map(|k| {
                let (fc, ft) = self.forward.get(k).copied().unwrap_or_default();
                let (bc, bt) = self.backward.get(k).copied().unwrap_or_default();
                ProfileRow {
                    op: short_type_name(k),
                    forward_calls: fc,
                    forward: ft,
                    backward_calls: bc,
                    backward: bt,
                }
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.forward + r.backward));
        rows
    }
}

/// Time spent in one op type over a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileRow {
    /// The op type: `Conv2d`, `Linear`, `leaf` (data copied in, parameters shared).
    pub op: String,
    /// Forward calls.
    pub forward_calls: usize,
    /// Forward time.
    pub forward: Duration,
    /// Backward calls.
    pub backward_calls: usize,
    /// Backward time.
    pub backward: Duration,
}

/// One node of the tape, as `handgrad trace` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// Its position on the tape.
    pub index: usize,
    /// Its op type (`leaf` for data and parameters).
    pub op: String,
    /// The layer that recorded it.
    pub scope: String,
    /// The nodes it read.
    pub inputs: Vec<usize>,
    /// Their shapes.
    pub input_shapes: Vec<Vec<usize>>,
    /// Its value's shape.
    pub output: Vec<usize>,
    /// Multiply-adds of its forward pass.
    pub macs: u128,
    /// Forward time, when profiled.
    pub forward: Option<Duration>,
    /// Backward time, when profiled and it has a backward.
    pub backward: Option<Duration>,
}

/// `handgrad::autodiff::ops::conv::Conv<kernels::conv2d::Conv2dGeometry>` →
/// `Conv<Conv2dGeometry>`: every path shortened to its last segment.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::new();
    let mut segment = String::new();
    for ch in full.chars() {
        match ch {
            '<' | '>' | ',' | ' ' => {
                out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
                segment.clear();
                out.push(ch);
            }
            _ => segment.push(ch),
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(
            short_type_name("handgrad::autodiff::ops::conv::Conv<kernels::conv2d::Conv2dGeometry>"),
            "Conv<Conv2dGeometry>"
        );
        assert_eq!(short_type_name("leaf"), "leaf");
    }
}
