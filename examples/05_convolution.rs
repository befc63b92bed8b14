//! Chapter 05, convolution three ways: as the nested loops of its definition, as im2col (the
//! receptive fields laid out as columns of a matrix) followed by one matrix product, and as the
//! library's kernels — and all of them equal.
//!
//! Run with `cargo run --release --example 05_convolution`.

use kernels::conv2d::im2col::im2col;
use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::gemm::{gemm, MatRef};

/// The definition: y[co][oh][ow] = b[co] + Σ_{ci,i,j} x[ci][oh·s − p + i][ow·s − p + j] · w[co][ci][i][j],
/// with x read as 0 outside the image (the padding). One image.
fn conv_by_loops(spec: &Conv2dSpec, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let oh_n = (spec.h_in + 2 * spec.pad - spec.kh) / spec.stride + 1;
    let ow_n = (spec.w_in + 2 * spec.pad - spec.kw) / spec.stride + 1;
    let mut y = vec![0.0; spec.c_out * oh_n * ow_n];
    for co in 0..spec.c_out {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                let mut acc = b[co];
                for ci in 0..spec.c_in {
                    for i in 0..spec.kh {
                        for j in 0..spec.kw {
                            // The input pixel under tap (i, j); skip it if it is padding.
                            let ih = (oh * spec.stride + i) as isize - spec.pad as isize;
                            let iw = (ow * spec.stride + j) as isize - spec.pad as isize;
                            if ih < 0
                                || iw < 0
                                || ih >= spec.h_in as isize
                                || iw >= spec.w_in as isize
                            {
                                continue;
                            }
                            let xv = x[(ci * spec.h_in + ih as usize) * spec.w_in + iw as usize];
                            let wv = w[((co * spec.c_in + ci) * spec.kh + i) * spec.kw + j];
                            acc += xv * wv;
                        }
                    }
                }
                y[(co * oh_n + oh) * ow_n + ow] = acc;
            }
        }
    }
    y
}

fn main() {
    // One 5×5 image with values 1..25, two 3×3 filters, stride 2, padding 1: output 2×3×3.
    let spec = Conv2dSpec {
        n: 1,
        c_in: 1,
        h_in: 5,
        w_in: 5,
        c_out: 2,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    };
    let geom = Conv2dGeometry::new(spec).expect("a valid geometry");
    let x: Vec<f32> = (1..=25).map(|v| v as f32).collect();
    // Filter 0 averages its window; filter 1 takes the centre minus the left neighbour.
    let mut w = vec![1.0 / 9.0; 9];
    w.extend([0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let b = [0.0, 0.5];

    let by_loops = conv_by_loops(&spec, &x, &w, &b);

    // im2col: one column per output position, one row per (channel, tap): K × P.
    let (k, p) = (geom.patch_len(), geom.h_out() * geom.w_out());
    let mut cols = vec![0.0; k * p];
    im2col(&geom, &x, &mut cols);
    println!(
        "im2col of the 5×5 image: {k} rows (the 3×3 taps) × {p} columns (the output positions)"
    );
    for row in cols.chunks(p) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:>3}")).collect();
        println!("  {}", cells.join(" "));
    }
    // Then the whole convolution is one product: W (C_out × K) · cols (K × P), plus the bias.
    let mut by_gemm: Vec<f32> = b
        .iter()
        .flat_map(|&bias| std::iter::repeat_n(bias, p))
        .collect();
    gemm(
        1.0,
        MatRef::row_major(&w, spec.c_out, k),
        MatRef::row_major(&cols, k, p),
        1.0,
        &mut by_gemm,
    );

    let mut by_kernel = vec![0.0; by_loops.len()];
    println!("output channel 0 (averages), then 1 (centre − left):");
    for (name, values) in [("loops", &by_loops), ("im2col + GEMM", &by_gemm)] {
        let rounded: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        println!("  {name:<14} {}", rounded.join(" "));
    }
    for algo in Conv2dAlgo::ALL {
        conv2d::forward(&geom, algo, &x, &w, Some(&b), &mut by_kernel);
        let worst = by_kernel
            .iter()
            .zip(&by_loops)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "  the library's {:<13} differs from the loops by at most {worst:.1e}",
            algo.name()
        );
        assert!(worst < 1e-5);
    }
    let worst = by_gemm
        .iter()
        .zip(&by_loops)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "im2col + GEMM differs by {worst}");
    println!("all equal: a convolution is a matrix product in disguise");
}
