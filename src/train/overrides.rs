//! Settings given on top of a preset or a configuration file.
//!
//! A run starts from a preset (or a file, completed from one) and the user may change any
//! setting from the command line: `--preset mlp4 --latent 2 --lr 3e-3`. Every command that
//! builds a run (train, sweep, search, trace, explain, bench) collects what was given into one
//! [`Overrides`] and applies it here, in one place, so a setting means the same thing whichever
//! command it is handed to.
//!
//! Values that need parsing (a loss name, a layer list, a corruption) are kept as the user's
//! text and parsed by [`Overrides::apply`], so a typo is refused with the same sentence however
//! the setting arrived.

use super::config::{PlateauSpec, RunConfig};
use crate::data::batches::Amount;
use crate::data::corrupt::Corruption;
use crate::error::{Error, Result};
use crate::models::ConvLayer;
use crate::names::{parse_activation, parse_optional_activation};

/// Every setting a user can give on top of a preset or a configuration file; `None` (or
/// `false`) leaves the setting as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `mnist`, `fashion-mnist` or a folder with IDX files.
    pub dataset: Option<String>,
    /// Passes over the training set.
    pub epochs: Option<usize>,
    /// Images per step.
    pub batch_size: Option<usize>,
    /// Learning rate.
    pub lr: Option<f32>,
    /// Size of the code.
    pub latent: Option<usize>,
    /// Encoder convolutions as `channels:kernel:stride:padding`, comma-separated, or `none`.
    pub conv: Option<String>,
    /// Hidden linear sizes, comma-separated, or `none`.
    pub hidden: Option<String>,
    /// The activation between layers, by name.
    pub activation: Option<String>,
    /// The decoder's last activation, or `none`.
    pub output_activation: Option<String>,
    /// An activation on the code itself, or `none`.
    pub code_activation: Option<String>,
    /// Turn batch normalisation on (it cannot be turned off from here).
    pub batch_norm: bool,
    /// Make the model a VAE.
    pub variational: bool,
    /// A VAE's weight on the KL term.
    pub beta: Option<f32>,
    /// A denoising autoencoder's corruption, e.g. `gaussian:0.3`.
    pub corrupt: Option<String>,
    /// The reconstruction loss, by name.
    pub loss: Option<String>,
    /// The optimiser, by name.
    pub optimizer: Option<String>,
    /// SGD momentum.
    pub momentum: Option<f32>,
    /// L2 weight decay.
    pub weight_decay: Option<f32>,
    /// Weight initialisation, by name.
    pub init: Option<String>,
    /// Seed of initialisation, splits, shuffles and corruptions (training and split alike).
    pub seed: Option<u64>,
    /// Validation set: a fraction or a count.
    pub validation: Option<String>,
    /// Test set carved from a test-only dataset: a fraction or a count.
    pub test: Option<String>,
    /// Keep only these classes.
    pub classes: Option<Vec<u8>>,
    /// At most this many images for training and validation together.
    pub max_samples: Option<usize>,
    /// Early-stopping patience in epochs.
    pub early_stopping: Option<usize>,
    /// ReduceLROnPlateau's patience; turns the schedule on.
    pub plateau_patience: Option<usize>,
    /// ReduceLROnPlateau's factor (0.5 when only the patience is given).
    pub plateau_factor: Option<f64>,
    /// Epochs after which to save a reconstruction picture.
    pub snapshot_epochs: Option<Vec<usize>>,
    /// A learning-rate schedule: `step:EVERY:GAMMA` or `cosine[:PERIOD[:MIN_LR]]`; replaces
    /// a preset's ReduceLROnPlateau.
    pub schedule: Option<String>,
    /// Max-pooling after each encoder convolution, upsampling in the mirrored decoder.
    pub pool: bool,
    /// Dropout probability after every hidden linear layer.
    pub dropout: Option<f32>,
}

/// ReduceLROnPlateau's factor when only the patience is given.
const DEFAULT_PLATEAU_FACTOR: f64 = 0.5;

impl Overrides {
    /// Writes every given setting into `cfg`. It does not validate the result: call
    /// [`RunConfig::validate`] once everything is set.
    ///
    /// # Errors
    /// [`Error::Config`] for a value that does not parse (naming it), and for a plateau factor
    /// without a patience on a preset that has no plateau schedule.
    pub fn apply(&self, cfg: &mut RunConfig) -> Result<()> {
        if let Some(d) = &self.dataset {
            cfg.dataset = d.clone();
        }
        let (m, t, s) = (&mut cfg.model, &mut cfg.train, &mut cfg.split);
        set(&mut t.epochs, self.epochs);
        set(&mut t.batch_size, self.batch_size);
        set(&mut t.lr, self.lr);
        set(&mut m.latent, self.latent);
        set(&mut t.momentum, self.momentum);
        set(&mut t.weight_decay, self.weight_decay);
        set(&mut t.beta, self.beta);
        if let Some(v) = &self.loss {
            t.loss = v.parse()?;
        }
        if let Some(v) = &self.optimizer {
            t.optimizer = v.parse()?;
        }
        if let Some(v) = &self.init {
            m.init = v.parse()?;
        }
        if let Some(v) = &self.activation {
            m.activation = parse_activation(v)?;
        }
        if let Some(v) = &self.conv {
            m.conv = parse_list(v, ConvLayer::parse)?;
        }
        if let Some(v) = &self.hidden {
            m.hidden = parse_list(v, |t| {
                t.parse::<usize>()
                    .map_err(|_| Error::config("hidden sizes", format!("{t:?} is not a size")))
            })?;
        }
        if let Some(v) = &self.output_activation {
            m.output_activation = parse_optional_activation(v)?;
        }
        if let Some(v) = &self.code_activation {
            m.code_activation = parse_optional_activation(v)?;
        }
        m.batch_norm |= self.batch_norm;
        m.pool |= self.pool;
        set(&mut m.dropout, self.dropout);
        m.variational |= self.variational;
        if let Some(v) = &self.corrupt {
            t.corrupt = Some(v.parse::<Corruption>()?);
        }
        if let Some(v) = self.seed {
            t.seed = v;
            s.seed = v;
        }
        if let Some(v) = &self.validation {
            s.validation = Amount::parse(v)?;
        }
        if let Some(v) = &self.test {
            s.test = Some(Amount::parse(v)?);
        }
        if let Some(v) = &self.classes {
            s.classes = v.clone();
        }
        if self.max_samples.is_some() {
            s.max_samples = self.max_samples;
        }
        if self.early_stopping.is_some() {
            t.early_stopping = self.early_stopping;
        }
        match (self.plateau_patience, self.plateau_factor) {
            (Some(patience), factor) => {
                t.plateau = Some(PlateauSpec {
                    factor: factor.unwrap_or(DEFAULT_PLATEAU_FACTOR),
                    patience,
                })
            }
            (None, Some(factor)) => match t.plateau.as_mut() {
                Some(p) => p.factor = factor,
                None => {
                    return Err(Error::config(
                        "plateau factor",
                        "--plateau-factor needs --plateau-patience (this preset has no plateau schedule)",
                    ))
                }
            },
            (None, None) => {}
        }
        if let Some(v) = &self.snapshot_epochs {
            t.snapshot_epochs = v.clone();
        }
        if let Some(v) = &self.schedule {
            if self.plateau_patience.is_some() || self.plateau_factor.is_some() {
                return Err(Error::config(
                    "schedule",
                    "--schedule and ReduceLROnPlateau (--plateau-patience, --plateau-factor) would both set the learning rate: give one",
                ));
            }
            // The schedule replaces the preset's ReduceLROnPlateau (mlp4's).
            t.plateau = None;
            t.schedule = Some(super::config::Schedule::parse(v, t.epochs)?);
        }
        Ok(())
    }
}

/// Overwrites `slot` when the setting was given.
fn set<T: Copy>(slot: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *slot = v;
    }
}

/// A comma-separated list (or `none` for an empty one), each item parsed by `item`.
fn parse_list<T>(text: &str, item: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    if text.trim() == "none" || text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|t| item(t.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_given_changes_nothing() -> Result<()> {
        let mut cfg = RunConfig::preset("mlp4")?;
        Overrides::default().apply(&mut cfg)?;
        assert_eq!(cfg, RunConfig::preset("mlp4")?);
        Ok(())
    }

    #[test]
    fn each_given_setting_reaches_its_field() -> Result<()> {
        let mut cfg = RunConfig::preset("conv-selu")?;
        Overrides {
            latent: Some(3),
            conv: Some("8:3:2:1".into()),
            hidden: Some("none".into()),
            seed: Some(7),
            max_samples: Some(100),
            plateau_patience: Some(2),
            snapshot_epochs: Some(vec![]),
            ..Overrides::default()
        }
        .apply(&mut cfg)?;
        assert_eq!(cfg.model.latent, 3);
        assert_eq!(cfg.model.conv.len(), 1);
        assert!(cfg.model.hidden.is_empty());
        assert_eq!((cfg.train.seed, cfg.split.seed), (7, 7));
        assert_eq!(cfg.split.max_samples, Some(100));
        assert_eq!(
            cfg.train.plateau,
            Some(PlateauSpec {
                factor: DEFAULT_PLATEAU_FACTOR,
                patience: 2
            })
        );
        assert!(cfg.train.snapshot_epochs.is_empty());
        Ok(())
    }

    #[test]
    fn a_plateau_factor_alone_needs_a_preset_with_a_schedule() -> Result<()> {
        let factor = Overrides {
            plateau_factor: Some(0.3),
            ..Overrides::default()
        };
        assert!(factor.apply(&mut RunConfig::preset("conv-selu")?).is_err());
        let mut mlp4 = RunConfig::preset("mlp4")?;
        factor.apply(&mut mlp4)?;
        assert_eq!(mlp4.train.plateau.map(|p| p.factor), Some(0.3));
        Ok(())
    }
}
