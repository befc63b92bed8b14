//! Our own matrix product for one block of C, on one thread: packing, register blocking and
//! a vector micro-kernel chosen at run time.
//!
//! The arithmetic of C = A·B is m·n·k multiply-adds; what makes it fast or slow is memory.
//! Three ideas, in the order they are applied:
//!
//! 1. **Register blocking.** The micro-kernel computes an MR×NR tile of C held entirely in
//!    vector registers (8×32 with AVX-512: 16 registers of 16 floats). Each step of k loads
//!    one row of NR values of B and MR values of A, and does MR·NR multiply-adds: the loads
//!    are amortised over many FMAs, so the FMA units, not the loads, set the pace.
//! 2. **Packing.** Before the tiles run, A is copied into panels of MR rows stored k-major
//!    (the MR values the kernel needs at step k are adjacent) and B into panels of NR columns
//!    likewise. The kernel then reads both with unit stride, whatever A's and B's strides (a
//!    transposed operand costs one copy, not a slow kernel), and edges are zero-padded so the
//!    kernel never branches.
//! 3. **Cache blocking.** k is cut into blocks of `KC` (256), and A's panels are taken
//!    `MC_PANELS` (16) at a time, so that those panels stay in L2 and the B panel in use stays
//!    in L1 while they are reused.
//!
//! Packing buffers are per-thread and reused from call to call. [`crate::gemm`] splits large
//! products across threads and calls this for each block; the naive triple loop in
//! [`crate::gemm::naive`] is the reference it is tested against.

use crate::gemm::{Epilogue, MatRef};
use crate::peak::Isa;
use crate::transpose::transpose_block;
use std::cell::RefCell;

/// Depth of one k block.
const KC: usize = 256;

/// A panels per L2 block (16 panels of 8 rows × 256 floats = 128 KiB).
const MC_PANELS: usize = 16;

thread_local! {
    /// Packed panels of A and B, kept between calls.
    static PACKS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// C (m×n, row stride `ldc`) ← act(α·A·B + β·C + bias), for one block on the calling thread,
/// with the bias and activation of `epi` (one bias per column of this block).
///
/// The tile size of each micro-kernel (MR rows of A × NR columns of B) is a compile-time
/// constant of [`gemm_tiled`], so packing and storing copy whole tile rows as fixed-size
/// arrays (a few vector moves) instead of calling `memcpy` for every 32 floats.
///
/// # Safety
/// `c` must point to an m×n block with row stride `ldc` that this call may write and nobody
/// else touches meanwhile; A and B are checked views.
pub(crate) unsafe fn gemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    epi: Epilogue<'_>,
    c: *mut f32,
    ldc: usize,
) {
    let c = CBlockPtr { c, ldc };
    // SAFETY: passed on unchanged from our caller.
    unsafe {
        match Isa::active() {
            Isa::Avx512 => gemm_tiled::<8, 32>(Isa::Avx512, alpha, a, b, beta, epi, c),
            Isa::Avx2Fma => gemm_tiled::<6, 16>(Isa::Avx2Fma, alpha, a, b, beta, epi, c),
            Isa::Portable => gemm_tiled::<4, 8>(Isa::Portable, alpha, a, b, beta, epi, c),
        }
    }
}

/// Where C's block starts and its row stride.
#[derive(Clone, Copy)]
struct CBlockPtr {
    c: *mut f32,
    ldc: usize,
}

/// [`gemm`] with MR×NR tiles and `isa`'s micro-kernel (which must compute MR×NR tiles).
///
/// # Safety
/// As [`gemm`].
unsafe fn gemm_tiled<const MR: usize, const NR: usize>(
    isa: Isa,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    epi: Epilogue<'_>,
    CBlockPtr { c, ldc }: CBlockPtr,
) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if m == 0 || n == 0 {
        return;
    }
    let (m_panels, n_panels) = (m.div_ceil(MR), n.div_ceil(NR));
    PACKS.with(|packs| {
        // The buffers are taken out while in use, in case this thread is asked for another
        // product meanwhile (rayon may run a task here while a sibling waits).
        let (mut pa, mut pb) = std::mem::take(&mut *packs.borrow_mut());
        let kc_max = k.clamp(1, KC);
        pa.resize(m_panels * MR * kc_max, 0.0);
        pb.resize(n_panels * NR * kc_max, 0.0);
        let mut tile_acc = [0.0f32; 8 * 32];
        if k == 0 {
            scale_block(beta, c, m, n, ldc);
        }
        for (block, p0) in (0..k).step_by(KC).enumerate() {
            let kc = (k - p0).min(KC);
            pack_a::<MR>(a, p0, kc, &mut pa);
            pack_b::<NR>(b, p0, kc, &mut pb);
            // The first k block applies β and adds the bias; later ones add to what the first
            // wrote; the last applies the activation.
            let (beta_here, bias) = match block {
                0 => (beta, epi.bias),
                _ => (1.0, None),
            };
            let last_block = p0 + kc == k;
            // A few A panels at a time (an L2-sized block), each against every B panel: the
            // B panel stays in L1 while those A panels pass over it.
            for ip_block in (0..m_panels).step_by(MC_PANELS) {
                for jp in 0..n_panels {
                    let b_panel = &pb[jp * NR * kc..][..NR * kc];
                    let cols = (n - jp * NR).min(NR);
                    let bias = bias.map(|b| &b[jp * NR..][..cols]);
                    for ip in ip_block..(ip_block + MC_PANELS).min(m_panels) {
                        let a_panel = &pa[ip * MR * kc..][..MR * kc];
                        let rows = (m - ip * MR).min(MR);
                        // SAFETY: the tile (ip, jp) lies inside the caller's m×n block.
                        let c_tile = unsafe { c.add(ip * MR * ldc + jp * NR) };
                        if rows == MR && cols == NR && isa != Isa::Portable {
                            // A whole tile goes from the registers straight into C.
                            let out = TileOut::C {
                                c: c_tile,
                                ldc,
                                alpha,
                                beta: beta_here,
                                bias,
                            };
                            micro_kernel(isa, kc, a_panel, b_panel, cols, out);
                            continue;
                        }
                        micro_kernel(isa, kc, a_panel, b_panel, cols, TileOut::Acc(&mut tile_acc));
                        let how = (alpha, beta_here, bias);
                        unsafe { store_tile::<NR>(&tile_acc, rows, cols, how, c_tile, ldc) };
                    }
                }
                if let (Some(act), true) = (epi.act, last_block) {
                    // These rows of C are final and, having just been written, in cache.
                    let rows = ip_block * MR..((ip_block + MC_PANELS) * MR).min(m);
                    for i in rows {
                        // SAFETY: row i of the block, n wide, is the caller's to write.
                        let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), n) };
                        crate::elementwise::forward_in_place(act, row);
                    }
                }
            }
        }
        *packs.borrow_mut() = (pa, pb);
    });
}

/// C ← β·C (an empty inner dimension); β = 0 writes zeros without reading.
unsafe fn scale_block(beta: f32, c: *mut f32, m: usize, n: usize, ldc: usize) {
    for i in 0..m {
        for j in 0..n {
            // SAFETY: (i, j) is inside the caller's block.
            let p = unsafe { c.add(i * ldc + j) };
            unsafe { *p = if beta == 0.0 { 0.0 } else { beta * *p } };
        }
    }
}

/// Packs A's columns p0..p0+kc into panels of `MR` rows: panel ip holds, for each kk, the
/// values A[ip·MR + r][p0 + kk] for r < MR (0 past the last row), adjacent. Reads follow A's
/// layout: a column-major A (a transposed weight) gives each slot as one contiguous copy of MR
/// values; a full panel of a row-major A is a transpose of its MR × kc block (in 8×8 register
/// tiles, [`crate::transpose`]), and a last, partial one is read a row at a time and written
/// with stride `MR`.
fn pack_a<const MR: usize>(a: MatRef<'_>, p0: usize, kc: usize, out: &mut [f32]) {
    let m = a.rows();
    let column_major = a.strides().0 == 1 && a.strides().1 != 1;
    let mut line = [0.0f32; KC];
    for (ip, panel) in out
        .chunks_exact_mut(MR * kc)
        .take(m.div_ceil(MR))
        .enumerate()
    {
        let rows = (m - ip * MR).min(MR);
        let slots = panel.as_chunks_mut::<MR>().0;
        if column_major {
            for (kk, slot) in slots.iter_mut().enumerate() {
                copy_run(a.t(), p0 + kk, ip * MR, rows, slot);
            }
            continue;
        }
        if rows == MR {
            if let Some((block, stride)) = a.rows_from(ip * MR, p0) {
                transpose_block(block, stride, MR, kc, panel, MR);
                continue;
            }
        }
        for r in 0..MR {
            if r < rows {
                a.row_into(ip * MR + r, p0, &mut line[..kc]);
            } else {
                line[..kc].fill(0.0);
            }
            for (slot, &v) in slots.iter_mut().zip(&line[..kc]) {
                slot[r] = v;
            }
        }
    }
}

/// Packs B's rows p0..p0+kc into panels of `NR` columns: panel jp holds, for each kk, the
/// values B[p0 + kk][jp·NR + t] for t < NR (0 past the last column), adjacent. A row-major B
/// gives each slot as one contiguous copy of NR values; a full panel of a column-major B (a
/// transposed operand, as in every weight gradient) is a transpose of its block in 8×8
/// register tiles, a partial one is read a column at a time and written with stride `NR`.
///
/// (Element by element, the transposing path was two thirds of this function's time in
/// conv-selu training (figures: docs/performance.md, "Measurements behind the code").)
fn pack_b<const NR: usize>(b: MatRef<'_>, p0: usize, kc: usize, out: &mut [f32]) {
    let n = b.cols();
    let column_major = b.strides().0 == 1 && b.strides().1 != 1;
    let mut line = [0.0f32; KC];
    for (jp, panel) in out
        .chunks_exact_mut(NR * kc)
        .take(n.div_ceil(NR))
        .enumerate()
    {
        let cols = (n - jp * NR).min(NR);
        let slots = panel.as_chunks_mut::<NR>().0;
        if !column_major {
            for (kk, slot) in slots.iter_mut().enumerate() {
                copy_run(b, p0 + kk, jp * NR, cols, slot);
            }
            continue;
        }
        if cols == NR {
            if let Some((block, stride)) = b.t().rows_from(jp * NR, p0) {
                transpose_block(block, stride, NR, kc, panel, NR);
                continue;
            }
        }
        for t in 0..NR {
            if t < cols {
                b.col_into(p0, jp * NR + t, &mut line[..kc]);
            } else {
                line[..kc].fill(0.0);
            }
            for (slot, &v) in slots.iter_mut().zip(&line[..kc]) {
                slot[t] = v;
            }
        }
    }
}

/// slot ← the `len` values of row `i` of `m` from column `j0` on, zero-padded to N. A full run
/// from a view with adjacent columns is one fixed-size copy, which the compiler turns into a
/// few vector moves (a `memcpy` call per slot would cost more than the copy itself).
#[inline(always)]
fn copy_run<const N: usize>(m: MatRef<'_>, i: usize, j0: usize, len: usize, slot: &mut [f32; N]) {
    if len == N {
        if let Some(run) = m.row_run::<N>(i, j0) {
            *slot = *run;
            return;
        }
    }
    m.row_into(i, j0, &mut slot[..len]);
    slot[len..].fill(0.0);
}

/// C's tile ← α·acc + β·C's tile (+ the bias of each column), `how` = (α, β, bias), for the
/// `rows`×`cols` corner that lies inside C: the tiles on C's last rows and columns, and every
/// tile of the portable kernel (whole tiles of the vector kernels go straight from the
/// registers, [`TileOut::C`]). A full-width row is a fixed-size loop of NR values, which the
/// compiler vectorises.
unsafe fn store_tile<const NR: usize>(
    acc: &[f32; 256],
    rows: usize,
    cols: usize,
    (alpha, beta, bias): (f32, f32, Option<&[f32]>),
    c: *mut f32,
    ldc: usize,
) {
    let acc_rows = acc.as_chunks::<NR>().0;
    for (r, from) in acc_rows.iter().enumerate().take(rows) {
        // SAFETY: row r of the tile, `cols` wide, is inside the caller's block.
        let to = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), cols) };
        if let Ok(to) = <&mut [f32; NR]>::try_from(&mut *to) {
            store_row(from, to, alpha, beta);
        } else {
            store_row(&from[..cols], to, alpha, beta);
        }
        if let Some(bias) = bias {
            to.iter_mut().zip(bias).for_each(|(t, &b)| *t += b);
        }
    }
}

/// to ← α·from + β·to; β = 0 writes without reading (C may hold stale values, even NaN).
#[inline(always)]
fn store_row(from: &[f32], to: &mut [f32], alpha: f32, beta: f32) {
    if beta == 0.0 {
        for (t, &v) in to.iter_mut().zip(from) {
            *t = alpha * v;
        }
    } else {
        for (t, &v) in to.iter_mut().zip(from) {
            *t = alpha * v + beta * *t;
        }
    }
}

/// Where a micro-kernel leaves its MR×NR tile of sums.
enum TileOut<'a> {
    /// Row-major into a scratch tile, which [`store_tile`] then copies into C in part (the
    /// edges of C, where only some rows or columns of the tile exist).
    Acc(&'a mut [f32; 256]),
    /// Straight from the registers into a whole tile of C (row stride `ldc`):
    /// C ← α·sums + β·C (+ bias, one per column, NR of them), without reading C when β = 0.
    C {
        c: *mut f32,
        ldc: usize,
        alpha: f32,
        beta: f32,
        bias: Option<&'a [f32]>,
    },
}

/// The tile Σ_kk a[kk]ᵀ ⊗ b[kk] over the packed panels, left where `out` says. A whole tile
/// of C is written from the vector registers directly: through the scratch tile it would be
/// stored, loaded back and stored again, which mattered where k is short or cut into blocks
/// (`store_tile` was 7 % of an mlp4 training step) (figures: docs/performance.md, "Measurements behind the code").
///
/// `TileOut::C` needs a vector kernel and a tile of C that the caller may write whole.
/// `cols` is how many of the tile's columns exist: when they fit in half the tile (the last
/// panel of a B whose width is not a multiple of the tile's), the vector kernels compute only
/// that half. (mlp4's 392-wide products end with a panel of 8 columns in 32.)
fn micro_kernel(isa: Isa, kc: usize, a: &[f32], b: &[f32], cols: usize, out: TileOut<'_>) {
    match (isa, out) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::active` only names AVX-512F where the processor has it; the panels hold kc·8 and kc·32 values; a tile
        // of C is whole and the caller's to write (its contract).
        (Isa::Avx512, out) if cols <= 16 => unsafe { kernel_avx512::<1>(kc, a, b, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Isa::Avx512, out) => unsafe { kernel_avx512::<2>(kc, a, b, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::active` only names AVX2 + FMA where the processor has them; the panels hold kc·6 and kc·16 values; as
        // above for C.
        (Isa::Avx2Fma, out) if cols <= 8 => unsafe { kernel_avx2::<1>(kc, a, b, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Isa::Avx2Fma, out) => unsafe { kernel_avx2::<2>(kc, a, b, out) },
        (_, TileOut::Acc(acc)) => kernel_portable(kc, a, b, acc),
        (_, TileOut::C { .. }) => unreachable!("the portable kernel stores through store_tile"),
    }
}

/// The 8×32 AVX-512 tile (`V` = 2 vectors of 16 columns per row), or its left half (`V` = 1)
/// for a last panel of B with at most 16 columns, which would otherwise multiply zeros.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const V: usize>(kc: usize, a: &[f32], b: &[f32], out: TileOut<'_>) {
    use std::arch::x86_64::*;
    assert!(a.len() >= kc * 8 && b.len() >= kc * 32);
    let mut c = [[_mm512_setzero_ps(); V]; 8];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    for kk in 0..kc {
        let mut bv = [_mm512_setzero_ps(); V];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: kk < kc, v < 2 and the asserts above bound every read.
            *b = unsafe { _mm512_loadu_ps(pb.add(kk * 32 + v * 16)) };
        }
        for (r, row) in c.iter_mut().enumerate() {
            let av = _mm512_set1_ps(unsafe { *pa.add(kk * 8 + r) });
            for (sums, &b) in row.iter_mut().zip(&bv) {
                *sums = _mm512_fmadd_ps(av, b, *sums);
            }
        }
    }
    let (to, ld, alpha, beta, bias) = match out {
        TileOut::Acc(acc) => (acc.as_mut_ptr(), 32, 1.0, 0.0, None),
        TileOut::C {
            c,
            ldc,
            alpha,
            beta,
            bias,
        } => (c, ldc, alpha, beta, bias),
    };
    let (alpha, beta) = (
        _mm512_set1_ps(alpha),
        (beta != 0.0).then(|| _mm512_set1_ps(beta)),
    );
    // The bias of the tile's columns, a register per 16.
    let bias = bias.map(|bias| {
        assert!(bias.len() >= 16 * V);
        // SAFETY: the assert above bounds every load.
        std::array::from_fn::<_, V, _>(|v| unsafe { _mm512_loadu_ps(bias.as_ptr().add(16 * v)) })
    });
    for (r, row) in c.iter().enumerate() {
        for (half, &sums) in row.iter().enumerate() {
            // SAFETY: row r of the destination holds 16·V floats (acc: 8 rows of 32; C: a
            // whole tile, by the caller's contract).
            unsafe {
                let p = to.add(r * ld + half * 16);
                let v = match bias {
                    Some(bias) => _mm512_fmadd_ps(alpha, sums, bias[half]),
                    None => _mm512_mul_ps(alpha, sums),
                };
                let v = match beta {
                    Some(beta) => _mm512_fmadd_ps(beta, _mm512_loadu_ps(p), v),
                    None => v,
                };
                _mm512_storeu_ps(p, v);
            }
        }
    }
}

/// The 6×16 AVX2 tile (`V` = 2 vectors of 8 columns per row), or its left half (`V` = 1) for
/// a last panel of B with at most 8 columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2<const V: usize>(kc: usize, a: &[f32], b: &[f32], out: TileOut<'_>) {
    use std::arch::x86_64::*;
    assert!(a.len() >= kc * 6 && b.len() >= kc * 16);
    let mut c = [[_mm256_setzero_ps(); V]; 6];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    for kk in 0..kc {
        let mut bv = [_mm256_setzero_ps(); V];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: kk < kc, v < 2 and the asserts above bound every read.
            *b = unsafe { _mm256_loadu_ps(pb.add(kk * 16 + v * 8)) };
        }
        for (r, row) in c.iter_mut().enumerate() {
            let av = _mm256_set1_ps(unsafe { *pa.add(kk * 6 + r) });
            for (sums, &b) in row.iter_mut().zip(&bv) {
                *sums = _mm256_fmadd_ps(av, b, *sums);
            }
        }
    }
    let (to, ld, alpha, beta, bias) = match out {
        TileOut::Acc(acc) => (acc.as_mut_ptr(), 16, 1.0, 0.0, None),
        TileOut::C {
            c,
            ldc,
            alpha,
            beta,
            bias,
        } => (c, ldc, alpha, beta, bias),
    };
    let (alpha, beta) = (
        _mm256_set1_ps(alpha),
        (beta != 0.0).then(|| _mm256_set1_ps(beta)),
    );
    // The bias of the tile's columns, a register per 8.
    let bias = bias.map(|bias| {
        assert!(bias.len() >= 8 * V);
        // SAFETY: the assert above bounds every load.
        std::array::from_fn::<_, V, _>(|v| unsafe { _mm256_loadu_ps(bias.as_ptr().add(8 * v)) })
    });
    for (r, row) in c.iter().enumerate() {
        for (half, &sums) in row.iter().enumerate() {
            // SAFETY: row r of the destination holds 8·V floats (acc: at least 6 rows of 16;
            // C: a whole tile, by the caller's contract).
            unsafe {
                let p = to.add(r * ld + half * 8);
                let v = match bias {
                    Some(bias) => _mm256_fmadd_ps(alpha, sums, bias[half]),
                    None => _mm256_mul_ps(alpha, sums),
                };
                let v = match beta {
                    Some(beta) => _mm256_fmadd_ps(beta, _mm256_loadu_ps(p), v),
                    None => v,
                };
                _mm256_storeu_ps(p, v);
            }
        }
    }
}

/// The same tile product in plain Rust (4×8), for processors without AVX2.
fn kernel_portable(kc: usize, a: &[f32], b: &[f32], acc: &mut [f32; 256]) {
    let mut c = [[0.0f32; 8]; 4];
    for kk in 0..kc {
        let bv = &b[kk * 8..][..8];
        for (r, row) in c.iter_mut().enumerate() {
            let av = a[kk * 4 + r];
            for (x, &bb) in row.iter_mut().zip(bv) {
                *x += av * bb;
            }
        }
    }
    for (r, row) in c.iter().enumerate() {
        acc[r * 8..][..8].copy_from_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::Activation;
    use crate::gemm::naive;
    use crate::testing::{assert_close, matrix, uniform};

    /// Runs the packed product on one thread for every ISA this machine has, plain and with
    /// an epilogue (a bias per column, then an activation).
    #[test]
    fn every_micro_kernel_matches_the_triple_loop_on_odd_shapes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 3, 5),
            (9, 300, 33),
            (39, 54, 49),
            (17, 520, 70),
            (72, 351, 9),
            (40, 7, 3),
            (150, 260, 40),
        ] {
            let bias = uniform(n, 4);
            let epilogues = [
                Epilogue::default(),
                Epilogue {
                    bias: Some(&bias),
                    act: Some(Activation::Selu),
                },
                Epilogue {
                    bias: Some(&bias),
                    act: None,
                },
            ];
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for (beta, epi) in [0.0, 0.5]
                    .into_iter()
                    .flat_map(|b| epilogues.map(|e| (b, e)))
                {
                    let a_data = uniform(m * k, 1);
                    let b_data = uniform(k * n, 2);
                    let a = matrix(&a_data, m, k, ta);
                    let b = matrix(&b_data, k, n, tb);
                    let start = uniform(m * n, 3);
                    let mut want = start.clone();
                    naive(0.7, a, b, beta, &mut want);
                    want.chunks_exact_mut(n)
                        .for_each(|row| epi.apply_to_row(row));
                    let with = format!("β={beta} bias={} {:?}", epi.bias.is_some(), epi.act);
                    let mut got = start.clone();
                    // SAFETY: `got` is an exclusive m×n block.
                    unsafe { gemm(0.7, a, b, beta, epi, got.as_mut_ptr(), n) };
                    let what = format!("{m}x{k}x{n} ta={ta} tb={tb} {with}");
                    assert_close(&got, &want, 1e-5, &what);
                    // Every tiling this machine can run, whichever `gemm` picked: the AVX2
                    // one (6×16 tiles, as on AVX2-only machines) and the portable one.
                    let mut tilings = vec![Isa::Portable];
                    if Isa::detect() != Isa::Portable {
                        tilings.push(Isa::Avx2Fma);
                    }
                    for isa in tilings {
                        let mut got = start.clone();
                        let c = CBlockPtr {
                            c: got.as_mut_ptr(),
                            ldc: n,
                        };
                        // SAFETY: `got` is an exclusive m×n block; the AVX2 kernel runs only
                        // where the processor has AVX2 (every AVX-512 machine does too).
                        unsafe {
                            match isa {
                                Isa::Avx2Fma => gemm_tiled::<6, 16>(isa, 0.7, a, b, beta, epi, c),
                                _ => gemm_tiled::<4, 8>(isa, 0.7, a, b, beta, epi, c),
                            }
                        };
                        let what = format!("{isa:?} {m}x{k}x{n} ta={ta} tb={tb} {with}");
                        assert_close(&got, &want, 1e-5, &what);
                    }
                    // The portable kernel on its own.
                    let mut pa = vec![0.0; m.div_ceil(4) * 4 * k.max(1)];
                    let mut pb = vec![0.0; n.div_ceil(8) * 8 * k.max(1)];
                    if k <= KC {
                        pack_a::<4>(a, 0, k, &mut pa);
                        pack_b::<8>(b, 0, k, &mut pb);
                        let mut acc = [0.0; 256];
                        kernel_portable(k, &pa, &pb, &mut acc);
                        let direct: f64 = (0..k)
                            .map(|p| a.get(0, p) as f64 * b.get(p, 0) as f64)
                            .sum();
                        assert!((acc[0] as f64 - direct).abs() < 1e-4 * (1.0 + direct.abs()));
                    }
                }
            }
        }
    }
}
