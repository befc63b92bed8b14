//! Element-wise activations: does the loop vectorise? Each activation's forward and backward
//! on a batch of conv-selu's first feature map (512 × 6 × 14 × 14 ≈ 600k values), in elements
//! per second, beside a plain copy as the memory-bandwidth ceiling. A vectorised activation
//! runs within a small factor of the copy; a scalar `expf` call per element would be many
//! times slower. Run with `cargo bench --bench elementwise`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::elementwise::{self, Activation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

fn bench_activations(c: &mut Criterion) {
    let len = 512 * 6 * 14 * 14;
    let mut rng = StdRng::seed_from_u64(1);
    let x: Vec<f32> = (0..len).map(|_| rng.random_range(-4.0..4.0)).collect();
    let d_y: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (mut y, mut d_x) = (vec![0.0; len], vec![0.0; len]);
    let mut group = c.benchmark_group("activation");
    group.throughput(Throughput::Elements(len as u64));
    group.bench_function("copy (ceiling)", |b| {
        b.iter(|| y.copy_from_slice(black_box(&x)))
    });
    for act in Activation::ALL {
        group.bench_function(BenchmarkId::new("forward", act.name()), |b| {
            b.iter(|| elementwise::forward(act, black_box(&x), &mut y))
        });
        group.bench_function(BenchmarkId::new("backward", act.name()), |b| {
            b.iter(|| elementwise::backward(act, black_box(&x), &y, &d_y, &mut d_x))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_activations);
criterion_main!(benches);
