//! Convolution kernels compared on the default model's real layer shapes.
//!
//! Every `Conv2dAlgo` (naive, direct, im2col + GEMM) runs forward, backward-input and
//! backward-weight of the three encoder convolutions of `conv-selu`, and the three transposed
//! convolutions of its decoder, at the training batch of 512. Throughput is reported in
//! multiply-adds (criterion's "elements"), so the rows compare across layers. Inputs are built
//! outside the timed loop. Run with `cargo bench --bench conv`; add a filter
//! (`cargo bench --bench conv -- im2col`) to run a subset.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::conv2d::{Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::conv_like::ConvLike;
use kernels::conv_transpose2d::{ConvTranspose2dGeometry, ConvTranspose2dSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

/// The training batch of `conv-selu`.
const BATCH: usize = 512;

fn random(shape: [usize; 4], seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect()
}

/// Forward, backward-input and backward-weight of one layer with every algorithm.
fn bench_layer<G: ConvLike>(c: &mut Criterion, name: &str, geom: G) {
    let (x, w, d_y) = (
        random(geom.input_shape(), 1),
        random(geom.weight_shape(), 2),
        random(geom.output_shape(), 3),
    );
    let b = vec![0.1; geom.bias_shape()[0]];
    let (mut y, mut d_x, mut d_w) = (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
    let mut group = c.benchmark_group(format!("{} {name}", G::OP));
    group.throughput(Throughput::Elements(geom.macs() as u64));
    group.sample_size(10);
    for algo in Conv2dAlgo::ALL {
        group.bench_function(BenchmarkId::new("forward", algo.name()), |bench| {
            bench.iter(|| geom.forward(algo, black_box(&x), &w, Some(&b), &mut y))
        });
        group.bench_function(BenchmarkId::new("backward_input", algo.name()), |bench| {
            bench.iter(|| geom.backward_input(algo, black_box(&d_y), &w, &mut d_x))
        });
        group.bench_function(BenchmarkId::new("backward_weight", algo.name()), |bench| {
            bench.iter(|| geom.backward_weight(algo, black_box(&x), &d_y, &mut d_w))
        });
    }
    group.finish();
}

fn bench_model_layers(c: &mut Criterion) {
    let conv = |c_in, h, c_out, pad| {
        Conv2dGeometry::new(Conv2dSpec {
            n: BATCH,
            c_in,
            h_in: h,
            w_in: h,
            c_out,
            kh: 3,
            kw: 3,
            stride: 2,
            pad,
        })
        .expect("valid layer")
    };
    bench_layer(c, "enc0 1x28x28->6", conv(1, 28, 6, 1));
    bench_layer(c, "enc1 6x14x14->39", conv(6, 14, 39, 1));
    bench_layer(c, "enc2 39x7x7->72", conv(39, 7, 72, 0));
    let deconv = |c_in, h, c_out, pad, output_padding| {
        let spec = ConvTranspose2dSpec {
            n: BATCH,
            c_in,
            h_in: h,
            w_in: h,
            c_out,
            kh: 3,
            kw: 3,
            stride: 2,
            pad,
            output_padding,
        };
        ConvTranspose2dGeometry::new(spec).expect("valid layer")
    };
    bench_layer(c, "dec0 72x3x3->39", deconv(72, 3, 39, 0, 0));
    bench_layer(c, "dec1 39x7x7->6", deconv(39, 7, 6, 1, 1));
    bench_layer(c, "dec2 6x14x14->1", deconv(6, 14, 1, 1, 1));
}

criterion_group!(benches, bench_model_layers);
criterion_main!(benches);
