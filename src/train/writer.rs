//! Writing a run folder as training goes: after every epoch the metrics, the loss plot, the
//! checkpoint and the model; at snapshot epochs the reconstruction pictures.
//!
//! The reconstructions of every snapshot epoch are kept in memory (and in the checkpoint, so a
//! resumed run still has them) and the progress picture is drawn from them, one labelled row
//! per epoch.

use super::checkpoint::{self, Tensors};
use super::config::RunConfig;
use super::fit::{BatchProgress, EpochMetrics, Hooks, Trainer};
use super::observe::{Event, Observer};
use super::run_dir::{checkpoint_bytes, model_metadata, save_model, RunDir};
use crate::data::mnist::{DatasetName, ImageSet};
use crate::error::Result;
use crate::fs::write_atomic;
use crate::models::Autoencoder;
use crate::names::Named;
use crate::seed::{self, Stream};
use crate::viz::chart::{save_stacked, LineChart, TRAIN, VALIDATION};
use crate::viz::{cells, ImageGrid};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Checkpoint tensor names of the kept snapshot rows: `snapshot.epoch_005`.
const SNAPSHOT_PREFIX: &str = "snapshot.epoch_";

/// Writes a run folder's files as an autoencoder trains, and reports to an observer.
pub struct RunWriter<'a> {
    run: RunDir,
    cfg: RunConfig,
    obs: &'a mut dyn Observer,
    interrupt: Arc<AtomicBool>,
    batches_per_epoch: usize,
    /// The test images every snapshot shows: one per class (or the first ten).
    originals: Vec<f32>,
    /// Their corrupted versions, for a denoising run (what the model is given).
    corrupted: Option<Vec<f32>>,
    /// Class names of the shown images.
    names: Vec<String>,
    /// (epoch, reconstructions) of every snapshot so far.
    snapshots: Vec<(usize, Vec<f32>)>,
    best_epoch: Option<usize>,
    /// The (epoch, batch) the checkpoint on disk was taken at, if one exists.
    pub last_saved: Option<(usize, usize)>,
    /// Levels the loss chart draws beside its curves, in the objective's unit: (what, colour,
    /// loss) — the mean-image and PCA baselines, set by whoever measured them.
    pub levels: Vec<(String, crate::viz::Rgb, f64)>,
}

impl<'a> RunWriter<'a> {
    /// A writer for `run`, showing images of `test`; `restored` are the tensors of the
    /// checkpoint a resumed run starts from (empty for a new run).
    ///
    /// # Errors
    /// A corruption that does not fit the images.
    pub fn new(
        run: RunDir,
        cfg: &RunConfig,
        test: &ImageSet,
        batches_per_epoch: usize,
        restored: &Tensors,
        obs: &'a mut dyn Observer,
        interrupt: Arc<AtomicBool>,
    ) -> Result<Self> {
        let mut shown: Vec<usize> = (0..10u8)
            .filter_map(|class| (0..test.len()).find(|&i| test.labels[i] == class))
            .collect();
        if shown.len() < 10 {
            shown = (0..test.len().min(10)).collect();
        }
        let mut originals = Vec::new();
        test.batch_into(&shown, &mut originals);
        let corrupted = match &cfg.train.corrupt {
            Some(c) => {
                let mut damaged = originals.clone();
                c.apply(
                    &mut damaged,
                    test.rows,
                    test.cols,
                    &mut seed::rng(cfg.train.seed, Stream::Snapshots),
                )?;
                Some(damaged)
            }
            None => None,
        };
        let class_names = DatasetName::parse(&cfg.dataset).map(DatasetName::class_names);
        let names = shown
            .iter()
            .map(|&i| {
                let label = test.labels[i];
                class_names.map_or_else(|| label.to_string(), |n| n[label as usize].to_string())
            })
            .collect();
        let snapshots = restored
            .iter()
            .filter_map(|(name, t)| {
                let epoch = name.strip_prefix(SNAPSHOT_PREFIX)?.parse().ok()?;
                Some((epoch, t.iter().copied().collect()))
            })
            .collect();
        Ok(RunWriter {
            run,
            cfg: cfg.clone(),
            obs,
            interrupt,
            batches_per_epoch,
            originals,
            corrupted,
            names,
            snapshots,
            best_epoch: None,
            last_saved: None,
            levels: Vec::new(),
        })
    }

    /// The snapshot rows as checkpoint tensors.
    fn snapshot_tensors(&self) -> Tensors {
        let per_image = self.cfg.model.input.iter().product::<usize>();
        self.snapshots
            .iter()
            .filter_map(|(epoch, rows)| {
                let shape = vec![rows.len() / per_image.max(1), per_image];
                let t = ndarray::ArrayD::from_shape_vec(shape, rows.clone()).ok()?;
                Some((format!("{SNAPSHOT_PREFIX}{epoch:03}"), t))
            })
            .collect()
    }

    fn save_checkpoint(&mut self, trainer: &Trainer<Autoencoder>) -> Result<()> {
        let bytes = checkpoint_bytes(trainer, &self.cfg, &self.snapshot_tensors())?;
        write_atomic(&self.run.checkpoint(), &bytes)?;
        self.last_saved = Some((trainer.state.epoch, trainer.state.batch));
        Ok(())
    }

    fn write_metrics(&self, history: &[EpochMetrics], terms: &[&str]) -> Result<()> {
        let mut header = vec!["epoch".to_string(), "train_loss".into(), "val_loss".into()];
        for part in ["train", "val"] {
            header.extend(terms.iter().map(|t| format!("{part}_{t}")));
        }
        header.extend(["lr".to_string(), "seconds".into()]);
        let mut csv = header.join(",") + "\n";
        for m in history {
            let mut row = vec![
                m.epoch.to_string(),
                m.train_loss.to_string(),
                m.val_loss.to_string(),
            ];
            row.extend(m.train_terms.iter().chain(&m.val_terms).map(f64::to_string));
            // The rate is an f32 in the optimiser: printed as one, 0.001 rather than 0.0010000000474974513.
            row.extend([(m.lr as f32).to_string(), format!("{:.3}", m.seconds)]);
            csv.push_str(&(row.join(",") + "\n"));
        }
        write_atomic(&self.run.metrics(), csv.as_bytes())
    }

    fn write_loss_plot(&self, history: &[EpochMetrics], terms: &[&str]) -> Result<()> {
        let cfg = &self.cfg;
        let points = |f: &dyn Fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
            history.iter().map(|m| (m.epoch as f64, f(m))).collect()
        };
        let title = format!("{}: loss per epoch", cfg.label());
        let mut charts =
            vec![
                LineChart::new(title, "epoch", format!("loss ({})", cfg.objective()))
                    .counting_x()
                    .line(
                        "training (mean over the epoch)",
                        TRAIN,
                        points(&|m| m.train_loss),
                    )
                    .line(
                        "validation (after the epoch)",
                        VALIDATION,
                        points(&|m| m.val_loss),
                    ),
            ];
        for (label, color, y) in &self.levels {
            charts[0] = charts[0].clone().level(label.clone(), *color, *y);
        }
        for (k, term) in terms.iter().enumerate() {
            let what = match *term {
                "recon" => format!(
                    "reconstruction term ({} summed per image)",
                    cfg.train.loss.name().to_uppercase()
                ),
                "kl" => "KL(q(z|x) ‖ N(0, I)) per image".to_string(),
                other => other.to_string(),
            };
            charts.push(
                LineChart::new(what.clone(), "epoch", what.clone())
                    .counting_x()
                    .line(
                        "training",
                        TRAIN,
                        points(&|m| m.train_terms.get(k).copied().unwrap_or(f64::NAN)),
                    )
                    .line(
                        "validation",
                        VALIDATION,
                        points(&|m| m.val_terms.get(k).copied().unwrap_or(f64::NAN)),
                    ),
            );
        }
        save_stacked(&self.run.loss_plot(), &charts)
    }

    /// Reconstructs the shown images, saves `epoch_NNN.png`, and redraws the progress picture.
    fn snapshot(&mut self, model: &mut Autoencoder, epoch: usize) -> Result<()> {
        let input = self.corrupted.as_deref().unwrap_or(&self.originals);
        let output = model.reconstruct(input)?;
        let [_, h, w] = self.cfg.model.input;
        let len = h * w;
        let corrupt_label = self
            .cfg
            .train
            .corrupt
            .as_ref()
            .map(|c| format!("corrupted ({c})"));
        let mut single = ImageGrid::new(
            format!(
                "{}, epoch {epoch}: test images and their reconstructions",
                self.cfg.label()
            ),
            h,
            w,
            3,
        )
        .note("Each column is one test image, never seen in training (its class above).")
        .columns(self.names.clone())
        .row("original", cells(&self.originals, len));
        if let (Some(c), Some(label)) = (&self.corrupted, &corrupt_label) {
            single = single.row(label.clone(), cells(c, len));
        }
        single = single.row("reconstruction", cells(&output, len));
        single.save(&self.run.snapshot(epoch))?;

        self.snapshots.retain(|(e, _)| *e != epoch);
        self.snapshots.push((epoch, output));
        self.snapshots.sort_by_key(|(e, _)| *e);
        let mut progress = ImageGrid::new(
            format!("{}: reconstructions over training", self.cfg.label()),
            h,
            w,
            2,
        )
        .note("Top: test images the model never trained on, one per class.")
        .note("Each row below: what the model made of them after the epoch named on its left.")
        .columns(self.names.clone())
        .row("original", cells(&self.originals, len));
        if let (Some(c), Some(label)) = (&self.corrupted, &corrupt_label) {
            progress = progress
                .note("The model was given the corrupted row and asked for the originals.")
                .row(label.clone(), cells(c, len));
        }
        for (e, rows) in &self.snapshots {
            progress = progress.row(format!("epoch {e}"), cells(rows, len));
        }
        progress.save(&self.run.progress_grid())?;
        Ok(())
    }

    /// What the run folder keeps after a failure, for the error message.
    pub fn kept(&self) -> String {
        match self.last_saved {
            Some((epoch, 0)) => format!(
                "the checkpoint after epoch {epoch} was kept: {}",
                self.run.checkpoint().display()
            ),
            Some((epoch, batch)) => format!(
                "the checkpoint taken during epoch {} after batch {batch} was kept: {}",
                epoch + 1,
                self.run.checkpoint().display()
            ),
            None => "no checkpoint exists: not one epoch had finished".into(),
        }
    }

    /// The folder being written.
    pub fn dir(&self) -> &Path {
        &self.run.0
    }
}

impl Hooks<Autoencoder> for RunWriter<'_> {
    fn on_batch(&mut self, p: &BatchProgress) {
        self.obs.event(Event::Batch(p));
    }

    fn on_epoch(&mut self, trainer: &mut Trainer<Autoencoder>, m: &EpochMetrics) -> Result<()> {
        let terms = crate::train::Task::term_names(&trainer.model);
        let epochs = trainer.spec.epochs;
        self.obs.event(Event::Epoch {
            metrics: m,
            epochs,
            terms,
        });
        let last = m.epoch == epochs || trainer.state.stopped_early;
        if last || trainer.spec.snapshot_epochs.contains(&m.epoch) {
            self.snapshot(&mut trainer.model, m.epoch)?;
        }
        self.write_metrics(&trainer.state.history, terms)?;
        self.write_loss_plot(&trainer.state.history, terms)?;
        self.save_checkpoint(trainer)?;
        save_model(&self.run.model(), &trainer.model)?;
        let best_epoch = trainer.state.early.and_then(|(_, e, _)| e);
        if best_epoch.is_some() && best_epoch != self.best_epoch {
            if let Some(best) = &trainer.best {
                checkpoint::save(&self.run.best(), best, &model_metadata())?;
            }
            self.best_epoch = best_epoch;
        }
        Ok(())
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    fn on_interrupt(&mut self, trainer: &Trainer<Autoencoder>) -> Result<()> {
        self.save_checkpoint(trainer)?;
        let dir = self.run.0.clone();
        self.obs.event(Event::Interrupted {
            epoch: trainer.state.epoch + 1,
            batch: trainer.state.batch,
            batches: self.batches_per_epoch,
            dir: &dir,
        });
        Ok(())
    }
}
