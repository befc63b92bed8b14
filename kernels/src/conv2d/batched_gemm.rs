//! Convolution as one GEMM per small chunk of images, instead of one GEMM per image.
//!
//! [`super::im2col_gemm`] multiplies w (C_out × K) by one image's columns (K × OH·OW). Deep in
//! a network OH·OW is tiny (3×3 = 9 for conv-selu's third layer; 7×7 = 49 for its second), and
//! a matrix product with 9 or 49 columns cannot fill a vector unit: the micro-kernel computes
//! 32 columns at a time, so 49 columns cost as much as 64, and packing and edges take most of
//! the rest. Here the columns of a chunk of B images sit side by side, K × (B·P) with
//! P = OH·OW, so each product has hundreds of columns:
//!
//! * forward:          `Y (C_out × B·P) = w (C_out × K) · cols (K × B·P)`, then scattered to
//!   NCHW with the bias added;
//! * backward_input:   `d_cols (K × B·P) = wᵀ · d_Y`, then col2im image by image;
//! * backward_weight:  `d_w = Σ_chunks d_Y · colsᵀ`, the chunk's B·P positions as the inner
//!   dimension, summed in the fixed groups of `sum_weight_grad_in_groups` in `conv2d`.
//!
//! Column b·P + p of the chunk's matrix is output position p of image b. A chunk holds as
//! many images as fit in `CHUNK_COLUMNS` (512) columns, so its column matrix (under a MiB)
//! stays in the core's own cache between being written and being multiplied, and the chunks
//! run in parallel, one product per thread at a time. The chunk size depends on the shapes
//! only, never on the thread count, so results are the same on any machine.

use super::Conv2dGeometry;
use crate::gemm::{gemm_on_this_thread, MatRef};
use crate::im2col::{tap_offsets, PADDING};
use crate::scratch::{with_index_scratch, with_scratch};
use rayon::prelude::*;

/// Columns per chunk: sixteen 32-wide AVX-512 tiles, a product large enough to repay packing
/// its operands, with a column matrix that still fits a core's L2 cache (conv-selu's 39→72
/// layer: 351 rows × 512 columns, 720 KiB). Measured on whole training steps (`handgrad bench`,
/// 2 threads, alternating builds, a few pairs each): 512 against 256 ran from as fast to 11 %
/// faster on conv-selu and conv-small; 1024 against 512 was slower on conv-selu in two pairs of
/// three and faster on conv-small (batch 128) in both pairs: 512 is the middle.
pub(crate) const CHUNK_COLUMNS: usize = 512;

/// Images per chunk for `geom`: the most whose columns fit in `CHUNK_COLUMNS` (512), at least
/// one and at most the batch.
///
/// Rounding down, not up: at 3×3 outputs 57 images would make 513 columns, that is 17 tiles
/// of 32 columns with one column in the last, and a weight gradient whose inner dimension
/// 513 is two blocks of 256 and a block of 1, each packed and stored on its own. 56 images
/// make 504. Measured on whole conv-selu training steps (`handgrad bench`, six rounds of
/// alternating builds): 11,760 against 10,780 images/s on average, faster in five rounds of
/// six; conv-small (whose 7×7 layers went from 11 to 10 images) was the same within the
/// noise.
fn chunk_images(geom: &Conv2dGeometry) -> usize {
    let p = geom.h_out() * geom.w_out();
    (CHUNK_COLUMNS / p.max(1)).clamp(1, geom.spec().n)
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

/// cols (K × B·P) ← the columns of the images in `x` (one after another): row r = (ci, i, j)
/// holds tap (i, j) of channel ci for every image. A gather through the table of
/// [`tap_offsets`], the same for every image.
///
/// (An AVX-512 version with the processor's gather instruction measured no faster on whole
/// conv-selu steps on an AMD EPYC: a gather there costs about what its scalar loads do.)
fn im2col_chunk(d: Dims, taps: &[u32], x: &[f32], cols: &mut [f32]) {
    let columns = x.len() / d.in_len * d.p;
    for (row, taps) in cols.chunks_exact_mut(columns).zip(taps.chunks_exact(d.p)) {
        for (x_img, segment) in x.chunks_exact(d.in_len).zip(row.chunks_exact_mut(d.p)) {
            for (c, &t) in segment.iter_mut().zip(taps) {
                *c = if t == PADDING { 0.0 } else { x_img[t as usize] };
            }
        }
    }
}

/// x ← col2im of the chunk's columns: each image reads its own columns of every row and adds
/// them back onto the pixels they came from (the adjoint of [`im2col_chunk`]).
fn col2im_chunk(d: Dims, taps: &[u32], cols: &[f32], x: &mut [f32]) {
    let b = x.len() / d.in_len;
    for (img, x_img) in x.chunks_exact_mut(d.in_len).enumerate() {
        x_img.fill(0.0);
        for (row, taps) in cols.chunks_exact(b * d.p).zip(taps.chunks_exact(d.p)) {
            for (&c, &t) in row[img * d.p..][..d.p].iter().zip(taps) {
                if t != PADDING {
                    x_img[t as usize] += c;
                }
            }
        }
    }
}

/// Y (C_out × B·P) ← the chunk's outputs `y` (NCHW) side by side: the layout the GEMMs use.
fn gather_outputs(d: Dims, y: &[f32], big_y: &mut [f32]) {
    let b = y.len() / d.out_len;
    for (co, row) in big_y.chunks_exact_mut(b * d.p).enumerate() {
        for (y_img, segment) in y.chunks_exact(d.out_len).zip(row.chunks_exact_mut(d.p)) {
            segment.copy_from_slice(&y_img[co * d.p..][..d.p]);
        }
    }
}

/// y (NCHW) ← Y (C_out × B·P) plus the bias: the adjoint of [`gather_outputs`].
fn scatter_outputs(d: Dims, big_y: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let b = y.len() / d.out_len;
    for (img, y_img) in y.chunks_exact_mut(d.out_len).enumerate() {
        for (co, plane) in y_img.chunks_exact_mut(d.p).enumerate() {
            let from = &big_y[co * b * d.p + img * d.p..][..d.p];
            let add = bias.map_or(0.0, |bias| bias[co]);
            for (o, v) in plane.iter_mut().zip(from) {
                *o = v + add;
            }
        }
    }
}

/// Runs `f` with `geom`'s [`tap_offsets`] table (K × P).
fn with_taps<R>(geom: &Conv2dGeometry, f: impl FnOnce(&[u32]) -> R) -> R {
    with_index_scratch(geom.patch_len() * geom.h_out() * geom.w_out(), |taps| {
        tap_offsets(geom, taps);
        f(taps)
    })
}

/// Runs `f` with a chunk's two working matrices from this thread's scratch memory: the
/// columns (K × `columns`) and the outputs side by side (C_out × `columns`).
fn with_chunk_matrices<R>(
    d: Dims,
    columns: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    with_scratch(d.k * columns, |cols| {
        with_scratch(d.c_out * columns, |outputs| f(cols, outputs))
    })
}

/// y = w · im2col(x) + b, one GEMM per chunk of images.
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::batched_gemm::forward",
        x.len(),
        w.len(),
        y.len(),
    );
    forward_in_chunks(geom, chunk_images(geom), x, w, bias, y);
}

fn forward_in_chunks(
    geom: &Conv2dGeometry,
    chunk: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let d = Dims::of(geom);
    let w_mat = MatRef::row_major(w, d.c_out, d.k);
    with_taps(geom, |taps| {
        x.par_chunks(chunk * d.in_len)
            .zip(y.par_chunks_mut(chunk * d.out_len))
            .for_each(|(x_chunk, y_chunk)| {
                let columns = x_chunk.len() / d.in_len * d.p;
                with_chunk_matrices(d, columns, |cols, big_y| {
                    im2col_chunk(d, taps, x_chunk, cols);
                    let cols = MatRef::row_major(cols, d.k, columns);
                    gemm_on_this_thread(1.0, w_mat, cols, 0.0, big_y);
                    scatter_outputs(d, big_y, bias, y_chunk);
                });
            });
    });
}

/// d_x = col2im(wᵀ · d_y), one GEMM per chunk of images.
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::batched_gemm::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    backward_input_in_chunks(geom, chunk_images(geom), d_y, w, d_x);
}

fn backward_input_in_chunks(
    geom: &Conv2dGeometry,
    chunk: usize,
    d_y: &[f32],
    w: &[f32],
    d_x: &mut [f32],
) {
    let d = Dims::of(geom);
    let w_t = MatRef::row_major(w, d.c_out, d.k).t();
    with_taps(geom, |taps| {
        d_y.par_chunks(chunk * d.out_len)
            .zip(d_x.par_chunks_mut(chunk * d.in_len))
            .for_each(|(d_y_chunk, d_x_chunk)| {
                let columns = d_y_chunk.len() / d.out_len * d.p;
                with_chunk_matrices(d, columns, |d_cols, big_d_y| {
                    gather_outputs(d, d_y_chunk, big_d_y);
                    let big_d_y = MatRef::row_major(big_d_y, d.c_out, columns);
                    gemm_on_this_thread(1.0, w_t, big_d_y, 0.0, d_cols);
                    col2im_chunk(d, taps, d_cols, d_x_chunk);
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
    columns_twice(geom, chunk_images(geom), x, None, d_y, d_w);
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
    columns_twice(geom, chunk_images(geom), x, Some((w, y)), g, d_w);
}

/// d_w = Σ_chunks g · colsᵀ and, when `forward` = (w, y) is given, y = w · cols, chunk by chunk.
fn columns_twice(
    geom: &Conv2dGeometry,
    chunk: usize,
    x: &[f32],
    forward: Option<(&[f32], &mut [f32])>,
    g: &[f32],
    d_w: &mut [f32],
) {
    let d = Dims::of(geom);
    let (w, y) = match forward {
        Some((w, y)) => (Some(MatRef::row_major(w, d.c_out, d.k)), Some(y)),
        None => (None, None),
    };
    with_taps(geom, |taps| {
        super::sum_weight_grad_in_groups(
            geom,
            chunk,
            x,
            g,
            y,
            d_w,
            |x_chunk, g_chunk, y_chunk, partial| {
                let columns = x_chunk.len() / d.in_len * d.p;
                with_chunk_matrices(d, columns, |cols, big| {
                    im2col_chunk(d, taps, x_chunk, cols);
                    gather_outputs(d, g_chunk, big);
                    let big_g = MatRef::row_major(big, d.c_out, columns);
                    let cols = MatRef::row_major(cols, d.k, columns);
                    gemm_on_this_thread(1.0, big_g, cols.t(), 1.0, partial);
                    if let (Some(w), Some(y_chunk)) = (w, y_chunk) {
                        gemm_on_this_thread(1.0, w, cols, 0.0, big);
                        scatter_outputs(d, big, None, y_chunk);
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
    fn several_chunks_give_what_one_pass_gives() {
        // Five images in chunks of two (2 + 2 + 1): the chunk boundaries, a short last chunk
        // and the weight gradient accumulated over chunks are all exercised. 21 images make 11
        // chunks, more than the weight gradient's 8 groups: some groups take two.
        for n in [5, 21] {
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
        forward_in_chunks(&geom, 2, &x, &w, Some(&b), &mut y);
        backward_input_in_chunks(&geom, 2, &d_y, &w, &mut d_x);
        columns_twice(&geom, 2, &x, None, &d_y, &mut d_w);
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
        columns_twice(&geom, 2, &x, Some((&w, &mut y2)), &d_y, &mut d_w2);
        naive::forward(&geom, &x, &w, None, &mut y0);
        assert_close(&y2, &y0, 1e-5, "forward beside the weight gradient");
        assert_close(&d_w2, &d_w0, 1e-5, "weight gradient beside the forward");
    }
}
