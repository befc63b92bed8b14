//! The reference transposed convolution, written from its own definition (each input pixel
//! scatters a weighted kernel into the output), independently of conv2d, in f64. It takes
//! the user's [`ConvTranspose2dSpec`] and works out the output size from the formula itself.

use super::ConvTranspose2dSpec;

/// OH and OW: (H − 1)·stride − 2·pad + KH + output_padding, and likewise.
fn output_size(s: &ConvTranspose2dSpec) -> (usize, usize) {
    let grown = |len: usize, k: usize| (len - 1) * s.stride + k + s.output_padding - 2 * s.pad;
    (grown(s.h_in, s.kh), grown(s.w_in, s.kw))
}

/// Checks the three slices against the spec: x or d_x (N, C_in, H, W), w or d_w
/// (C_in, C_out, KH, KW), y or d_y (N, C_out, OH, OW).
#[track_caller]
fn check_lens(s: &ConvTranspose2dSpec, kernel: &str, x_len: usize, w_len: usize, y_len: usize) {
    let (h_out, w_out) = output_size(s);
    crate::check_lens(
        kernel,
        &[
            ("the input side", x_len, s.n * s.c_in * s.h_in * s.w_in),
            ("the weight side", w_len, s.c_in * s.c_out * s.kh * s.kw),
            ("the output side", y_len, s.n * s.c_out * h_out * w_out),
        ],
    );
}

/// Calls `f(ci, co, i, j, x_index, y_index)` for every (input pixel, kernel tap) pair whose
/// output position lies inside the cropped output.
fn for_each_pair(
    s: &ConvTranspose2dSpec,
    mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
) {
    let (h_out, w_out) = output_size(s);
    for n in 0..s.n {
        for ci in 0..s.c_in {
            for ih in 0..s.h_in {
                for iw in 0..s.w_in {
                    for co in 0..s.c_out {
                        for i in 0..s.kh {
                            for j in 0..s.kw {
                                let oh = (ih * s.stride + i)
                                    .checked_sub(s.pad)
                                    .filter(|&o| o < h_out);
                                let ow = (iw * s.stride + j)
                                    .checked_sub(s.pad)
                                    .filter(|&o| o < w_out);
                                let (Some(oh), Some(ow)) = (oh, ow) else {
                                    continue;
                                };
                                let x_index = ((n * s.c_in + ci) * s.h_in + ih) * s.w_in + iw;
                                let y_index = ((n * s.c_out + co) * h_out + oh) * w_out + ow;
                                f(ci, co, i, j, x_index, y_index);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn weight_index(s: &ConvTranspose2dSpec, ci: usize, co: usize, i: usize, j: usize) -> usize {
    ((ci * s.c_out + co) * s.kh + i) * s.kw + j
}

/// `y[n, co, ih·s − p + i, iw·s − p + j] += x[n, ci, ih, iw] · w[ci, co, i, j]`, then `+ b[co]`.
pub fn forward(s: &ConvTranspose2dSpec, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    check_lens(
        s,
        "conv_transpose2d::naive::forward",
        x.len(),
        w.len(),
        y.len(),
    );
    crate::check_bias(s.c_out, b);
    let mut acc = vec![0.0f64; y.len()];
    for_each_pair(s, |ci, co, i, j, xi, yi| {
        acc[yi] += x[xi] as f64 * w[weight_index(s, ci, co, i, j)] as f64;
    });
    let (h_out, w_out) = output_size(s);
    for (k, (dst, src)) in y.iter_mut().zip(acc).enumerate() {
        let co = (k / (h_out * w_out)) % s.c_out;
        *dst = (src + b.map_or(0.0, |b| b[co] as f64)) as f32;
    }
}

/// d_x[n, ci, ih, iw] = Σ w[ci, co, i, j] · d_y[n, co, ih·s − p + i, iw·s − p + j]
pub fn backward_input(s: &ConvTranspose2dSpec, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    check_lens(
        s,
        "conv_transpose2d::naive::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    let mut acc = vec![0.0f64; d_x.len()];
    for_each_pair(s, |ci, co, i, j, xi, yi| {
        acc[xi] += d_y[yi] as f64 * w[weight_index(s, ci, co, i, j)] as f64;
    });
    for (dst, src) in d_x.iter_mut().zip(acc) {
        *dst = src as f32;
    }
}

/// d_w[ci, co, i, j] = Σ_{n, ih, iw} x[n, ci, ih, iw] · d_y[n, co, ih·s − p + i, iw·s − p + j]
pub fn backward_weight(s: &ConvTranspose2dSpec, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    check_lens(
        s,
        "conv_transpose2d::naive::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    let mut acc = vec![0.0f64; d_w.len()];
    for_each_pair(s, |ci, co, i, j, xi, yi| {
        acc[weight_index(s, ci, co, i, j)] += x[xi] as f64 * d_y[yi] as f64;
    });
    for (dst, src) in d_w.iter_mut().zip(acc) {
        *dst = src as f32;
    }
}
