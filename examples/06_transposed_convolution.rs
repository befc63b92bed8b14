//! Chapter 06, the transposed convolution: the adjoint of a convolution, ⟨conv(x), y⟩ =
//! ⟨x, convᵀ(y)⟩, which is why the decoder can undo the encoder's shapes; and where
//! output_padding comes from.
//!
//! Run with `cargo run --release --example 06_transposed_convolution`.

use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::conv_transpose2d::{self, ConvTranspose2dSpec};

/// Deterministic values in [−1, 1).
fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn main() {
    // conv-selu's second convolution on one image: 6 channels of 14×14 → 39 channels of 7×7.
    let spec = Conv2dSpec {
        n: 1,
        c_in: 6,
        h_in: 14,
        w_in: 14,
        c_out: 39,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    };
    let conv = Conv2dGeometry::new(spec).expect("a valid convolution");
    let (x, w) = (values(6 * 14 * 14, 1), values(39 * 6 * 9, 2));
    let y = values(39 * 7 * 7, 3);

    // A x: the convolution. Aᵀ y: its transpose, which is the convolution's backward pass for
    // the input — and the forward pass of a transposed convolution with the same weights.
    let mut a_x = vec![0.0; y.len()];
    conv2d::forward(&conv, Conv2dAlgo::Naive, &x, &w, None, &mut a_x);
    let mut at_y = vec![0.0; x.len()];
    conv2d::backward_input(&conv, Conv2dAlgo::Naive, &y, &w, &mut at_y);
    let (lhs, rhs) = (dot(&a_x, &y), dot(&x, &at_y));
    println!("⟨A x, y⟩  = {lhs:.6}");
    println!("⟨x, Aᵀ y⟩ = {rhs:.6}");
    assert!((lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0));

    // The same Aᵀ as a layer: ConvTranspose2d from 39 channels of 7×7 back to 6 of 14×14.
    // Going back, 7 positions at stride 2 with a 3-tap kernel and padding 1 reach
    // (7 − 1)·2 − 2·1 + 3 = 13 pixels, one short of 14: a stride-2 convolution maps 13 and 14
    // alike to 7, so its transpose cannot know which was meant. output_padding adds the
    // missing row and column on one side.
    for output_padding in [0, 1] {
        // `adjoint` checks the sizes and returns the convolution this layer is the transpose
        // of: its input is the layer's output.
        let t = conv_transpose2d::adjoint(ConvTranspose2dSpec {
            n: 1,
            c_in: 39,
            h_in: 7,
            w_in: 7,
            c_out: 6,
            kh: 3,
            kw: 3,
            stride: 2,
            pad: 1,
            output_padding,
        })
        .expect("a valid transposed convolution");
        let [_, c, h, w_out] = t.input_shape();
        println!(
            "transposed, output_padding {output_padding}: (7 − 1)·2 − 2·1 + 3 + {output_padding} = {h}, output {c}×{h}×{w_out}"
        );
        if output_padding == 1 {
            // The layer's forward pass is the convolution's transpose, value for value.
            let mut through_layer = vec![0.0; x.len()];
            conv_transpose2d::forward(&t, Conv2dAlgo::Naive, &y, &w, None, &mut through_layer);
            let worst = through_layer
                .iter()
                .zip(&at_y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            println!("ConvTranspose2d(y) equals Aᵀ y to {worst:.1e}");
            assert!(worst < 1e-5);
        }
    }
}
