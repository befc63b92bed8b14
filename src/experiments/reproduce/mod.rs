//! `handgrad reproduce`: a course report's protocol, run from start to finish, with the
//! report's numbers beside ours.
//!
//! Each protocol is a list of steps (train this, evaluate that, draw the other), each one the
//! same library call a command makes. Every step is timed and written down with the command
//! that repeats it; every number the report gives is put next to ours with the difference; every
//! picture is captioned. The result is `REPORT.md` and `report.html` in the output folder.
//!
//! `--quick` runs the same steps on a few thousand images for a couple of epochs: the whole
//! pipeline in a minute, for CI and for trying it out. Its numbers are not the report's.
//!
//! One file per protocol, each opening with the table of the figures its report gives
//! ([`Reported`]): [`mlp4`], [`conv_selu_latent`], [`fashion_conv_small`], [`digits_01247`].
//! This file holds what they share: the protocol list, running and timing a step, training a
//! model or a denoiser as a step. `command` builds each step's repeatable command line from
//! the values the step ran with, and `write` turns the result into `REPORT.md` and
//! `report.html`.

mod command;
pub mod conv_selu_latent;
pub mod digits_01247;
pub mod fashion_conv_small;
pub mod mlp4;
mod write;

use super::classify::{classify, Backbone, ClassifyReport, ClassifySpec};
use super::eval::denoise_run;
use super::train::{train_new, RunReport};
use super::RunOptions;
use crate::data::batches::{Amount, SplitSpec};
use crate::data::corrupt::Corruption;
use crate::data::mnist::Dataset;
use crate::error::{Error, Result};
use crate::fs::{claim, Replace, Target};
use crate::train::observe::Observer;
use crate::train::RunConfig;
use command::CommandLine;
use std::path::{Path, PathBuf};
use std::time::Instant;

crate::named_enum! {
    /// A course report whose protocol `reproduce` runs.
    pub enum Protocol: "protocol" {
        /// conv-selu with codes of 2 and 6 numbers: curves, latent sweep, corruption, denoising,
        /// generation, centroids, and the 2-D autoencoder's manifold beside a VAE's.
        ConvSeluLatent = "conv-selu-latent", "conv-selu with latent 2 and 6: sweep, corruptions, denoising, generation, centroids, AE vs VAE manifolds (two reports)",
        /// The 784-392-8-392-784 MLP with a plateau schedule: loss curve, reconstructions,
        /// denoising, interpolation.
        Mlp4 = "mlp4", "the 784-392-8-392-784 MLP: loss curve, reconstructions, denoising at 0.2, interpolation strips",
        /// conv-small on Fashion-MNIST: random search, codes in 2-D, denoising, a VAE, and a
        /// classifier on the frozen codes.
        FashionConvSmall = "fashion-conv-small", "conv-small on Fashion-MNIST: random search, PCA and t-SNE of the codes, denoising, a VAE, transfer to a classifier",
        /// Digits 0, 1, 2, 4, 7: PCA against one- and three-hidden-layer sigmoid autoencoders,
        /// denoising, and classifiers on every feature set.
        Digits01247 = "digits-01247", "digits 0, 1, 2, 4, 7: PCA vs sigmoid autoencoders for K = 32-256, denoising, classifiers on each feature set, weight tiles",
    }
}

/// A number a course report gives, as a protocol's table at the top of its file lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reported {
    /// The number.
    pub value: f64,
    /// Where the report gives it.
    pub place: &'static str,
    /// What it measures.
    pub what: &'static str,
}

/// One number of the comparison.
#[derive(Clone, Debug)]
pub struct Figure {
    /// What was measured, e.g. "test loss, latent 6, clean input".
    pub what: String,
    /// The report's number, when it gives one.
    pub report: Option<f64>,
    /// Ours.
    pub ours: f64,
    /// The step that measured it (an index into [`Reproduction::steps`]).
    pub step: usize,
}

/// One step of a protocol, as a person would repeat it.
#[derive(Clone, Debug)]
pub struct Step {
    /// What it does.
    pub what: String,
    /// The `handgrad` command that repeats it.
    pub command: String,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// A finished reproduction: what `REPORT.md` and `report.html` show.
#[derive(Clone, Debug)]
pub struct Reproduction {
    /// Which protocol.
    pub protocol: Protocol,
    /// Whether this was the reduced `--quick` run.
    pub quick: bool,
    /// The data, in words (which MNIST, how it was split).
    pub data: String,
    /// The numbers, report beside ours.
    pub figures: Vec<Figure>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Every picture, with its caption.
    pub pictures: Vec<(PathBuf, String)>,
    /// Remarks: where the protocol differs from the report, and why.
    pub notes: Vec<String>,
    /// The output folder.
    pub out: PathBuf,
    /// Training and test images of the first model trained.
    pub first_split: Option<(usize, usize)>,
}

/// Runs `protocol` into the new folder `out`, then writes `REPORT.md` and `report.html` there.
///
/// # Errors
/// A folder already in use; anything a step's command would refuse.
pub fn reproduce(
    protocol: Protocol,
    quick: bool,
    out: &Path,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<Reproduction> {
    claim(
        out,
        Target::Folder,
        "output folder",
        Replace::Never("choose another --out"),
    )?;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let dataset = match protocol {
        Protocol::FashionConvSmall => "fashion-mnist",
        _ => "mnist",
    };
    let ds = Dataset::find(dataset, &opts.lookup)?;
    let mut r = Reproduction {
        protocol,
        quick,
        data: ds.describe(),
        figures: Vec::new(),
        steps: Vec::new(),
        pictures: Vec::new(),
        notes: Vec::new(),
        out: out.to_path_buf(),
        first_split: None,
    };
    let shipped_mnist = ds.train.is_none() && dataset == "mnist";
    if quick {
        r.notes.push("This is the --quick version: few images, few epochs. It checks that the protocol runs; its numbers are not a reproduction.".into());
    }
    match protocol {
        Protocol::Mlp4 => mlp4::run(&mut r, opts, obs)?,
        Protocol::ConvSeluLatent => conv_selu_latent::run(&mut r, opts, obs)?,
        Protocol::FashionConvSmall => fashion_conv_small::run(&mut r, opts, obs)?,
        Protocol::Digits01247 => digits_01247::run(&mut r, opts, obs)?,
    }
    if let (true, Some((train, test))) = (shipped_mnist, r.first_split) {
        r.notes.insert(0, format!("The full MNIST training set (60,000 images) is not on this machine, so the shipped MNIST test set (10,000 images) is split into training, validation and test sets: the first model here trained on {train} images and was tested on {test} (the report's had the full set's tens of thousands). Losses are higher than with the full set, and the report's numbers are not strictly comparable."));
    }
    write::markdown(&r)?;
    write::page(&r).write(&out.join("report.html"))?;
    Ok(r)
}

impl Reproduction {
    /// Runs `body`, timing it and recording it as a step; returns its result and the step index.
    fn step<T>(
        &mut self,
        what: impl Into<String>,
        command: CommandLine,
        body: impl FnOnce() -> Result<T>,
    ) -> Result<(T, usize)> {
        let start = Instant::now();
        let value = body()?;
        self.steps.push(Step {
            what: what.into(),
            command: command.to_string(),
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok((value, self.steps.len() - 1))
    }

    /// Trains `cfg` into `<out>/<name>`, recording the step, the test loss and both baselines.
    fn train(
        &mut self,
        name: &str,
        what: &str,
        cfg: RunConfig,
        opts: &RunOptions,
        obs: &mut dyn Observer,
    ) -> Result<(RunReport, usize)> {
        let dir = self.out.join(name);
        let command = CommandLine::new("train")
            .opt("--config", dir.join("config.json").display())
            .comment("the settings this step used");
        let (report, step) = self.step(what, command, || train_new(cfg, &dir, opts, obs))?;
        self.steps[step].what += &format!(
            " ({} epochs, {} training images)",
            report.epochs, report.train_images
        );
        self.first_split
            .get_or_insert((report.train_images, report.test_images));
        if let Some(t) = &report.test {
            self.figure(format!("{what}: test loss"), None, t.loss, step);
        }
        // The baselines depend on the data (and k) only: each is shown once per protocol.
        if let Some(b) = &report.baselines {
            let mean = "baseline: the training set's mean image, for every test image";
            let pca = format!("baseline: PCA with k = {} components", b.k);
            for (name, value) in [(mean.to_string(), b.mean_image), (pca, b.pca)] {
                if !self.figures.iter().any(|f| f.what == name) {
                    self.figure(name, None, value, step);
                }
            }
        }
        Ok((report, step))
    }

    /// Trains `cfg` into `<out>/<name>` to undo `damage` (a corruption, as `--corrupt` writes
    /// it), then draws ten test images clean, damaged and denoised, captioned `caption`; records
    /// the denoiser's loss on those images beside the damaged inputs' own.
    fn denoiser(
        &mut self,
        name: &str,
        mut cfg: RunConfig,
        damage: &str,
        caption: &str,
        opts: &RunOptions,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let corruption: Corruption = damage.parse()?;
        cfg.train.corrupt = Some(corruption.clone());
        let what = format!("{name}, trained to undo {damage}");
        let (run, _) = self.train(name, &what, cfg, opts, obs)?;
        let out = run.dir.join("denoise.png");
        let shown = 10;
        let command = CommandLine::new("denoise")
            .opt("--run", run.dir.display())
            .opt("--corrupt", &corruption)
            .opt("--count", shown)
            .opt("--out", out.display());
        let (d, step) = self.step("denoise test images", command, || {
            denoise_run(&run.dir, &corruption, Some(&out), shown, false, opts)
        })?;
        self.figure(
            format!("{name}: output from {damage} inputs vs clean (the {shown} images shown)"),
            None,
            d.model,
            step,
        );
        self.figure(
            format!("the {damage} inputs themselves vs clean (same images)"),
            None,
            d.identity,
            step,
        );
        self.picture(d.out, caption);
        Ok(())
    }

    /// Trains a classifier head on `backbone` into `out` as a step (its command built by
    /// [`classify_command`]); returns what it reached and the step index.
    fn classifier(
        &mut self,
        what: impl Into<String>,
        backbone: &Backbone,
        spec: &ClassifySpec,
        out: &Path,
        (opts, obs): (&RunOptions, &mut dyn Observer),
    ) -> Result<(ClassifyReport, usize)> {
        let command = classify_command(backbone, spec, out);
        self.step(what, command, || classify(backbone, spec, out, opts, obs))
    }

    /// Records one number: ours, beside the report's when it gives one.
    fn figure(&mut self, what: impl Into<String>, report: Option<f64>, ours: f64, step: usize) {
        self.figures.push(Figure {
            what: what.into(),
            report,
            ours,
            step,
        });
    }

    /// Records a picture for the report, with its caption.
    fn picture(&mut self, path: PathBuf, caption: impl Into<String>) {
        self.pictures.push((path, caption.into()));
    }

    /// The run's own loss curve and reconstructions.
    fn run_pictures(&mut self, run: &RunReport, what: &str) {
        self.picture(
            run.dir.join("loss.png"),
            format!("{what}: training and validation loss per epoch."),
        );
        self.picture(
            run.dir.join("reconstructions.png"),
            format!("{what}: test images (top row) and their reconstructions after each snapshot epoch (one row each)."),
        );
    }
}

/// `handgrad classify` as a protocol's classifier step runs it: on `source` (PCA features or
/// a run's encoder), with the head `spec`, into `out`. A split the command cannot express (a
/// validation share other than its own) is said in a comment.
fn classify_command(source: &Backbone, spec: &ClassifySpec, out: &Path) -> CommandLine {
    let command = CommandLine::new("classify");
    let command = match source {
        Backbone::Pca { k, dataset, split } => {
            let own = SplitSpec::default().validation;
            let command = command
                .opt("--features", format!("pca:{k}"))
                .opt("--dataset", dataset)
                .list("--classes", &split.classes)
                .opt_some("--max-samples", split.max_samples);
            if split.validation == own {
                command
            } else {
                command.comment(format!(
                    "this step held out {} of the training pool for validation, where classify holds out {}",
                    amount_in_words(split.validation),
                    amount_in_words(own)
                ))
            }
        }
        Backbone::Frozen(run) => command.opt("--run", run.display()).flag("--freeze"),
        Backbone::Finetune(run) => command.opt("--run", run.display()).flag("--finetune"),
        Backbone::Scratch(run) => command.opt("--run", run.display()).flag("--from-scratch"),
    };
    command
        .list("--hidden", &spec.hidden)
        .opt("--activation", spec.activation)
        .opt("--epochs", spec.epochs)
        .opt_some("--early-stopping", spec.early_stopping)
        .opt("--batch-size", spec.batch_size)
        .opt("--lr", format!("{:e}", spec.lr))
        .opt("--seed", spec.seed)
        .opt("--out", out.display())
}

/// "0.25" for a fraction, "500 images" for a count.
fn amount_in_words(a: Amount) -> String {
    match a {
        Amount::Fraction(f) => f.to_string(),
        Amount::Count(n) => format!("{n} images"),
    }
}

/// A preset's recipe on MNIST, cut down for `--quick`.
fn recipe(preset: &str, epochs: usize, quick: bool) -> Result<RunConfig> {
    let mut cfg = if quick {
        RunConfig::quick(preset, 3000, 2, 256)?
    } else {
        let mut cfg = RunConfig::preset(preset)?;
        cfg.train.epochs = epochs;
        cfg
    };
    cfg.train.snapshot_epochs = if quick {
        vec![1, 2]
    } else {
        vec![1, 2, 5, 10, 20, epochs]
    };
    cfg.train.snapshot_epochs.dedup();
    Ok(cfg)
}
