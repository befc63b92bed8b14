//! Matrix products: our packed GEMM against `matrixmultiply`, and the automatic choice between
//! them, on the shapes the models produce and on 512³. Throughput is in multiply-adds
//! (criterion's "elements"). Run with `cargo bench --bench gemm`.
//!
//! The shapes: conv-selu's per-image convolution products (forward of its first two
//! convolutions, the weight gradient of its third), the batched product of its third
//! convolution over 512 images, and mlp4's first layer at batch 2048.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::gemm::{gemm_using, GemmImpl, MatRef};
use std::hint::black_box;

fn bench_shapes(c: &mut Criterion) {
    let shapes: [(&str, usize, usize, usize); 7] = [
        ("conv1 per image 6x9x196", 6, 9, 196),
        ("conv2 chunk of 11 images 39x54x539", 39, 54, 539),
        ("conv3 weight grad per image 72x9x351", 72, 9, 351),
        ("conv3 chunk of 57 images 72x351x513", 72, 351, 513),
        ("conv-selu linear 1 512x648x145", 512, 648, 145),
        ("mlp4 layer 1 2048x784x392", 2048, 784, 392),
        ("cube 512x512x512", 512, 512, 512),
    ];
    for (name, m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut out = vec![0.0f32; m * n];
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((m * k * n) as u64));
        group.sample_size(20);
        for imp in [GemmImpl::Packed, GemmImpl::MatrixMultiply, GemmImpl::Auto] {
            group.bench_function(BenchmarkId::from_parameter(format!("{imp:?}")), |bench| {
                bench.iter(|| {
                    gemm_using(
                        imp,
                        1.0,
                        MatRef::row_major(black_box(&a), m, k),
                        MatRef::row_major(&b, k, n),
                        0.0,
                        &mut out,
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_shapes);
criterion_main!(benches);
