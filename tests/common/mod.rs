//! Helpers shared by the integration tests.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use handgrad::autodiff::catalog::{away_from_zero, uniform};

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
