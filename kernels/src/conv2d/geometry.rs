//! The sizes of one convolution, checked once: [`Conv2dSpec`] as a user writes them,
//! [`Conv2dGeometry`] with everything derived from them (output size, and which outputs each
//! kernel tap reaches). Every kernel trusts a geometry, so this is the only place an
//! impossible size is refused.

use crate::GeometryError;

/// The sizes that define one convolution, as a user would write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Batch size N.
    pub n: usize,
    /// Input channels C_in.
    pub c_in: usize,
    /// Input height H.
    pub h_in: usize,
    /// Input width W.
    pub w_in: usize,
    /// Output channels C_out (the number of filters).
    pub c_out: usize,
    /// Kernel height KH.
    pub kh: usize,
    /// Kernel width KW.
    pub kw: usize,
    /// Step between neighbouring windows, the same along both axes.
    pub stride: usize,
    /// Zeros added on every side, the same along both axes.
    pub pad: usize,
}

/// A checked [`Conv2dSpec`] with its output size worked out.
///
/// # Shapes
/// x (N, C_in, H, W) · w (C_out, C_in, KH, KW) · b (C_out) → y (N, C_out, OH, OW), with
/// OH = (H + 2·pad − KH) / stride + 1 (integer division) and OW likewise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    spec: Conv2dSpec,
    h_out: usize,
    w_out: usize,
}

impl Conv2dGeometry {
    /// Checks the sizes and computes OH and OW.
    ///
    /// # Errors
    /// A zero size or stride, or a kernel larger than the padded input.
    ///
    /// # Example
    /// ```
    /// use handgrad_kernels::conv2d::{Conv2dGeometry, Conv2dSpec};
    /// let spec = Conv2dSpec { n: 1, c_in: 1, h_in: 28, w_in: 28, c_out: 6, kh: 3, kw: 3, stride: 2, pad: 1 };
    /// let geom = Conv2dGeometry::new(spec).unwrap();
    /// assert_eq!(geom.output_shape(), [1, 6, 14, 14]);
    /// ```
    pub fn new(spec: Conv2dSpec) -> Result<Self, GeometryError> {
        let Conv2dSpec {
            n,
            c_in,
            h_in,
            w_in,
            c_out,
            kh,
            kw,
            stride,
            pad,
        } = spec;
        let sizes = [
            ("N", n),
            ("C_in", c_in),
            ("H", h_in),
            ("W", w_in),
            ("C_out", c_out),
            ("KH", kh),
            ("KW", kw),
            ("stride", stride),
        ];
        crate::check_nonzero("conv2d", &sizes)?;
        let err = |detail: String| {
            Err(GeometryError {
                op: "conv2d",
                detail,
            })
        };
        if h_in + 2 * pad < kh || w_in + 2 * pad < kw {
            return err(format!(
                "a {kh}×{kw} kernel does not fit a {h_in}×{w_in} input padded by {pad}"
            ));
        }
        let h_out = (h_in + 2 * pad - kh) / stride + 1;
        let w_out = (w_in + 2 * pad - kw) / stride + 1;
        Ok(Conv2dGeometry { spec, h_out, w_out })
    }

    /// The same geometry for another batch size (the last batch of an epoch is often smaller).
    pub fn with_batch(self, n: usize) -> Result<Self, GeometryError> {
        Self::new(Conv2dSpec { n, ..self.spec })
    }

    /// The sizes this geometry was built from.
    pub fn spec(&self) -> Conv2dSpec {
        self.spec
    }
    /// Output height OH.
    pub fn h_out(&self) -> usize {
        self.h_out
    }
    /// Output width OW.
    pub fn w_out(&self) -> usize {
        self.w_out
    }
    /// (N, C_in, H, W).
    pub fn input_shape(&self) -> [usize; 4] {
        let s = self.spec;
        [s.n, s.c_in, s.h_in, s.w_in]
    }
    /// (C_out, C_in, KH, KW).
    pub fn weight_shape(&self) -> [usize; 4] {
        let s = self.spec;
        [s.c_out, s.c_in, s.kh, s.kw]
    }
    /// (C_out).
    pub fn bias_shape(&self) -> [usize; 1] {
        [self.spec.c_out]
    }
    /// (N, C_out, OH, OW).
    pub fn output_shape(&self) -> [usize; 4] {
        [self.spec.n, self.spec.c_out, self.h_out, self.w_out]
    }
    /// Elements in one input image, C_in·H·W.
    pub fn input_image_len(&self) -> usize {
        self.spec.c_in * self.spec.h_in * self.spec.w_in
    }
    /// Elements in one output image, C_out·OH·OW.
    pub fn output_image_len(&self) -> usize {
        self.spec.c_out * self.h_out * self.w_out
    }
    /// Length of one unrolled receptive field, C_in·KH·KW: the inner dimension of the GEMM.
    pub fn patch_len(&self) -> usize {
        self.spec.c_in * self.spec.kh * self.spec.kw
    }
    /// Multiply-adds in one forward pass, N·C_out·OH·OW·C_in·KH·KW (for throughput reports).
    pub fn macs(&self) -> usize {
        self.spec.n * self.output_image_len() * self.patch_len()
    }

    /// The output positions `o` along one axis whose input index `o·stride + offset − pad`
    /// falls inside `0..in_len`, for a kernel tap at `offset`. Kernels loop over this range
    /// only, so their inner loops need no bounds test.
    pub(crate) fn valid_outputs(
        &self,
        offset: usize,
        in_len: usize,
        out_len: usize,
    ) -> std::ops::Range<usize> {
        valid_outputs(offset, self.spec.pad, self.spec.stride, in_len, out_len)
    }
}

/// See [`Conv2dGeometry::valid_outputs`]: `lo` is the first o with o·s + offset ≥ pad, `hi` one
/// past the last with o·s + offset − pad < in_len.
pub(crate) fn valid_outputs(
    offset: usize,
    pad: usize,
    stride: usize,
    in_len: usize,
    out_len: usize,
) -> std::ops::Range<usize> {
    let lo = pad.saturating_sub(offset).div_ceil(stride);
    // o·s + offset − pad ≤ in_len − 1  ⇔  o ≤ (in_len − 1 + pad − offset) / s
    let hi = if in_len + pad > offset {
        ((in_len - 1 + pad - offset) / stride + 1).min(out_len)
    } else {
        0
    };
    lo.min(hi)..hi
}

/// Every convolution kernel's boundary check: the input-side, weight-side and output-side
/// slices (x or d_x, w or d_w, y or d_y) must have exactly the geometry's sizes.
#[track_caller]
pub(crate) fn check_lens(
    geom: &Conv2dGeometry,
    kernel: &str,
    x_len: usize,
    w_len: usize,
    y_len: usize,
) {
    let len = |s: [usize; 4]| s.iter().product::<usize>();
    crate::check_lens(
        kernel,
        &[
            ("the input side", x_len, len(geom.input_shape())),
            ("the weight side", w_len, len(geom.weight_shape())),
            ("the output side", y_len, len(geom.output_shape())),
        ],
    );
}
