//! Watching the tape from outside: the hook through which a tool sees every node recorded and
//! every backward call, without the tape knowing what the tool does. The per-op profiler
//! ([`super::profile`]) is one such tool.

use std::any::Any;

/// Something that watches the tape work, told of every node recorded and of every backward
/// call: the per-op profiler ([`crate::autodiff::profile`]) is one. The tape calls it and
/// otherwise ignores it; without one, each hook costs a branch.
pub trait TapeObserver: Any + Send {
    /// The tape was reset: a new step begins.
    fn step_started(&mut self) {}
    /// Node `node`, of op type `kind` ("leaf" for data and parameters), was just recorded.
    fn recorded(&mut self, _node: usize, _kind: &'static str) {}
    /// Node `node`'s backward is about to run.
    fn backward_started(&mut self, _node: usize, _kind: &'static str) {}
    /// Node `node`'s backward has returned.
    fn backward_finished(&mut self, _node: usize, _kind: &'static str) {}
    /// Itself, so the graph can hand it back by type ([`Graph::observer`](super::Graph::observer)).
    fn as_any(&self) -> &dyn Any;
}
