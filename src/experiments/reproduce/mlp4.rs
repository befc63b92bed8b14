//! The mlp4 report: 784-392-8-392-784, Adam 1e-3 with ReduceLROnPlateau, batch 2048, 50
//! epochs; the loss starts near 0.108 and flattens; reconstructions, denoising at noise factor
//! 0.2, interpolation strips of 8 steps.

use super::{recipe, CommandLine, Reported, Reproduction};
use crate::error::Result;
use crate::experiments::generate::interpolate;
use crate::experiments::RunOptions;
use crate::train::observe::Observer;

/// The loss the report's curve starts from.
pub const FIRST_EPOCH_LOSS: Reported = Reported {
    value: 0.108,
    place: "the report's loss curve: \"the loss starts near 0.108 and flattens\"",
    what: "training loss (MSE per pixel) over the first epoch: 27 steps of 2048 of 54,000 images",
};

/// Every figure the report gives that this protocol measures.
pub const REPORTED: &[Reported] = &[FIRST_EPOCH_LOSS];

/// Steps of the report's first epoch: 54,000 training images in batches of 2048.
const REPORT_FIRST_EPOCH_STEPS: usize = 27;

/// Runs the protocol into `r`.
///
/// # Errors
/// Anything a step's command would refuse.
pub fn run(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
    let quick = r.quick;
    let cfg = recipe("mlp4", 50, quick)?;
    let (run, step) = r.train("mlp4", "mlp4", cfg.clone(), opts, obs)?;
    if let Some(first) = run.history.first() {
        r.figure(
            "mlp4: training loss of the first epoch (the report: \"starts near 0.108\")",
            Some(FIRST_EPOCH_LOSS.value),
            first.train_loss,
            step,
        );
    }
    // With fewer training images an epoch has fewer steps than the report's; the epoch in
    // which its first epoch's last step falls is the fair comparison.
    let per_epoch = run.train_images.div_ceil(cfg.train.batch_size).max(1);
    let epoch = REPORT_FIRST_EPOCH_STEPS.div_ceil(per_epoch);
    if per_epoch < REPORT_FIRST_EPOCH_STEPS {
        if let Some(m) = run.history.get(epoch - 1) {
            r.figure(
                format!("mlp4: training loss of epoch {epoch}, which holds step {REPORT_FIRST_EPOCH_STEPS} (the full set's first epoch ends there; {per_epoch} steps per epoch here)"),
                Some(FIRST_EPOCH_LOSS.value),
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

    let steps = 8;
    for (from, to) in [
        ("class:1", "class:7"),
        ("class:3", "class:8"),
        ("class:4", "class:9"),
    ] {
        let name = format!("interpolate-{}-{}.png", &from[6..], &to[6..]);
        let out = run.dir.join(&name);
        let command = CommandLine::new("interpolate")
            .opt("--run", run.dir.display())
            .opt("--from", from)
            .opt("--to", to)
            .opt("--steps", steps)
            .opt("--out", out.display());
        let (path, _) = r.step(format!("interpolate {from} → {to}"), command, || {
            interpolate(&run.dir, from, to, steps, Some(&out), false, opts).map(|(p, _)| p)
        })?;
        r.picture(path, format!("mlp4: decoding {steps} evenly spaced codes on the straight line between the codes of the first test image of {from} and of {to} (ends: the two reconstructions)."));
    }
    Ok(())
}
