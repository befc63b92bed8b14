//! `handgrad sweep` and `search`: many runs from one starting configuration, one setting
//! swept over given values or several drawn at random, ranked by validation loss.

use super::console::Console;
use super::{preset_help, DataArgs};
use clap::Args;
use handgrad::experiments::search::{collect, search, sweep, SweepField};
use handgrad::experiments::shards::Shard;
use handgrad::names::Named;
use handgrad::train::config::DEFAULT_PRESET;
use handgrad::train::run_dir::fresh_run_dir;
use handgrad::train::{Overrides, RunConfig};
use handgrad::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The settings a sweep or a search starts from.
#[derive(Args, Debug)]
struct BaseArgs {
    #[arg(long, default_value = DEFAULT_PRESET, help = preset_help())]
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
    /// The starting configuration: the preset or file, with the options given, and no
    /// per-epoch reconstruction snapshots (runs inside a sweep or a search keep none).
    fn config(&self) -> Result<RunConfig> {
        let mut cfg = RunConfig::load(&self.preset, self.config.as_deref())?;
        Overrides {
            dataset: self.dataset.clone(),
            epochs: self.epochs,
            max_samples: self.max_samples,
            early_stopping: self.early_stopping,
            snapshot_epochs: Some(Vec::new()),
            ..Overrides::default()
        }
        .apply(&mut cfg)?;
        Ok(cfg)
    }
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct SweepArgs {
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
pub struct SearchArgs {
    #[command(flatten)]
    base: BaseArgs,
    #[arg(long, default_value_t = 30, help = format!("How many trials in the whole search. Each draws its settings at random: {}", handgrad::experiments::search::RANGES))]
    trials: usize,
    /// Seed of the trials' settings (trial k's depend only on it and k).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run only part I of N (I/N, from 1/N to N/N) of the trials, to split a search over N machines or jobs; merge with --collect [default: the Slurm job array's task, else the whole search].
    #[arg(long)]
    shard: Option<String>,
    /// Instead of searching: merge these shards' folders into --out.
    #[arg(long, num_args = 1..)]
    collect: Vec<PathBuf>,
    /// With --collect: rank the trials there are when some shards are missing (results.md lists the missing trials).
    #[arg(long, requires = "collect")]
    partial: bool,
    /// The output folder [default: runs/search-<preset>, numbered if taken].
    #[arg(long)]
    out: Option<PathBuf>,
}

impl SweepArgs {
    /// The one setting given to sweep, and its values.
    fn swept(&self) -> Result<(SweepField, &[f64])> {
        let given: Vec<(SweepField, &Vec<f64>)> = [
            (SweepField::Latent, &self.latent),
            (SweepField::Lr, &self.lr),
            (SweepField::BatchSize, &self.batch_size),
            (SweepField::WeightDecay, &self.weight_decay),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        let &[(field, values)] = given.as_slice() else {
            return Err(Error::config(
                "sweep",
                format!(
                    "give exactly one setting to sweep (--latent, --lr, --batch-size or --weight-decay), not {}",
                    given.len()
                ),
            ));
        };
        Ok((field, values))
    }

    /// Trains one run per value and prints the table.
    pub fn run(&self) -> Result<ExitCode> {
        let (field, values) = self.swept()?;
        let base = self.base.config()?;
        let out = self.out.clone().unwrap_or_else(|| {
            fresh_run_dir(
                Path::new("runs"),
                &format!("sweep-{}-{}", base.preset, field.name()),
            )
        });
        let opts = self.base.data.options(Arc::default());
        let rows = sweep(
            &base,
            field,
            values,
            &out,
            &opts,
            &mut Console::new(self.base.quiet),
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
        Ok(ExitCode::SUCCESS)
    }
}

impl SearchArgs {
    /// Runs this shard's trials (or merges shards) and prints the best.
    pub fn run(&self) -> Result<ExitCode> {
        let base = self.base.config()?;
        let out = self.out.clone().unwrap_or_else(|| {
            fresh_run_dir(Path::new("runs"), &format!("search-{}", base.preset))
        });
        let (trials, written) = if self.collect.is_empty() {
            let shard = match &self.shard {
                Some(text) => Shard::parse(text)?,
                None => Shard::from_job_array(|v| std::env::var(v).ok())?.unwrap_or(Shard::WHOLE),
            };
            if shard != Shard::WHOLE {
                println!("shard {shard}: trials {}", shard_trials(shard, self.trials));
            }
            let opts = self.base.data.options(Arc::default());
            let trials = search(
                &base,
                self.trials,
                self.seed,
                shard,
                &out,
                &opts,
                &mut Console::new(self.base.quiet),
            )?;
            (trials, "search.json, trials.csv, results.csv, results.md")
        } else {
            let (trials, missing) = collect(&self.collect, &out, self.partial)?;
            if !missing.is_empty() {
                println!(
                    "partial: {} trials missing ({}), as results.md says",
                    missing.len(),
                    missing
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            (trials, "results.csv, results.md")
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
        let best_config = if best.is_some() {
            ", best-config.json (for train --config)"
        } else {
            " (no trial finished, so no best-config.json)"
        };
        println!("outputs in {}: {written}{best_config}", out.display());
        Ok(ExitCode::SUCCESS)
    }
}

/// "1, 4, 7" or "none" (this shard's part of `trials`).
fn shard_trials(shard: Shard, trials: usize) -> String {
    let mine: Vec<String> = shard.trials(trials).map(|k| k.to_string()).collect();
    if mine.is_empty() {
        "none (the search has fewer trials than shards)".into()
    } else {
        mine.join(", ")
    }
}

#[cfg(test)]
mod tests {
    //! The options of `sweep` and `search` reach what they name: the setting swept and its
    //! values, and the starting configuration both commands share.

    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(["handgrad"].iter().chain(args))
            .expect("a valid command line")
            .command
    }

    fn sweep_args(args: &[&str]) -> SweepArgs {
        let line: Vec<&str> = ["sweep"].iter().chain(args).copied().collect();
        match parse(&line) {
            Command::Sweep(s) => *s,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn each_sweep_option_sweeps_its_setting_over_its_values() -> Result<()> {
        for (flag, field) in [
            ("--latent", SweepField::Latent),
            ("--lr", SweepField::Lr),
            ("--batch-size", SweepField::BatchSize),
            ("--weight-decay", SweepField::WeightDecay),
        ] {
            let args = sweep_args(&[flag, "2,3,5"]);
            let (swept, values) = args.swept()?;
            assert_eq!((swept, values), (field, &[2.0, 3.0, 5.0][..]), "{flag}");
        }
        assert!(sweep_args(&[]).swept().is_err());
        assert!(sweep_args(&["--lr", "1", "--latent", "2"]).swept().is_err());
        Ok(())
    }

    #[test]
    fn the_starting_configuration_takes_every_option_given() -> Result<()> {
        for command in ["sweep", "search"] {
            let base = |args: &[&str]| -> Result<RunConfig> {
                let line: Vec<&str> = [command].iter().chain(args).copied().collect();
                match parse(&line) {
                    Command::Sweep(s) => s.base.config(),
                    Command::Search(s) => s.base.config(),
                    other => panic!("parsed as {other:?}"),
                }
            };
            let mut want = RunConfig::preset(DEFAULT_PRESET)?;
            want.train.snapshot_epochs.clear();
            assert_eq!(base(&[])?, want, "{command}");
            let given = base(&[
                "--preset",
                "mlp4",
                "--dataset",
                "fashion-mnist",
                "--epochs",
                "3",
                "--max-samples",
                "500",
                "--early-stopping",
                "2",
            ])?;
            let mut want = RunConfig::preset("mlp4")?;
            want.dataset = "fashion-mnist".into();
            want.train.epochs = 3;
            want.split.max_samples = Some(500);
            want.train.early_stopping = Some(2);
            want.train.snapshot_epochs.clear();
            assert_eq!(given, want, "{command}");
        }
        Ok(())
    }
}
