//! Convolution as one large GEMM per chunk of images, instead of one small GEMM per image.
//!
//! [`super::im2col_gemm`] multiplies w (C_out × K) by one image's columns (K × OH·OW). Deep in
//! a network OH·OW is tiny (3×3 = 9 for conv-selu's third layer), and a matrix product with 9
//! columns cannot fill a vector unit: most of its time goes to packing and edges. Here the
//! columns of a whole chunk of images sit side by side, K × (images·OH·OW), so the same
//! product has thousands of columns and runs near the machine's peak:
//!
//! * forward:          `Y (C_out × B·P) = w (C_out × K) · cols (K × B·P)`, then scattered to
//!   NCHW with the bias added (P = OH·OW, B images in the chunk);
//! * backward_input:   `d_cols (K × B·P) = wᵀ · d_Y`, then col2im image by image;
//! * backward_weight:  `d_w = Σ_chunks d_Y · colsᵀ`, where the inner dimension B·P is long.
//!
//! Column b·P + p of the chunk's matrix is output position p of image b. Chunks are sized so
//! the column matrix stays within `CHUNK_FLOATS` (8 MiB); their number depends on the shapes only,
//! never on the thread count, so results are the same on any machine.

use super::Conv2dGeometry;
use crate::gemm::{gemm, MatRef};
use crate::im2col::{tap_offsets, PADDING};
use crate::scratch::{with_index_scratch, with_scratch};
use rayon::prelude::*;

/// The most floats a chunk's column matrix may hold (8 MiB): large enough for thousands of
/// columns, small enough to stay in the last-level cache's neighbourhood.
const CHUNK_FLOATS: usize = 2 << 20;

/// Images per chunk for `geom`: as many as fit `CHUNK_FLOATS` (8 MiB), at least one.
fn chunk_images(geom: &Conv2dGeometry) -> usize {
    let per_image = geom.patch_len() * geom.h_out() * geom.w_out();
    (CHUNK_FLOATS / per_image.max(1)).clamp(1, geom.spec().n)
}

/// cols (K × B·P) ← the columns of the `b` images in `x` (one after another), rows in
/// parallel: row r = (ci, i, j) holds tap (i, j) of channel ci for every image. A gather
/// through the table of [`tap_offsets`], the same for every image.
fn im2col_chunk(geom: &Conv2dGeometry, x: &[f32], b: usize, cols: &mut [f32]) {
    let p = geom.h_out() * geom.w_out();
    let image = geom.input_image_len();
    with_index_scratch(geom.patch_len() * p, |offsets| {
        tap_offsets(geom, offsets);
        let offsets = &*offsets;
        cols.par_chunks_mut(b * p).enumerate().for_each(|(r, row)| {
            let taps = &offsets[r * p..][..p];
            for (x_img, segment) in x.chunks_exact(image).zip(row.chunks_exact_mut(p)) {
                for (c, &t) in segment.iter_mut().zip(taps) {
                    *c = if t == PADDING { 0.0 } else { x_img[t as usize] };
                }
            }
        });
    });
}

/// x ← col2im of the chunk's columns, images in parallel (each image reads its own columns of
/// every row and scatters them back through the same table).
fn col2im_chunk(geom: &Conv2dGeometry, cols: &[f32], b: usize, x: &mut [f32]) {
    let p = geom.h_out() * geom.w_out();
    with_index_scratch(geom.patch_len() * p, |offsets| {
        tap_offsets(geom, offsets);
        let offsets = &*offsets;
        x.par_chunks_mut(geom.input_image_len())
            .enumerate()
            .for_each(|(img, x_img)| {
                x_img.fill(0.0);
                for (row, taps) in cols.chunks_exact(b * p).zip(offsets.chunks_exact(p)) {
                    for (&c, &t) in row[img * p..][..p].iter().zip(taps) {
                        if t != PADDING {
                            x_img[t as usize] += c;
                        }
                    }
                }
            });
    });
}

/// Y (C_out × B·P) ← y's images (NCHW) side by side: the layout the GEMMs use.
fn gather_outputs(y: &[f32], c_out: usize, p: usize, big_y: &mut [f32]) {
    let b = y.len() / (c_out * p);
    big_y
        .par_chunks_mut(b * p)
        .enumerate()
        .for_each(|(co, row)| {
            for (img, segment) in row.chunks_exact_mut(p).enumerate() {
                segment.copy_from_slice(&y[(img * c_out + co) * p..][..p]);
            }
        });
}

/// y = w · im2col(x) + b, a chunk of images per GEMM.
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
    let s = geom.spec();
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    let w_mat = MatRef::row_major(w, s.c_out, k);
    for (x_chunk, y_chunk) in x
        .chunks(chunk * geom.input_image_len())
        .zip(y.chunks_mut(chunk * geom.output_image_len()))
    {
        let b = x_chunk.len() / geom.input_image_len();
        with_scratch(k * b * p, |cols| {
            im2col_chunk(geom, x_chunk, b, cols);
            with_scratch(s.c_out * b * p, |big_y| {
                gemm(1.0, w_mat, MatRef::row_major(cols, k, b * p), 0.0, big_y);
                // Scatter to NCHW, adding the bias.
                y_chunk
                    .par_chunks_mut(geom.output_image_len())
                    .enumerate()
                    .for_each(|(img, y_img)| {
                        for (co, plane) in y_img.chunks_exact_mut(p).enumerate() {
                            let from = &big_y[co * b * p + img * p..][..p];
                            let add = bias.map_or(0.0, |bias| bias[co]);
                            for (o, v) in plane.iter_mut().zip(from) {
                                *o = v + add;
                            }
                        }
                    });
            });
        });
    }
}

/// d_x = col2im(wᵀ · d_y), a chunk of images per GEMM.
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
    let s = geom.spec();
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    let w_t = MatRef::row_major(w, s.c_out, k).t();
    for (d_y_chunk, d_x_chunk) in d_y
        .chunks(chunk * geom.output_image_len())
        .zip(d_x.chunks_mut(chunk * geom.input_image_len()))
    {
        let b = d_x_chunk.len() / geom.input_image_len();
        with_scratch(s.c_out * b * p, |big_d_y| {
            gather_outputs(d_y_chunk, s.c_out, p, big_d_y);
            with_scratch(k * b * p, |d_cols| {
                gemm(
                    1.0,
                    w_t,
                    MatRef::row_major(big_d_y, s.c_out, b * p),
                    0.0,
                    d_cols,
                );
                col2im_chunk(geom, d_cols, b, d_x_chunk);
            });
        });
    }
}

/// `d_w = Σ_chunks d_Y · colsᵀ`: one GEMM per chunk with the chunk's B·P positions as its
/// inner dimension, accumulated in chunk order.
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::batched_gemm::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    backward_weight_in_chunks(geom, chunk_images(geom), x, d_y, d_w);
}

fn backward_weight_in_chunks(
    geom: &Conv2dGeometry,
    chunk: usize,
    x: &[f32],
    d_y: &[f32],
    d_w: &mut [f32],
) {
    let s = geom.spec();
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    for (c, (x_chunk, d_y_chunk)) in x
        .chunks(chunk * geom.input_image_len())
        .zip(d_y.chunks(chunk * geom.output_image_len()))
        .enumerate()
    {
        let b = x_chunk.len() / geom.input_image_len();
        with_scratch(k * b * p, |cols| {
            im2col_chunk(geom, x_chunk, b, cols);
            with_scratch(s.c_out * b * p, |big_d_y| {
                gather_outputs(d_y_chunk, s.c_out, p, big_d_y);
                let beta = if c == 0 { 0.0 } else { 1.0 };
                gemm(
                    1.0,
                    MatRef::row_major(big_d_y, s.c_out, b * p),
                    MatRef::row_major(cols, k, b * p).t(),
                    beta,
                    d_w,
                );
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{naive, Conv2dSpec};
    use crate::testing::{assert_close, uniform};

    #[test]
    fn several_chunks_give_what_one_pass_gives() {
        // Five images in chunks of two (2 + 2 + 1): the chunk boundaries, a short last chunk
        // and the weight gradient accumulated over chunks are all exercised.
        let spec = Conv2dSpec {
            n: 5,
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
        backward_weight_in_chunks(&geom, 2, &x, &d_y, &mut d_w);
        let (mut y0, mut d_x0, mut d_w0) =
            (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        naive::forward(&geom, &x, &w, Some(&b), &mut y0);
        naive::backward_input(&geom, &d_y, &w, &mut d_x0);
        naive::backward_weight(&geom, &x, &d_y, &mut d_w0);
        assert_close(&y, &y0, 1e-5, "forward");
        assert_close(&d_x, &d_x0, 1e-5, "backward_input");
        assert_close(&d_w, &d_w0, 1e-5, "backward_weight");
    }
}
