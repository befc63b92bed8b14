//! An autoencoder described as data: what `config.json` stores under `model`, what `--config`
//! reads, and what the presets fill in. Nothing here allocates a tensor; [`super::plan`] turns
//! a description into layer shapes, and [`super::autoencoder`] into layers.

use crate::error::{Error, Result};
use crate::names::{activation_serde, optional_activation_serde};
use crate::nn::Init;
use kernels::elementwise::Activation;
use serde::{Deserialize, Serialize};

/// One encoder convolution: `channels:kernel:stride:padding` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvLayer {
    /// Output channels.
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl ConvLayer {
    /// Parses `channels:kernel:stride:padding`, e.g. `16:3:2:1`.
    ///
    /// # Errors
    /// [`Error::Config`] for anything but four whole numbers.
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<Option<usize>> = text.split(':').map(|p| p.trim().parse().ok()).collect();
        match parts[..] {
            [Some(channels), Some(kernel), Some(stride), Some(padding)] => Ok(ConvLayer {
                channels,
                kernel,
                stride,
                padding,
            }),
            _ => Err(Error::config(
                "conv layer",
                format!(
                    "{text:?} is not channels:kernel:stride:padding (four whole numbers, e.g. 16:3:2:1)"
                ),
            )),
        }
    }
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
    /// Padding (rows and columns cropped from the output).
    pub padding: usize,
    /// Extra output rows and columns (< stride).
    #[serde(default)]
    pub output_padding: usize,
}

/// An explicit decoder: linear layers from the code, then transposed convolutions from the
/// encoder's last feature-map shape.
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
    #[serde(with = "activation_serde")]
    pub activation: Activation,
    /// An activation applied to the code itself (none by default).
    #[serde(default, with = "optional_activation_serde")]
    pub code_activation: Option<Activation>,
    /// The decoder's last activation (sigmoid by default, for pixels in [0, 1]).
    #[serde(default = "default_output", with = "optional_activation_serde")]
    pub output_activation: Option<Activation>,
    /// Weight initialisation.
    #[serde(default)]
    pub init: Init,
    /// Batch normalisation after every convolution and hidden linear layer (before its
    /// activation), in the encoder and the decoder.
    #[serde(default)]
    pub batch_norm: bool,
    /// A variational autoencoder: the encoder outputs a mean and a log-variance per code
    /// dimension, and training samples the code from them.
    #[serde(default)]
    pub variational: bool,
    /// Max-pooling (2×2, stride 2) after every encoder convolution, the way Keras tutorials
    /// build a convolutional autoencoder: the convolutions keep the size (stride 1, padding
    /// k/2) and the pooling halves it. The mirrored decoder upsamples ×2 (nearest neighbour)
    /// before each transposed convolution.
    #[serde(default)]
    pub pool: bool,
    /// Dropout probability after every hidden linear layer's activation, in the encoder and
    /// the decoder (0: no dropout). Active in training only.
    #[serde(default)]
    pub dropout: f32,
    /// An explicit decoder; by default the decoder mirrors the encoder.
    #[serde(default)]
    pub decoder: Option<DecoderSpec>,
}

/// Refuses a layer whose channels, kernel or stride is 0, naming it (`conv 2`, `deconv 0`).
fn sizes_positive(
    what: &'static str,
    kind: &str,
    i: usize,
    [channels, kernel, stride]: [usize; 3],
) -> Result<()> {
    if channels == 0 || kernel == 0 || stride == 0 {
        return Err(Error::config(
            what,
            format!("{kind} {i} (channels {channels}, kernel {kernel}, stride {stride}) needs channels, kernel and stride ≥ 1"),
        ));
    }
    Ok(())
}

/// MNIST's 1×28×28.
pub fn default_input() -> [usize; 3] {
    [1, 28, 28]
}

fn default_output() -> Option<Activation> {
    Some(Activation::Sigmoid)
}

impl ModelSpec {
    /// A description with the defaults of everything but the layers and the activation.
    pub fn new(
        conv: Vec<ConvLayer>,
        hidden: Vec<usize>,
        latent: usize,
        activation: Activation,
    ) -> Self {
        ModelSpec {
            input: default_input(),
            conv,
            hidden,
            latent,
            activation,
            code_activation: None,
            output_activation: default_output(),
            init: Init::default(),
            batch_norm: false,
            variational: false,
            pool: false,
            dropout: 0.0,
            decoder: None,
        }
    }

    /// Checks the numbers no type can: every size at least 1, in the encoder and in an
    /// explicit decoder alike, and settings that exclude each other. Whether the layers fit
    /// together is [`super::plan::ModelPlan::new`]'s check.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 {
            return Err(Error::config("latent size", "must be at least 1"));
        }
        if self.input.contains(&0) {
            return Err(Error::config(
                "input shape",
                format!("{:?} has a zero size", self.input),
            ));
        }
        for (i, c) in self.conv.iter().enumerate() {
            sizes_positive("conv layer", "conv", i, [c.channels, c.kernel, c.stride])?;
        }
        if self.hidden.contains(&0) {
            return Err(Error::config(
                "hidden sizes",
                format!("{:?} contains 0", self.hidden),
            ));
        }
        if let Some(d) = &self.decoder {
            if d.hidden.contains(&0) {
                return Err(Error::config(
                    "decoder hidden sizes",
                    format!("{:?} contains 0", d.hidden),
                ));
            }
            for (i, l) in d.deconv.iter().enumerate() {
                sizes_positive(
                    "decoder layer",
                    "deconv",
                    i,
                    [l.channels, l.kernel, l.stride],
                )?;
                if l.output_padding >= l.stride {
                    return Err(Error::config(
                        "decoder layer",
                        format!(
                            "deconv {i}: output_padding {} must be smaller than the stride {}",
                            l.output_padding, l.stride
                        ),
                    ));
                }
            }
            if !self.conv.is_empty() && d.deconv.is_empty() {
                return Err(Error::config(
                    "decoder",
                    "the encoder has convolutions, so an explicit decoder needs transposed convolutions (deconv) to rebuild the image",
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "dropout",
                format!("{} is not a probability in [0, 1)", self.dropout),
            ));
        }
        if self.pool && self.conv.is_empty() {
            return Err(Error::config(
                "pooling",
                "max-pooling follows convolutions, and this model has none: add --conv (e.g. 16:3:1:1,8:3:1:1)",
            ));
        }
        if self.pool && self.decoder.is_some() {
            return Err(Error::config(
                "pooling",
                "pooling is mirrored by upsampling in the decoder it builds; an explicit decoder has no upsampling layers (leave out `decoder`, or `pool`)",
            ));
        }
        if self.variational && self.code_activation.is_some() {
            return Err(Error::config(
                "code activation",
                "a variational autoencoder's code is sampled from N(μ, σ²); it takes no code activation (add --code-activation none, or code_activation = \"none\" in the config)",
            ));
        }
        Ok(())
    }
}
