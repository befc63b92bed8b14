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

/// Whether a test that needs something from outside the repository may run. When it is
/// missing: with `HANDGRAD_REQUIRE_<VAR>=1` in the environment (as CI sets it) the test
/// fails; otherwise it prints a loud notice and is skipped, so a user without the extra still
/// gets a green suite for everything else.
pub fn available(what: &str, require_var: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let required = std::env::var(require_var).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{what} is missing and {require_var}=1 says it is required"
    );
    eprintln!(
        "\n*** SKIPPED: {what} is missing (set {require_var}=1 to make this a failure) ***\n"
    );
    false
}

/// The reference-vector folder: `HANDGRAD_REFERENCE`, else `../shared/reference/` beside the
/// checkout. `None` (after a loud notice, or a failure under `HANDGRAD_REQUIRE_REFERENCE=1`)
/// when neither exists.
pub fn reference_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HANDGRAD_REFERENCE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"),
    };
    let what = format!(
        "the PyTorch reference folder {} (set HANDGRAD_REFERENCE, or make them with tests/reference/generate.py)",
        dir.display()
    );
    available(&what, "HANDGRAD_REQUIRE_REFERENCE", dir.is_dir()).then_some(dir)
}

/// Whether Fashion-MNIST is installed (`apt-get install dataset-fashion-mnist`), under the
/// rule of [`available`] with `HANDGRAD_REQUIRE_FASHION_MNIST`.
pub fn fashion_mnist() -> bool {
    let present = handgrad::data::mnist::Dataset::find(
        "fashion-mnist",
        &handgrad::data::mnist::Lookup::default(),
    )
    .is_ok();
    available(
        "Fashion-MNIST (apt-get install dataset-fashion-mnist)",
        "HANDGRAD_REQUIRE_FASHION_MNIST",
        present,
    )
}
