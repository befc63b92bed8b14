//! Convolution as one GEMM per small chunk of images, instead of one GEMM per image.
//!
//! [`super::im2col_gemm`] multiplies w (C_out × K) by one image's columns (K × OH·OW). Deep in
//! a network OH·OW is tiny (3×3 = 9 for conv-selu's third layer; 7×7 = 49 for its second), and
//! a matrix product with 9 or 49 columns cannot fill a vector unit: the micro-kernel computes
//! 32 columns at a time, so 49 columns cost as much as 64, and packing and edges take most of
//! the rest. Here the columns of a chunk of B images sit side by side, K × (P·B) with
//! P = OH·OW, so each product has hundreds of columns:
//!
//! * forward:          `Y (C_out × P·B) = w (C_out × K) · cols (K × P·B)`, then transposed
//!   back to NCHW with the epilogue (bias, activation) applied while the chunk is in cache;
//! * backward_input:   `d_cols (K × P·B) = wᵀ · d_Y`, then col2im;
//! * backward_weight:  `d_w = Σ_chunks d_Y · colsᵀ`, the chunk's P·B positions as the inner
//!   dimension, summed in the fixed groups of `sum_weight_grad_in_groups` in `conv2d`.
//!
//! Inside a chunk every tensor is **batch-last**: the B images' values of one pixel (or of one
//! output position of one channel) are adjacent. Column p·B + b of the chunk's matrices is
//! output position p of image b, and Y (C_out × P·B) is the outputs batch-last. Unrolling a
//! receptive field then copies runs of B floats — `x_t[pixel·B ..][..B]` — instead of
//! gathering one float per table lookup, and col2im adds runs of B. The price is a transpose
//! of each chunk's input and output at the edges ([`crate::transpose`], 8×8 tiles in
//! registers), which the copies repay; with an element-by-element transpose they did not
//! (figures: docs/performance.md, "Measurements behind the code").
//!
//! A chunk holds as many images as fit in `CHUNK_COLUMNS` (512) columns, so its matrices
//! (under a MiB) stay in the core's own cache between being written and being multiplied, and
//! the chunks run in parallel, one product per thread at a time. The chunk size depends on the
//! shapes only, never on the thread count, so results are the same on any machine.

use super::{Conv2dGeometry, Epilogue};
use crate::conv2d::im2col::{tap_offsets, PADDING};
use crate::gemm::{gemm_on_this_thread, MatRef};
use crate::scratch::{with_index_scratch, with_scratch};
use crate::transpose::transpose;
use rayon::prelude::*;

/// Columns per chunk: sixteen 32-wide AVX-512 tiles, a product large enough to repay packing
/// its operands, with a column matrix that still fits a core's L2 cache (conv-selu's 39→72
/// layer: 351 rows × 512 columns, 720 KiB). Of 256, 512 and 1024, measured on whole training
/// steps, 512 was the middle that suited both convolutional presets (figures: docs/performance.md, "Measurements behind the code").
pub(crate) const CHUNK_COLUMNS: usize = 512;

/// Images per chunk for `geom`: as many chunks as it takes for each to fit its columns in
/// `CHUNK_COLUMNS` (512), and the batch shared among them as evenly as whole chunks allow
/// (512 images at 3×3 outputs: ten chunks of 52 and a last of 44, not nine of 56 and a last
/// of 8), so that two threads taking five chunks each do the same work.
///
/// Rounding down, not up: at 3×3 outputs 57 images would make 513 columns, that is 17 tiles
/// of 32 columns with one column in the last, and a weight gradient whose inner dimension
/// 513 is two blocks of 256 and a block of 1, each packed and stored on its own. 56 images
/// make 504 (figures: docs/performance.md, "Measurements behind the code").
fn chunk_images(geom: &Conv2dGeometry) -> usize {
    let p = geom.h_out() * geom.w_out();
    let n = geom.spec().n.max(1);
    let most = (CHUNK_COLUMNS / p.max(1)).clamp(1, n);
    n.div_ceil(n.div_ceil(most))
}

/// The sizes every chunk shares: K rows of the column matrix, P positions per image.
#[derive(Clone, Copy)]
struct Dims {
    k: usize,
    p: usize,
    c_out: usize,
    in_len: usize,
    out_len: usize,
}

impl Dims {
    fn of(geom: &Conv2dGeometry) -> Self {
        Dims {
            k: geom.patch_len(),
            p: geom.h_out() * geom.w_out(),
            c_out: geom.spec().c_out,
            in_len: geom.input_image_len(),
            out_len: geom.output_image_len(),
        }
    }
}

/// cols (K × P·B) ← the columns of the chunk's B images, from the images batch-last
/// (`x_t`, C_in·H·W × B: each pixel's B values adjacent). Row r = (ci, i, j) holds tap (i, j)
/// of channel ci; within a row, position p's B values (one per image) are adjacent, so each is
/// one copy of a pixel's B values: `x_t[t·B ..][..B]` with t = [`tap_offsets`]\[r, p\], or
/// zeros where the tap falls in the padding.
///
/// (Gathering element by element from the images as they are (NCHW) costs a table lookup,
/// a test and a load per entry, several times what transposing in tiles and these copies
/// take together (figures: docs/performance.md, "Measurements behind the code").)
fn im2col_chunk(d: Dims, b: usize, taps: &[u32], x_t: &[f32], cols: &mut [f32]) {
    for (row, taps) in cols.chunks_exact_mut(d.p * b).zip(taps.chunks_exact(d.p)) {
        for (run, &t) in row.chunks_exact_mut(b).zip(taps) {
            if t == PADDING {
                run.fill(0.0);
            } else {
                run.copy_from_slice(&x_t[t as usize * b..][..b]);
            }
        }
    }
}

/// x_t (C_in·H·W × B, batch-last) ← col2im of the chunk's columns: each pixel adds up the
/// column entries that were taken from it, B images at a time (the adjoint of
/// [`im2col_chunk`]). The rows of one input channel follow each other, so that channel's
/// plane stays in L1 while its KH·KW rows are added; each pixel gets its terms in the order
/// of the rows.
fn col2im_chunk(d: Dims, b: usize, taps: &[u32], cols: &[f32], x_t: &mut [f32]) {
    x_t.fill(0.0);
    for (row, taps) in cols.chunks_exact(d.p * b).zip(taps.chunks_exact(d.p)) {
        for (run, &t) in row.chunks_exact(b).zip(taps) {
            if t != PADDING {
                for (acc, &v) in x_t[t as usize * b..][..b].iter_mut().zip(run) {
                    *acc += v;
                }
            }
        }
    }
}

/// y (B × C_out·P, NCHW) ← Y (C_out × P·B), then the epilogue (bias, activation) while the
/// chunk is in cache: the GEMM's outputs transposed back to images.
fn scatter_outputs(d: Dims, big_y: &[f32], epilogue: Epilogue<'_>, y: &mut [f32]) {
    transpose(big_y, d.out_len, y);
    epilogue.apply(y, d.p);
}

/// Runs `f` with `geom`'s [`tap_offsets`] table (K × P).
fn with_taps<R>(geom: &Conv2dGeometry, f: impl FnOnce(&[u32]) -> R) -> R {
    with_index_scratch(geom.patch_len() * geom.h_out() * geom.w_out(), |taps| {
        tap_offsets(geom, taps);
        f(taps)
    })
}

/// A chunk's working matrices, borrowed from this thread's scratch memory.
struct ChunkMatrices<'s> {
    /// B images batch-last (C_in·H·W × B): the input, or its gradient.
    images: &'s mut [f32],
    /// The columns (K × P·B), or their gradient.
    cols: &'s mut [f32],
    /// The outputs side by side (C_out × P·B), or their gradient.
    outputs: &'s mut [f32],
}

/// Runs `f` with the working matrices of a chunk of `b` images.
fn with_chunk_matrices<R>(d: Dims, b: usize, f: impl FnOnce(ChunkMatrices<'_>) -> R) -> R {
    with_scratch(d.in_len * b, |images| {
        with_scratch(d.k * d.p * b, |cols| {
            with_scratch(d.c_out * d.p * b, |outputs| {
                f(ChunkMatrices {
                    images,
                    cols,
                    outputs,
                })
            })
        })
    })
}

impl ChunkMatrices<'_> {
    /// images ← the chunk's input `x` (B images, NCHW) batch-last; cols ← its columns.
    fn unroll(&mut self, d: Dims, taps: &[u32], x: &[f32]) {
        let b = x.len() / d.in_len;
        transpose(x, b, self.images);
        im2col_chunk(d, b, taps, self.images, self.cols);
    }

    /// outputs ← the chunk's `y` (B images, NCHW) batch-last: C_out × P·B, the GEMMs' layout.
    fn gather_outputs(&mut self, d: Dims, y: &[f32]) {
        transpose(y, y.len() / d.out_len, self.outputs);
    }

    /// x (B images, NCHW) ← col2im of the columns, by way of the batch-last images.
    fn roll_back(&mut self, d: Dims, taps: &[u32], x: &mut [f32]) {
        col2im_chunk(d, x.len() / d.in_len, taps, self.cols, self.images);
        transpose(self.images, d.in_len, x);
    }
}

/// A chunk matrix with `rows` rows (row-major) as a GEMM operand.
fn matrix(m: &[f32], rows: usize) -> MatRef<'_> {
    MatRef::row_major(m, rows, m.len() / rows)
}

/// y = w · im2col(x), then the epilogue (bias, activation), one GEMM per chunk of images.
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], epilogue: Epilogue<'_>, y: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::batched_gemm::forward",
        x.len(),
        w.len(),
        y.len(),
    );
    forward_in_chunks(geom, chunk_images(geom), x, w, epilogue, y);
}

fn forward_in_chunks(
    geom: &Conv2dGeometry,
    chunk: usize,
    x: &[f32],
    w: &[f32],
    epilogue: Epilogue<'_>,
    y: &mut [f32],
) {
    let d = Dims::of(geom);
    let w_mat = MatRef::row_major(w, d.c_out, d.k);
    with_taps(geom, |taps| {
        x.par_chunks(chunk * d.in_len)
            .zip(y.par_chunks_mut(chunk * d.out_len))
            .for_each(|(x_chunk, y_chunk)| {
                with_chunk_matrices(d, x_chunk.len() / d.in_len, |mut m| {
                    m.unroll(d, taps, x_chunk);
                    gemm_on_this_thread(1.0, w_mat, matrix(m.cols, d.k), 0.0, m.outputs);
                    scatter_outputs(d, m.outputs, epilogue, y_chunk);
                });
            });
    });
}

/// d_x = col2im(wᵀ · d_y), one GEMM per chunk of images.
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    backward_input_with(geom, d_y, w, Epilogue::default(), d_x);
}

/// [`backward_input`] followed by an epilogue on d_x, chunk by chunk: a transposed
/// convolution's forward, with its bias and activation (see
/// [`crate::conv_transpose2d::forward_with`]).
pub fn backward_input_with(
    geom: &Conv2dGeometry,
    d_y: &[f32],
    w: &[f32],
    epilogue: Epilogue<'_>,
    d_x: &mut [f32],
) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::batched_gemm::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    backward_input_in_chunks(geom, chunk_images(geom), d_y, w, epilogue, d_x);
}

fn backward_input_in_chunks(
    geom: &Conv2dGeometry,
    chunk: usize,
    d_y: &[f32],
    w: &[f32],
    epilogue: Epilogue<'_>,
    d_x: &mut [f32],
) {
    let d = Dims::of(geom);
    let w_t = MatRef::row_major(w, d.c_out, d.k).t();
    let plane = geom.spec().h_in * geom.spec().w_in;
    with_taps(geom, |taps| {
        d_y.par_chunks(chunk * d.out_len)
            .zip(d_x.par_chunks_mut(chunk * d.in_len))
            .for_each(|(d_y_chunk, d_x_chunk)| {
                with_chunk_matrices(d, d_y_chunk.len() / d.out_len, |mut m| {
                    m.gather_outputs(d, d_y_chunk);
                    gemm_on_this_thread(1.0, w_t, matrix(m.outputs, d.c_out), 0.0, m.cols);
                    m.roll_back(d, taps, d_x_chunk);
                    epilogue.apply(d_x_chunk, plane);
                });
            });
    });
}

/// `d_w = Σ_chunks d_Y · colsᵀ`: one GEMM per chunk with the chunk's B·P positions as its
/// inner dimension, summed in the fixed groups of `sum_weight_grad_in_groups` in `conv2d`.
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::batched_gemm::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    weight_grad_and(geom, chunk_images(geom), x, d_y, d_w, Beside::Nothing);
}

/// A convolution's two gradients from one pass over the chunks: d_x as [`backward_input`] and
/// d_w as [`backward_weight`]. Both need ∂L/∂y side by side (C_out × B·P): it is gathered
/// once per chunk instead of twice, and used by both products while it is in cache; the
/// column buffer, once the weight gradient has read it, receives wᵀ·∂L/∂y.
///
/// # Shapes
/// x (N, C_in, H, W), d_y (N, C_out, OH, OW), w (C_out, C_in, KH, KW) → d_x like x, d_w like w.
pub fn backward_input_and_weight(
    geom: &Conv2dGeometry,
    x: &[f32],
    d_y: &[f32],
    w: &[f32],
    d_x: &mut [f32],
    d_w: &mut [f32],
) {
    let kernel = "conv2d::batched_gemm::backward_input_and_weight";
    crate::conv2d::check_lens(geom, kernel, x.len(), w.len(), d_y.len());
    crate::conv2d::check_lens(geom, kernel, d_x.len(), d_w.len(), d_y.len());
    weight_grad_and(
        geom,
        chunk_images(geom),
        x,
        d_y,
        d_w,
        Beside::Input { w, d_x },
    );
}

/// The two products with im2col(x), each chunk's columns made once and used twice:
/// `y = w · im2col(x)` (no bias) and `d_w = Σ g · im2col(x)ᵀ`, with g shaped like y.
///
/// A transposed convolution's backward is exactly this pair for its adjoint: its ∂L/∂x is the
/// adjoint's forward of ∂L/∂y, and its ∂L/∂w the adjoint's weight gradient with ∂L/∂y as the
/// input ([`crate::conv_transpose2d::backward_input_and_weight`]). Sharing the columns
/// unrolls ∂L/∂y once instead of twice.
///
/// # Shapes
/// x (N, C_in, H, W), w (C_out, C_in, KH, KW), g (N, C_out, OH, OW) → y like g, d_w like w.
pub fn forward_and_backward_weight(
    geom: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    g: &[f32],
    d_w: &mut [f32],
) {
    let kernel = "conv2d::batched_gemm::forward_and_backward_weight";
    crate::conv2d::check_lens(geom, kernel, x.len(), w.len(), y.len());
    crate::conv2d::check_lens(geom, kernel, x.len(), d_w.len(), g.len());
    weight_grad_and(
        geom,
        chunk_images(geom),
        x,
        g,
        d_w,
        Beside::Forward { w, y },
    );
}

/// What a pass over the chunks computes beside the weight gradient, from the chunk matrices
/// it already holds.
enum Beside<'a> {
    /// The weight gradient alone.
    Nothing,
    /// y = w · cols (no bias), from the columns.
    Forward { w: &'a [f32], y: &'a mut [f32] },
    /// d_x = col2im(wᵀ · g), from the gathered g.
    Input { w: &'a [f32], d_x: &'a mut [f32] },
}

/// d_w = Σ_chunks g · colsᵀ, chunk by chunk, and in the same chunks what `beside` asks for.
fn weight_grad_and(
    geom: &Conv2dGeometry,
    chunk: usize,
    x: &[f32],
    g: &[f32],
    d_w: &mut [f32],
    beside: Beside<'_>,
) {
    let d = Dims::of(geom);
    let w_mat = |w| MatRef::row_major(w, d.c_out, d.k);
    // The per-image result of the second product, and whether it is the forward (y = w·cols)
    // or the input gradient (d_x = col2im(wᵀ·g)).
    let (w, forward, out) = match beside {
        Beside::Nothing => (None, false, None),
        Beside::Forward { w, y } => (Some(w_mat(w)), true, Some(y)),
        Beside::Input { w, d_x } => (Some(w_mat(w)), false, Some(d_x)),
    };
    with_taps(geom, |taps| {
        super::sum_weight_grad_in_groups(
            geom,
            chunk,
            x,
            g,
            out,
            d_w,
            |x_chunk, g_chunk, out_chunk, partial| {
                with_chunk_matrices(d, x_chunk.len() / d.in_len, |mut m| {
                    m.unroll(d, taps, x_chunk);
                    m.gather_outputs(d, g_chunk);
                    gemm_on_this_thread(
                        1.0,
                        matrix(m.outputs, d.c_out),
                        matrix(m.cols, d.k).t(),
                        1.0,
                        partial,
                    );
                    let (Some(w), Some(out_chunk)) = (w, out_chunk) else {
                        return;
                    };
                    if forward {
                        // y = w · cols, written over g (no longer needed), then scattered.
                        gemm_on_this_thread(1.0, w, matrix(m.cols, d.k), 0.0, m.outputs);
                        scatter_outputs(d, m.outputs, Epilogue::default(), out_chunk);
                    } else {
                        // d_cols = wᵀ · g, written over the columns (no longer needed).
                        gemm_on_this_thread(1.0, w.t(), matrix(m.outputs, d.c_out), 0.0, m.cols);
                        m.roll_back(d, taps, out_chunk);
                    }
                });
            },
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{naive, Conv2dSpec};
    use crate::testing::{assert_close, uniform};

    #[test]
    fn chunks_share_the_batch_evenly_within_the_column_budget() {
        let geom = |n, h_in, c_out| {
            let spec = Conv2dSpec {
                n,
                c_in: 2,
                h_in,
                w_in: h_in,
                c_out,
                kh: 3,
                kw: 3,
                stride: 2,
                pad: 0,
            };
            Conv2dGeometry::new(spec).expect("a valid geometry")
        };
        // 3×3 outputs: at most 56 images (504 columns), so 10 chunks of 52 (the last 44).
        assert_eq!(chunk_images(&geom(512, 7, 4)), 52);
        // 7×7 outputs: at most 10 images, 52 chunks, 10 each (the last 2).
        assert_eq!(chunk_images(&geom(512, 15, 4)), 10);
        // An image wider than the budget: one per chunk. A small batch: one chunk.
        assert_eq!(chunk_images(&geom(5, 61, 4)), 1);
        assert_eq!(chunk_images(&geom(3, 7, 4)), 3);
    }

    #[test]
    fn several_chunks_give_what_one_pass_gives() {
        // Five images in chunks of two (2 + 2 + 1): the chunk boundaries, a short last chunk
        // and the weight gradient accumulated over chunks are all exercised. 67 images make 34
        // chunks, more than the weight gradient's 32 groups: some groups take two.
        for n in [5, 21, 67] {
            several_chunks(n);
        }
    }

    fn several_chunks(n: usize) {
        let spec = Conv2dSpec {
            n,
            c_in: 3,
            h_in: 7,
            w_in: 6,
            c_out: 4,
            kh: 3,
            kw: 3,
            stride: 2,
            pad: 1,
        };
        let geom = Conv2dGeometry::new(spec).unwrap();
        let len = |s: &[usize]| s.iter().product::<usize>();
        let x = uniform(len(&geom.input_shape()), 1);
        let w = uniform(len(&geom.weight_shape()), 2);
        let b = uniform(spec.c_out, 3);
        let d_y = uniform(len(&geom.output_shape()), 4);
        let (mut y, mut d_x, mut d_w) = (
            vec![f32::NAN; d_y.len()],
            vec![f32::NAN; x.len()],
            vec![f32::NAN; w.len()],
        );
        let bias = Epilogue {
            bias: Some(&b),
            act: None,
        };
        forward_in_chunks(&geom, 2, &x, &w, bias, &mut y);
        backward_input_in_chunks(&geom, 2, &d_y, &w, Epilogue::default(), &mut d_x);
        weight_grad_and(&geom, 2, &x, &d_y, &mut d_w, Beside::Nothing);
        let (mut y0, mut d_x0, mut d_w0) =
            (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        naive::forward(&geom, &x, &w, Some(&b), &mut y0);
        naive::backward_input(&geom, &d_y, &w, &mut d_x0);
        naive::backward_weight(&geom, &x, &d_y, &mut d_w0);
        assert_close(&y, &y0, 1e-5, "forward");
        assert_close(&d_x, &d_x0, 1e-5, "backward_input");
        assert_close(&d_w, &d_w0, 1e-5, "backward_weight");

        // Both products from one set of columns: the forward without bias, and the same
        // weight gradient.
        let (mut y2, mut d_w2) = (vec![f32::NAN; d_y.len()], vec![f32::NAN; w.len()]);
        weight_grad_and(
            &geom,
            2,
            &x,
            &d_y,
            &mut d_w2,
            Beside::Forward { w: &w, y: &mut y2 },
        );
        naive::forward(&geom, &x, &w, None, &mut y0);
        assert_close(&y2, &y0, 1e-5, "forward beside the weight gradient");
        assert_close(&d_w2, &d_w0, 1e-5, "weight gradient beside the forward");

        // Both gradients of the convolution from one gather of d_y per chunk.
        let (mut d_x3, mut d_w3) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()]);
        let beside = Beside::Input {
            w: &w,
            d_x: &mut d_x3,
        };
        weight_grad_and(&geom, 2, &x, &d_y, &mut d_w3, beside);
        assert_close(
            &d_x3,
            &d_x0,
            1e-5,
            "input gradient beside the weight gradient",
        );
        assert_close(
            &d_w3,
            &d_w0,
            1e-5,
            "weight gradient beside the input gradient",
        );
    }
}
