//! The reference convolution: the defining equation as nested loops, accumulating in f64.
//!
//! Nothing here is optimised. One loop nest, `for_each_tap`, visits every (output pixel,
//! kernel tap) pair whose input pixel lies inside the image; the three functions differ only in
//! which of the three tensors they accumulate into:
//!
//! * forward:         y[n, co, oh, ow] += x[n, ci, ih, iw] · w[co, ci, i, j]
//! * backward_input:  d_x[n, ci, ih, iw] += w[co, ci, i, j] · d_y[n, co, oh, ow]
//! * backward_weight: d_w[co, ci, i, j] += x[n, ci, ih, iw] · d_y[n, co, oh, ow]
//!
//! with ih = oh·s − p + i and iw = ow·s − p + j. Tests hold the fast variants to these numbers.

use super::Conv2dGeometry;

/// Flat indices of one (output pixel, kernel tap) pair: into x, into w, into y.
struct Tap {
    x: usize,
    w: usize,
    y: usize,
}

/// Calls `f` for every pair of an output pixel and a kernel tap that reads inside the image
/// (taps over the zero padding contribute nothing and are skipped).
fn for_each_tap(geom: &Conv2dGeometry, mut f: impl FnMut(Tap)) {
    let s = geom.spec();
    let (h_out, w_out) = (geom.h_out(), geom.w_out());
    let inside =
        |o: usize, k: usize, len: usize| (o * s.stride + k).checked_sub(s.pad).filter(|&i| i < len);
    for n in 0..s.n {
        for co in 0..s.c_out {
            for oh in 0..h_out {
                for ow in 0..w_out {
                    for ci in 0..s.c_in {
                        for i in 0..s.kh {
                            for j in 0..s.kw {
                                let (Some(ih), Some(iw)) =
                                    (inside(oh, i, s.h_in), inside(ow, j, s.w_in))
                                else {
                                    continue;
                                };
                                f(Tap {
                                    x: ((n * s.c_in + ci) * s.h_in + ih) * s.w_in + iw,
                                    w: ((co * s.c_in + ci) * s.kh + i) * s.kw + j,
                                    y: ((n * s.c_out + co) * h_out + oh) * w_out + ow,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies f64 accumulators into an f32 output.
fn store(out: &mut [f32], acc: Vec<f64>) {
    for (dst, src) in out.iter_mut().zip(acc) {
        *dst = src as f32;
    }
}

/// `y[n, co, oh, ow] = b[co] + Σ_{ci, i, j} x[n, ci, oh·s − p + i, ow·s − p + j] · w[co, ci, i, j]`
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    crate::conv2d::check_lens(geom, "conv2d::naive::forward", x.len(), w.len(), y.len());
    let plane = geom.h_out() * geom.w_out();
    let c_out = geom.spec().c_out;
    let mut acc: Vec<f64> = (0..y.len())
        .map(|k| b.map_or(0.0, |b| b[(k / plane) % c_out] as f64))
        .collect();
    for_each_tap(geom, |t| acc[t.y] += x[t.x] as f64 * w[t.w] as f64);
    store(y, acc);
}

/// d_x[n, ci, ih, iw] = Σ over every (co, oh, ow, i, j) whose window reads x[n, ci, ih, iw]
/// of w[co, ci, i, j] · d_y[n, co, oh, ow].
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::naive::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    let mut acc = vec![0.0f64; d_x.len()];
    for_each_tap(geom, |t| acc[t.x] += w[t.w] as f64 * d_y[t.y] as f64);
    store(d_x, acc);
}

/// d_w[co, ci, i, j] = Σ_{n, oh, ow} x[n, ci, oh·s − p + i, ow·s − p + j] · d_y[n, co, oh, ow]
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::naive::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    let mut acc = vec![0.0f64; d_w.len()];
    for_each_tap(geom, |t| acc[t.w] += x[t.x] as f64 * d_y[t.y] as f64);
    store(d_w, acc);
}
