//! Helpers shared by this crate's unit tests.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `len` values uniform in [−1, 1), the same for the same seed.
pub fn uniform(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// ⟨a, b⟩ in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Fails naming the first element where |got − want| > tol·(1 + |want|).
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {k} is {g}, expected {w}"
        );
    }
}

/// A convolution's forward with `act` fused in (`run(epilogue, y)`, with `bias`) against the
/// same forward without it: `plain`, the reference output with the bias, then `act` applied.
pub fn assert_fused_activation(
    act: crate::elementwise::Activation,
    bias: &[f32],
    plain: &[f32],
    run: impl FnOnce(crate::conv2d::Epilogue<'_>, &mut [f32]),
    what: &str,
) {
    let mut fused = vec![f32::NAN; plain.len()];
    let epilogue = crate::conv2d::Epilogue {
        bias: Some(bias),
        act: Some(act),
    };
    run(epilogue, &mut fused);
    let mut want = vec![0.0; plain.len()];
    crate::elementwise::forward(act, plain, &mut want);
    assert_close(&fused, &want, 1e-5, &format!("forward + {act:?}, {what}"));
}

/// A `rows × cols` view of `data`: row-major, or, with `transposed`, the transpose of the
/// row-major `cols × rows` matrix in `data` (a column-major view, as backward passes use).
pub fn matrix(data: &[f32], rows: usize, cols: usize, transposed: bool) -> crate::gemm::MatRef<'_> {
    if transposed {
        crate::gemm::MatRef::row_major(data, cols, rows).t()
    } else {
        crate::gemm::MatRef::row_major(data, rows, cols)
    }
}

/// Tests that switch instruction sets take turns (see [`on_every_isa`]).
static ISA_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Gives the instruction set chosen before back to the kernels when dropped, and names the one
/// under test if a check failed.
struct Restore(crate::peak::Isa, crate::peak::Isa);

impl Drop for Restore {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(the check failed with the {} kernels)", self.1.name());
        }
        crate::peak::Isa::select(self.0);
    }
}

/// Runs `check` once with every kernel on each instruction set this processor has (AVX-512,
/// AVX2 + FMA, portable: every fast path the machine can run, not only the widest), then gives
/// back the one chosen before. Tests running meanwhile compute with whichever is selected;
/// each is correct, so only the switching tests need to take turns.
pub fn on_every_isa(check: impl Fn()) {
    let _turn = ISA_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let before = crate::peak::Isa::active();
    for isa in crate::peak::Isa::available() {
        assert!(crate::peak::Isa::select(isa));
        let _restore = Restore(before, isa);
        check();
    }
}
