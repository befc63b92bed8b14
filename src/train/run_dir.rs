//! A run folder: where one training run keeps everything it made.
//!
//! ```text
//! runs/NAME/
//!   config.json              everything needed to repeat the run
//!   metrics.csv              epoch, losses (and a VAE's terms), learning rate, seconds
//!   loss.png                 training and validation loss against epoch
//!   model.safetensors        the trained weights, PyTorch's parameter names
//!   best.safetensors         the best validation epoch's weights (with early stopping)
//!   checkpoint.safetensors   model + optimiser + training state, for --resume
//!   reconstructions/epoch_NNN.png   test images and their reconstructions after that epoch
//!   reconstructions.png      the same test images, then one row per snapshot epoch
//!   report.html              one page with all of the above
//! ```
//!
//! Every file is written atomically, after every epoch, so an interrupted or crashed run
//! leaves a consistent folder. An existing folder is never overwritten: a new run needs a new
//! folder, and `--resume` continues an old one.

use super::checkpoint::{self, Tensors};
use super::config::RunConfig;
use super::fit::{to_json, EpochMetrics, Trainer};
use crate::error::{Error, Result};
use crate::models::Autoencoder;
use crate::nn::{load_state_dict, state_dict, Module};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// `summary.json`: what training measured, for drawing the page again.
    pub fn summary(&self) -> PathBuf {
        self.0.join("summary.json")
    }
    /// `report.html`.
    pub fn report(&self) -> PathBuf {
        self.0.join("report.html")
    }
    /// `training.pid`: present while a process trains the run, holding its process id.
    pub fn training_mark(&self) -> PathBuf {
        self.0.join("training.pid")
    }

    /// Where the run stands, from its files: being trained (a training mark whose process is
    /// alive), finished (a summary, and no live mark), interrupted (a checkpoint but no
    /// summary: stopped by Ctrl-C or a crash, to continue with `--resume`), or not started.
    pub fn state(&self) -> RunState {
        if let Ok(text) = std::fs::read_to_string(self.training_mark()) {
            if text.trim().parse::<u32>().is_ok_and(process_alive) {
                return RunState::Training;
            }
        }
        if self.summary().is_file() {
            RunState::Finished
        } else if self.checkpoint().is_file() {
            RunState::Interrupted
        } else {
            RunState::NotStarted
        }
    }

    /// The outputs present in the folder, as a user would list them.
    pub fn outputs(&self) -> Vec<String> {
        let mut found: Vec<String> = [
            "config.json",
            "metrics.csv",
            "loss.png",
            "model.safetensors",
            "best.safetensors",
            "checkpoint.safetensors",
            "reconstructions.png",
            "report.html",
            "summary.json",
        ]
        .iter()
        .filter(|f| self.0.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
        let snapshots = std::fs::read_dir(self.0.join("reconstructions"))
            .map(|d| d.filter_map(|e| e.ok()).count())
            .unwrap_or(0);
        if snapshots > 0 {
            let plural = if snapshots == 1 { "" } else { "s" };
            found.push(format!("reconstructions/ ({snapshots} snapshot{plural})"));
        }
        found
    }

    /// The validation loss after each epoch, from `metrics.csv` (empty when the run has no
    /// metrics yet; NaN for epochs without a validation set).
    ///
    /// # Errors
    /// As [`RunDir::history`].
    pub fn val_losses(&self) -> Result<Vec<f64>> {
        Ok(self.history()?.iter().map(|m| m.val_loss).collect())
    }

    /// Every epoch's metrics from `metrics.csv`: epoch, losses, learning rate and seconds
    /// (a VAE's terms left out); empty when the run has no metrics yet.
    ///
    /// # Errors
    /// [`Error::Dataset`] naming the file when its header lacks one of those columns or a
    /// value there is not a number; [`Error::Io`] if it cannot be read.
    pub fn history(&self) -> Result<Vec<EpochMetrics>> {
        let path = self.metrics();
        if !path.is_file() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        let broken = |detail: String| Error::Dataset {
            path: path.clone(),
            detail,
        };
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let columns = ["epoch", "train_loss", "val_loss", "lr", "seconds"].map(|name| {
            header
                .iter()
                .position(|c| *c == name)
                .ok_or_else(|| broken(format!("its header has no {name} column")))
        });
        let [epoch, train, val, lr, seconds] = columns;
        let (epoch, train, val, lr, seconds) = (epoch?, train?, val?, lr?, seconds?);
        lines
            .enumerate()
            .map(|(i, line)| {
                let cells: Vec<&str> = line.split(',').collect();
                let number = |column: usize| {
                    cells
                        .get(column)
                        .and_then(|v| v.parse::<f64>().ok())
                        .ok_or_else(|| {
                            broken(format!(
                                "line {}: no number in the {} column ({})",
                                i + 2,
                                header[column],
                                crate::error::quote(line)
                            ))
                        })
                };
                Ok(EpochMetrics {
                    epoch: number(epoch)? as usize,
                    train_loss: number(train)?,
                    val_loss: number(val)?,
                    train_terms: Vec::new(),
                    val_terms: Vec::new(),
                    lr: number(lr)?,
                    seconds: number(seconds)?,
                })
            })
            .collect()
    }

    /// Reads the run's configuration.
    ///
    /// # Errors
    /// [`Error::Dataset`] saying the folder is not a run folder when it has no
    /// `config.json`; [`Error::Dataset`] naming the file when it is not a run configuration.
    pub fn read_config(&self) -> Result<RunConfig> {
        if !self.config().is_file() {
            let what = if self.0.is_dir() {
                "is not a run folder (it has no config.json); a run folder is what `handgrad train` writes, e.g. runs/conv-selu-mnist"
            } else {
                "does not exist; a run folder is what `handgrad train` writes, e.g. runs/conv-selu-mnist"
            };
            return Err(Error::Dataset {
                path: self.0.clone(),
                detail: what.into(),
            });
        }
        let text = std::fs::read_to_string(self.config()).map_err(Error::io(self.config()))?;
        serde_json::from_str(&text).map_err(|e| Error::Dataset {
            path: self.config(),
            detail: format!("not a run configuration: {e}"),
        })
    }
}

/// Where a run stands (see [`RunDir::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// A process is training it now.
    Training,
    /// Training ended (all epochs, or early stopping).
    Finished,
    /// Stopped before its end; `train --resume` continues it.
    Interrupted,
    /// Nothing trained yet.
    NotStarted,
}

/// Whether process `pid` is running. On Linux, from `/proc`; elsewhere a training mark is
/// trusted as it is (a crashed run's mark then reads as training until removed).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The training mark of a run, removed when dropped: however training ends (finished,
/// interrupted, failed), the folder stops saying it is being trained.
#[derive(Debug)]
pub struct TrainingMark(PathBuf);

impl TrainingMark {
    /// Writes this process's id into `run`'s training mark.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn claim(run: &RunDir) -> Result<Self> {
        let path = run.training_mark();
        crate::fs::write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(TrainingMark(path))
    }
}

impl Drop for TrainingMark {
    fn drop(&mut self) {
        // A mark that cannot be removed reads as interrupted once this process is gone.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A folder name under `root` that does not exist yet: `root/<stem>`, else `root/<stem>-2`, …
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

/// The metadata every saved model carries: PyTorch's safetensors loader expects `format`.
pub fn model_metadata() -> HashMap<String, String> {
    HashMap::from([("format".to_string(), "pt".to_string())])
}

/// Writes a model's tensors with PyTorch's names, atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save_model(path: &Path, model: &dyn Module) -> Result<()> {
    checkpoint::save(path, &state_dict(model), &model_metadata())
}

/// A saved run's configuration and trained model.
///
/// # Errors
/// As [`RunDir::read_config`]; [`Error::Io`] / [`Error::Dataset`] naming a missing or broken
/// model file; an architecture error if the weights do not fit the configuration.
pub fn load_run(dir: &Path) -> Result<(RunConfig, Autoencoder)> {
    let run = RunDir(dir.to_path_buf());
    let cfg = run.read_config()?;
    let mut model = Autoencoder::new(&cfg.model, &mut StdRng::seed_from_u64(cfg.train.seed))?;
    if !run.model().is_file() {
        return Err(Error::Dataset {
            path: run.model(),
            detail: "missing: the run has not finished an epoch yet (continue it with --resume)"
                .into(),
        });
    }
    let (tensors, _): (Tensors, _) = checkpoint::load(&run.model())?;
    load_state_dict(&mut model, &tensors).map_err(|e| Error::Dataset {
        path: run.model(),
        detail: format!("does not fit the run's configuration: {e}"),
    })?;
    Ok((cfg, model))
}

/// A trainer for the autoencoder `cfg` describes, its weights drawn from the run's seed.
///
/// # Errors
/// As [`Autoencoder::new`] and [`Trainer::new`].
pub fn new_trainer(cfg: &RunConfig) -> Result<Trainer<Autoencoder>> {
    let model = Autoencoder::new(&cfg.model, &mut StdRng::seed_from_u64(cfg.train.seed))?;
    Trainer::new(model, cfg.train.clone())
}

/// An autoencoder run's checkpoint: the trainer's tensors and state, the run's configuration
/// as metadata (`handgrad.config`), and `extra` tensors (the kept snapshot pictures).
///
/// # Errors
/// Serialisation errors (none expected).
pub fn checkpoint_bytes(
    trainer: &Trainer<Autoencoder>,
    cfg: &RunConfig,
    extra: &Tensors,
) -> Result<Vec<u8>> {
    trainer.checkpoint_bytes(&[("handgrad.config", to_json(cfg)?)], extra)
}

/// Reads an autoencoder run's checkpoint: its configuration, a trainer restored from it, and
/// all its tensors (for the extras).
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Dataset`] naming the file if it is not a handgrad
/// checkpoint or does not fit its own configuration.
pub fn resume_trainer(path: &Path) -> Result<(RunConfig, Trainer<Autoencoder>, Tensors)> {
    let (tensors, meta) = checkpoint::load(path)?;
    let cfg: RunConfig = checkpoint::meta_json(path, &meta, "handgrad.config", "configuration")?;
    let mut trainer = new_trainer(&cfg)?;
    trainer.restore(path, &tensors, &meta)?;
    Ok((cfg, trainer, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_folder_says_where_it_stands() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("handgrad-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let run = RunDir(dir.clone());
        let touch = |p: PathBuf| std::fs::write(&p, b"x").map_err(Error::io(&p));
        assert_eq!(run.state(), RunState::NotStarted);
        touch(run.checkpoint())?;
        assert_eq!(run.state(), RunState::Interrupted);
        {
            let _mark = TrainingMark::claim(&run)?;
            assert_eq!(run.state(), RunState::Training);
        }
        // The mark is gone with its guard; a mark left by a process that died is ignored.
        assert!(!run.training_mark().exists());
        std::fs::write(run.training_mark(), u32::MAX.to_string())
            .map_err(Error::io(run.training_mark()))?;
        assert_eq!(run.state(), RunState::Interrupted);
        touch(run.summary())?;
        assert_eq!(run.state(), RunState::Finished);
        std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
        Ok(())
    }
}
