//! Matrix products: our packed GEMM against `matrixmultiply`, and the automatic choice between
//! them, on the shapes the models produce and on 512³. Throughput is in multiply-adds
//! (criterion's "elements"). Run with `cargo bench --bench gemm`.
//!
//! The shapes: conv-selu's per-image convolution products (forward of its first two
//! convolutions, the weight gradient of its third), the batched product of its third
//! convolution over 512 images, mlp4's first layer at batch 2048, and the same layer's
//! forward x·wᵀ at batch 32 and 128, where B = wᵀ is a transposed view (a linear layer's
//! weight is stored out × in).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::gemm::{gemm_using, GemmImpl, MatRef};
use std::hint::black_box;

fn bench_shapes(c: &mut Criterion) {
    // (name, m, k, n, whether B is the transposed view of a row-major n × k matrix)
    let shapes: [(&str, usize, usize, usize, bool); 9] = [
        ("conv1 per image 6x9x196", 6, 9, 196, false),
        ("conv2 chunk of 11 images 39x54x539", 39, 54, 539, false),
        ("conv3 weight grad per image 72x9x351", 72, 9, 351, false),
        ("conv3 chunk of 57 images 72x351x513", 72, 351, 513, false),
        ("conv-selu linear 1 512x648x145", 512, 648, 145, false),
        ("mlp4 layer 1 2048x784x392", 2048, 784, 392, false),
        (
            "mlp4 layer 1 forward at batch 32 32x784x392 (B transposed)",
            32,
            784,
            392,
            true,
        ),
        (
            "mlp4 layer 1 forward at batch 128 128x784x392 (B transposed)",
            128,
            784,
            392,
            true,
        ),
        ("cube 512x512x512", 512, 512, 512, false),
    ];
    for (name, m, k, n, b_transposed) in shapes {
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
                        if b_transposed {
                            MatRef::row_major(&b, n, k).t()
                        } else {
                            MatRef::row_major(&b, k, n)
                        },
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
