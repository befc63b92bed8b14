//! `handgrad train`: a new run from a preset, a configuration file and options, or an
//! interrupted or finished run continued with `--resume`.

use super::console::{interrupt_flag, Console};
use super::{preset_default, preset_help, DataArgs};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use handgrad::data::mnist::DatasetName;
use handgrad::experiments::train::{train_new, train_resume, Resumed, RunReport};
use handgrad::experiments::RunOptions;
use handgrad::names;
use handgrad::nn::Init;
use handgrad::train::config::DEFAULT_PRESET;
use handgrad::train::fit::Outcome;
use handgrad::train::run_dir::fresh_run_dir;
use handgrad::train::{LossName, OptimizerName, Overrides, RunConfig};
use handgrad::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The options that shape the model, shared by every command that builds one (`train`, and
/// `explain` to try a shape before training it).
#[derive(Args, Debug, Default)]
pub struct ModelArgs {
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
    /// Max-pool 2×2 after every encoder convolution (give them stride 1 and padding k/2,
    /// e.g. --conv 16:3:1:1,8:3:1:1); the decoder upsamples ×2 before each transposed one.
    #[arg(long)]
    pool: bool,
    /// Dropout probability after every hidden linear layer, in training only [default: 0].
    #[arg(long)]
    dropout: Option<f32>,
}

impl ModelArgs {
    /// Writes the options given into `o`.
    pub fn fill(&self, o: &mut Overrides) {
        o.latent = self.latent;
        o.conv = self.conv.clone();
        o.hidden = self.hidden.clone();
        o.activation = self.activation.clone();
        o.output_activation = self.output_activation.clone();
        o.code_activation = self.code_activation.clone();
        o.batch_norm = self.batch_norm;
        o.variational = self.variational;
        o.pool = self.pool;
        o.dropout = self.dropout;
    }

    /// Whether any of them was given.
    pub fn any(&self) -> bool {
        let mut o = Overrides::default();
        self.fill(&mut o);
        o != Overrides::default()
    }
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    #[arg(long, default_value = DEFAULT_PRESET, help = preset_help())]
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
    #[command(flatten)]
    model: ModelArgs,
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
    /// Set the learning rate by the epoch instead: step:EVERY:GAMMA (×GAMMA every EVERY
    /// epochs), or cosine[:PERIOD[:MIN_LR]] (down to MIN_LR, default 0, over PERIOD epochs,
    /// default --epochs). Replaces the preset's ReduceLROnPlateau [default: none].
    #[arg(long)]
    schedule: Option<String>,
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

/// The options `--resume` accepts; every other option would change a setting of the run,
/// which a resumed run keeps as it was started.
const KEPT_WITH_RESUME: &[&str] = &["resume", "epochs", "quiet", "data_dir", "profile"];

impl TrainArgs {
    /// The options given on top of the preset or configuration file.
    fn overrides(&self) -> Overrides {
        let mut o = Overrides {
            dataset: self.dataset.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            beta: self.beta,
            corrupt: self.corrupt.clone(),
            loss: self.loss.clone(),
            optimizer: self.optimizer.clone(),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            init: self.init.clone(),
            seed: self.seed,
            validation: self.validation.clone(),
            test: self.test.clone(),
            classes: self.classes.clone(),
            max_samples: self.max_samples,
            early_stopping: self.early_stopping,
            plateau_patience: self.plateau_patience,
            plateau_factor: self.plateau_factor,
            snapshot_epochs: self.snapshot_epochs.clone(),
            schedule: self.schedule.clone(),
            ..Overrides::default()
        };
        self.model.fill(&mut o);
        o
    }

    /// The preset or config file, with every option given on the command line applied.
    fn config(&self) -> Result<RunConfig> {
        let mut cfg = RunConfig::load(&self.preset, self.config.as_deref())?;
        self.overrides().apply(&mut cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Trains, printing as it goes; exit status 130 for a run stopped by Ctrl-C.
    ///
    /// `given` holds the matches of this command, from which `--resume` learns which options
    /// were typed (defaults do not count).
    pub fn run(&self, given: Option<&ArgMatches>) -> Result<ExitCode> {
        let opts = RunOptions {
            profile: self.profile,
            ..self.data.options(interrupt_flag())
        };
        let mut console = Console::new(self.quiet);
        let r = match &self.resume {
            Some(dir) => {
                let refused = given.map(settings_given).unwrap_or_default();
                if !refused.is_empty() {
                    return Err(Error::config(
                        "resume",
                        format!(
                            "--resume continues a run with the settings it was started with; {} cannot be given with it (only --epochs, --quiet and --data-dir can)",
                            refused.join(", ")
                        ),
                    ));
                }
                match train_resume(dir, self.epochs, &opts, &mut console) {
                    Ok(Resumed::Trained(r)) => Ok(*r),
                    Ok(Resumed::NothingToDo {
                        done,
                        of,
                        stopped_early,
                    }) => {
                        console.finish();
                        if stopped_early {
                            println!(
                                "nothing to do: early stopping ended {} after epoch {done}",
                                dir.display()
                            );
                        } else {
                            println!(
                                "nothing to do: {} has finished {done} of {of} epochs; to train it longer, give --epochs with a larger number",
                                dir.display()
                            );
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => Err(e),
                }
            }
            None => {
                let cfg = self.config()?;
                let stem = format!(
                    "{}-{}",
                    cfg.preset,
                    DatasetName::parse(&cfg.dataset).map_or("custom", DatasetName::as_str)
                );
                let dir = self
                    .out
                    .clone()
                    .unwrap_or_else(|| fresh_run_dir(Path::new("runs"), &stem));
                train_new(cfg, &dir, &opts, &mut console)
            }
        };
        console.finish();
        Ok(report(&r?))
    }
}

/// The options typed on the command line that `--resume` refuses, as `--long-name`s in the
/// order the command declares them.
fn settings_given(matches: &ArgMatches) -> Vec<String> {
    let train = <TrainArgs as Args>::augment_args(clap::Command::new("train"));
    train
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| !KEPT_WITH_RESUME.contains(id))
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect()
}

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

/// Prints how a training run ended; the exit status says whether it finished.
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
    if let (Some(b), Some(clean)) = (&r.baselines, r.pixels.first()) {
        // The baselines' unit: a VAE's objective (summed, with KL) and a denoiser's (on
        // damaged inputs) are not it.
        if r.objective != b.loss.per_pixel() || r.pixels.len() > 1 {
            println!(
                "test loss on clean images ({}) {:.6}",
                b.loss.per_pixel(),
                clean.model
            );
        }
        println!("{}", b.line());
    }
    if let Some(v) = &r.verdict {
        println!("{v}");
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

#[cfg(test)]
mod tests {
    //! Every option of `train` reaches the setting it names, and only that one: each is given
    //! a value unlike the preset's, and the whole configuration must equal the preset's with
    //! that one field changed. An option dropped on its way (or written into a neighbour's
    //! field) fails here, not silently in a training run.

    use super::super::{Cli, Command};
    use super::*;
    use clap::{CommandFactory, Parser};
    use handgrad::data::batches::Amount;
    use handgrad::data::corrupt::Corruption;
    use handgrad::models::ConvLayer;
    use handgrad::train::config::{PlateauSpec, Schedule};
    use kernels::elementwise::Activation;

    /// The configuration `handgrad train <args>` would train.
    fn config_of(args: &[&str]) -> RunConfig {
        let line = ["handgrad", "train"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(line)
            .expect("a valid command line")
            .command
        {
            Command::Train(t) => t.config().expect("a valid configuration"),
            other => panic!("parsed as {other:?}"),
        }
    }

    type Change = fn(&mut RunConfig);

    /// Each setting option, a value unlike conv-selu's, and what it must change.
    const SETTINGS: &[(&str, &str, Change)] = &[
        ("--dataset", "fashion-mnist", |c| {
            c.dataset = "fashion-mnist".into()
        }),
        ("--epochs", "3", |c| c.train.epochs = 3),
        ("--batch-size", "17", |c| c.train.batch_size = 17),
        ("--lr", "0.25", |c| c.train.lr = 0.25),
        ("--latent", "3", |c| c.model.latent = 3),
        ("--conv", "8:3:2:1", |c| {
            c.model.conv = vec![ConvLayer::parse("8:3:2:1").expect("a layer")]
        }),
        ("--hidden", "40,20", |c| c.model.hidden = vec![40, 20]),
        ("--activation", "relu", |c| {
            c.model.activation = Activation::Relu
        }),
        ("--output-activation", "none", |c| {
            c.model.output_activation = None
        }),
        ("--code-activation", "sigmoid", |c| {
            c.model.code_activation = Some(Activation::Sigmoid)
        }),
        ("--beta", "0.5", |c| c.train.beta = 0.5),
        ("--corrupt", "gaussian:0.3", |c| {
            c.train.corrupt = Some("gaussian:0.3".parse::<Corruption>().expect("a corruption"))
        }),
        ("--loss", "bce", |c| c.train.loss = LossName::Bce),
        ("--optimizer", "sgd", |c| {
            c.train.optimizer = OptimizerName::Sgd
        }),
        ("--momentum", "0.9", |c| c.train.momentum = 0.9),
        ("--weight-decay", "0.001", |c| c.train.weight_decay = 0.001),
        ("--init", "xavier_normal", |c| {
            c.model.init = Init::XavierNormal
        }),
        ("--seed", "9", |c| {
            c.train.seed = 9;
            c.split.seed = 9;
        }),
        ("--validation", "500", |c| {
            c.split.validation = Amount::Count(500)
        }),
        ("--test", "0.3", |c| {
            c.split.test = Some(Amount::Fraction(0.3))
        }),
        ("--classes", "1,7", |c| c.split.classes = vec![1, 7]),
        ("--max-samples", "400", |c| c.split.max_samples = Some(400)),
        ("--early-stopping", "2", |c| {
            c.train.early_stopping = Some(2)
        }),
        ("--plateau-patience", "4", |c| {
            c.train.plateau = Some(PlateauSpec {
                factor: 0.5,
                patience: 4,
            })
        }),
        ("--snapshot-epochs", "2,4", |c| {
            c.train.snapshot_epochs = vec![2, 4]
        }),
        ("--dropout", "0.2", |c| c.model.dropout = 0.2),
        ("--schedule", "step:5:0.5", |c| {
            c.train.schedule = Some(Schedule::Step {
                every: 5,
                gamma: 0.5,
            })
        }),
    ];

    /// Switches, which take no value.
    const SWITCHES: &[(&str, Change)] = &[
        ("--batch-norm", |c| c.model.batch_norm = true),
        ("--variational", |c| c.model.variational = true),
        ("--pool", |c| c.model.pool = true),
    ];

    /// Options that choose where and how a run happens rather than what it trains, each
    /// checked where it acts (tests/options.rs, tests/training.rs, the golden transcript).
    const NOT_SETTINGS: &[&str] = &[
        "preset",
        "config",
        "data_dir",
        "out",
        "resume",
        "quiet",
        "profile",
        "plateau_factor",
    ];

    #[test]
    fn every_setting_option_changes_its_field_and_nothing_else() {
        let preset = config_of(&[]);
        assert_eq!(
            preset,
            RunConfig::preset(DEFAULT_PRESET).expect("the preset")
        );
        for (flag, value, change) in SETTINGS {
            let mut want = preset.clone();
            change(&mut want);
            assert_ne!(want, preset, "{flag} {value} is the preset's own value");
            assert_eq!(config_of(&[flag, value]), want, "{flag} {value}");
        }
        for (flag, change) in SWITCHES {
            let mut want = preset.clone();
            change(&mut want);
            assert_ne!(want, preset, "{flag} is already on in the preset");
            assert_eq!(config_of(&[flag]), want, "{flag}");
        }
        // The factor acts with a patience (or on a preset that has a schedule).
        let mut want = preset.clone();
        want.train.plateau = Some(PlateauSpec {
            factor: 0.2,
            patience: 4,
        });
        let given = config_of(&["--plateau-patience", "4", "--plateau-factor", "0.2"]);
        assert_eq!(given, want);
        let mlp4 = config_of(&["--preset", "mlp4", "--plateau-factor", "0.2"]);
        assert_eq!(mlp4.train.plateau.map(|p| p.factor), Some(0.2));
        assert_eq!(mlp4.preset, "mlp4");
    }

    #[test]
    fn no_option_is_left_out_of_the_table() {
        let cli = Cli::command();
        let train = cli.find_subcommand("train").expect("train");
        let tabled: Vec<String> = SETTINGS
            .iter()
            .map(|s| s.0)
            .chain(SWITCHES.iter().map(|s| s.0))
            .map(|f| f.trim_start_matches("--").replace('-', "_"))
            .collect();
        for arg in train.get_arguments() {
            let id = arg.get_id().as_str();
            let global = ["naive", "threads", "help", "version"].contains(&id);
            assert!(
                global || NOT_SETTINGS.contains(&id) || tabled.iter().any(|t| t == id),
                "train's --{id} has no row saying what it changes"
            );
        }
    }

    #[test]
    fn a_configuration_file_starts_from_its_preset_and_options_override_it() {
        let dir = std::env::temp_dir().join(format!("handgrad-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("run.toml");
        std::fs::write(&file, "preset = \"mlp4\"\n[model]\nlatent = 5\n").expect("written");
        let path = file.to_str().expect("a UTF-8 path");
        let from_file = config_of(&["--config", path]);
        let mut want = RunConfig::preset("mlp4").expect("mlp4");
        want.model.latent = 5;
        assert_eq!(from_file, want);
        want.model.latent = 7;
        assert_eq!(config_of(&["--config", path, "--latent", "7"]), want);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
