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
