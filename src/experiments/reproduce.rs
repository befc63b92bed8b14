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

use super::eval::{denoise_run, eval_run, noise_sweep, sweep_outputs};
use super::generate::{centroids, generate, interpolate, manifold};
use super::search::{sweep, SweepField};
use super::train::{train_new, RunReport};
use super::{check_unused_folder, RunOptions};
use crate::data::mnist::Dataset;
use crate::error::{Error, Result};
use crate::names::Named;
use crate::train::observe::Observer;
use crate::train::RunConfig;
use crate::viz::chart::LineChart;
use crate::viz::page::{Block, Page};
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
    check_unused_folder(out, "output folder", "choose another --out")?;
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
        Protocol::Mlp4 => mlp4(&mut r, opts, obs)?,
        Protocol::ConvSeluLatent => conv_selu_latent(&mut r, opts, obs)?,
        Protocol::FashionConvSmall => fashion_conv_small(&mut r, opts, obs)?,
        Protocol::Digits01247 => digits_01247(&mut r, opts, obs)?,
    }
    if let (true, Some((train, test))) = (shipped_mnist, r.first_split) {
        r.notes.insert(0, format!("The full MNIST training set (60,000 images) is not on this machine, so the shipped MNIST test set (10,000 images) is split into training, validation and test sets: the first model here trained on {train} images and was tested on {test} (the report's had the full set's tens of thousands). Losses are higher than with the full set, and the report's numbers are not strictly comparable."));
    }
    write_markdown(&r)?;
    page(&r)?.write(&out.join("report.html"))?;
    Ok(r)
}

impl Reproduction {
    /// Runs `body`, timing it and recording it as a step; returns its result and the step index.
    fn step<T>(
        &mut self,
        what: impl Into<String>,
        command: impl Into<String>,
        body: impl FnOnce() -> Result<T>,
    ) -> Result<(T, usize)> {
        let start = Instant::now();
        let value = body()?;
        self.steps.push(Step {
            what: what.into(),
            command: command.into(),
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
        let command = format!(
            "handgrad train --config {}  # the settings this step used",
            dir.join("config.json").display()
        );
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
        let corruption: crate::data::corrupt::Corruption = damage.parse()?;
        cfg.train.corrupt = Some(corruption.clone());
        let what = format!("{name}, trained to undo {damage}");
        let (run, _) = self.train(name, &what, cfg, opts, obs)?;
        let out = run.dir.join("denoise.png");
        let command = format!(
            "handgrad denoise --run {} --corrupt {damage} --out {}",
            run.dir.display(),
            out.display()
        );
        let (d, step) = self.step("denoise test images", command, || {
            denoise_run(&run.dir, &corruption, Some(&out), 10, false, opts)
        })?;
        self.figure(
            format!("{name}: output from {damage} inputs vs clean (the 10 images shown)"),
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

    fn figure(&mut self, what: impl Into<String>, report: Option<f64>, ours: f64, step: usize) {
        self.figures.push(Figure {
            what: what.into(),
            report,
            ours,
            step,
        });
    }

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

/// The mlp4 report: 784-392-8-392-784, Adam 1e-3 with ReduceLROnPlateau, batch 2048, 50
/// epochs; the loss starts near 0.108 and flattens; reconstructions, denoising at noise factor
/// 0.2, interpolation strips of 8 steps.
fn mlp4(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
    let quick = r.quick;
    let cfg = recipe("mlp4", 50, quick)?;
    let (run, step) = r.train("mlp4", "mlp4", cfg.clone(), opts, obs)?;
    if let Some(first) = run.history.first() {
        r.figure(
            "mlp4: training loss of the first epoch (the report: \"starts near 0.108\")",
            Some(0.108),
            first.train_loss,
            step,
        );
    }
    // The report's first epoch was 54,000 images: 27 steps of 2048. With fewer training
    // images an epoch has fewer steps; the epoch in which step 27 falls is the fair comparison.
    let per_epoch = run.train_images.div_ceil(cfg.train.batch_size).max(1);
    let epoch = 27usize.div_ceil(per_epoch);
    if per_epoch < 27 {
        if let Some(m) = run.history.get(epoch - 1) {
            r.figure(
                format!("mlp4: training loss of epoch {epoch}, which holds step 27 (the full set's first epoch ends there; {per_epoch} steps per epoch here)"),
                Some(0.108),
                m.train_loss,
                step,
            );
        }
    }
    if let Some(last) = run.history.last() {
        r.figure(
            format!(
                "mlp4: validation loss after the last epoch ({})",
                last.epoch
            ),
            None,
            last.val_loss,
            step,
        );
    }
    r.run_pictures(&run, "mlp4");

    r.denoiser(
        "mlp4-denoising",
        cfg,
        "gaussian:0.2",
        "The denoising mlp4: clean test images (top), with Gaussian noise of factor 0.2 (middle), and the model's output from the noisy ones (bottom).",
        opts,
        obs,
    )?;

    for (from, to) in [
        ("class:1", "class:7"),
        ("class:3", "class:8"),
        ("class:4", "class:9"),
    ] {
        let name = format!("interpolate-{}-{}.png", &from[6..], &to[6..]);
        let out = run.dir.join(&name);
        let command = format!(
            "handgrad interpolate --run {} --from {from} --to {to} --steps 8 --out {}",
            run.dir.display(),
            out.display()
        );
        let (path, _) = r.step(format!("interpolate {from} → {to}"), command, || {
            interpolate(&run.dir, from, to, 8, Some(&out), false, opts).map(|(p, _)| p)
        })?;
        r.picture(path, format!("mlp4: decoding 8 evenly spaced codes on the straight line between the codes of the first test image of {from} and of {to} (ends: the two reconstructions)."));
    }
    Ok(())
}

/// The conv-selu reports: latent 2 and 6 over up to 60 epochs, the latent sweep 2..6 with
/// early stopping, the latent-6 model under corruptions (the report: 0.0208 clean, 0.0271
/// occluded, 0.0316 noisy) and the noise-level sweep, a denoising model, random codes,
/// centroids with σ from 0 to 10, and the 2-D autoencoder's manifold beside a VAE's.
fn conv_selu_latent(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
    let quick = r.quick;
    let epochs = 60;
    let mut runs = Vec::new();
    for latent in [2, 6] {
        let mut cfg = recipe("conv-selu", epochs, quick)?;
        cfg.model.latent = latent;
        let name = format!("latent-{latent}");
        let (run, _) = r.train(
            &name,
            &format!("conv-selu, latent {latent}"),
            cfg,
            opts,
            obs,
        )?;
        r.run_pictures(&run, &format!("conv-selu, latent {latent}"));
        runs.push(run);
    }
    let (two, six) = (&runs[0], &runs[1]);
    let curves = r.out.join("latent-2-vs-6.png");
    let mut chart = LineChart::new(
        "conv-selu: validation loss per epoch, codes of 2 and 6 numbers",
        "epoch",
        "validation loss (MSE per pixel)",
    )
    .counting_x();
    for (run, colour, label) in [
        (two, crate::viz::chart::class_color(0), "latent 2"),
        (six, crate::viz::chart::class_color(1), "latent 6"),
    ] {
        let points = run
            .history
            .iter()
            .map(|m| (m.epoch as f64, m.val_loss))
            .collect();
        chart = chart.line(label, colour, points);
    }
    chart.save(&curves)?;
    r.picture(curves, "Validation loss per epoch of the two models on one plot (the report plots the test loss; we keep the test set for the final numbers and plot the validation set, drawn from the same distribution).");

    // Corruptions of the latent-6 model, and the noise-level sweep.
    let conditions: Vec<crate::data::corrupt::Corruption> =
        vec!["occlusion:10".parse()?, "gaussian:0.3".parse()?];
    let command = format!(
        "handgrad eval --run {} --corrupt occlusion:10 --corrupt gaussian:0.3",
        six.dir.display()
    );
    let (eval, step) = r.step(
        "latent 6 on clean, occluded and noisy test images",
        command,
        || eval_run(&six.dir, None, &conditions, opts),
    )?;
    for (row, report) in eval.rows.iter().zip([0.0208, 0.0271, 0.0316]) {
        r.figure(
            format!("latent 6: test loss, {} input", row.condition),
            Some(report),
            row.model,
            step,
        );
    }
    r.notes.push("The reports do not give the size of the occluding square or the noise factor behind 0.0271 and 0.0316; we use a 10×10 black square at a random place (occlusion:10) and Gaussian noise of factor 0.3 (gaussian:0.3), the defaults a user of this tool meets first.".into());
    let levels: Vec<f32> = (0..=10).map(|i| i as f32 / 10.0).collect();
    let outputs = sweep_outputs(&six.dir, None, false)?;
    let command = format!(
        "handgrad eval --run {} --noise-sweep 0:1:0.1",
        six.dir.display()
    );
    let ((_, _, plot), _) = r.step("noise-level sweep of latent 6", command, || {
        noise_sweep(&six.dir, None, &levels, outputs, opts)
    })?;
    r.picture(plot, "Latent 6: test loss against the factor of the Gaussian noise added to the input, beside the loss of the noisy input itself.");

    // The latent sweep with early stopping.
    // What the sweep command can say: the preset, epochs, images, early stopping.
    let mut base = RunConfig::preset("conv-selu")?;
    base.train.epochs = if quick { 2 } else { epochs };
    base.train.early_stopping = Some(5);
    base.train.snapshot_epochs = Vec::new();
    base.split.max_samples = quick.then_some(3000);
    let sweep_dir = r.out.join("latent-sweep");
    let command = format!(
        "handgrad sweep --preset conv-selu --epochs {}{} --early-stopping 5 --latent 2,3,4,5,6 --out {}",
        base.train.epochs,
        if quick { " --max-samples 3000" } else { "" },
        sweep_dir.display()
    );
    let (rows, step) = r.step("latent sweep 2..6 with early stopping", command, || {
        sweep(
            &base,
            SweepField::Latent,
            &[2.0, 3.0, 4.0, 5.0, 6.0],
            &sweep_dir,
            opts,
            obs,
        )
    })?;
    for row in &rows {
        r.figure(
            format!(
                "latent sweep: test loss at latent {} (after {} epochs)",
                row.value, row.epochs
            ),
            None,
            row.test,
            step,
        );
    }
    r.picture(sweep_dir.join("sweep.png"), "The latent sweep: validation and test loss against the code size, each model trained with early stopping (patience 5).");

    // A denoising model: Gaussian noise and occlusion together.
    r.denoiser(
        "denoising",
        recipe("conv-selu", epochs, quick)?,
        "gaussian:0.3+occlusion:10",
        "The denoising model: clean test images (top), with noise and a 10×10 black square (middle), and the model's output (bottom).",
        opts,
        obs,
    )?;

    // Generation from the latent-6 model.
    let out = r.out.join("generated.png");
    let command = format!(
        "handgrad generate --run {} --n 20 --out {}",
        six.dir.display(),
        out.display()
    );
    let (path, _) = r.step("decode random codes", command, || {
        generate(&six.dir, 20, None, 0, Some(&out), false, opts).map(|(p, _)| p)
    })?;
    r.picture(path, "Latent 6: 20 random codes drawn from the spread of the training images' codes, decoded (each caption is the code).");
    let out = r.out.join("centroids.png");
    let sigmas = [0.0, 2.5, 5.0, 7.5, 10.0];
    let command = format!(
        "handgrad generate --run {} --centroids --sigmas 0,2.5,5,7.5,10 --out {}",
        six.dir.display(),
        out.display()
    );
    let (path, _) = r.step("decode class centroids with noise", command, || {
        centroids(&six.dir, &sigmas, 0, Some(&out), false, opts).map(|(p, _)| p)
    })?;
    r.picture(path, "Latent 6: each class's mean code (columns) decoded with Gaussian noise of growing σ added to it (rows: σ = 0, 2.5, 5, 7.5, 10).");

    // The 2-D manifold of the autoencoder beside a VAE's.
    let stem = r.out.join("manifold-ae");
    let command = format!(
        "handgrad manifold --run {} --grid 15 --out {}",
        two.dir.display(),
        stem.display()
    );
    let ((grid, scatter), _) = r.step("the latent-2 autoencoder's code plane", command, || {
        manifold(&two.dir, 15, Some(&stem), false, opts)
    })?;
    r.picture(grid, "The latent-2 autoencoder: a 15×15 grid of codes over the plane its test codes cover, decoded.");
    r.picture(
        scatter,
        "The latent-2 autoencoder: test images' codes, coloured by class.",
    );
    let mut vae_cfg = recipe("conv-selu", epochs, quick)?;
    vae_cfg.model.latent = 2;
    vae_cfg.model.variational = true;
    let (vae, _) = r.train(
        "vae-latent-2",
        "conv-selu VAE, latent 2",
        vae_cfg,
        opts,
        obs,
    )?;
    let stem = r.out.join("manifold-vae");
    let command = format!(
        "handgrad manifold --run {} --grid 15 --out {}",
        vae.dir.display(),
        stem.display()
    );
    let ((grid, scatter), _) = r.step("the VAE's code plane", command, || {
        manifold(&vae.dir, 15, Some(&stem), false, opts)
    })?;
    r.picture(grid, "The latent-2 VAE: a 15×15 grid of codes over the prior's central region, decoded. Compare how evenly it fills the plane with the autoencoder's.");
    r.picture(
        scatter,
        "The latent-2 VAE: test images' codes (means), coloured by class.",
    );
    Ok(())
}

/// The fashion-conv-small report: a random search (30 trials × 7 epochs), then conv-small
/// (latent 20, batch 128, lr 2e-3) trained longer; PCA and t-SNE pictures of its codes; a
/// denoising model (noise 0.3, first linear layer 128, batch norm); a VAE after 20 epochs; a
/// Linear(20,128) ReLU Linear(128,10) classifier on the frozen codes for 20 epochs (the
/// report: 88.8 % test accuracy) and its confusion matrix.
fn fashion_conv_small(
    r: &mut Reproduction,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<()> {
    let quick = r.quick;
    let fashion = |mut cfg: RunConfig| {
        cfg.dataset = "fashion-mnist".into();
        cfg
    };
    // The search: the preset's model, each trial's settings drawn at random.
    let (trials, trial_epochs) = if quick { (3, 1) } else { (30, 7) };
    let mut base = fashion(RunConfig::preset("conv-small")?);
    base.train.epochs = trial_epochs;
    base.train.snapshot_epochs = Vec::new();
    base.split.max_samples = quick.then_some(3000);
    let search_dir = r.out.join("search");
    let command = format!(
        "handgrad search --preset conv-small --dataset fashion-mnist --epochs {trial_epochs}{} --trials {trials} --out {}",
        if quick { " --max-samples 3000" } else { "" },
        search_dir.display()
    );
    let (found, step) = r.step(
        format!("random search, {trials} trials × {trial_epochs} epochs"),
        command,
        || super::search::search(&base, trials, 0, (0, 1), &search_dir, opts, obs),
    )?;
    if let Some(best) = found
        .iter()
        .filter(|t| t.best_val.is_finite())
        .min_by(|a, b| a.best_val.total_cmp(&b.best_val))
    {
        r.figure(
            format!(
                "search: best validation loss (trial {}: latent {}, batch {}, lr {:.1e}, {})",
                best.index,
                best.latent,
                best.batch_size,
                best.lr,
                best.optimizer.name()
            ),
            None,
            best.best_val,
            step,
        );
    }
    r.notes.push(format!("The search ranks its trials in {}/results.md. The model trained longer below uses the report's chosen settings (latent 20, batch 128, lr 2e-3, Adam: the conv-small preset), so that the classifier head is the report's Linear(20, 128); our search's best trial is listed above for comparison.", search_dir.display()));

    let epochs = if quick { 2 } else { 30 };
    let mut cfg = fashion(recipe("conv-small", epochs, quick)?);
    cfg.train.early_stopping = (!quick).then_some(5);
    let (main, _) = r.train("conv-small", "conv-small (latent 20)", cfg, opts, obs)?;
    r.run_pictures(&main, "conv-small");
    for method in [
        super::latent::Projection::Pca,
        super::latent::Projection::Tsne,
    ] {
        let n = if quick { 500 } else { 2000 };
        let out = r.out.join(format!("latent-{}.png", method.name()));
        let command = format!(
            "handgrad latent --run {} --method {} --n {n} --out {}",
            main.dir.display(),
            method.name(),
            out.display()
        );
        let settings = crate::reduce::tsne::TsneSettings::default();
        let (l, step) = r.step(
            format!("codes in 2-D by {}", method.name()),
            command,
            || super::latent::latent(&main.dir, method, n, &settings, Some(&out), false, opts),
        )?;
        r.figure(
            format!(
                "codes by {}: share of test images whose nearest neighbour on the picture has the same class",
                method.name()
            ),
            None,
            l.purity,
            step,
        );
        r.picture(
            l.out,
            format!(
                "conv-small's codes of {n} test images drawn in 2-D by {}, coloured by class.",
                method.describe()
            ),
        );
    }

    let mut den_cfg = fashion(recipe("conv-small", if quick { 2 } else { 20 }, quick)?);
    den_cfg.model.hidden = vec![128];
    den_cfg.model.batch_norm = true;
    r.denoiser(
        "denoising",
        den_cfg,
        "gaussian:0.3",
        "The conv-small denoiser (first linear layer 128, batch norm): clean test images (top), with Gaussian noise of factor 0.3 (middle), and its output (bottom).",
        opts,
        obs,
    )?;

    let mut vae_cfg = fashion(recipe("conv-small", if quick { 2 } else { 20 }, quick)?);
    vae_cfg.model.variational = true;
    let (vae, _) = r.train("vae", "conv-small VAE", vae_cfg, opts, obs)?;
    r.run_pictures(&vae, "conv-small VAE");
    let out = r.out.join("vae-generated.png");
    let command = format!(
        "handgrad generate --run {} --n 20 --out {}",
        vae.dir.display(),
        out.display()
    );
    let (path, _) = r.step("decode codes drawn from the prior", command, || {
        generate(&vae.dir, 20, None, 0, Some(&out), false, opts).map(|(p, _)| p)
    })?;
    r.picture(
        path,
        "The VAE: 20 codes drawn from its prior N(0, I), decoded.",
    );

    let spec = super::classify::ClassifySpec {
        hidden: vec![128],
        activation: kernels::elementwise::Activation::Relu,
        epochs: if quick { 2 } else { 20 },
        batch_size: 128,
        lr: 1e-3,
        seed: 0,
        early_stopping: None,
    };
    let out = r.out.join("classifier");
    let command = format!(
        "handgrad classify --run {} --freeze --hidden 128 --activation relu --epochs {} --batch-size 128 --lr 1e-3 --out {}",
        main.dir.display(),
        spec.epochs,
        out.display()
    );
    let source = super::classify::Source::Frozen(main.dir.clone());
    let (c, step) = r.step("classifier on the frozen codes", command, || {
        super::classify::classify(&source, &spec, &out, opts, obs)
    })?;
    r.figure(
        "transfer: test accuracy of Linear(20,128) ReLU Linear(128,10) on the frozen codes (%)",
        Some(88.8),
        100.0 * c.test_accuracy,
        step,
    );
    r.picture(c.out.join("curves.png"), "The classifier on conv-small's frozen codes: loss and accuracy per epoch, training and validation.");
    r.picture(
        c.out.join("confusion.png"),
        "Its confusion matrix on the test set: rows the true class, columns the predicted one.",
    );
    // The report does not say whether its encoder was frozen: fine-tune it too.
    let out = r.out.join("classifier-finetuned");
    let command = format!(
        "handgrad classify --run {} --finetune --hidden 128 --activation relu --epochs {} --batch-size 128 --lr 1e-3 --out {}",
        main.dir.display(),
        spec.epochs,
        out.display()
    );
    let source = super::classify::Source::Finetune(main.dir.clone());
    let (c, step) = r.step("classifier with the encoder fine-tuned", command, || {
        super::classify::classify(&source, &spec, &out, opts, obs)
    })?;
    r.figure(
        "transfer: test accuracy, the same head with the encoder fine-tuned (%)",
        Some(88.8),
        100.0 * c.test_accuracy,
        step,
    );
    r.notes.push("The report does not say whether the encoder was frozen while its classifier trained, so both are measured: the frozen codes, and the encoder trained further together with the head.".into());
    Ok(())
}

/// A sigmoid autoencoder preset (`mlp1-K`, `mlp3-K`) on the digits split: `epochs` with early
/// stopping (patience 5), or the `--quick` cut.
fn digits_recipe(
    preset: &str,
    split: &crate::data::batches::SplitSpec,
    epochs: usize,
    quick: bool,
) -> Result<RunConfig> {
    let mut cfg = if quick {
        RunConfig::quick(preset, 1500, epochs, 32)?
    } else {
        let mut c = RunConfig::preset(preset)?;
        c.train.epochs = epochs;
        c.train.early_stopping = Some(5);
        c
    };
    cfg.split = split.clone();
    cfg.train.snapshot_epochs = Vec::new();
    Ok(cfg)
}

/// The digits-01247 report: digits {0, 1, 2, 4, 7} split 60/20/20; PCA with k = 32, 64, 128,
/// 256; one- and three-hidden-layer (400-K-400) sigmoid autoencoders for the same K; denoising
/// at 20 % and 40 %; classifiers 512-256-256, 512-512-512 and 512-256-128-64 on every feature
/// set (the report's best: 98.74 %, the one-hidden-layer autoencoder with K = 256 and
/// 512-256-256; PCA 97.97-98.42 %); the weight tiles of the 256-unit autoencoder.
fn digits_01247(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
    use super::classify::{classify, ClassifySpec, Source};
    use crate::data::batches::{Amount, SplitSpec};
    let quick = r.quick;
    // 60 / 20 / 20: the test set is a fifth (carved from the shipped set, or the full set's own
    // test files), validation a quarter of the rest.
    let split = SplitSpec {
        validation: Amount::Fraction(0.25),
        classes: vec![0, 1, 2, 4, 7],
        max_samples: quick.then_some(1500),
        ..SplitSpec::default()
    };
    r.notes.push("The report splits each digit 2,277 / 759 / 759 (60 / 20 / 20). We keep those proportions: the test set is a fifth of the images (the full set's own test files when present), the validation set a quarter of the rest.".into());
    let ks: Vec<usize> = if quick {
        vec![32]
    } else {
        vec![32, 64, 128, 256]
    };
    let ks_text = ks
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = r.out.join("pca.png");
    let command = format!(
        "handgrad pca --dataset mnist --classes 0,1,2,4,7 --components {ks_text} --out {}",
        out.display()
    );
    let mut pca_split = split.clone();
    pca_split.validation = Amount::Count(0);
    let (p, step) = r.step("PCA baseline", command, || {
        super::pca::pca_baseline(
            "mnist",
            &ks,
            &pca_split,
            10,
            Some(&out),
            false,
            &opts.lookup,
        )
    })?;
    for row in &p.rows {
        r.figure(
            format!("PCA k = {}: test MSE per pixel", row.k),
            None,
            row.test_mse,
            step,
        );
    }
    r.picture(p.out, "PCA: test digits rebuilt from k principal components of the training digits, one row per k.");

    let epochs = if quick { 2 } else { 30 };
    let mut features: Vec<(String, Source)> = Vec::new();
    for &k in &ks {
        features.push((
            format!("PCA-{k}"),
            Source::Pca {
                k,
                dataset: "mnist".into(),
                split: split.clone(),
            },
        ));
        for preset in ["mlp1", "mlp3"] {
            let name = format!("{preset}-{k}");
            let cfg = digits_recipe(&name, &split, epochs, quick)?;
            let (run, _) = r.train(&name, &format!("{name} autoencoder"), cfg, opts, obs)?;
            features.push((name, Source::Frozen(run.dir.clone())));
        }
    }
    let top = *ks.last().unwrap_or(&32);
    let tiles_of = r.out.join(format!("mlp1-{top}"));
    let out = r.out.join("weights.png");
    let command = format!(
        "handgrad weights --run {} --out {}",
        tiles_of.display(),
        out.display()
    );
    let ((path, tiles), _) = r.step("weight tiles", command, || {
        super::latent::weights(&tiles_of, None, Some(&out), false)
    })?;
    r.picture(path, format!("The {tiles} hidden units of mlp1-{top}: each tile is one unit's weights on the 28×28 pixels, scaled from its own minimum (black) to maximum (white)."));

    for percent in [20, 40] {
        r.denoiser(
            &format!("mlp1-{top}-denoising-{percent}"),
            digits_recipe(&format!("mlp1-{top}"), &split, epochs, quick)?,
            &format!("salt-pepper:{}", percent as f32 / 100.0),
            &format!("mlp1-{top} trained to undo {percent}% salt-and-pepper noise: clean digits (top), damaged (middle), its output (bottom)."),
            opts,
            obs,
        )?;
    }
    r.notes.push("The report denoises at 20 % and 40 % without naming the noise; we read it as that share of pixels set to black or white (salt-pepper:0.2 and salt-pepper:0.4).".into());

    let heads: Vec<Vec<usize>> = if quick {
        vec![vec![512, 256, 256]]
    } else {
        vec![
            vec![512, 256, 256],
            vec![512, 512, 512],
            vec![512, 256, 128, 64],
        ]
    };
    let mut best: Option<(f64, String)> = None;
    for (feature, source) in &features {
        for hidden in &heads {
            let head = hidden
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join("-");
            let spec = ClassifySpec {
                hidden: hidden.clone(),
                activation: kernels::elementwise::Activation::Relu,
                epochs: if quick { 2 } else { 30 },
                batch_size: 64,
                lr: 1e-3,
                seed: 0,
                early_stopping: (!quick).then_some(5),
            };
            let out = r.out.join(format!("classify-{feature}-{head}"));
            let what = match source {
                Source::Pca { k, .. } => {
                    format!("--features pca:{k} --dataset mnist --classes 0,1,2,4,7")
                }
                Source::Frozen(run) => format!("--run {} --freeze", run.display()),
                _ => String::new(),
            };
            let command = format!(
                "handgrad classify {what} --hidden {} --epochs {}{} --batch-size 64 --lr 1e-3 --out {}",
                hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
                spec.epochs,
                if quick { "" } else { " --early-stopping 5" },
                out.display()
            );
            let (c, step) = r.step(format!("classifier {head} on {feature}"), command, || {
                classify(source, &spec, &out, opts, obs)
            })?;
            let accuracy = 100.0 * c.test_accuracy;
            let report = (feature == "mlp1-256" && head == "512-256-256").then_some(98.74);
            r.figure(
                format!("test accuracy (%), {head} on {feature}"),
                report,
                accuracy,
                step,
            );
            if best.as_ref().is_none_or(|(a, _)| accuracy > *a) {
                best = Some((accuracy, format!("{head} on {feature}")));
                if feature.starts_with("mlp1") && head == "512-256-256" {
                    r.picture(c.out.join("confusion.png"), format!("Confusion matrix of the {head} classifier on {feature} codes (rows: true digit, columns: predicted)."));
                }
            }
        }
    }
    if let Some((accuracy, what)) = best {
        r.notes.push(format!("Our best classifier: {what}, {accuracy:.2} % test accuracy (the report's best: 98.74 %, 512-256-256 on the one-hidden-layer autoencoder with K = 256; its PCA features gave 97.97-98.42 %)."));
    }
    Ok(())
}

/// "+0.0012 (+5.8 %)" for ours − report.
fn difference(report: Option<f64>, ours: f64) -> String {
    match report {
        Some(rep) if rep != 0.0 => format!(
            "{:+.4} ({:+.1} %)",
            ours - rep,
            100.0 * (ours - rep) / rep.abs()
        ),
        _ => "—".into(),
    }
}

/// The numbers table: what, report, ours, difference, step.
fn figure_rows(r: &Reproduction) -> Vec<Vec<String>> {
    r.figures
        .iter()
        .map(|f| {
            vec![
                f.what.clone(),
                f.report.map_or("—".into(), |v| format!("{v:.4}")),
                format!("{:.4}", f.ours),
                difference(f.report, f.ours),
                (f.step + 1).to_string(),
            ]
        })
        .collect()
}

const FIGURE_HEADER: [&str; 5] = ["what", "report", "ours", "ours − report", "step"];
const STEP_HEADER: [&str; 4] = ["step", "what", "command", "wall time"];

fn step_rows(r: &Reproduction) -> Vec<Vec<String>> {
    r.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                (i + 1).to_string(),
                s.what.clone(),
                s.command.clone(),
                format!("{:.1} s", s.seconds),
            ]
        })
        .collect()
}

/// Machine, threads and data, in one paragraph.
fn context(r: &Reproduction) -> String {
    format!(
        "Protocol {} ({}){}. Machine: {}, {} instructions, {} threads. Data: {}. Seeds: 0 for every run (initialisation, splits, shuffles, corruptions). Total wall time {:.0} s.",
        r.protocol.name(),
        r.protocol.describe(),
        if r.quick { ", --quick" } else { "" },
        crate::machine::cpu_model(),
        crate::machine::isa(),
        rayon::current_num_threads(),
        r.data,
        r.steps.iter().map(|s| s.seconds).sum::<f64>()
    )
}

fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        s += &format!("| {} |\n", cells.join(" | "));
    }
    s
}

fn write_markdown(r: &Reproduction) -> Result<()> {
    let mut md = format!(
        "# Reproduction: {}\n\n{}\n\n## Numbers\n\n{}\n",
        r.protocol.name(),
        context(r),
        md_table(&FIGURE_HEADER, &figure_rows(r))
    );
    if !r.notes.is_empty() {
        md += "## Notes\n\n";
        for n in &r.notes {
            md += &format!("- {n}\n");
        }
        md += "\n";
    }
    md += &format!(
        "## Steps\n\n{}\n## Pictures\n\n",
        md_table(&STEP_HEADER, &step_rows(r))
    );
    for (path, caption) in &r.pictures {
        let rel = path.strip_prefix(&r.out).unwrap_or(path);
        md += &format!("![{caption}]({})\n\n*{caption}*\n\n", rel.display());
    }
    crate::train::checkpoint::write_atomic(&r.out.join("REPORT.md"), md.as_bytes())
}

fn page(r: &Reproduction) -> Result<Page> {
    let mut page = Page::new(format!("handgrad reproduction: {}", r.protocol.name()));
    page.push(Block::Text(context(r)));
    page.push(Block::Heading("Numbers".into()));
    page.push(Block::Table {
        header: FIGURE_HEADER.iter().map(|s| s.to_string()).collect(),
        rows: figure_rows(r),
    });
    if !r.notes.is_empty() {
        page.push(Block::Heading("Notes".into()));
        for n in &r.notes {
            page.push(Block::Text(n.clone()));
        }
    }
    page.push(Block::Heading("Steps".into()));
    page.push(Block::Table {
        header: STEP_HEADER.iter().map(|s| s.to_string()).collect(),
        rows: step_rows(r),
    });
    page.push(Block::Heading("Pictures".into()));
    for (path, caption) in &r.pictures {
        page.push(Block::Picture {
            path: path.clone(),
            caption: caption.clone(),
        });
    }
    Ok(page)
}
