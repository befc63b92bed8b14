//! Many runs at once: sweeps over one setting, and random hyperparameter search.
//!
//! * [`sweep`] trains one model per value of one setting (the code size, say) and plots the
//!   test loss against it: how much does each extra code number buy?
//! * [`search`] draws settings at random from stated ranges ([`RANGES`]), trains each trial
//!   for a few epochs, and ranks them by their best validation loss. Random search beats a
//!   grid when only a few settings matter: every trial tries a new value of each.
//!
//! Trials are numbered, and trial k's settings depend only on the seed and k, so a search can
//! be split: `--shard I/N` runs trials I, I+N, I+2N, …, on as many machines as there are
//! shards, and [`collect`] merges their tables into the one an unsplit search would write.
//! Trials run one after another, each using every core inside (no oversubscription).

use super::shards::{Manifest, Shard};
use super::train::train_new;
use super::RunOptions;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::fs::{claim, Replace, Target};
use crate::names::Named;
use crate::seed::{self, Stream};
use crate::train::config::OptimizerName;
use crate::train::observe::{Observer, Silent};
use crate::train::RunConfig;
use crate::viz::chart::{LineChart, MEAN_IMAGE, PCA_LEVEL, TRAIN, VALIDATION};
use rand::Rng;
use std::path::{Path, PathBuf};

crate::named_enum! {
    /// A setting a sweep can vary.
    pub enum SweepField: "swept setting" {
        /// The code size.
        Latent = "latent", "the code size",
        /// The learning rate.
        Lr = "lr", "the learning rate",
        /// The batch size.
        BatchSize = "batch-size", "images per step",
        /// L2 weight decay.
        WeightDecay = "weight-decay", "L2 weight decay",
    }
}

impl SweepField {
    /// Sets this field of `cfg` to `value`.
    ///
    /// # Errors
    /// [`Error::Config`] for a size that is not a whole number ≥ 1.
    pub fn apply(self, cfg: &mut RunConfig, value: f64) -> Result<()> {
        let whole = || {
            if value >= 1.0 && value.fract() == 0.0 {
                Ok(value as usize)
            } else {
                Err(Error::config(
                    self.name(),
                    format!("{value} is not a whole number ≥ 1"),
                ))
            }
        };
        match self {
            SweepField::Latent => cfg.model.latent = whole()?,
            SweepField::BatchSize => cfg.train.batch_size = whole()?,
            SweepField::Lr => cfg.train.lr = value as f32,
            SweepField::WeightDecay => cfg.train.weight_decay = value as f32,
        }
        Ok(())
    }
}

/// Refuses a folder that exists and is not empty, before any work.
fn claim_folder(dir: &Path) -> Result<()> {
    claim(
        dir,
        Target::Folder,
        "output folder",
        Replace::Never("choose another --out"),
    )
}

/// Claims `dir` ([`claim_folder`]) and creates it.
fn fresh_folder(dir: &Path) -> Result<()> {
    claim_folder(dir)?;
    std::fs::create_dir_all(dir).map_err(Error::io(dir))
}

/// The lowest validation loss of a run's epochs (NaN without validation).
fn best_validation(history: &[crate::train::fit::EpochMetrics]) -> f64 {
    history
        .iter()
        .map(|m| m.val_loss)
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::min)
}

/// One row of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// The setting's value.
    pub value: f64,
    /// The best validation loss over the epochs.
    pub best_val: f64,
    /// The test loss of the final (best, with early stopping) weights.
    pub test: f64,
    /// Epochs trained.
    pub epochs: usize,
    /// The run's baselines on the same test images: (mean image, PCA with k = its code size);
    /// NaN for a VAE, whose objective is in another unit.
    pub baselines: (f64, f64),
}

/// `handgrad sweep`: one run of `base` per value of `field`, each in `<out>/<field>-<value>/`,
/// then `sweep.csv`, `sweep.md` and `sweep.png` (test and best validation loss against the
/// value) in `out`.
///
/// # Errors
/// [`Error::Config`] for an occupied `out`, no values, or a value the field cannot take;
/// anything a run can fail with.
pub fn sweep(
    base: &RunConfig,
    field: SweepField,
    values: &[f64],
    out: &Path,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<Vec<SweepRow>> {
    if values.is_empty() || values.len() > 50 {
        return Err(Error::config("sweep", "give 1 to 50 values"));
    }
    let mut cfgs = Vec::new();
    for &v in values {
        let mut cfg = base.clone();
        field.apply(&mut cfg, v)?;
        cfg.validate()?;
        cfgs.push(cfg);
    }
    fresh_folder(out)?;
    let mut rows = Vec::new();
    for (k, (cfg, &value)) in cfgs.into_iter().zip(values).enumerate() {
        obs.info(&format!(
            "[{}/{}] {} = {value}",
            k + 1,
            values.len(),
            field.name()
        ));
        let dir = out.join(format!("{}-{value}", field.name()));
        let report = train_new(cfg, &dir, opts, &mut Silent)?;
        let row = SweepRow {
            value,
            best_val: best_validation(&report.history),
            test: report.test.map_or(f64::NAN, |e| e.loss),
            epochs: report.epochs,
            baselines: match (&report.baselines, base.model.variational) {
                (Some(b), false) => (b.mean_image, b.pca),
                _ => (f64::NAN, f64::NAN),
            },
        };
        obs.info(&format!(
            "      best validation {:.6}, test {:.6} after {} epochs",
            row.best_val, row.test, row.epochs
        ));
        rows.push(row);
    }
    let name = field.name();
    let mut csv = format!("{name},best_val_loss,test_loss,epochs\n");
    let mut md =
        format!("| {name} | best validation loss | test loss | epochs |\n|---|---|---|---|\n");
    for r in &rows {
        csv.push_str(&format!(
            "{},{},{},{}\n",
            r.value, r.best_val, r.test, r.epochs
        ));
        md.push_str(&format!(
            "| {} | {:.6} | {:.6} | {} |\n",
            r.value, r.best_val, r.test, r.epochs
        ));
    }
    write_atomic(&out.join("sweep.csv"), csv.as_bytes())?;
    write_atomic(&out.join("sweep.md"), md.as_bytes())?;
    let points = |f: fn(&SweepRow) -> f64| rows.iter().map(|r| (r.value, f(r))).collect();
    let mut chart = LineChart::new(
        format!(
            "{} on {}: loss against {}",
            base.preset,
            base.dataset,
            field.describe()
        ),
        format!("{name} ({})", field.describe()),
        format!("{} (lower is better)", base.objective()),
    )
    .line("best validation", VALIDATION, points(|r| r.best_val))
    .dashed_line("test", TRAIN, points(|r| r.test));
    // The mean image does not depend on the setting; PCA's k follows the code size.
    chart = chart.level(
        "mean image (baseline)",
        MEAN_IMAGE,
        rows.first().map_or(f64::NAN, |r| r.baselines.0),
    );
    if matches!(field, SweepField::Latent) {
        chart = chart.dashed_line(
            "PCA, k = code size (baseline)",
            PCA_LEVEL,
            points(|r| r.baselines.1),
        );
    } else {
        let pca = rows.first().map_or(f64::NAN, |r| r.baselines.1);
        chart = chart.level("PCA (baseline)", PCA_LEVEL, pca);
    }
    if matches!(field, SweepField::Latent | SweepField::BatchSize) {
        chart = chart.counting_x();
    }
    chart.save(&out.join("sweep.png"))?;
    Ok(rows)
}

/// The ranges [`search`] draws from, as stated in `--help` and in its output.
pub const RANGES: &str = "latent one of 2, 4, 6, 8, 12, 16, 24, 32; batch size one of 32, 64, 128, 256, 512; learning rate log-uniform in [1e-4, 1e-2]; optimizer adam, sgd (momentum 0.9) or adagrad; weight decay one of 0, 1e-5, 1e-4, 1e-3";

const LATENTS: [usize; 8] = [2, 4, 6, 8, 12, 16, 24, 32];
const BATCHES: [usize; 5] = [32, 64, 128, 256, 512];
const DECAYS: [f32; 4] = [0.0, 1e-5, 1e-4, 1e-3];

/// One trial of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Its number, from 0.
    pub index: usize,
    /// Code size.
    pub latent: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f32,
    /// Optimiser.
    pub optimizer: OptimizerName,
    /// Weight decay.
    pub weight_decay: f32,
    /// Best validation loss (NaN if it diverged).
    pub best_val: f64,
    /// Test loss of the final weights (NaN if it diverged).
    pub test: f64,
}

/// Trial `index`'s settings: `base` with each searched setting drawn from [`RANGES`] by a
/// generator seeded from (`seed`, `index`) alone.
pub fn trial_config(base: &RunConfig, seed: u64, index: usize) -> RunConfig {
    let mut rng = seed::rng(seed, Stream::Trial(index));
    let mut cfg = base.clone();
    cfg.model.latent = LATENTS[rng.random_range(0..LATENTS.len())];
    cfg.train.batch_size = BATCHES[rng.random_range(0..BATCHES.len())];
    cfg.train.lr = 10f32.powf(rng.random_range(-4.0..-2.0));
    cfg.train.optimizer = OptimizerName::ALL[rng.random_range(0..OptimizerName::ALL.len())];
    cfg.train.momentum = if cfg.train.optimizer == OptimizerName::Sgd {
        0.9
    } else {
        0.0
    };
    cfg.train.weight_decay = DECAYS[rng.random_range(0..DECAYS.len())];
    cfg
}

const TRIALS_HEADER: &str =
    "trial,latent,batch_size,lr,optimizer,weight_decay,best_val_loss,test_loss";

fn trial_line(t: &Trial) -> String {
    format!(
        "{},{},{},{},{},{},{},{}\n",
        t.index,
        t.latent,
        t.batch_size,
        t.lr,
        t.optimizer.name(),
        t.weight_decay,
        t.best_val,
        t.test
    )
}

/// `handgrad search`: the trials of `shard` (all of them for [`Shard::WHOLE`]), each trained
/// into `<out>/trial-NNN/`. Writes first `search.json` (what defines the search, see
/// [`Manifest`]) and this shard's `trials.csv` (rewritten after every trial, so a shard that
/// gets no trials still leaves a folder [`collect`] can merge), then the ranked tables (see
/// [`write_results`]). A trial whose loss turns NaN is recorded as diverged, not fatal.
///
/// # Errors
/// [`Error::Config`] for an occupied `out` or no trials; other training errors.
pub fn search(
    base: &RunConfig,
    trials: usize,
    seed: u64,
    shard: Shard,
    out: &Path,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<Vec<Trial>> {
    if trials == 0 || trials > 10_000 {
        return Err(Error::config("trials", "give 1 to 10,000 trials"));
    }
    base.validate()?;
    fresh_folder(out)?;
    Manifest {
        seed,
        trials,
        shard,
        base: base.clone(),
    }
    .write(out)?;
    obs.info(&format!("ranges: {RANGES}"));
    let mut done = Vec::new();
    let mut csv = format!("{TRIALS_HEADER}\n");
    write_atomic(&out.join("trials.csv"), csv.as_bytes())?;
    for index in shard.trials(trials) {
        let cfg = trial_config(base, seed, index);
        let mut trial = Trial {
            index,
            latent: cfg.model.latent,
            batch_size: cfg.train.batch_size,
            lr: cfg.train.lr,
            optimizer: cfg.train.optimizer,
            weight_decay: cfg.train.weight_decay,
            best_val: f64::NAN,
            test: f64::NAN,
        };
        let dir = out.join(format!("trial-{index:03}"));
        match train_new(cfg, &dir, opts, &mut Silent) {
            Ok(report) => {
                trial.best_val = best_validation(&report.history);
                trial.test = report.test.map_or(f64::NAN, |e| e.loss);
            }
            Err(Error::NonFinite { .. }) => {}
            Err(e) => return Err(e),
        }
        obs.info(&format!(
            "trial {index:>3}: latent {:>2}, batch {:>3}, lr {:.2e}, {:<7} weight decay {:<6} → best validation {}",
            trial.latent,
            trial.batch_size,
            trial.lr,
            trial.optimizer.name(),
            trial.weight_decay,
            if trial.best_val.is_nan() { "diverged".to_string() } else { format!("{:.6}", trial.best_val) }
        ));
        csv.push_str(&trial_line(&trial));
        // Rewritten after every trial: a search stopped half-way keeps what it measured.
        write_atomic(&out.join("trials.csv"), csv.as_bytes())?;
        done.push(trial);
    }
    write_results(out, &done, &[out.to_path_buf()], &[])?;
    Ok(done)
}

/// Reads a `trials.csv` written by [`search`].
fn read_trials(path: &Path) -> Result<Vec<Trial>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let bad = |line: usize, why: &str| Error::Dataset {
        path: path.to_path_buf(),
        detail: format!("line {line}: {why}"),
    };
    let mut lines = text.lines();
    if lines.next() != Some(TRIALS_HEADER) {
        return Err(bad(1, "not a trials table (its header differs)"));
    }
    lines
        .enumerate()
        .map(|(k, line)| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 8 {
                return Err(bad(k + 2, "expected 8 fields"));
            }
            let num = |s: &str| s.parse::<f64>().map_err(|_| bad(k + 2, "not a number"));
            Ok(Trial {
                index: num(f[0])? as usize,
                latent: num(f[1])? as usize,
                batch_size: num(f[2])? as usize,
                lr: num(f[3])? as f32,
                optimizer: f[4].parse().map_err(|_| bad(k + 2, "unknown optimizer"))?,
                weight_decay: num(f[5])? as f32,
                best_val: num(f[6])?,
                test: num(f[7])?,
            })
        })
        .collect()
}

/// `handgrad search --collect`: merges the `trials.csv` of several shards' folders into
/// `out` (ranked tables as [`write_results`]). Every shard must belong to one search (the same
/// seed, number of trials and starting configuration, as their `search.json` say); trials no
/// shard ran are named and refused, unless `partial`, when the tables rank what there is and
/// `results.md` lists what is missing. Returns the trials and the missing trial numbers.
///
/// # Errors
/// Unreadable tables or manifests; shards of different searches (naming the setting and
/// both values); a trial number found in two shards; missing trials without `partial`.
pub fn collect(dirs: &[PathBuf], out: &Path, partial: bool) -> Result<(Vec<Trial>, Vec<usize>)> {
    claim_folder(out)?;
    let mut all: Vec<Trial> = Vec::new();
    let mut first: Option<(Manifest, &PathBuf)> = None;
    for d in dirs {
        let manifest = Manifest::read(d)?;
        if let Some((m, from)) = &first {
            if let Some((setting, ours, theirs)) = m.differs_from(&manifest) {
                return Err(Error::config(
                    "collect",
                    format!(
                        "{} and {} come from different searches: {setting} is {ours} in the first and {theirs} in the second",
                        from.display(),
                        d.display()
                    ),
                ));
            }
        }
        for t in read_trials(&d.join("trials.csv"))? {
            if all.iter().any(|a| a.index == t.index) {
                return Err(Error::config(
                    "collect",
                    format!(
                        "trial {} appears in two shards (again in {})",
                        t.index,
                        d.display()
                    ),
                ));
            }
            all.push(t);
        }
        first.get_or_insert((manifest, d));
    }
    let trials = first.as_ref().map_or(0, |(m, _)| m.trials);
    let missing: Vec<usize> = (0..trials)
        .filter(|k| !all.iter().any(|t| t.index == *k))
        .collect();
    if !missing.is_empty() && !partial {
        return Err(Error::config(
            "collect",
            format!(
                "{} of the search's {trials} trials are missing (trials {}); add the folders of the shards that ran them, or pass --partial to rank the {} there are",
                missing.len(),
                list(&missing),
                all.len()
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    write_results(out, &all, dirs, &missing)?;
    Ok((all, missing))
}

/// "1, 3, 5" (the first twenty, then how many more).
fn list(numbers: &[usize]) -> String {
    let shown: Vec<String> = numbers.iter().take(20).map(usize::to_string).collect();
    match numbers.len().saturating_sub(20) {
        0 => shown.join(", "),
        more => format!("{}, and {more} more", shown.join(", ")),
    }
}

/// Writes `results.csv` and `results.md` (trials ranked by best validation loss, diverged ones
/// last; `results.md` says which trials are `missing` when a merge was partial) and
/// `best-config.json` (the best trial's configuration, which `train --config` accepts; copied
/// from the folder among `dirs` that holds it).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_results(
    out: &Path,
    trials: &[Trial],
    dirs: &[PathBuf],
    missing: &[usize],
) -> Result<()> {
    let mut ranked = trials.to_vec();
    ranked.sort_by(|a, b| {
        let key = |t: &Trial| {
            if t.best_val.is_nan() {
                f64::INFINITY
            } else {
                t.best_val
            }
        };
        key(a).total_cmp(&key(b)).then(a.index.cmp(&b.index))
    });
    let mut csv = format!("rank,{TRIALS_HEADER}\n");
    let partial = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "Partial: {} of {} trials; missing trials {}.\n\n",
            trials.len(),
            trials.len() + missing.len(),
            list(missing)
        )
    };
    let mut md = format!(
        "{partial}Ranges: {RANGES}.\n\n| rank | trial | latent | batch | lr | optimizer | weight decay | best validation | test |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    for (r, t) in ranked.iter().enumerate() {
        csv.push_str(&format!("{},{}", r + 1, trial_line(t)));
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.2e} | {} | {} | {} | {} |\n",
            r + 1,
            t.index,
            t.latent,
            t.batch_size,
            t.lr,
            t.optimizer.name(),
            t.weight_decay,
            if t.best_val.is_nan() {
                "diverged".into()
            } else {
                format!("{:.6}", t.best_val)
            },
            if t.test.is_nan() {
                "—".into()
            } else {
                format!("{:.6}", t.test)
            },
        ));
    }
    write_atomic(&out.join("results.csv"), csv.as_bytes())?;
    write_atomic(&out.join("results.md"), md.as_bytes())?;
    if let Some(best) = ranked.first().filter(|t| !t.best_val.is_nan()) {
        let name = format!("trial-{:03}", best.index);
        if let Some(config) = dirs
            .iter()
            .map(|d| d.join(&name).join("config.json"))
            .find(|p| p.exists())
        {
            let bytes = std::fs::read(&config).map_err(Error::io(&config))?;
            write_atomic(&out.join("best-config.json"), &bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(index: usize, best_val: f64) -> Trial {
        Trial {
            index,
            latent: 2 + index,
            batch_size: 32,
            lr: 1e-3,
            optimizer: OptimizerName::Adam,
            weight_decay: 0.0,
            best_val,
            test: best_val * 1.1,
        }
    }

    /// A shard's folder as `search` leaves it: its manifest (part `part` of a search of
    /// `total` trials from mlp4), its `trials.csv`, and each trial's folder with a
    /// `config.json` (here a marker naming the trial, which is all the ranking copies).
    fn shard(dir: &Path, part: usize, total: usize, trials: &[Trial]) {
        std::fs::create_dir_all(dir).unwrap();
        Manifest {
            seed: 0,
            trials: total,
            shard: Shard { part, of: 2 },
            base: RunConfig::preset("mlp4").unwrap(),
        }
        .write(dir)
        .unwrap();
        let mut csv = format!("{TRIALS_HEADER}\n");
        for t in trials {
            csv.push_str(&trial_line(t));
            let own = dir.join(format!("trial-{:03}", t.index));
            std::fs::create_dir_all(&own).unwrap();
            std::fs::write(own.join("config.json"), format!("trial {}", t.index)).unwrap();
        }
        std::fs::write(dir.join("trials.csv"), csv).unwrap();
    }

    #[test]
    fn each_swept_setting_changes_its_own_field() {
        let base = RunConfig::preset("mlp4").unwrap();
        let changed = |field: SweepField, value: f64| {
            let mut cfg = base.clone();
            field.apply(&mut cfg, value).unwrap();
            cfg
        };
        let mut want = base.clone();
        want.model.latent = 3;
        assert_eq!(changed(SweepField::Latent, 3.0), want);
        let mut want = base.clone();
        want.train.batch_size = 40;
        assert_eq!(changed(SweepField::BatchSize, 40.0), want);
        let mut want = base.clone();
        want.train.lr = 0.25;
        assert_eq!(changed(SweepField::Lr, 0.25), want);
        let mut want = base.clone();
        want.train.weight_decay = 0.125;
        assert_eq!(changed(SweepField::WeightDecay, 0.125), want);
        assert!(SweepField::Latent.apply(&mut base.clone(), 2.5).is_err());
    }

    #[test]
    fn collected_trials_are_ranked_lowest_loss_first_and_diverged_last() {
        let root = std::env::temp_dir().join(format!("handgrad-rank-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // Losses known by construction, spread over two shards, one trial diverged.
        shard(&root.join("a"), 1, 4, &[trial(0, 0.05), trial(2, f64::NAN)]);
        shard(&root.join("b"), 2, 4, &[trial(1, 0.02), trial(3, 0.08)]);
        let out = root.join("merged");
        collect(&[root.join("a"), root.join("b")], &out, false).unwrap();

        let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
        let order: Vec<(&str, &str)> = csv
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0], f[1])
            })
            .collect();
        // (rank, trial): 0.02, 0.05, 0.08, then the NaN.
        assert_eq!(order, [("1", "1"), ("2", "0"), ("3", "3"), ("4", "2")]);
        let md = std::fs::read_to_string(out.join("results.md")).unwrap();
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).skip(1).collect();
        assert!(rows[0].starts_with("| 1 | 1 |") && rows[0].contains("0.020000"));
        assert!(rows[3].starts_with("| 4 | 2 |") && rows[3].contains("diverged"));
        let best = std::fs::read_to_string(out.join("best-config.json")).unwrap();
        assert_eq!(
            best, "trial 1",
            "the lowest validation loss's configuration"
        );

        // Nothing to recommend when every trial diverged.
        shard(&root.join("c"), 1, 1, &[trial(0, f64::NAN)]);
        collect(&[root.join("c")], &root.join("none"), false).unwrap();
        assert!(!root.join("none").join("best-config.json").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
