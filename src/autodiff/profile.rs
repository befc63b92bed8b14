//! Where a step's time goes, op by op: what `handgrad train --profile` prints.
//!
//! When profiling is on, the tape notes the time between one recorded node and the next and
//! books it to the op just recorded (an op computes its value, then records it: the gap is
//! its forward time, plus whatever little the model did in between), and times each op's
//! backward call. Off, it costs one branch per node.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Accumulated time per op type.
#[derive(Debug)]
pub(crate) struct Profile {
    last: Instant,
    forward: BTreeMap<&'static str, (usize, Duration)>,
    backward: BTreeMap<&'static str, (usize, Duration)>,
}

impl Profile {
    pub(crate) fn new() -> Self {
        Profile {
            last: Instant::now(),
            forward: BTreeMap::new(),
            backward: BTreeMap::new(),
        }
    }

    /// Restarts the forward clock (a new step begins).
    pub(crate) fn mark(&mut self) {
        self.last = Instant::now();
    }

    /// Books the time since the last mark to `kind`'s forward pass.
    pub(crate) fn forward(&mut self, kind: &'static str) {
        let now = Instant::now();
        let e = self.forward.entry(kind).or_default();
        e.0 += 1;
        e.1 += now - self.last;
        self.last = now;
    }

    /// Books one backward call of `kind`.
    pub(crate) fn backward(&mut self, kind: &'static str, took: Duration) {
        let e = self.backward.entry(kind).or_default();
        e.0 += 1;
        e.1 += took;
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
    /// The op type: `Conv<Conv2dGeometry>`, `Linear`, `leaf` (data and parameters copied in).
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
