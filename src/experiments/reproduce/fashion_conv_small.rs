//! The fashion-conv-small report: a random search (30 trials × 7 epochs), then conv-small
//! (latent 20, batch 128, lr 2e-3) trained longer; PCA and t-SNE pictures of its codes; a
//! denoising model (noise 0.3, first linear layer 128, batch norm); a VAE after 20 epochs; a
//! Linear(20,128) ReLU Linear(128,10) classifier on the codes for 20 epochs and its confusion
//! matrix.

use super::{recipe, CommandLine, Reported, Reproduction};
use crate::embed::tsne::TsneSettings;
use crate::error::Result;
use crate::experiments::classify::{Backbone, ClassifySpec};
use crate::experiments::generate::generate;
use crate::experiments::latent::{latent, MapSpec, Projection};
use crate::experiments::search::search;
use crate::experiments::shards::Shard;
use crate::experiments::RunOptions;
use crate::names::Named;
use crate::train::observe::Observer;
use crate::train::{Overrides, RunConfig};
use kernels::elementwise::Activation;

/// The report's headline: what its encoder's codes are worth to a classifier.
pub const TRANSFER_ACCURACY: Reported = Reported {
    value: 88.8,
    place: "the report's transfer-learning result",
    what: "test accuracy (%) of Linear(20,128) ReLU Linear(128,10) on the autoencoder's codes, 20 epochs",
};

/// Every figure the report gives that this protocol measures.
pub const REPORTED: &[Reported] = &[TRANSFER_ACCURACY];

/// Runs the protocol into `r`.
///
/// # Errors
/// Anything a step's command would refuse.
pub fn run(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
    let quick = r.quick;
    let fashion = |mut cfg: RunConfig| {
        cfg.dataset = "fashion-mnist".into();
        cfg
    };
    // The search: the preset's model, each trial's settings drawn at random.
    let (trials, trial_epochs, seed) = if quick { (3, 1, 0) } else { (30, 7, 0) };
    let given = Overrides {
        dataset: Some("fashion-mnist".into()),
        epochs: Some(trial_epochs),
        max_samples: quick.then_some(3000),
        snapshot_epochs: Some(Vec::new()),
        ..Overrides::default()
    };
    let mut base = RunConfig::preset("conv-small")?;
    given.apply(&mut base)?;
    let search_dir = r.out.join("search");
    let command = CommandLine::new("search")
        .opt("--preset", &base.preset)
        .opt_some("--dataset", given.dataset.as_ref())
        .opt_some("--epochs", given.epochs)
        .opt_some("--max-samples", given.max_samples)
        .opt("--trials", trials)
        .opt("--out", search_dir.display());
    let (found, step) = r.step(
        format!("random search, {trials} trials × {trial_epochs} epochs"),
        command,
        || search(&base, trials, seed, Shard::WHOLE, &search_dir, opts, obs),
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
    for method in [Projection::Pca, Projection::Tsne] {
        let n = if quick { 500 } else { 2000 };
        let out = r.out.join(format!("latent-{}.png", method.name()));
        let command = CommandLine::new("latent")
            .opt("--run", main.dir.display())
            .opt("--method", method)
            .opt("--n", n)
            .opt("--out", out.display());
        let settings = TsneSettings::default();
        let (l, step) = r.step(
            format!("codes in 2-D by {}", method.name()),
            command,
            || {
                latent(
                    &main.dir,
                    &MapSpec {
                        method,
                        n,
                        tsne: settings,
                    },
                    Some(&out),
                    false,
                    opts,
                    &mut crate::train::observe::Silent,
                )
            },
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
    let n = 20;
    let out = r.out.join("vae-generated.png");
    let command = CommandLine::new("generate")
        .opt("--run", vae.dir.display())
        .opt("--n", n)
        .opt("--out", out.display());
    let (path, _) = r.step("decode codes drawn from the prior", command, || {
        generate(&vae.dir, n, None, 0, Some(&out), false, opts).map(|(p, _)| p)
    })?;
    r.picture(
        path,
        "The VAE: 20 codes drawn from its prior N(0, I), decoded.",
    );

    let spec = ClassifySpec {
        hidden: vec![128],
        activation: Activation::Relu,
        epochs: if quick { 2 } else { 20 },
        batch_size: 128,
        lr: 1e-3,
        seed: 0,
        early_stopping: None,
    };
    let out = r.out.join("classifier");
    let source = Backbone::Frozen(main.dir.clone());
    let (c, step) = r.classifier(
        "classifier on the frozen codes",
        &source,
        &spec,
        &out,
        (opts, obs),
    )?;
    r.figure(
        "transfer: test accuracy of Linear(20,128) ReLU Linear(128,10) on the frozen codes (%)",
        Some(TRANSFER_ACCURACY.value),
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
    let source = Backbone::Finetune(main.dir.clone());
    let (c, step) = r.classifier(
        "classifier with the encoder fine-tuned",
        &source,
        &spec,
        &out,
        (opts, obs),
    )?;
    r.figure(
        "transfer: test accuracy, the same head with the encoder fine-tuned (%)",
        Some(TRANSFER_ACCURACY.value),
        100.0 * c.test_accuracy,
        step,
    );
    r.notes.push("The report does not say whether the encoder was frozen while its classifier trained, so both are measured: the frozen codes, and the encoder trained further together with the head.".into());
    Ok(())
}
