//! Convolution kernels compared on the default model's real layer shapes.
//!
//! Every `Conv2dAlgo` (naive, direct, im2col + GEMM) runs forward, backward-input and
//! backward-weight of the three encoder convolutions of `conv-selu`, and the three transposed
//! convolutions of its decoder, at a training batch. Throughput is reported in multiply-adds
//! (criterion's "elements"), so the rows compare across layers. Inputs are built outside the
//! timed loop. Run with `cargo bench --bench conv`; add a filter (`cargo bench --bench conv --
//! im2col`) to run a subset.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::conv_transpose2d::{self as convt, ConvTranspose2dGeometry, ConvTranspose2dSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

/// The training batch of `conv-selu`.
const BATCH: usize = 512;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// (name, spec) of the encoder's three convolutions.
fn encoder_layers() -> Vec<(&'static str, Conv2dSpec)> {
    let conv = |c_in, h, c_out, pad| Conv2dSpec {
        n: BATCH,
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kh: 3,
        kw: 3,
        stride: 2,
        pad,
    };
    vec![
        ("enc0 1x28x28->6", conv(1, 28, 6, 1)),
        ("enc1 6x14x14->39", conv(6, 14, 39, 1)),
        ("enc2 39x7x7->72", conv(39, 7, 72, 0)),
    ]
}

/// (name, spec) of the decoder's three transposed convolutions.
fn decoder_layers() -> Vec<(&'static str, ConvTranspose2dSpec)> {
    let t = |c_in, h, c_out, pad, output_padding| ConvTranspose2dSpec {
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
    vec![
        ("dec0 72x3x3->39", t(72, 3, 39, 0, 0)),
        ("dec1 39x7x7->6", t(39, 7, 6, 1, 1)),
        ("dec2 6x14x14->1", t(6, 14, 1, 1, 1)),
    ]
}

fn bench_conv2d(c: &mut Criterion) {
    for (name, spec) in encoder_layers() {
        let geom = Conv2dGeometry::new(spec).expect("valid layer");
        let len = |s: [usize; 4]| s.iter().product::<usize>();
        let (x, w, b) = (
            random(len(geom.input_shape()), 1),
            random(len(geom.weight_shape()), 2),
            random(spec.c_out, 3),
        );
        let d_y = random(len(geom.output_shape()), 4);
        let (mut y, mut d_x, mut d_w) =
            (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        let mut group = c.benchmark_group(format!("conv2d {name}"));
        group.throughput(Throughput::Elements(geom.macs() as u64));
        group.sample_size(10);
        for algo in Conv2dAlgo::ALL {
            group.bench_function(BenchmarkId::new("forward", algo.name()), |bench| {
                bench.iter(|| conv2d::forward(&geom, algo, black_box(&x), &w, Some(&b), &mut y))
            });
            group.bench_function(BenchmarkId::new("backward_input", algo.name()), |bench| {
                bench.iter(|| conv2d::backward_input(&geom, algo, black_box(&d_y), &w, &mut d_x))
            });
            group.bench_function(BenchmarkId::new("backward_weight", algo.name()), |bench| {
                bench.iter(|| conv2d::backward_weight(&geom, algo, black_box(&x), &d_y, &mut d_w))
            });
        }
        group.finish();
    }
}

fn bench_conv_transpose2d(c: &mut Criterion) {
    for (name, spec) in decoder_layers() {
        let geom = ConvTranspose2dGeometry::new(spec).expect("valid layer");
        let len = |s: [usize; 4]| s.iter().product::<usize>();
        let (x, w, b) = (
            random(len(geom.input_shape()), 5),
            random(len(geom.weight_shape()), 6),
            random(spec.c_out, 7),
        );
        let d_y = random(len(geom.output_shape()), 8);
        let (mut y, mut d_x, mut d_w) =
            (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        let mut group = c.benchmark_group(format!("conv_transpose2d {name}"));
        group.throughput(Throughput::Elements(geom.macs() as u64));
        group.sample_size(10);
        for algo in Conv2dAlgo::ALL {
            group.bench_function(BenchmarkId::new("forward", algo.name()), |bench| {
                bench.iter(|| convt::forward(&geom, algo, black_box(&x), &w, Some(&b), &mut y))
            });
            group.bench_function(BenchmarkId::new("backward_input", algo.name()), |bench| {
                bench.iter(|| convt::backward_input(&geom, algo, black_box(&d_y), &w, &mut d_x))
            });
            group.bench_function(BenchmarkId::new("backward_weight", algo.name()), |bench| {
                bench.iter(|| convt::backward_weight(&geom, algo, black_box(&x), &d_y, &mut d_w))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_conv2d, bench_conv_transpose2d);
criterion_main!(benches);
