//! im2col and col2im: turning a convolution into a matrix product, and back.
//!
//! `im2col` copies every receptive field of one image into a column of a matrix:
//! row r = (ci, i, j) of the kernel, column p = (oh, ow) of the output, so
//!
//! cols[(ci·KH + i)·KW + j, oh·OW + ow] = x[ci, oh·s − p + i, ow·s − p + j]  (0 in the padding).
//!
//! Then the convolution of that image is one GEMM: y (C_out × OH·OW) = w (C_out × C_in·KH·KW)
//! · cols. Each input pixel is copied once per window that covers it (up to KH·KW times),
//! which is the memory price paid for handing the arithmetic to a tuned matrix product.
//!
//! `col2im` is the exact adjoint: it adds each column entry back onto the pixel it came from,
//! so ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for all x and c (a test checks this). Backward of a
//! convolution and forward of a transposed convolution both end with it.

use crate::conv2d::Conv2dGeometry;

/// cols ← im2col(x) for one image.
///
/// # Shapes
/// x (C_in, H, W) → cols (C_in·KH·KW, OH·OW).
pub fn im2col(geom: &Conv2dGeometry, x: &[f32], cols: &mut [f32]) {
    let s = geom.spec();
    let p = geom.h_out() * geom.w_out();
    check_image_and_cols("im2col", geom, x.len(), cols.len());
    let mut rows = cols.chunks_exact_mut(p);
    for x_plane in x.chunks_exact(s.h_in * s.w_in) {
        for i in 0..s.kh {
            for j in 0..s.kw {
                // Invariant: there are exactly C_in·KH·KW rows, one per (ci, i, j).
                let Some(row) = rows.next() else {
                    unreachable!("im2col: cols has too few rows")
                };
                fill_tap_row(geom, x_plane, i, j, row);
            }
        }
    }
}

/// One row of im2col: `row` (OH·OW) ← the pixel of `x_plane` (H × W) under kernel tap (i, j)
/// for every output position, 0 where the tap falls in the padding.
pub(crate) fn fill_tap_row(
    geom: &Conv2dGeometry,
    x_plane: &[f32],
    i: usize,
    j: usize,
    row: &mut [f32],
) {
    TapRows::new(geom, i, j).fill(x_plane, row);
}

/// Where kernel tap (i, j) reads from, worked out once and then used for many planes: the
/// output rows and columns whose tap lands inside the image, and the first input column.
pub(crate) struct TapRows {
    valid_rows: std::ops::Range<usize>,
    valid_cols: std::ops::Range<usize>,
    /// Input row of output row 0, plus the padding (subtract `pad` after adding oh·stride).
    i: usize,
    iw_first: usize,
    stride: usize,
    pad: usize,
    w_in: usize,
    w_out: usize,
}

impl TapRows {
    pub(crate) fn new(geom: &Conv2dGeometry, i: usize, j: usize) -> Self {
        let s = geom.spec();
        let valid_cols = geom.valid_outputs(j, s.w_in, geom.w_out());
        TapRows {
            valid_rows: geom.valid_outputs(i, s.h_in, geom.h_out()),
            iw_first: (valid_cols.start * s.stride + j).saturating_sub(s.pad),
            valid_cols,
            i,
            stride: s.stride,
            pad: s.pad,
            w_in: s.w_in,
            w_out: geom.w_out(),
        }
    }

    /// `row` (OH·OW) ← this tap's pixel of `x_plane` for every output position.
    #[inline]
    pub(crate) fn fill(&self, x_plane: &[f32], row: &mut [f32]) {
        let (vc, w_in, stride) = (&self.valid_cols, self.w_in, self.stride);
        for (oh, segment) in row.chunks_exact_mut(self.w_out).enumerate() {
            if !self.valid_rows.contains(&oh) || vc.is_empty() {
                segment.fill(0.0);
                continue;
            }
            let ih = oh * stride + self.i - self.pad;
            let x_row = &x_plane[ih * w_in..][..w_in];
            segment[..vc.start].fill(0.0);
            segment[vc.end..].fill(0.0);
            let inside = &mut segment[vc.clone()];
            if stride == 1 {
                inside.copy_from_slice(&x_row[self.iw_first..][..inside.len()]);
            } else {
                for (c, xv) in inside
                    .iter_mut()
                    .zip(x_row[self.iw_first..].iter().step_by(stride))
                {
                    *c = *xv;
                }
            }
        }
    }

    /// The adjoint of [`TapRows::fill`]: adds each entry of `row` onto the pixel it was read
    /// from.
    #[inline]
    pub(crate) fn add(&self, row: &[f32], x_plane: &mut [f32]) {
        let (vc, w_in, stride) = (&self.valid_cols, self.w_in, self.stride);
        if vc.is_empty() {
            return;
        }
        for oh in self.valid_rows.clone() {
            let ih = oh * stride + self.i - self.pad;
            let segment = &row[oh * self.w_out..][vc.clone()];
            let x_row = &mut x_plane[ih * w_in..][..w_in];
            if stride == 1 {
                for (xv, c) in x_row[self.iw_first..].iter_mut().zip(segment) {
                    *xv += c;
                }
            } else {
                for (xv, c) in x_row[self.iw_first..]
                    .iter_mut()
                    .step_by(stride)
                    .zip(segment)
                {
                    *xv += c;
                }
            }
        }
    }
}

/// x ← col2im(cols) for one image: the adjoint of [`im2col`], summing overlapping windows.
///
/// # Shapes
/// cols (C_in·KH·KW, OH·OW) → x (C_in, H, W).
pub fn col2im(geom: &Conv2dGeometry, cols: &[f32], x: &mut [f32]) {
    let s = geom.spec();
    let p = geom.h_out() * geom.w_out();
    check_image_and_cols("col2im", geom, x.len(), cols.len());
    x.fill(0.0);
    let mut rows = cols.chunks_exact(p);
    for x_plane in x.chunks_exact_mut(s.h_in * s.w_in) {
        for i in 0..s.kh {
            for j in 0..s.kw {
                // Invariant: as in im2col, one row per (ci, i, j).
                let Some(row) = rows.next() else {
                    unreachable!("col2im: cols has too few rows")
                };
                add_tap_row(geom, row, i, j, x_plane);
            }
        }
    }
}

/// The adjoint of [`fill_tap_row`]: adds each entry of `row` (OH·OW) onto the pixel of
/// `x_plane` that kernel tap (i, j) read it from (padding entries are dropped).
pub(crate) fn add_tap_row(
    geom: &Conv2dGeometry,
    row: &[f32],
    i: usize,
    j: usize,
    x_plane: &mut [f32],
) {
    TapRows::new(geom, i, j).add(row, x_plane);
}

/// One image of `geom`'s input and its column matrix must have exactly their sizes.
fn check_image_and_cols(kernel: &str, geom: &Conv2dGeometry, x_len: usize, cols_len: usize) {
    crate::check_lens(
        kernel,
        &[
            ("x", x_len, geom.input_image_len()),
            (
                "cols",
                cols_len,
                geom.patch_len() * geom.h_out() * geom.w_out(),
            ),
        ],
    );
}

/// cols ← im2col(x) for one image through a table made by [`tap_offsets`]: the same result
/// as [`im2col`], as one flat gather (the table is made once per call of a batched kernel,
/// not once per image).
pub(crate) fn gather_columns(offsets: &[u32], x: &[f32], cols: &mut [f32]) {
    for (c, &t) in cols.iter_mut().zip(offsets) {
        *c = if t == PADDING { 0.0 } else { x[t as usize] };
    }
}

/// x ← col2im(cols) for one image through a [`tap_offsets`] table: [`col2im`] as one flat
/// scatter-add.
pub(crate) fn scatter_columns(offsets: &[u32], cols: &[f32], x: &mut [f32]) {
    x.fill(0.0);
    for (&c, &t) in cols.iter().zip(offsets) {
        if t != PADDING {
            x[t as usize] += c;
        }
    }
}

/// Marks a column entry that falls in the padding (it reads 0).
pub(crate) const PADDING: u32 = u32::MAX;

/// im2col as a table: `offsets[r·P + p]` is where, inside one input image, column entry
/// (r, p) reads from ([`PADDING`] for 0). The same for every image, so a batch of images is
/// then a plain gather.
pub(crate) fn tap_offsets(geom: &Conv2dGeometry, offsets: &mut [u32]) {
    let s = geom.spec();
    let (h_out, w_out) = (geom.h_out(), geom.w_out());
    let mut rows = offsets.chunks_exact_mut(h_out * w_out);
    for ci in 0..s.c_in {
        for i in 0..s.kh {
            for j in 0..s.kw {
                // Invariant: offsets holds C_in·KH·KW rows of OH·OW.
                let Some(row) = rows.next() else {
                    unreachable!("tap_offsets: too few rows")
                };
                for (q, o) in row.iter_mut().enumerate() {
                    let (oh, ow) = (q / w_out, q % w_out);
                    let ih = (oh * s.stride + i)
                        .checked_sub(s.pad)
                        .filter(|&v| v < s.h_in);
                    let iw = (ow * s.stride + j)
                        .checked_sub(s.pad)
                        .filter(|&v| v < s.w_in);
                    *o = match (ih, iw) {
                        (Some(ih), Some(iw)) => ((ci * s.h_in + ih) * s.w_in + iw) as u32,
                        _ => PADDING,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{tests::grid, Conv2dSpec};
    use crate::testing::{dot, uniform};

    #[test]
    fn a_2x2_kernel_copies_each_window_into_a_column() {
        // x = [[1, 2, 3], [4, 5, 6]], 2×2 kernel, stride 1: two windows, [1 2 4 5] and [2 3 5 6].
        let spec = Conv2dSpec {
            n: 1,
            c_in: 1,
            h_in: 2,
            w_in: 3,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 1,
            pad: 0,
        };
        let geom = Conv2dGeometry::new(spec).unwrap();
        let mut cols = [0.0; 8];
        im2col(&geom, &[1., 2., 3., 4., 5., 6.], &mut cols);
        // rows are the taps (0,0) (0,1) (1,0) (1,1); columns the two windows
        assert_eq!(cols, [1., 2., 2., 3., 4., 5., 5., 6.]);
    }

    #[test]
    fn the_offset_table_gathers_and_scatters_what_im2col_and_col2im_do() {
        for (case, spec) in grid().into_iter().enumerate() {
            let geom = Conv2dGeometry::new(spec).unwrap();
            let k_p = geom.patch_len() * geom.h_out() * geom.w_out();
            let x = uniform(geom.input_image_len(), case as u64);
            let c = uniform(k_p, 500 + case as u64);
            let mut offsets = vec![0u32; k_p];
            tap_offsets(&geom, &mut offsets);
            let (mut a, mut b) = (vec![f32::NAN; k_p], vec![f32::NAN; k_p]);
            im2col(&geom, &x, &mut a);
            gather_columns(&offsets, &x, &mut b);
            assert_eq!(a, b, "{spec:?}");
            let (mut a, mut b) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            col2im(&geom, &c, &mut a);
            scatter_columns(&offsets, &c, &mut b);
            assert_eq!(a, b, "{spec:?}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for (case, spec) in grid().into_iter().enumerate() {
            let geom = Conv2dGeometry::new(spec).unwrap();
            let x = uniform(geom.input_image_len(), case as u64);
            let c = uniform(
                geom.patch_len() * geom.h_out() * geom.w_out(),
                1000 + case as u64,
            );
            let mut cols = vec![f32::NAN; c.len()];
            let mut back = vec![f32::NAN; x.len()];
            im2col(&geom, &x, &mut cols);
            col2im(&geom, &c, &mut back);
            let (lhs, rhs) = (dot(&cols, &c), dot(&x, &back));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
                "{spec:?}: {lhs} vs {rhs}"
            );
        }
    }
}
