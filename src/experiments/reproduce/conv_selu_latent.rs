//! The conv-selu reports: latent 2 and 6 over up to 60 epochs, the latent sweep 2..6 with
//! early stopping, the latent-6 model under corruptions and the noise-level sweep, a denoising
//! model, random codes, centroids with σ from 0 to 10, and the 2-D autoencoder's manifold
//! beside a VAE's.

use super::{recipe, CommandLine, Reported, Reproduction};
use crate::data::corrupt::Corruption;
use crate::error::Result;
use crate::experiments::eval::{eval_run, noise_sweep, parse_sweep, sweep_outputs};
use crate::experiments::generate::{centroids, generate, manifold};
use crate::experiments::search::{sweep, SweepField};
use crate::experiments::RunOptions;
use crate::train::observe::Observer;
use crate::train::{Overrides, RunConfig};
use crate::viz::chart::{class_color, LineChart};

/// Where the reports compare the latent-6 model's test loss on damaged inputs.
const CORRUPTIONS: &str =
    "the reports' comparison of the latent-6 model on clean, occluded and noisy test images";

/// The latent-6 model's test loss on clean inputs.
pub const CLEAN: Reported = Reported {
    value: 0.0208,
    place: CORRUPTIONS,
    what: "test MSE per pixel of the latent-6 conv-selu autoencoder, clean inputs",
};

/// The same model with part of each input hidden.
pub const OCCLUDED: Reported = Reported {
    value: 0.0271,
    place: CORRUPTIONS,
    what: "the same, inputs occluded (the reports do not give the square's size)",
};

/// The same model with noise added to each input.
pub const NOISY: Reported = Reported {
    value: 0.0316,
    place: CORRUPTIONS,
    what: "the same, inputs with Gaussian noise (the reports do not give the factor)",
};

/// Every figure the reports give that this protocol measures.
pub const REPORTED: &[Reported] = &[CLEAN, OCCLUDED, NOISY];

/// Runs the protocol into `r`.
///
/// # Errors
/// Anything a step's command would refuse.
pub fn run(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
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
        (two, class_color(0), "latent 2"),
        (six, class_color(1), "latent 6"),
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
    let conditions: Vec<Corruption> = vec!["occlusion:10".parse()?, "gaussian:0.3".parse()?];
    let mut command = CommandLine::new("eval").opt("--run", six.dir.display());
    for c in &conditions {
        command = command.opt("--corrupt", c);
    }
    let (eval, step) = r.step(
        "latent 6 on clean, occluded and noisy test images",
        command,
        || eval_run(&six.dir, None, &conditions, opts),
    )?;
    for (row, report) in eval.rows.iter().zip([CLEAN, OCCLUDED, NOISY]) {
        r.figure(
            format!("latent 6: test loss, {} input", row.condition),
            Some(report.value),
            row.model,
            step,
        );
    }
    r.notes.push("The reports do not give the size of the occluding square or the noise factor behind 0.0271 and 0.0316; we use a 10×10 black square at a random place (occlusion:10) and Gaussian noise of factor 0.3 (gaussian:0.3), the defaults a user of this tool meets first.".into());
    let noise_levels = "0:1:0.1";
    let levels = parse_sweep(noise_levels)?;
    let outputs = sweep_outputs(&six.dir, None, false)?;
    let command = CommandLine::new("eval")
        .opt("--run", six.dir.display())
        .opt("--noise-sweep", noise_levels);
    let ((_, _, plot), _) = r.step("noise-level sweep of latent 6", command, || {
        noise_sweep(&six.dir, None, &levels, outputs, opts)
    })?;
    r.picture(plot, "Latent 6: test loss against the factor of the Gaussian noise added to the input, beside the loss of the noisy input itself.");

    // The latent sweep with early stopping, from what the sweep command can say: the preset,
    // epochs, images, early stopping.
    let given = Overrides {
        epochs: Some(if quick { 2 } else { epochs }),
        early_stopping: Some(5),
        max_samples: quick.then_some(3000),
        snapshot_epochs: Some(Vec::new()),
        ..Overrides::default()
    };
    let mut base = RunConfig::preset("conv-selu")?;
    given.apply(&mut base)?;
    let latents = [2.0, 3.0, 4.0, 5.0, 6.0];
    let sweep_dir = r.out.join("latent-sweep");
    let command = CommandLine::new("sweep")
        .opt("--preset", &base.preset)
        .opt_some("--epochs", given.epochs)
        .opt_some("--max-samples", given.max_samples)
        .opt_some("--early-stopping", given.early_stopping)
        .list("--latent", &latents)
        .opt("--out", sweep_dir.display());
    let (rows, step) = r.step("latent sweep 2..6 with early stopping", command, || {
        sweep(&base, SweepField::Latent, &latents, &sweep_dir, opts, obs)
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
    let (n, seed) = (20, 0);
    let out = r.out.join("generated.png");
    let command = CommandLine::new("generate")
        .opt("--run", six.dir.display())
        .opt("--n", n)
        .opt("--out", out.display());
    let (path, _) = r.step("decode random codes", command, || {
        generate(&six.dir, n, None, seed, Some(&out), false, opts).map(|(p, _)| p)
    })?;
    r.picture(path, "Latent 6: 20 random codes drawn from the spread of the training images' codes, decoded (each caption is the code).");
    let out = r.out.join("centroids.png");
    let sigmas = [0.0, 2.5, 5.0, 7.5, 10.0];
    let command = CommandLine::new("generate")
        .opt("--run", six.dir.display())
        .flag("--centroids")
        .list("--sigmas", &sigmas)
        .opt("--out", out.display());
    let (path, _) = r.step("decode class centroids with noise", command, || {
        centroids(&six.dir, &sigmas, seed, Some(&out), false, opts).map(|(p, _)| p)
    })?;
    r.picture(path, "Latent 6: each class's mean code (columns) decoded with Gaussian noise of growing σ added to it (rows: σ = 0, 2.5, 5, 7.5, 10).");

    // The 2-D manifold of the autoencoder beside a VAE's.
    let grid = 15;
    let stem = r.out.join("manifold-ae");
    let command = CommandLine::new("manifold")
        .opt("--run", two.dir.display())
        .opt("--grid", grid)
        .opt("--out", stem.display());
    let ((picture, scatter), _) =
        r.step("the latent-2 autoencoder's code plane", command, || {
            manifold(&two.dir, grid, Some(&stem), false, opts)
        })?;
    r.picture(picture, "The latent-2 autoencoder: a 15×15 grid of codes over the plane its test codes cover, decoded.");
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
    let command = CommandLine::new("manifold")
        .opt("--run", vae.dir.display())
        .opt("--grid", grid)
        .opt("--out", stem.display());
    let ((picture, scatter), _) = r.step("the VAE's code plane", command, || {
        manifold(&vae.dir, grid, Some(&stem), false, opts)
    })?;
    r.picture(picture, "The latent-2 VAE: a 15×15 grid of codes over the prior's central region, decoded. Compare how evenly it fills the plane with the autoencoder's.");
    r.picture(
        scatter,
        "The latent-2 VAE: test images' codes (means), coloured by class.",
    );
    Ok(())
}
