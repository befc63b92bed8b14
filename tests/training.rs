//! Training end to end on real images: the loss beats the trivial baseline, checkpoints round
//! trip exactly, a resumed run equals an uninterrupted one (denoising VAEs included, whose
//! steps draw random numbers), a diverging loss stops cleanly and says where, and run folders
//! are never overwritten.

mod common;

use handgrad::data::batches::{split, Amount, SplitSpec};
use handgrad::data::mnist::{Dataset, ImageSet, Lookup};
use handgrad::data::Splits;
use handgrad::experiments::train::train_new;
use handgrad::experiments::RunOptions;
use handgrad::fs::write_atomic;
use handgrad::models::{Autoencoder, ConvLayer};
use handgrad::nn::{state_dict, Module, Name};
use handgrad::train::checkpoint::{self, Tensors};
use handgrad::train::config::Schedule;
use handgrad::train::fit::{BatchProgress, EpochMetrics};
use handgrad::train::run_dir::{checkpoint_bytes, load_run, new_trainer, resume_trainer};
use handgrad::train::{evaluate, Hooks, Outcome, PlateauSpec, RunConfig, Silent, Trainer};
use handgrad::{Error, Result};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn small_config(dataset: &str, samples: usize, batch: usize, epochs: usize) -> RunConfig {
    let mut cfg = RunConfig::preset("conv-selu").expect("preset");
    cfg.dataset = dataset.into();
    cfg.train.epochs = epochs;
    cfg.train.batch_size = batch;
    cfg.train.seed = 11;
    cfg.train.snapshot_epochs = vec![];
    cfg.split = SplitSpec {
        validation: Amount::Fraction(0.1),
        test: None,
        classes: vec![],
        max_samples: Some(samples),
        seed: 11,
    };
    cfg
}

fn splits_for(cfg: &RunConfig) -> Result<Splits> {
    let ds = Dataset::find(&cfg.dataset, &Lookup::default())?;
    split(&ds, &cfg.split)
}

/// MSE of predicting the training set's mean image for every test image.
pub fn mean_image_loss(train: &ImageSet, test: &ImageSet) -> f64 {
    let px = train.rows * train.cols;
    let mut mean = vec![0.0f64; px];
    for img in train.images.chunks(px) {
        for (m, &p) in mean.iter_mut().zip(img) {
            *m += p as f64 / 255.0 / train.len() as f64;
        }
    }
    let total: f64 = test
        .images
        .chunks(px)
        .map(|img| {
            img.iter()
                .zip(&mean)
                .map(|(&p, m)| (p as f64 / 255.0 - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    total / (test.len() * px) as f64
}

fn learns(dataset: &str) -> Result<()> {
    let cfg = small_config(dataset, 3000, 32, 2);
    let data = splits_for(&cfg)?;
    let mut trainer = new_trainer(&cfg)?;
    assert_eq!(
        trainer.fit(&data.train, &data.val, &mut ())?,
        Outcome::Completed
    );
    let test = evaluate(&mut trainer.model, &data.test, &cfg.train, None)?.loss;
    let baseline = mean_image_loss(&data.train, &data.test);
    assert!(
        test < 0.75 * baseline,
        "{dataset}: test loss {test:.5} is not well below the mean image's {baseline:.5}"
    );
    let h = &trainer.state.history;
    assert!(h[1].train_loss < h[0].train_loss, "{h:?}");
    Ok(())
}

#[test]
fn conv_selu_learns_mnist_well_below_the_mean_image() -> Result<()> {
    learns("mnist")
}

#[test]
fn conv_selu_learns_fashion_mnist_well_below_the_mean_image() -> Result<()> {
    if !common::fashion_mnist() {
        return Ok(());
    }
    learns("fashion-mnist")
}

/// Interrupts after `after` batches in total, saving the checkpoint to `path`.
struct InterruptAfter {
    after: usize,
    seen: usize,
    path: PathBuf,
    cfg: RunConfig,
}

impl Hooks<Autoencoder> for InterruptAfter {
    fn on_batch(&mut self, _p: &BatchProgress) {
        self.seen += 1;
    }
    fn interrupted(&self) -> bool {
        self.seen >= self.after
    }
    fn on_interrupt(&mut self, trainer: &Trainer<Autoencoder>) -> Result<()> {
        write_atomic(
            &self.path,
            &checkpoint_bytes(trainer, &self.cfg, &Tensors::new())?,
        )
    }
}

type Row = (usize, f64, f64, Vec<f64>, Vec<f64>, f64);

fn without_seconds(h: &[EpochMetrics]) -> Vec<Row> {
    h.iter()
        .map(|m| {
            (
                m.epoch,
                m.train_loss,
                m.val_loss,
                m.train_terms.clone(),
                m.val_terms.clone(),
                m.lr,
            )
        })
        .collect()
}

/// Trains `cfg` straight through, then interrupted (mid-epoch 1, and at the end of epoch 2)
/// and resumed from the checkpoint; the weights, history and optimiser state must be equal.
fn resuming_changes_nothing(cfg: RunConfig, name: &str) -> Result<()> {
    let data = splits_for(&cfg)?;
    let mut straight = new_trainer(&cfg)?;
    straight.fit(&data.train, &data.val, &mut ())?;
    let batches = data.train.len().div_ceil(cfg.train.batch_size);

    let dir = temp_dir(name);
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    for (stop_after, expect_epoch, expect_batch) in [(4, 0, 4), (2 * batches, 2, 0)] {
        let path = dir.join(format!("ckpt-{stop_after}.safetensors"));
        let mut first = new_trainer(&cfg)?;
        let mut hooks = InterruptAfter {
            after: stop_after,
            seen: 0,
            path: path.clone(),
            cfg: cfg.clone(),
        };
        assert_eq!(
            first.fit(&data.train, &data.val, &mut hooks)?,
            Outcome::Interrupted
        );
        let (_, mut resumed, _) = resume_trainer(&path)?;
        assert_eq!(
            (resumed.state.epoch, resumed.state.batch),
            (expect_epoch, expect_batch)
        );
        assert_eq!(
            resumed.fit(&data.train, &data.val, &mut ())?,
            Outcome::Completed
        );
        assert_eq!(
            state_dict(&resumed.model),
            state_dict(&straight.model),
            "{name}: weights differ after resuming at {stop_after}"
        );
        assert_eq!(
            without_seconds(&resumed.state.history),
            without_seconds(&straight.state.history)
        );
        assert_eq!(resumed.opt.state(), straight.opt.state());
    }
    Ok(())
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() -> Result<()> {
    let mut cfg = small_config("mnist", 600, 64, 3);
    cfg.train.plateau = Some(PlateauSpec {
        factor: 0.5,
        patience: 0,
    });
    resuming_changes_nothing(cfg, "resume")
}

#[test]
fn a_resumed_denoising_vae_equals_an_uninterrupted_one() -> Result<()> {
    // Every step draws noise for its inputs and ε for its codes: resuming must replay both.
    let mut cfg = small_config("mnist", 600, 64, 3);
    cfg.model = RunConfig::preset("mlp3-16")?.model;
    cfg.model.variational = true;
    cfg.model.code_activation = None;
    cfg.train.corrupt = Some("gaussian:0.3+occlusion:6".parse()?);
    resuming_changes_nothing(cfg, "resume-vae")
}

#[test]
fn a_resumed_pooled_model_with_dropout_and_a_cosine_schedule_equals_an_uninterrupted_one(
) -> Result<()> {
    // Dropout draws masks every step and the schedule sets each epoch's rate: both must
    // replay, and the dropout must actually act (the same run without it trains otherwise).
    let mut cfg = small_config("mnist", 600, 64, 3);
    cfg.model.conv = vec![ConvLayer::parse("4:3:1:1")?, ConvLayer::parse("4:3:1:1")?];
    cfg.model.hidden = vec![32];
    cfg.model.pool = true;
    cfg.model.dropout = 0.3;
    cfg.train.schedule = Some(Schedule::Cosine {
        period: 3,
        min_lr: 0.0,
    });
    let data = splits_for(&cfg)?;
    let mut with = new_trainer(&cfg)?;
    with.fit(&data.train, &data.val, &mut ())?;
    let rates: Vec<f64> = with.state.history.iter().map(|m| m.lr).collect();
    let lr = cfg.train.lr as f64;
    assert_eq!(rates.len(), 3);
    assert_eq!(rates[0], lr);
    assert!(
        (rates[1] - lr * 0.75).abs() < 1e-9 && (rates[2] - lr * 0.25).abs() < 1e-9,
        "{rates:?}"
    );
    let mut without_cfg = cfg.clone();
    without_cfg.model.dropout = 0.0;
    let mut without = new_trainer(&without_cfg)?;
    without.fit(&data.train, &data.val, &mut ())?;
    assert_ne!(
        with.state.history[0].train_loss,
        without.state.history[0].train_loss
    );
    resuming_changes_nothing(cfg, "resume-pool-dropout")
}

#[test]
fn a_checkpoint_round_trips_exactly() -> Result<()> {
    let cfg = small_config("mnist", 300, 64, 1);
    let data = splits_for(&cfg)?;
    let dir = temp_dir("roundtrip");
    let report = train_new(cfg.clone(), &dir, &RunOptions::default(), &mut Silent)?;
    assert_eq!(report.outcome, Outcome::Completed);
    let (_, mut a) = load_run(&dir)?;
    let (_, mut b) = load_run(&dir)?;
    let mut pixels = Vec::new();
    data.test
        .batch_into(&(0..8).collect::<Vec<_>>(), &mut pixels);
    assert_eq!(a.reconstruct(&pixels)?, b.reconstruct(&pixels)?);
    // And the loaded model is the trained one: same test loss as the report.
    let loss = evaluate(&mut a, &data.test, &cfg.train, None)?.loss;
    assert_eq!(Some(loss), report.test.map(|t| t.loss));
    for file in [
        "config.json",
        "metrics.csv",
        "loss.png",
        "model.safetensors",
        "checkpoint.safetensors",
        "reconstructions.png",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
        assert!(
            report.outputs.iter().any(|o| o == file),
            "{file} not reported"
        );
    }
    assert!(dir.join("reconstructions/epoch_001.png").is_file());
    Ok(())
}

/// Saves a checkpoint after epoch 1 like a run folder does, then poisons a weight.
struct PoisonAfterFirstEpoch(PathBuf, RunConfig);

impl Hooks<Autoencoder> for PoisonAfterFirstEpoch {
    fn on_epoch(&mut self, trainer: &mut Trainer<Autoencoder>, _m: &EpochMetrics) -> Result<()> {
        write_atomic(
            &self.0,
            &checkpoint_bytes(trainer, &self.1, &Tensors::new())?,
        )?;
        trainer
            .model
            .visit_mut(&mut Name::default(), &mut |name, p| {
                if name == "decoder.13.bias" {
                    p.value.fill(f32::NAN);
                }
            });
        Ok(())
    }
}

#[test]
fn a_nan_loss_stops_training_names_where_it_began_and_keeps_the_last_good_checkpoint() -> Result<()>
{
    let cfg = small_config("mnist", 300, 64, 3);
    let data = splits_for(&cfg)?;
    let dir = temp_dir("nan");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let path = dir.join("checkpoint.safetensors");
    let mut trainer = new_trainer(&cfg)?;
    let err = trainer
        .fit(
            &data.train,
            &data.val,
            &mut PoisonAfterFirstEpoch(path.clone(), cfg),
        )
        .expect_err("NaN weights give a NaN loss");
    assert!(
        matches!(
            err,
            Error::NonFinite {
                what: "loss",
                epoch: 2,
                batch: 1,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("epoch 2, batch 1"), "{text}");
    assert!(text.contains("a parameter of layer decoder.13"), "{text}");
    let (_, good, _) = resume_trainer(&path)?;
    assert_eq!(good.state.epoch, 1);
    assert!(state_dict(&good.model)
        .values()
        .all(|t| t.iter().all(|v| v.is_finite())));
    Ok(())
}

#[test]
fn an_existing_run_folder_is_never_overwritten() -> Result<()> {
    let dir = temp_dir("existing");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    std::fs::write(dir.join("notes.txt"), "keep me").map_err(Error::io(&dir))?;
    let err = train_new(
        small_config("mnist", 100, 50, 1),
        &dir,
        &RunOptions::default(),
        &mut Silent,
    )
    .expect_err("folder in use");
    assert!(
        err.to_string().contains("already exists") && err.to_string().contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).map_err(Error::io(&dir))?,
        "keep me"
    );
    Ok(())
}

#[test]
fn an_unwritable_output_folder_is_a_clear_error() {
    let file = temp_dir("blocker");
    std::fs::write(&file, "a file, not a folder").expect("write");
    let out = Path::new(&file).join("run");
    let err = train_new(
        small_config("mnist", 100, 50, 1),
        &out,
        &RunOptions::default(),
        &mut Silent,
    )
    .expect_err("cannot create");
    assert!(
        matches!(&err, Error::Io { path, .. } if path.starts_with(&file)),
        "{err}"
    );
}

#[test]
fn a_checkpoint_whose_optimiser_state_does_not_fit_is_refused() -> Result<()> {
    let cfg = small_config("mnist", 200, 50, 2);
    let data = splits_for(&cfg)?;
    let dir = temp_dir("tampered");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let path = dir.join("ckpt.safetensors");
    let mut trainer = new_trainer(&cfg)?;
    let mut hooks = InterruptAfter {
        after: 2,
        seen: 0,
        path: path.clone(),
        cfg,
    };
    assert_eq!(
        trainer.fit(&data.train, &data.val, &mut hooks)?,
        Outcome::Interrupted
    );
    let (mut tensors, meta) = checkpoint::load(&path)?;
    tensors.insert(
        "optim.encoder.0.weight.exp_avg".into(),
        ndarray::ArrayD::zeros(vec![3]),
    );
    checkpoint::save(&path, &tensors, &meta)?;
    let err = resume_trainer(&path).expect_err("exp_avg of 3 numbers for a 54-weight kernel");
    let text = err.to_string();
    assert!(
        text.contains("encoder.0.weight.exp_avg") && text.contains("54"),
        "{text}"
    );
    Ok(())
}

#[test]
fn images_of_another_size_than_the_model_expects_are_refused_up_front() {
    let dir = temp_dir("size");
    std::fs::create_dir_all(&dir).expect("dir");
    let idx = handgrad::data::idx::encode;
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx(&[20, 4, 3], &[7; 240]),
    )
    .expect("write");
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[20], &[1; 20])).expect("write");
    let cfg = small_config(dir.to_str().expect("utf-8"), 20, 5, 1);
    let out = dir.join("run");
    let err = train_new(cfg, &out, &RunOptions::default(), &mut Silent)
        .expect_err("4×3 images, 28×28 model");
    assert!(
        err.to_string().contains("1×4×3") && err.to_string().contains("1×28×28"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn training_reports_through_its_observer_not_the_terminal() -> Result<()> {
    let dir = temp_dir("observer");
    let mut seen = handgrad::train::observe::Collect::default();
    train_new(
        small_config("mnist", 200, 50, 1),
        &dir,
        &RunOptions::default(),
        &mut seen,
    )?;
    let all = seen.lines.join("\n");
    assert!(
        all.contains("data: mnist") && all.contains("split:"),
        "{all}"
    );
    assert!(all.contains("encoder.0   Conv2d 1→6 k3 s2 p1"), "{all}");
    Ok(())
}

#[test]
fn every_preset_learns_well_below_the_mean_image() -> Result<()> {
    // Each preset with its own settings on the shipped MNIST test set (8,000 training
    // images), for as few epochs as each needs to leave the mean image clearly behind: the
    // sigmoid and ReLU nets sit near it for a few epochs before they start (PyTorch's do too),
    // and conv-selu and mlp4 take large batches (70 and 80 steps here). The README's examples
    // use these presets with their defaults (20 epochs); each must visibly learn.
    for (preset, epochs) in [
        ("conv-selu", 5),
        ("conv-small", 7),
        ("mlp4", 20),
        ("mlp1-32", 20),
        ("mlp3-32", 4),
    ] {
        let mut cfg = RunConfig::preset(preset)?;
        cfg.train.epochs = epochs;
        cfg.train.snapshot_epochs = vec![];
        let data = splits_for(&cfg)?;
        let mut trainer = new_trainer(&cfg)?;
        trainer.fit(&data.train, &data.val, &mut ())?;
        let test = evaluate(&mut trainer.model, &data.test, &cfg.train, None)?.loss;
        let baseline = mean_image_loss(&data.train, &data.test);
        assert!(
            test < 0.8 * baseline,
            "{preset}: test MSE {test:.4} after {epochs} epochs is not well below the mean image's {baseline:.4}"
        );
    }
    Ok(())
}

#[test]
fn the_same_seed_gives_bit_identical_training_on_one_thread_and_on_two() -> Result<()> {
    // Every parallel kernel splits its work by sizes alone (never by the thread count), and
    // sums what it split in a fixed order, so the thread count cannot change a single bit.
    let run = |threads: usize| -> Result<(Vec<f64>, Tensors)> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            let cfg = small_config("mnist", 1200, 256, 2);
            let data = splits_for(&cfg)?;
            let mut trainer = new_trainer(&cfg)?;
            trainer.fit(&data.train, &data.val, &mut ())?;
            let losses = trainer
                .state
                .history
                .iter()
                .flat_map(|m| [m.train_loss, m.val_loss])
                .collect();
            Ok((losses, state_dict(&trainer.model)))
        })
    };
    let (one, one_weights) = run(1)?;
    let (two, two_weights) = run(2)?;
    let (again, again_weights) = run(2)?;
    assert_eq!(two, again, "two threads, twice");
    assert_eq!(two_weights, again_weights);
    assert_eq!(one, two, "one thread against two");
    assert_eq!(one_weights, two_weights);
    Ok(())
}

#[test]
fn a_profiled_run_books_every_op_of_every_step() -> Result<()> {
    let dir = temp_dir("profile");
    let opts = RunOptions {
        profile: true,
        ..RunOptions::default()
    };
    // 200 images, 10 % for validation: 180 training images in batches of 50 → 4 steps.
    let report = train_new(small_config("mnist", 200, 50, 1), &dir, &opts, &mut Silent)?;
    let row = |name: &str| {
        report
            .profile
            .iter()
            .find(|r| r.op == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", report.profile))
            .clone()
    };
    // conv-selu: three convolutions and three transposed ones, eight linear layers, each run
    // with the activation after it as one op, but for the layer that makes the code (52 → 6),
    // which has none.
    let conv = row("Conv2dThen");
    assert_eq!((conv.forward_calls, conv.backward_calls), (4 * 3, 4 * 3));
    assert_eq!(row("ConvTranspose2dThen").forward_calls, 4 * 3);
    assert_eq!(row("LinearThen").backward_calls, 4 * 7);
    assert_eq!(row("Linear").backward_calls, 4);
    assert!(conv.forward.as_nanos() > 0 && conv.backward.as_nanos() > 0);
    // Without --profile nothing is booked.
    let quiet = train_new(
        small_config("mnist", 200, 50, 1),
        &temp_dir("no-profile"),
        &RunOptions::default(),
        &mut Silent,
    )?;
    assert!(quiet.profile.is_empty());
    Ok(())
}
