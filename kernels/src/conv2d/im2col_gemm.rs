//! Convolution as im2col followed by one GEMM per image.
//!
//! * forward:          `y[n] (C_out × OH·OW) = w (C_out × K) · im2col(x[n]) (K × OH·OW) + b`
//! * backward_input:   `d_x[n] = col2im( wᵀ (K × C_out) · d_y[n] (C_out × OH·OW) )`
//! * backward_weight:  `d_w (C_out × K) = Σ_n d_y[n] · im2col(x[n])ᵀ`
//!
//! with K = C_in·KH·KW. The weight tensor (C_out, C_in, KH, KW) is already the row-major
//! C_out × K matrix, so it is used in place. Images run in parallel; the column buffer comes
//! from per-thread scratch that survives between steps. The columns are gathered through a
//! table of source offsets made once per call ([`crate::conv2d::im2col`] explains it): the same
//! numbers as `im2col`, without working out the padding again for every image.

use super::Conv2dGeometry;
use crate::conv2d::im2col::{gather_columns, scatter_columns, tap_offsets};
use crate::gemm::{gemm, MatRef};
use crate::scratch::{with_index_scratch, with_scratch};
use rayon::prelude::*;

/// y = w · im2col(x) + b, image by image.
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::im2col_gemm::forward",
        x.len(),
        w.len(),
        y.len(),
    );
    let s = geom.spec();
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    let w_mat = MatRef::row_major(w, s.c_out, k);
    with_index_scratch(k * p, |offsets| {
        tap_offsets(geom, offsets);
        let offsets = &*offsets;
        y.par_chunks_mut(geom.output_image_len())
            .zip(x.par_chunks(geom.input_image_len()))
            .for_each(|(y_img, x_img)| {
                with_scratch(k * p, |cols| {
                    gather_columns(offsets, x_img, cols);
                    let beta = match b {
                        Some(b) => {
                            for (plane, &bias) in y_img.chunks_exact_mut(p).zip(b) {
                                plane.fill(bias);
                            }
                            1.0
                        }
                        None => 0.0,
                    };
                    gemm(1.0, w_mat, MatRef::row_major(cols, k, p), beta, y_img);
                });
            });
    });
}

/// d_x = col2im(wᵀ · d_y), image by image.
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::im2col_gemm::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    let s = geom.spec();
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    let w_t = MatRef::row_major(w, s.c_out, k).t();
    with_index_scratch(k * p, |offsets| {
        tap_offsets(geom, offsets);
        let offsets = &*offsets;
        d_x.par_chunks_mut(geom.input_image_len())
            .zip(d_y.par_chunks(geom.output_image_len()))
            .for_each(|(d_x_img, d_y_img)| {
                with_scratch(k * p, |d_cols| {
                    gemm(
                        1.0,
                        w_t,
                        MatRef::row_major(d_y_img, s.c_out, p),
                        0.0,
                        d_cols,
                    );
                    scatter_columns(offsets, d_cols, d_x_img);
                });
            });
    });
}

/// `d_w = Σ_n d_y[n] · im2col(x[n])ᵀ`, summed over the batch in fixed groups
/// (`sum_weight_grad_in_groups` in `conv2d`: up to 32 groups, added in order); the column buffers
/// live in reused scratch memory.
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::im2col_gemm::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    let s = geom.spec();
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    with_index_scratch(k * p, |offsets| {
        tap_offsets(geom, offsets);
        let offsets = &*offsets;
        super::sum_weight_grad_in_groups(
            geom,
            1,
            x,
            d_y,
            None,
            d_w,
            |x_img, d_y_img, _, partial| {
                with_scratch(k * p, |cols| {
                    gather_columns(offsets, x_img, cols);
                    let cols_t = MatRef::row_major(cols, k, p).t();
                    let d_y_mat = MatRef::row_major(d_y_img, s.c_out, p);
                    gemm(1.0, d_y_mat, cols_t, 1.0, partial);
                });
            },
        );
    });
}
