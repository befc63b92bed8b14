//! `handgrad train`: a run from start to finish — check everything that can be refused,
//! create the run folder, train while writing it, measure the test set.
//!
//! Everything a user can get wrong (the data, the architecture, the settings, the folder) is
//! checked before the folder is created, so a refused run leaves nothing behind.

use super::baselines::{baselines, Baselines};
use super::eval::{judge, pixel_rows};
use super::report::{write_run_page, RunResult, RunSummary};
use super::verdict::Training;
use super::{load_data, RunOptions};
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::fs::{claim, Replace, Target};
use crate::models::{Autoencoder, ModelPlan};
use crate::train::checkpoint::{self, Tensors};
use crate::train::evaluate::{evaluate, Evaluation};
use crate::train::fit::{EpochMetrics, Outcome, Trainer};
use crate::train::observe::Observer;
use crate::train::run_dir::{new_trainer, resume_trainer, save_model, RunDir};
use crate::train::writer::RunWriter;
use crate::train::RunConfig;
use crate::viz::chart::{MEAN_IMAGE, PCA_LEVEL};
use std::path::{Path, PathBuf};

/// What a finished (or interrupted) `train` reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run folder.
    pub dir: PathBuf,
    /// How training ended.
    pub outcome: Outcome,
    /// Loss on the test set after training (`None` when interrupted).
    pub test: Option<Evaluation>,
    /// Test images measured.
    pub test_images: usize,
    /// Training images (one epoch is this many divided by the batch size, rounded up, steps).
    pub train_images: usize,
    /// What the loss is, e.g. "MSE per pixel".
    pub objective: String,
    /// Epochs completed.
    pub epochs: usize,
    /// The files the folder holds now.
    pub outputs: Vec<String>,
    /// Every epoch's metrics, from the first (a resumed run's included).
    pub history: Vec<EpochMetrics>,
    /// With [`RunOptions::profile`]: time per op type over the training steps.
    pub profile: Vec<crate::autodiff::ProfileRow>,
    /// The mean-image and PCA baselines on the same split (`None` when interrupted).
    pub baselines: Option<Baselines>,
    /// The per-pixel test loss on clean images, and for a denoiser on its own corruption
    /// beside the identity's (empty when interrupted): one unit for every model, a VAE's
    /// included, so it stands beside the baselines.
    pub pixels: Vec<super::eval::EvalRow>,
    /// What [`super::verdict::autoencoder`] found, if the run learned little.
    pub verdict: Option<String>,
    /// The run's report page, `report.html` in its folder.
    pub page: PathBuf,
}

/// Starts a new run in `dir`, which must not exist yet (or be empty).
///
/// # Errors
/// [`Error::Config`] if the folder is already used or the settings do not fit the data;
/// [`Error::Io`] if it cannot be created or written; dataset, architecture and training errors.
pub fn train_new(
    cfg: RunConfig,
    dir: &Path,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunReport> {
    claim(
        dir,
        Target::Folder,
        "run folder",
        Replace::Never(&format!(
            "choose another --out, or continue it with --resume {}",
            dir.display()
        )),
    )?;
    cfg.validate()?;
    // The model's shapes and size depend on the configuration alone: check them before
    // reading any data.
    ModelPlan::new(&cfg.model)?.check_fits(cfg.train.batch_size)?;
    let (_, splits) = load_data(&cfg, &opts.lookup, obs)?;
    check_validation(&cfg, &splits)?;
    if let Some(c) = &cfg.train.corrupt {
        c.check_fits(splits.test.rows, splits.test.cols)?;
    }
    let trainer = new_trainer(&cfg)?;
    std::fs::create_dir_all(dir.join("reconstructions")).map_err(Error::io(dir))?;
    let run = RunDir(dir.to_path_buf());
    write_config(&run, &cfg)?;
    obs.info(&format!(
        "training {} ({}) into {}",
        cfg.preset,
        cfg.objective(),
        dir.display()
    ));
    for line in trainer.model.summary() {
        obs.info(&format!("  {line}"));
    }
    run_trainer(trainer, &cfg, &splits, &run, &Tensors::new(), opts, obs)
}

/// What resuming a run did.
#[derive(Debug)]
pub enum Resumed {
    /// It trained on, to the end or until stopped.
    Trained(Box<RunReport>),
    /// The run had already done everything asked (all its epochs, or early stopping ended
    /// it): nothing was trained and nothing written. A batch system that runs a finished job's
    /// command again gets a success, not a failure.
    NothingToDo {
        /// Epochs done.
        done: usize,
        /// Epochs the run asks for.
        of: usize,
        /// Whether early stopping ended it.
        stopped_early: bool,
    },
}

/// Continues the run in `dir` from its checkpoint; with `epochs`, extends (or shortens, not
/// below what is done) its number of epochs.
///
/// # Errors
/// [`Error::Io`] if there is no checkpoint; [`Error::Config`] when `epochs` is below the
/// epochs already done, or asks for more of a run early stopping ended; otherwise as
/// [`train_new`].
pub fn train_resume(
    dir: &Path,
    epochs: Option<usize>,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<Resumed> {
    let run = RunDir(dir.to_path_buf());
    run.read_config()?;
    let (mut cfg, mut trainer, tensors) = resume_trainer(&run.checkpoint())?;
    let done = trainer.state.epoch;
    let finished = trainer.state.stopped_early || done >= cfg.train.epochs;
    if finished && epochs.is_none_or(|n| n == done) {
        return Ok(Resumed::NothingToDo {
            done,
            of: cfg.train.epochs,
            stopped_early: trainer.state.stopped_early,
        });
    }
    match epochs {
        Some(n) if n < done => {
            return Err(Error::config(
                "epochs",
                format!("the run has already done {done} epochs; --epochs {n} would undo them (give {done} or more)"),
            ))
        }
        Some(n) if trainer.state.stopped_early && n > done => {
            let best = trainer.state.early.and_then(|(_, e, _)| e).unwrap_or(done);
            return Err(Error::config(
                "epochs",
                format!(
                    "early stopping ended this run after epoch {done} (its best epoch was {best}); more epochs would only repeat that verdict. Start a new run with other settings instead"
                ),
            ));
        }
        Some(n) => {
            cfg.train.epochs = n;
            trainer.spec.epochs = n;
        }
        None => {}
    }
    if run.best().is_file() {
        trainer.best = Some(checkpoint::load(&run.best())?.0);
    }
    obs.info(&format!(
        "resuming {} after epoch {done}{}, until epoch {}",
        dir.display(),
        if trainer.state.batch > 0 {
            format!(" and batch {} of the next", trainer.state.batch)
        } else {
            String::new()
        },
        cfg.train.epochs
    ));
    let (_, splits) = load_data(&cfg, &opts.lookup, obs)?;
    write_config(&run, &cfg)?;
    run_trainer(trainer, &cfg, &splits, &run, &tensors, opts, obs)
        .map(|r| Resumed::Trained(Box::new(r)))
}

/// Early stopping and the plateau schedule watch the validation loss: they need one.
fn check_validation(cfg: &RunConfig, splits: &Splits) -> Result<()> {
    let t = &cfg.train;
    if splits.val.is_empty() && (t.early_stopping.is_some() || t.plateau.is_some()) {
        return Err(Error::config(
            "validation split",
            "early stopping and the plateau schedule watch the validation loss, but the validation set is empty; give one with --validation (e.g. 0.1)",
        ));
    }
    Ok(())
}

fn write_config(run: &RunDir, cfg: &RunConfig) -> Result<()> {
    let json =
        serde_json::to_string_pretty(cfg).map_err(|e| Error::format("config", e.to_string()))?;
    write_atomic(&run.config(), json.as_bytes())
}

fn run_trainer(
    mut trainer: Trainer<Autoencoder>,
    cfg: &RunConfig,
    splits: &Splits,
    run: &RunDir,
    restored: &Tensors,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunReport> {
    let batches = splits.train.len().div_ceil(cfg.train.batch_size);
    let resumed_at = (!restored.is_empty()).then_some((trainer.state.epoch, trainer.state.batch));
    let mut writer = RunWriter::new(
        run.clone(),
        cfg,
        &splits.test,
        batches,
        restored,
        obs,
        opts.interrupt.clone(),
    )?;
    writer.last_saved = resumed_at;
    let _mark = crate::train::run_dir::TrainingMark::claim(run)?;
    // The baselines, measured before training so that every loss chart draws them. A VAE's
    // objective (summed per image, with KL) is in another unit: its chart goes without.
    let b = baselines(
        &splits.train,
        &splits.test,
        cfg.model.latent,
        cfg.train.loss,
    )?;
    if !cfg.model.variational {
        writer.levels = vec![
            ("mean image (baseline)".into(), MEAN_IMAGE, b.mean_image),
            (format!("PCA, k = {} (baseline)", b.k), PCA_LEVEL, b.pca),
        ];
    }
    if opts.profile {
        trainer.enable_profile();
    }
    let outcome = match trainer.fit(&splits.train, &splits.val, &mut writer) {
        Ok(outcome) => outcome,
        Err(Error::NonFinite {
            what,
            epoch,
            batch,
            origin,
            ..
        }) => {
            return Err(Error::NonFinite {
                what,
                epoch,
                batch,
                origin,
                kept: Some(writer.kept()),
            })
        }
        Err(e) => return Err(e),
    };
    drop(writer);
    let mut report = RunReport {
        dir: run.0.clone(),
        outcome,
        test: None,
        test_images: splits.test.len(),
        train_images: splits.train.len(),
        objective: cfg.objective(),
        epochs: trainer.state.epoch,
        outputs: Vec::new(),
        history: trainer.state.history.clone(),
        profile: trainer.profile(),
        baselines: None,
        pixels: Vec::new(),
        verdict: None,
        page: run.0.join("report.html"),
    };
    if outcome != Outcome::Interrupted {
        // Final weights (the best epoch's, after early stopping).
        save_model(&run.model(), &trainer.model)?;
        report.test = Some(evaluate(
            &mut trainer.model,
            &splits.test,
            &cfg.train,
            cfg.train.corrupt.as_ref(),
        )?);
        let own: Vec<_> = cfg.train.corrupt.iter().cloned().collect();
        report.pixels = pixel_rows(&mut trainer.model, &splits.test, cfg, &own)?;
        let training = Training::of_run(cfg, report.train_images, &report.history);
        report.verdict = judge(cfg, &report.pixels, &b, &training);
        report.baselines = Some(b);
    }
    let outcome = match outcome {
        Outcome::Completed => format!("Trained for {} epochs.", report.epochs),
        Outcome::StoppedEarly { best_epoch } => format!(
            "Early stopping ended training after epoch {}; the weights of epoch {best_epoch} were restored.",
            report.epochs
        ),
        Outcome::Interrupted => format!(
            "Interrupted after epoch {}; the checkpoint continues it (train --resume).",
            report.epochs
        ),
    };
    report.page = write_run_page(
        &run.0,
        &RunSummary {
            cfg,
            history: &report.history,
            result: &RunResult {
                outcome,
                steps_per_epoch: batches,
                test_loss: report.test.as_ref().map(|t| t.loss),
                clean_pixel_loss: report.pixels.first().map(|r| r.model),
                baselines: report.baselines.clone(),
                verdict: report.verdict.clone(),
            },
        },
    )?;
    report.outputs = run.outputs();
    Ok(report)
}
