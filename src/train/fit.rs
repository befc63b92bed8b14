//! The training loop.
//!
//! One step, the heart of everything in this crate:
//!
//! ```text
//! x (a batch of images) → model → x̂ → loss(x̂, x) → backward → optimiser step → reset tape
//! ```
//!
//! An epoch visits every training image once, in a fresh seeded order; after it, the
//! validation loss decides early stopping and the learning-rate schedule. A [`Hooks`]
//! implementation watches from outside — progress bars, metrics files, checkpoints, pictures —
//! so this file stays the loop and nothing else.
//!
//! Everything a resumed run needs is in [`TrainState`] plus the model and optimiser tensors:
//! shuffles are derived from (seed, epoch) alone, so a run stopped after batch b of epoch e
//! and resumed replays exactly the batches an uninterrupted run would have seen, and ends with
//! the same weights.

use super::checkpoint::{self, Tensors};
use crate::autodiff::{Graph, Reduction, Var};
use crate::data::batches::epoch_order;
use crate::data::mnist::ImageSet;
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::models::{Autoencoder, LossName, OptimizerName, RunConfig};
use crate::nn::{load_state_dict, state_dict, Module};
use crate::optim::{AdaGrad, Adam, EarlyStopping, Optimizer, ReduceLrOnPlateau, Sgd, Verdict};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weighted by batch size).
    pub train_loss: f64,
    /// Mean loss on the validation set after the epoch (`NaN` without a validation set,
    /// stored as `null` in JSON, which has no NaN).
    #[serde(with = "nan_as_null")]
    pub val_loss: f64,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall-clock seconds the epoch's training took.
    pub seconds: f64,
}

/// Where a run stands: saved in every checkpoint, enough to resume it exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Batches completed in the epoch under way (0 at an epoch boundary).
    pub batch: usize,
    /// Σ batch loss × batch size so far in the epoch under way.
    pub epoch_loss_sum: f64,
    /// Images seen so far in the epoch under way.
    pub epoch_images: usize,
    /// Seconds spent so far in the epoch under way.
    pub epoch_seconds: f64,
    /// The current learning rate.
    pub lr: f32,
    /// ReduceLROnPlateau's counters (best so far, bad epochs, cooldown left).
    pub plateau: Option<(Option<f64>, usize, usize)>,
    /// Early stopping's state (best, best epoch, bad epochs).
    pub early: Option<(f64, Option<usize>, usize)>,
    /// Every finished epoch's metrics.
    pub history: Vec<EpochMetrics>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// How a call to [`Trainer::fit`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs ran.
    Completed,
    /// Early stopping ended training; the best weights were restored.
    StoppedEarly {
        /// The epoch whose weights were restored.
        best_epoch: usize,
    },
    /// [`Hooks::interrupted`] said stop; a checkpoint was saved by [`Hooks::on_interrupt`].
    Interrupted,
}

/// Progress of one batch, for progress bars.
#[derive(Clone, Copy, Debug)]
pub struct BatchProgress {
    /// Epoch under way, from 1.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// This batch's loss.
    pub loss: f64,
    /// Training images per second so far this epoch.
    pub images_per_second: f64,
}

/// Observers of a run. Every method has a default that does nothing.
pub trait Hooks {
    /// After every training step.
    fn on_batch(&mut self, _progress: &BatchProgress) {}
    /// After every epoch, with its metrics; `trainer.state` is already up to date.
    ///
    /// # Errors
    /// Stops training with this error (a full disk, say).
    fn on_epoch(&mut self, _trainer: &mut Trainer, _metrics: &EpochMetrics) -> Result<()> {
        Ok(())
    }
    /// Checked after every step: returning true stops training ([`Outcome::Interrupted`]).
    fn interrupted(&self) -> bool {
        false
    }
    /// Called once when interrupted, to save a checkpoint.
    ///
    /// # Errors
    /// Returned from [`Trainer::fit`].
    fn on_interrupt(&mut self, _trainer: &Trainer) -> Result<()> {
        Ok(())
    }
}

/// No hooks at all.
impl Hooks for () {}

/// A model, its optimiser and schedules, and the state of their training.
pub struct Trainer {
    /// The run's configuration.
    pub cfg: RunConfig,
    /// The model being trained.
    pub model: Autoencoder,
    /// The optimiser.
    pub opt: Box<dyn Optimizer>,
    /// Where training stands.
    pub state: TrainState,
    /// The weights of the best validation epoch so far (with early stopping).
    pub best: Option<Tensors>,
    plateau: Option<ReduceLrOnPlateau>,
    early: Option<EarlyStopping>,
    graph: Graph,
    batch: Vec<f32>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("cfg", &self.cfg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The optimiser a configuration asks for.
fn build_optimizer(cfg: &RunConfig) -> Result<Box<dyn Optimizer>> {
    let t = &cfg.train;
    Ok(match t.optimizer {
        OptimizerName::Adam => Box::new(Adam::new(t.lr)?.with_weight_decay(t.weight_decay)?),
        OptimizerName::Sgd => Box::new(
            Sgd::new(t.lr)?
                .with_momentum(t.momentum, false)?
                .with_weight_decay(t.weight_decay)?,
        ),
        OptimizerName::Adagrad => Box::new(AdaGrad::new(t.lr)?.with_decay(0.0, t.weight_decay)?),
    })
}

/// The reconstruction loss between a model output and its target.
///
/// # Errors
/// Shape errors if they differ.
pub fn reconstruction_loss(g: &mut Graph, loss: LossName, output: Var, target: Var) -> Result<Var> {
    match loss {
        LossName::Mse => g.mse(output, target, Reduction::Mean),
        LossName::Bce => g.bce(output, target, Reduction::Mean),
    }
}

/// Mean reconstruction loss of `model` over `set`, without recording, in batches.
///
/// # Errors
/// Shape errors from the model.
pub fn evaluate(
    model: &mut Autoencoder,
    set: &ImageSet,
    loss: LossName,
    batch_size: usize,
) -> Result<f64> {
    if set.is_empty() {
        return Ok(f64::NAN);
    }
    model.set_training(false);
    let mut g = Graph::new();
    g.set_recording(false);
    let mut buf = Vec::new();
    let (mut total, indices): (f64, Vec<usize>) = (0.0, (0..set.len()).collect());
    for chunk in indices.chunks(batch_size.max(1)) {
        g.reset();
        set.batch_into(chunk, &mut buf);
        let x = g.constant_view(
            ndarray::ArrayViewD::from_shape(set.batch_shape(chunk.len()).to_vec(), &buf)
                .map_err(|e| Error::shape("batch", e.to_string()))?,
        );
        let y = model.forward(&mut g, x)?;
        let l = reconstruction_loss(&mut g, loss, y, x)?;
        total += g.scalar(l)? as f64 * chunk.len() as f64;
    }
    model.set_training(true);
    Ok(total / set.len() as f64)
}

impl Trainer {
    /// A fresh trainer: the model initialised from the configuration's seed.
    ///
    /// # Errors
    /// Invalid settings or an inconsistent architecture.
    pub fn new(cfg: RunConfig) -> Result<Self> {
        cfg.validate()?;
        let mut rng = StdRng::seed_from_u64(cfg.train.seed);
        let model = Autoencoder::new(&cfg.model, &mut rng)?;
        let opt = build_optimizer(&cfg)?;
        let plateau = match cfg.train.plateau {
            Some(p) => Some(ReduceLrOnPlateau::new(p.factor, p.patience)?),
            None => None,
        };
        let early = cfg
            .train
            .early_stopping
            .map(|patience| EarlyStopping::new(patience, 0.0));
        let state = TrainState {
            epoch: 0,
            batch: 0,
            epoch_loss_sum: 0.0,
            epoch_images: 0,
            epoch_seconds: 0.0,
            lr: cfg.train.lr,
            plateau: plateau.as_ref().map(ReduceLrOnPlateau::counters),
            early: None,
            history: Vec::new(),
            stopped_early: false,
        };
        Ok(Trainer {
            cfg,
            model,
            opt,
            state,
            best: None,
            plateau,
            early,
            graph: Graph::new(),
            batch: Vec::new(),
        })
    }

    /// Everything needed to resume, as safetensors: model tensors under `model.`, optimiser
    /// state under `optim.<parameter>.<key>`, and the state and configuration as JSON metadata.
    ///
    /// # Errors
    /// Serialisation errors (none expected).
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors = Tensors::new();
        for (name, t) in state_dict(&self.model) {
            tensors.insert(format!("model.{name}"), t);
        }
        for (param, entry) in self.opt.state() {
            for (key, values) in entry {
                tensors.insert(
                    format!("optim.{param}.{key}"),
                    ndarray::Array1::from(values).into_dyn(),
                );
            }
        }
        let meta = HashMap::from([
            ("handgrad.state".to_string(), to_json(&self.state)?),
            ("handgrad.config".to_string(), to_json(&self.cfg)?),
        ]);
        checkpoint::to_bytes(&tensors, &meta)
    }

    /// Rebuilds a trainer from a checkpoint written by [`Trainer::checkpoint_bytes`].
    ///
    /// # Errors
    /// [`Error::Dataset`] naming the file if it is not a handgrad checkpoint; shape errors if
    /// its tensors do not fit its configuration.
    pub fn resume(path: &Path) -> Result<Self> {
        let (tensors, meta) = checkpoint::load(path)?;
        let bad = |detail: String| Error::Dataset {
            path: path.to_path_buf(),
            detail,
        };
        let field = |key: &str| {
            meta.get(key)
                .ok_or_else(|| bad(format!("not a handgrad checkpoint (no {key} metadata)")))
        };
        let cfg: RunConfig = serde_json::from_str(field("handgrad.config")?)
            .map_err(|e| bad(format!("bad configuration: {e}")))?;
        let state: TrainState = serde_json::from_str(field("handgrad.state")?)
            .map_err(|e| bad(format!("bad state: {e}")))?;
        let mut trainer = Trainer::new(cfg)?;
        let model_tensors: Tensors = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model.").map(|n| (n.to_string(), v.clone())))
            .collect();
        load_state_dict(&mut trainer.model, &model_tensors)?;
        let mut opt_state = crate::optim::State::new();
        for (k, v) in &tensors {
            if let Some(rest) = k.strip_prefix("optim.") {
                let (param, key) = rest
                    .rsplit_once('.')
                    .ok_or_else(|| bad(format!("malformed optimiser entry {k}")))?;
                opt_state
                    .entry(param.to_string())
                    .or_default()
                    .insert(key.to_string(), v.iter().copied().collect());
            }
        }
        trainer.opt.load_state(&opt_state)?;
        let sizes = crate::nn::state_dict(&trainer.model);
        trainer
            .opt
            .common()
            .slots
            .check_sizes(|name| sizes.get(name).map(|t| t.len()))
            .map_err(|e| bad(e.to_string()))?;
        trainer.opt.set_lr(state.lr);
        if let (Some(p), Some(counters)) = (trainer.plateau.as_mut(), state.plateau) {
            p.set_counters(counters);
        }
        if let (Some(e), Some((best, best_epoch, bad_epochs))) =
            (trainer.early.as_mut(), state.early)
        {
            e.restore(best, best_epoch, bad_epochs);
        }
        trainer.state = state;
        Ok(trainer)
    }

    /// Trains until the configured number of epochs, early stopping, or an interruption.
    ///
    /// # Errors
    /// [`Error::NonFiniteLoss`] if the loss diverges (the model is left as it was before the
    /// bad step's update); errors from hooks or the model.
    pub fn fit(&mut self, data: &Splits, hooks: &mut dyn Hooks) -> Result<Outcome> {
        let t = self.cfg.train.clone();
        let n = data.train.len();
        let batches = n.div_ceil(t.batch_size);
        self.model.set_training(true);
        while self.state.epoch < t.epochs && !self.state.stopped_early {
            let epoch = self.state.epoch + 1;
            let order = epoch_order(n, t.seed, epoch);
            let started = Instant::now();
            let seconds_before = self.state.epoch_seconds;
            for (b, chunk) in order
                .chunks(t.batch_size)
                .enumerate()
                .skip(self.state.batch)
            {
                let loss = self.step(&data.train, chunk, t.loss).map_err(|e| match e {
                    Error::NonFiniteLoss { .. } => Error::NonFiniteLoss {
                        epoch,
                        batch: b + 1,
                    },
                    other => other,
                })?;
                self.state.batch = b + 1;
                self.state.epoch_loss_sum += loss * chunk.len() as f64;
                self.state.epoch_images += chunk.len();
                self.state.epoch_seconds = seconds_before + started.elapsed().as_secs_f64();
                hooks.on_batch(&BatchProgress {
                    epoch,
                    epochs: t.epochs,
                    batch: b + 1,
                    batches,
                    loss,
                    images_per_second: self.state.epoch_images as f64
                        / self.state.epoch_seconds.max(1e-9),
                });
                if hooks.interrupted() && b + 1 < batches {
                    hooks.on_interrupt(self)?;
                    return Ok(Outcome::Interrupted);
                }
            }
            let metrics = self.finish_epoch(data)?;
            hooks.on_epoch(self, &metrics)?;
            if hooks.interrupted() && self.state.epoch < t.epochs && !self.state.stopped_early {
                hooks.on_interrupt(self)?;
                return Ok(Outcome::Interrupted);
            }
        }
        if self.state.stopped_early {
            if let Some(best) = &self.best {
                load_state_dict(&mut self.model, best)?;
            }
            let best_epoch = self
                .state
                .early
                .and_then(|(_, e, _)| e)
                .unwrap_or(self.state.epoch);
            return Ok(Outcome::StoppedEarly { best_epoch });
        }
        Ok(Outcome::Completed)
    }

    /// One optimisation step on the images at `indices`; returns the batch loss.
    fn step(&mut self, set: &ImageSet, indices: &[usize], loss: LossName) -> Result<f64> {
        let g = &mut self.graph;
        g.reset();
        set.batch_into(indices, &mut self.batch);
        let view =
            ndarray::ArrayViewD::from_shape(set.batch_shape(indices.len()).to_vec(), &self.batch)
                .map_err(|e| Error::shape("batch", e.to_string()))?;
        let x = g.constant_view(view);
        let y = self.model.forward(g, x)?;
        let l = reconstruction_loss(g, loss, y, x)?;
        let value = g.scalar(l)?;
        if !value.is_finite() {
            return Err(Error::NonFiniteLoss { epoch: 0, batch: 0 });
        }
        g.backward(l)?;
        self.opt.step(&mut self.model, g);
        Ok(value as f64)
    }

    /// Validation, schedules and bookkeeping at the end of an epoch.
    fn finish_epoch(&mut self, data: &Splits) -> Result<EpochMetrics> {
        let t = &self.cfg.train;
        let val_loss = evaluate(&mut self.model, &data.val, t.loss, EVAL_BATCH)?;
        let s = &mut self.state;
        let metrics = EpochMetrics {
            epoch: s.epoch + 1,
            train_loss: s.epoch_loss_sum / s.epoch_images.max(1) as f64,
            val_loss,
            lr: s.lr as f64,
            seconds: s.epoch_seconds,
        };
        s.epoch += 1;
        (s.batch, s.epoch_loss_sum, s.epoch_images, s.epoch_seconds) = (0, 0.0, 0, 0.0);
        s.history.push(metrics.clone());
        if val_loss.is_finite() {
            if let Some(p) = self.plateau.as_mut() {
                s.lr = p.step(val_loss, s.lr as f64) as f32;
                self.opt.set_lr(s.lr);
                s.plateau = Some(p.counters());
            }
            if let Some(e) = self.early.as_mut() {
                match e.update(s.epoch, val_loss) {
                    Verdict::Improved => self.best = Some(state_dict(&self.model)),
                    Verdict::Wait => {}
                    Verdict::Stop => s.stopped_early = true,
                }
                s.early = e
                    .best()
                    .map(|(epoch, best)| (best, Some(epoch), e.bad_epochs()));
            }
        }
        Ok(metrics)
    }
}

/// Serde for an f64 that may be NaN: JSON has no NaN, so it is written as `null`.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Batch size for evaluation passes (validation, test): large enough to be fast, and fixed,
/// so the same model always gets exactly the same loss.
pub const EVAL_BATCH: usize = 500;

/// A value as JSON, for checkpoint metadata.
fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::config("checkpoint metadata", e.to_string()))
}
