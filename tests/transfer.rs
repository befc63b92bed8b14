//! The transfer protocol's first steps agree with PyTorch's from the same weights.
//!
//! The fashion report's protocol has two stages: the conv-small autoencoder trained on
//! reconstruction (MSE, Adam 2e-3), then its encoder fine-tuned with a classifier head
//! (cross-entropy, Adam 1e-3). `tests/reference/first_steps.py` ran the first 20 steps of each
//! in PyTorch (float64), from weights set by a rule both languages compute (below), on the
//! first Fashion-MNIST training images in file order, and wrote what it saw into
//! `tests/reference/transfer_first_steps.json`. This test runs the same steps through
//! handgrad's own training step ([`Trainer::step`], the one `train` and `classify` use) and
//! compares every loss, every parameter's first gradient and every parameter afterwards.
//!
//! Agreement here rules out a difference in the layers, the losses, the gradients, Adam (its
//! ε, its bias correction), the learning rates and what the fine-tuning trains; what is left
//! between the two frameworks' accuracies is what differs by chance: initial weights drawn
//! from the same distribution by different generators, and the batch order.

mod common;

use handgrad::autodiff::Graph;
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::models::{Autoencoder, Classifier};
use handgrad::nn::{load_state_dict, state_dict, Module, Name};
use handgrad::train::fit::Trainer;
use handgrad::train::task::{Batch, Task};
use handgrad::train::{RunConfig, TrainSpec};
use handgrad::Result;
use kernels::elementwise::Activation;
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!("reference/transfer_first_steps.json");

/// The rule's value for number `i` of parameter `name` with range ±`bound`: FNV-1a of the
/// name, plus i, through splitmix64, to a uniform number in [0, 1) with 53 bits, to ±bound.
fn rule_value(name: &str, i: u64, bound: f64) -> f32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h.wrapping_add(i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let u = (z >> 11) as f64 / (1u64 << 53) as f64;
    ((2.0 * u - 1.0) * bound) as f32
}

/// Sets every parameter of `model` by the rule, with the bounds and shapes the fixture lists.
fn set_by_rule(model: &mut dyn Module, fixture: &Value) -> Result<()> {
    let table: BTreeMap<&str, &Value> = fixture["parameters"]
        .as_array()
        .expect("a list of parameters")
        .iter()
        .map(|row| (row["name"].as_str().expect("a name"), row))
        .collect();
    let mut weights = BTreeMap::new();
    for (name, value) in state_dict(model) {
        let row = table
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in the fixture"));
        let shape: Vec<usize> = serde_json::from_value(row["shape"].clone()).expect("a shape");
        assert_eq!(value.shape(), shape.as_slice(), "{name}: shapes differ");
        let bound = row["bound"].as_f64().expect("a bound");
        let numbers = (0..value.len() as u64)
            .map(|i| rule_value(&name, i, bound))
            .collect();
        weights.insert(
            name,
            ArrayD::from_shape_vec(shape, numbers).expect("sizes agree"),
        );
    }
    let unused = load_state_dict(model, &weights)?;
    assert!(unused.is_empty(), "{unused:?}");
    Ok(())
}

/// L2 norm and the first four numbers, as the fixture records them.
fn summary(values: ndarray::ArrayViewD<'_, f32>) -> (f64, Vec<f64>) {
    let norm = values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    (norm, values.iter().take(4).map(|&v| f64::from(v)).collect())
}

/// Checks `got` against the fixture's record `want` of a parameter or gradient of `len`
/// numbers: the norm within `rel`, each of the first numbers within `rel` of the typical
/// magnitude (norm/√len), so a number near zero is not held to a relative bound.
fn close(what: &str, got: ndarray::ArrayViewD<'_, f32>, want: &Value, rel: f64) -> f64 {
    let (norm, first) = summary(got.view());
    let want_norm = want["norm"].as_f64().expect("a norm");
    let typical = want_norm / (got.len() as f64).sqrt();
    let mut worst = (norm - want_norm).abs() / want_norm;
    for (k, (a, b)) in first
        .iter()
        .zip(want["first"].as_array().expect("values"))
        .enumerate()
    {
        let b = b.as_f64().expect("a number");
        let off = (a - b).abs() / typical;
        assert!(
            off <= rel,
            "{what}[{k}] = {a}, PyTorch {b} (off by {off:.2e} of the typical size {typical:.3e})"
        );
        worst = worst.max(off);
    }
    assert!(
        (norm - want_norm).abs() <= rel * want_norm,
        "{what}: norm {norm}, PyTorch {want_norm}"
    );
    worst
}

/// One stage: the first gradient, then `steps` training steps, checked against `want`.
/// Returns the largest relative difference seen in the losses.
fn replay<M: Task>(
    model: M,
    spec: TrainSpec,
    set: &handgrad::data::mnist::ImageSet,
    want: &Value,
    fixture: &Value,
) -> Result<f64> {
    let batch_size = fixture["batch_size"].as_u64().expect("a batch size") as usize;
    let steps = fixture["steps"].as_u64().expect("steps") as usize;
    let want_lr = want["lr"].as_f64().expect("a learning rate");
    assert_eq!(spec.lr, want_lr as f32, "the stage's learning rate");
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = model;

    // The first step's gradient, on a tape of its own.
    let indices: Vec<usize> = (0..batch_size).collect();
    let mut pixels = vec![0.0; batch_size * 28 * 28];
    set.fill_batch(&indices, &mut pixels);
    let mut g = Graph::new();
    let pixels = ArrayD::from_shape_vec(vec![batch_size, 1, 28, 28], pixels).expect("sizes agree");
    let images = g.constant_owned(pixels);
    let labels = &set.labels[..batch_size];
    let batch = Batch {
        input: images,
        target: images,
        labels,
    };
    let (loss, _) = model.loss(&mut g, &batch, &spec, true, &mut rng)?;
    g.backward(loss)?;
    let mut checked = 0;
    model.visit(&mut Name::default(), &mut |name, p| {
        let grad = g
            .param_grad(p.id())
            .expect("every parameter has a gradient");
        close(
            &format!("first gradient of {name}"),
            grad.view(),
            &want["first_gradients"][name],
            1e-4,
        );
        checked += 1;
    });
    assert_eq!(
        checked,
        want["first_gradients"].as_object().map_or(0, |o| o.len())
    );

    // The steps, in file order, through the trainer's own step.
    let mut trainer = Trainer::new(model, spec)?;
    let mut worst_loss = 0.0f64;
    for (step, want_loss) in want["losses"]
        .as_array()
        .expect("losses")
        .iter()
        .enumerate()
    {
        let indices: Vec<usize> = (step * batch_size..(step + 1) * batch_size).collect();
        let (got, _) = trainer.step(set, &indices, &mut rng)?;
        let want_loss = want_loss.as_f64().expect("a loss");
        let off = (got - want_loss).abs() / want_loss;
        assert!(
            off <= 2e-4,
            "step {step}: loss {got}, PyTorch {want_loss} (relative difference {off:.2e})"
        );
        worst_loss = worst_loss.max(off);
    }
    assert_eq!(want["losses"].as_array().map(Vec::len), Some(steps));
    let mut worst_weight = 0.0f64;
    trainer.model.visit(&mut Name::default(), &mut |name, p| {
        worst_weight = worst_weight.max(close(
            &format!("{name} after {steps} steps"),
            p.value.view(),
            &want["after"][name],
            1e-3,
        ));
    });
    eprintln!(
        "{} steps: losses within {worst_loss:.1e}, weights within {worst_weight:.1e} (relative)",
        steps
    );
    Ok(worst_loss)
}

#[test]
fn both_stages_follow_pytorch_step_by_step_from_the_same_weights() -> Result<()> {
    if !common::fashion_mnist() {
        return Ok(());
    }
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let data = Dataset::find("fashion-mnist", &Lookup::default())?;
    let train = data
        .train
        .as_ref()
        .expect("Fashion-MNIST has training images");
    let config = RunConfig::preset("conv-small")?;
    let mut rng = StdRng::seed_from_u64(0);

    // Stage 1: the autoencoder, with the preset's own training settings.
    let mut autoencoder = Autoencoder::new(&config.model, &mut rng)?;
    set_by_rule(&mut autoencoder, &fixture)?;
    assert_eq!(config.train.lr, 2e-3);
    replay(
        autoencoder,
        config.train.clone(),
        train,
        &fixture["stage1"],
        &fixture,
    )?;

    // Stage 2: a fresh encoder of the same architecture under the head classify builds,
    // encoder and head trained together (what --finetune does), at classify's rate.
    let encoder = Autoencoder::new(&config.model, &mut rng)?.encoder;
    let mut classifier = Classifier::new(
        Some((encoder, 20, false)),
        20,
        &[128],
        Activation::Relu,
        10,
        &mut rng,
    )?;
    set_by_rule(&mut classifier, &fixture)?;
    let spec = TrainSpec {
        lr: 1e-3,
        ..config.train
    };
    replay(classifier, spec, train, &fixture["stage2"], &fixture)?;
    Ok(())
}
