//! Convolutional layers: [`Conv2d`] shrinks a feature map (stride 2 halves it), and
//! [`ConvTranspose2d`] grows one back — the encoder's and the decoder's workhorses.

use super::{Init, Module, Param, WeightBias};
use crate::autodiff::{Graph, Var};
use crate::error::Result;
use rand::Rng;

/// A 2-D convolution with square kernel, stride and padding.
///
/// # Shapes
/// x (N, C_in, H, W) → y (N, C_out, (H + 2·pad − k)/stride + 1, …); weight (C_out, C_in, k, k).
#[derive(Debug)]
pub struct Conv2d {
    /// Weight (C_out, C_in, k, k) and bias (C_out).
    pub params: WeightBias,
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
}

impl Conv2d {
    /// A convolution from `c_in` to `c_out` channels with a `k`×`k` kernel.
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, init: Init, rng: &mut impl Rng) -> Self {
        Conv2d { params: WeightBias::new(&[c_out, c_in, k, k], c_out, true, init, rng), stride, pad }
    }
}

impl Module for Conv2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = self.params.on(g);
        g.conv2d(x, w, b, self.stride, self.pad)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.params.visit(prefix, f)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.params.visit_mut(prefix, f)
    }
}

/// A 2-D transposed convolution (PyTorch's `ConvTranspose2d`).
///
/// # Shapes
/// x (N, C_in, H, W) → y (N, C_out, (H − 1)·stride − 2·pad + k + output_padding, …);
/// weight (C_in, C_out, k, k).
#[derive(Debug)]
pub struct ConvTranspose2d {
    /// Weight (C_in, C_out, k, k) and bias (C_out).
    pub params: WeightBias,
    /// The stride of the convolution this layer mirrors.
    pub stride: usize,
    /// The padding of the convolution this layer mirrors.
    pub pad: usize,
    /// Extra output rows and columns (< stride) that restore an exact size.
    pub output_padding: usize,
}

impl ConvTranspose2d {
    /// A transposed convolution from `c_in` to `c_out` channels with a `k`×`k` kernel.
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, output_padding: usize, init: Init, rng: &mut impl Rng) -> Self {
        ConvTranspose2d { params: WeightBias::new(&[c_in, c_out, k, k], c_out, true, init, rng), stride, pad, output_padding }
    }
}

impl Module for ConvTranspose2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = self.params.on(g);
        g.conv_transpose2d(x, w, b, self.stride, self.pad, self.output_padding)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.params.visit(prefix, f)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.params.visit_mut(prefix, f)
    }
}
