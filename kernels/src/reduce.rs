//! Reductions: sums and means over everything, along one axis, or per channel, and the
//! row-wise softmax family.
//!
//! Sums accumulate in f64 within fixed-size chunks and add the chunk sums in order, so the
//! result is both accurate (a mean over 400,000 pixels loses nothing) and identical from run
//! to run whatever the number of threads.
//!
//! Softmax subtracts each row's maximum before exponentiating: eˣ⁻ᵐ ≤ 1 never overflows, and
//! the result is unchanged because the factor e⁻ᵐ cancels between numerator and denominator.

use crate::elementwise::exp;
use crate::{PARALLEL_CHUNK, PARALLEL_MIN_ELEMS};
use rayon::prelude::*;

/// Σ x, accumulated in f64.
pub fn sum(x: &[f32]) -> f64 {
    if x.len() < PARALLEL_MIN_ELEMS {
        return sum_in_lanes(x);
    }
    sum_of_chunks(x.len(), |chunk| sum_in_lanes(&x[chunk]))
}

/// Chunk sums are computed this many at a time into an array on the stack, then added in
/// order: a sum allocates no list of partial results.
const PARTIALS: usize = 64;

/// Σ over `len` elements cut into chunks of [`PARALLEL_CHUNK`]: `chunk_sum` of each chunk, on
/// every thread, added in chunk order (so the result never depends on the thread count).
fn sum_of_chunks(len: usize, chunk_sum: impl Fn(std::ops::Range<usize>) -> f64 + Sync) -> f64 {
    let chunks = len.div_ceil(PARALLEL_CHUNK);
    let mut partials = [0.0f64; PARTIALS];
    let mut total = -0.0;
    for first in (0..chunks).step_by(PARTIALS) {
        let group = &mut partials[..(chunks - first).min(PARTIALS)];
        group.par_iter_mut().enumerate().for_each(|(k, partial)| {
            let start = (first + k) * PARALLEL_CHUNK;
            *partial = chunk_sum(start..(start + PARALLEL_CHUNK).min(len));
        });
        total = group.iter().fold(total, |t, p| t + p);
    }
    total
}

/// Independent running sums in [`sum_in_lanes`]: one AVX-512 vector of f64.
const LANES: usize = 8;

/// Σ x in f64, as `LANES` (8) running sums (element i goes to sum i mod 8) added at the end.
///
/// One running sum would make every addition wait for the previous one (3–4 cycles each);
/// eight independent sums keep the adder busy and fit one vector register, so the compiler
/// vectorises the loop. The order is fixed by the length alone, so the result is too.
fn sum_in_lanes(x: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut blocks = x.chunks_exact(LANES);
    widest!(for block in &mut blocks {
        for (acc, &v) in lanes.iter_mut().zip(block) {
            *acc += v as f64;
        }
    });
    let tail: f64 = blocks.remainder().iter().map(|&v| v as f64).sum();
    lanes.iter().sum::<f64>() + tail
}

/// Σ f(aᵢ, bᵢ) over two equally long slices, accumulated in f64 in fixed chunks (so the
/// result is the same whatever the thread count): the sum inside every loss.
pub fn sum_zip(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64 + Sync + Send) -> f64 {
    crate::check_lens("sum_zip", &[("b", b.len(), a.len())]);
    let chunk_sum = |(a_c, b_c): (&[f32], &[f32])| sum_zip_in_lanes(a_c, b_c, &f);
    if a.len() < PARALLEL_MIN_ELEMS {
        return chunk_sum((a, b));
    }
    sum_of_chunks(a.len(), |chunk| chunk_sum((&a[chunk.clone()], &b[chunk])))
}

/// Σ f(aᵢ, bᵢ) in f64 as `LANES` (8) running sums, for the reason [`sum_in_lanes`] gives: with
/// one running sum, each addition waits on the one before.
#[inline(always)]
fn sum_zip_in_lanes(a: &[f32], b: &[f32], f: &impl Fn(f32, f32) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let (mut a_blocks, mut b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    widest!(
        for (a_block, b_block) in (&mut a_blocks).zip(&mut b_blocks) {
            for ((acc, &x), &y) in lanes.iter_mut().zip(a_block).zip(b_block) {
                *acc += f(x, y);
            }
        }
    );
    let (a_tail, b_tail) = (a_blocks.remainder(), b_blocks.remainder());
    let tail: f64 = a_tail.iter().zip(b_tail).map(|(&x, &y)| f(x, y)).sum();
    lanes.iter().sum::<f64>() + tail
}

/// Images per group in [`sum_per_channel`]: the batch is cut into groups of this many
/// consecutive images, summed in parallel; a fixed size (not the thread count) keeps the
/// order of the additions, and so the result, the same on every machine.
const IMAGES_PER_GROUP: usize = 32;

/// `out[c] ← Σ_{n, i} x[n, c, i]`: a per-channel sum over batch and space (bias gradients).
///
/// Image by image, in memory order: each group of images keeps one f64 running sum per
/// value of an image (C·inner of them) and adds every image to it in one contiguous loop,
/// which vectorises whatever the plane size; the positions of each channel are added up at
/// the end, and the groups' sums in order. (Channel by channel, each channel's short runs
/// were read from every image in turn — 9 floats in 2.6 KiB at conv-selu's 3×3 layer — which
/// was slower at every layer (figures: docs/performance.md, "Measurements behind the code").)
///
/// # Shapes
/// x (N, C, inner) → out (C).
pub fn sum_per_channel(x: &[f32], n: usize, c: usize, inner: usize, out: &mut [f32]) {
    crate::check_lens(
        "sum_per_channel",
        &[("x", x.len(), n * c * inner), ("out", out.len(), c)],
    );
    let image_len = c * inner;
    out.fill(0.0);
    if image_len == 0 {
        return;
    }
    let group_sum = |images: &[f32], sums: &mut [f64]| {
        sums.fill(0.0);
        for image in images.chunks_exact(image_len) {
            widest!(for (acc, &v) in sums.iter_mut().zip(image) {
                *acc += v as f64;
            });
        }
    };
    let groups = n.div_ceil(IMAGES_PER_GROUP);
    crate::scratch::with_f64_scratch(groups * image_len, |partials| {
        let pairs = x
            .par_chunks(IMAGES_PER_GROUP * image_len)
            .zip(partials.par_chunks_mut(image_len));
        if x.len() < PARALLEL_MIN_ELEMS {
            pairs
                .with_min_len(groups)
                .for_each(|(xs, sums)| group_sum(xs, sums));
        } else {
            pairs.for_each(|(xs, sums)| group_sum(xs, sums));
        }
        for (ch, o) in out.iter_mut().enumerate() {
            let total: f64 = partials
                .chunks_exact(image_len)
                .map(|sums| sums[ch * inner..][..inner].iter().sum::<f64>())
                .sum();
            *o = total as f32;
        }
    });
}

/// out[o, i] ← Σ_l x[o, l, i]: the sum along one axis, with the tensor viewed as
/// (outer, axis length, inner) — any axis of any contiguous tensor fits this view.
///
/// # Shapes
/// x (outer, len, inner) → out (outer, inner).
pub fn sum_axis(x: &[f32], outer: usize, len: usize, inner: usize, out: &mut [f32]) {
    crate::check_lens(
        "sum_axis",
        &[
            ("x", x.len(), outer * len * inner),
            ("out", out.len(), outer * inner),
        ],
    );
    for (o_row, x_block) in out
        .chunks_exact_mut(inner.max(1))
        .zip(x.chunks_exact((len * inner).max(1)))
    {
        o_row.fill(0.0);
        // Rows are added in f32 here: each output adds only `len` numbers, and whole-row adds
        // vectorise; the long sums (over batch and space) go through `sum` instead.
        for x_row in x_block.chunks_exact(inner.max(1)) {
            for (acc, v) in o_row.iter_mut().zip(x_row) {
                *acc += v;
            }
        }
    }
}

/// Whether every number of `x` is finite (no NaN, no infinity): the check a training step
/// runs over every gradient before the optimiser may use them.
///
/// A float is NaN or infinite exactly when its eight exponent bits are all ones, that is when
/// its bit pattern, sign cleared, is at least `0x7f80_0000`. So each block of numbers is
/// reduced to the largest such pattern, an integer maximum the compiler turns into a few
/// vector instructions per 16 numbers, where `iter().all(|v| v.is_finite())` branches on every
/// number. Blocks of 1024 still let a NaN near the start end the search early.
pub fn all_finite(x: &[f32]) -> bool {
    const EXPONENT_ALL_ONES: u32 = 0x7f80_0000;
    const NO_SIGN: u32 = 0x7fff_ffff;
    widest!(x.chunks(1024).all(|block| {
        let largest = block.iter().fold(0u32, |m, v| m.max(v.to_bits() & NO_SIGN));
        largest < EXPONENT_ALL_ONES
    }))
}

/// Every slice must hold the same whole number of rows of `cols` values.
#[track_caller]
fn check_rows(kernel: &str, cols: usize, slices: &[(&str, usize)]) {
    let first = slices.first().map_or(0, |s| s.1);
    let want = if cols == 0 { 0 } else { first - first % cols };
    let lens: Vec<(&str, usize, usize)> = slices.iter().map(|&(n, got)| (n, got, want)).collect();
    crate::check_lens(kernel, &lens);
}

/// Each row of `cols` elements: y = eˣ⁻ᵐᵃˣ / Σ eˣ⁻ᵐᵃˣ.
///
/// # Shapes
/// x (rows, cols) → y (rows, cols).
pub fn softmax_rows(x: &[f32], cols: usize, y: &mut [f32]) {
    check_rows("softmax_rows", cols, &[("x", x.len()), ("y", y.len())]);
    for (x_row, y_row) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = x_row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0f64;
        for (o, &v) in y_row.iter_mut().zip(x_row) {
            *o = exp(v - max);
            total += *o as f64;
        }
        let inv = (1.0 / total) as f32;
        y_row.iter_mut().for_each(|o| *o *= inv);
    }
}

/// Each row: y = x − max − ln Σ eˣ⁻ᵐᵃˣ, the logarithm of softmax without ever forming a
/// probability that could underflow to 0 (whose log would be −∞).
pub fn log_softmax_rows(x: &[f32], cols: usize, y: &mut [f32]) {
    check_rows("log_softmax_rows", cols, &[("x", x.len()), ("y", y.len())]);
    for (x_row, y_row) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = x_row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f64 = x_row.iter().map(|&v| exp(v - max) as f64).sum();
        // (v − max) first: it is exact near the maximum, where adding ln Σ to a large max
        // first would round away the low digits.
        let log_total = total.ln() as f32;
        for (o, &v) in y_row.iter_mut().zip(x_row) {
            *o = (v - max) - log_total;
        }
    }
}

/// Backward of softmax, from its output y: d_x = y ⊙ (d_y − Σ_row d_y ⊙ y).
pub fn softmax_backward_rows(y: &[f32], d_y: &[f32], cols: usize, d_x: &mut [f32]) {
    let lens = [("y", y.len()), ("d_y", d_y.len()), ("d_x", d_x.len())];
    check_rows("softmax_backward_rows", cols, &lens);
    for ((y_row, g_row), d_row) in y
        .chunks_exact(cols)
        .zip(d_y.chunks_exact(cols))
        .zip(d_x.chunks_exact_mut(cols))
    {
        let dot: f32 = y_row.iter().zip(g_row).map(|(a, b)| a * b).sum();
        for ((d, &yv), &g) in d_row.iter_mut().zip(y_row).zip(g_row) {
            *d = yv * (g - dot);
        }
    }
}

/// Backward of log-softmax, from its output y: d_x = d_y − softmax(x) · Σ_row d_y, with
/// softmax(x) = e^y.
pub fn log_softmax_backward_rows(y: &[f32], d_y: &[f32], cols: usize, d_x: &mut [f32]) {
    let lens = [("y", y.len()), ("d_y", d_y.len()), ("d_x", d_x.len())];
    check_rows("log_softmax_backward_rows", cols, &lens);
    for ((y_row, g_row), d_row) in y
        .chunks_exact(cols)
        .zip(d_y.chunks_exact(cols))
        .zip(d_x.chunks_exact_mut(cols))
    {
        let total: f32 = g_row.iter().sum();
        for ((d, &yv), &g) in d_row.iter_mut().zip(y_row).zip(g_row) {
            *d = g - exp(yv) * total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, uniform};

    #[test]
    fn sums_agree_with_f64_loops() {
        crate::testing::on_every_isa(sums_agree_with_f64_loops_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn sums_agree_with_f64_loops_once() {
        // A tail shorter than the 8 lanes, and a sum long enough to run in parallel chunks.
        for len in [13, 100_003] {
            let x = uniform(len, 1);
            let exact: f64 = x.iter().map(|&v| v as f64).sum();
            assert!((sum(&x) - exact).abs() < 1e-9, "length {len}");
        }

        // One group of images with small and large planes, and three groups (the last short).
        for (n, c, inner) in [(5, 3, 7), (4, 2, 130), (70, 4, 9)] {
            let x = uniform(n * c * inner, 2);
            let mut per_channel = vec![0.0; c];
            sum_per_channel(&x, n, c, inner, &mut per_channel);
            for (ch, &got) in per_channel.iter().enumerate() {
                let want: f64 = (0..n)
                    .flat_map(|i| (0..inner).map(move |k| (i, k)))
                    .map(|(i, k)| x[(i * c + ch) * inner + k] as f64)
                    .sum();
                assert!((got as f64 - want).abs() < 1e-5, "{inner}: channel {ch}");
            }
        }
        let (n, c, inner) = (5, 3, 7);
        let x = uniform(n * c * inner, 2);

        let mut along = vec![0.0; n * inner];
        sum_axis(&x, n, c, inner, &mut along);
        for i in 0..n {
            for k in 0..inner {
                let want: f32 = (0..c).map(|ch| x[(i * c + ch) * inner + k]).sum();
                assert!((along[i * inner + k] - want).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn all_finite_agrees_with_is_finite() {
        crate::testing::on_every_isa(all_finite_agrees_with_is_finite_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn all_finite_agrees_with_is_finite_once() {
        let bad = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        let edge = [f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, -0.0];
        assert!(all_finite(&[]));
        // Lengths with a short tail, one block, and several; each bad value at the start,
        // inside a later block and last.
        for len in [3, 1024, 5000] {
            let mut x = uniform(len, 3);
            x[..edge.len().min(len)].copy_from_slice(&edge[..edge.len().min(len)]);
            assert!(all_finite(&x), "length {len}, every number finite");
            for &v in &bad {
                for at in [0, len / 2 + 1, len - 1] {
                    let saved = x[at];
                    x[at] = v;
                    assert_eq!(all_finite(&x), x.iter().all(|v| v.is_finite()));
                    assert!(!all_finite(&x), "length {len}, {v} at {at}");
                    x[at] = saved;
                }
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_huge_logits() {
        let x = [1000.0, 1001.0, 1002.0, -5.0, 0.0, 5.0];
        let mut y = [0.0; 6];
        softmax_rows(&x, 3, &mut y);
        let e = [(-2.0f64).exp(), (-1.0f64).exp(), 1.0];
        let z: f64 = e.iter().sum();
        assert_close(&y[..3], &e.map(|v| (v / z) as f32), 1e-6, "shifted softmax");
        let mut log_y = [0.0; 6];
        log_softmax_rows(&x, 3, &mut log_y);
        assert_close(
            &log_y[..3],
            &e.map(|v| (v / z).ln() as f32),
            1e-6,
            "log softmax",
        );
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn softmax_backward_matches_finite_differences() {
        crate::testing::on_every_isa(softmax_backward_matches_finite_differences_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn softmax_backward_matches_finite_differences_once() {
        let x = uniform(12, 5);
        let r = uniform(12, 6);
        let loss = |x: &[f32], log: bool| {
            let mut y = vec![0.0; x.len()];
            if log {
                log_softmax_rows(x, 4, &mut y)
            } else {
                softmax_rows(x, 4, &mut y)
            }
            y.iter().zip(&r).map(|(a, b)| (a * b) as f64).sum::<f64>()
        };
        for log in [false, true] {
            let mut y = vec![0.0; 12];
            if log {
                log_softmax_rows(&x, 4, &mut y)
            } else {
                softmax_rows(&x, 4, &mut y)
            }
            let mut d_x = vec![0.0; 12];
            if log {
                log_softmax_backward_rows(&y, &r, 4, &mut d_x)
            } else {
                softmax_backward_rows(&y, &r, 4, &mut d_x)
            }
            for k in 0..12 {
                let (mut plus, mut minus) = (x.clone(), x.clone());
                plus[k] += 1e-2;
                minus[k] -= 1e-2;
                let numeric = (loss(&plus, log) - loss(&minus, log)) / 2e-2;
                assert!(
                    (d_x[k] as f64 - numeric).abs() < 1e-3,
                    "log={log} k={k}: {} vs {numeric}",
                    d_x[k]
                );
            }
        }
    }
}
