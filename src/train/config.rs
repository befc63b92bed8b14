//! A training run described as data: what `config.json` in a run folder holds, what
//! `--config` reads (TOML or JSON), and the presets from the course reports.
//!
//! | preset | architecture | training |
//! |---|---|---|
//! | `conv-selu` (default) | conv 1→6 (k3 s2 p1), 6→39 (k3 s2 p1), 39→72 (k3 s2 p0); linear 648→145→98→52→6; SELU, LeCun-normal init; sigmoid output | Adam 1e-3, MSE, batch 512 |
//! | `conv-small` | conv 8, 16, 32 (k3 s2 p1); linear 64; latent 20; ReLU | Adam 2e-3, MSE, batch 128 |
//! | `mlp4` | 784→392→8→392→784, ReLU, sigmoid output | Adam 1e-3, batch 2048, ReduceLROnPlateau |
//! | `mlp1-K` | 784→K→784, sigmoid | Adam 1e-3, batch 32 |
//! | `mlp3-K` | 784→400→K→400→784, sigmoid | Adam 1e-3, batch 32 |
//!
//! A configuration file may give only what it changes: every field it leaves out is taken
//! from the preset it names (`preset = "conv-small"`), or from the default preset when its
//! `preset` is a name of the user's own or absent. A field the format does not have is
//! refused, naming it, so a typo never passes silently.

use crate::data::batches::SplitSpec;
use crate::data::corrupt::Corruption;
use crate::error::{Error, Result};
use crate::models::{ConvLayer, ModelSpec};
use crate::names::Named;
use crate::nn::Init;
use crate::optim::{CosineLr, StepLr};
use kernels::elementwise::Activation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

crate::named_enum! {
    /// The reconstruction loss.
    pub enum LossName: "loss" {
        Mse = "mse", "mean squared error per pixel",
        Bce = "bce", "binary cross-entropy, each pixel the probability of ink",
    }
}

impl LossName {
    /// The loss as a per-pixel unit, for tables and sentences: "MSE per pixel".
    pub fn per_pixel(self) -> String {
        format!("{} per pixel", self.name().to_uppercase())
    }
}

crate::named_enum! {
    /// The optimiser.
    pub enum OptimizerName: "optimizer" {
        Adam = "adam", "Adam: per-weight steps from running gradient moments",
        Sgd = "sgd", "stochastic gradient descent, with optional momentum",
        Adagrad = "adagrad", "AdaGrad: steps shrinking with each weight's summed squared gradients",
    }
}

/// ReduceLROnPlateau settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauSpec {
    /// Multiplier on a plateau.
    pub factor: f64,
    /// Bad epochs tolerated.
    pub patience: usize,
}

/// A learning rate set by the epoch, from the run's rate lr₀ (see [`crate::optim::schedule`]).
/// On the command line: `step:EVERY:GAMMA`, `cosine`, `cosine:PERIOD` or
/// `cosine:PERIOD:MIN_LR` (the period defaults to the run's epochs, the minimum to 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// PyTorch's `StepLR`: multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// The factor.
        gamma: f64,
    },
    /// PyTorch's `CosineAnnealingLR`: half a cosine from lr₀ down to `min_lr` over
    /// `period` epochs.
    Cosine {
        /// Epochs from lr₀ to `min_lr`.
        period: usize,
        /// The rate at the end.
        min_lr: f64,
    },
}

impl Schedule {
    /// Parses the command line's form; `epochs` is a cosine's period when none is given.
    ///
    /// # Errors
    /// [`Error::Config`] for any other text, naming the forms.
    pub fn parse(text: &str, epochs: usize) -> Result<Self> {
        let bad = || {
            Error::config(
                "schedule",
                format!("{text:?} is not step:EVERY:GAMMA (e.g. step:5:0.5), cosine, cosine:PERIOD or cosine:PERIOD:MIN_LR"),
            )
        };
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let number = |i: usize| parts[i].parse::<f64>().map_err(|_| bad());
        let whole = |i: usize| parts[i].parse::<usize>().map_err(|_| bad());
        match parts[..] {
            ["step", _, _] => Ok(Schedule::Step {
                every: whole(1)?,
                gamma: number(2)?,
            }),
            ["cosine"] => Ok(Schedule::Cosine {
                period: epochs,
                min_lr: 0.0,
            }),
            ["cosine", _] => Ok(Schedule::Cosine {
                period: whole(1)?,
                min_lr: 0.0,
            }),
            ["cosine", _, _] => Ok(Schedule::Cosine {
                period: whole(1)?,
                min_lr: number(2)?,
            }),
            _ => Err(bad()),
        }
    }

    /// The rate for `epoch` (from 0) of a run whose rate is `lr`.
    ///
    /// # Errors
    /// [`Error::Config`] for settings the schedule refuses (a zero period, γ outside (0, 1],
    /// a minimum above lr₀).
    pub fn lr_at(&self, lr: f64, epoch: usize) -> Result<f64> {
        Ok(match *self {
            Schedule::Step { every, gamma } => StepLr::new(lr, every, gamma)?.lr_at(epoch),
            Schedule::Cosine { period, min_lr } => CosineLr::new(lr, period, min_lr)?.lr_at(epoch),
        })
    }
}

/// How to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f32,
    /// Which optimiser.
    pub optimizer: OptimizerName,
    /// SGD momentum.
    #[serde(default)]
    pub momentum: f32,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: f32,
    /// Reconstruction loss.
    pub loss: LossName,
    /// Seed of initialisation, splits, shuffles and corruptions.
    #[serde(default)]
    pub seed: u64,
    /// Stop after this many epochs without validation improvement, restoring the best weights.
    #[serde(default)]
    pub early_stopping: Option<usize>,
    /// Lower the learning rate when validation loss plateaus.
    #[serde(default)]
    pub plateau: Option<PlateauSpec>,
    /// Set the learning rate by the epoch (not together with `plateau`).
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Epochs after which to save a reconstruction grid (the last epoch always gets one).
    #[serde(default = "default_snapshots")]
    pub snapshot_epochs: Vec<usize>,
    /// Corrupt every training input this way and ask for the clean image back: a denoising
    /// autoencoder (`gaussian:0.3`, `occlusion:10`, …).
    #[serde(default)]
    pub corrupt: Option<Corruption>,
    /// A VAE's weight β on the KL term (1 for the plain VAE).
    #[serde(default = "default_beta")]
    pub beta: f32,
}

fn default_snapshots() -> Vec<usize> {
    vec![1, 2, 5, 10, 20, 50, 100]
}

fn default_beta() -> f32 {
    1.0
}

/// Everything needed to repeat a run: what `config.json` in a run folder holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The preset it started from (or a name of the user's own).
    pub preset: String,
    /// `mnist`, `fashion-mnist` or a folder path.
    pub dataset: String,
    /// The architecture.
    pub model: ModelSpec,
    /// The training settings.
    pub train: TrainSpec,
    /// How the dataset was split.
    pub split: SplitSpec,
}

/// One preset: a named architecture and training recipe from the course reports.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Its name; `mlp1-K` and `mlp3-K` take the code size for K (`mlp1-32`).
    pub name: &'static str,
    /// What it is, for help texts and the README.
    pub describe: &'static str,
    /// Builds it; `k` is the K of a parameterised name.
    build: fn(k: usize) -> (ModelSpec, TrainSpec),
    /// The K used when the preset is shown with defaults (help texts).
    example_k: usize,
}

/// The preset `handgrad train` uses when none is named.
pub const DEFAULT_PRESET: &str = "conv-selu";

/// Every preset: the one list that `--help`, the README and the parser use.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "conv-selu",
        describe:
            "conv 1→6→39→72, linear 648→145→98→52→6, SELU, LeCun-normal; Adam 1e-3, batch 512",
        build: conv_selu,
        example_k: 0,
    },
    Preset {
        name: "conv-small",
        describe: "conv 8, 16, 32, linear 64, code 20, ReLU; Adam 2e-3, batch 128",
        build: conv_small,
        example_k: 0,
    },
    Preset {
        name: "mlp4",
        describe: "784→392→8→392→784, ReLU; Adam 1e-3, batch 2048, ReduceLROnPlateau",
        build: mlp4,
        example_k: 0,
    },
    Preset {
        name: "mlp1-K",
        describe: "784→K→784, sigmoid throughout; Adam 1e-3, batch 32",
        build: |k| mlp_k(vec![], k),
        example_k: 32,
    },
    Preset {
        name: "mlp3-K",
        describe: "784→400→K→400→784, sigmoid throughout; Adam 1e-3, batch 32",
        build: |k| mlp_k(vec![400], k),
        example_k: 32,
    },
];

fn train_spec(lr: f32, batch_size: usize) -> TrainSpec {
    TrainSpec {
        epochs: 20,
        batch_size,
        lr,
        optimizer: OptimizerName::Adam,
        momentum: 0.0,
        weight_decay: 0.0,
        loss: LossName::Mse,
        seed: 0,
        early_stopping: None,
        plateau: None,
        schedule: None,
        snapshot_epochs: default_snapshots(),
        corrupt: None,
        beta: default_beta(),
    }
}

fn conv3(channels: usize, padding: usize) -> ConvLayer {
    ConvLayer {
        channels,
        kernel: 3,
        stride: 2,
        padding,
    }
}

fn conv_selu(_: usize) -> (ModelSpec, TrainSpec) {
    let conv = vec![conv3(6, 1), conv3(39, 1), conv3(72, 0)];
    let mut m = ModelSpec::new(conv, vec![145, 98, 52], 6, Activation::Selu);
    // SELU's self-normalisation assumes LeCun-normal weights; with PyTorch's default uniform
    // init this model sits at the mean image for many epochs.
    m.init = Init::LecunNormal;
    (m, train_spec(1e-3, 512))
}

fn conv_small(_: usize) -> (ModelSpec, TrainSpec) {
    let conv = vec![conv3(8, 1), conv3(16, 1), conv3(32, 1)];
    let m = ModelSpec::new(conv, vec![64], 20, Activation::Relu);
    (m, train_spec(2e-3, 128))
}

fn mlp4(_: usize) -> (ModelSpec, TrainSpec) {
    let mut t = train_spec(1e-3, 2048);
    t.plateau = Some(PlateauSpec {
        factor: 0.5,
        patience: 3,
    });
    (ModelSpec::new(vec![], vec![392], 8, Activation::Relu), t)
}

/// The report's shallow and three-layer sigmoid autoencoders. They train with batch 32: at
/// batch 256 both this engine and PyTorch sit at the mean image for 20 epochs on 8,000
/// images, because saturated sigmoids need many small steps to get going.
fn mlp_k(hidden: Vec<usize>, k: usize) -> (ModelSpec, TrainSpec) {
    let mut m = ModelSpec::new(vec![], hidden, k, Activation::Sigmoid);
    m.code_activation = Some(Activation::Sigmoid);
    (m, train_spec(1e-3, 32))
}

impl Preset {
    /// The preset a name refers to, and the K of `mlp1-K`/`mlp3-K` (0 for the others).
    pub fn find(name: &str) -> Option<(Preset, usize)> {
        PRESETS.iter().find_map(|p| match p.name.strip_suffix('K') {
            None => (p.name == name).then_some((*p, 0)),
            Some(prefix) => name
                .strip_prefix(prefix)
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|&k| k > 0)
                .map(|k| (*p, k)),
        })
    }

    /// Every preset's name, for messages: "conv-selu, conv-small, mlp4, mlp1-K, mlp3-K".
    pub fn names() -> String {
        PRESETS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How a setting's default differs between presets, for help texts: "20" when every
    /// preset agrees, else "conv-selu 512, conv-small 128, …".
    pub fn defaults_of(setting: impl Fn(&RunConfig) -> String) -> String {
        let values: Vec<(String, &str)> = PRESETS
            .iter()
            .map(|p| {
                let name = p.name.replace('K', &p.example_k.to_string());
                (
                    setting(&RunConfig::preset(&name).unwrap_or_else(|_| RunConfig::default())),
                    p.name,
                )
            })
            .collect();
        if values.iter().all(|(v, _)| *v == values[0].0) {
            return values[0].0.clone();
        }
        values
            .iter()
            .map(|(v, name)| format!("{name} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for RunConfig {
    /// The default preset on MNIST.
    fn default() -> Self {
        let (model, train) = conv_selu(0);
        RunConfig {
            preset: DEFAULT_PRESET.into(),
            dataset: "mnist".into(),
            model,
            train,
            split: SplitSpec::default(),
        }
    }
}

impl RunConfig {
    /// A small, quick run of preset `name` (the course's examples use it): at most `images`
    /// images for training and validation (a tenth of them for validation), `epochs` passes at
    /// batch size `batch`, no reconstruction snapshots.
    ///
    /// # Errors
    /// As [`RunConfig::preset`].
    pub fn quick(name: &str, images: usize, epochs: usize, batch: usize) -> Result<Self> {
        let mut cfg = Self::preset(name)?;
        cfg.train.epochs = epochs;
        cfg.train.batch_size = batch;
        cfg.train.snapshot_epochs = Vec::new();
        cfg.split = crate::data::batches::SplitSpec {
            validation: crate::data::batches::Amount::Fraction(0.1),
            max_samples: Some(images),
            ..crate::data::batches::SplitSpec::default()
        };
        Ok(cfg)
    }

    /// The configuration of a named preset on the default dataset (MNIST).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown preset, listing the known ones.
    pub fn preset(name: &str) -> Result<Self> {
        let Some((preset, k)) = Preset::find(name) else {
            return Err(Error::config(
                "preset",
                format!(
                    "unknown {name:?} ({}, with K the code size, e.g. mlp1-32)",
                    Preset::names()
                ),
            ));
        };
        let (model, train) = (preset.build)(k);
        Ok(RunConfig {
            preset: name.to_string(),
            model,
            train,
            ..RunConfig::default()
        })
    }

    /// The configuration a command starts from: the file at `file` when one is given (its
    /// missing fields from the preset it names, else from `preset`), or else the preset
    /// `preset`. Options given on the command line are applied after, by
    /// [`Overrides::apply`](super::Overrides::apply).
    ///
    /// # Errors
    /// As [`RunConfig::from_file`] and [`RunConfig::preset`].
    pub fn load(preset: &str, file: Option<&Path>) -> Result<Self> {
        match file {
            Some(path) => Self::from_file(path, preset),
            None => Self::preset(preset),
        }
    }

    /// Reads a configuration file: TOML (`.toml`) or JSON (anything else). Fields the file
    /// leaves out come from the preset it names, or from `fallback_preset` when it names none
    /// (or a name of its own).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Config`] naming the file and the parser's message
    /// if malformed or holding a field the format does not have; invalid settings.
    pub fn from_file(path: &Path, fallback_preset: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let bad = |e: String| Error::config("config file", format!("{}: {e}", path.display()));
        let given: Value = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| bad(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        let named = given.get("preset").and_then(Value::as_str);
        let base_name = match named {
            Some(name) if Preset::find(name).is_some() => name,
            _ => fallback_preset,
        };
        let base =
            serde_json::to_value(Self::preset(base_name)?).map_err(|e| bad(e.to_string()))?;
        let merged = fill_from(base, given).map_err(bad)?;
        let cfg: RunConfig = serde_json::from_value(merged).map_err(|e| bad(e.to_string()))?;
        // A bad setting is named with the file it came from.
        cfg.validate().map_err(|e| bad(e.to_string()))?;
        Ok(cfg)
    }

    /// Checks the numbers that no type can (sizes ≥ 1, a positive learning rate, …). Whether
    /// the layers fit together is checked when the model is planned.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let t = &self.train;
        if t.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if t.batch_size == 0 {
            return Err(Error::config("batch size", "must be at least 1"));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(Error::config(
                "learning rate",
                format!("{} must be a positive number", t.lr),
            ));
        }
        if !(t.momentum.is_finite() && (0.0..1.0).contains(&t.momentum)) {
            return Err(Error::config(
                "momentum",
                format!("{} must be in [0, 1)", t.momentum),
            ));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(Error::config(
                "weight decay",
                format!("{} must be a number ≥ 0", t.weight_decay),
            ));
        }
        if !(t.beta.is_finite() && t.beta >= 0.0) {
            return Err(Error::config(
                "beta",
                format!("{} must be a number ≥ 0", t.beta),
            ));
        }
        if let Some(p) = t.plateau {
            if !(p.factor > 0.0 && p.factor < 1.0) {
                return Err(Error::config(
                    "plateau factor",
                    format!("{} must be between 0 and 1", p.factor),
                ));
            }
        }
        if let Some(schedule) = t.schedule {
            if t.plateau.is_some() {
                return Err(Error::config(
                    "schedule",
                    "a schedule and ReduceLROnPlateau would both set the learning rate: choose one",
                ));
            }
            schedule.lr_at(t.lr as f64, 0)?;
        }
        if t.early_stopping == Some(0) {
            return Err(Error::config(
                "early stopping",
                "the patience must be at least 1 epoch",
            ));
        }
        if t.snapshot_epochs.contains(&0) {
            return Err(Error::config("snapshot epochs", "epochs count from 1"));
        }
        if t.loss == LossName::Bce && self.model.output_activation != Some(Activation::Sigmoid) {
            return Err(Error::config(
                "loss",
                "bce treats outputs as probabilities, so the model needs a sigmoid output activation",
            ));
        }
        self.split.validate()?;
        Ok(())
    }

    /// What a picture's title calls the run: "conv-selu on mnist", or with what differs from
    /// the preset's model and kind of training, "mlp3-32 (code 2, VAE) on mnist". A title
    /// naming a preset whose model was changed would name another model.
    pub fn label(&self) -> String {
        let mut changes = Vec::new();
        if let Ok(preset) = Self::preset(&self.preset) {
            let (m, p) = (&self.model, &preset.model);
            if m.conv != p.conv {
                let channels: Vec<String> = m.conv.iter().map(|c| c.channels.to_string()).collect();
                changes.push(if channels.is_empty() {
                    "no conv".to_string()
                } else {
                    format!("conv {}", channels.join(","))
                });
            }
            if m.hidden != p.hidden {
                let sizes: Vec<String> = m.hidden.iter().map(ToString::to_string).collect();
                changes.push(format!("hidden {}", sizes.join(",")));
            }
            if m.latent != p.latent {
                changes.push(format!("code {}", m.latent));
            }
            if m.activation != p.activation {
                changes.push(m.activation.name().to_string());
            }
            if m.batch_norm && !p.batch_norm {
                changes.push("batch norm".into());
            }
            if m.variational && !p.variational {
                changes.push("VAE".into());
            }
        }
        if let Some(c) = &self.train.corrupt {
            changes.push(format!("denoising {c}"));
        }
        if changes.is_empty() {
            format!("{} on {}", self.preset, self.dataset)
        } else {
            format!(
                "{} ({}) on {}",
                self.preset,
                changes.join(", "),
                self.dataset
            )
        }
    }

    /// A short description of the objective: "MSE per pixel", or for a VAE
    /// "BCE summed per image + 1·KL".
    pub fn objective(&self) -> String {
        if self.model.variational {
            let loss = self.train.loss.name().to_uppercase();
            format!("{loss} summed per image + {}·KL", self.train.beta)
        } else {
            self.train.loss.per_pixel()
        }
    }
}

/// `given` with every field it leaves out taken from `base`. The top level and the `model`,
/// `train` and `split` sections are filled field by field; anything deeper (a layer list, a
/// split amount, the plateau settings) is taken whole from `given` when it gives it, since
/// half of a layer list or half of an amount means nothing.
fn fill_from(mut base: Value, given: Value) -> std::result::Result<Value, String> {
    let Value::Object(given) = given else {
        return Err("a configuration is a table (TOML) or an object (JSON)".into());
    };
    let Value::Object(base_fields) = &mut base else {
        return Err("internal: the preset is not an object".into());
    };
    for (key, value) in given {
        match (key.as_str(), base_fields.get_mut(&key), value) {
            ("model" | "train" | "split", Some(Value::Object(section)), Value::Object(fields)) => {
                for (k, v) in fields {
                    section.insert(k, v);
                }
            }
            (_, _, value) => {
                base_fields.insert(key, value);
            }
        }
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_names_what_differs_from_the_preset() {
        let plain = RunConfig::preset("mlp3-32").expect("preset");
        assert_eq!(plain.label(), "mlp3-32 on mnist");
        let mut changed = plain.clone();
        changed.model.latent = 2;
        changed.model.variational = true;
        changed.dataset = "fashion-mnist".into();
        assert_eq!(changed.label(), "mlp3-32 (code 2, VAE) on fashion-mnist");
        let mut denoiser = RunConfig::default();
        denoiser.train.corrupt = Some("gaussian:0.4".parse().expect("spec"));
        denoiser.model.hidden = vec![64];
        assert_eq!(
            denoiser.label(),
            "conv-selu (hidden 64, denoising gaussian:0.4) on mnist"
        );
    }
}
