//! Max-pooling and nearest-neighbour upsampling: the parameter-free way to shrink and grow
//! feature maps (an alternative to strided and transposed convolutions in an autoencoder).
//!
//! * Max-pool keeps the largest value of each K×K window. Its gradient flows only to that
//!   winner, so forward records the winner's position (`argmax`) and backward scatters there.
//! * Nearest upsampling by S repeats each pixel into an S×S block; backward sums each block.
//!
//! Both work plane by plane (one (image, channel) pair at a time), in parallel.

use crate::GeometryError;
use rayon::prelude::*;

/// A checked max-pool: `planes` = N·C feature maps of H×W, windows of K×K every `stride`.
///
/// # Shapes
/// x (N, C, H, W) → y (N, C, OH, OW), OH = (H − K) / stride + 1 (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dGeometry {
    /// N·C: pooling treats every channel of every image alike.
    pub planes: usize,
    /// Input height H.
    pub h_in: usize,
    /// Input width W.
    pub w_in: usize,
    /// Window size K (square).
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Output height OH.
    pub h_out: usize,
    /// Output width OW.
    pub w_out: usize,
}

impl MaxPool2dGeometry {
    /// # Errors
    /// Zero sizes, or a window larger than the input.
    pub fn new(
        planes: usize,
        h_in: usize,
        w_in: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<Self, GeometryError> {
        if planes == 0 || kernel == 0 || stride == 0 || kernel > h_in || kernel > w_in {
            return Err(GeometryError {
                op: "max_pool2d",
                detail: format!("a {kernel}×{kernel} window with stride {stride} does not fit a {h_in}×{w_in} input"),
            });
        }
        let (h_out, w_out) = ((h_in - kernel) / stride + 1, (w_in - kernel) / stride + 1);
        Ok(MaxPool2dGeometry {
            planes,
            h_in,
            w_in,
            kernel,
            stride,
            h_out,
            w_out,
        })
    }
}

/// y ← the maximum of each window; `argmax` ← its position inside the input plane (ih·W + iw).
/// A NaN in a window wins, so a NaN is never hidden by pooling (PyTorch does the same).
pub fn max_pool2d_forward(geom: &MaxPool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let g = *geom;
    let (in_plane, out_plane) = (g.h_in * g.w_in, g.h_out * g.w_out);
    crate::check_lens(
        "max_pool2d_forward",
        &[
            ("x", x.len(), g.planes * in_plane),
            ("y", y.len(), g.planes * out_plane),
            ("argmax", argmax.len(), g.planes * out_plane),
        ],
    );
    y.par_chunks_mut(out_plane)
        .zip(argmax.par_chunks_mut(out_plane))
        .zip(x.par_chunks(in_plane))
        .for_each(|((y_plane, arg_plane), x_plane)| {
            for oh in 0..g.h_out {
                for ow in 0..g.w_out {
                    let (mut best, mut best_at) =
                        (f32::NEG_INFINITY, (oh * g.stride) * g.w_in + ow * g.stride);
                    for ih in oh * g.stride..oh * g.stride + g.kernel {
                        for iw in ow * g.stride..ow * g.stride + g.kernel {
                            let v = x_plane[ih * g.w_in + iw];
                            if v > best || v.is_nan() {
                                (best, best_at) = (v, ih * g.w_in + iw);
                                if v.is_nan() {
                                    break;
                                }
                            }
                        }
                    }
                    y_plane[oh * g.w_out + ow] = best;
                    // Invariant: a plane index fits u32, planes are at most a few million pixels.
                    arg_plane[oh * g.w_out + ow] = best_at as u32;
                }
            }
        });
}

/// d_x ← d_y routed to each window's winner (overlapping windows add up).
pub fn max_pool2d_backward(geom: &MaxPool2dGeometry, d_y: &[f32], argmax: &[u32], d_x: &mut [f32]) {
    let (in_plane, out_plane) = (geom.h_in * geom.w_in, geom.h_out * geom.w_out);
    crate::check_lens(
        "max_pool2d_backward",
        &[
            ("d_y", d_y.len(), geom.planes * out_plane),
            ("argmax", argmax.len(), geom.planes * out_plane),
            ("d_x", d_x.len(), geom.planes * in_plane),
        ],
    );
    d_x.par_chunks_mut(in_plane)
        .zip(d_y.par_chunks(out_plane))
        .zip(argmax.par_chunks(out_plane))
        .for_each(|((d_x_plane, d_y_plane), arg_plane)| {
            d_x_plane.fill(0.0);
            for (&g, &at) in d_y_plane.iter().zip(arg_plane) {
                d_x_plane[at as usize] += g;
            }
        });
}

/// y ← x with every pixel repeated into a `scale`×`scale` block.
///
/// # Shapes
/// x (planes, H, W) → y (planes, H·scale, W·scale).
pub fn upsample_nearest2d_forward(
    planes: usize,
    h_in: usize,
    w_in: usize,
    scale: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let w_out = w_in * scale;
    let (small, large) = (planes * h_in * w_in, planes * h_in * w_in * scale * scale);
    crate::check_lens(
        "upsample_nearest2d_forward",
        &[("x", x.len(), small), ("y", y.len(), large)],
    );
    y.par_chunks_mut(h_in * scale * w_out)
        .zip(x.par_chunks(h_in * w_in))
        .for_each(|(y_plane, x_plane)| {
            for (y_row, oh) in y_plane.chunks_exact_mut(w_out).zip(0..) {
                let x_row = &x_plane[(oh / scale) * w_in..][..w_in];
                for (block, &v) in y_row.chunks_exact_mut(scale).zip(x_row) {
                    block.fill(v);
                }
            }
        });
}

/// d_x ← each `scale`×`scale` block of d_y summed.
///
/// # Shapes
/// d_y (planes, H·scale, W·scale) → d_x (planes, H, W).
pub fn upsample_nearest2d_backward(
    planes: usize,
    h_in: usize,
    w_in: usize,
    scale: usize,
    d_y: &[f32],
    d_x: &mut [f32],
) {
    let w_out = w_in * scale;
    let (small, large) = (planes * h_in * w_in, planes * h_in * w_in * scale * scale);
    crate::check_lens(
        "upsample_nearest2d_backward",
        &[("d_y", d_y.len(), large), ("d_x", d_x.len(), small)],
    );
    d_x.par_chunks_mut(h_in * w_in)
        .zip(d_y.par_chunks(h_in * scale * w_out))
        .for_each(|(d_x_plane, d_y_plane)| {
            d_x_plane.fill(0.0);
            for (d_y_row, oh) in d_y_plane.chunks_exact(w_out).zip(0..) {
                let d_x_row = &mut d_x_plane[(oh / scale) * w_in..][..w_in];
                for (acc, block) in d_x_row.iter_mut().zip(d_y_row.chunks_exact(scale)) {
                    *acc += block.iter().sum::<f32>();
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, uniform};

    /// The spec: the max of each window, found by brute force over index arithmetic.
    fn naive_max_pool(g: &MaxPool2dGeometry, x: &[f32]) -> Vec<f32> {
        let mut y = Vec::new();
        for p in 0..g.planes {
            for oh in 0..g.h_out {
                for ow in 0..g.w_out {
                    let window = (0..g.kernel * g.kernel).map(|t| {
                        let (ih, iw) = (oh * g.stride + t / g.kernel, ow * g.stride + t % g.kernel);
                        x[(p * g.h_in + ih) * g.w_in + iw]
                    });
                    y.push(window.fold(f32::NEG_INFINITY, f32::max));
                }
            }
        }
        y
    }

    #[test]
    fn max_pool_matches_brute_force_and_routes_gradients_to_winners() {
        crate::testing::on_every_isa(
            max_pool_matches_brute_force_and_routes_gradients_to_winners_once,
        );
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn max_pool_matches_brute_force_and_routes_gradients_to_winners_once() {
        for &(planes, h, w, k, s) in &[
            (6, 8, 7, 2, 2),
            (1, 5, 5, 3, 1),
            (4, 9, 6, 3, 2),
            (2, 4, 4, 4, 4),
        ] {
            let g = MaxPool2dGeometry::new(planes, h, w, k, s).unwrap();
            let x = uniform(planes * h * w, 7);
            let mut y = vec![0.0; planes * g.h_out * g.w_out];
            let mut arg = vec![0; y.len()];
            max_pool2d_forward(&g, &x, &mut y, &mut arg);
            assert_close(&y, &naive_max_pool(&g, &x), 0.0, "max pool forward");
            // Backward: each output gradient lands on the input that won its window.
            let d_y = uniform(y.len(), 8);
            let mut d_x = vec![f32::NAN; x.len()];
            max_pool2d_backward(&g, &d_y, &arg, &mut d_x);
            let mut expected = vec![0.0; x.len()];
            for (k, (&g_out, &at)) in d_y.iter().zip(&arg).enumerate() {
                let plane = k / (g.h_out * g.w_out);
                assert_eq!(x[plane * h * w + at as usize], y[k]);
                expected[plane * h * w + at as usize] += g_out;
            }
            assert_close(&d_x, &expected, 1e-6, "max pool backward");
        }
    }

    #[test]
    fn max_pool_propagates_nan() {
        let g = MaxPool2dGeometry::new(1, 2, 2, 2, 2).unwrap();
        let (mut y, mut arg) = ([0.0], [0]);
        max_pool2d_forward(&g, &[1.0, f32::NAN, 3.0, 2.0], &mut y, &mut arg);
        assert!(y[0].is_nan());
        assert_eq!(arg, [1]);
    }

    #[test]
    fn upsample_repeats_pixels_and_backward_sums_blocks() {
        crate::testing::on_every_isa(upsample_repeats_pixels_and_backward_sums_blocks_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn upsample_repeats_pixels_and_backward_sums_blocks_once() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // one 2×3 plane
        let mut y = [0.0; 24];
        upsample_nearest2d_forward(1, 2, 3, 2, &x, &mut y);
        assert_eq!(&y[..12], &[1., 1., 2., 2., 3., 3., 1., 1., 2., 2., 3., 3.]);
        assert_eq!(&y[12..18], &[4., 4., 5., 5., 6., 6.]);
        let d_y: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut d_x = [0.0; 6];
        upsample_nearest2d_backward(1, 2, 3, 2, &d_y, &mut d_x);
        // block (0,0) holds d_y 0, 1, 6, 7 → 14
        assert_eq!(d_x, [14.0, 22.0, 30.0, 62.0, 70.0, 78.0]);
    }
}
