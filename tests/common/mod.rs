//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// A tensor of `shape` uniform in [lo, hi), the same for the same seed.
pub fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(lo..hi))
}

/// Uniform in ±[lo, hi): magnitudes kept away from 0, for ops with a kink there.
pub fn away_from_zero(shape: &[usize], lo: f32, hi: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let m = rng.random_range(lo..hi);
        if rng.random::<bool>() {
            m
        } else {
            -m
        }
    })
}

/// The reference-vector folder: `HANDGRAD_REFERENCE`, else `../shared/reference/` beside the
/// checkout. `None` (and a printed notice) when neither exists.
pub fn reference_dir() -> Option<PathBuf> {
    let candidates = match std::env::var_os("HANDGRAD_REFERENCE") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference")],
    };
    let found = candidates.into_iter().find(|p| p.is_dir());
    if found.is_none() {
        eprintln!("notice: no reference folder (set HANDGRAD_REFERENCE or provide ../shared/reference/); parity tests skipped");
    }
    found
}
