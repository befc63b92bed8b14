//! The digits-01247 report: digits {0, 1, 2, 4, 7} split 60/20/20; PCA with k = 32, 64, 128,
//! 256; one- and three-hidden-layer (400-K-400) sigmoid autoencoders for the same K; denoising
//! at 20 % and 40 %; classifiers 512-256-256, 512-512-512 and 512-256-128-64 on every feature
//! set; the weight tiles of the 256-unit autoencoder.

use super::{CommandLine, Reported, Reproduction};
use crate::data::batches::{Amount, SplitSpec};
use crate::error::Result;
use crate::experiments::classify::{Backbone, ClassifySpec};
use crate::experiments::latent::weights;
use crate::experiments::pca::pca_baseline;
use crate::experiments::RunOptions;
use crate::train::observe::Observer;
use crate::train::RunConfig;
use kernels::elementwise::Activation;

/// Where the report ranks its classifiers.
const CLASSIFIERS: &str = "the report's table of classifier accuracies on each feature set";

/// The report's best classifier.
pub const BEST_CLASSIFIER: Reported = Reported {
    value: 98.74,
    place: CLASSIFIERS,
    what: "test accuracy (%) of 512-256-256 on the one-hidden-layer autoencoder's codes, K = 256",
};

/// The report's classifiers on PCA features: the lowest of its range.
pub const PCA_CLASSIFIERS_LOW: Reported = Reported {
    value: 97.97,
    place: CLASSIFIERS,
    what: "test accuracy (%) on PCA features, the lowest of the report's cells",
};

/// The report's classifiers on PCA features: the highest of its range.
pub const PCA_CLASSIFIERS_HIGH: Reported = Reported {
    value: 98.42,
    place: CLASSIFIERS,
    what: "test accuracy (%) on PCA features, the highest of the report's cells",
};

/// Every figure the report gives that this protocol names.
pub const REPORTED: &[Reported] = &[BEST_CLASSIFIER, PCA_CLASSIFIERS_LOW, PCA_CLASSIFIERS_HIGH];

/// The report's digits.
const DIGITS: [u8; 5] = [0, 1, 2, 4, 7];

/// A sigmoid autoencoder preset (`mlp1-K`, `mlp3-K`) on the digits split: `epochs` with early
/// stopping (patience 5), or the `--quick` cut.
fn recipe(preset: &str, split: &SplitSpec, epochs: usize, quick: bool) -> Result<RunConfig> {
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

/// Runs the protocol into `r`.
///
/// # Errors
/// Anything a step's command would refuse.
pub fn run(r: &mut Reproduction, opts: &RunOptions, obs: &mut dyn Observer) -> Result<()> {
    let quick = r.quick;
    // 60 / 20 / 20: the test set is a fifth (carved from the shipped set, or the full set's own
    // test files), validation a quarter of the rest.
    let split = SplitSpec {
        validation: Amount::Fraction(0.25),
        classes: DIGITS.to_vec(),
        max_samples: quick.then_some(1500),
        ..SplitSpec::default()
    };
    r.notes.push("The report splits each digit 2,277 / 759 / 759 (60 / 20 / 20). We keep those proportions: the test set is a fifth of the images (the full set's own test files when present), the validation set a quarter of the rest.".into());
    let ks: Vec<usize> = if quick {
        vec![32]
    } else {
        vec![32, 64, 128, 256]
    };
    let dataset = "mnist";
    let shown = 10;
    let out = r.out.join("pca.png");
    // PCA has nothing to tune: no validation set.
    let pca_split = SplitSpec {
        validation: Amount::Count(0),
        ..split.clone()
    };
    let command = CommandLine::new("pca")
        .opt("--dataset", dataset)
        .list("--classes", &pca_split.classes)
        .opt_some("--max-samples", pca_split.max_samples)
        .list("--components", &ks)
        .opt("--out", out.display());
    let (p, step) = r.step("PCA baseline", command, || {
        pca_baseline(
            dataset,
            &ks,
            &pca_split,
            shown,
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
    let mut features: Vec<(String, Backbone)> = Vec::new();
    for &k in &ks {
        features.push((
            format!("PCA-{k}"),
            Backbone::Pca {
                k,
                dataset: dataset.into(),
                split: split.clone(),
            },
        ));
        for preset in ["mlp1", "mlp3"] {
            let name = format!("{preset}-{k}");
            let cfg = recipe(&name, &split, epochs, quick)?;
            let (run, _) = r.train(&name, &format!("{name} autoencoder"), cfg, opts, obs)?;
            features.push((name, Backbone::Frozen(run.dir.clone())));
        }
    }
    let top = *ks.last().unwrap_or(&32);
    let tiles_of = r.out.join(format!("mlp1-{top}"));
    let out = r.out.join("weights.png");
    let command = CommandLine::new("weights")
        .opt("--run", tiles_of.display())
        .opt("--out", out.display());
    let ((path, tiles), _) = r.step("weight tiles", command, || {
        weights(&tiles_of, None, 0, Some(&out), false)
    })?;
    r.picture(path, format!("The {tiles} hidden units of mlp1-{top}: each tile is one unit's weights on the 28×28 pixels, scaled from its own minimum (black) to maximum (white)."));

    for percent in [20, 40] {
        r.denoiser(
            &format!("mlp1-{top}-denoising-{percent}"),
            recipe(&format!("mlp1-{top}"), &split, epochs, quick)?,
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
                activation: Activation::Relu,
                epochs: if quick { 2 } else { 30 },
                batch_size: 64,
                lr: 1e-3,
                seed: 0,
                early_stopping: (!quick).then_some(5),
            };
            let out = r.out.join(format!("classify-{feature}-{head}"));
            let what = format!("classifier {head} on {feature}");
            let (c, step) = r.classifier(what, source, &spec, &out, (opts, obs))?;
            let accuracy = 100.0 * c.test_accuracy;
            let report =
                (feature == "mlp1-256" && head == "512-256-256").then_some(BEST_CLASSIFIER.value);
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
        r.notes.push(format!(
            "Our best classifier: {what}, {accuracy:.2} % test accuracy (the report's best: {:.2} %, 512-256-256 on the one-hidden-layer autoencoder with K = 256; its PCA features gave {:.2}-{:.2} %).",
            BEST_CLASSIFIER.value, PCA_CLASSIFIERS_LOW.value, PCA_CLASSIFIERS_HIGH.value
        ));
    }
    Ok(())
}
