//! The reference transposed convolution, written from its own definition (each input pixel
//! scatters a weighted kernel into the output), independently of conv2d, in f64.

use super::ConvTranspose2dGeometry;

/// Calls `f(ci, co, i, j, x_index, y_index)` for every (input pixel, kernel tap) pair whose
/// output position lies inside the cropped output.
fn for_each_pair(
    geom: &ConvTranspose2dGeometry,
    mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
) {
    let s = geom.spec();
    let [_, _, h_out, w_out] = geom.output_shape();
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

fn weight_index(geom: &ConvTranspose2dGeometry, ci: usize, co: usize, i: usize, j: usize) -> usize {
    let s = geom.spec();
    ((ci * s.c_out + co) * s.kh + i) * s.kw + j
}

/// `y[n, co, ih·s − p + i, iw·s − p + j] += x[n, ci, ih, iw] · w[ci, co, i, j]`, then `+ b[co]`.
pub fn forward(
    geom: &ConvTranspose2dGeometry,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) {
    crate::conv_like::check_lens(
        geom,
        "conv_transpose2d::naive::forward",
        x.len(),
        w.len(),
        y.len(),
    );
    super::check_bias(geom.spec().c_out, b);
    let mut acc = vec![0.0f64; y.len()];
    for_each_pair(geom, |ci, co, i, j, xi, yi| {
        acc[yi] += x[xi] as f64 * w[weight_index(geom, ci, co, i, j)] as f64;
    });
    let plane = geom.output_shape()[2] * geom.output_shape()[3];
    for (k, (dst, src)) in y.iter_mut().zip(acc).enumerate() {
        let co = (k / plane) % geom.spec().c_out;
        *dst = (src + b.map_or(0.0, |b| b[co] as f64)) as f32;
    }
}

/// d_x[n, ci, ih, iw] = Σ w[ci, co, i, j] · d_y[n, co, ih·s − p + i, iw·s − p + j]
pub fn backward_input(geom: &ConvTranspose2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    crate::conv_like::check_lens(
        geom,
        "conv_transpose2d::naive::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    let mut acc = vec![0.0f64; d_x.len()];
    for_each_pair(geom, |ci, co, i, j, xi, yi| {
        acc[xi] += d_y[yi] as f64 * w[weight_index(geom, ci, co, i, j)] as f64;
    });
    for (dst, src) in d_x.iter_mut().zip(acc) {
        *dst = src as f32;
    }
}

/// d_w[ci, co, i, j] = Σ_{n, ih, iw} x[n, ci, ih, iw] · d_y[n, co, ih·s − p + i, iw·s − p + j]
pub fn backward_weight(geom: &ConvTranspose2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv_like::check_lens(
        geom,
        "conv_transpose2d::naive::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    let mut acc = vec![0.0f64; d_w.len()];
    for_each_pair(geom, |ci, co, i, j, xi, yi| {
        acc[weight_index(geom, ci, co, i, j)] += x[xi] as f64 * d_y[yi] as f64;
    });
    for (dst, src) in d_w.iter_mut().zip(acc) {
        *dst = src as f32;
    }
}
