//! Chapter 11, making it fast: the same matrix product three ways — the naive triple loop the
//! kernels are tested against, the loop reordered so the inner one runs along memory, and the
//! packed, register-blocked, vectorised product the engine uses — checked equal, and timed.
//!
//! Timings here are for reading, not for claims: one run on a shared machine. Run with
//! `cargo run --release --example 11_fast_gemm`.

use kernels::gemm::{gemm_using, naive, GemmImpl, MatRef};
use std::time::Instant;

/// C = A·B with the loops in i, p, j order: the innermost loop walks a row of B and a row of C,
/// both contiguous, so the compiler can vectorise it. Same arithmetic as the naive i, j, p.
fn reordered(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    c.fill(0.0);
    for i in 0..m {
        let c_row = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let a_ip = a[i * k + p];
            for (c_ij, &b_pj) in c_row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *c_ij += a_ip * b_pj;
            }
        }
    }
}

/// Runs `f` a few times and returns the best time in seconds.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let (m, k, n) = (256, 256, 256);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5)
        .collect();
    let (av, bv) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    let flops = 2.0 * (m * k * n) as f64;

    let mut c_naive = vec![0.0; m * n];
    let t_naive = best_of(|| naive(1.0, av, bv, 0.0, &mut c_naive));
    let mut c_reordered = vec![0.0; m * n];
    let t_reordered = best_of(|| reordered(&a, &b, &mut c_reordered, m, k, n));
    let mut c_fast = vec![0.0; m * n];
    let t_fast = best_of(|| gemm_using(GemmImpl::Packed, 1.0, av, bv, 0.0, &mut c_fast));

    let worst = |c: &[f32]| {
        c.iter()
            .zip(&c_naive)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(worst(&c_reordered) < 1e-3 && worst(&c_fast) < 1e-3);
    println!(
        "{m}×{k} · {k}×{n}: {:.0} million multiply-adds, the same result three ways:",
        flops / 2e6
    );
    for (name, t) in [
        ("naive loops (i, j, p; f64 sums)", t_naive),
        ("loops reordered (i, p, j)", t_reordered),
        ("packed + blocked + vectorised", t_fast),
    ] {
        println!(
            "  {name:<34} {:>8.2} ms  {:>7.1} GFLOP/s",
            t * 1e3,
            flops / t / 1e9
        );
    }
    println!(
        "the fastest is {:.0}× the naive loops on this machine, this minute",
        t_naive / t_fast
    );
}
