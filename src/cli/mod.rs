//! The `handgrad` command line: what each command accepts, and how its answer is printed.
//!
//! One file per command or family of commands, each holding its clap `Args` beside a `run`
//! that calls the library ([`handgrad::experiments`]) and prints what comes back: `train`,
//! `eval` (eval, reconstruct, denoise), `generate` (generate, manifold, interpolate),
//! `analyse` (latent, weights, pca, classify), `search` (sweep, search), `reproduce`,
//! `tools` (explain, trace, gradcheck, bench) and `download`. `console` prints training's
//! events and handles Ctrl-C. This file holds the command list, the argument groups several
//! commands share, and the dispatch.

mod analyse;
pub mod console;
#[cfg(test)]
mod documented;
mod download;
mod eval;
mod explore;
mod generate;
mod reproduce;
mod search;
mod tools;
mod train;

use clap::{ArgMatches, Args, Parser, Subcommand};
use handgrad::data::mnist::Lookup;
use handgrad::experiments::RunOptions;
use handgrad::train::{Preset, RunConfig};
use handgrad::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Train and inspect autoencoders with a hand-written autodiff engine.
#[derive(Parser, Debug)]
#[command(name = "handgrad", version, about)]
pub struct Cli {
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
    Train(Box<train::TrainArgs>),
    /// Print a trained run's test loss, clean and under corruptions, next to doing nothing.
    Eval(eval::EvalArgs),
    /// Save a picture of test images and their reconstructions.
    Reconstruct(eval::ReconstructArgs),
    /// Save clean, corrupted and denoised test images, one row each.
    Denoise(eval::DenoiseArgs),
    /// Decode random codes (from N(0, I) for a VAE, from the training codes' spread for an
    /// autoencoder), or each class's mean code with growing noise (--centroids).
    Generate(generate::GenerateArgs),
    /// For a code of size 2: decode a grid over the code plane, and plot the test codes by class.
    Manifold(generate::ManifoldArgs),
    /// Decode the straight line between two test images' codes.
    Interpolate(generate::InterpolateArgs),
    /// Draw the test images' codes in 2-D (PCA, t-SNE or the first two numbers), coloured by class.
    Latent(analyse::LatentArgs),
    /// Draw a layer's weights as images (default: the first layer's filters or units).
    Weights(analyse::WeightsArgs),
    /// The linear baseline: reconstruct test images from k principal components of the training images.
    Pca(analyse::PcaArgs),
    /// Train a classifier on a run's encoder (frozen, fine-tuned or from scratch) or on PCA features.
    Classify(Box<analyse::ClassifyArgs>),
    /// Train one model per value of one setting and plot the loss against it.
    Sweep(Box<search::SweepArgs>),
    /// Random hyperparameter search: trials ranked by validation loss; shardable across machines.
    Search(Box<search::SearchArgs>),
    /// Show a model layer by layer: shapes, parameters, multiply-adds, memory, and how each transposed convolution's output_padding is worked out.
    Explain(tools::ExplainArgs),
    /// Show one training step's tape node by node: op, shapes, multiply-adds, forward and backward time; optionally as a Graphviz file.
    Trace(tools::TraceArgs),
    /// Check an op's backward pass against central finite differences (or every op with `all`); --plant-bug shows a failure.
    Gradcheck(tools::GradcheckArgs),
    /// Time training (or inference) steps of a preset: images/s, GFLOP/s, share of the FMA peak, peak memory.
    Bench(tools::BenchArgs),
    /// Run a course report's protocol and write REPORT.md and report.html with its numbers beside ours.
    Reproduce(reproduce::ReproduceArgs),
    /// Download MNIST or Fashion-MNIST, checking every file's checksum.
    Download(download::DownloadArgs),
    /// Serve a page on 127.0.0.1 to explore trained runs live: drag through the code map and watch the decoder answer, draw a digit and see its code.
    Explore(explore::ExploreArgs),
}

/// Where datasets are looked for: every command that reads one shares it.
#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// A folder holding dataset folders (<dir>/mnist/, <dir>/fashion-mnist/); looked in first.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl DataArgs {
    /// Options for a library call: where to look for data, what stops training early.
    fn options(&self, interrupt: Arc<AtomicBool>) -> RunOptions {
        RunOptions {
            lookup: self.lookup(),
            interrupt,
            profile: false,
        }
    }

    /// Where to look for datasets: `--data-dir` first, then the usual places.
    fn lookup(&self) -> Lookup {
        Lookup::from_env(self.data_dir.clone())
    }
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

impl PictureArgs {
    /// Options for the library call that draws the picture (no Ctrl-C handling: drawing is quick).
    fn options(&self) -> RunOptions {
        self.data.options(Arc::default())
    }
}

/// "[default: …]" for a setting, from the one preset table.
fn preset_default(f: impl Fn(&RunConfig) -> String) -> String {
    format!("[default: the preset's: {}]", Preset::defaults_of(f))
}

/// The help of every `--preset`: each preset with what it is.
fn preset_help() -> String {
    let list: Vec<String> = handgrad::train::PRESETS
        .iter()
        .map(|p| format!("{} ({})", p.name, p.describe))
        .collect();
    format!("The model and recipe to start from: {}", list.join("; "))
}

/// Parses the command line as clap does for `Cli::parse`, keeping the matches: `train` reads
/// from them which options were given.
pub fn parse() -> (Cli, ArgMatches) {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    // Not `from_arg_matches_mut`: it takes the values out, and `train` reads them after.
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(e) => e.format(&mut Cli::command()).exit(),
    }
}

/// After a command wrote `written` (pictures, tables): if one of them lies in the run folder
/// `run` or a folder inside it, its page is drawn again so the new picture shows there. A page that cannot be
/// redrawn is reported on stderr, not fatal: what the command made is written.
fn refresh_page(run: &Path, written: &[&Path]) {
    let folder = |p: &Path| p.parent().and_then(|d| std::fs::canonicalize(d).ok());
    let Some(run_folder) = std::fs::canonicalize(run).ok() else {
        return;
    };
    let inside = |w: &&Path| folder(w).is_some_and(|f| f.starts_with(&run_folder));
    if !written.iter().any(inside) {
        return;
    }
    match handgrad::experiments::report::refresh_run_page(run) {
        Ok(Some(page)) => println!("report: {} (redrawn with it)", page.display()),
        Ok(None) => {}
        Err(e) => eprintln!(
            "note: {} was not redrawn: {e}",
            run.join("report.html").display()
        ),
    }
}

/// Sets up the process as the global options say, then runs the command.
///
/// # Errors
/// Whatever the command reports; a thread count of zero.
pub fn run(cli: Cli, matches: &ArgMatches) -> Result<ExitCode> {
    // HANDGRAD_ISA chooses the kernels' instruction set; one the processor lacks is refused
    // here, before any kernel runs, rather than ignored.
    kernels::peak::Isa::from_env().map_err(|e| Error::config("instruction set", e))?;
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
    let given = |name: &str| matches.subcommand_matches(name);
    match cli.command {
        Command::Train(args) => args.run(given("train")),
        Command::Eval(args) => args.run(),
        Command::Reconstruct(args) => args.run(),
        Command::Denoise(args) => args.run(),
        Command::Generate(args) => args.run(),
        Command::Manifold(args) => args.run(),
        Command::Interpolate(args) => args.run(),
        Command::Latent(args) => args.run(),
        Command::Weights(args) => args.run(),
        Command::Pca(args) => args.run(),
        Command::Classify(args) => args.run(),
        Command::Sweep(args) => args.run(),
        Command::Search(args) => args.run(),
        Command::Explain(args) => args.run(),
        Command::Trace(args) => args.run(),
        Command::Gradcheck(args) => args.run(),
        Command::Bench(args) => args.run(),
        Command::Reproduce(args) => args.run(),
        Command::Download(args) => args.run(),
        Command::Explore(args) => args.run(),
    }
}
