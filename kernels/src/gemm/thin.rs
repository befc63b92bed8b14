//! Products too thin to repay packing.
//!
//! [`crate::gemm::packed`] copies A and B into panels before it multiplies, so that its
//! micro-kernel reads both with unit stride. The copy pays when every packed value is then used
//! many times. Two shapes the models make are too thin for that:
//!
//! * a **short inner dimension** (k ≤ 16): the first convolution of an image model has one
//!   input channel, so its product `w (C_out × 9) · cols (9 × OH·OW)` sums only 9 terms per
//!   output; packing `cols` costs as much as the arithmetic done with it.
//! * a **narrow output** (n ≤ 16): that layer's weight gradient `d_y (C_out × OH·OW) ·
//!   colsᵀ (OH·OW × 9)` has 9 columns, a third of one AVX-512 tile.
//!
//! For these, two plain kernels read A and B where they lie:
//! * [`rows`]: C is built 4 rows × 32 columns at a time as Σ_k a(i, k)·B[k, ·], the 4×32 sums
//!   kept in registers for the whole k loop. Needs B's rows contiguous.
//! * [`dots`]: every c(i, j) is the dot product of row i of A and column j of B, in 16 partial
//!   sums (one vector). Needs both contiguous along k.
//!
//! Both are ordinary Rust loops over fixed-size arrays, which the compiler turns into vector
//! code for each instruction set [`widest!`] compiles them for. Each output element is summed
//! in the same order whatever the block boundaries, so results do not depend on the thread
//! count. [`crate::gemm::naive`] is the reference they are tested against.

use crate::gemm::MatRef;

/// The longest inner dimension [`rows`] takes, and the widest output [`dots`] takes.
pub(crate) const THIN: usize = 16;

/// Rows of C computed together by [`rows`] (they share every load of B).
const ROWS: usize = 4;
/// Columns of C computed together by [`rows`]: two AVX-512 vectors, four AVX2 ones.
const COLS: usize = 32;
/// Lanes of the partial sums in [`dots`].
const LANES: usize = 16;

/// Computes C ← α·A·B + β·C with a thin kernel when the shape is thin and the strides suit it;
/// returns false (touching nothing) otherwise.
///
/// # Safety
/// `c` must point to an m×n block with row stride `ldc` that this call may write and nobody
/// else touches meanwhile (as for [`crate::gemm::packed`]).
pub(crate) unsafe fn try_gemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) -> bool {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let (_, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    let c_row = |i: usize| {
        // SAFETY: row i < m of the block the caller owns: n elements from c + i·ldc.
        unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), n) }
    };
    if k <= THIN && b_cs == 1 {
        widest!(rows(alpha, a, b, beta, c_row));
        true
    } else if n <= THIN && a_cs == 1 && b_rs == 1 && m > 0 {
        widest!(dots(alpha, a, b, beta, c_row));
        true
    } else {
        false
    }
}

/// Stores one finished sum: c ← α·sum + β·c (c is not read when β = 0, so stale NaN is fine).
#[inline(always)]
fn store(alpha: f32, sum: f32, beta: f32, c: &mut f32) {
    *c = if beta == 0.0 {
        alpha * sum
    } else {
        alpha * sum + beta * *c
    };
}

/// C ← α·A·B + β·C row-wise, for a short inner dimension; B's rows must be contiguous.
///
/// # Shapes
/// A (m × k) · B (k × n) → C (m × n), C given row by row by `c_row`.
#[inline(always)]
pub(crate) fn rows<'c>(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c_row: impl Fn(usize) -> &'c mut [f32],
) {
    let (m, n) = (a.rows(), b.cols());
    let full_cols = n - n % COLS;
    let mut i0 = 0;
    while i0 < m {
        // Four rows at a time while they last, then one by one.
        let r = if m - i0 >= ROWS { ROWS } else { 1 };
        for j0 in (0..full_cols).step_by(COLS) {
            if r == ROWS {
                let acc = tile::<ROWS>(a, i0, b, j0);
                for (i, acc_row) in acc.iter().enumerate() {
                    store_row(alpha, acc_row, beta, &mut c_row(i0 + i)[j0..j0 + COLS]);
                }
            } else {
                let [acc_row] = tile::<1>(a, i0, b, j0);
                store_row(alpha, &acc_row, beta, &mut c_row(i0)[j0..j0 + COLS]);
            }
        }
        // The last n mod 32 columns, one row at a time, in the same order of p.
        for i in i0..i0 + r {
            let mut acc = [0.0f32; COLS];
            let tail = &mut acc[..n - full_cols];
            for p in 0..a.cols() {
                let a_ip = a.get(i, p);
                for (s, &bv) in tail.iter_mut().zip(&b.row(p)[full_cols..]) {
                    *s = a_ip.mul_add(bv, *s);
                }
            }
            store_row(alpha, tail, beta, &mut c_row(i)[full_cols..]);
        }
        i0 += r;
    }
}

/// The R×32 block of A·B at rows i0.., columns j0..: fixed sizes, so the sums stay in vector
/// registers for the whole loop over k.
#[inline(always)]
fn tile<const R: usize>(a: MatRef<'_>, i0: usize, b: MatRef<'_>, j0: usize) -> [[f32; COLS]; R] {
    let mut acc = [[0.0f32; COLS]; R];
    for p in 0..a.cols() {
        let b_seg: &[f32; COLS] = b.row(p)[j0..j0 + COLS].try_into().expect("32 columns");
        for (i, acc_row) in acc.iter_mut().enumerate() {
            let a_ip = a.get(i0 + i, p);
            for (s, &bv) in acc_row.iter_mut().zip(b_seg) {
                *s = a_ip.mul_add(bv, *s);
            }
        }
    }
    acc
}

/// c ← α·sums + β·c for a row segment.
#[inline(always)]
fn store_row(alpha: f32, sums: &[f32], beta: f32, c: &mut [f32]) {
    for (cv, &s) in c.iter_mut().zip(sums) {
        store(alpha, s, beta, cv);
    }
}

/// C ← α·A·B + β·C element by element as dot products, for a narrow output; A's rows and B's
/// columns must be contiguous.
///
/// # Shapes
/// A (m × k) · B (k × n) → C (m × n), C given row by row by `c_row`.
#[inline(always)]
pub(crate) fn dots<'c>(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c_row: impl Fn(usize) -> &'c mut [f32],
) {
    let bt = b.t();
    for i in 0..a.rows() {
        let a_row = a.row(i);
        let c = c_row(i);
        for (j, cv) in c.iter_mut().enumerate() {
            store(alpha, dot(a_row, bt.row(j)), beta, cv);
        }
    }
}

/// Σ x·y in 16 partial sums (lane l takes the terms whose index is l mod 16), added up in a
/// fixed order at the end.
#[inline(always)]
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (x_tail, y_tail) = (xc.remainder(), yc.remainder());
    for (xv, yv) in xc.zip(yc) {
        let xv: &[f32; LANES] = xv.try_into().expect("16 lanes");
        let yv: &[f32; LANES] = yv.try_into().expect("16 lanes");
        for l in 0..LANES {
            acc[l] = xv[l].mul_add(yv[l], acc[l]);
        }
    }
    for (l, (&xv, &yv)) in x_tail.iter().zip(y_tail).enumerate() {
        acc[l] = xv.mul_add(yv, acc[l]);
    }
    // A pairwise sum of the 16 lanes: 8 + 4 + 2 + 1 additions.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::naive;
    use crate::testing::{assert_close, matrix, uniform};

    /// Runs `try_gemm` on the whole of C; returns whether a thin kernel took the product.
    fn thin(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32]) -> bool {
        let n = b.cols();
        // SAFETY: c is an exclusive m×n row-major slice.
        unsafe { try_gemm(alpha, a, b, beta, c.as_mut_ptr(), n) }
    }

    #[test]
    fn thin_products_match_the_triple_loop() {
        crate::testing::on_every_isa(thin_products_match_the_triple_loop_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn thin_products_match_the_triple_loop_once() {
        // (m, k, n, A transposed, B transposed, which kernel must take it)
        let cases = [
            (6, 9, 196, false, false, "rows"),  // first conv, forward
            (9, 6, 196, true, false, "rows"),   // its input gradient: wᵀ · d_y
            (72, 9, 351, false, false, "rows"), // uneven rows and columns
            (5, 16, 33, true, false, "rows"),
            (1, 1, 1, false, false, "rows"),
            (6, 196, 9, false, true, "dots"), // first conv, weight gradient: d_y · colsᵀ
            (39, 49, 16, false, true, "dots"),
            (3, 100, 5, false, true, "dots"),
        ];
        for (m, k, n, ta, tb, kernel) in cases {
            for beta in [0.0, 1.0, 0.5] {
                let (a_data, b_data) = (uniform(m * k, 1), uniform(k * n, 2));
                let (a, b) = (matrix(&a_data, m, k, ta), matrix(&b_data, k, n, tb));
                let start = uniform(m * n, 3);
                let mut slow = start.clone();
                naive(0.7, a, b, beta, &mut slow);
                let mut fast = start.clone();
                if beta == 0.0 {
                    fast.fill(f32::NAN); // β = 0 must not read C
                }
                let what = format!("{kernel} {m}x{k}x{n} beta={beta}");
                assert!(thin(0.7, a, b, beta, &mut fast), "{what}: not taken");
                assert_close(&fast, &slow, 1e-5, &what);
            }
        }
    }

    #[test]
    fn wide_products_and_unsuited_strides_are_left_to_packing() {
        let data = uniform(64 * 64, 4);
        let mut c = vec![0.0; 64 * 64];
        let square = matrix(&data, 64, 64, false);
        assert!(!thin(1.0, square, square, 0.0, &mut c));
        // k = 9 but B's rows are not contiguous, n = 9 but A's rows are not.
        let (a, b) = (
            matrix(&data[..6 * 9], 6, 9, false),
            matrix(&data[..9 * 196], 9, 196, true),
        );
        assert!(!thin(1.0, a, b, 0.0, &mut c[..6 * 196]));
        let (a, b) = (
            matrix(&data[..64 * 30], 64, 30, true),
            matrix(&data[..30 * 9], 30, 9, true),
        );
        assert!(!thin(1.0, a, b, 0.0, &mut c[..64 * 9]));
    }
}
