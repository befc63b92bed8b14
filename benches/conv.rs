//! Convolution kernels compared on the default model's real layer shapes.
//!
//! Every `Conv2dAlgo` (naive, direct, im2col + GEMM) runs forward, backward-input and
//! backward-weight of the three encoder convolutions of `conv-selu`, and the three transposed
//! convolutions of its decoder, at the training batch of 512. Throughput is reported in
//! multiply-adds (criterion's "elements"), so the rows compare across layers. Inputs are built
//! outside the timed loop. Run with `cargo bench --bench conv`; add a filter
//! (`cargo bench --bench conv -- im2col`) to run a subset.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::conv2d::{self, Conv2dAlgo, Conv2dGeometry, Conv2dSpec};
use kernels::conv_transpose2d::{self, ConvTranspose2dSpec};
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

/// One pass of a layer: (algorithm, first operand, second operand, result).
type Pass = Box<dyn Fn(Conv2dAlgo, &[f32], &[f32], &mut [f32])>;

/// A layer to time: its (input, weight, output) shapes, forward multiply-adds, and its three
/// passes: forward (x, w → y, with a bias of 0.1), backward-input (d_y, w → d_x) and
/// backward-weight (x, d_y → d_w).
struct Layer {
    shapes: [[usize; 4]; 3],
    macs: usize,
    passes: [(&'static str, Pass); 3],
}

fn conv_layer(g: Conv2dGeometry) -> Layer {
    let b = vec![0.1; g.spec().c_out];
    Layer {
        shapes: [g.input_shape(), g.weight_shape(), g.output_shape()],
        macs: g.macs(),
        passes: [
            (
                "forward",
                Box::new(move |algo, x, w, y| conv2d::forward(&g, algo, x, w, Some(&b), y)),
            ),
            (
                "backward_input",
                Box::new(move |algo, d_y, w, d_x| conv2d::backward_input(&g, algo, d_y, w, d_x)),
            ),
            (
                "backward_weight",
                Box::new(move |algo, x, d_y, d_w| conv2d::backward_weight(&g, algo, x, d_y, d_w)),
            ),
        ],
    }
}

/// A transposed convolution, by the geometry of its adjoint convolution.
fn transposed_layer(adj: Conv2dGeometry) -> Layer {
    let b = vec![0.1; adj.spec().c_in];
    Layer {
        shapes: [adj.output_shape(), adj.weight_shape(), adj.input_shape()],
        macs: adj.macs(),
        passes: [
            (
                "forward",
                Box::new(move |algo, x, w, y| {
                    conv_transpose2d::forward(&adj, algo, x, w, Some(&b), y)
                }),
            ),
            (
                "backward_input",
                Box::new(move |algo, d_y, w, d_x| {
                    conv_transpose2d::backward_input(&adj, algo, d_y, w, d_x)
                }),
            ),
            (
                "backward_weight",
                Box::new(move |algo, x, d_y, d_w| {
                    conv_transpose2d::backward_weight(&adj, algo, x, d_y, d_w)
                }),
            ),
        ],
    }
}

/// Forward, backward-input and backward-weight of one layer with every algorithm.
fn bench_layer(c: &mut Criterion, name: &str, layer: Layer) {
    let [x_shape, w_shape, y_shape] = layer.shapes;
    let (x, w, d_y) = (random(x_shape, 1), random(w_shape, 2), random(y_shape, 3));
    let (mut y, mut d_x, mut d_w) = (vec![0.0; d_y.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
    // Each pass's two operands and its result.
    let [forward, backward_input, backward_weight] = &layer.passes;
    let runs = [
        (forward, &x[..], &w[..], &mut y),
        (backward_input, &d_y, &w, &mut d_x),
        (backward_weight, &x, &d_y, &mut d_w),
    ];
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(layer.macs as u64));
    group.sample_size(10);
    for ((pass_name, pass), first, second, out) in runs {
        for algo in Conv2dAlgo::ALL {
            group.bench_function(BenchmarkId::new(*pass_name, algo.name()), |bench| {
                bench.iter(|| pass(algo, black_box(first), second, out))
            });
        }
    }
    group.finish();
}

fn bench_model_layers(c: &mut Criterion) {
    let conv = |c_in, h, c_out, pad| {
        let g = Conv2dGeometry::new(Conv2dSpec {
            n: BATCH,
            c_in,
            h_in: h,
            w_in: h,
            c_out,
            kh: 3,
            kw: 3,
            stride: 2,
            pad,
        });
        conv_layer(g.expect("valid layer"))
    };
    bench_layer(c, "conv2d enc0 1x28x28->6", conv(1, 28, 6, 1));
    bench_layer(c, "conv2d enc1 6x14x14->39", conv(6, 14, 39, 1));
    bench_layer(c, "conv2d enc2 39x7x7->72", conv(39, 7, 72, 0));
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
        transposed_layer(conv_transpose2d::adjoint(spec).expect("valid layer"))
    };
    bench_layer(
        c,
        "conv_transpose2d dec0 72x3x3->39",
        deconv(72, 3, 39, 0, 0),
    );
    bench_layer(c, "conv_transpose2d dec1 39x7x7->6", deconv(39, 7, 6, 1, 1));
    bench_layer(
        c,
        "conv_transpose2d dec2 6x14x14->1",
        deconv(6, 14, 1, 1, 1),
    );
}

criterion_group!(benches, bench_model_layers);
criterion_main!(benches);
