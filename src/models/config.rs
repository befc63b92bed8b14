//! Models and training runs described as data: what `config.json` stores, what `--config`
//! reads (TOML or JSON), and what the presets fill in.
//!
//! The presets, from the course reports:
//!
//! | preset | architecture | training |
//! |---|---|---|
//! | `conv-selu` (default) | conv 1→6 (k3 s2 p1), 6→39 (k3 s2 p1), 39→72 (k3 s2 p0); linear 648→145→98→52→6; SELU, LeCun-normal init; sigmoid output | Adam 1e-3, MSE, batch 512 |
//! | `conv-small` | conv 8, 16, 32 (k3 s2 p1); linear 64; latent 20; ReLU | Adam 2e-3, MSE, batch 128 |
//! | `mlp4` | 784→392→8→392→784, ReLU, sigmoid output | Adam 1e-3, batch 2048, ReduceLROnPlateau |
//! | `mlp1-K` | 784→K→784, sigmoid | Adam 1e-3, batch 256 |
//! | `mlp3-K` | 784→400→K→400→784, sigmoid | Adam 1e-3, batch 256 |

use crate::autodiff::Activation;
use crate::data::batches::SplitSpec;
use crate::error::{Error, Result};
use crate::nn::Init;
use serde::{Deserialize, Serialize};

/// An activation by name, as configs spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActName {
    /// max(0, x)
    Relu,
    /// x or 0.01·x
    LeakyRelu,
    /// scaled exponential linear unit
    Selu,
    /// logistic
    Sigmoid,
    /// hyperbolic tangent
    Tanh,
}

impl ActName {
    /// The activation it names.
    pub fn activation(self) -> Activation {
        match self {
            ActName::Relu => Activation::Relu,
            ActName::LeakyRelu => Activation::LeakyRelu { slope: 0.01 },
            ActName::Selu => Activation::Selu,
            ActName::Sigmoid => Activation::Sigmoid,
            ActName::Tanh => Activation::Tanh,
        }
    }

    /// Parses `relu`, `leaky_relu`, `selu`, `sigmoid` or `tanh`.
    ///
    /// # Errors
    /// [`Error::Config`] for other names.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name.replace('-', "_").as_str() {
            "relu" => ActName::Relu,
            "leaky_relu" => ActName::LeakyRelu,
            "selu" => ActName::Selu,
            "sigmoid" => ActName::Sigmoid,
            "tanh" => ActName::Tanh,
            _ => {
                return Err(Error::config(
                    "activation",
                    format!("unknown {name:?} (relu, leaky_relu, selu, sigmoid, tanh)"),
                ))
            }
        })
    }
}

/// One encoder convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvLayer {
    /// Output channels.
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    #[serde(default)]
    pub padding: usize,
}

/// One decoder transposed convolution, when the decoder is given explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeconvLayer {
    /// Output channels.
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    #[serde(default)]
    pub padding: usize,
    /// Extra output rows and columns (< stride).
    #[serde(default)]
    pub output_padding: usize,
}

/// An explicit decoder: linear layers from the code, then transposed convolutions from the
/// encoder's last feature map shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSpec {
    /// Hidden linear sizes after the code (the last linear layer, to the feature map, is added).
    pub hidden: Vec<usize>,
    /// Transposed convolutions; the last must produce the input's channels.
    #[serde(default)]
    pub deconv: Vec<DeconvLayer>,
}

/// The architecture of an autoencoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Input (channels, height, width).
    #[serde(default = "default_input")]
    pub input: [usize; 3],
    /// Encoder convolutions, in order (none for an MLP).
    #[serde(default)]
    pub conv: Vec<ConvLayer>,
    /// Hidden linear sizes between the flattened features and the code.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Size of the code.
    pub latent: usize,
    /// The activation between layers.
    pub activation: ActName,
    /// An activation applied to the code itself (none by default).
    #[serde(default)]
    pub code_activation: Option<ActName>,
    /// The decoder's last activation (sigmoid by default, for pixels in [0, 1]).
    #[serde(default = "default_output")]
    pub output_activation: Option<ActName>,
    /// Weight initialisation.
    #[serde(default)]
    pub init: Init,
    /// An explicit decoder; by default the decoder mirrors the encoder.
    #[serde(default)]
    pub decoder: Option<DecoderSpec>,
}

fn default_input() -> [usize; 3] {
    [1, 28, 28]
}

fn default_output() -> Option<ActName> {
    Some(ActName::Sigmoid)
}

/// The reconstruction loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    /// Mean squared error.
    Mse,
    /// Binary cross-entropy (pixels as probabilities).
    Bce,
}

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerName {
    /// Adam.
    Adam,
    /// SGD with momentum.
    Sgd,
    /// AdaGrad.
    Adagrad,
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
    /// Seed of initialisation, splits and shuffles.
    #[serde(default)]
    pub seed: u64,
    /// Stop after this many epochs without validation improvement, restoring the best weights.
    #[serde(default)]
    pub early_stopping: Option<usize>,
    /// Lower the learning rate when validation loss plateaus.
    #[serde(default)]
    pub plateau: Option<PlateauSpec>,
    /// Epochs after which to save a reconstruction grid (the last epoch always gets one).
    #[serde(default = "default_snapshots")]
    pub snapshot_epochs: Vec<usize>,
}

fn default_snapshots() -> Vec<usize> {
    vec![1, 2, 5, 10, 20, 50, 100]
}

/// Everything needed to repeat a run: what `config.json` in a run folder holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The preset it started from.
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

impl RunConfig {
    /// The configuration of a named preset on the default dataset (MNIST).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown preset, listing the known ones.
    pub fn preset(name: &str) -> Result<Self> {
        let conv = |channels, padding| ConvLayer {
            channels,
            kernel: 3,
            stride: 2,
            padding,
        };
        let model = |conv: Vec<ConvLayer>, hidden: Vec<usize>, latent, activation| ModelSpec {
            input: default_input(),
            conv,
            hidden,
            latent,
            activation,
            code_activation: None,
            output_activation: default_output(),
            init: Init::PyTorchDefault,
            decoder: None,
        };
        let train = |lr, batch_size| TrainSpec {
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
            snapshot_epochs: default_snapshots(),
        };
        let mlp_k = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|&k| k > 0)
        };
        let (model, train) = match name {
            "conv-selu" => {
                let mut m = model(vec![conv(6, 1), conv(39, 1), conv(72, 0)], vec![145, 98, 52], 6, ActName::Selu);
                // SELU's self-normalisation assumes LeCun-normal weights; with PyTorch's default
                // uniform init this model sits at the mean image for many epochs.
                m.init = Init::LecunNormal;
                (m, train(1e-3, 512))
            }
            "conv-small" => (model(vec![conv(8, 1), conv(16, 1), conv(32, 1)], vec![64], 20, ActName::Relu), train(2e-3, 128)),
            "mlp4" => {
                let mut t = train(1e-3, 2048);
                t.plateau = Some(PlateauSpec { factor: 0.5, patience: 3 });
                (model(vec![], vec![392], 8, ActName::Relu), t)
            }
            _ if mlp_k("mlp1-").is_some() || mlp_k("mlp3-").is_some() => {
                let (hidden, k) = match (mlp_k("mlp1-"), mlp_k("mlp3-")) {
                    (Some(k), _) => (vec![], k),
                    (_, Some(k)) => (vec![400], k),
                    _ => unreachable!("one of the two matched in the guard"),
                };
                let mut m = model(vec![], hidden, k, ActName::Sigmoid);
                m.code_activation = Some(ActName::Sigmoid);
                (m, train(1e-3, 256))
            }
            other => {
                return Err(Error::config(
                    "preset",
                    format!("unknown {other:?} (conv-selu, conv-small, mlp4, mlp1-K, mlp3-K with K the code size, e.g. mlp1-32)"),
                ))
            }
        };
        Ok(RunConfig {
            preset: name.to_string(),
            dataset: "mnist".into(),
            model,
            train,
            split: SplitSpec::default(),
        })
    }

    /// Reads a configuration file: TOML (`.toml`) or JSON (anything else).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable, [`Error::Config`] with the parser's message if malformed.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let parsed = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        let cfg: RunConfig =
            parsed.map_err(|e| Error::config("config file", format!("{}: {e}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the numbers that no type can (sizes ≥ 1, a positive learning rate, …).
    /// Shape consistency is checked when the model is built.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        let positive = |what: &'static str, v: usize| {
            if v == 0 {
                Err(Error::config(what, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("latent size", self.model.latent)?;
        positive("epochs", self.train.epochs)?;
        positive("batch size", self.train.batch_size)?;
        if self.model.input.contains(&0) {
            return Err(Error::config(
                "input shape",
                format!("{:?} has a zero size", self.model.input),
            ));
        }
        for (i, c) in self.model.conv.iter().enumerate() {
            if c.channels == 0 || c.kernel == 0 || c.stride == 0 {
                return Err(Error::config(
                    "conv layer",
                    format!("layer {i} ({c:?}) needs channels, kernel and stride ≥ 1"),
                ));
            }
        }
        if self.model.hidden.contains(&0) {
            return Err(Error::config(
                "hidden sizes",
                format!("{:?} contains 0", self.model.hidden),
            ));
        }
        if !(self.train.lr.is_finite() && self.train.lr > 0.0) {
            return Err(Error::config(
                "learning rate",
                format!("{} must be a positive number", self.train.lr),
            ));
        }
        Ok(())
    }
}
