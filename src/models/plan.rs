//! From a description to a list of layers with every shape worked out — before a single
//! weight exists.
//!
//! [`ModelPlan::new`] walks a [`ModelSpec`] the way data will flow through the model and
//! writes down, for every layer, its name (`encoder.3`, PyTorch's `nn.Sequential` numbering),
//! what it is, and the shape it receives and produces for one image. Every check happens here:
//! a kernel larger than its input, a decoder that cannot restore the input's size, a model
//! too large for memory. Each is refused naming the layer, and nothing has been allocated.
//!
//! The same list then builds the layers ([`super::Autoencoder::new`]), prints the model's
//! summary, and counts parameters, multiply-adds and activation memory.
//!
//! Mirroring a stride-2 convolution needs care: 14 → 7 and 13 → 7 both happen, so the
//! transposed convolution must be told which size to restore. Its `output_padding` is
//! worked out from the encoder's sizes, op = H_target − ((H_in − 1)·s − 2p + k), and must
//! lie in [0, s); the plan records that arithmetic so a learner can see it.

use super::spec::{DeconvLayer, ModelSpec};
use crate::error::{Error, Result};
use crate::machine::{human_bytes, human_count};
use crate::nn::{
    Act, BatchNorm, Conv2d, ConvTranspose2d, Dropout, Flatten, Init, Kernel, Linear, MaxPool2d,
    Module, Unflatten, Upsample,
};
use kernels::conv2d::{Conv2dGeometry, Conv2dSpec};
use kernels::elementwise::Activation;
use rand::Rng;
use std::fmt;

/// What one layer is, with the sizes that define it.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A convolution from `c_in` to `c_out` channels.
    Conv2d {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Kernel size, stride and padding.
        kernel: Kernel,
    },
    /// A transposed convolution from `c_in` to `c_out` channels.
    ConvTranspose2d {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Kernel size, stride and padding.
        kernel: Kernel,
        /// Extra output rows and columns.
        output_padding: usize,
    },
    /// A fully connected layer.
    Linear {
        /// Input features.
        d_in: usize,
        /// Output features.
        d_out: usize,
    },
    /// Batch normalisation over `channels` (features for a vector input).
    BatchNorm {
        /// Channels (or features) normalised.
        channels: usize,
    },
    /// An element-wise activation.
    Act(Activation),
    /// Feature maps to one vector per image.
    Flatten,
    /// One vector per image to feature maps of this (C, H, W).
    Unflatten([usize; 3]),
    /// The largest value of every `size`×`size` window, windows `size` apart: halves a map
    /// for `size` 2.
    MaxPool2d {
        /// Window side and stride.
        size: usize,
    },
    /// Every pixel repeated `scale`×`scale` times (nearest-neighbour upsampling).
    Upsample {
        /// The factor on height and width.
        scale: usize,
    },
    /// Zeroes each value with probability `p` in training and scales the rest by 1/(1 − p).
    Dropout {
        /// The probability of zeroing.
        p: f32,
    },
}

impl Layer {
    /// Trainable parameters (weights and biases; batch norm's γ and β).
    pub fn parameters(&self) -> u128 {
        let u = |v: usize| v as u128;
        match *self {
            Layer::Conv2d {
                c_in,
                c_out,
                kernel,
            } => u(c_out) * u(c_in) * u(kernel.size) * u(kernel.size) + u(c_out),
            Layer::ConvTranspose2d {
                c_in,
                c_out,
                kernel,
                ..
            } => u(c_in) * u(c_out) * u(kernel.size) * u(kernel.size) + u(c_out),
            Layer::Linear { d_in, d_out } => u(d_in) * u(d_out) + u(d_out),
            Layer::BatchNorm { channels } => 2 * u(channels),
            Layer::Act(_)
            | Layer::Flatten
            | Layer::Unflatten(_)
            | Layer::MaxPool2d { .. }
            | Layer::Upsample { .. }
            | Layer::Dropout { .. } => 0,
        }
    }

    /// Builds the layer, its weights drawn by `init` from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`] for a dropout probability outside [0, 1) (which
    /// [`ModelSpec::validate`] refuses first).
    pub fn build(&self, init: Init, rng: &mut impl Rng) -> Result<Box<dyn Module>> {
        Ok(match *self {
            Layer::Conv2d {
                c_in,
                c_out,
                kernel,
            } => Box::new(Conv2d::new(c_in, c_out, kernel, init, rng)),
            Layer::ConvTranspose2d {
                c_in,
                c_out,
                kernel,
                output_padding,
            } => Box::new(ConvTranspose2d::new(
                c_in,
                c_out,
                kernel,
                output_padding,
                init,
                rng,
            )),
            Layer::Linear { d_in, d_out } => Box::new(Linear::new(d_in, d_out, true, init, rng)),
            Layer::BatchNorm { channels } => Box::new(BatchNorm::new(channels)),
            Layer::Act(a) => Box::new(Act(a)),
            Layer::Flatten => Box::new(Flatten),
            Layer::Unflatten(shape) => Box::new(Unflatten(shape.to_vec())),
            Layer::MaxPool2d { size } => Box::new(MaxPool2d {
                kernel: size,
                stride: size,
            }),
            Layer::Upsample { scale } => Box::new(Upsample(scale)),
            // Its masks come from the generator each training step hands it
            // (Module::reseed); 0 only seeds the masks of a forward outside training.
            Layer::Dropout { p } => Box::new(Dropout::new(p, 0)?),
        })
    }
}

impl fmt::Display for Layer {
    /// `Conv2d 1→6 k3 s2 p1`, `Linear 648→145`, `SELU`: what a learner would draw.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Conv2d {
                c_in,
                c_out,
                kernel,
            } => write!(
                f,
                "Conv2d {c_in}→{c_out} k{} s{} p{}",
                kernel.size, kernel.stride, kernel.pad
            ),
            Layer::ConvTranspose2d {
                c_in,
                c_out,
                kernel,
                output_padding,
            } => write!(
                f,
                "ConvTranspose2d {c_in}→{c_out} k{} s{} p{} op{output_padding}",
                kernel.size, kernel.stride, kernel.pad
            ),
            Layer::Linear { d_in, d_out } => write!(f, "Linear {d_in}→{d_out}"),
            Layer::BatchNorm { channels } => write!(f, "BatchNorm {channels}"),
            Layer::Act(a) => match a {
                Activation::Relu => write!(f, "ReLU"),
                Activation::LeakyRelu { slope } => write!(f, "LeakyReLU {slope}"),
                Activation::Selu => write!(f, "SELU"),
                Activation::Sigmoid => write!(f, "Sigmoid"),
                Activation::Tanh => write!(f, "Tanh"),
            },
            Layer::Flatten => write!(f, "Flatten"),
            Layer::Unflatten(s) => write!(f, "Unflatten to {}×{}×{}", s[0], s[1], s[2]),
            Layer::MaxPool2d { size } => write!(f, "MaxPool2d {size}×{size} s{size}"),
            Layer::Upsample { scale } => write!(f, "Upsample ×{scale} (nearest)"),
            Layer::Dropout { p } => write!(f, "Dropout p={p}"),
        }
    }
}

/// One layer of a planned model.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    /// Its name, as checkpoints spell it: `encoder.3`.
    pub name: String,
    /// What it is.
    pub layer: Layer,
    /// The shape it receives for one image (C, H, W) or (features).
    pub input: Vec<usize>,
    /// The shape it produces for one image.
    pub output: Vec<usize>,
    /// What a learner needs said about this layer beyond its kind and shapes: for a
    /// mirrored transposed convolution, how its output_padding was worked out; for a VAE's
    /// last encoder layer, that its outputs are μ and log σ².
    pub note: Option<String>,
}

impl LayerPlan {
    /// Multiply-adds of the forward pass for one image.
    pub fn macs(&self) -> u128 {
        let prod = |s: &[usize]| s.iter().map(|&v| v as u128).product::<u128>();
        match self.layer {
            Layer::Conv2d { c_in, kernel, .. } => {
                prod(&self.output) * (c_in * kernel.size * kernel.size) as u128
            }
            // Every input pixel scatters a C_out×k×k block.
            Layer::ConvTranspose2d { c_out, kernel, .. } => {
                prod(&self.input) * (c_out * kernel.size * kernel.size) as u128
            }
            Layer::Linear { d_in, d_out } => (d_in as u128) * (d_out as u128),
            _ => 0,
        }
    }

    /// Values in the output of one image (what backward must keep).
    pub fn output_len(&self) -> u128 {
        self.output.iter().map(|&v| v as u128).product()
    }
}

/// Every layer of an autoencoder, shapes checked end to end.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPlan {
    /// Image → code (→ mean and log-variance for a VAE).
    pub encoder: Vec<LayerPlan>,
    /// Code → image.
    pub decoder: Vec<LayerPlan>,
    /// The code size.
    pub latent: usize,
    /// Whether the encoder's last layer outputs a mean and a log-variance.
    pub variational: bool,
    /// The input (C, H, W).
    pub input: [usize; 3],
}

/// Appends layers to one part (encoder or decoder), tracking names and shapes.
struct Builder {
    part: &'static str,
    layers: Vec<LayerPlan>,
    shape: Vec<usize>,
}

impl Builder {
    fn new(part: &'static str, shape: Vec<usize>) -> Self {
        Builder {
            part,
            layers: Vec::new(),
            shape,
        }
    }

    fn next_name(&self) -> String {
        format!("{}.{}", self.part, self.layers.len())
    }

    fn push(&mut self, layer: Layer, output: Vec<usize>, note: Option<String>) {
        let input = std::mem::replace(&mut self.shape, output.clone());
        self.layers.push(LayerPlan {
            name: self.next_name(),
            layer,
            input,
            output,
            note,
        });
    }

    /// A layer that keeps the shape (activations, batch norm).
    fn same(&mut self, layer: Layer) {
        let shape = self.shape.clone();
        self.push(layer, shape, None);
    }

    fn linear(&mut self, d_out: usize) {
        let d_in = self.shape[0];
        self.push(Layer::Linear { d_in, d_out }, vec![d_out], None);
    }

    /// Batch norm (if asked) and the activation after a conv or hidden linear layer.
    fn norm_and_act(&mut self, batch_norm: bool, act: Activation) {
        if batch_norm {
            self.same(Layer::BatchNorm {
                channels: self.shape[0],
            });
        }
        self.same(Layer::Act(act));
    }

    /// A hidden linear layer: the product, batch norm and activation, then dropout if asked.
    fn hidden(&mut self, d_out: usize, spec: &ModelSpec) {
        self.linear(d_out);
        self.norm_and_act(spec.batch_norm, spec.activation);
        if spec.dropout > 0.0 {
            self.same(Layer::Dropout { p: spec.dropout });
        }
    }

    fn chw(&self) -> (usize, usize, usize) {
        match self.shape[..] {
            [c, h, w] => (c, h, w),
            _ => (self.shape.iter().product(), 1, 1),
        }
    }
}

impl ModelPlan {
    /// Works out every layer of the model `spec` describes.
    ///
    /// # Errors
    /// [`Error::Config`] for settings [`ModelSpec::validate`] refuses, or a model whose weights
    /// alone would not fit in memory; [`Error::Architecture`] naming the first layer that does
    /// not fit (a kernel larger than its padded input, a transposed convolution that cannot
    /// restore its size, a decoder whose output is not the input's shape).
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        spec.validate()?;
        let [c0, h0, w0] = spec.input;
        let act = spec.activation;
        let mut enc = Builder::new("encoder", vec![c0, h0, w0]);
        // Feature-map shapes after each conv (and its pooling), starting with the input: the
        // mirror retraces them. `conv_outs`: each conv's own output, before pooling.
        let mut maps = vec![(c0, h0, w0)];
        let mut conv_outs = Vec::new();
        for conv in &spec.conv {
            let (c, h, w) = enc.chw();
            let geom = Conv2dGeometry::new(Conv2dSpec {
                n: 1,
                c_in: c,
                h_in: h,
                w_in: w,
                c_out: conv.channels,
                kh: conv.kernel,
                kw: conv.kernel,
                stride: conv.stride,
                pad: conv.padding,
            })
            .map_err(|e| Error::Architecture {
                layer: enc.next_name(),
                detail: format!("{}{}", e.detail, fit_suggestion(h.min(w), conv)),
            })?;
            let kernel = Kernel::new(conv.kernel, conv.stride, conv.padding);
            let out = vec![conv.channels, geom.h_out(), geom.w_out()];
            enc.push(
                Layer::Conv2d {
                    c_in: c,
                    c_out: conv.channels,
                    kernel,
                },
                out,
                None,
            );
            enc.norm_and_act(spec.batch_norm, act);
            conv_outs.push(enc.chw());
            if spec.pool {
                let (c, h, w) = enc.chw();
                if h % 2 == 1 || w % 2 == 1 {
                    return Err(Error::Architecture {
                        layer: enc.next_name(),
                        detail: format!(
                            "max-pooling a {h}×{w} map would drop its last {}, which the decoder's ×2 upsampling cannot give back: every pooled convolution must output an even size (a stride-1 convolution with padding k/2 keeps its input's size, {} here), so use fewer pooled layers or change this convolution's padding",
                            if h % 2 == 1 && w % 2 == 1 { "row and column" } else if h % 2 == 1 { "row" } else { "column" },
                            conv.kernel / 2
                        ),
                    });
                }
                enc.push(Layer::MaxPool2d { size: 2 }, vec![c, h / 2, w / 2], None);
            }
            maps.push(enc.chw());
        }
        let last_map = enc.chw();
        let flat = last_map.0 * last_map.1 * last_map.2;
        enc.push(Layer::Flatten, vec![flat], None);
        for &h in &spec.hidden {
            enc.hidden(h, spec);
        }
        if spec.variational {
            let d_in = enc.shape[0];
            let k = spec.latent;
            enc.push(
                Layer::Linear { d_in, d_out: 2 * k },
                vec![2 * k],
                Some(format!(
                    "μ (outputs 1–{k}) and log σ² (outputs {}–{}) of q(z|x): the code is sampled as μ + σ·ε",
                    k + 1,
                    2 * k
                )),
            );
        } else {
            enc.linear(spec.latent);
        }
        if let Some(code_act) = spec.code_activation {
            enc.same(Layer::Act(code_act));
        }

        let mut dec = Builder::new("decoder", vec![spec.latent]);
        let (hidden, deconvs) = match &spec.decoder {
            Some(d) => (d.hidden.clone(), d.deconv.clone()),
            None => (
                spec.hidden.iter().rev().copied().collect(),
                mirror_deconvs(spec, &maps, &conv_outs),
            ),
        };
        for &h in &hidden {
            dec.hidden(h, spec);
        }
        dec.linear(flat);
        let (cl, hl, wl) = last_map;
        if deconvs.is_empty() {
            if let Some(out) = spec.output_activation {
                dec.same(Layer::Act(out));
            }
            dec.push(Layer::Unflatten([cl, hl, wl]), vec![cl, hl, wl], None);
        } else {
            dec.norm_and_act(spec.batch_norm, act);
            dec.push(Layer::Unflatten([cl, hl, wl]), vec![cl, hl, wl], None);
            for (i, d) in deconvs.iter().enumerate() {
                if spec.pool {
                    let (c, h, w) = dec.chw();
                    dec.push(Layer::Upsample { scale: 2 }, vec![c, 2 * h, 2 * w], None);
                }
                let (c, h, w) = dec.chw();
                let grown = |len: usize| (len - 1) * d.stride + d.kernel + d.output_padding;
                if 2 * d.padding >= grown(h).min(grown(w)) {
                    return Err(Error::Architecture {
                        layer: dec.next_name(),
                        detail: format!(
                            "padding {} crops the whole {}×{} output of a {}×{} input",
                            d.padding,
                            grown(h),
                            grown(w),
                            h,
                            w
                        ),
                    });
                }
                let out = vec![
                    d.channels,
                    grown(h) - 2 * d.padding,
                    grown(w) - 2 * d.padding,
                ];
                if spec.decoder.is_none() {
                    // The mirror must give back the size its encoder convolution started from.
                    let (_, h_t, w_t) = maps[maps.len() - 2 - i];
                    if (out[1], out[2]) != (h_t, w_t) {
                        return Err(Error::Architecture {
                            layer: dec.next_name(),
                            detail: format!(
                                "a transposed convolution (kernel {}, stride {}, padding {}) cannot restore {h_t}×{w_t} from {h}×{w}",
                                d.kernel, d.stride, d.padding
                            ),
                        });
                    }
                }
                // The mirror's arithmetic, for learners: which encoder size this restores.
                let arithmetic = spec.decoder.is_none().then(|| {
                    format!(
                        "output_padding {} = {} − ((H_in − 1)·s − 2p + k) = {} − (({} − 1)·{} − 2·{} + {})",
                        d.output_padding, out[1], out[1], h, d.stride, d.padding, d.kernel
                    )
                });
                let layer = Layer::ConvTranspose2d {
                    c_in: c,
                    c_out: d.channels,
                    kernel: Kernel::new(d.kernel, d.stride, d.padding),
                    output_padding: d.output_padding,
                };
                dec.push(layer, out, arithmetic);
                if i + 1 < deconvs.len() {
                    dec.norm_and_act(spec.batch_norm, act);
                }
            }
            if let Some(out) = spec.output_activation {
                dec.same(Layer::Act(out));
            }
        }
        if dec.shape != [c0, h0, w0] {
            let shown: Vec<String> = dec.shape.iter().map(|d| d.to_string()).collect();
            return Err(Error::Architecture {
                layer: "decoder".into(),
                detail: format!("produces {}, the input is {c0}×{h0}×{w0}", shown.join("×")),
            });
        }
        let plan = ModelPlan {
            encoder: enc.layers,
            decoder: dec.layers,
            latent: spec.latent,
            variational: spec.variational,
            input: spec.input,
        };
        plan.check_fits(1)?;
        Ok(plan)
    }

    /// Every layer, encoder first.
    pub fn layers(&self) -> impl Iterator<Item = &LayerPlan> {
        self.encoder.iter().chain(&self.decoder)
    }

    /// Trainable parameters of the whole model.
    pub fn parameters(&self) -> u128 {
        self.layers().map(|l| l.layer.parameters()).sum()
    }

    /// Multiply-adds of one forward pass of one image.
    pub fn macs(&self) -> u128 {
        self.layers().map(LayerPlan::macs).sum()
    }

    /// Multiply-adds of one training step for one image: the forward pass, every layer's
    /// weight gradient (as many as its forward: the same product with other operands), and
    /// every layer's input gradient (as many again) except the first layer's, whose input is
    /// the data: nothing asks for its gradient, so it is not computed. For the MLP, whose
    /// first layer is a sixth of its work, "three forward passes" would count 20 % too many.
    pub fn training_macs(&self) -> u128 {
        let first = self.layers().map(LayerPlan::macs).find(|&m| m > 0);
        3 * self.macs() - first.unwrap_or(0)
    }

    /// Bytes a training step at batch size `batch` needs, roughly: four copies of the
    /// parameters (the weights, which the tape shares rather than copies, their gradients,
    /// Adam's two moments) and three of every activation (its value, its gradient, and room
    /// for a kernel's scratch).
    pub fn training_bytes(&self, batch: usize) -> u128 {
        let activations: u128 = self.layers().map(LayerPlan::output_len).sum();
        4 * (4 * self.parameters() + 3 * batch as u128 * activations)
    }

    /// Refuses a model whose training at batch size `batch` would need more memory than this
    /// machine has available (with `batch` 1: whose weights alone would not fit).
    ///
    /// # Errors
    /// [`Error::Config`] naming the largest layer, its parameter count and both sizes.
    pub fn check_fits(&self, batch: usize) -> Result<()> {
        let need = self.training_bytes(batch);
        let have = crate::machine::usable_memory();
        if need <= have {
            return Ok(());
        }
        let largest = self
            .layers()
            .max_by_key(|l| l.layer.parameters())
            .map(|l| {
                format!(
                    "; the largest layer, {} ({}), alone holds {} parameters",
                    l.name,
                    l.layer,
                    human_count(l.layer.parameters())
                )
            })
            .unwrap_or_default();
        Err(Error::config(
            "model size",
            format!(
                "the model is too large: {} needs about {} ({} parameters), and this machine has {} available{largest}",
                if batch == 1 {
                    "training it, even one image at a time,".to_string()
                } else {
                    format!("training it at batch size {batch}")
                },
                human_bytes(need),
                human_count(self.parameters()),
                human_bytes(have)
            ),
        ))
    }

    /// One line per layer — name, what it is, output shape for one image, parameters — the
    /// model as a learner would draw it.
    pub fn summary(&self) -> Vec<String> {
        let shape = |s: &[usize]| {
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×")
        };
        let mut lines = vec![format!("{:<11} {:<36} {}", "input", "", shape(&self.input))];
        for l in self.layers() {
            let params = l.layer.parameters();
            lines.push(format!(
                "{:<11} {:<36} {:<10}{}",
                l.name,
                l.layer.to_string(),
                shape(&l.output),
                if params > 0 {
                    format!(" {} parameters", human_count(params))
                } else {
                    String::new()
                }
            ));
            if let Some(note) = l.note.as_ref().filter(|_| l.name.starts_with("encoder.")) {
                lines.push(format!("{:<11}   ↳ {note}", ""));
            }
        }
        lines.push(format!(
            "{} parameters, {} multiply-adds per image",
            human_count(self.parameters()),
            human_count(self.macs())
        ));
        lines
    }
}

/// A concrete way out for a convolution whose kernel does not fit its (padded) input of side
/// `side`: the largest kernel that fits, or the padding that would make this kernel fit.
fn fit_suggestion(side: usize, conv: &super::ConvLayer) -> String {
    let padded = side + 2 * conv.padding;
    if conv.kernel <= padded {
        return String::new();
    }
    let pad_needed = (conv.kernel - side).div_ceil(2);
    format!(
        ": use a kernel of at most {padded} (e.g. {}:{padded}:{}:{}), or padding {pad_needed} with this kernel ({}:{}:{}:{pad_needed}), or fewer stride-2 layers before this one",
        conv.channels, conv.stride, conv.padding, conv.channels, conv.kernel, conv.stride
    )
}

/// The transposed convolutions that mirror the encoder's convolutions, each with the
/// output_padding that restores the exact size its convolution started from (checked in
/// [`ModelPlan::new`]; an impossible one is given as is and fails the size check there).
/// `maps[i]` is convolution i's input, `conv_outs[i]` its output (what a pooled model's
/// upsampling gives back to the transposed convolution).
fn mirror_deconvs(
    spec: &ModelSpec,
    maps: &[(usize, usize, usize)],
    conv_outs: &[(usize, usize, usize)],
) -> Vec<DeconvLayer> {
    spec.conv
        .iter()
        .enumerate()
        .rev()
        .map(|(i, conv)| {
            let ((c_out, h_target, _), (_, h_in, _)) = (maps[i], conv_outs[i]);
            let grown = (h_in - 1) * conv.stride + conv.kernel;
            // h_target = grown − 2p + op  ⇒  op = h_target + 2p − grown, wanted in [0, s).
            let op = (h_target + 2 * conv.padding).saturating_sub(grown);
            DeconvLayer {
                channels: c_out,
                kernel: conv.kernel,
                stride: conv.stride,
                padding: conv.padding,
                output_padding: op.min(conv.stride.saturating_sub(1)),
            }
        })
        .collect()
}
