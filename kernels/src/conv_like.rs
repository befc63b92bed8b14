//! What convolutions and transposed convolutions have in common: shapes and the four kernels
//! (forward, and backward for input, weight and bias). Code that treats both alike — the
//! autodiff op, the benchmarks — is written once against this trait.

use crate::conv2d::{self, Conv2dAlgo, Conv2dGeometry};
use crate::conv_transpose2d::{self, ConvTranspose2dGeometry};

/// A checked convolution-like geometry with its kernels.
pub trait ConvLike: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The op's name, for messages.
    const OP: &'static str;
    /// (N, C_in, H, W).
    fn input_shape(&self) -> [usize; 4];
    /// The weight's shape, in PyTorch's layout for this op.
    fn weight_shape(&self) -> [usize; 4];
    /// (C_out).
    fn bias_shape(&self) -> [usize; 1];
    /// (N, C_out, OH, OW).
    fn output_shape(&self) -> [usize; 4];
    /// Multiply-adds of one forward pass.
    fn macs(&self) -> usize;
    /// y ← op(x, w) + b.
    fn forward(&self, algo: Conv2dAlgo, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]);
    /// d_x ← ∂L/∂x.
    fn backward_input(&self, algo: Conv2dAlgo, d_y: &[f32], w: &[f32], d_x: &mut [f32]);
    /// d_w ← ∂L/∂w.
    fn backward_weight(&self, algo: Conv2dAlgo, x: &[f32], d_y: &[f32], d_w: &mut [f32]);
    /// d_b ← ∂L/∂b.
    fn backward_bias(&self, d_y: &[f32], d_b: &mut [f32]);
}

impl ConvLike for Conv2dGeometry {
    const OP: &'static str = "conv2d";
    fn input_shape(&self) -> [usize; 4] {
        Conv2dGeometry::input_shape(self)
    }
    fn weight_shape(&self) -> [usize; 4] {
        Conv2dGeometry::weight_shape(self)
    }
    fn bias_shape(&self) -> [usize; 1] {
        Conv2dGeometry::bias_shape(self)
    }
    fn output_shape(&self) -> [usize; 4] {
        Conv2dGeometry::output_shape(self)
    }
    fn macs(&self) -> usize {
        Conv2dGeometry::macs(self)
    }
    fn forward(&self, algo: Conv2dAlgo, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
        conv2d::forward(self, algo, x, w, b, y)
    }
    fn backward_input(&self, algo: Conv2dAlgo, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        conv2d::backward_input(self, algo, d_y, w, d_x)
    }
    fn backward_weight(&self, algo: Conv2dAlgo, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        conv2d::backward_weight(self, algo, x, d_y, d_w)
    }
    fn backward_bias(&self, d_y: &[f32], d_b: &mut [f32]) {
        conv2d::backward_bias(self, d_y, d_b)
    }
}

impl ConvLike for ConvTranspose2dGeometry {
    const OP: &'static str = "conv_transpose2d";
    fn input_shape(&self) -> [usize; 4] {
        ConvTranspose2dGeometry::input_shape(self)
    }
    fn weight_shape(&self) -> [usize; 4] {
        ConvTranspose2dGeometry::weight_shape(self)
    }
    fn bias_shape(&self) -> [usize; 1] {
        ConvTranspose2dGeometry::bias_shape(self)
    }
    fn output_shape(&self) -> [usize; 4] {
        ConvTranspose2dGeometry::output_shape(self)
    }
    fn macs(&self) -> usize {
        ConvTranspose2dGeometry::macs(self)
    }
    fn forward(&self, algo: Conv2dAlgo, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
        conv_transpose2d::forward(self, algo, x, w, b, y)
    }
    fn backward_input(&self, algo: Conv2dAlgo, d_y: &[f32], w: &[f32], d_x: &mut [f32]) {
        conv_transpose2d::backward_input(self, algo, d_y, w, d_x)
    }
    fn backward_weight(&self, algo: Conv2dAlgo, x: &[f32], d_y: &[f32], d_w: &mut [f32]) {
        conv_transpose2d::backward_weight(self, algo, x, d_y, d_w)
    }
    fn backward_bias(&self, d_y: &[f32], d_b: &mut [f32]) {
        conv_transpose2d::backward_bias(self, d_y, d_b)
    }
}

/// Every convolution kernel's boundary check: the input-side, weight-side and output-side
/// slices (x or d_x, w or d_w, y or d_y) must have exactly the geometry's sizes.
#[track_caller]
pub(crate) fn check_lens<G: ConvLike>(
    geom: &G,
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
