//! Did a run learn anything? A verdict in words, and the likely cause worked out from the run.
//!
//! A loss printed alone does not tell a newcomer that the model they just trained reconstructs
//! grey blobs. Three comparisons do, each against something that learned nothing:
//! * an autoencoder's test loss against the [mean image and PCA](super::baselines): a model
//!   whose loss is closer to the mean image's than to PCA's has learned little about its input;
//! * a denoiser's output against its damaged input handed back unchanged (the identity): a
//!   denoiser that does worse than the identity makes its input worse;
//! * a classifier's accuracy against chance (one class in `k` guessed at random).
//!
//! When one of them fails, [`Training::likely_cause`] looks at how the run trained: too few
//! optimiser steps (the usual cause with large batches on the shipped 7,200 training
//! images), a loss still falling when training ended, or a loss that stopped falling early.

use super::baselines::Baselines;
use crate::machine::human_count;
use crate::train::fit::EpochMetrics;
use crate::train::RunConfig;

/// How a run trained: what the likely cause of a poor result is worked out from.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    /// Training images (an epoch is this many divided by the batch size, rounded up, steps).
    pub images: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// The learning rate the run started with.
    pub lr: f64,
    /// Validation loss after each epoch done (NaN where there was no validation set).
    pub val_losses: Vec<f64>,
}

/// Runs with fewer optimiser steps than this in all are told that steps are the likely cause.
pub const FEW_STEPS: usize = 1_000;

/// Steps per epoch the suggested batch size aims at (the course reports had ~105: 54,000
/// images in batches of 512).
const STEPS_PER_EPOCH_AIMED: usize = 100;

impl Training {
    /// How the run with settings `cfg` trained on `images` training images, from its
    /// per-epoch metrics.
    pub fn of_run(cfg: &RunConfig, images: usize, history: &[EpochMetrics]) -> Training {
        Training {
            images,
            batch_size: cfg.train.batch_size,
            lr: f64::from(cfg.train.lr),
            val_losses: history.iter().map(|m| m.val_loss).collect(),
        }
    }

    /// Optimiser steps in one epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.images.div_ceil(self.batch_size.max(1))
    }

    /// The batch size to suggest: the largest power of two that gives an epoch at least
    /// [`STEPS_PER_EPOCH_AIMED`] steps, at least 16 and below the current batch (`None`
    /// when no such batch exists).
    fn smaller_batch(&self) -> Option<usize> {
        let mut b = 16usize;
        while b * 2 * STEPS_PER_EPOCH_AIMED <= self.images {
            b *= 2;
        }
        (b < self.batch_size).then_some(b)
    }

    /// The likely cause of a run that learned little, in one sentence with what to try.
    ///
    /// In order: fewer than [`FEW_STEPS`] optimiser steps in all (with a smaller batch to
    /// try and its steps per epoch), a validation loss still falling by more than 1 % in the
    /// last epoch (more epochs), else a loss that stopped falling (the learning rate).
    pub fn likely_cause(&self) -> String {
        let per_epoch = self.steps_per_epoch();
        let epochs = self.val_losses.len();
        let total = per_epoch * epochs;
        let batch = self.smaller_batch();
        if total < FEW_STEPS {
            let try_this = match batch {
                Some(b) => format!(
                    "try --batch-size {b} ({} steps an epoch) or more epochs",
                    self.images.div_ceil(b)
                ),
                None => "try more epochs".into(),
            };
            return format!(
                "{per_epoch} optimiser steps per epoch ({} training images in batches of {}), {total} in all: {try_this}",
                human_count(self.images as u128),
                self.batch_size
            );
        }
        let last: Vec<f64> = self
            .val_losses
            .iter()
            .rev()
            .take(2)
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if let [now, before] = last[..] {
            if now < 0.99 * before {
                return format!(
                    "the validation loss was still falling in the last epoch ({before:.6} to {now:.6}): try more epochs (--epochs {})",
                    2 * epochs
                );
            }
        }
        format!(
            "the validation loss stopped falling before the end ({epochs} epochs, {total} steps): try another learning rate than {:.1e} (--lr {:.1e} or {:.1e})",
            self.lr,
            self.lr * 3.0,
            self.lr / 3.0
        )
    }
}

/// An autoencoder's verdict from its per-pixel test loss on clean images: `None` when its
/// loss is closer to PCA's than to the mean image's (it learned), else what it learned and
/// why not more.
pub fn reconstruction(test: f64, b: &Baselines, training: &Training) -> Option<String> {
    let unit = b.loss.per_pixel();
    let finding = if !test.is_finite() || test >= b.mean_image {
        format!(
            "This model learned nothing about its input: its test loss ({unit}) {test:.6} is no better than predicting the training set's mean image ({:.6}).",
            b.mean_image
        )
    } else if test > 0.5 * (b.mean_image + b.pca) {
        format!(
            "This model has learned little: its test loss ({unit}) {test:.6} is closer to the mean image's {:.6} than to PCA's {:.6} (k = {}).",
            b.mean_image, b.pca, b.k
        )
    } else {
        return None;
    };
    Some(format!(
        "{finding} Likely cause: {}.",
        training.likely_cause()
    ))
}

/// An autoencoder run's verdict from its per-pixel test losses: `clean`, on clean images,
/// for the [`reconstruction`] verdict and, for a run trained with a
/// corruption, `denoised` = (its output's loss, the identity's) on its own corruption for
/// the [`denoiser`] verdict; `None` when neither finds anything.
pub fn autoencoder(
    cfg: &RunConfig,
    clean: f64,
    denoised: Option<(f64, f64)>,
    b: &Baselines,
    training: &Training,
) -> Option<String> {
    let recon = reconstruction(clean, b, training);
    let denoise = cfg
        .train
        .corrupt
        .as_ref()
        .zip(denoised)
        .and_then(|(c, (model, identity))| {
            denoiser(
                &c.to_string(),
                model,
                identity,
                &cfg.train.loss.per_pixel(),
                training,
            )
        });
    match (recon, denoise) {
        (Some(a), Some(d)) => Some(format!("{a} {d}")),
        (a, d) => a.or(d),
    }
}

/// A denoiser's verdict: `None` when its output from damaged inputs is closer to the clean
/// images than the damaged inputs are, else that it makes them worse, and why.
pub fn denoiser(
    condition: &str,
    model: f64,
    identity: f64,
    unit: &str,
    training: &Training,
) -> Option<String> {
    (!model.is_finite() || model >= identity).then(|| {
        format!(
            "This denoiser makes {condition} inputs worse: its output's loss ({unit}) {model:.6} is above the {identity:.6} of handing the damaged input back unchanged. Likely cause: {}.",
            training.likely_cause()
        )
    })
}

/// Accuracy below which a classifier of `classes` classes is called near chance: chance
/// plus a tenth of the way from chance to 100 % (19 % for ten classes, 55 % for two).
pub fn near_chance(classes: usize) -> f64 {
    let chance = 1.0 / classes.max(1) as f64;
    chance + (1.0 - chance) / 10.0
}

/// A classifier's verdict from its test accuracy in [0, 1]: `None` when it is clearly above
/// chance (see [`near_chance`]). The cause is the verdict of the encoder's own run when it
/// has one (`encoder`: a classifier cannot read what its encoder never learned), else how
/// the head trained.
pub fn classifier(
    accuracy: f64,
    classes: usize,
    training: &Training,
    encoder: impl FnOnce() -> Option<String>,
) -> Option<String> {
    let chance = 1.0 / classes.max(1) as f64;
    if accuracy.is_finite() && accuracy >= near_chance(classes) {
        return None;
    }
    let cause = match encoder() {
        Some(run) => format!("the encoder it reads comes from a run that learned little. {run}"),
        None => format!("{}.", training.likely_cause()),
    };
    Some(format!(
        "This classifier is near chance: {:.2} % on the test images, where guessing one of the {classes} classes at random scores {:.2} %. Likely cause: {cause}",
        100.0 * accuracy,
        100.0 * chance,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::LossName;

    fn baselines() -> Baselines {
        Baselines {
            loss: LossName::Mse,
            k: 6,
            fitted_on: 7200,
            test_images: 2000,
            mean_image: 0.068,
            pca: 0.041,
        }
    }

    fn training(batch_size: usize, val_losses: &[f64]) -> Training {
        Training {
            images: 7200,
            batch_size,
            lr: 1e-3,
            val_losses: val_losses.to_vec(),
        }
    }

    #[test]
    fn a_loss_nearer_the_mean_image_than_pca_is_called_learned_little_with_its_steps() {
        let t = training(512, &[0.08, 0.067, 0.058]);
        let v = reconstruction(0.058, &baselines(), &t).expect("a verdict");
        assert!(v.contains("learned little"), "{v}");
        assert!(v.contains("0.058000") && v.contains("0.068000") && v.contains("0.041000"));
        assert!(
            v.contains("15 optimiser steps per epoch (7,200 training images in batches of 512), 45 in all: try --batch-size 64 (113 steps an epoch)"),
            "{v}"
        );
        let worse = reconstruction(0.09, &baselines(), &t).expect("a verdict");
        assert!(worse.contains("learned nothing"), "{worse}");
        assert!(reconstruction(f64::NAN, &baselines(), &t).is_some());
    }

    #[test]
    fn a_loss_nearer_pca_gets_no_verdict() {
        let t = training(512, &[0.08, 0.067, 0.058]);
        assert_eq!(reconstruction(0.054, &baselines(), &t), None);
        assert_eq!(reconstruction(0.031, &baselines(), &t), None);
    }

    #[test]
    fn the_cause_follows_the_run() {
        // Many steps, still falling: more epochs.
        let falling = training(32, &[0.06, 0.059, 0.058, 0.057, 0.050]);
        assert!(
            falling.likely_cause().contains("still falling")
                && falling.likely_cause().contains("--epochs 10"),
            "{}",
            falling.likely_cause()
        );
        // Many steps, flat: the learning rate.
        let flat = training(32, &[0.06, 0.06, 0.06, 0.06, 0.06]);
        assert!(
            flat.likely_cause().contains("--lr 3.0e-3"),
            "{}",
            flat.likely_cause()
        );
        // Few steps at a batch already small: only more epochs.
        let small = Training {
            images: 500,
            ..training(16, &[0.1])
        };
        assert!(small.likely_cause().ends_with("try more epochs"));
    }

    #[test]
    fn a_denoiser_is_judged_against_the_identity_and_a_classifier_against_chance() {
        let t = training(512, &[0.1, 0.09]);
        assert!(denoiser("gaussian:0.4", 0.09, 0.08, "MSE per pixel", &t).is_some());
        assert_eq!(
            denoiser("gaussian:0.4", 0.04, 0.08, "MSE per pixel", &t),
            None
        );
        assert!((near_chance(10) - 0.19).abs() < 1e-12);
        assert!((near_chance(2) - 0.55).abs() < 1e-12);
        let v = classifier(0.11, 10, &t, || None).expect("near chance");
        assert!(v.contains("11.00 %") && v.contains("10.00 %"), "{v}");
        assert!(v.ends_with("or more epochs."), "{v}");
        let dead = classifier(0.11, 10, &t, || Some("Its verdict.".into())).expect("near chance");
        assert!(dead.ends_with("learned little. Its verdict."), "{dead}");
        assert_eq!(classifier(0.5, 10, &t, || panic!("not asked")), None);
    }
}
