//! The reference convolution: the defining equation as nested loops, accumulating in f64.
//!
//! Nothing here is optimised; each function reads like its formula in [`super`]. Tests hold
//! the fast variants to these numbers.

use super::Conv2dGeometry;

/// The input index for output position `o` and kernel tap `k`, or `None` in the padding.
fn input_index(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < len)
}

/// y[n, co, oh, ow] = b[co] + Σ_{ci, i, j} x[n, ci, oh·s − p + i, ow·s − p + j] · w[co, ci, i, j]
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let s = geom.spec();
    let (h_out, w_out) = (geom.h_out(), geom.w_out());
    for n in 0..s.n {
        for co in 0..s.c_out {
            for oh in 0..h_out {
                for ow in 0..w_out {
                    let mut acc = b.map_or(0.0, |b| b[co] as f64);
                    for ci in 0..s.c_in {
                        for i in 0..s.kh {
                            for j in 0..s.kw {
                                let (Some(ih), Some(iw)) = (
                                    input_index(oh, i, s.stride, s.pad, s.h_in),
                                    input_index(ow, j, s.stride, s.pad, s.w_in),
                                ) else {
                                    continue;
                                };
                                let xv = x[((n * s.c_in + ci) * s.h_in + ih) * s.w_in + iw];
                                let wv = w[((co * s.c_in + ci) * s.kh + i) * s.kw + j];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    y[((n * s.c_out + co) * h_out + oh) * w_out + ow] = acc as f32;
                }
            }
        }
    }
}

/// d_x[n, ci, ih, iw] = Σ over every (co, oh, ow, i, j) whose window reads x[n, ci, ih, iw]
/// of w[co, ci, i, j] · d_y[n, co, oh, ow]. Written as a scatter from each output.
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    let s = geom.spec();
    let (h_out, w_out) = (geom.h_out(), geom.w_out());
    let mut acc = vec![0.0f64; d_x.len()];
    for n in 0..s.n {
        for co in 0..s.c_out {
            for oh in 0..h_out {
                for ow in 0..w_out {
                    let g = d_y[((n * s.c_out + co) * h_out + oh) * w_out + ow] as f64;
                    for ci in 0..s.c_in {
                        for i in 0..s.kh {
                            for j in 0..s.kw {
                                let (Some(ih), Some(iw)) = (
                                    input_index(oh, i, s.stride, s.pad, s.h_in),
                                    input_index(ow, j, s.stride, s.pad, s.w_in),
                                ) else {
                                    continue;
                                };
                                let wv = w[((co * s.c_in + ci) * s.kh + i) * s.kw + j] as f64;
                                acc[((n * s.c_in + ci) * s.h_in + ih) * s.w_in + iw] += wv * g;
                            }
                        }
                    }
                }
            }
        }
    }
    for (dst, src) in d_x.iter_mut().zip(acc) {
        *dst = src as f32;
    }
}

/// d_w[co, ci, i, j] = Σ_{n, oh, ow} x[n, ci, oh·s − p + i, ow·s − p + j] · d_y[n, co, oh, ow]
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    let s = geom.spec();
    let (h_out, w_out) = (geom.h_out(), geom.w_out());
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            for i in 0..s.kh {
                for j in 0..s.kw {
                    let mut acc = 0.0f64;
                    for n in 0..s.n {
                        for oh in 0..h_out {
                            for ow in 0..w_out {
                                let (Some(ih), Some(iw)) = (
                                    input_index(oh, i, s.stride, s.pad, s.h_in),
                                    input_index(ow, j, s.stride, s.pad, s.w_in),
                                ) else {
                                    continue;
                                };
                                let xv = x[((n * s.c_in + ci) * s.h_in + ih) * s.w_in + iw];
                                let g = d_y[((n * s.c_out + co) * h_out + oh) * w_out + ow];
                                acc += xv as f64 * g as f64;
                            }
                        }
                    }
                    d_w[((co * s.c_in + ci) * s.kh + i) * s.kw + j] = acc as f32;
                }
            }
        }
    }
}
