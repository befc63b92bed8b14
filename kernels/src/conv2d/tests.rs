//! Every convolution algorithm against the naive loop over a grid of shapes, and the
//! boundary checks a wrong slice length must trip.

use super::*;
use crate::testing::{assert_close, assert_fused_activation, dot, uniform};

/// The grid the style guide asks for, plus the odd cases: 1×1 and 3×3 and a 3×5
/// kernel, strides 1–3, pads 0–2, batch 1 and 3, odd sizes, channels not a multiple of 8.
pub(crate) fn grid() -> Vec<Conv2dSpec> {
    let mut specs = Vec::new();
    for &(kh, kw) in &[(1, 1), (3, 3), (3, 5), (2, 2)] {
        for stride in 1..=3 {
            for pad in 0..=2 {
                for &(n, c_in, c_out, h_in, w_in) in
                    &[(1, 1, 1, 7, 6), (3, 5, 7, 9, 11), (2, 13, 5, 6, 5)]
                {
                    let spec = Conv2dSpec {
                        n,
                        c_in,
                        h_in,
                        w_in,
                        c_out,
                        kh,
                        kw,
                        stride,
                        pad,
                    };
                    if Conv2dGeometry::new(spec).is_ok() {
                        specs.push(spec);
                    }
                }
            }
        }
    }
    // The default model's real layers, channels 1 → 6 → 39 → 72.
    specs.push(Conv2dSpec {
        n: 2,
        c_in: 1,
        h_in: 28,
        w_in: 28,
        c_out: 6,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    });
    specs.push(Conv2dSpec {
        n: 2,
        c_in: 6,
        h_in: 14,
        w_in: 14,
        c_out: 39,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    });
    specs.push(Conv2dSpec {
        n: 2,
        c_in: 39,
        h_in: 7,
        w_in: 7,
        c_out: 72,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 0,
    });
    specs
}

#[test]
fn output_size_follows_the_formula() {
    let spec = Conv2dSpec {
        n: 1,
        c_in: 3,
        h_in: 7,
        w_in: 6,
        c_out: 4,
        kh: 3,
        kw: 5,
        stride: 1,
        pad: 2,
    };
    assert_eq!(
        Conv2dGeometry::new(spec).unwrap().output_shape(),
        [1, 4, 9, 6]
    );
    let spec = Conv2dSpec {
        n: 3,
        c_in: 2,
        h_in: 9,
        w_in: 11,
        c_out: 5,
        kh: 2,
        kw: 2,
        stride: 3,
        pad: 0,
    };
    assert_eq!(
        Conv2dGeometry::new(spec).unwrap().output_shape(),
        [3, 5, 3, 4]
    );
}

#[test]
fn impossible_sizes_are_rejected() {
    let ok = Conv2dSpec {
        n: 1,
        c_in: 1,
        h_in: 4,
        w_in: 4,
        c_out: 1,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 0,
    };
    assert!(Conv2dGeometry::new(Conv2dSpec { kh: 5, ..ok }).is_err());
    assert!(Conv2dGeometry::new(Conv2dSpec { stride: 0, ..ok }).is_err());
    assert!(Conv2dGeometry::new(Conv2dSpec { c_in: 0, ..ok }).is_err());
    assert!(Conv2dGeometry::new(Conv2dSpec {
        kh: 5,
        pad: 1,
        ..ok
    })
    .is_ok());
}

#[test]
fn valid_output_range_matches_brute_force() {
    for pad in 0..3usize {
        for stride in 1..4 {
            for offset in 0..5 {
                for in_len in 1..9 {
                    let out_len = (in_len + 2 * pad).saturating_sub(offset) / stride + 1;
                    let range = valid_outputs(offset, pad, stride, in_len, out_len);
                    let expected: Vec<usize> = (0..out_len)
                        .filter(|&o| {
                            let i = (o * stride + offset) as isize - pad as isize;
                            i >= 0 && i < in_len as isize
                        })
                        .collect();
                    assert_eq!(
                        range.collect::<Vec<_>>(),
                        expected,
                        "pad {pad} stride {stride} offset {offset} in {in_len}"
                    );
                }
            }
        }
    }
}

#[test]
fn fast_algorithms_match_naive_on_the_grid() {
    crate::testing::on_every_isa(fast_algorithms_match_naive_on_the_grid_once);
}

/// The check, on the kernels of whichever instruction set is selected.
fn fast_algorithms_match_naive_on_the_grid_once() {
    for (case, spec) in grid().into_iter().enumerate() {
        let geom = Conv2dGeometry::new(spec).unwrap();
        let len = |s: &[usize]| s.iter().product::<usize>();
        let x = uniform(len(&geom.input_shape()), 10 + case as u64);
        let w = uniform(len(&geom.weight_shape()), 20 + case as u64);
        let b = uniform(spec.c_out, 30 + case as u64);
        let d_y = uniform(len(&geom.output_shape()), 40 + case as u64);
        let run = |algo| {
            let mut y = vec![f32::NAN; d_y.len()];
            let mut d_x = vec![f32::NAN; x.len()];
            let mut d_w = vec![f32::NAN; w.len()];
            forward(&geom, algo, &x, &w, Some(&b), &mut y);
            backward_input(&geom, algo, &d_y, &w, &mut d_x);
            backward_weight(&geom, algo, &x, &d_y, &mut d_w);
            (y, d_x, d_w)
        };
        let reference = run(Conv2dAlgo::Naive);
        for algo in Conv2dAlgo::ALL {
            let got = run(algo);
            let what = format!("{} {spec:?}", algo.name());
            assert_close(&got.0, &reference.0, 1e-5, &format!("forward, {what}"));
            assert_close(
                &got.1,
                &reference.1,
                1e-5,
                &format!("backward_input, {what}"),
            );
            assert_close(
                &got.2,
                &reference.2,
                1e-5,
                &format!("backward_weight, {what}"),
            );
            // Both gradients from one call (one gather of d_y per chunk where batched).
            let (mut d_x, mut d_w) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()]);
            backward_input_and_weight(&geom, algo, &x, &d_y, &w, &mut d_x, &mut d_w);
            assert_close(&d_x, &reference.1, 1e-5, &format!("both: d_x, {what}"));
            assert_close(&d_w, &reference.2, 1e-5, &format!("both: d_w, {what}"));
            // The forward with an activation fused in: the activation of the reference.
            let run = |e: Epilogue<'_>, y: &mut [f32]| forward_with(&geom, algo, &x, &w, e, y);
            assert_fused_activation(Activation::Selu, &b, &reference.0, run, &what);
        }
    }
}

#[test]
fn backward_input_is_the_adjoint_of_forward() {
    crate::testing::on_every_isa(backward_input_is_the_adjoint_of_forward_once);
}

/// The check, on the kernels of whichever instruction set is selected.
fn backward_input_is_the_adjoint_of_forward_once() {
    // ⟨conv(x), y⟩ = ⟨x, conv_backward_input(y)⟩ for any x, y: the defining property of
    // the transpose, checked without a bias.
    for (case, spec) in grid().into_iter().enumerate().step_by(5) {
        let geom = Conv2dGeometry::new(spec).unwrap();
        let x = uniform(geom.input_shape().iter().product(), case as u64);
        let w = uniform(geom.weight_shape().iter().product(), 100 + case as u64);
        let y = uniform(geom.output_shape().iter().product(), 200 + case as u64);
        let mut conv_x = vec![0.0; y.len()];
        let mut conv_t_y = vec![0.0; x.len()];
        forward(&geom, Conv2dAlgo::Im2colGemm, &x, &w, None, &mut conv_x);
        backward_input(&geom, Conv2dAlgo::Im2colGemm, &y, &w, &mut conv_t_y);
        let (lhs, rhs) = (dot(&conv_x, &y), dot(&x, &conv_t_y));
        assert!(
            (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
            "{spec:?}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn bias_gradient_sums_each_channel() {
    let spec = Conv2dSpec {
        n: 2,
        c_in: 1,
        h_in: 2,
        w_in: 2,
        c_out: 2,
        kh: 1,
        kw: 1,
        stride: 1,
        pad: 0,
    };
    let geom = Conv2dGeometry::new(spec).unwrap();
    // channel 0 holds 1, 2, 3, 4 then 5, 6, 7, 8 (sum 36); channel 1 holds tens (sum 360).
    let d_y: Vec<f32> = [
        1., 2., 3., 4., 10., 20., 30., 40., 5., 6., 7., 8., 50., 60., 70., 80.,
    ]
    .to_vec();
    let mut d_b = [0.0; 2];
    backward_bias(&geom, &d_y, &mut d_b);
    assert_eq!(d_b, [36.0, 360.0]);
}

mod boundary_tests {
    use super::super::*;

    #[test]
    #[should_panic(
        expected = "conv2d::forward: the output side holds 10 values, the sizes need 12"
    )]
    fn a_wrong_sized_output_is_refused_in_release_builds_too() {
        let spec = Conv2dSpec {
            n: 1,
            c_in: 1,
            h_in: 4,
            w_in: 5,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 1,
            pad: 0,
        };
        let geom = Conv2dGeometry::new(spec).unwrap();
        forward(
            &geom,
            Conv2dAlgo::Im2colGemm,
            &[0.0; 20],
            &[0.0; 4],
            None,
            &mut [0.0; 10],
        );
    }
}
