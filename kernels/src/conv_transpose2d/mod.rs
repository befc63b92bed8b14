//! Transposed convolution: the decoder's way of growing a picture (3×3 → 7×7 → 14×14 → 28×28).
//!
//! A transposed convolution is not a new kernel. It is the **adjoint** of a convolution: the
//! map that backward-input of [`crate::conv2d`] already computes. Each input pixel scatters a
//! weighted copy of the kernel into the output, with the same stride and padding a convolution
//! from the output back to the input would use:
//!
//! y[n, co, ih·s − p + i, iw·s − p + j] += x[n, ci, ih, iw] · w[ci, co, i, j]
//!
//! so OH = (H − 1)·s − 2·p + KH + output_padding. The `output_padding` (< s) adds rows that
//! stride-s convolution would have skipped, which is how a decoder mirrors an encoder layer
//! whose integer division dropped a remainder (14 → 7 → back to 14, not 13).
//!
//! So this module has no geometry type of its own: [`adjoint`] checks the sizes and returns the
//! [`Conv2dGeometry`] of that convolution, and everything else is conv2d with roles swapped:
//! * forward   = conv2d backward-input of the adjoint (the col2im path), plus the bias,
//! * backward-input  = conv2d forward (no bias),
//! * backward-weight = conv2d backward-weight with the roles of input and gradient swapped.
//!
//! [`naive`] keeps the scatter above as nested loops: the independent spec tests compare to.

pub mod naive;

use crate::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec, Epilogue};
use crate::GeometryError;

/// The sizes of one transposed convolution, PyTorch's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dSpec {
    /// Batch size N.
    pub n: usize,
    /// Input channels C_in.
    pub c_in: usize,
    /// Input height H.
    pub h_in: usize,
    /// Input width W.
    pub w_in: usize,
    /// Output channels C_out.
    pub c_out: usize,
    /// Kernel height KH.
    pub kh: usize,
    /// Kernel width KW.
    pub kw: usize,
    /// The stride of the convolution this one undoes.
    pub stride: usize,
    /// The padding of the convolution this one undoes (rows and columns cropped from the output).
    pub pad: usize,
    /// Extra rows and columns on the bottom and right of the output, smaller than the stride.
    pub output_padding: usize,
}

/// Checks a transposed convolution's sizes and returns the convolution it is the adjoint of:
/// the one geometry type both directions share.
///
/// That convolution runs from this layer's output back to its input: its input is
/// (N, C_out, OH, OW), its output (N, C_in, H, W), and its weight (C_in, C_out, KH, KW) is
/// exactly PyTorch's layout for the transposed layer. So, for a transposed convolution with
/// adjoint `adj`:
///
/// | the transposed layer's | is the adjoint's |
/// |---|---|
/// | input (N, C_in, H, W) | `adj.output_shape()` |
/// | weight (C_in, C_out, KH, KW) | `adj.weight_shape()` |
/// | output (N, C_out, OH, OW) | `adj.input_shape()` |
/// | bias (C_out) | `[adj.spec().c_in]` |
///
/// # Errors
/// Zero sizes or stride, `output_padding ≥ stride`, or padding that crops the whole output.
///
/// # Example
/// ```
/// use handgrad_kernels::conv_transpose2d::{adjoint, ConvTranspose2dSpec};
/// let spec = ConvTranspose2dSpec { n: 1, c_in: 39, h_in: 7, w_in: 7, c_out: 6,
///                                  kh: 3, kw: 3, stride: 2, pad: 1, output_padding: 1 };
/// let adj = adjoint(spec).unwrap();
/// assert_eq!(adj.input_shape(), [1, 6, 14, 14]); // the transposed layer's output
/// assert_eq!(adj.output_shape(), [1, 39, 7, 7]); // ... and its input
/// ```
pub fn adjoint(spec: ConvTranspose2dSpec) -> Result<Conv2dGeometry, GeometryError> {
    let ConvTranspose2dSpec {
        n,
        c_in,
        h_in,
        w_in,
        c_out,
        kh,
        kw,
        stride,
        pad,
        output_padding,
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
    crate::check_nonzero("conv_transpose2d", &sizes)?;
    let err = |detail: String| {
        Err(GeometryError {
            op: "conv_transpose2d",
            detail,
        })
    };
    if output_padding >= stride {
        return err(format!(
            "output_padding {output_padding} must be smaller than the stride {stride}"
        ));
    }
    let grown = |len: usize, k: usize| (len - 1) * stride + k + output_padding;
    let (full_h, full_w) = (grown(h_in, kh), grown(w_in, kw));
    if full_h <= 2 * pad || full_w <= 2 * pad {
        return err(format!(
            "padding {pad} crops the whole {full_h}×{full_w} output"
        ));
    }
    let (h_out, w_out) = (full_h - 2 * pad, full_w - 2 * pad);
    let adj = Conv2dGeometry::new(Conv2dSpec {
        n,
        c_in: c_out,
        h_in: h_out,
        w_in: w_out,
        c_out: c_in,
        kh,
        kw,
        stride,
        pad,
    })?;
    // With output_padding < stride the adjoint convolution maps OH back to exactly H.
    debug_assert_eq!((adj.h_out(), adj.w_out()), (h_in, w_in));
    Ok(adj)
}

/// y ← conv_transpose2d(x, w) + b: the adjoint's backward-input, plus the bias.
///
/// # Shapes
/// x (N, C_in, H, W), w (C_in, C_out, KH, KW), b (C_out) → y (N, C_out, OH, OW).
pub fn forward(
    adj: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) {
    forward_with(adj, algo, x, w, Epilogue { bias: b, act: None }, y);
}

/// y ← act(conv_transpose2d(x, w) + b): [`forward`] with an activation fused in. Where the
/// algorithm is [`Conv2dAlgo::BatchedGemm`] each chunk of images gets its bias and activation
/// while it is in cache; elsewhere both are one more pass over y, images in parallel.
///
/// # Shapes
/// As [`forward`].
pub fn forward_with(
    adj: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    w: &[f32],
    epilogue: Epilogue<'_>,
    y: &mut [f32],
) {
    crate::check_bias(adj.spec().c_in, epilogue.bias);
    if algo.resolve(adj) == Conv2dAlgo::BatchedGemm {
        conv2d::batched_gemm::backward_input_with(adj, x, w, epilogue, y);
    } else {
        conv2d::backward_input(adj, algo, x, w, y);
        let plane = adj.spec().h_in * adj.spec().w_in;
        epilogue.apply_to_batch(y, adj.input_image_len(), plane);
    }
}

/// d_x ← ∂L/∂x: the adjoint's forward, an ordinary convolution of d_y with the same weights.
///
/// # Shapes
/// d_y (N, C_out, OH, OW), w (C_in, C_out, KH, KW) → d_x (N, C_in, H, W).
pub fn backward_input(
    adj: &Conv2dGeometry,
    algo: Conv2dAlgo,
    d_y: &[f32],
    w: &[f32],
    d_x: &mut [f32],
) {
    conv2d::forward(adj, algo, d_y, w, None, d_x);
}

/// d_w ← ∂L/∂w = Σ over the batch of d_y correlated with x: the adjoint's weight gradient,
/// in which d_y plays the input and x the output gradient.
///
/// # Shapes
/// x (N, C_in, H, W), d_y (N, C_out, OH, OW) → d_w (C_in, C_out, KH, KW).
pub fn backward_weight(
    adj: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    d_y: &[f32],
    d_w: &mut [f32],
) {
    conv2d::backward_weight(adj, algo, d_y, x, d_w);
}

/// Both gradients at once: d_x as [`backward_input`] and d_w as [`backward_weight`]. Both
/// unroll d_y into columns (they are the adjoint's forward and weight gradient, with d_y as the
/// adjoint's input); where the algorithm is [`Conv2dAlgo::BatchedGemm`] the columns are made
/// once and used for both ([`conv2d::batched_gemm::forward_and_backward_weight`]), elsewhere
/// the two run one after the other.
///
/// # Shapes
/// x (N, C_in, H, W), d_y (N, C_out, OH, OW), w (C_in, C_out, KH, KW) → d_x like x, d_w like w.
pub fn backward_input_and_weight(
    adj: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    d_y: &[f32],
    w: &[f32],
    d_x: &mut [f32],
    d_w: &mut [f32],
) {
    if algo.resolve(adj) == Conv2dAlgo::BatchedGemm {
        conv2d::batched_gemm::forward_and_backward_weight(adj, d_y, w, d_x, x, d_w);
    } else {
        backward_input(adj, algo, d_y, w, d_x);
        backward_weight(adj, algo, x, d_y, d_w);
    }
}

/// d_b ← d_y summed over N, OH and OW.
///
/// # Shapes
/// d_y (N, C_out, OH, OW) → d_b (C_out).
pub fn backward_bias(adj: &Conv2dGeometry, d_y: &[f32], d_b: &mut [f32]) {
    let [n, c_out, h_out, w_out] = adj.input_shape();
    crate::check_lens(
        "conv_transpose2d::backward_bias",
        &[
            ("d_y", d_y.len(), n * c_out * h_out * w_out),
            ("d_b", d_b.len(), c_out),
        ],
    );
    crate::reduce::sum_per_channel(d_y, n, c_out, h_out * w_out, d_b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, assert_fused_activation, dot, uniform};

    fn grid() -> Vec<ConvTranspose2dSpec> {
        let mut specs = Vec::new();
        for &(kh, kw) in &[(1, 1), (3, 3), (3, 5), (4, 4)] {
            for stride in 1..=3 {
                for pad in 0..=2 {
                    for output_padding in 0..stride {
                        for &(n, c_in, c_out, h_in, w_in) in
                            &[(1, 1, 1, 5, 4), (3, 5, 7, 4, 6), (2, 72, 39, 3, 3)]
                        {
                            let spec = ConvTranspose2dSpec {
                                n,
                                c_in,
                                h_in,
                                w_in,
                                c_out,
                                kh,
                                kw,
                                stride,
                                pad,
                                output_padding,
                            };
                            if adjoint(spec).is_ok() {
                                specs.push(spec);
                            }
                        }
                    }
                }
            }
        }
        specs
    }

    #[test]
    fn output_size_follows_the_formula() {
        let spec = ConvTranspose2dSpec {
            n: 1,
            c_in: 3,
            h_in: 5,
            w_in: 4,
            c_out: 2,
            kh: 4,
            kw: 4,
            stride: 3,
            pad: 1,
            output_padding: 2,
        };
        assert_eq!(adjoint(spec).unwrap().input_shape(), [1, 2, 16, 13]);
        let spec = ConvTranspose2dSpec {
            n: 2,
            c_in: 72,
            h_in: 3,
            w_in: 3,
            c_out: 39,
            kh: 3,
            kw: 3,
            stride: 2,
            pad: 0,
            output_padding: 0,
        };
        assert_eq!(adjoint(spec).unwrap().input_shape(), [2, 39, 7, 7]);
        assert!(adjoint(ConvTranspose2dSpec {
            output_padding: 3,
            ..spec
        })
        .is_err());
    }

    #[test]
    fn every_algorithm_matches_the_scatter_definition() {
        crate::testing::on_every_isa(every_algorithm_matches_the_scatter_definition_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn every_algorithm_matches_the_scatter_definition_once() {
        for (case, spec) in grid().into_iter().enumerate() {
            let adj = adjoint(spec).unwrap();
            let len = |s: [usize; 4]| s.iter().product::<usize>();
            // The transposed layer's input is its adjoint's output, and the other way round.
            let x = uniform(len(adj.output_shape()), case as u64);
            let w = uniform(len(adj.weight_shape()), 50 + case as u64);
            let b = uniform(spec.c_out, 90 + case as u64);
            let d_y = uniform(len(adj.input_shape()), 130 + case as u64);
            let mut expected = (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
            naive::forward(&spec, &x, &w, Some(&b), &mut expected.0);
            naive::backward_input(&spec, &d_y, &w, &mut expected.1);
            naive::backward_weight(&spec, &x, &d_y, &mut expected.2);
            for algo in Conv2dAlgo::ALL {
                let mut got = (
                    vec![f32::NAN; d_y.len()],
                    vec![f32::NAN; x.len()],
                    vec![f32::NAN; w.len()],
                );
                forward(&adj, algo, &x, &w, Some(&b), &mut got.0);
                backward_input(&adj, algo, &d_y, &w, &mut got.1);
                backward_weight(&adj, algo, &x, &d_y, &mut got.2);
                let what = format!("{} {spec:?}", algo.name());
                assert_close(&got.0, &expected.0, 1e-5, &format!("forward, {what}"));
                assert_close(
                    &got.1,
                    &expected.1,
                    1e-5,
                    &format!("backward_input, {what}"),
                );
                assert_close(
                    &got.2,
                    &expected.2,
                    1e-5,
                    &format!("backward_weight, {what}"),
                );
                // Both gradients from one call (one set of columns where batched).
                let (mut d_x, mut d_w) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()]);
                backward_input_and_weight(&adj, algo, &x, &d_y, &w, &mut d_x, &mut d_w);
                assert_close(&d_x, &expected.1, 1e-5, &format!("both: d_x, {what}"));
                assert_close(&d_w, &expected.2, 1e-5, &format!("both: d_w, {what}"));
                // The forward with an activation fused in: the activation of the expected.
                let run = |e: Epilogue<'_>, y: &mut [f32]| forward_with(&adj, algo, &x, &w, e, y);
                let act = crate::elementwise::Activation::Sigmoid;
                assert_fused_activation(act, &b, &expected.0, run, &what);
            }
        }
    }

    #[test]
    fn is_the_adjoint_of_the_convolution_with_the_same_weights() {
        // ⟨conv(y), x⟩ = ⟨y, conv_transpose(x)⟩: the dot-product test.
        let spec = ConvTranspose2dSpec {
            n: 2,
            c_in: 39,
            h_in: 7,
            w_in: 7,
            c_out: 6,
            kh: 3,
            kw: 3,
            stride: 2,
            pad: 1,
            output_padding: 1,
        };
        let adj = adjoint(spec).unwrap();
        let x = uniform(adj.output_shape().iter().product(), 1);
        let w = uniform(adj.weight_shape().iter().product(), 2);
        let y = uniform(adj.input_shape().iter().product(), 3);
        let (mut t_x, mut conv_y) = (vec![0.0; y.len()], vec![0.0; x.len()]);
        forward(&adj, Conv2dAlgo::Direct, &x, &w, None, &mut t_x);
        conv2d::forward(&adj, Conv2dAlgo::Direct, &y, &w, None, &mut conv_y);
        let (lhs, rhs) = (dot(&t_x, &y), dot(&x, &conv_y));
        assert!(
            (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}
