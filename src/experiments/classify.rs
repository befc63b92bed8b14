//! `handgrad classify`: what a code is worth for recognising classes.
//!
//! An autoencoder is trained without labels; if its code has kept what matters about an
//! image, a small classifier on top of it should learn the classes from few examples. Four
//! ways to feed the classifier (see [`crate::models::classifier`]):
//!
//! | source | what the classifier reads | what trains |
//! |---|---|---|
//! | [`Backbone::Frozen`] | a trained encoder's codes, computed once | the head |
//! | [`Backbone::Finetune`] | images, through the trained encoder | encoder and head |
//! | [`Backbone::Scratch`] | images, through the same encoder freshly initialised | encoder and head |
//! | [`Backbone::Pca`] | the images' first k principal components | the head |
//!
//! Comparing fine-tuning with training from scratch measures what pretraining gave; comparing
//! frozen codes with PCA features of the same size measures what the nonlinear code adds.

use super::verdict::{self, Training};
use super::{load_data, RunOptions};
use crate::data::batches::{split, Features, Samples, SplitSpec};
use crate::data::mnist::{Dataset, DatasetName, ImageSet};
use crate::embed::pca::Pca;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::fs::{claim, Replace, Target};
use crate::machine::{human_bytes, human_count, usable_memory};
use crate::models::{infer, Autoencoder, Classifier};
use crate::train::config::{OptimizerName, TrainSpec};
use crate::train::fit::{EpochMetrics, Hooks, Trainer};
use crate::train::observe::Observer;
use crate::train::run_dir::load_run;
use crate::train::LossName;
use crate::viz::chart::{confusion_matrix, save_stacked, LineChart, TRAIN, VALIDATION};
use kernels::elementwise::Activation;
use ndarray::Dimension;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// What the classifier is built on, its *backbone* (the word transfer learning uses for the
/// part below the head): a run's encoder, frozen, fine-tuned or retrained from scratch, or a
/// fixed PCA projection of the images.
#[derive(Clone, Debug, PartialEq)]
pub enum Backbone {
    /// A trained run's encoder, frozen: its codes are the features.
    Frozen(PathBuf),
    /// A trained run's encoder, trained further with the head.
    Finetune(PathBuf),
    /// A run's encoder architecture, freshly initialised and trained with the head.
    Scratch(PathBuf),
    /// The first k principal components of the training images, on a dataset.
    Pca {
        /// Components.
        k: usize,
        /// mnist, fashion-mnist or a folder.
        dataset: String,
        /// Which images.
        split: SplitSpec,
    },
}

impl Backbone {
    /// Parses `--features`: `pca:K` or `run:R` (a frozen run).
    ///
    /// # Errors
    /// [`Error::Config`] for anything else.
    pub fn parse_features(text: &str, dataset: &str, split: SplitSpec) -> Result<Self> {
        if let Some(k) = text.strip_prefix("pca:") {
            let k = k
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| {
                    Error::config(
                        "features",
                        format!("{text:?}: pca:K takes a whole number K ≥ 1"),
                    )
                })?;
            return Ok(Backbone::Pca {
                k,
                dataset: dataset.to_string(),
                split,
            });
        }
        if let Some(run) = text.strip_prefix("run:") {
            return Ok(Backbone::Frozen(PathBuf::from(run)));
        }
        Err(Error::config(
            "features",
            format!("{text:?} is neither pca:K nor run:FOLDER"),
        ))
    }

    /// "frozen encoder of runs/x", "PCA, 64 components", for people.
    pub fn describe(&self) -> String {
        match self {
            Backbone::Frozen(r) => format!("the frozen encoder of {}", r.display()),
            Backbone::Finetune(r) => format!("the encoder of {}, fine-tuned", r.display()),
            Backbone::Scratch(r) => format!(
                "the encoder architecture of {}, trained from scratch",
                r.display()
            ),
            Backbone::Pca { k, dataset, .. } => format!("{k} principal components of {dataset}"),
        }
    }
}

/// How the classifier is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifySpec {
    /// Hidden layer sizes of the head.
    pub hidden: Vec<usize>,
    /// The activation between them.
    pub activation: Activation,
    /// Epochs, batch size, learning rate (Adam), seed, early stopping.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seed of the head's initialisation and the batch order.
    pub seed: u64,
    /// Stop after this many epochs without validation improvement.
    pub early_stopping: Option<usize>,
}

impl ClassifySpec {
    fn train_spec(&self) -> TrainSpec {
        TrainSpec {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: OptimizerName::Adam,
            momentum: 0.0,
            weight_decay: 0.0,
            // The classifier's loss is its own (cross-entropy); this field is the
            // autoencoders' and unused here.
            loss: LossName::Mse,
            seed: self.seed,
            early_stopping: self.early_stopping,
            plateau: None,
            schedule: None,
            snapshot_epochs: Vec::new(),
            corrupt: None,
            beta: 1.0,
        }
    }
}

/// What [`classify`] found.
#[derive(Clone, Debug)]
pub struct ClassifyReport {
    /// The output folder.
    pub out: PathBuf,
    /// Accuracy on the test images, in [0, 1].
    pub test_accuracy: f64,
    /// Test images.
    pub test_images: usize,
    /// `counts[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// The class names, in the classifier's order.
    pub class_names: Vec<String>,
    /// Per epoch: losses and accuracies.
    pub history: Vec<EpochMetrics>,
    /// What [`verdict::classifier`] found, if the classifier is near chance.
    pub verdict: Option<String>,
}

/// The classes present, sorted, and each label's index among them (255 for absent ones).
fn class_map(classes: &[u8], labels: &[u8]) -> (Vec<u8>, [u8; 256]) {
    let mut present: Vec<u8> = if classes.is_empty() {
        labels.to_vec()
    } else {
        classes.to_vec()
    };
    present.sort_unstable();
    present.dedup();
    let mut map = [u8::MAX; 256];
    for (i, &c) in present.iter().enumerate() {
        map[c as usize] = i as u8;
    }
    (present, map)
}

fn relabel(labels: &[u8], map: &[u8; 256]) -> Vec<u8> {
    labels.iter().map(|&l| map[l as usize]).collect()
}

/// The three sets as the classifier reads them.
struct Sets {
    train: Box<dyn Samples>,
    val: Box<dyn Samples>,
    test: Box<dyn Samples>,
}

fn image_sets(splits: [&ImageSet; 3], map: &[u8; 256]) -> Sets {
    let re = |s: &ImageSet| -> Box<dyn Samples> {
        Box::new(ImageSet {
            labels: relabel(&s.labels, map),
            ..s.clone()
        })
    };
    Sets {
        train: re(splits[0]),
        val: re(splits[1]),
        test: re(splits[2]),
    }
}

fn feature_sets(
    splits: [&ImageSet; 3],
    map: &[u8; 256],
    dim: usize,
    mut features: impl FnMut(&ImageSet) -> Result<Vec<f32>>,
) -> Result<Sets> {
    let mut make = |s: &ImageSet| -> Result<Box<dyn Samples>> {
        Ok(Box::new(Features {
            values: features(s)?,
            dim,
            labels: relabel(&s.labels, map),
        }))
    };
    Ok(Sets {
        train: make(splits[0])?,
        val: make(splits[1])?,
        test: make(splits[2])?,
    })
}

/// Prints one line per epoch.
struct EpochLines<'a> {
    obs: &'a mut dyn Observer,
}

impl Hooks<Classifier> for EpochLines<'_> {
    fn on_epoch(&mut self, t: &mut Trainer<Classifier>, m: &EpochMetrics) -> Result<()> {
        let acc = |v: &[f64]| v.first().map_or(f64::NAN, |a| 100.0 * a);
        self.obs.info(&format!(
            "epoch {:>3}/{}  loss {:.4} / {:.4}  accuracy {:.2} % / {:.2} % (train / validation)  {:.1}s",
            m.epoch,
            t.spec.epochs,
            m.train_loss,
            m.val_loss,
            acc(&m.train_terms),
            acc(&m.val_terms),
            m.seconds
        ));
        Ok(())
    }
}

/// Refuses a head too large for memory before it is allocated: its weights four times over
/// (values, gradients and Adam's two moments) and each layer's outputs for a batch, forward
/// and backward.
fn check_head_fits(inputs: usize, hidden: &[usize], classes: usize, batch: usize) -> Result<()> {
    let widths: Vec<u128> = std::iter::once(inputs)
        .chain(hidden.iter().copied())
        .chain([classes])
        .map(|w| w as u128)
        .collect();
    let parameters: u128 = widths
        .windows(2)
        .map(|w| w[0].saturating_mul(w[1]).saturating_add(w[1]))
        .fold(0, u128::saturating_add);
    let outputs = widths.iter().fold(0u128, |n, w| n.saturating_add(*w));
    let need = parameters
        .saturating_mul(4 * 4)
        .saturating_add(outputs.saturating_mul(batch as u128).saturating_mul(4 * 2));
    let have = usable_memory();
    if need <= have {
        return Ok(());
    }
    Err(Error::config(
        "hidden",
        format!(
            "the classifier's head ({} parameters) needs about {} to train at batch size {batch}, and this machine has {} available",
            human_count(parameters),
            human_bytes(need),
            human_bytes(have)
        ),
    ))
}

/// Trains a classifier on `source` and writes into `out` (which must not exist or be empty):
/// `metrics.csv`, `curves.png` (loss and accuracy per epoch) and `confusion.png` (the test
/// set's confusion matrix).
///
/// # Errors
/// As [`load_run`] and the dataset functions; [`Error::Config`] for an occupied `out`, bad
/// sizes, or fewer than two classes.
pub fn classify(
    source: &Backbone,
    spec: &ClassifySpec,
    out: &Path,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<ClassifyReport> {
    claim(
        out,
        Target::Folder,
        "output folder",
        Replace::Never("choose another --out"),
    )?;
    if spec.epochs == 0 || spec.batch_size == 0 || spec.lr.is_nan() || spec.lr <= 0.0 {
        return Err(Error::config(
            "training",
            "epochs, batch size and learning rate must be positive",
        ));
    }
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let (dataset_name, splits, run) = match source {
        Backbone::Frozen(dir) | Backbone::Finetune(dir) | Backbone::Scratch(dir) => {
            let (cfg, model) = load_run(dir)?;
            let (_, splits) = load_data(&cfg, &opts.lookup, obs)?;
            (cfg.dataset.clone(), splits, Some((cfg, model)))
        }
        Backbone::Pca {
            dataset, split: s, ..
        } => {
            s.validate()?;
            let ds = Dataset::find(dataset, &opts.lookup)?;
            obs.info(&format!("data: {}", ds.describe()));
            (dataset.clone(), split(&ds, s)?, None)
        }
    };
    let three = [&splits.train, &splits.val, &splits.test];
    let wanted = match source {
        Backbone::Pca { split, .. } => split.classes.clone(),
        _ => run
            .as_ref()
            .map(|r| r.0.split.classes.clone())
            .unwrap_or_default(),
    };
    let (classes, map) = class_map(&wanted, &splits.train.labels);
    let names = DatasetName::parse(&dataset_name).map(DatasetName::class_names);
    let class_names: Vec<String> = classes
        .iter()
        .map(|&c| names.map_or_else(|| c.to_string(), |n| n[c as usize].to_string()))
        .collect();
    // What the classifier reads, and the encoder in front of its head (if it trains one).
    type Encoder = Option<(crate::nn::Sequential, usize, bool)>;
    let (sets, encoder, inputs): (Sets, Encoder, usize) = match (source, run) {
        (Backbone::Pca { k, .. }, _) => {
            let dim = splits.train.rows * splits.train.cols;
            if *k > dim {
                return Err(Error::config(
                    "features",
                    format!("pca:{k}: the images have only {dim} pixels"),
                ));
            }
            obs.info(&format!("fitting {k} principal components"));
            let pca = Pca::fit(&splits.train.first_pixels(usize::MAX), dim, *k)?;
            let sets = feature_sets(three, &map, *k, |s| {
                Ok(pca.transform(&s.first_pixels(usize::MAX), *k))
            })?;
            (sets, None, *k)
        }
        (Backbone::Frozen(_), Some((_, mut ae))) => {
            let latent = ae.latent();
            let sets = feature_sets(three, &map, latent, |s| {
                Ok(ae.codes(&s.first_pixels(usize::MAX))?.0)
            })?;
            (sets, None, latent)
        }
        (Backbone::Finetune(_) | Backbone::Scratch(_), Some((cfg, trained))) => {
            let ae = if matches!(source, Backbone::Scratch(_)) {
                Autoencoder::new(&cfg.model, &mut rng)?
            } else {
                trained
            };
            let (latent, variational) = (ae.latent(), ae.is_variational());
            (
                image_sets(three, &map),
                Some((ae.encoder, latent, variational)),
                latent,
            )
        }
        _ => unreachable!("a run source always comes with its run"),
    };
    check_head_fits(inputs, &spec.hidden, classes.len(), spec.batch_size)?;
    let model = Classifier::new(
        encoder,
        inputs,
        &spec.hidden,
        spec.activation,
        classes.len(),
        &mut rng,
    )?;
    obs.info(&format!(
        "classifying {} classes from {}: {} training, {} validation, {} test samples",
        classes.len(),
        source.describe(),
        human_count(sets.train.len() as u128),
        human_count(sets.val.len() as u128),
        human_count(sets.test.len() as u128)
    ));
    let mut trainer = Trainer::new(model, spec.train_spec())?;
    trainer.fit(
        sets.train.as_ref(),
        sets.val.as_ref(),
        &mut EpochLines { obs },
    )?;
    let (test_accuracy, confusion) = test(&mut trainer.model, sets.test.as_ref())?;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let history = trainer.state.history.clone();
    write_outputs(
        out,
        source,
        &dataset_name,
        &history,
        &class_names,
        &confusion,
        test_accuracy,
    )?;
    let training = Training {
        images: sets.train.len(),
        batch_size: spec.batch_size,
        lr: f64::from(spec.lr),
        val_losses: history.iter().map(|m| m.val_loss).collect(),
    };
    // A frozen or fine-tuned encoder brings its run's verdict (measured only when needed).
    let encoder = || match source {
        Backbone::Frozen(dir) | Backbone::Finetune(dir) => {
            super::eval::eval_run(dir, None, &[], opts)
                .ok()
                .and_then(|r| r.verdict)
        }
        _ => None,
    };
    let verdict = verdict::classifier(test_accuracy, class_names.len(), &training, encoder);
    Ok(ClassifyReport {
        out: out.to_path_buf(),
        test_accuracy,
        test_images: sets.test.len(),
        confusion,
        class_names,
        history,
        verdict,
    })
}

/// Accuracy and confusion counts (true × predicted) on `set`.
fn test(model: &mut Classifier, set: &dyn Samples) -> Result<(f64, Vec<Vec<usize>>)> {
    let k = model.classes();
    let shape = set.batch_dims(1);
    let mut data = vec![0.0; set.len() * shape.size()];
    set.fill_batch(&(0..set.len()).collect::<Vec<_>>(), &mut data);
    let logits = infer(model, &data, &shape.slice()[1..], |m, g, x| {
        Ok(vec![crate::nn::Module::forward(m, g, x)?])
    })?
    .pop()
    .unwrap_or_default();
    let predicted = Classifier::argmax(&logits, k);
    let mut confusion = vec![vec![0usize; k]; k];
    for (&p, &t) in predicted.iter().zip(set.labels()) {
        confusion[t as usize][p] += 1;
    }
    let right: usize = (0..k).map(|c| confusion[c][c]).sum();
    Ok((right as f64 / set.len().max(1) as f64, confusion))
}

fn write_outputs(
    out: &Path,
    source: &Backbone,
    dataset: &str,
    history: &[EpochMetrics],
    class_names: &[String],
    confusion: &[Vec<usize>],
    accuracy: f64,
) -> Result<()> {
    let mut csv = String::from("epoch,train_loss,val_loss,train_accuracy,val_accuracy,seconds\n");
    for m in history {
        let acc = |v: &[f64]| v.first().copied().unwrap_or(f64::NAN);
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            m.epoch,
            m.train_loss,
            m.val_loss,
            acc(&m.train_terms),
            acc(&m.val_terms),
            m.seconds
        ));
    }
    write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
    let series = |f: &dyn Fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|m| (m.epoch as f64, f(m))).collect()
    };
    let first = |v: &[f64]| v.first().map_or(f64::NAN, |a| 100.0 * a);
    let title = format!("classifier on {}", source.describe());
    save_stacked(
        &out.join("curves.png"),
        &[
            LineChart::new(
                format!("{title}: loss"),
                "epoch",
                "cross-entropy (mean per sample)",
            )
            .counting_x()
            .line("training", TRAIN, series(&|m| m.train_loss))
            .line("validation", VALIDATION, series(&|m| m.val_loss)),
            LineChart::new(format!("{title}: accuracy"), "epoch", "accuracy (%)")
                .counting_x()
                .line("training", TRAIN, series(&|m| first(&m.train_terms)))
                .line("validation", VALIDATION, series(&|m| first(&m.val_terms))),
        ],
    )?;
    let n: usize = confusion.iter().flatten().sum();
    let names: Vec<&str> = class_names.iter().map(String::as_str).collect();
    confusion_matrix(
        &out.join("confusion.png"),
        &format!("{dataset}: test confusion matrix, accuracy {:.2} %", 100.0 * accuracy),
        &[
            format!("Classifier on {}; {} test images.", source.describe(), human_count(n as u128)),
            "Row: the true class; column: the predicted class; each cell: how many images, shaded by its share of the row.".to_string(),
        ],
        &names,
        confusion,
    )?;
    Ok(())
}
