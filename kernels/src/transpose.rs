//! Matrix transpose: the layout change behind batch-last convolution chunks.
//!
//! Transposing moves every number once and computes nothing, so its speed is all about how
//! the moves are grouped. Element by element, each float costs a load, a store and the index
//! arithmetic between them: about half a nanosecond, which made transposes the largest cost
//! of a convolution step after the matrix products. A vector register holds 8 floats (AVX2),
//! so an 8×8 tile can be read as 8 rows, rearranged inside the registers by 24 shuffles, and
//! written as 8 columns: 16 memory instructions for 64 floats. Both machines this project
//! runs on (AVX2 + FMA and AVX-512) have AVX2; without it the element loop runs.

/// Side of the square tiles the vector path moves at a time.
const TILE: usize = 8;

/// dst (n × m) ← srcᵀ, for src an m × n row-major matrix (n = src.len() / m).
///
/// 8×8 tiles go through registers where the processor has AVX2 (a side that is not a
/// multiple of 8 ends with one more tile, flush with the end, overlapping the one before); a
/// matrix with fewer than 8 rows or columns, and every element on other processors, go one by
/// one as in [`naive`].
pub fn transpose(src: &[f32], m: usize, dst: &mut [f32]) {
    let n = src.len().checked_div(m).unwrap_or(0);
    crate::check_lens(
        "transpose",
        &[("src", src.len(), m * n), ("dst", dst.len(), m * n)],
    );
    transpose_block(src, n, m, n, dst, m);
}

/// `dst[j·ldd + i] ← src[i·lds + j]` for i < m, j < n: the transpose of an m × n block with
/// row stride `lds` into an n × m block with row stride `ldd` (what packing a GEMM operand
/// across its layout needs).
///
/// # Panics
/// If either block does not fit in its slice.
pub(crate) fn transpose_block(
    src: &[f32],
    lds: usize,
    m: usize,
    n: usize,
    dst: &mut [f32],
    ldd: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        n <= lds && (m - 1) * lds + n <= src.len() && m <= ldd && (n - 1) * ldd + m <= dst.len(),
        "transpose: a {m}×{n} block with strides {lds} → {ldd} does not fit in {} → {} floats",
        src.len(),
        dst.len()
    );
    if !avx2() || m < TILE || n < TILE {
        one_by_one(src, lds, 0..m, 0..n, dst, ldd);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    for i0 in tile_starts(m) {
        for j0 in tile_starts(n) {
            // SAFETY: AVX2 is present (checked above); the tile's rows i0..i0+8 and columns
            // j0..j0+8 lie inside the source block, its rows j0..j0+8 and columns i0..i0+8
            // inside the destination block (`tile_starts` keeps every tile inside), and both
            // blocks were checked to fit in their slices above.
            unsafe {
                tile_avx2(
                    src.as_ptr().add(i0 * lds + j0),
                    lds,
                    dst.as_mut_ptr().add(j0 * ldd + i0),
                    ldd,
                )
            };
        }
    }
}

/// Where the 8-wide tiles along a side of `len` ≥ 8 start: every multiple of 8 that leaves a
/// whole tile, then, when `len` is not a multiple of 8, one tile flush with the end. That last
/// tile overlaps the one before it, and the values in the overlap are transposed twice, to the
/// same places: cheaper than moving the leftover rows or columns one float at a time. With
/// chunks of 52 images (52 = 6·8 + 4) the element loop had been 3.2 % of a conv-selu training
/// step's samples and the tiles 8.6 % (`perf record` on `handgrad bench`); with the flush
/// tile, 0.6 % and 9.6 %.
fn tile_starts(len: usize) -> impl Iterator<Item = usize> {
    let whole = len / TILE * TILE;
    let last = (whole < len).then(|| len - TILE);
    (0..whole).step_by(TILE).chain(last)
}

/// Whether the kernels run on AVX2 (both vector levels the crate uses include it).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::peak::Isa::active() != crate::peak::Isa::Portable;
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The rows × columns part of [`transpose_block`], element by element.
fn one_by_one(
    src: &[f32],
    lds: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    dst: &mut [f32],
    ldd: usize,
) {
    for i in rows {
        for j in cols.clone() {
            dst[j * ldd + i] = src[i * lds + j];
        }
    }
}

/// The reference: `dst[j][i] = src[i][j]`, one element at a time.
pub fn naive(src: &[f32], m: usize, dst: &mut [f32]) {
    let n = src.len().checked_div(m).unwrap_or(0);
    for (i, row) in src.chunks_exact(n.max(1)).enumerate().take(m) {
        for (j, &v) in row.iter().enumerate() {
            dst[j * m + i] = v;
        }
    }
}

/// One 8×8 tile: the rows at `src` (row stride `lds`) become the columns at `dst` (row
/// stride `ldd`).
///
/// Three rounds of shuffles, each pairing up what the next needs: `unpacklo/hi` interleave
/// rows 2k and 2k+1 (pairs of elements), `shuffle` combines those pairs into runs of four, and
/// `permute2f128` swaps the 128-bit halves so row r's column c ends in register c at lane r.
///
/// # Safety
/// AVX2 must be available; src must be readable for 8 rows of 8 floats, dst writable likewise.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees 8 readable rows of 8 floats at src.
    let r: [__m256; 8] = std::array::from_fn(|k| unsafe { _mm256_loadu_ps(src.add(k * lds)) });
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let s = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    for k in 0..4 {
        let low = _mm256_permute2f128_ps::<0x20>(s[k], s[k + 4]);
        let high = _mm256_permute2f128_ps::<0x31>(s[k], s[k + 4]);
        // SAFETY: the caller guarantees 8 writable rows of 8 floats at dst.
        unsafe {
            _mm256_storeu_ps(dst.add(k * ldd), low);
            _mm256_storeu_ps(dst.add((k + 4) * ldd), high);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::uniform;

    #[test]
    fn matches_the_element_loop_on_odd_shapes() {
        crate::testing::on_every_isa(matches_the_element_loop_on_odd_shapes_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn matches_the_element_loop_on_odd_shapes_once() {
        // Whole tiles, partial tiles on either side, a single row or column, and empty.
        for (m, n) in [
            (8, 8),
            (16, 24),
            (56, 1911),
            (52, 1911),
            (10, 1176),
            (9, 9),
            (15, 17),
            (13, 7),
            (1, 9),
            (9, 1),
            (0, 5),
        ] {
            let src = uniform(m * n, (m * 31 + n) as u64);
            let (mut want, mut got) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            naive(&src, m, &mut want);
            transpose(&src, m, &mut got);
            assert_eq!(got, want, "{m}×{n}");
            // Twice is the identity.
            let mut back = vec![f32::NAN; m * n];
            transpose(&got, n, &mut back);
            assert_eq!(back, src, "{m}×{n} and back");
        }
    }

    #[test]
    fn a_block_inside_larger_strides_leaves_the_rest_alone() {
        // A 11×9 block of a 11×20 matrix into a 9×11 block of a 9×16 one (tiles and edges).
        let (m, n, lds, ldd) = (11, 9, 20, 16);
        let src = uniform(m * lds, 7);
        let mut got = vec![-1.0; n * ldd];
        transpose_block(&src, lds, m, n, &mut got, ldd);
        for j in 0..n {
            for i in 0..ldd {
                let want = if i < m { src[i * lds + j] } else { -1.0 };
                assert_eq!(got[j * ldd + i], want, "({j}, {i})");
            }
        }
    }
}
