//! Convolutional layers: [`Conv2d`] shrinks a feature map (stride 2 halves it), and
//! [`ConvTranspose2d`] grows one back — the encoder's and the decoder's workhorses.

use super::{Init, Module, Name, Param, WeightBias};
use crate::autodiff::{Activation, Graph, Var};
use crate::error::Result;
use rand::Rng;

/// A square kernel's size, stride and zero padding: the geometry shared by a convolution and
/// the transposed convolution that mirrors it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Side length k of the k×k kernel.
    pub size: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
}

impl Kernel {
    /// A k×k kernel with the given stride and padding.
    pub fn new(size: usize, stride: usize, pad: usize) -> Self {
        Kernel { size, stride, pad }
    }
}

/// A 2-D convolution with square kernel, stride and padding.
///
/// # Shapes
/// x (N, C_in, H, W) → y (N, C_out, (H + 2·pad − k)/stride + 1, …); weight (C_out, C_in, k, k).
#[derive(Debug)]
pub struct Conv2d {
    /// Weight (C_out, C_in, k, k) and bias (C_out).
    pub params: WeightBias,
    /// Kernel size, stride and padding.
    pub kernel: Kernel,
}

impl Conv2d {
    /// A convolution from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, kernel: Kernel, init: Init, rng: &mut impl Rng) -> Self {
        let k = kernel.size;
        Conv2d {
            params: WeightBias::new(&[c_out, c_in, k, k], c_out, true, init, rng),
            kernel,
        }
    }
}

impl Module for Conv2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = self.params.on(g);
        g.conv2d(x, w, b, self.kernel.stride, self.kernel.pad)
    }
    fn forward_then(&mut self, g: &mut Graph, x: Var, act: Activation) -> Option<Result<Var>> {
        let (w, b) = self.params.on(g);
        let k = self.kernel;
        Some(g.conv2d_then(x, w, b, k.stride, k.pad, Some(act)))
    }
    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        self.params.visit(name, f)
    }
    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        self.params.visit_mut(name, f)
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
    /// Kernel size, and the stride and padding of the convolution this layer mirrors.
    pub kernel: Kernel,
    /// Extra output rows and columns (< stride) that restore an exact size.
    pub output_padding: usize,
}

impl ConvTranspose2d {
    /// A transposed convolution from `c_in` to `c_out` channels.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: Kernel,
        output_padding: usize,
        init: Init,
        rng: &mut impl Rng,
    ) -> Self {
        let k = kernel.size;
        let params = WeightBias::new(&[c_in, c_out, k, k], c_out, true, init, rng);
        ConvTranspose2d {
            params,
            kernel,
            output_padding,
        }
    }
}

impl Module for ConvTranspose2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = self.params.on(g);
        let k = self.kernel;
        g.conv_transpose2d(x, w, b, k.stride, k.pad, self.output_padding)
    }
    fn forward_then(&mut self, g: &mut Graph, x: Var, act: Activation) -> Option<Result<Var>> {
        let (w, b) = self.params.on(g);
        let (k, op) = (self.kernel, self.output_padding);
        Some(g.conv_transpose2d_then(x, w, b, k.stride, k.pad, op, Some(act)))
    }
    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        self.params.visit(name, f)
    }
    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        self.params.visit_mut(name, f)
    }
}
