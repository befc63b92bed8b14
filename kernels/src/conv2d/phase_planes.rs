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
            if let (2, Some((last, head))) = (stride, dst.split_last_mut()) {
                // Stride 2, the common case, written so the compiler sees pairs: it then
                // moves whole vectors and shuffles them, instead of a load and a store per
                // value (which were a third of the forward's time) (figures: docs/performance.md, "Measurements behind the code").
                for (d, pair) in head.iter_mut().zip(src.chunks_exact(2)) {
                    *d = pair[0];
                }
                *last = src[src.len() - 1];
            } else {
                for (v, d) in dst.iter_mut().enumerate() {
                    *d = src[v * stride];
                }
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
                with_scratch(l.planes_len() + CO_BLOCK * l.span, |buf| {
                    let (planes, wide) = buf.split_at_mut(l.planes_len());
                    widest!({
                        l.split(x_img, planes);
                        // Output channels CO_BLOCK at a time (the last block may be smaller).
                        let mut co0 = 0;
                        for y_block in y_img.chunks_mut(CO_BLOCK * oh * ow) {
                            let count = y_block.len() / (oh * ow);
                            let w_block = &w[co0 * patch..][..count * patch];
                            let wide = &mut wide[..count * l.span];
                            let sums = TapSums {
                                planes,
                                starts,
                                per_channel,
                            };
                            match count {
                                3 => sums.channels::<3>(w_block, wide),
                                2 => sums.channels::<2>(w_block, wide),
                                _ => sums.channels::<1>(w_block, wide),
                            }
                            let planes_out = y_block.chunks_exact_mut(oh * ow);
                            for (k, (y_plane, wide_co)) in
                                planes_out.zip(wide.chunks_exact(l.span)).enumerate()
                            {
                                let bias = b.map_or(0.0, |b| b[co0 + k]);
                                for (y_row, w_row) in
                                    y_plane.chunks_exact_mut(ow).zip(wide_co.chunks(l.pw))
                                {
                                    for (yv, &v) in y_row.iter_mut().zip(w_row) {
                                        *yv = v + bias;
                                    }
                                }
                            }
                            co0 += count;
                        }
                    });
                });
            });
    });
}

/// Output channels whose tap sums are computed together.
///
/// One channel's sums over a chunk are a chain of dependent multiply-adds per vector (each
/// waits for the one before, 4 cycles on current cores), so with one channel the FMA units
/// sit idle most of the time; three channels make three times as many independent chains,
/// and each chunk of a plane is loaded once for all three. Three because 3 × 32 sums fill 6 of
/// AVX-512's 32 registers and 12 of AVX2's 16. The inner loops of [`TapSums::channels`] are
/// plain index loops with the weights taken out first: written with iterators over the
/// channels' sums, the compiler did not keep the sums in registers (figures: docs/performance.md, "Measurements behind the code").
const CO_BLOCK: usize = 3;

/// The phase planes of one image and where each tap starts in them.
struct TapSums<'a> {
    planes: &'a [f32],
    starts: &'a [u32],
    /// Taps per input channel (KH·KW).
    per_channel: usize,
}

impl TapSums<'_> {
    /// wide[c][q] = Σ_t w[c][t] · planes[start_t + q] for the `CB` output channels whose
    /// weights are the rows of `w` (CB × patch), chunk by chunk. The taps of one input channel
    /// are summed first and then added to the total, which keeps the rounding error of a long
    /// sum over many channels near that of a GEMM's.
    #[inline(always)]
    fn channels<const CB: usize>(&self, w: &[f32], wide: &mut [f32]) {
        let (patch, per_channel) = (self.starts.len(), self.per_channel);
        let span = wide.len() / CB;
        for q0 in (0..span).step_by(CHUNK) {
            let mut total = [[0.0f32; CHUNK]; CB];
            for (ci, starts_ci) in self.starts.chunks_exact(per_channel).enumerate() {
                let mut acc = [[0.0f32; CHUNK]; CB];
                for (t, &start) in starts_ci.iter().enumerate() {
                    let src: &[f32; CHUNK] = self.planes[start as usize + q0..][..CHUNK]
                        .try_into()
                        .expect("a whole chunk");
                    let tap = ci * per_channel + t;
                    let wts: [f32; CB] = std::array::from_fn(|c| w[c * patch + tap]);
                    for i in 0..CHUNK {
                        let v = src[i];
                        for c in 0..CB {
                            acc[c][i] = wts[c].mul_add(v, acc[c][i]);
                        }
                    }
                }
                for (total_c, acc_c) in total.iter_mut().zip(&acc) {
                    for (t, a) in total_c.iter_mut().zip(acc_c) {
                        *t += a;
                    }
                }
            }
            for (c, total_c) in total.iter().enumerate() {
                wide[c * span + q0..][..CHUNK].copy_from_slice(total_c);
            }
        }
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
/// fixed groups (`sum_weight_grad_in_groups` in `conv2d`: up to 32 groups, added in order).
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
                                *d += crate::gemm::thin::dot(wide_co, tap);
                            }
                        }
                    });
                });
            },
        );
    });
}
