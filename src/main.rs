//! The `handgrad` command: parses arguments, calls the library, prints results and errors.
//! All the work lives in the library ([`handgrad::experiments`]); this file only turns
//! arguments into calls and results into lines, and draws progress bars.

use clap::{Args, Parser, Subcommand};
use handgrad::data::batches::{Amount, SplitSpec};
use handgrad::data::corrupt::Corruption;
use handgrad::data::download::{download, Fetched, Source};
use handgrad::data::mnist::{DatasetName, Lookup};
use handgrad::experiments::bench::{bench, BenchMode, BenchSpec};
use handgrad::experiments::classify::{classify, ClassifySpec, Source as ClassifySource};
use handgrad::experiments::eval::{
    denoise_run, eval_run, noise_sweep, parse_sweep, reconstruct_run, sweep_outputs, MAX_SHOWN,
};
use handgrad::experiments::explain::{explain, shape};
use handgrad::experiments::generate::{
    centroids, generate, interpolate, manifold, parse_sigmas, CodeSource,
};
use handgrad::experiments::latent::{latent, weights, Projection};
use handgrad::experiments::pca::{parse_components, pca_baseline};
use handgrad::experiments::reproduce::{reproduce, Protocol};
use handgrad::experiments::search::{collect, parse_shard, search, sweep, SweepField};
use handgrad::experiments::train::{train_new, train_resume, RunReport};
use handgrad::experiments::RunOptions;
use handgrad::machine::{human_bytes, human_count};
use handgrad::models::ConvLayer;
use handgrad::names::{self, parse_activation, parse_optional_activation, Named};
use handgrad::nn::Init;
use handgrad::reduce::tsne::TsneSettings;
use handgrad::train::fit::Outcome;
use handgrad::train::run_dir::fresh_run_dir;
use handgrad::train::{Event, LossName, Observer, OptimizerName, PlateauSpec, Preset, RunConfig};
use handgrad::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Train and inspect autoencoders with a hand-written autodiff engine.
#[derive(Parser, Debug)]
#[command(name = "handgrad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Run every matrix product and convolution on its naive reference loop: the same numbers, many times slower (for learning).
    #[arg(long, global = true)]
    naive: bool,
    /// Worker threads for every parallel kernel [default: RAYON_NUM_THREADS, else one per core]. Results do not depend on it.
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an autoencoder (default: the conv-selu preset on MNIST).
    Train(Box<TrainArgs>),
    /// Print a trained run's test loss, clean and under corruptions, next to doing nothing.
    Eval(EvalArgs),
    /// Save a picture of test images and their reconstructions.
    Reconstruct(ReconstructArgs),
    /// Save clean, corrupted and denoised test images, one row each.
    Denoise(DenoiseArgs),
    /// Decode random codes (from N(0, I) for a VAE, from the training codes' spread for an
    /// autoencoder), or each class's mean code with growing noise (--centroids).
    Generate(GenerateArgs),
    /// For a code of size 2: decode a grid over the code plane, and plot the test codes by class.
    Manifold(ManifoldArgs),
    /// Decode the straight line between two test images' codes.
    Interpolate(InterpolateArgs),
    /// Draw the test images' codes in 2-D (PCA, t-SNE or the first two numbers), coloured by class.
    Latent(LatentArgs),
    /// Draw a layer's weights as images (default: the first layer's filters or units).
    Weights(WeightsArgs),
    /// The linear baseline: reconstruct test images from k principal components of the training images.
    Pca(PcaArgs),
    /// Train a classifier on a run's encoder (frozen, fine-tuned or from scratch) or on PCA features.
    Classify(Box<ClassifyArgs>),
    /// Train one model per value of one setting and plot the loss against it.
    Sweep(Box<SweepArgs>),
    /// Random hyperparameter search: trials ranked by validation loss; shardable across machines.
    Search(Box<SearchArgs>),
    /// Show a model layer by layer: shapes, parameters, multiply-adds, memory, and how each transposed convolution's output_padding is worked out.
    Explain(ExplainArgs),
    /// Show one training step's tape node by node: op, shapes, multiply-adds, forward and backward time; optionally as a Graphviz file.
    Trace(TraceArgs),
    /// Check an op's backward pass against central finite differences (or every op with `all`); --plant-bug shows a failure.
    Gradcheck(GradcheckArgs),
    /// Time training (or inference) steps of a preset: images/s, GFLOP/s, share of the FMA peak, peak memory.
    Bench(BenchArgs),
    /// Run a course report's protocol and write REPORT.md and report.html with its numbers beside ours.
    Reproduce(ReproduceArgs),
    /// Download MNIST or Fashion-MNIST, checking every file's checksum.
    Download {
        /// mnist or fashion-mnist.
        dataset: String,
        /// Target folder [default: data/<dataset>/].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Use this mirror (base URL) instead of the public ones; repeat for several.
        #[arg(long)]
        mirror: Vec<String>,
    },
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// A folder holding dataset folders (<dir>/mnist/, <dir>/fashion-mnist/); looked in first.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl DataArgs {
    fn options(&self, interrupt: Arc<AtomicBool>) -> RunOptions {
        RunOptions {
            lookup: Lookup::from_env(self.data_dir.clone()),
            interrupt,
            profile: false,
        }
    }
}

/// "[default: …]" for a setting, from the one preset table.
fn preset_default(f: impl Fn(&RunConfig) -> String) -> String {
    format!("[default: the preset's: {}]", Preset::defaults_of(f))
}

fn preset_help() -> String {
    let list: Vec<String> = handgrad::train::PRESETS
        .iter()
        .map(|p| format!("{} ({})", p.name, p.describe))
        .collect();
    format!("The model and recipe to start from: {}", list.join("; "))
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct TrainArgs {
    #[arg(long, default_value = "conv-selu", help = preset_help())]
    preset: String,
    /// A TOML or JSON run configuration; fields it leaves out come from the preset it names
    /// (or --preset). Options below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// mnist, fashion-mnist, or a folder with IDX files [default: mnist].
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// The run folder [default: runs/<preset>-<dataset>, numbered if taken].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its checkpoint, with the settings it was started
    /// with (only --epochs may change: to train a run longer).
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, help = format!("Passes over the training set {}", preset_default(|c| c.train.epochs.to_string())))]
    epochs: Option<usize>,
    #[arg(long, help = format!("Images per step {}", preset_default(|c| c.train.batch_size.to_string())))]
    batch_size: Option<usize>,
    #[arg(long, help = format!("Learning rate {}", preset_default(|c| c.train.lr.to_string())))]
    lr: Option<f32>,
    #[arg(long, help = format!("Size of the code {}", preset_default(|c| c.model.latent.to_string())))]
    latent: Option<usize>,
    /// Encoder convolutions as channels:kernel:stride:padding, comma-separated, e.g.
    /// 8:3:2:1,16:3:2:1 ("none" for an MLP). The decoder mirrors them.
    #[arg(long)]
    conv: Option<String>,
    /// Hidden linear sizes between the features and the code, e.g. 145,98,52 ("none" for none).
    #[arg(long)]
    hidden: Option<String>,
    #[arg(long, help = format!("The activation between layers: {} {}", names::list::<kernels::elementwise::Activation>(), preset_default(|c| c.model.activation.to_string())))]
    activation: Option<String>,
    /// The decoder's last activation, or none [default: sigmoid].
    #[arg(long)]
    output_activation: Option<String>,
    /// An activation applied to the code itself, or none [default: the preset's: none, sigmoid for mlp1-K and mlp3-K].
    #[arg(long)]
    code_activation: Option<String>,
    /// Batch normalisation after every convolution and hidden linear layer.
    #[arg(long)]
    batch_norm: bool,
    /// Train a variational autoencoder (the encoder gives a mean and a log-variance per code
    /// dimension; the loss adds beta·KL).
    #[arg(long)]
    variational: bool,
    /// A VAE's weight on the KL term [default: 1].
    #[arg(long)]
    beta: Option<f32>,
    /// Train a denoising autoencoder: corrupt every input this way and ask for the clean image:
    /// gaussian:F, occlusion:S, occlusion:S@R,C, salt-pepper:P, joined by + [default: none].
    #[arg(long)]
    corrupt: Option<String>,
    #[arg(long, help = format!("The reconstruction loss: {} [default: mse]", names::list::<LossName>()))]
    loss: Option<String>,
    #[arg(long, help = format!("The optimiser: {} [default: adam]", names::list::<OptimizerName>()))]
    optimizer: Option<String>,
    /// SGD momentum, in [0, 1) [default: 0].
    #[arg(long)]
    momentum: Option<f32>,
    /// L2 weight decay [default: 0].
    #[arg(long)]
    weight_decay: Option<f32>,
    #[arg(long, help = format!("Weight initialisation: {} {}", names::list::<Init>(), preset_default(|c| c.model.init.to_string())))]
    init: Option<String>,
    /// Seed of initialisation, splits, shuffles and corruptions [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Validation set: a fraction (0.1) or a count (5000) of the training pool [default: 0.1].
    #[arg(long)]
    validation: Option<String>,
    /// Test set carved from a dataset that has test files only, like the shipped MNIST test
    /// set: a fraction or a count [default: 0.2]. Refused for a dataset with its own test set.
    #[arg(long)]
    test: Option<String>,
    /// Keep only these classes, e.g. 0,1,2,4,7 [default: all].
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// Use at most this many images for training and validation together (the test set is
    /// never cut) [default: all].
    #[arg(long)]
    max_samples: Option<usize>,
    /// Stop after this many epochs without validation improvement, restoring the best weights
    /// [default: no early stopping].
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Multiply the learning rate by --plateau-factor after this many epochs without
    /// validation improvement [default: the preset's: mlp4 3, others off].
    #[arg(long)]
    plateau_patience: Option<usize>,
    /// The factor ReduceLROnPlateau multiplies the rate by (with --plateau-patience) [default: 0.5].
    #[arg(long)]
    plateau_factor: Option<f64>,
    /// Epochs after which to save a reconstruction picture, e.g. 1,5,10; the last epoch
    /// always gets one [default: 1,2,5,10,20,50,100].
    #[arg(long, value_delimiter = ',')]
    snapshot_epochs: Option<Vec<usize>>,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    quiet: bool,
    /// After training, print the time spent in each op type, forward and backward.
    #[arg(long)]
    profile: bool,
}

impl TrainArgs {
    /// The flags that set a training setting, by name, and whether each was given.
    fn settings_given(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("--config", self.config.is_some()),
            ("--preset", self.preset != "conv-selu"),
            ("--dataset", self.dataset.is_some()),
            ("--out", self.out.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--lr", self.lr.is_some()),
            ("--latent", self.latent.is_some()),
            ("--conv", self.conv.is_some()),
            ("--hidden", self.hidden.is_some()),
            ("--activation", self.activation.is_some()),
            ("--output-activation", self.output_activation.is_some()),
            ("--code-activation", self.code_activation.is_some()),
            ("--batch-norm", self.batch_norm),
            ("--variational", self.variational),
            ("--beta", self.beta.is_some()),
            ("--corrupt", self.corrupt.is_some()),
            ("--loss", self.loss.is_some()),
            ("--optimizer", self.optimizer.is_some()),
            ("--momentum", self.momentum.is_some()),
            ("--weight-decay", self.weight_decay.is_some()),
            ("--init", self.init.is_some()),
            ("--seed", self.seed.is_some()),
            ("--validation", self.validation.is_some()),
            ("--test", self.test.is_some()),
            ("--classes", self.classes.is_some()),
            ("--max-samples", self.max_samples.is_some()),
            ("--early-stopping", self.early_stopping.is_some()),
            ("--plateau-patience", self.plateau_patience.is_some()),
            ("--plateau-factor", self.plateau_factor.is_some()),
            ("--snapshot-epochs", self.snapshot_epochs.is_some()),
        ]
    }

    /// The preset or config file, with every option given on the command line applied.
    fn config(&self) -> Result<RunConfig> {
        let mut cfg = match &self.config {
            Some(path) => RunConfig::from_file(path, &self.preset)?,
            None => RunConfig::preset(&self.preset)?,
        };
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
        if let Some(v) = self.max_samples {
            s.max_samples = Some(v);
        }
        if let Some(v) = self.early_stopping {
            t.early_stopping = Some(v);
        }
        match (self.plateau_patience, self.plateau_factor) {
            (Some(patience), factor) => {
                t.plateau = Some(PlateauSpec {
                    factor: factor.unwrap_or(0.5),
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
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Overwrites `slot` when the option was given.
fn set<T>(slot: &mut T, given: Option<T>) {
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

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Measure on every test image of this dataset (mnist, fashion-mnist or a folder of IDX
    /// files) instead of the run's own test split.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Also measure with inputs damaged this way (repeat for several): gaussian:F,
    /// occlusion:S, occlusion:S@R,C, salt-pepper:P, joined by +.
    #[arg(long)]
    corrupt: Vec<String>,
    /// Measure under Gaussian noise of every factor START:END:STEP (e.g. 0:1:0.1); writes a
    /// plot and a CSV of test loss against noise level.
    #[arg(long)]
    noise_sweep: Option<String>,
    /// Where the sweep's files go, without extension [default: <run>/noise-sweep].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the sweep's files if they exist.
    #[arg(long)]
    force: bool,
}

/// What every picture-making command shares: the run, where to write, whether to replace.
#[derive(Args, Debug)]
struct PictureArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Where to write the PNG [default: a file in the run folder named after the command].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct DenoiseArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// The damage: gaussian:F, occlusion:S, occlusion:S@R,C, salt-pepper:P, joined by +.
    #[arg(long)]
    corrupt: String,
    #[arg(long, default_value_t = 10, help = format!("How many test images, 1 to {MAX_SHOWN}"))]
    count: usize,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct GenerateArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// How many images (up to 100).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Where codes come from: prior (N(0, I), for a VAE) or codes (each dimension's mean and
    /// spread over the training images' codes) [default: prior for a VAE, codes otherwise].
    #[arg(long)]
    source: Option<String>,
    /// Instead: each class's mean code, plus N(0, σ²) noise for each --sigmas value.
    #[arg(long)]
    centroids: bool,
    /// The noise levels σ for --centroids.
    #[arg(long, default_value = "0,2.5,5,7.5,10")]
    sigmas: String,
    /// Seed of the random codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
struct ClassifyArgs {
    /// A trained run whose encoder the classifier starts from.
    #[arg(long, conflicts_with = "features")]
    run: Option<PathBuf>,
    /// Keep the run's encoder fixed and train only the head on its codes (the default with --run).
    #[arg(long, requires = "run", conflicts_with_all = ["finetune", "from_scratch"])]
    freeze: bool,
    /// Train the run's encoder further together with the head.
    #[arg(long, requires = "run", conflicts_with = "from_scratch")]
    finetune: bool,
    /// Train the run's encoder architecture from a fresh initialisation: the control that shows what pretraining gave.
    #[arg(long, requires = "run")]
    from_scratch: bool,
    /// Instead of --run: pca:K (the images' first K principal components) or run:FOLDER (a frozen run).
    #[arg(long)]
    features: Option<String>,
    /// With --features pca:K: mnist, fashion-mnist, or a folder with IDX files.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// With --features pca:K: keep only these classes, e.g. 0,1,2,4,7 (relabelled 0…k−1 inside) [default: all].
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// With --features pca:K: use at most this many training and validation images [default: all].
    #[arg(long)]
    max_samples: Option<usize>,
    /// The head's hidden layer sizes, comma-separated ("none" for a linear classifier).
    #[arg(long, visible_alias = "mlp", default_value = "128")]
    hidden: String,
    /// The activation between the head's layers: relu, leaky_relu, selu, sigmoid, tanh.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Passes over the training set.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seed of the head's initialisation and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this many epochs without validation improvement, keeping the best weights [default: off].
    #[arg(long)]
    early_stopping: Option<usize>,
    /// The output folder [default: <run>/classify-<mode>, or runs/classify-pca<K>-<dataset>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the result.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct GradcheckArgs {
    #[arg(help = format!("The op: {}, or all", handgrad::autodiff::catalog::OPS.join(", ")))]
    op: String,
    /// The main input's shape, for element-wise ops, reductions, losses, linear and matmul.
    #[arg(long, value_delimiter = ',', default_value = "2,5")]
    shape: Vec<usize>,
    /// Convolutions and pooling: kernel size.
    #[arg(long, default_value_t = 3)]
    kernel: usize,
    /// Convolutions and pooling: stride.
    #[arg(long, default_value_t = 2)]
    stride: usize,
    /// Convolutions: zero padding.
    #[arg(long, default_value_t = 1)]
    padding: usize,
    /// Convolutions: input and output channels, e.g. 2,3.
    #[arg(long, value_delimiter = ',', default_value = "2,3")]
    channels: Vec<usize>,
    /// Convolutions and pooling: input height and width.
    #[arg(long, default_value_t = 6)]
    size: usize,
    /// Put a deliberately wrong backward after the op, to see what a failed check looks like.
    #[arg(long)]
    plant_bug: bool,
}

#[derive(Args, Debug)]
struct TraceArgs {
    #[arg(long, default_value = "conv-selu", help = preset_help())]
    preset: String,
    /// A TOML or JSON run configuration instead of the preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Images per step [default: the preset's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Also write the tape as a Graphviz graph to this file (render with `dot -Tsvg F.dot`).
    #[arg(long)]
    dot: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    #[arg(long, default_value = "conv-selu", help = preset_help())]
    preset: String,
    /// A TOML or JSON run configuration instead of the preset.
    #[arg(long, conflicts_with = "run")]
    config: Option<PathBuf>,
    /// A run folder: explain the model it trained.
    #[arg(long)]
    run: Option<PathBuf>,
    /// The batch size memory is worked out for [default: the run's or preset's].
    #[arg(long)]
    batch_size: Option<usize>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[arg(long, default_value = "conv-selu", help = preset_help())]
    preset: String,
    /// What to time: train (forward, loss, backward, Adam) or infer (forward only).
    #[arg(long, default_value = "train")]
    mode: String,
    /// Images per step [default: the preset's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Timed steps per run.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Untimed steps before the first run.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

/// The settings a sweep or a search starts from.
#[derive(Args, Debug)]
struct BaseArgs {
    #[arg(long, default_value = "conv-selu", help = preset_help())]
    preset: String,
    /// A TOML or JSON run configuration to start from instead of the preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// mnist, fashion-mnist, or a folder with IDX files [default: the preset's, mnist].
    #[arg(long)]
    dataset: Option<String>,
    /// Epochs per run [default: the preset's: 20].
    #[arg(long)]
    epochs: Option<usize>,
    /// Use at most this many images for training and validation together [default: all].
    #[arg(long)]
    max_samples: Option<usize>,
    /// Stop each run after this many epochs without validation improvement [default: off].
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Print only the table.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    data: DataArgs,
}

impl BaseArgs {
    fn config(&self) -> Result<RunConfig> {
        let mut cfg = match &self.config {
            Some(path) => RunConfig::from_file(path, &self.preset)?,
            None => RunConfig::preset(&self.preset)?,
        };
        if let Some(d) = &self.dataset {
            cfg.dataset = d.clone();
        }
        set(&mut cfg.train.epochs, self.epochs);
        if self.max_samples.is_some() {
            cfg.split.max_samples = self.max_samples;
        }
        if self.early_stopping.is_some() {
            cfg.train.early_stopping = self.early_stopping;
        }
        // Runs inside a sweep or a search keep no per-epoch reconstruction snapshots.
        cfg.train.snapshot_epochs = Vec::new();
        Ok(cfg)
    }
}

#[derive(Args, Debug)]
struct ReproduceArgs {
    #[arg(help = format!("The report's protocol: {}", Protocol::ALL.iter().map(|p| format!("{} ({})", p.name(), p.describe())).collect::<Vec<_>>().join("; ")))]
    name: String,
    /// A reduced version (3,000 images, 2 epochs per model): checks the protocol runs in a minute or two; its numbers are not a reproduction.
    #[arg(long)]
    quick: bool,
    /// The output folder [default: runs/reproduce-<name>, numbered if taken].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct SweepArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// Code sizes to sweep, e.g. 2,3,4,5,6.
    #[arg(long, value_delimiter = ',')]
    latent: Vec<f64>,
    /// Learning rates to sweep, e.g. 1e-3,2e-3.
    #[arg(long, value_delimiter = ',')]
    lr: Vec<f64>,
    /// Batch sizes to sweep.
    #[arg(long, value_delimiter = ',')]
    batch_size: Vec<f64>,
    /// Weight decays to sweep.
    #[arg(long, value_delimiter = ',')]
    weight_decay: Vec<f64>,
    /// The output folder [default: runs/sweep-<preset>-<setting>, numbered if taken].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SearchArgs {
    #[command(flatten)]
    base: BaseArgs,
    #[arg(long, default_value_t = 30, help = format!("How many trials in the whole search. Each draws its settings at random: {}", handgrad::experiments::search::RANGES))]
    trials: usize,
    /// Seed of the trials' settings (trial k's depend only on it and k).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run only every N-th trial from I (I/N), to split a search over N machines; merge with --collect.
    #[arg(long, default_value = "0/1")]
    shard: String,
    /// Instead of searching: merge these shards' folders into --out.
    #[arg(long, num_args = 1..)]
    collect: Vec<PathBuf>,
    /// The output folder [default: runs/search-<preset>, numbered if taken].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct LatentArgs {
    #[command(flatten)]
    picture: PictureArgs,
    #[arg(long, default_value = "pca", help = format!("How to bring codes down to two numbers: {}", names::list::<Projection>()))]
    method: String,
    /// How many test images' codes to draw (t-SNE: at most 5,000; it takes seconds per thousand).
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// t-SNE's perplexity: the number of neighbours each point's affinities cover.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// t-SNE's gradient steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Seed of t-SNE's starting map.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
struct WeightsArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// The layer, by its parameter name without ".weight" (e.g. encoder.0) [default: the encoder's first layer with weights].
    #[arg(long)]
    layer: Option<String>,
    /// Where to write the PNG [default: <run>/weights-<layer>.png].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct PcaArgs {
    /// mnist, fashion-mnist, or a folder with IDX files.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Numbers of components to compare, comma-separated.
    #[arg(long, default_value = "32,64,128,256")]
    components: String,
    /// Keep only these classes, e.g. 0,1,2,4,7 [default: all].
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// Fit on at most this many training images [default: all].
    #[arg(long)]
    max_samples: Option<usize>,
    /// Test images shown (one per class first), 1 to 100.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Where to write the PNG [default: pca-<dataset>.png].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct ManifoldArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// Points per side of the grid of codes.
    #[arg(long, default_value_t = 15)]
    grid: usize,
}

#[derive(Args, Debug)]
struct InterpolateArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// The first test image: its index in the run's test split, or class:N for the first image of class N.
    #[arg(long)]
    from: String,
    /// The last test image, as --from.
    #[arg(long)]
    to: String,
    /// Decoded codes between the two ends.
    #[arg(long, default_value_t = 8)]
    steps: usize,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct ReconstructArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Where to write the PNG [default: <run>/reconstruct.png].
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 16, help = format!("How many test images, 1 to {MAX_SHOWN}"))]
    count: usize,
    /// Use every test image of this dataset instead of the run's test split.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// Ctrl-C sets the flag (training saves a checkpoint and stops after the current batch); a
/// second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once)…");
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not save a checkpoint ({e})");
    }
    flag
}

/// Prints events: lines as they come, a progress bar per epoch.
struct Console {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Console {
    fn new(quiet: bool) -> Self {
        Console { quiet, bar: None }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => println!("{text}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Console {
    fn event(&mut self, event: Event<'_>) {
        match event {
            // Printed even when quiet: the user pressed Ctrl-C and should learn what was kept.
            Event::Interrupted {
                epoch,
                batch,
                batches,
                dir,
            } => {
                self.finish();
                let when = if batch == 0 {
                    format!("after epoch {}", epoch - 1)
                } else {
                    format!("during epoch {epoch}, after batch {batch} of {batches}")
                };
                println!(
                    "interrupted: checkpoint saved {when}; continue with --resume {}",
                    dir.display()
                );
            }
            _ if self.quiet => {}
            Event::Info(line) => self.line(line),
            Event::Progress { done, total, what } => self.line(&format!("[{done}/{total}] {what}")),
            Event::Batch(p) => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(p.batches as u64);
                    let style = ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style.progress_chars("=> "));
                    bar
                });
                bar.set_length(p.batches as u64);
                bar.set_prefix(format!("epoch {}/{}", p.epoch, p.epochs));
                bar.set_position(p.batch as u64);
                bar.set_message(format!(
                    "loss {:.5}  {:.0} img/s",
                    p.loss, p.images_per_second
                ));
            }
            Event::Epoch {
                metrics: m,
                epochs,
                terms,
            } => {
                if let Some(bar) = &self.bar {
                    bar.reset();
                }
                let mut line = format!(
                    "epoch {:>3}/{epochs}  train {:.5}  val {:.5}",
                    m.epoch, m.train_loss, m.val_loss
                );
                for (k, name) in terms.iter().enumerate() {
                    let (tr, va) = (m.train_terms.get(k), m.val_terms.get(k));
                    if let (Some(tr), Some(va)) = (tr, va) {
                        line.push_str(&format!("  {name} {tr:.4}/{va:.4}"));
                    }
                }
                line.push_str(&format!("  lr {:.2e}  {:.1}s", m.lr, m.seconds));
                self.line(&line);
            }
        }
    }
}

/// Prints how a training run ended; the exit status says whether it finished.
/// The profile as a table: per op type, calls and milliseconds forward and backward, and the
/// share of the total.
fn print_profile(rows: &[handgrad::autodiff::ProfileRow]) {
    let total: f64 = rows
        .iter()
        .map(|r| (r.forward + r.backward).as_secs_f64())
        .sum();
    println!(
        "time per op over the training steps (forward: from the previous op to this one; backward: its backward call)"
    );
    println!(
        "{:<34} {:>9} {:>12} {:>9} {:>12} {:>7}",
        "op", "fwd calls", "forward ms", "bwd calls", "backward ms", "share"
    );
    for r in rows {
        let both = (r.forward + r.backward).as_secs_f64();
        println!(
            "{:<34} {:>9} {:>12.1} {:>9} {:>12.1} {:>6.1}%",
            r.op,
            r.forward_calls,
            r.forward.as_secs_f64() * 1e3,
            r.backward_calls,
            r.backward.as_secs_f64() * 1e3,
            100.0 * both / total.max(f64::MIN_POSITIVE)
        );
    }
}

fn report(r: &RunReport) -> ExitCode {
    if !r.profile.is_empty() {
        print_profile(&r.profile);
    }
    if let Outcome::StoppedEarly { best_epoch } = r.outcome {
        println!(
            "early stopping after epoch {}: restored the weights of epoch {best_epoch}",
            r.epochs
        );
    }
    if let Some(test) = &r.test {
        println!(
            "test loss ({}) {:.6} over {} images",
            r.objective, test.loss, r.test_images
        );
    }
    if let Some(b) = &r.baselines {
        println!("{}", b.line());
    }
    println!("outputs in {}: {}", r.dir.display(), r.outputs.join(", "));
    println!("report: {}", r.page.display());
    if r.outcome == Outcome::Interrupted {
        // 130 = 128 + SIGINT, as shells report a program stopped by Ctrl-C: scripts can
        // tell an interrupted run from a finished one.
        return ExitCode::from(130);
    }
    ExitCode::SUCCESS
}

fn train(args: &TrainArgs) -> Result<ExitCode> {
    let opts = RunOptions {
        profile: args.profile,
        ..args.data.options(interrupt_flag())
    };
    let mut console = Console::new(args.quiet);
    let r = match &args.resume {
        Some(dir) => {
            let given: Vec<&str> = args
                .settings_given()
                .into_iter()
                .filter_map(|(name, given)| given.then_some(name))
                .collect();
            if !given.is_empty() {
                return Err(Error::config(
                    "resume",
                    format!(
                        "--resume continues a run with the settings it was started with; {} cannot be given with it (only --epochs, --quiet and --data-dir can)",
                        given.join(", ")
                    ),
                ));
            }
            train_resume(dir, args.epochs, &opts, &mut console)
        }
        None => {
            let cfg = args.config()?;
            let stem = format!(
                "{}-{}",
                cfg.preset,
                DatasetName::parse(&cfg.dataset).map_or("custom", DatasetName::as_str)
            );
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| fresh_run_dir(&PathBuf::from("runs"), &stem));
            train_new(cfg, &dir, &opts, &mut console)
        }
    };
    console.finish();
    Ok(report(&r?))
}

fn eval(args: &EvalArgs) -> Result<()> {
    // Everything that can be refused is checked before the first number is printed.
    let corruptions = args
        .corrupt
        .iter()
        .map(|c| c.parse::<Corruption>())
        .collect::<Result<Vec<_>>>()?;
    let sweep = match &args.noise_sweep {
        Some(text) => Some((
            parse_sweep(text)?,
            sweep_outputs(&args.run, args.out.as_deref(), args.force)?,
        )),
        None => None,
    };
    let opts = args.data.options(Arc::default());
    let dataset = args.dataset.as_deref();
    let r = eval_run(&args.run, dataset, &corruptions, &opts)?;
    println!("{}: {}", args.run.display(), r.source);
    println!(
        "the run's own objective ({}): {:.6}",
        r.objective.0, r.objective.1
    );
    println!();
    println!(
        "{:<28} {:>14} {:>22}",
        "input",
        format!("model {}", short(&r.loss)),
        "identity (input itself)"
    );
    for row in &r.rows {
        let identity = row.identity.map_or("—".to_string(), |v| format!("{v:.6}"));
        println!("{:<28} {:>14.6} {:>22}", row.condition, row.model, identity);
    }
    println!();
    println!(
        "model: the {} between the model's output and the clean image;",
        r.loss
    );
    println!("identity: the same loss for handing back the (corrupted) input unchanged.");
    match &r.baselines {
        Some(b) => println!("{}", b.line()),
        None => println!("(no baselines: they are fitted on the run's own training images, and these test images come from another dataset)"),
    }
    if let Some((levels, outputs)) = sweep {
        let (rows, csv, png) = noise_sweep(&args.run, dataset, &levels, outputs, &opts)?;
        println!();
        println!(
            "{:>12} {:>14} {:>22}",
            "noise factor",
            format!("model {}", short(&r.loss)),
            "identity (input itself)"
        );
        for (f, m, i) in rows {
            println!("{f:>12.2} {m:>14.6} {i:>22.6}");
        }
        println!("wrote {} and {}", csv.display(), png.display());
    }
    Ok(())
}

fn gradcheck_cmd(args: &GradcheckArgs) -> Result<()> {
    use handgrad::autodiff::catalog::{case, plant_bug, CaseOptions, OPS};
    use handgrad::autodiff::{grad_check_report, Tolerance};
    let [c_in, c_out] = args.channels[..] else {
        return Err(Error::config(
            "channels",
            "give two numbers: input and output channels, e.g. 2,3",
        ));
    };
    let options = CaseOptions {
        shape: args.shape.clone(),
        kernel: args.kernel,
        stride: args.stride,
        padding: args.padding,
        channels: (c_in, c_out),
        size: args.size,
    };
    let ops: Vec<&str> = if args.op == "all" {
        OPS.to_vec()
    } else {
        vec![args.op.as_str()]
    };
    let tol = Tolerance::default();
    println!(
        "central differences with h = {}, L = Σ r ⊙ y for a fixed random r; an element passes when |analytic − numeric| ≤ {} + {}·max(|analytic|, |numeric|)",
        tol.h, tol.abs, tol.rel
    );
    let mut failed = Vec::new();
    for name in ops {
        let c = case(name, &options)?;
        let f = &c.f;
        let planted = args.plant_bug;
        let reports = grad_check_report(
            &c.inputs,
            |g, v| {
                let y = f(g, v)?;
                Ok(if planted { plant_bug(g, y) } else { y })
            },
            tol,
        )?;
        for (r, (role, x)) in reports.iter().zip(c.roles.iter().zip(&c.inputs)) {
            let shape: Vec<String> = x.shape().iter().map(|d| d.to_string()).collect();
            println!(
                "{:<20} {:<2} {:<12} max abs error {:.1e}, max rel error {:.1e}: {}",
                c.name,
                role,
                shape.join("×"),
                r.max_abs_error,
                r.max_rel_error,
                if r.passed() {
                    "passes".to_string()
                } else {
                    let (k, a, n) = r.worst.unwrap_or_default();
                    format!(
                        "FAILS at {} of {} elements (worst: element {k}, analytic {a:.5}, numeric {n:.5})",
                        r.failures, r.elements
                    )
                }
            );
        }
        if reports.iter().any(|r| !r.passed()) {
            failed.push(c.name);
        }
    }
    if failed.is_empty() {
        println!("every gradient matches its finite differences");
        Ok(())
    } else {
        Err(Error::config(
            "gradient check",
            format!(
                "the backward pass of {} disagrees with finite differences",
                failed.join(", ")
            ),
        ))
    }
}

fn trace_cmd(args: &TraceArgs) -> Result<()> {
    use handgrad::experiments::trace::{input_shapes, output_shape, trace, write_dot};
    let mut cfg = match &args.config {
        Some(path) => RunConfig::from_file(path, &args.preset)?,
        None => RunConfig::preset(&args.preset)?,
    };
    if let Some(b) = args.batch_size {
        cfg.train.batch_size = b;
    }
    let rows = trace(&cfg, &args.data.options(Arc::default()))?;
    let ms = |d: Option<std::time::Duration>| {
        d.map_or("—".to_string(), |d| {
            format!("{:.3}", d.as_secs_f64() * 1e3)
        })
    };
    println!(
        "one training step of {} at batch {} (the second; the first warmed up): {} values on the tape",
        cfg.preset,
        cfg.train.batch_size,
        rows.len()
    );
    println!(
        "{:>4} {:<30} {:<11} {:<34} {:<16} {:>13} {:>9} {:>9}",
        "#", "op", "layer", "inputs", "output", "mult-adds", "fwd ms", "bwd ms"
    );
    for r in &rows {
        println!(
            "{:>4} {:<30} {:<11} {:<34} {:<16} {:>13} {:>9} {:>9}",
            r.index,
            r.op,
            r.scope,
            input_shapes(r),
            output_shape(r),
            if r.macs > 0 {
                human_count(r.macs)
            } else {
                String::new()
            },
            ms(r.forward),
            ms(r.backward)
        );
    }
    let total: u128 = rows.iter().map(|r| r.macs).sum();
    println!(
        "{} multiply-adds in the forward pass ({} per image); the backward pass does about twice that",
        human_count(total),
        human_count(total / cfg.train.batch_size.max(1) as u128)
    );
    if let Some(path) = &args.dot {
        write_dot(
            &rows,
            &format!(
                "{}: one training step at batch {}",
                cfg.preset, cfg.train.batch_size
            ),
            path,
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn explain_cmd(args: &ExplainArgs) -> Result<()> {
    let cfg = match (&args.run, &args.config) {
        (Some(run), _) => handgrad::train::run_dir::RunDir(run.clone()).read_config()?,
        (None, Some(path)) => RunConfig::from_file(path, &args.preset)?,
        (None, None) => RunConfig::preset(&args.preset)?,
    };
    let batch = args.batch_size.unwrap_or(cfg.train.batch_size);
    let (rows, totals) = explain(&cfg.model, batch)?;
    println!(
        "{:<11} {:<38} {:>10} {:>10} {:>11} {:>13} {:>12}",
        "layer",
        "what",
        "in",
        "out",
        "parameters",
        "mult-adds",
        format!("out ×{batch}")
    );
    for r in &rows {
        println!(
            "{:<11} {:<38} {:>10} {:>10} {:>11} {:>13} {:>12}",
            r.name,
            r.layer,
            shape(&r.input),
            shape(&r.output),
            human_count(r.parameters),
            human_count(r.macs),
            human_bytes(r.activation_bytes)
        );
        if let Some(a) = &r.arithmetic {
            println!("{:<11}   ↳ {a}", "");
        }
    }
    for t in totals {
        println!("{t}");
    }
    Ok(())
}

fn bench_cmd(args: &BenchArgs) -> Result<()> {
    let threads = rayon::current_num_threads();
    let spec = BenchSpec {
        preset: args.preset.clone(),
        mode: BenchMode::parse(&args.mode)?,
        batch: args.batch_size,
        steps: args.steps,
        runs: args.runs,
        warmup: args.warmup,
        threads,
    };
    let r = bench(&spec, &args.data.options(Arc::default()))?;
    if args.json {
        println!("{}", r.json());
        return Ok(());
    }
    println!(
        "{} {} at batch {}, {} threads, on {}",
        r.preset, r.mode, r.batch, r.threads, r.data
    );
    println!(
        "processor: {} ({} peak {:.1} GFLOP/s measured)",
        r.cpu, r.isa, r.peak_gflops
    );
    let runs: Vec<String> = r.runs.iter().map(|v| format!("{v:.0}")).collect();
    println!(
        "images/s: median {:.0} (runs: {})",
        r.img_per_s,
        runs.join(", ")
    );
    println!(
        "{:.2} MFLOP per image → {:.1} GFLOP/s, {:.1} % of the FMA peak",
        r.flops_per_image / 1e6,
        r.gflops,
        100.0 * r.gflops / r.peak_gflops
    );
    println!("peak memory (RSS): {:.0} MiB", r.peak_rss_mb);
    Ok(())
}

fn reproduce_cmd(args: &ReproduceArgs) -> Result<()> {
    let protocol: Protocol = names::parse(&args.name)?;
    let out = args.out.clone().unwrap_or_else(|| {
        fresh_run_dir(
            std::path::Path::new("runs"),
            &format!("reproduce-{}", protocol.name()),
        )
    });
    let opts = args.data.options(Arc::default());
    let mut obs = Console::new(false);
    let r = reproduce(protocol, args.quick, &out, &opts, &mut obs)?;
    println!("{:<70} {:>9} {:>9}", "what", "report", "ours");
    for f in &r.figures {
        println!(
            "{:<70} {:>9} {:>9.4}",
            f.what,
            f.report.map_or("—".into(), |v| format!("{v:.4}")),
            f.ours
        );
    }
    println!(
        "wrote {} and {}",
        out.join("REPORT.md").display(),
        out.join("report.html").display()
    );
    Ok(())
}

fn sweep_cmd(args: &SweepArgs) -> Result<()> {
    let given: Vec<(SweepField, &Vec<f64>)> = [
        (SweepField::Latent, &args.latent),
        (SweepField::Lr, &args.lr),
        (SweepField::BatchSize, &args.batch_size),
        (SweepField::WeightDecay, &args.weight_decay),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let [(field, values)] = given.as_slice() else {
        return Err(Error::config(
            "sweep",
            format!(
                "give exactly one setting to sweep (--latent, --lr, --batch-size or --weight-decay), not {}",
                given.len()
            ),
        ));
    };
    let base = args.base.config()?;
    let out = args.out.clone().unwrap_or_else(|| {
        fresh_run_dir(
            std::path::Path::new("runs"),
            &format!("sweep-{}-{}", base.preset, field.name()),
        )
    });
    let opts = args.base.data.options(Arc::default());
    let rows = sweep(
        &base,
        *field,
        values,
        &out,
        &opts,
        &mut Console::new(args.base.quiet),
    )?;
    println!(
        "{:>14} {:>16} {:>12} {:>7}",
        field.name(),
        "best validation",
        "test",
        "epochs"
    );
    for r in rows {
        println!(
            "{:>14} {:>16.6} {:>12.6} {:>7}",
            r.value, r.best_val, r.test, r.epochs
        );
    }
    println!(
        "outputs in {}: sweep.csv, sweep.md, sweep.png, one run folder per value",
        out.display()
    );
    Ok(())
}

fn search_cmd(args: &SearchArgs) -> Result<()> {
    let base = args.base.config()?;
    let out = args.out.clone().unwrap_or_else(|| {
        fresh_run_dir(
            std::path::Path::new("runs"),
            &format!("search-{}", base.preset),
        )
    });
    let trials = if args.collect.is_empty() {
        let shard = parse_shard(&args.shard)?;
        let opts = args.base.data.options(Arc::default());
        search(
            &base,
            args.trials,
            args.seed,
            shard,
            &out,
            &opts,
            &mut Console::new(args.base.quiet),
        )?
    } else {
        collect(&args.collect, &out)?
    };
    let best = trials
        .iter()
        .filter(|t| t.best_val.is_finite())
        .min_by(|a, b| a.best_val.total_cmp(&b.best_val));
    if let Some(b) = best {
        println!(
            "best of {} trials: trial {} (latent {}, batch {}, lr {:.2e}, {}, weight decay {}): validation {:.6}",
            trials.len(),
            b.index,
            b.latent,
            b.batch_size,
            b.lr,
            b.optimizer.name(),
            b.weight_decay,
            b.best_val
        );
    }
    println!(
        "outputs in {}: results.csv, results.md, best-config.json (for train --config)",
        out.display()
    );
    Ok(())
}

fn classify_cmd(args: &ClassifyArgs) -> Result<()> {
    let split = SplitSpec {
        classes: args.classes.clone().unwrap_or_default(),
        max_samples: args.max_samples,
        ..SplitSpec::default()
    };
    let (source, default_out) = match (&args.run, &args.features) {
        (Some(run), None) => {
            let (source, mode) = if args.finetune {
                (ClassifySource::Finetune(run.clone()), "finetune")
            } else if args.from_scratch {
                (ClassifySource::Scratch(run.clone()), "from-scratch")
            } else {
                (ClassifySource::Frozen(run.clone()), "frozen")
            };
            (source, run.join(format!("classify-{mode}")))
        }
        (None, Some(f)) => {
            let source = ClassifySource::parse_features(f, &args.dataset, split)?;
            let out = match &source {
                ClassifySource::Frozen(run) => run.join("classify-frozen"),
                ClassifySource::Pca { k, dataset, .. } => {
                    let name = std::path::Path::new(dataset)
                        .file_name()
                        .map_or_else(|| "dataset".into(), |f| f.to_string_lossy().into_owned());
                    PathBuf::from(format!("runs/classify-pca{k}-{name}"))
                }
                _ => PathBuf::from("runs/classify"),
            };
            (source, out)
        }
        _ => {
            return Err(Error::config(
                "classify",
                "give --run FOLDER (with --freeze, --finetune or --from-scratch) or --features pca:K|run:FOLDER",
            ))
        }
    };
    let hidden = if args.hidden.trim() == "none" {
        Vec::new()
    } else {
        handgrad::experiments::parse_sizes(&args.hidden, "hidden", "512,256,256, or none")?
    };
    let spec = ClassifySpec {
        hidden,
        activation: parse_activation(&args.activation)?,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        early_stopping: args.early_stopping,
    };
    let out = args.out.clone().unwrap_or(default_out);
    let opts = args.data.options(Arc::default());
    let r = classify(&source, &spec, &out, &opts, &mut Console::new(args.quiet))?;
    println!(
        "test accuracy {:.2} % over {} images",
        100.0 * r.test_accuracy,
        r.test_images
    );
    println!(
        "outputs in {}: metrics.csv, curves.png, confusion.png",
        r.out.display()
    );
    Ok(())
}

/// "MSE per pixel" → "MSE".
fn short(loss: &str) -> &str {
    loss.split(' ').next().unwrap_or(loss)
}

fn download_cmd(dataset: &str, dir: Option<PathBuf>, mirror: Vec<String>) -> Result<()> {
    let name: DatasetName = names::parse(dataset).map_err(|_| {
        Error::config(
            "dataset",
            format!(
                "{dataset:?} cannot be downloaded ({})",
                names::list::<DatasetName>()
            ),
        )
    })?;
    let mut source = Source::of(name);
    if !mirror.is_empty() {
        source.mirrors = mirror
            .into_iter()
            .map(|m| if m.ends_with('/') { m } else { format!("{m}/") })
            .collect();
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from("data").join(name.name()));
    let fetched = download(&source, &dir, |line| println!("{line}"))?;
    let new = fetched
        .iter()
        .filter(|f| matches!(f, Fetched::Downloaded { .. }))
        .count();
    println!(
        "{name} is in {} ({new} files downloaded, {} already there)",
        dir.display(),
        fetched.len() - new
    );
    Ok(())
}

fn run(cli: Cli) -> Result<ExitCode> {
    kernels::use_reference_loops(cli.naive);
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(Error::config("threads", "give at least 1"));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::config("threads", e.to_string()))?;
    }
    match cli.command {
        Command::Train(args) => return train(&args),
        Command::Eval(args) => eval(&args)?,
        Command::Reconstruct(args) => {
            let opts = args.data.options(Arc::default());
            let out = reconstruct_run(
                &args.run,
                args.out.as_deref(),
                args.count,
                args.dataset.as_deref(),
                args.force,
                &opts,
            )?;
            println!(
                "wrote {} (test images above their reconstructions)",
                out.display()
            );
        }
        Command::Denoise(args) => {
            let p = &args.picture;
            let corruption: Corruption = args.corrupt.parse()?;
            let r = denoise_run(
                &p.run,
                &corruption,
                p.out.as_deref(),
                args.count,
                p.force,
                &p.data.options(Arc::default()),
            )?;
            println!(
                "wrote {}: {} {:.6} denoised, {:.6} for the corrupted input itself",
                r.out.display(),
                r.loss,
                r.model,
                r.identity
            );
        }
        Command::Generate(args) => {
            let p = &args.picture;
            let opts = p.data.options(Arc::default());
            if args.centroids {
                let sigmas = parse_sigmas(&args.sigmas)?;
                let (out, cents) =
                    centroids(&p.run, &sigmas, args.seed, p.out.as_deref(), p.force, &opts)?;
                println!(
                    "wrote {} ({} classes × {} noise levels)",
                    out.display(),
                    cents.len(),
                    sigmas.len()
                );
            } else {
                let source = match args.source.as_deref() {
                    None => None,
                    Some("prior") => Some(CodeSource::Prior),
                    Some("codes") => Some(CodeSource::TrainingCodes),
                    Some(other) => {
                        return Err(Error::config(
                            "code source",
                            format!("unknown {other:?} (prior, codes)"),
                        ))
                    }
                };
                let (out, _) = generate(
                    &p.run,
                    args.n,
                    source,
                    args.seed,
                    p.out.as_deref(),
                    p.force,
                    &opts,
                )?;
                println!("wrote {} ({} generated images)", out.display(), args.n);
            }
        }
        Command::Manifold(args) => {
            let p = &args.picture;
            let stem = p.out.as_ref().map(|o| o.with_extension(""));
            let (grid, codes) = manifold(
                &p.run,
                args.grid,
                stem.as_deref(),
                p.force,
                &p.data.options(Arc::default()),
            )?;
            println!(
                "wrote {} (decoded grid) and {} (test codes by class)",
                grid.display(),
                codes.display()
            );
        }
        Command::Interpolate(args) => {
            let p = &args.picture;
            let (out, _) = interpolate(
                &p.run,
                &args.from,
                &args.to,
                args.steps,
                p.out.as_deref(),
                p.force,
                &p.data.options(Arc::default()),
            )?;
            println!("wrote {}", out.display());
        }
        Command::Latent(args) => {
            let p = &args.picture;
            let method: Projection = names::parse(&args.method)?;
            let settings = TsneSettings {
                perplexity: args.perplexity,
                steps: args.steps,
                seed: args.seed,
            };
            let r = latent(
                &p.run,
                method,
                args.n,
                &settings,
                p.out.as_deref(),
                p.force,
                &p.data.options(Arc::default()),
            )?;
            println!("wrote {} ({} codes)", r.out.display(), r.points);
            if let Some(e) = r.explained {
                println!(
                    "the two axes hold {:.1} % of the codes' variance",
                    100.0 * e
                );
            }
            println!(
                "{:.1} % of the points' nearest neighbour on the picture is of the same class",
                100.0 * r.purity
            );
        }
        Command::Weights(args) => {
            let (out, tiles) = weights(
                &args.run,
                args.layer.as_deref(),
                args.out.as_deref(),
                args.force,
            )?;
            println!("wrote {} ({tiles} tiles)", out.display());
        }
        Command::Pca(args) => {
            let ks = parse_components(&args.components)?;
            // No validation set: PCA has nothing to tune.
            let spec = SplitSpec {
                validation: Amount::Count(0),
                classes: args.classes.clone().unwrap_or_default(),
                max_samples: args.max_samples,
                ..SplitSpec::default()
            };
            let r = pca_baseline(
                &args.dataset,
                &ks,
                &spec,
                args.count,
                args.out.as_deref(),
                args.force,
                &Lookup::from_env(args.data.data_dir.clone()),
            )?;
            println!(
                "PCA fitted on {} training images, measured on {} test images",
                r.train_images, r.test_images
            );
            println!(
                "{:>6} {:>20} {:>16}",
                "k", "variance explained", "test MSE/pixel"
            );
            for row in &r.rows {
                println!(
                    "{:>6} {:>19.1}% {:>16.6}",
                    row.k,
                    100.0 * row.explained,
                    row.test_mse
                );
            }
            println!("wrote {}", r.out.display());
        }
        Command::Classify(args) => classify_cmd(&args)?,
        Command::Explain(args) => explain_cmd(&args)?,
        Command::Trace(args) => trace_cmd(&args)?,
        Command::Gradcheck(args) => gradcheck_cmd(&args)?,
        Command::Bench(args) => bench_cmd(&args)?,
        Command::Sweep(args) => sweep_cmd(&args)?,
        Command::Reproduce(args) => reproduce_cmd(&args)?,
        Command::Search(args) => search_cmd(&args)?,
        Command::Download {
            dataset,
            dir,
            mirror,
        } => download_cmd(&dataset, dir, mirror)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Lets a closed pipe end the program quietly (`handgrad trace | head`), as it does any
/// Unix tool: Rust programs start with SIGPIPE ignored, so a write to a closed pipe fails and
/// `println!` panics. Restoring the default action makes the kernel end the process instead.
#[cfg(target_os = "linux")]
fn quiet_on_closed_pipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: `signal` is the C library's; setting SIGPIPE to its default action has no
    // preconditions.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(target_os = "linux"))]
fn quiet_on_closed_pipe() {}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            let message = e.to_string();
            eprintln!("error: {message}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                // The message often quotes its cause already ("…: No such file or directory"):
                // say it once.
                let text = cause.to_string();
                if !message.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
