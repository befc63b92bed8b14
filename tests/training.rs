//! Training end to end on real images: the loss beats the trivial baseline, checkpoints round
//! trip exactly, a resumed run equals an uninterrupted one, a diverging loss stops cleanly,
//! and run folders are never overwritten.

use handgrad::data::batches::{split, Amount, SplitSpec};
use handgrad::data::mnist::{Dataset, ImageSet, Lookup};
use handgrad::data::Splits;
use handgrad::models::RunConfig;
use handgrad::nn::{state_dict, Module};
use handgrad::train::fit::{BatchProgress, EpochMetrics};
use handgrad::train::run::{load_run, train_new, RunOptions};
use handgrad::train::{evaluate, Hooks, Outcome, Trainer};
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
        test: Amount::Count(1000),
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
fn mean_image_loss(train: &ImageSet, test: &ImageSet) -> f64 {
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
    let mut trainer = Trainer::new(cfg)?;
    assert_eq!(trainer.fit(&data, &mut ())?, Outcome::Completed);
    let test = evaluate(&mut trainer.model, &data.test, trainer.cfg.train.loss, 500)?;
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
    if Dataset::find("fashion-mnist", &Lookup::default()).is_err() {
        eprintln!(
            "notice: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist); skipped"
        );
        return Ok(());
    }
    learns("fashion-mnist")
}

/// Interrupts after `after` batches in total, saving the checkpoint to `path`.
struct InterruptAfter {
    after: usize,
    seen: usize,
    path: PathBuf,
}

impl Hooks for InterruptAfter {
    fn on_batch(&mut self, _p: &BatchProgress) {
        self.seen += 1;
    }
    fn interrupted(&self) -> bool {
        self.seen >= self.after
    }
    fn on_interrupt(&mut self, trainer: &Trainer) -> Result<()> {
        handgrad::train::checkpoint::write_atomic(&self.path, &trainer.checkpoint_bytes()?)
    }
}

fn without_seconds(h: &[EpochMetrics]) -> Vec<(usize, f64, f64, f64)> {
    h.iter()
        .map(|m| (m.epoch, m.train_loss, m.val_loss, m.lr))
        .collect()
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() -> Result<()> {
    let mut cfg = small_config("mnist", 600, 64, 3);
    cfg.train.plateau = Some(handgrad::models::PlateauSpec {
        factor: 0.5,
        patience: 0,
    });
    let data = splits_for(&cfg)?;
    let mut straight = Trainer::new(cfg.clone())?;
    straight.fit(&data, &mut ())?;

    let dir = temp_dir("resume");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    // 9 batches per epoch: stop mid-epoch 1, then exactly at the end of epoch 2.
    for (stop_after, expect_epoch, expect_batch) in [(4, 0, 4), (18, 2, 0)] {
        let path = dir.join(format!("ckpt-{stop_after}.safetensors"));
        let mut first = Trainer::new(cfg.clone())?;
        let mut hooks = InterruptAfter {
            after: stop_after,
            seen: 0,
            path: path.clone(),
        };
        assert_eq!(first.fit(&data, &mut hooks)?, Outcome::Interrupted);
        let mut resumed = Trainer::resume(&path)?;
        assert_eq!(
            (resumed.state.epoch, resumed.state.batch),
            (expect_epoch, expect_batch)
        );
        assert_eq!(resumed.fit(&data, &mut ())?, Outcome::Completed);
        assert_eq!(
            state_dict(&resumed.model),
            state_dict(&straight.model),
            "weights differ after resuming at {stop_after}"
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
fn a_checkpoint_round_trips_exactly() -> Result<()> {
    let cfg = small_config("mnist", 300, 64, 1);
    let data = splits_for(&cfg)?;
    let dir = temp_dir("roundtrip");
    let opts = RunOptions {
        quiet: true,
        ..Default::default()
    };
    let report = train_new(cfg, &dir, &opts)?;
    assert_eq!(report.outcome, Outcome::Completed);
    let (_, mut a) = load_run(&dir)?;
    let (_, mut b) = load_run(&dir)?;
    let idx: Vec<usize> = (0..8).collect();
    let ra = handgrad::train::run::reconstruct(&mut a, &data.test, &idx)?;
    let rb = handgrad::train::run::reconstruct(&mut b, &data.test, &idx)?;
    assert_eq!(ra, rb);
    // And the loaded model is the trained one: same test loss as the report.
    let loss = evaluate(&mut a, &data.test, handgrad::models::LossName::Mse, 500)?;
    assert_eq!(Some(loss), report.test_loss);
    for file in [
        "config.json",
        "metrics.csv",
        "loss.png",
        "model.safetensors",
        "checkpoint.safetensors",
        "reconstructions.png",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    assert!(dir.join("reconstructions/epoch_001.png").is_file());
    Ok(())
}

/// Saves a checkpoint after epoch 1 like a run folder does, then poisons a weight.
struct PoisonAfterFirstEpoch(PathBuf);

impl Hooks for PoisonAfterFirstEpoch {
    fn on_epoch(&mut self, trainer: &mut Trainer, _m: &EpochMetrics) -> Result<()> {
        handgrad::train::checkpoint::write_atomic(&self.0, &trainer.checkpoint_bytes()?)?;
        trainer.model.visit_mut("", &mut |name, p| {
            if name == "decoder.13.bias" {
                p.value.fill(f32::NAN);
            }
        });
        Ok(())
    }
}

#[test]
fn a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint() -> Result<()> {
    let cfg = small_config("mnist", 300, 64, 3);
    let data = splits_for(&cfg)?;
    let dir = temp_dir("nan");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let path = dir.join("checkpoint.safetensors");
    let mut trainer = Trainer::new(cfg)?;
    let err = trainer
        .fit(&data, &mut PoisonAfterFirstEpoch(path.clone()))
        .expect_err("NaN weights give a NaN loss");
    assert!(
        matches!(err, Error::NonFiniteLoss { epoch: 2, batch: 1 }),
        "{err}"
    );
    assert!(err.to_string().contains("epoch 2, batch 1"));
    let good = Trainer::resume(&path)?;
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
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
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
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
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
    let mut trainer = Trainer::new(cfg)?;
    let mut hooks = InterruptAfter {
        after: 2,
        seen: 0,
        path: path.clone(),
    };
    assert_eq!(trainer.fit(&data, &mut hooks)?, Outcome::Interrupted);
    let (mut tensors, meta) = handgrad::train::checkpoint::load(&path)?;
    tensors.insert(
        "optim.encoder.0.weight.exp_avg".into(),
        ndarray::ArrayD::zeros(vec![3]),
    );
    handgrad::train::checkpoint::save(&path, &tensors, &meta)?;
    let err = Trainer::resume(&path).expect_err("exp_avg of 3 numbers for a 54-weight kernel");
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
    let err = train_new(
        cfg,
        &out,
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .expect_err("4×3 images, 28×28 model");
    assert!(
        err.to_string().contains("1×4×3") && err.to_string().contains("1×28×28"),
        "{err}"
    );
    assert!(!out.exists());
}
