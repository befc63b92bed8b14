//! A run folder from start to finish: what `handgrad train`, `eval` and `reconstruct` do.
//!
//! ```text
//! runs/NAME/
//!   config.json              everything needed to repeat the run
//!   metrics.csv              epoch, train_loss, val_loss, lr, seconds
//!   loss.png                 training and validation loss against epoch
//!   model.safetensors        the trained weights, PyTorch's parameter names
//!   best.safetensors         the best validation epoch's weights (with early stopping)
//!   checkpoint.safetensors   model + optimiser + training state, for --resume
//!   reconstructions/epoch_NNN.png   test images (top) and their reconstructions (bottom)
//!   reconstructions.png      the originals, then one row of reconstructions per snapshot epoch
//! ```
//!
//! Every file is written atomically, after every epoch, so an interrupted or crashed run
//! leaves a consistent folder. An existing folder is never overwritten: a new run needs a new
//! folder, and `--resume` continues an old one.

use super::checkpoint::{self, write_atomic, Tensors};
use super::fit::{evaluate, EpochMetrics, Hooks, Outcome, Trainer, EVAL_BATCH};
use super::images::{grid, Gray};
use super::plot;
use crate::autodiff::Graph;
use crate::data::batches::split;
use crate::data::mnist::{Dataset, ImageSet, Lookup};
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::models::{Autoencoder, RunConfig};
use crate::nn::{load_state_dict, state_dict, Module};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The files of a run folder.
#[derive(Clone, Debug)]
pub struct RunDir(pub PathBuf);

impl RunDir {
    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    /// `metrics.csv`.
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.csv")
    }
    /// `loss.png`.
    pub fn loss_plot(&self) -> PathBuf {
        self.0.join("loss.png")
    }
    /// `model.safetensors`.
    pub fn model(&self) -> PathBuf {
        self.0.join("model.safetensors")
    }
    /// `best.safetensors`.
    pub fn best(&self) -> PathBuf {
        self.0.join("best.safetensors")
    }
    /// `checkpoint.safetensors`.
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint.safetensors")
    }
    /// `reconstructions/epoch_NNN.png`.
    pub fn snapshot(&self, epoch: usize) -> PathBuf {
        self.0
            .join("reconstructions")
            .join(format!("epoch_{epoch:03}.png"))
    }
    /// `reconstructions.png`.
    pub fn progress_grid(&self) -> PathBuf {
        self.0.join("reconstructions.png")
    }
}

/// What a finished (or interrupted) `train` reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run folder.
    pub dir: PathBuf,
    /// How training ended.
    pub outcome: Outcome,
    /// Loss on the test set (after training; `None` when interrupted).
    pub test_loss: Option<f64>,
    /// Epochs completed.
    pub epochs: usize,
}

/// Options that do not change what is computed.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where to look for datasets.
    pub lookup: Lookup,
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
    /// Set (by a Ctrl-C handler) to stop after the current batch, saving a checkpoint.
    pub interrupt: Arc<AtomicBool>,
}

/// A folder name under `runs/` that does not exist yet: `runs/<stem>`, else `runs/<stem>-2`, …
pub fn fresh_run_dir(root: &Path, stem: &str) -> PathBuf {
    let first = root.join(stem);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|k| root.join(format!("{stem}-{k}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

fn load_data(cfg: &RunConfig, opts: &RunOptions) -> Result<(Dataset, Splits)> {
    let ds = Dataset::find(&cfg.dataset, &opts.lookup)?;
    if !opts.quiet {
        println!("data: {}", ds.describe());
    }
    let [c, h, w] = cfg.model.input;
    if (c, h, w) != (1, ds.test.rows, ds.test.cols) {
        return Err(Error::Dataset {
            path: ds.dir.clone(),
            detail: format!(
                "images are 1×{}×{} but the model expects {c}×{h}×{w} (set model.input in the configuration)",
                ds.test.rows, ds.test.cols
            ),
        });
    }
    let splits = split(&ds, &cfg.split)?;
    if !opts.quiet {
        println!(
            "split: {} train, {} validation, {} test images",
            splits.train.len(),
            splits.val.len(),
            splits.test.len()
        );
    }
    Ok((ds, splits))
}

/// Starts a new run in `dir`, which must not exist yet (or be empty).
///
/// # Errors
/// [`Error::Config`] if the folder is already used; [`Error::Io`] if it cannot be created or
/// written; dataset, architecture and training errors.
pub fn train_new(cfg: RunConfig, dir: &Path, opts: &RunOptions) -> Result<RunReport> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .next()
            .is_some()
    {
        return Err(Error::config(
            "run folder",
            format!(
                "{} already exists; choose another --out, or continue it with --resume {}",
                dir.display(),
                dir.display()
            ),
        ));
    }
    // Everything that can be refused (data, architecture, settings) is checked before the
    // folder is created, so a mistake leaves nothing behind.
    let (_, splits) = load_data(&cfg, opts)?;
    let mut trainer = Trainer::new(cfg)?;
    std::fs::create_dir_all(dir.join("reconstructions")).map_err(Error::io(dir))?;
    let run = RunDir(dir.to_path_buf());
    let json = serde_json::to_string_pretty(&trainer.cfg)
        .map_err(|e| Error::config("config", e.to_string()))?;
    write_atomic(&run.config(), json.as_bytes())?;
    if !opts.quiet {
        for line in trainer.model.summary()? {
            println!("  {line}");
        }
    }
    run_trainer(&mut trainer, &splits, &run, opts)
}

/// Continues the run in `dir` from its checkpoint.
///
/// # Errors
/// [`Error::Io`] if there is no checkpoint; as [`train_new`] otherwise.
pub fn train_resume(dir: &Path, opts: &RunOptions) -> Result<RunReport> {
    let run = RunDir(dir.to_path_buf());
    let mut trainer = Trainer::resume(&run.checkpoint())?;
    if run.best().is_file() {
        trainer.best = Some(checkpoint::load(&run.best())?.0);
    }
    if !opts.quiet {
        println!(
            "resuming {} after epoch {} (batch {} of the next)",
            dir.display(),
            trainer.state.epoch,
            trainer.state.batch
        );
    }
    let (_, splits) = load_data(&trainer.cfg.clone(), opts)?;
    run_trainer(&mut trainer, &splits, &run, opts)
}

fn run_trainer(
    trainer: &mut Trainer,
    splits: &Splits,
    run: &RunDir,
    opts: &RunOptions,
) -> Result<RunReport> {
    let mut hooks = FileHooks::new(run.clone(), &splits.test, opts);
    let outcome = trainer.fit(splits, &mut hooks)?;
    hooks.finish_bar();
    if outcome == Outcome::Interrupted {
        return Ok(RunReport {
            dir: run.0.clone(),
            outcome,
            test_loss: None,
            epochs: trainer.state.epoch,
        });
    }
    // Final weights (the best epoch's, after early stopping).
    save_model(&run.model(), &trainer.model)?;
    let t = &trainer.cfg.train;
    let test_loss = evaluate(&mut trainer.model, &splits.test, t.loss, EVAL_BATCH)?;
    Ok(RunReport {
        dir: run.0.clone(),
        outcome,
        test_loss: Some(test_loss),
        epochs: trainer.state.epoch,
    })
}

/// Writes a model's tensors with PyTorch's names.
fn save_model(path: &Path, model: &dyn Module) -> Result<()> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    checkpoint::save(path, &state_dict(model), &meta)
}

/// Writes metrics, checkpoints, plots and pictures as training goes.
struct FileHooks<'a> {
    run: RunDir,
    quiet: bool,
    interrupt: Arc<AtomicBool>,
    bar: Option<ProgressBar>,
    /// One test image per class (or the first ten), shown in every snapshot.
    fixed: Vec<usize>,
    test: &'a ImageSet,
    best_epoch: Option<usize>,
}

impl<'a> FileHooks<'a> {
    fn new(run: RunDir, test: &'a ImageSet, opts: &RunOptions) -> Self {
        let mut fixed = Vec::new();
        for class in 0..10u8 {
            if let Some(i) = (0..test.len()).find(|&i| test.labels[i] == class) {
                fixed.push(i);
            }
        }
        if fixed.len() < 10 {
            fixed = (0..test.len().min(10)).collect();
        }
        FileHooks {
            run,
            quiet: opts.quiet,
            interrupt: opts.interrupt.clone(),
            bar: None,
            fixed,
            test,
            best_epoch: None,
        }
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn write_metrics(&self, history: &[EpochMetrics]) -> Result<()> {
        let mut csv = String::from("epoch,train_loss,val_loss,lr,seconds\n");
        // The rate is an f32 in the optimiser: printed as one, 0.001 rather than 0.0010000000474974513.
        for m in history {
            csv.push_str(&format!(
                "{},{},{},{},{:.3}\n",
                m.epoch, m.train_loss, m.val_loss, m.lr as f32, m.seconds
            ));
        }
        write_atomic(&self.run.metrics(), csv.as_bytes())
    }

    /// Reconstructs the fixed test images and saves `epoch_NNN.png` and the progress grid.
    fn snapshot(&self, trainer: &mut Trainer, epoch: usize) -> Result<()> {
        let reconstructions = reconstruct(&mut trainer.model, self.test, &self.fixed)?;
        let (h, w) = (self.test.rows, self.test.cols);
        let originals = pixels_of(self.test, &self.fixed);
        grid(
            &[
                images_of(&originals, h * w),
                images_of(&reconstructions, h * w),
            ],
            h,
            w,
            2,
        )
        .save(&self.run.snapshot(epoch))?;
        // The progress grid: originals, then the reconstruction row of every snapshot so far.
        let mut rows = vec![images_of(&originals, h * w)];
        let mut earlier = Vec::new();
        for e in 1..=epoch {
            let path = self.run.snapshot(e);
            if path.is_file() {
                earlier.push(bottom_half_as_images(&path, self.fixed.len(), h, w)?);
            }
        }
        rows.extend(
            earlier
                .iter()
                .map(|r| r.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        );
        grid(&rows, h, w, 2).save(&self.run.progress_grid())
    }
}

impl Hooks for FileHooks<'_> {
    fn on_batch(&mut self, p: &super::fit::BatchProgress) {
        if self.quiet {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(p.batches as u64);
            let style =
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar
        });
        bar.set_prefix(format!("epoch {}/{}", p.epoch, p.epochs));
        bar.set_position(p.batch as u64);
        bar.set_message(format!(
            "loss {:.5}  {:.0} img/s",
            p.loss, p.images_per_second
        ));
    }

    fn on_epoch(&mut self, trainer: &mut Trainer, m: &EpochMetrics) -> Result<()> {
        if let Some(bar) = &self.bar {
            bar.reset();
        }
        let t = &trainer.cfg.train;
        let last = m.epoch == t.epochs || trainer.state.stopped_early;
        if !self.quiet {
            let line = format!(
                "epoch {:>3}/{}  train {:.5}  val {:.5}  lr {:.2e}  {:.1}s",
                m.epoch, t.epochs, m.train_loss, m.val_loss, m.lr, m.seconds
            );
            match &self.bar {
                Some(bar) if !bar.is_hidden() => bar.println(line),
                _ => println!("{line}"),
            }
        }
        self.write_metrics(&trainer.state.history)?;
        write_atomic(&self.run.checkpoint(), &trainer.checkpoint_bytes()?)?;
        save_model(&self.run.model(), &trainer.model)?;
        let best_epoch = trainer.state.early.and_then(|(_, e, _)| e);
        if best_epoch.is_some() && best_epoch != self.best_epoch {
            if let Some(best) = &trainer.best {
                checkpoint::save(
                    &self.run.best(),
                    best,
                    &HashMap::from([("format".to_string(), "pt".to_string())]),
                )?;
            }
            self.best_epoch = best_epoch;
        }
        let title = format!("{} on {}", trainer.cfg.preset, trainer.cfg.dataset);
        plot::loss_curve(&self.run.loss_plot(), &title, &trainer.state.history)?;
        if last || t.snapshot_epochs.contains(&m.epoch) {
            self.snapshot(trainer, m.epoch)?;
        }
        Ok(())
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    fn on_interrupt(&mut self, trainer: &Trainer) -> Result<()> {
        self.finish_bar();
        write_atomic(&self.run.checkpoint(), &trainer.checkpoint_bytes()?)?;
        // Printed even when quiet: the user pressed Ctrl-C and should learn what was kept.
        println!(
            "interrupted: checkpoint saved after epoch {} batch {}; continue with --resume {}",
            trainer.state.epoch,
            trainer.state.batch,
            self.run.0.display()
        );
        Ok(())
    }
}

/// The images at `indices` as f32 in [0, 1], one after another.
fn pixels_of(set: &ImageSet, indices: &[usize]) -> Vec<f32> {
    let mut out = Vec::new();
    set.batch_into(indices, &mut out);
    out
}

/// Consecutive images of `len` values each, as slices.
fn images_of(data: &[f32], len: usize) -> Vec<&[f32]> {
    data.chunks(len).collect()
}

/// The model's reconstructions of the images at `indices`, one after another, computed in
/// evaluation mode without recording (the model is left in training mode afterwards).
///
/// # Errors
/// Shape errors from the model.
pub fn reconstruct(model: &mut Autoencoder, set: &ImageSet, indices: &[usize]) -> Result<Vec<f32>> {
    let mut g = Graph::new();
    g.set_recording(false);
    let pixels = pixels_of(set, indices);
    let view = ndarray::ArrayViewD::from_shape(set.batch_shape(indices.len()).to_vec(), &pixels)
        .map_err(|e| Error::shape("batch", e.to_string()))?;
    let x = g.constant_view(view);
    model.set_training(false);
    let y = model.forward(&mut g, x);
    model.set_training(true);
    Ok(g.data(y?).to_vec())
}

/// Reads the reconstruction row (the bottom half) of a snapshot PNG back as images.
fn bottom_half_as_images(path: &Path, count: usize, h: usize, w: usize) -> Result<Vec<Vec<f32>>> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    let bad = |e: String| Error::Dataset {
        path: path.to_path_buf(),
        detail: e,
    };
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    let (width, scale) = (info.width as usize, 2);
    let (cell_w, cell_h) = ((w + 1) * scale, (h + 1) * scale);
    let mut images = Vec::with_capacity(count);
    for c in 0..count {
        let mut img = Vec::with_capacity(h * w);
        for y in 0..h {
            for x in 0..w {
                let at = (cell_h + y * scale) * width + c * cell_w + x * scale;
                img.push(buf.get(at).copied().unwrap_or(0) as f32 / 255.0);
            }
        }
        images.push(img);
    }
    Ok(images)
}

/// A saved run's configuration and trained model.
///
/// # Errors
/// [`Error::Io`] / [`Error::Dataset`] naming the missing or broken file.
pub fn load_run(dir: &Path) -> Result<(RunConfig, Autoencoder)> {
    let run = RunDir(dir.to_path_buf());
    let text = std::fs::read_to_string(run.config()).map_err(Error::io(run.config()))?;
    let cfg: RunConfig = serde_json::from_str(&text).map_err(|e| Error::Dataset {
        path: run.config(),
        detail: format!("not a run configuration: {e}"),
    })?;
    let mut model = Autoencoder::new(&cfg.model, &mut StdRng::seed_from_u64(cfg.train.seed))?;
    let (tensors, _): (Tensors, _) = checkpoint::load(&run.model())?;
    load_state_dict(&mut model, &tensors)?;
    Ok((cfg, model))
}

/// `handgrad eval`: the test loss of a saved run, on the same test split it was trained with.
///
/// # Errors
/// As [`load_run`], and dataset errors.
pub fn eval_run(dir: &Path, opts: &RunOptions) -> Result<(f64, usize)> {
    let (cfg, mut model) = load_run(dir)?;
    let (_, splits) = load_data(&cfg, opts)?;
    let loss = evaluate(&mut model, &splits.test, cfg.train.loss, EVAL_BATCH)?;
    Ok((loss, splits.test.len()))
}

/// `handgrad reconstruct`: a PNG of `count` test images (top row) and their reconstructions.
///
/// # Errors
/// As [`eval_run`], and [`Error::Io`] if the picture cannot be written.
pub fn reconstruct_run(dir: &Path, out: &Path, count: usize, opts: &RunOptions) -> Result<Gray> {
    let (cfg, mut model) = load_run(dir)?;
    let (_, splits) = load_data(&cfg, opts)?;
    let indices: Vec<usize> = (0..splits.test.len().min(count.max(1))).collect();
    let (h, w) = (splits.test.rows, splits.test.cols);
    let originals = pixels_of(&splits.test, &indices);
    let recon = reconstruct(&mut model, &splits.test, &indices)?;
    let picture = grid(
        &[images_of(&originals, h * w), images_of(&recon, h * w)],
        h,
        w,
        2,
    );
    picture.save(out)?;
    Ok(picture)
}
