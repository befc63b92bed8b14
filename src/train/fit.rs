//! The training loop.
//!
//! One step, the heart of everything in this crate:
//!
//! ```text
//! x (a batch) → [corrupt] → model → loss → backward → optimiser step → reset tape
//! ```
//!
//! An epoch visits every training sample once, in a fresh seeded order; after it, the
//! validation loss decides early stopping and the learning-rate schedule. A [`Hooks`]
//! implementation watches from outside — progress, metrics files, checkpoints, pictures — so
//! this file stays the loop and nothing else. What the loss is belongs to the model
//! ([`super::task::Task`]).
//!
//! Everything a resumed run needs is in [`TrainState`] plus the model and optimiser tensors:
//! shuffles are derived from (seed, epoch), and the randomness of a step (its corruption, a
//! VAE's samples) from (seed, epoch, batch), so a run stopped after batch b of epoch e and
//! resumed replays exactly the steps an uninterrupted run would have taken, and ends with the
//! same weights.

use super::checkpoint::{self, Tensors};
use super::config::{OptimizerName, TrainSpec};
use super::evaluate::{batch_on_tape, evaluate};
use super::task::{Task, Terms};
use crate::autodiff::Graph;
use crate::data::batches::{epoch_order, Samples};
use crate::error::{Error, Result};
use crate::nn::{load_state_dict, state_dict, Name};
use crate::optim::{AdaGrad, Adam, EarlyStopping, Optimizer, ReduceLrOnPlateau, Sgd, Verdict};
use crate::seed::{self, Stream};
use rand::rngs::StdRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    /// The task's other terms over the epoch's batches ([`Task::term_names`] names them).
    #[serde(default)]
    pub train_terms: Vec<f64>,
    /// The same terms on the validation set.
    #[serde(default)]
    pub val_terms: Vec<f64>,
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
    /// Σ batch term × batch size so far in the epoch under way, per term.
    #[serde(default)]
    pub epoch_term_sums: Vec<f64>,
    /// Samples seen so far in the epoch under way.
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
    /// Training samples per second so far this epoch.
    pub images_per_second: f64,
}

/// Observers of a run. Every method has a default that does nothing.
pub trait Hooks<M: Task> {
    /// After every training step.
    fn on_batch(&mut self, _progress: &BatchProgress) {}
    /// After every epoch, with its metrics; `trainer.state` is already up to date.
    ///
    /// # Errors
    /// Stops training with this error (a full disk, say).
    fn on_epoch(&mut self, _trainer: &mut Trainer<M>, _metrics: &EpochMetrics) -> Result<()> {
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
    fn on_interrupt(&mut self, _trainer: &Trainer<M>) -> Result<()> {
        Ok(())
    }
}

/// No hooks at all.
impl<M: Task> Hooks<M> for () {}

/// A model, its optimiser and schedules, and the state of their training.
pub struct Trainer<M: Task> {
    /// How to train.
    pub spec: TrainSpec,
    /// The model being trained.
    pub model: M,
    /// The optimiser.
    pub opt: Box<dyn Optimizer>,
    /// Where training stands.
    pub state: TrainState,
    /// The weights of the best validation epoch so far (with early stopping).
    pub best: Option<Tensors>,
    plateau: Option<ReduceLrOnPlateau>,
    early: Option<EarlyStopping>,
    graph: Graph,
    /// Reused from step to step: the labels of a batch, the buffer parameter names are
    /// built in.
    labels: Vec<u8>,
    names: Name,
}

impl<M: Task> std::fmt::Debug for Trainer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("spec", &self.spec)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The optimiser a training spec asks for.
fn build_optimizer(t: &TrainSpec) -> Result<Box<dyn Optimizer>> {
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

impl<M: Task> Trainer<M> {
    /// A trainer for `model`, starting from scratch.
    ///
    /// # Errors
    /// Invalid optimiser or schedule settings.
    pub fn new(model: M, spec: TrainSpec) -> Result<Self> {
        let opt = build_optimizer(&spec)?;
        let plateau = match spec.plateau {
            Some(p) => Some(ReduceLrOnPlateau::new(p.factor, p.patience)?),
            None => None,
        };
        let early = spec
            .early_stopping
            .map(|patience| EarlyStopping::new(patience, 0.0));
        let state = TrainState {
            epoch: 0,
            batch: 0,
            epoch_loss_sum: 0.0,
            epoch_term_sums: vec![0.0; model.term_names().len()],
            epoch_images: 0,
            epoch_seconds: 0.0,
            lr: spec.lr,
            plateau: plateau.as_ref().map(ReduceLrOnPlateau::counters),
            early: None,
            history: Vec::new(),
            stopped_early: false,
        };
        Ok(Trainer {
            spec,
            model,
            opt,
            state,
            best: None,
            plateau,
            early,
            graph: Graph::new(),
            labels: Vec::new(),
            names: Name::default(),
        })
    }

    /// Everything needed to resume, as safetensors: model tensors under `model.`, optimiser
    /// state under `optim.<parameter>.<key>`, extra tensors under their own names, and the
    /// state as JSON metadata (`handgrad.state`), next to `meta` (the caller's description of
    /// the run, e.g. its configuration).
    ///
    /// # Errors
    /// Serialisation errors (none expected).
    pub fn checkpoint_bytes(&self, meta: &[(&str, String)], extra: &Tensors) -> Result<Vec<u8>> {
        let mut tensors = extra.clone();
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
        let mut metadata: HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        metadata.insert("handgrad.state".into(), to_json(&self.state)?);
        checkpoint::to_bytes(&tensors, &metadata)
    }

    /// Restores model, optimiser and training state from a checkpoint written by
    /// [`Trainer::checkpoint_bytes`] (for the same model); `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::Dataset`] naming the file if its state is missing or its tensors do not fit
    /// the model.
    pub fn restore(
        &mut self,
        path: &std::path::Path,
        tensors: &Tensors,
        meta: &HashMap<String, String>,
    ) -> Result<()> {
        let bad = |detail: String| Error::Dataset {
            path: path.to_path_buf(),
            detail,
        };
        let state: TrainState =
            checkpoint::meta_json(path, meta, "handgrad.state", "training state")?;
        let model_tensors: Tensors = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model.").map(|n| (n.to_string(), v.clone())))
            .collect();
        load_state_dict(&mut self.model, &model_tensors).map_err(|e| bad(e.to_string()))?;
        let mut opt_state = crate::optim::State::new();
        for (k, v) in tensors {
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
        self.opt.load_state(&opt_state)?;
        let sizes = state_dict(&self.model);
        self.opt
            .common()
            .slots
            .check_sizes(|name| sizes.get(name).map(|t| t.len()))
            .map_err(|e| bad(e.to_string()))?;
        self.opt.set_lr(state.lr);
        if let (Some(p), Some(counters)) = (self.plateau.as_mut(), state.plateau) {
            p.set_counters(counters);
        }
        if let (Some(e), Some((best, best_epoch, bad_epochs))) = (self.early.as_mut(), state.early)
        {
            e.restore(best, best_epoch, bad_epochs);
        }
        self.state = state;
        Ok(())
    }

    /// Trains until the configured number of epochs, early stopping, or an interruption.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the loss or a gradient becomes NaN or infinite (naming where it
    /// first appeared; the model is left as it was before the bad step); errors from hooks or
    /// the model.
    pub fn fit(
        &mut self,
        train: &dyn Samples,
        val: &dyn Samples,
        hooks: &mut dyn Hooks<M>,
    ) -> Result<Outcome> {
        let t = self.spec.clone();
        let n = train.len();
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
                let mut rng = seed::rng(t.seed, Stream::Step { epoch, batch: b });
                let masks = seed::rng(t.seed, Stream::Masks { epoch, batch: b }).next_u64();
                self.model.reseed(masks);
                let (loss, terms) = self.step(train, chunk, &mut rng).map_err(|e| match e {
                    Error::NonFinite { what, origin, .. } => Error::NonFinite {
                        what,
                        epoch,
                        batch: b + 1,
                        origin,
                        kept: None,
                    },
                    other => other,
                })?;
                let s = &mut self.state;
                s.batch = b + 1;
                s.epoch_loss_sum += loss * chunk.len() as f64;
                for (acc, v) in s.epoch_term_sums.iter_mut().zip(terms.as_slice()) {
                    *acc += v * chunk.len() as f64;
                }
                s.epoch_images += chunk.len();
                s.epoch_seconds = seconds_before + started.elapsed().as_secs_f64();
                hooks.on_batch(&BatchProgress {
                    epoch,
                    epochs: t.epochs,
                    batch: b + 1,
                    batches,
                    loss,
                    images_per_second: s.epoch_images as f64 / s.epoch_seconds.max(1e-9),
                });
                if hooks.interrupted() && b + 1 < batches {
                    hooks.on_interrupt(self)?;
                    return Ok(Outcome::Interrupted);
                }
            }
            let metrics = self.finish_epoch(val)?;
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

    /// Times every op of the training steps from now on (see [`crate::autodiff::profile`]).
    pub fn enable_profile(&mut self) {
        self.graph.enable_profile();
    }

    /// Time per op type of the training steps since [`Trainer::enable_profile`].
    pub fn profile(&self) -> Vec<crate::autodiff::ProfileRow> {
        self.graph.profile()
    }

    /// The tape of the last training step, node by node (see [`Graph::trace`]).
    pub fn trace(&self) -> Vec<crate::autodiff::TraceRow> {
        self.graph.trace()
    }

    /// One optimisation step on the samples at `indices` (forward, loss, backward, the
    /// finiteness checks, the optimiser's update); returns the batch loss and terms. [`fit`]
    /// calls it for every batch; `handgrad bench` times it alone.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN or infinite loss or gradient; shape errors.
    ///
    /// [`fit`]: Trainer::fit
    pub fn step(
        &mut self,
        set: &dyn Samples,
        indices: &[usize],
        rng: &mut StdRng,
    ) -> Result<(f64, Terms)> {
        let g = &mut self.graph;
        g.reset();
        let corrupt = self.spec.corrupt.as_ref();
        self.labels.clear();
        self.labels.extend(indices.iter().map(|&i| set.labels()[i]));
        let batch = batch_on_tape(g, set, indices, corrupt, rng, &self.labels)?;
        let (loss, terms) = self.model.loss(g, &batch, &self.spec, true, rng)?;
        let value = g.scalar(loss)?;
        if !value.is_finite() {
            return Err(non_finite("loss", g.first_non_finite_value()));
        }
        g.backward(loss)?;
        if !gradients_finite(&self.model, g, &mut self.names) {
            let origin = g.first_non_finite_gradient(loss)?;
            return Err(non_finite("gradient", origin));
        }
        self.opt.step(&mut self.model, g);
        Ok((value as f64, terms))
    }

    /// Validation, schedules and bookkeeping at the end of an epoch.
    fn finish_epoch(&mut self, val: &dyn Samples) -> Result<EpochMetrics> {
        let valid = evaluate(&mut self.model, val, &self.spec, self.spec.corrupt.as_ref())?;
        let s = &mut self.state;
        let seen = s.epoch_images.max(1) as f64;
        let metrics = EpochMetrics {
            epoch: s.epoch + 1,
            train_loss: s.epoch_loss_sum / seen,
            val_loss: valid.loss,
            train_terms: s.epoch_term_sums.iter().map(|v| v / seen).collect(),
            val_terms: valid.terms,
            lr: s.lr as f64,
            seconds: s.epoch_seconds,
        };
        s.epoch += 1;
        (s.batch, s.epoch_loss_sum, s.epoch_images, s.epoch_seconds) = (0, 0.0, 0, 0.0);
        s.epoch_term_sums.iter_mut().for_each(|v| *v = 0.0);
        s.history.push(metrics.clone());
        if let Some(schedule) = self.spec.schedule {
            s.lr = schedule.lr_at(self.spec.lr as f64, s.epoch)? as f32;
            self.opt.set_lr(s.lr);
        }
        if valid.loss.is_finite() {
            if let Some(p) = self.plateau.as_mut() {
                s.lr = p.step(valid.loss, s.lr as f64) as f32;
                self.opt.set_lr(s.lr);
                s.plateau = Some(p.counters());
            }
            if let Some(e) = self.early.as_mut() {
                match e.update(s.epoch, valid.loss) {
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

/// The error for a NaN or infinite `what`, with where it first appeared.
fn non_finite(what: &'static str, origin: Option<crate::autodiff::Place>) -> Error {
    Error::NonFinite {
        what,
        epoch: 0,
        batch: 0,
        origin: origin.map(|p| p.to_string()),
        kept: None,
    }
}

/// Whether every parameter gradient on `g` is finite (a few hundred thousand numbers, read
/// with a vectorised check: at batch 32 a plain `all(is_finite)` took a tenth of mlp4's step).
fn gradients_finite<M: Task>(model: &M, g: &Graph, names: &mut Name) -> bool {
    let mut finite = true;
    model.visit(names, &mut |_, p| {
        if let Some(grad) = g.param_grad(p.id()) {
            finite &= crate::autodiff::graph::all_finite(grad);
        }
    });
    finite
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

/// A value as JSON, for checkpoint metadata.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::format("checkpoint metadata", e.to_string()))
}
