//! The one matrix product: C ← α·A·B + β·C, computed block by block by our own packed
//! product ([`crate::gemm::packed`]) or, as a second reference, `matrixmultiply::sgemm`.
//!
//! Fully connected layers are a single GEMM, and convolutions become GEMMs after
//! [`im2col`](crate::conv2d::im2col). `matrixmultiply` packs A and B into cache-sized panels and runs
//! an AVX/FMA micro-kernel chosen at run time; this file adds the two things it leaves to us:
//! **bounds checking** (so callers never touch `unsafe`) and **parallelism** (the product is
//! split into independent blocks of C, computed on rayon's threads).
//!
//! A [`MatRef`] is a read-only strided view: element (i, j) lives at
//! `data[i·row_stride + j·col_stride]`. Transposing is free: swap the strides ([`MatRef::t`]).
//! The `unsafe` here is the raw pointer to C's blocks, proven disjoint.
//!
//! Its rooms: this file (the entry, [`MatRef`], [`Epilogue`], the blocks across threads and
//! [`naive`], the reference loop), [`packed`] (packing and the micro-kernels), and `thin`
//! (products too thin to be worth packing).

pub mod packed;
pub(crate) mod thin;

use crate::elementwise::Activation;

/// A read-only, strided view of an `rows × cols` matrix inside a slice.
///
/// # Example
/// ```
/// use handgrad_kernels::gemm::MatRef;
/// let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3, row-major
/// let a = MatRef::row_major(&data, 2, 3);
/// assert_eq!(a.get(1, 2), 6.0);
/// assert_eq!(a.t().get(2, 1), 6.0); // the transpose is 3×2 over the same memory
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A view with explicit strides.
    ///
    /// # Panics
    /// If the last element, at `(rows−1)·row_stride + (cols−1)·col_stride`, lies outside
    /// `data`. This is the check that makes the `unsafe` call below sound, so it is always on.
    pub fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * row_stride + (cols - 1) * col_stride;
            assert!(
                last < data.len(),
                "gemm: a {rows}×{cols} view with strides ({row_stride}, {col_stride}) needs {} elements, the slice has {}",
                last + 1,
                data.len()
            );
        }
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A contiguous row-major view: row stride `cols`, column stride 1.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// The transpose, a `cols × rows` view over the same memory (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element (i, j). For tests and the naive reference; hot code never indexes one by one.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// (row stride, column stride).
    pub(crate) fn strides(&self) -> (usize, usize) {
        (self.row_stride, self.col_stride)
    }

    /// Row `i` as a slice of its `cols` elements.
    ///
    /// # Panics
    /// If the view's columns are not adjacent (column stride ≠ 1).
    pub(crate) fn row(&self, i: usize) -> &'a [f32] {
        assert_eq!(
            self.col_stride, 1,
            "gemm: row() of a view with column stride {}",
            self.col_stride
        );
        &self.data[i * self.row_stride..][..self.cols]
    }

    /// The view's data from element (i, j) on, with its row stride, when its columns are
    /// adjacent (`None` otherwise): what a block transpose reads.
    pub(crate) fn rows_from(&self, i: usize, j: usize) -> Option<(&'a [f32], usize)> {
        (self.col_stride == 1).then(|| (&self.data[i * self.row_stride + j..], self.row_stride))
    }

    /// Copies `out.len()` elements of column `j`, from row `i0` on, into `out`.
    pub(crate) fn col_into(&self, i0: usize, j: usize, out: &mut [f32]) {
        self.t().row_into(j, i0, out);
    }

    /// Copies `out.len()` elements of row `i`, from column `j0` on, into `out` (what packing
    /// reads: one contiguous copy when columns are adjacent).
    pub(crate) fn row_into(&self, i: usize, j0: usize, out: &mut [f32]) {
        if out.is_empty() {
            return;
        }
        let start = i * self.row_stride + j0 * self.col_stride;
        if self.col_stride == 1 {
            out.copy_from_slice(&self.data[start..][..out.len()]);
        } else {
            for (t, o) in out.iter_mut().enumerate() {
                *o = self.data[start + t * self.col_stride];
            }
        }
    }

    /// The N adjacent values of row `i` from column `j0` on, as an array reference (so a copy
    /// of it has a size known at compile time); `None` when the columns are not adjacent or
    /// fewer than N remain.
    #[inline(always)]
    pub(crate) fn row_run<const N: usize>(&self, i: usize, j0: usize) -> Option<&'a [f32; N]> {
        if self.col_stride != 1 || j0 + N > self.cols {
            return None;
        }
        self.data[i * self.row_stride + j0..][..N].try_into().ok()
    }

    /// Rows `start..end` as a view of their own.
    fn rows_range(self, start: usize, end: usize) -> Self {
        let offset = start * self.row_stride;
        let data = if end > start {
            &self.data[offset..]
        } else {
            &self.data[..0]
        };
        MatRef {
            data,
            rows: end - start,
            ..self
        }
    }

    /// Columns `start..end` as a view of their own.
    fn cols_range(self, start: usize, end: usize) -> Self {
        let offset = start * self.col_stride;
        let data = if end > start {
            &self.data[offset..]
        } else {
            &self.data[..0]
        };
        MatRef {
            data,
            cols: end - start,
            ..self
        }
    }
}

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 21;

/// A product is cut into at most one block per thread. Every block packs its own panels of A
/// and B (the copy that makes the micro-kernel fast) and is one more task for rayon to hand
/// out, so more blocks only repeat that work: with two per thread, mlp4's inference at batch
/// 32 ran at 53–61k images/s, with one 65–87k, and no preset measured slower
/// (docs/performance.md, "Measurements behind the code").
fn blocks() -> usize {
    rayon::current_num_threads()
}

/// Which code computes each block of a product. [`gemm`] uses [`GemmImpl::Packed`]: its
/// buffers are reused from call to call, so a training step allocates nothing for its
/// products (`matrixmultiply` allocates its packing buffers on every call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GemmImpl {
    /// Ours: [`crate::gemm::packed`], with AVX-512, AVX2 + FMA or portable micro-kernels, and
    /// for products too thin to repay packing (inner dimension or output width ≤ 16) two
    /// unpacked kernels that read A and B in place.
    #[default]
    Packed,
    /// The `matrixmultiply` crate, kept as a second reference and for benchmarks.
    MatrixMultiply,
    /// Ours for products below 2²¹ multiply-adds (a convolution's per-image products, where
    /// it measured faster), `matrixmultiply` for larger ones, whose cache blocking measured
    /// better than ours (figures: docs/performance.md, "Measurements behind the code").
    Auto,
}

/// C ← α·A·B + β·C, with C a contiguous row-major `m × n` matrix.
///
/// # Shapes
/// A (m × k) · B (k × n) → C (m × n), `c.len() == m·n`.
///
/// When β = 0, C is only written, never read, so it may hold stale values (even NaN). Large
/// products are split in halves along the longer side of C, recursively, into one block
/// per thread, and the blocks run on rayon's threads; every element of C is still computed by
/// one call with the whole inner dimension, in the same order, so the result does not depend
/// on the number of threads.
///
/// # Panics
/// If the inner dimensions differ or `c` is not `m × n`: a programming error in the caller,
/// which builds these shapes from a checked geometry.
///
/// # Example
/// ```
/// use handgrad_kernels::gemm::{gemm, MatRef};
/// let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [5.0, 6.0, 7.0, 8.0]; // [[5, 6], [7, 8]]
/// let mut c = [0.0; 4];
/// gemm(1.0, MatRef::row_major(&a, 2, 2), MatRef::row_major(&b, 2, 2), 0.0, &mut c);
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// ```
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32]) {
    gemm_using(GemmImpl::Packed, alpha, a, b, beta, c);
}

/// What a product does to C before handing it back: add a bias to every row (one number per
/// column: a fully connected layer's output features are C's columns), then apply an
/// activation. Fused into the product, the bias is added as the micro-kernel stores its tile
/// from the registers, and the activation runs over each block of rows while it is still in
/// cache, instead of two more passes over a C that no longer fits in it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One number per column of C, added to every row.
    pub bias: Option<&'a [f32]>,
    /// Applied after the bias.
    pub act: Option<Activation>,
}

impl Epilogue<'_> {
    /// True when there is nothing to do.
    fn is_empty(&self) -> bool {
        self.bias.is_none() && self.act.is_none()
    }

    /// The epilogue of columns `start..end` of C (its bias cut to them).
    fn cols_range(self, start: usize, end: usize) -> Self {
        Epilogue {
            bias: self.bias.map(|b| &b[start..end]),
            ..self
        }
    }

    /// Applies bias and activation to one row of C, already computed.
    pub(crate) fn apply_to_row(&self, row: &mut [f32]) {
        if let Some(bias) = self.bias {
            for (v, &b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
        if let Some(act) = self.act {
            crate::elementwise::forward_in_place(act, row);
        }
    }
}

/// C ← act(A·B + bias): a fully connected layer's forward in one call, with the
/// [`Epilogue`] fused into the product where it can be (our packed kernels) and applied to
/// each block just after it where it cannot (the thin kernels, `matrixmultiply`, the
/// reference loops).
///
/// # Panics
/// As [`gemm`], and if the bias does not hold one number per column of C.
pub fn gemm_then(a: MatRef<'_>, b: MatRef<'_>, epilogue: Epilogue<'_>, c: &mut [f32]) {
    if let Some(bias) = epilogue.bias {
        assert_eq!(
            bias.len(),
            b.cols,
            "gemm_then: the bias must hold one number per column of C"
        );
    }
    let parts = blocks();
    gemm_in_parts(GemmImpl::Packed, 1.0, a, b, 0.0, epilogue, c, parts);
}

/// [`gemm`] with the block product of one's choosing: every other step is the same.
///
/// # Panics
/// As [`gemm`].
pub fn gemm_using(
    imp: GemmImpl,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: &mut [f32],
) {
    let parts = blocks();
    gemm_in_parts(imp, alpha, a, b, beta, Epilogue::default(), c, parts);
}

/// [`gemm`] on the calling thread only: for kernels that already run many products in
/// parallel (one per chunk of images), where splitting each product again would only repeat
/// the packing of its operands.
///
/// # Panics
/// As [`gemm`].
pub fn gemm_on_this_thread(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32]) {
    gemm_in_parts(
        GemmImpl::Packed,
        alpha,
        a,
        b,
        beta,
        Epilogue::default(),
        c,
        1,
    );
}

/// [`gemm_using`] cut into at most `parts` blocks, with `epilogue` applied to C.
#[allow(clippy::too_many_arguments)]
fn gemm_in_parts(
    imp: GemmImpl,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    epilogue: Epilogue<'_>,
    c: &mut [f32],
    parts: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: A is {m}×{k} but B is {}×{n}", b.rows);
    assert_eq!(
        c.len(),
        m * n,
        "gemm: C must hold {m}×{n} elements, it holds {}",
        c.len()
    );
    if crate::reference_loops() {
        naive(alpha, a, b, beta, c);
        if !epilogue.is_empty() {
            c.chunks_exact_mut(n.max(1))
                .for_each(|row| epilogue.apply_to_row(row));
        }
        return;
    }
    let c = CBlock {
        ptr: c.as_mut_ptr(),
        rows: m,
        cols: n,
        row_stride: n,
        _slice: std::marker::PhantomData,
    };
    // Auto is decided on the whole product, never on a block: blocks depend on the thread
    // count, and the result must not.
    let imp = match imp {
        GemmImpl::Auto if m * k * n < PARALLEL_MIN_MACS => GemmImpl::Packed,
        GemmImpl::Auto => GemmImpl::MatrixMultiply,
        chosen => chosen,
    };
    gemm_block(imp, alpha, a, b, beta, epilogue, c, parts);
}

/// A rectangular block of the output matrix C: a raw pointer so that two disjoint column
/// blocks of the same rows can be written by two threads at once (safe references cannot
/// express interleaved-but-disjoint memory).
struct CBlock<'c> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    row_stride: usize,
    _slice: std::marker::PhantomData<&'c mut [f32]>,
}

// SAFETY: a CBlock is only ever created from a `&mut [f32]` (exclusive) and then split into
// blocks that cover disjoint elements, so two threads never write the same element.
unsafe impl Send for CBlock<'_> {}

impl CBlock<'_> {
    fn split_rows(self, mid: usize) -> (Self, Self) {
        let top = CBlock { rows: mid, ..self };
        // SAFETY: mid ≤ rows, so the offset stays inside the original slice (or one past it).
        let bottom_ptr = unsafe { self.ptr.add(mid * self.row_stride) };
        (
            top,
            CBlock {
                ptr: bottom_ptr,
                rows: self.rows - mid,
                ..self
            },
        )
    }

    /// Applies `epi` to every row of the block, already computed.
    fn apply(&self, epi: Epilogue<'_>) {
        if epi.is_empty() {
            return;
        }
        for i in 0..self.rows {
            // SAFETY: row i of the block is `cols` elements inside the caller's exclusive
            // slice, and no other reference to it is alive.
            let row = unsafe {
                std::slice::from_raw_parts_mut(self.ptr.add(i * self.row_stride), self.cols)
            };
            epi.apply_to_row(row);
        }
    }

    fn split_cols(self, mid: usize) -> (Self, Self) {
        let left = CBlock { cols: mid, ..self };
        // SAFETY: mid ≤ cols ≤ row_stride, so the offset stays inside the first row.
        let right_ptr = unsafe { self.ptr.add(mid) };
        (
            left,
            CBlock {
                ptr: right_ptr,
                cols: self.cols - mid,
                ..self
            },
        )
    }
}

/// Computes one block of C, splitting it in two (each half with half of `parts`) while it is
/// large and `parts` allows.
#[allow(clippy::too_many_arguments)]
fn gemm_block(
    imp: GemmImpl,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    epi: Epilogue<'_>,
    c: CBlock<'_>,
    parts: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if parts > 1 && m * k * n >= PARALLEL_MIN_MACS && (m >= 16 || n >= 16) {
        let half = parts / 2;
        // Split the longer side of C; keep column splits on multiples of 16 so each half's
        // rows stay aligned to the micro-kernel's vector width.
        if m >= n {
            let mid = m / 2;
            let (top, bottom) = c.split_rows(mid);
            rayon::join(
                || gemm_block(imp, alpha, a.rows_range(0, mid), b, beta, epi, top, half),
                || {
                    let a = a.rows_range(mid, m);
                    gemm_block(imp, alpha, a, b, beta, epi, bottom, parts - half)
                },
            );
        } else {
            let mid = (n / 2).div_ceil(16) * 16;
            let mid = mid.min(n);
            let (left, right) = c.split_cols(mid);
            rayon::join(
                || {
                    let (b, epi) = (b.cols_range(0, mid), epi.cols_range(0, mid));
                    gemm_block(imp, alpha, a, b, beta, epi, left, half)
                },
                || {
                    let (b, epi) = (b.cols_range(mid, n), epi.cols_range(mid, n));
                    gemm_block(imp, alpha, a, b, beta, epi, right, parts - half)
                },
            );
        }
        return;
    }
    if k == 0 {
        // An empty sum: C ← β·C. matrixmultiply handles it too, but spell out the meaning.
        for i in 0..m {
            for j in 0..n {
                // SAFETY: (i, j) is inside this block, which lies inside the caller's slice.
                unsafe {
                    let p = c.ptr.add(i * c.row_stride + j);
                    *p = if beta == 0.0 { 0.0 } else { beta * *p };
                }
            }
        }
        c.apply(epi);
        return;
    }
    if imp == GemmImpl::Packed {
        // SAFETY: as below.
        if unsafe { crate::gemm::thin::try_gemm(alpha, a, b, beta, c.ptr, c.row_stride) } {
            c.apply(epi);
            return;
        }
        // SAFETY: C's block was carved from an exclusive slice of m×n (checked in
        // `gemm_using`), and blocks are disjoint.
        unsafe { crate::gemm::packed::gemm(alpha, a, b, beta, epi, c.ptr, c.row_stride) };
        return;
    }
    // SAFETY: MatRef::strided proved every element of A and B is inside its slice; C's block
    // was carved from an exclusive slice of m×n (checked in `gemm`), and blocks are disjoint.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.ptr,
            c.row_stride as isize,
            1,
        );
    }
    c.apply(epi);
}

/// The reference: a triple loop accumulating in f64. C ← α·A·B + β·C.
pub fn naive(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k);
    assert_eq!(c.len(), m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a.get(i, p) as f64 * b.get(p, j) as f64;
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c[i * n + j] as f64
            };
            c[i * n + j] = (alpha as f64 * acc + old) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, matrix, uniform};

    #[test]
    fn matches_triple_loop_for_every_transpose_and_beta() {
        crate::testing::on_every_isa(matches_triple_loop_for_every_transpose_and_beta_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn matches_triple_loop_for_every_transpose_and_beta_once() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (64, 129, 70),
            (200, 300, 190),
            (130, 600, 260),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for beta in [0.0, 1.0, 0.5] {
                    let a_data = uniform(m * k, 1);
                    let b_data = uniform(k * n, 2);
                    let a = matrix(&a_data, m, k, ta);
                    let b = matrix(&b_data, k, n, tb);
                    let start = uniform(m * n, 3);
                    let mut slow = start.clone();
                    naive(0.7, a, b, beta, &mut slow);
                    for imp in [GemmImpl::Packed, GemmImpl::MatrixMultiply, GemmImpl::Auto] {
                        let mut fast = start.clone();
                        gemm_using(imp, 0.7, a, b, beta, &mut fast);
                        assert_close(
                            &fast,
                            &slow,
                            1e-5,
                            &format!("gemm {imp:?} {m}x{k}x{n} ta={ta} tb={tb} beta={beta}"),
                        );
                    }
                }
            }
        }
    }

    /// The fused epilogue against the loop followed by the epilogue: thin products (their own
    /// kernels), products split across threads by rows and by columns (the bias cut with
    /// them), several k blocks (the bias added once, the activation once at the end).
    #[test]
    fn gemm_then_matches_the_loop_followed_by_bias_and_activation() {
        crate::testing::on_every_isa(
            gemm_then_matches_the_loop_followed_by_bias_and_activation_once,
        );
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn gemm_then_matches_the_loop_followed_by_bias_and_activation_once() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build();
        let pool = pool.expect("a two-thread pool");
        for &(m, k, n) in &[
            (5, 3, 7),
            (40, 9, 300),
            (300, 8, 20),
            (2048, 392, 8),
            (300, 700, 90),
            (64, 600, 300),
        ] {
            let a_data = uniform(m * k, 1);
            let b_data = uniform(k * n, 2);
            let bias = uniform(n, 3);
            for act in [None, Some(Activation::Sigmoid), Some(Activation::Relu)] {
                for tb in [false, true] {
                    let (a, b) = (matrix(&a_data, m, k, false), matrix(&b_data, k, n, tb));
                    let epilogue = Epilogue {
                        bias: Some(&bias),
                        act,
                    };
                    let mut want = vec![0.0; m * n];
                    naive(1.0, a, b, 0.0, &mut want);
                    want.chunks_exact_mut(n)
                        .for_each(|r| epilogue.apply_to_row(r));
                    let mut got = vec![f32::NAN; m * n];
                    pool.install(|| gemm_then(a, b, epilogue, &mut got));
                    let what = format!("gemm_then {m}x{k}x{n} tb={tb} {act:?}");
                    assert_close(&got, &want, 1e-5, &what);
                }
            }
        }
    }

    #[test]
    fn strided_views_select_a_submatrix() {
        // A 3×2 block out of a 4×5 matrix, starting at (1, 2): row stride 5, column stride 1.
        let big: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let a = MatRef::strided(&big[7..], 3, 2, 5, 1);
        assert_eq!((a.get(0, 0), a.get(2, 1)), (7.0, 18.0));
        let b_data = [1.0, 0.0, 0.0, 1.0];
        let mut c = [0.0; 6];
        gemm(1.0, a, MatRef::row_major(&b_data, 2, 2), 0.0, &mut c);
        assert_eq!(c, [7.0, 8.0, 12.0, 13.0, 17.0, 18.0]);
    }

    #[test]
    fn beta_zero_ignores_stale_nan() {
        let a = [1.0, 2.0];
        let mut c = [f32::NAN];
        gemm(
            1.0,
            MatRef::row_major(&a, 1, 2),
            MatRef::row_major(&a, 2, 1),
            0.0,
            &mut c,
        );
        assert_eq!(c, [5.0]);
    }

    #[test]
    #[should_panic(expected = "needs 7 elements")]
    fn out_of_bounds_view_is_refused() {
        let data = [0.0; 6];
        let _ = MatRef::strided(&data, 2, 3, 4, 1);
    }
}
