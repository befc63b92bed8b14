//! The `handgrad` command: parses arguments, calls the library, prints results and errors.
//! All the work lives in the library (`handgrad::train::run` for the commands below).

use clap::{Args, Parser, Subcommand};
use handgrad::data::batches::Amount;
use handgrad::data::download::{download, Fetched, Source};
use handgrad::data::mnist::{DatasetName, Lookup};
use handgrad::models::{ActName, ConvLayer, LossName, OptimizerName, PlateauSpec, RunConfig};
use handgrad::nn::Init;
use handgrad::train::run::{
    eval_run, fresh_run_dir, reconstruct_run, train_new, train_resume, RunOptions, RunReport,
};
use handgrad::train::Outcome;
use handgrad::{Error, Result};
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
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an autoencoder (default: the conv-selu preset on MNIST).
    Train(Box<TrainArgs>),
    /// Print the test loss of a trained run.
    Eval {
        /// The run folder.
        #[arg(long)]
        run: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Save a picture of test images (top) and their reconstructions (bottom).
    Reconstruct {
        /// The run folder.
        #[arg(long)]
        run: PathBuf,
        /// Where to write the PNG.
        #[arg(long)]
        out: PathBuf,
        /// How many test images.
        #[arg(long, default_value_t = 16)]
        count: usize,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Download MNIST or Fashion-MNIST, checking every file's checksum.
    Download {
        /// `mnist` or `fashion-mnist`.
        dataset: String,
        /// Target folder (default: data/<dataset>/).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Use this mirror (base URL) instead of the public ones.
        #[arg(long)]
        mirror: Vec<String>,
    },
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// A folder holding dataset folders (`<dir>/mnist/`, `<dir>/fashion-mnist/`); checked first.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// conv-selu, conv-small, mlp4, mlp1-K or mlp3-K.
    #[arg(long, default_value = "conv-selu")]
    preset: String,
    /// A TOML or JSON run configuration (replaces the preset; options below still override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// mnist, fashion-mnist, or a folder with IDX files.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// The run folder (default: runs/<preset>-<dataset>, numbered if taken).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, conflicts_with_all = ["config", "out"])]
    resume: Option<PathBuf>,
    /// Passes over the training set.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Size of the code.
    #[arg(long)]
    latent: Option<usize>,
    /// Encoder convolutions as channels:kernel:stride:padding, comma-separated, e.g.
    /// 8:3:2:1,16:3:2:1 ("none" for an MLP). The decoder mirrors them.
    #[arg(long)]
    conv: Option<String>,
    /// Hidden linear sizes between the features and the code, e.g. 145,98,52 ("none" for none).
    #[arg(long)]
    hidden: Option<String>,
    /// The decoder's last activation: sigmoid, tanh, relu, … or none.
    #[arg(long)]
    output_activation: Option<String>,
    /// An activation applied to the code itself, or none.
    #[arg(long)]
    code_activation: Option<String>,
    /// mse or bce.
    #[arg(long)]
    loss: Option<String>,
    /// relu, leaky_relu, selu, sigmoid or tanh.
    #[arg(long)]
    activation: Option<String>,
    /// adam, sgd or adagrad.
    #[arg(long)]
    optimizer: Option<String>,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f32>,
    /// L2 weight decay.
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Weight initialisation: pytorch, lecun_normal, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal.
    #[arg(long)]
    init: Option<String>,
    /// Seed for initialisation, splits and shuffling.
    #[arg(long)]
    seed: Option<u64>,
    /// Validation set: a fraction (0.1) or a count (5000).
    #[arg(long)]
    validation: Option<String>,
    /// Test set when split from a test-only dataset: a fraction or a count.
    #[arg(long)]
    test: Option<String>,
    /// Keep only these classes, e.g. 0,1,2,4,7.
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// Use at most this many training images.
    #[arg(long)]
    max_samples: Option<usize>,
    /// Stop after this many epochs without validation improvement (best weights restored).
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Halve the learning rate after this many epochs without validation improvement.
    #[arg(long)]
    plateau_patience: Option<usize>,
    /// The factor ReduceLROnPlateau multiplies the rate by (with --plateau-patience).
    #[arg(long, default_value_t = 0.5)]
    plateau_factor: f64,
    /// Epochs after which to save a reconstruction grid, e.g. 1,5,10 (the last always is).
    #[arg(long, value_delimiter = ',')]
    snapshot_epochs: Option<Vec<usize>>,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    /// The preset or config file, with every option given on the command line applied.
    fn config(&self) -> Result<RunConfig> {
        let mut cfg = match &self.config {
            Some(path) => RunConfig::from_file(path)?,
            None => RunConfig::preset(&self.preset)?,
        };
        if let Some(d) = &self.dataset {
            cfg.dataset = d.clone();
        }
        let (m, t, s) = (&mut cfg.model, &mut cfg.train, &mut cfg.split);
        if let Some(v) = self.epochs {
            t.epochs = v;
        }
        if let Some(v) = self.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = self.lr {
            t.lr = v;
        }
        if let Some(v) = self.latent {
            m.latent = v;
        }
        if let Some(v) = &self.loss {
            t.loss = match v.as_str() {
                "mse" => LossName::Mse,
                "bce" => LossName::Bce,
                other => {
                    return Err(Error::config(
                        "loss",
                        format!("unknown {other:?} (mse, bce)"),
                    ))
                }
            };
        }
        if let Some(v) = &self.activation {
            m.activation = ActName::parse(v)?;
        }
        if let Some(v) = &self.conv {
            m.conv = parse_list(v, parse_conv)?;
        }
        if let Some(v) = &self.hidden {
            m.hidden = parse_list(v, |t| {
                t.parse::<usize>()
                    .map_err(|_| Error::config("hidden sizes", format!("{t:?} is not a size")))
            })?;
        }
        if let Some(v) = &self.output_activation {
            m.output_activation = optional_activation(v)?;
        }
        if let Some(v) = &self.code_activation {
            m.code_activation = optional_activation(v)?;
        }
        if let Some(v) = &self.optimizer {
            t.optimizer = match v.as_str() {
                "adam" => OptimizerName::Adam,
                "sgd" => OptimizerName::Sgd,
                "adagrad" => OptimizerName::Adagrad,
                other => {
                    return Err(Error::config(
                        "optimizer",
                        format!("unknown {other:?} (adam, sgd, adagrad)"),
                    ))
                }
            };
        }
        if let Some(v) = self.momentum {
            t.momentum = v;
        }
        if let Some(v) = self.weight_decay {
            t.weight_decay = v;
        }
        if let Some(v) = &self.init {
            m.init = Init::parse(v)?;
        }
        if let Some(v) = self.seed {
            t.seed = v;
        }
        s.seed = t.seed;
        if let Some(v) = &self.validation {
            s.validation = Amount::parse(v)?;
        }
        if let Some(v) = &self.test {
            s.test = Amount::parse(v)?;
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
        if let Some(patience) = self.plateau_patience {
            t.plateau = Some(PlateauSpec {
                factor: self.plateau_factor,
                patience,
            });
        }
        if let Some(v) = &self.snapshot_epochs {
            t.snapshot_epochs = v.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A comma-separated list (or `none` for an empty one), each item parsed by `item`.
fn parse_list<T>(text: &str, item: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    if text == "none" || text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|t| item(t.trim())).collect()
}

/// `channels:kernel:stride:padding` (padding may be left out: 0).
fn parse_conv(text: &str) -> Result<ConvLayer> {
    let bad = || {
        Error::config(
            "conv layer",
            format!("{text:?} is not channels:kernel:stride[:padding], e.g. 16:3:2:1"),
        )
    };
    let parts: Vec<usize> = text
        .split(':')
        .map(|p| p.parse::<usize>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    match parts[..] {
        [channels, kernel, stride] => Ok(ConvLayer {
            channels,
            kernel,
            stride,
            padding: 0,
        }),
        [channels, kernel, stride, padding] => Ok(ConvLayer {
            channels,
            kernel,
            stride,
            padding,
        }),
        _ => Err(bad()),
    }
}

/// An activation name, or `none`.
fn optional_activation(text: &str) -> Result<Option<ActName>> {
    if text == "none" {
        Ok(None)
    } else {
        ActName::parse(text).map(Some)
    }
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

fn report(r: &RunReport) {
    match r.outcome {
        Outcome::Interrupted => println!(
            "stopped after epoch {}; outputs so far in {}",
            r.epochs,
            r.dir.display()
        ),
        Outcome::Completed | Outcome::StoppedEarly { .. } => {
            if let Outcome::StoppedEarly { best_epoch } = r.outcome {
                println!(
                    "early stopping after epoch {}: restored the weights of epoch {best_epoch}",
                    r.epochs
                );
            }
            if let Some(loss) = r.test_loss {
                println!("test loss {loss:.6}");
            }
            println!("outputs in {}: config.json, metrics.csv, loss.png, model.safetensors, reconstructions.png", r.dir.display());
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            let opts = RunOptions {
                lookup: Lookup::from_env(args.data.data_dir.clone()),
                quiet: args.quiet,
                interrupt: interrupt_flag(),
            };
            let r = match &args.resume {
                Some(dir) => train_resume(dir, &opts)?,
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
                    println!("training {} into {}", cfg.preset, dir.display());
                    train_new(cfg, &dir, &opts)?
                }
            };
            report(&r);
        }
        Command::Eval { run, data } => {
            let opts = RunOptions {
                lookup: Lookup::from_env(data.data_dir),
                ..Default::default()
            };
            let (loss, n) = eval_run(&run, &opts)?;
            println!("test loss {loss:.6} over {n} images");
        }
        Command::Reconstruct {
            run,
            out,
            count,
            data,
        } => {
            let opts = RunOptions {
                lookup: Lookup::from_env(data.data_dir),
                ..Default::default()
            };
            reconstruct_run(&run, &out, count, &opts)?;
            println!(
                "wrote {} (originals above, reconstructions below)",
                out.display()
            );
        }
        Command::Download {
            dataset,
            dir,
            mirror,
        } => {
            let name = DatasetName::parse(&dataset).ok_or_else(|| {
                Error::config(
                    "dataset",
                    format!("{dataset:?} cannot be downloaded (mnist, fashion-mnist)"),
                )
            })?;
            let mut source = Source::of(name);
            if !mirror.is_empty() {
                source.mirrors = mirror
                    .into_iter()
                    .map(|m| if m.ends_with('/') { m } else { format!("{m}/") })
                    .collect();
            }
            let dir = dir.unwrap_or_else(|| PathBuf::from("data").join(name.as_str()));
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
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
