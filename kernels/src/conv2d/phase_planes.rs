//! Convolution without im2col, for layers with few input channels (an image's first layer,
//! and through the adjoint the decoder's last): every kernel tap becomes one long, contiguous
//! multiply-add over the whole image.
//!
//! With stride s, output pixel (oh, ow) reads padded input pixel (oh·s + i, ow·s + j) under
//! tap (i, j). Split the padded input into s×s **phase planes**, plane (a, b) holding the pixels
//! whose row is ≡ a and column ≡ b (mod s): `P_ab[u][v] = x_pad[u·s + a][v·s + b]`. Then tap
//! (i, j) reads plane (i mod s, j mod s) at (oh + i/s, ow + j/s): no stride any more, only a
//! shift. Store each plane row-major with row length PW, compute the output on the same row
//! length (OH × PW, whose last PW − OW columns are thrown away), and the whole of tap (i, j)
//! is one multiply-add of a contiguous run of the plane, starting at shift (i/s)·PW + j/s:
//!
//! * forward:          `wide[co] = Σ_{ci,i,j} w[co,ci,i,j] · P_ci,phase(i,j)[shift(i,j) ..]`,
//!   then the valid columns (plus the bias) are copied out;
//! * backward_input:   the adjoint: `d_P_ci,phase[shift ..] += Σ_co w[co,ci,i,j] · d_y_wide[co]`,
//!   then the planes are merged back into the image;
//! * backward_weight:  `d_w[co,ci,i,j] = Σ_n ⟨d_y_wide[co], P_ci,phase[shift ..]⟩`.
//!
//! Copying 784 pixels into planes costs far less than im2col's 9 copies of each, and the
//! multiply-adds run on whole vectors. With many input channels the GEMM of
//! [`super::im2col_gemm`] wins (it reuses each loaded value for many output channels), so
//! [`super::Conv2dAlgo::Auto`] uses this only when C_in = 1.

use super::Conv2dGeometry;
use crate::scratch::{with_index_scratch, with_scratch};
use rayon::prelude::*;
use std::ops::Range;

/// Elements of a wide output computed together: the sums stay in registers across taps.
const CHUNK: usize = 32;

/// Where everything lives for one geometry.
struct Layout {
    g: Conv2dGeometry,
    /// Phase-plane rows and columns: OH + (KH−1)/s and OW + (KW−1)/s.
    ph: usize,
    pw: usize,
    /// Length of a wide output: OH·PW rounded up to whole chunks.
    span: usize,
    /// Floats per stored plane: the longest shift plus `span`, so every read stays inside.
    plane_len: usize,
}

impl Layout {
    fn new(g: &Conv2dGeometry) -> Self {
        let s = g.spec();
        let (ph, pw) = (
            g.h_out() + (s.kh - 1) / s.stride,
            g.w_out() + (s.kw - 1) / s.stride,
        );
        let span = (g.h_out() * pw).div_ceil(CHUNK) * CHUNK;
        let max_shift = ((s.kh - 1) / s.stride) * pw + (s.kw - 1) / s.stride;
        Layout {
            g: *g,
            ph,
            pw,
            span,
            plane_len: max_shift + span,
        }
    }

    /// Floats in all planes of one image: C_in · s² planes.
    fn planes_len(&self) -> usize {
        let s = self.g.spec();
        s.c_in * s.stride * s.stride * self.plane_len
    }

    /// Tap (ci, i, j): where its plane starts in the planes buffer, plus its shift.
    fn tap_start(&self, ci: usize, i: usize, j: usize) -> usize {
        let s = self.g.spec().stride;
        let plane = (ci * s + i % s) * s + j % s;
        plane * self.plane_len + (i / s) * self.pw + j / s
    }

    /// The start of every tap, in the weight's (C_in, KH, KW) order.
    fn taps(&self) -> impl Iterator<Item = usize> + '_ {
        let s = self.g.spec();
        (0..s.c_in).flat_map(move |ci| {
            (0..s.kh).flat_map(move |i| (0..s.kw).map(move |j| self.tap_start(ci, i, j)))
        })
    }

    /// For plane phase (a, b): the plane rows u and columns v that hold input pixels (the rest
    /// is padding, or past the last window, and reads 0), and the input row and column of
    /// (u, v) = (0, 0) plus the padding (subtract `pad` after adding u·s or v·s).
    #[inline(always)]
    fn inside(&self, a: usize, b: usize) -> (Range<usize>, Range<usize>) {
        let s = self.g.spec();
        (
            super::valid_outputs(a, s.pad, s.stride, s.h_in, self.ph),
            super::valid_outputs(b, s.pad, s.stride, s.w_in, self.pw),
        )
    }

    /// Calls `copy(plane row, input row, columns v, first input column, stride)` for every row
    /// of every plane that holds input pixels, in plane order: what [`Layout::split`] and
    /// [`Layout::merge`] share.
    #[inline(always)]
    fn for_each_row(&self, mut copy: impl FnMut(usize, usize, &Range<usize>, usize)) {
        let s = self.g.spec();
        let plane_area = s.h_in * s.w_in;
        for ci in 0..s.c_in {
            for a in 0..s.stride {
                for b in 0..s.stride {
                    let plane = (ci * s.stride + a) * s.stride + b;
                    let (rows, cols) = self.inside(a, b);
                    if cols.is_empty() {
                        continue;
                    }
                    let iw0 = cols.start * s.stride + b - s.pad;
                    for u in rows {
                        let ih = u * s.stride + a - s.pad;
                        copy(
                            plane * self.plane_len + u * self.pw,
                            ci * plane_area + ih * s.w_in + iw0,
                            &cols,
                            s.stride,
                        );
                    }
                }
            }
        }
    }

    /// planes ← the phase planes of one image x (C_in, H, W); everything else 0.
    #[inline(always)]
    fn split(&self, x: &[f32], planes: &mut [f32]) {
        planes.fill(0.0);
        self.for_each_row(|plane_row, x_start, cols, stride| {
            let dst = &mut planes[plane_row..][cols.clone()];
            let src = &x[x_start..][..(dst.len() - 1) * stride + 1];
            for (v, d) in dst.iter_mut().enumerate() {
                *d = src[v * stride];
            }
        });
    }

    /// d_x (C_in, H, W) ← the planes merged back: the adjoint of [`Layout::split`] (each pixel
    /// lives in at most one plane, so this is a copy; pixels no window reaches get 0).
    #[inline(always)]
    fn merge(&self, planes: &[f32], d_x: &mut [f32]) {
        d_x.fill(0.0);
        self.for_each_row(|plane_row, x_start, cols, stride| {
            let src = &planes[plane_row..][cols.clone()];
            let dst = &mut d_x[x_start..][..(src.len() - 1) * stride + 1];
            for (v, &value) in src.iter().enumerate() {
                dst[v * stride] = value;
            }
        });
    }

    /// wide (C_out × span) ← d_y (C_out, OH, OW) on rows of PW, the extra columns 0.
    #[inline(always)]
    fn widen(&self, d_y: &[f32], wide: &mut [f32]) {
        let ow = self.g.w_out();
        for (w_plane, y_plane) in wide
            .chunks_exact_mut(self.span)
            .zip(d_y.chunks_exact(self.g.h_out() * ow))
        {
            w_plane.fill(0.0);
            for (w_row, y_row) in w_plane.chunks_mut(self.pw).zip(y_plane.chunks_exact(ow)) {
                w_row[..ow].copy_from_slice(y_row);
            }
        }
    }
}

/// Runs `f` with the start of every tap in the planes buffer, in the weight's (C_in, KH, KW)
/// order (so tap t multiplies w[co·K + t]).
fn with_tap_starts<R>(l: &Layout, f: impl FnOnce(&[u32]) -> R) -> R {
    with_index_scratch(l.g.patch_len(), |starts| {
        for (slot, start) in starts.iter_mut().zip(l.taps()) {
            *slot = start as u32;
        }
        f(starts)
    })
}

/// y = conv2d(x, w) + b, image by image.
pub fn forward(geom: &Conv2dGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::phase_planes::forward",
        x.len(),
        w.len(),
        y.len(),
    );
    let l = Layout::new(geom);
    let (oh, ow, patch) = (geom.h_out(), geom.w_out(), geom.patch_len());
    let per_channel = geom.spec().kh * geom.spec().kw;
    with_tap_starts(&l, |starts| {
        y.par_chunks_mut(geom.output_image_len())
            .zip(x.par_chunks(geom.input_image_len()))
            .for_each(|(y_img, x_img)| {
                with_scratch(l.planes_len() + l.span, |buf| {
                    let (planes, wide) = buf.split_at_mut(l.planes_len());
                    widest!({
                        l.split(x_img, planes);
                        for (co, y_plane) in y_img.chunks_exact_mut(oh * ow).enumerate() {
                            let w_co = &w[co * patch..][..patch];
                            tap_sums(planes, starts, per_channel, w_co, wide);
                            let bias = b.map_or(0.0, |b| b[co]);
                            for (y_row, w_row) in
                                y_plane.chunks_exact_mut(ow).zip(wide.chunks(l.pw))
                            {
                                for (yv, &v) in y_row.iter_mut().zip(w_row) {
                                    *yv = v + bias;
                                }
                            }
                        }
                    });
                });
            });
    });
}

/// wide[q] = Σ_t w[t] · planes[start_t + q], chunk by chunk. The taps of one input channel
/// (`per_channel` of them) are summed first and then added to the total, which keeps the
/// rounding error of a long sum over many channels near that of a GEMM's.
#[inline(always)]
fn tap_sums(planes: &[f32], starts: &[u32], per_channel: usize, w: &[f32], wide: &mut [f32]) {
    for (q0, out) in wide.chunks_exact_mut(CHUNK).enumerate() {
        let q0 = q0 * CHUNK;
        let mut total = [0.0f32; CHUNK];
        for (w_ci, starts_ci) in w
            .chunks_exact(per_channel)
            .zip(starts.chunks_exact(per_channel))
        {
            let mut acc = [0.0f32; CHUNK];
            for (&wt, &start) in w_ci.iter().zip(starts_ci) {
                let src: &[f32; CHUNK] = planes[start as usize + q0..][..CHUNK]
                    .try_into()
                    .expect("a whole chunk");
                for (s, &v) in acc.iter_mut().zip(src) {
                    *s = wt.mul_add(v, *s);
                }
            }
            for (t, a) in total.iter_mut().zip(&acc) {
                *t += a;
            }
        }
        out.copy_from_slice(&total);
    }
}

/// d_x = the adjoint of the forward's tap sums, image by image.
pub fn backward_input(geom: &Conv2dGeometry, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::phase_planes::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    let l = Layout::new(geom);
    let wide_len = geom.spec().c_out * l.span;
    with_tap_starts(&l, |starts| {
        d_x.par_chunks_mut(geom.input_image_len())
            .zip(d_y.par_chunks(geom.output_image_len()))
            .for_each(|(d_x_img, d_y_img)| {
                with_scratch(l.planes_len() + wide_len, |buf| {
                    let (planes, wide) = buf.split_at_mut(l.planes_len());
                    widest!({
                        l.widen(d_y_img, wide);
                        planes.fill(0.0);
                        tap_adjoint_sums(wide, l.span, starts, w, planes);
                        l.merge(planes, d_x_img);
                    });
                });
            });
    });
}

/// planes[start_t + q] += Σ_co w[co, t] · wide[co][q] for every tap t, chunk by chunk.
#[inline(always)]
fn tap_adjoint_sums(wide: &[f32], span: usize, starts: &[u32], w: &[f32], planes: &mut [f32]) {
    let patch = starts.len();
    for (t, &start) in starts.iter().enumerate() {
        for q0 in (0..span).step_by(CHUNK) {
            let mut acc = [0.0f32; CHUNK];
            for (co, wide_co) in wide.chunks_exact(span).enumerate() {
                let src: &[f32; CHUNK] = wide_co[q0..][..CHUNK].try_into().expect("a whole chunk");
                let wt = w[co * patch + t];
                for (s, &v) in acc.iter_mut().zip(src) {
                    *s = wt.mul_add(v, *s);
                }
            }
            for (d, &s) in planes[start as usize + q0..][..CHUNK].iter_mut().zip(&acc) {
                *d += s;
            }
        }
    }
}

/// `d_w = Σ_n ⟨d_y_wide[n, co], tap plane of x[n]⟩` for every weight, summed over the batch in
/// fixed groups (`sum_weight_grad_in_groups` in `conv2d`: 8 groups, added in order).
pub fn backward_weight(geom: &Conv2dGeometry, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::phase_planes::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    let l = Layout::new(geom);
    let (patch, wide_len) = (geom.patch_len(), geom.spec().c_out * l.span);
    with_tap_starts(&l, |starts| {
        super::sum_weight_grad_in_groups(
            geom,
            1,
            x,
            d_y,
            None,
            d_w,
            |x_img, d_y_img, _, partial| {
                with_scratch(l.planes_len() + wide_len, |buf| {
                    let (planes, wide) = buf.split_at_mut(l.planes_len());
                    widest!({
                        l.split(x_img, planes);
                        l.widen(d_y_img, wide);
                        let per_co = partial
                            .chunks_exact_mut(patch)
                            .zip(wide.chunks_exact(l.span));
                        for (d_w_co, wide_co) in per_co {
                            for (d, &start) in d_w_co.iter_mut().zip(starts) {
                                let tap = &planes[start as usize..][..l.span];
                                *d += crate::thin_gemm::dot(wide_co, tap);
                            }
                        }
                    });
                });
            },
        );
    });
}
