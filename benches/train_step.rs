//! One full training step — forward, loss, backward, Adam update, tape reset — of the two
//! reference models, in images per second (criterion's "elements"):
//! `conv-selu` at batch 512 and the 784-392-8-392-784 MLP (`mlp4`) at batch 2048, on random
//! images in [0, 1]. Run with `cargo bench --bench train_step`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use handgrad::autodiff::{Graph, Reduction};
use handgrad::models::Autoencoder;
use handgrad::nn::Module;
use handgrad::optim::{Adam, Optimizer};
use handgrad::train::RunConfig;
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn bench_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train step");
    group.sample_size(20);
    for (preset, batch) in [("conv-selu", 512), ("mlp4", 2048)] {
        let cfg = RunConfig::preset(preset).expect("preset");
        let mut rng = StdRng::seed_from_u64(1);
        let mut model = Autoencoder::new(&cfg.model, &mut rng).expect("model");
        let mut opt = Adam::new(cfg.train.lr).expect("adam");
        let x = ArrayD::from_shape_simple_fn(IxDyn(&[batch, 1, 28, 28]), || {
            rng.random_range(0.0f32..1.0)
        });
        let mut g = Graph::new();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("{preset} batch {batch}"), |b| {
            b.iter(|| {
                g.reset();
                let xv = g.constant_view(x.view());
                let y = model.forward(&mut g, xv).expect("forward");
                let loss = g.mse(y, xv, Reduction::Mean).expect("loss");
                g.backward(loss).expect("backward");
                opt.step(&mut model, &mut g);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
