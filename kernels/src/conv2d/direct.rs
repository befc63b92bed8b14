//! Direct convolution: the naive loops, reordered so the innermost loop walks one output row.
//!
//! For a fixed kernel tap (i, j), output row `oh` reads input row `ih = oh·s − p + i`, and
//! output column `ow` reads input column `ow·s − p + j`. So the whole row update is one
//! "y_row += w · (every s-th element of x_row)" — a loop with no index arithmetic and no
//! bounds test, which the compiler vectorises when s = 1. `for_each_tap_row` enumerates
//! these row pairs once; forward, backward-input and backward-weight differ only in what they
//! do with each pair (gather, scatter, dot product).
//!
//! Work is split over (image, channel) planes with rayon; no scratch memory is needed.

use super::Conv2dGeometry;
use rayon::prelude::*;

/// For every kernel tap (i, j) and every output row `oh` whose input row exists, calls
/// `f(i, j, oh, ih, ow_range, iw_first)`: `ow_range` are the output columns whose input
/// column exists, and `iw_first` is the input column read by `ow_range.start`.
fn for_each_tap_row(
    geom: &Conv2dGeometry,
    mut f: impl FnMut(usize, usize, usize, usize, std::ops::Range<usize>, usize),
) {
    let s = geom.spec();
    for i in 0..s.kh {
        let rows = geom.valid_outputs(i, s.h_in, geom.h_out());
        for j in 0..s.kw {
            let cols = geom.valid_outputs(j, s.w_in, geom.w_out());
            if cols.is_empty() {
                continue;
            }
            let iw_first = cols.start * s.stride + j - s.pad;
            for oh in rows.clone() {
                let ih = oh * s.stride + i - s.pad;
                f(i, j, oh, ih, cols.clone(), iw_first);
            }
        }
    }
}

/// The input elements an output row segment reads: every `stride`-th element from `first`.
fn strided(row: &[f32], first: usize, stride: usize, count: usize) -> impl Iterator<Item = &f32> {
    row[first..].iter().step_by(stride).take(count)
}

/// y = conv2d(x, w) + b, one (image, output channel) plane per task.
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    crate::conv2d::check_lens(geom, "conv2d::direct::forward", x.len(), w.len(), y.len());
    let s = geom.spec();
    let (plane, in_plane, taps) = (geom.h_out() * geom.w_out(), s.h_in * s.w_in, s.kh * s.kw);
    y.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(idx, y_plane)| {
            let (n, co) = (idx / s.c_out, idx % s.c_out);
            y_plane.fill(b.map_or(0.0, |b| b[co]));
            for ci in 0..s.c_in {
                let x_plane = &x[(n * s.c_in + ci) * in_plane..][..in_plane];
                let w_taps = &w[(co * s.c_in + ci) * taps..][..taps];
                for_each_tap_row(geom, |i, j, oh, ih, ows, iw_first| {
                    let wv = w_taps[i * s.kw + j];
                    let x_row = &x_plane[ih * s.w_in..][..s.w_in];
                    let y_row = &mut y_plane[oh * geom.w_out()..][ows.clone()];
                    if s.stride == 1 {
                        for (yv, xv) in y_row.iter_mut().zip(&x_row[iw_first..]) {
                            *yv += wv * xv;
                        }
                    } else {
                        for (yv, xv) in
                            y_row
                                .iter_mut()
                                .zip(strided(x_row, iw_first, s.stride, ows.len()))
                        {
                            *yv += wv * xv;
                        }
                    }
                });
            }
        });
}

/// d_x = Σ_co w ⋆ᵀ d_y, one (image, input channel) plane per task: each tap scatters an
/// output row, scaled by its weight, back onto the input row it read.
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::direct::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    let s = geom.spec();
    let (plane, in_plane, taps) = (geom.h_out() * geom.w_out(), s.h_in * s.w_in, s.kh * s.kw);
    d_x.par_chunks_mut(in_plane)
        .enumerate()
        .for_each(|(idx, d_x_plane)| {
            let (n, ci) = (idx / s.c_in, idx % s.c_in);
            d_x_plane.fill(0.0);
            for co in 0..s.c_out {
                let d_y_plane = &d_y[(n * s.c_out + co) * plane..][..plane];
                let w_taps = &w[(co * s.c_in + ci) * taps..][..taps];
                for_each_tap_row(geom, |i, j, oh, ih, ows, iw_first| {
                    let wv = w_taps[i * s.kw + j];
                    let d_y_row = &d_y_plane[oh * geom.w_out()..][ows.clone()];
                    let d_x_row = &mut d_x_plane[ih * s.w_in..][..s.w_in];
                    if s.stride == 1 {
                        for (dx, dy) in d_x_row[iw_first..].iter_mut().zip(d_y_row) {
                            *dx += wv * dy;
                        }
                    } else {
                        for (dx, dy) in d_x_row[iw_first..]
                            .iter_mut()
                            .step_by(s.stride)
                            .zip(d_y_row)
                        {
                            *dx += wv * dy;
                        }
                    }
                });
            }
        });
}

/// `d_w[co] = Σ_n x[n] ⋆ d_y[n, co]`, one output channel's filters per task, each tap a dot
/// product of an input row (strided) with an output-gradient row.
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::direct::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    let s = geom.spec();
    let (plane, in_plane, taps) = (geom.h_out() * geom.w_out(), s.h_in * s.w_in, s.kh * s.kw);
    d_w.par_chunks_mut(s.c_in * taps)
        .enumerate()
        .for_each(|(co, d_w_co)| {
            d_w_co.fill(0.0);
            for n in 0..s.n {
                let d_y_plane = &d_y[(n * s.c_out + co) * plane..][..plane];
                for ci in 0..s.c_in {
                    let x_plane = &x[(n * s.c_in + ci) * in_plane..][..in_plane];
                    let d_w_taps = &mut d_w_co[ci * taps..][..taps];
                    for_each_tap_row(geom, |i, j, oh, ih, ows, iw_first| {
                        let d_y_row = &d_y_plane[oh * geom.w_out()..][ows.clone()];
                        let x_row = &x_plane[ih * s.w_in..][..s.w_in];
                        let dot: f32 = if s.stride == 1 {
                            d_y_row
                                .iter()
                                .zip(&x_row[iw_first..])
                                .map(|(g, xv)| g * xv)
                                .sum()
                        } else {
                            d_y_row
                                .iter()
                                .zip(strided(x_row, iw_first, s.stride, ows.len()))
                                .map(|(g, xv)| g * xv)
                                .sum()
                        };
                        d_w_taps[i * s.kw + j] += dot;
                    });
                }
            }
        });
}
