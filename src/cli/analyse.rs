//! `handgrad latent`, `weights`, `pca` and `classify`: what a trained model learned — its
//! codes drawn in 2-D, its weights as pictures, the linear baseline beside it, and what its
//! codes are worth to a classifier.

use super::console::Console;
use super::{DataArgs, PictureArgs};
use clap::Args;
use handgrad::data::batches::SplitSpec;
use handgrad::data::mnist::DatasetName;
use handgrad::embed::tsne::TsneSettings;
use handgrad::experiments::classify::{classify, Backbone, ClassifySpec};
use handgrad::experiments::latent::{latent, weights, MapSpec, Projection};
use handgrad::experiments::pca::{parse_components, pca_baseline};
use handgrad::names::{self, parse_activation};
use handgrad::{Error, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct LatentArgs {
    #[command(flatten)]
    picture: PictureArgs,
    #[arg(long, default_value = "pca", help = format!("How to bring codes down to two numbers: {}", names::list::<Projection>()))]
    method: String,
    /// How many test images' codes to draw (t-SNE: at most 5,000; it takes seconds per thousand).
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// t-SNE's perplexity: the number of neighbours each point's affinities cover.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// t-SNE's gradient steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Seed of t-SNE's starting map.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl LatentArgs {
    /// Draws the codes in 2-D and says how well classes keep apart.
    pub fn run(&self) -> Result<ExitCode> {
        let p = &self.picture;
        let method: Projection = names::parse(&self.method)?;
        let spec = MapSpec {
            method,
            n: self.n,
            tsne: TsneSettings {
                perplexity: self.perplexity,
                steps: self.steps,
                seed: self.seed,
            },
        };
        let r = latent(
            &p.run,
            &spec,
            p.out.as_deref(),
            p.force,
            &p.options(),
            &mut Console::new(false),
        )?;
        println!("wrote {} ({} codes)", r.out.display(), r.points);
        if let Some(e) = r.explained {
            println!(
                "the two axes hold {:.1} % of the codes' variance",
                100.0 * e
            );
        }
        println!(
            "{:.1} % of the points' nearest neighbour on the picture is of the same class",
            100.0 * r.purity
        );
        super::refresh_page(&p.run, &[&r.out]);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct WeightsArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// The layer, by its parameter name without ".weight" (e.g. encoder.0) [default: the encoder's first layer with weights].
    #[arg(long)]
    layer: Option<String>,
    /// The first unit to show (units are numbered from 0; a picture shows up to 256): page
    /// through a layer of more units with --first 256, 512, ….
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Where to write the PNG [default: <run>/weights-<layer>.png].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

impl WeightsArgs {
    /// Draws a layer's weights as tiles.
    pub fn run(&self) -> Result<ExitCode> {
        let (out, tiles) = weights(
            &self.run,
            self.layer.as_deref(),
            self.first,
            self.out.as_deref(),
            self.force,
        )?;
        println!("wrote {} ({tiles} tiles)", out.display());
        super::refresh_page(&self.run, &[&out]);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct PcaArgs {
    /// mnist, fashion-mnist, or a folder with IDX files.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Numbers of components to compare, comma-separated.
    #[arg(long, default_value = "32,64,128,256")]
    components: String,
    /// Keep only these classes, e.g. 0,1,2,4,7 [default: all].
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// Fit on at most this many training images [default: all].
    #[arg(long)]
    max_samples: Option<usize>,
    /// Test images shown (one per class first), 1 to 100.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Where to write the PNG [default: pca-<dataset>.png].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

impl PcaArgs {
    /// Fits PCA and prints each k's test error.
    pub fn run(&self) -> Result<ExitCode> {
        let ks = parse_components(&self.components)?;
        // The split a training run makes (its validation images unused here: PCA has
        // nothing to tune), so that k = a code's size gives the baseline `train` prints.
        let spec = SplitSpec {
            classes: self.classes.clone().unwrap_or_default(),
            max_samples: self.max_samples,
            ..SplitSpec::default()
        };
        let r = pca_baseline(
            &self.dataset,
            &ks,
            &spec,
            self.count,
            self.out.as_deref(),
            self.force,
            &self.data.lookup(),
        )?;
        println!(
            "PCA fitted on {} training images, measured on {} test images",
            r.train_images, r.test_images
        );
        println!(
            "{:>6} {:>20} {:>16}",
            "k", "variance explained", "test MSE/pixel"
        );
        for row in &r.rows {
            println!(
                "{:>6} {:>19.1}% {:>16.6}",
                row.k,
                100.0 * row.explained,
                row.test_mse
            );
        }
        println!("wrote {}", r.out.display());
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// A trained run whose encoder the classifier starts from.
    #[arg(long, conflicts_with = "features")]
    run: Option<PathBuf>,
    /// Keep the run's encoder fixed and train only the head on its codes (the default with --run).
    #[arg(long, requires = "run", conflicts_with_all = ["finetune", "from_scratch"])]
    freeze: bool,
    /// Train the run's encoder further together with the head.
    #[arg(long, requires = "run", conflicts_with = "from_scratch")]
    finetune: bool,
    /// Train the run's encoder architecture from a fresh initialisation: the control that shows what pretraining gave.
    #[arg(long, requires = "run")]
    from_scratch: bool,
    /// Instead of --run: pca:K (the images' first K principal components) or run:FOLDER (a frozen run).
    #[arg(long)]
    features: Option<String>,
    /// With --features pca:K: mnist, fashion-mnist, or a folder with IDX files [default: mnist].
    #[arg(long)]
    dataset: Option<String>,
    /// With --features pca:K: keep only these classes, e.g. 0,1,2,4,7 (relabelled 0…k−1 inside) [default: all].
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// With --features pca:K: use at most this many training and validation images [default: all].
    #[arg(long)]
    max_samples: Option<usize>,
    /// The head's hidden layer sizes, comma-separated ("none" for a linear classifier).
    #[arg(long, visible_alias = "mlp", default_value = "128")]
    hidden: String,
    /// The activation between the head's layers: relu, leaky_relu, selu, sigmoid, tanh.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Passes over the training set.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seed of the head's initialisation and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this many epochs without validation improvement, keeping the best weights [default: off].
    #[arg(long)]
    early_stopping: Option<usize>,
    /// The output folder [default: <run>/classify-<mode>, or runs/classify-pca<K>-<dataset>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the result.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    data: DataArgs,
}

impl ClassifyArgs {
    /// What to train: the backbone, how, and where to write. `--dataset`, `--classes` and
    /// `--max-samples` choose the images PCA features are taken from; a run brings its own
    /// images and split, so with a run they are refused rather than ignored.
    fn plan(&self) -> Result<(Backbone, ClassifySpec, PathBuf)> {
        let split = SplitSpec {
            classes: self.classes.clone().unwrap_or_default(),
            max_samples: self.max_samples,
            ..SplitSpec::default()
        };
        let dataset = self
            .dataset
            .as_deref()
            .unwrap_or(DatasetName::Mnist.as_str());
        let (source, default_out) = match (&self.run, &self.features) {
            (Some(run), None) => {
                let (source, mode) = if self.finetune {
                    (Backbone::Finetune(run.clone()), "finetune")
                } else if self.from_scratch {
                    (Backbone::Scratch(run.clone()), "from-scratch")
                } else {
                    (Backbone::Frozen(run.clone()), "frozen")
                };
                (source, run.join(format!("classify-{mode}")))
            }
            (None, Some(f)) => {
                let source = Backbone::parse_features(f, dataset, split)?;
                let out = match &source {
                    Backbone::Frozen(run) => run.join("classify-frozen"),
                    Backbone::Pca { k, dataset, .. } => {
                        let name = std::path::Path::new(dataset)
                            .file_name()
                            .map_or_else(|| "dataset".into(), |f| f.to_string_lossy().into_owned());
                        PathBuf::from(format!("runs/classify-pca{k}-{name}"))
                    }
                    _ => PathBuf::from("runs/classify"),
                };
                (source, out)
            }
            _ => {
                return Err(Error::config(
                    "classify",
                    "give --run FOLDER (with --freeze, --finetune or --from-scratch) or --features pca:K|run:FOLDER",
                ))
            }
        };
        let images_given = [
            (self.dataset.is_some(), "--dataset"),
            (self.classes.is_some(), "--classes"),
            (self.max_samples.is_some(), "--max-samples"),
        ];
        if !matches!(source, Backbone::Pca { .. }) {
            if let Some((_, flag)) = images_given.iter().find(|(given, _)| *given) {
                return Err(Error::config(
                    "classify",
                    format!("{flag} chooses the images for --features pca:K; a run's classifier uses the run's own images and split"),
                ));
            }
        }
        let hidden = if self.hidden.trim() == "none" {
            Vec::new()
        } else {
            handgrad::experiments::parse_sizes(&self.hidden, "hidden", "512,256,256, or none")?
        };
        let spec = ClassifySpec {
            hidden,
            activation: parse_activation(&self.activation)?,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            early_stopping: self.early_stopping,
        };
        Ok((source, spec, self.out.clone().unwrap_or(default_out)))
    }

    /// Trains the classifier and prints its test accuracy.
    pub fn run(&self) -> Result<ExitCode> {
        let (source, spec, out) = self.plan()?;
        let opts = self.data.options(Arc::default());
        let r = classify(&source, &spec, &out, &opts, &mut Console::new(self.quiet))?;
        println!(
            "test accuracy {:.2} % over {} images",
            100.0 * r.test_accuracy,
            r.test_images
        );
        if let Some(v) = &r.verdict {
            println!("{v}");
        }
        println!(
            "outputs in {}: metrics.csv, curves.png, confusion.png",
            r.out.display()
        );
        if let Backbone::Frozen(run) | Backbone::Finetune(run) | Backbone::Scratch(run) = &source {
            super::refresh_page(run, &[&r.out.join("confusion.png")]);
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    //! Every option of `classify` reaches what it names: each given a value unlike its default
    //! must change the plan (backbone, training settings, folder) in that one place.

    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;
    use kernels::elementwise::Activation;

    type Plan = (Backbone, ClassifySpec, PathBuf);

    fn plan_of(args: &[&str]) -> Result<Plan> {
        let line = ["handgrad", "classify"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(line)
            .expect("a valid command line")
            .command
        {
            Command::Classify(c) => c.plan(),
            other => panic!("parsed as {other:?}"),
        }
    }

    type Change = fn(&mut Plan);

    const PCA_OPTIONS: &[(&str, &str, Change)] = &[
        ("--dataset", "fashion-mnist", |p| {
            if let Backbone::Pca { dataset, .. } = &mut p.0 {
                *dataset = "fashion-mnist".into();
            }
            p.2 = "runs/classify-pca8-fashion-mnist".into();
        }),
        ("--classes", "0,3", |p| {
            if let Backbone::Pca { split, .. } = &mut p.0 {
                split.classes = vec![0, 3];
            }
        }),
        ("--max-samples", "900", |p| {
            if let Backbone::Pca { split, .. } = &mut p.0 {
                split.max_samples = Some(900);
            }
        }),
        ("--hidden", "64,32", |p| p.1.hidden = vec![64, 32]),
        ("--activation", "tanh", |p| {
            p.1.activation = Activation::Tanh
        }),
        ("--epochs", "3", |p| p.1.epochs = 3),
        ("--batch-size", "40", |p| p.1.batch_size = 40),
        ("--lr", "0.01", |p| p.1.lr = 0.01),
        ("--seed", "4", |p| p.1.seed = 4),
        ("--early-stopping", "2", |p| p.1.early_stopping = Some(2)),
        ("--out", "elsewhere", |p| p.2 = "elsewhere".into()),
    ];

    #[test]
    fn every_option_changes_its_part_of_the_plan_and_nothing_else() -> Result<()> {
        let base = plan_of(&["--features", "pca:8"])?;
        for (flag, value, change) in PCA_OPTIONS {
            let mut want = base.clone();
            change(&mut want);
            assert_ne!(want, base, "{flag} {value} is the default");
            assert_eq!(plan_of(&["--features", "pca:8", flag, value])?, want);
        }
        assert!(plan_of(&["--features", "pca:8", "--hidden", "none"])?
            .1
            .hidden
            .is_empty());
        // The backbones, and the folders they write to by default.
        for (args, backbone, folder) in [
            (
                &["--run", "r"][..],
                Backbone::Frozen("r".into()),
                "r/classify-frozen",
            ),
            (
                &["--run", "r", "--freeze"],
                Backbone::Frozen("r".into()),
                "r/classify-frozen",
            ),
            (
                &["--run", "r", "--finetune"],
                Backbone::Finetune("r".into()),
                "r/classify-finetune",
            ),
            (
                &["--run", "r", "--from-scratch"],
                Backbone::Scratch("r".into()),
                "r/classify-from-scratch",
            ),
            (
                &["--features", "run:r"],
                Backbone::Frozen("r".into()),
                "r/classify-frozen",
            ),
        ] {
            let (b, spec, out) = plan_of(args)?;
            assert_eq!(
                (b, spec, out),
                (backbone, base.1.clone(), folder.into()),
                "{args:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn options_for_pca_images_are_refused_with_a_run_rather_than_ignored() {
        for flag in [
            &["--dataset", "mnist"][..],
            &["--classes", "1,2"],
            &["--max-samples", "50"],
        ] {
            for source in [&["--run", "r"][..], &["--features", "run:r"]] {
                let args: Vec<&str> = source.iter().chain(flag).copied().collect();
                let err = plan_of(&args).expect_err("refused");
                assert!(err.to_string().contains(flag[0]), "{args:?}: {err}");
            }
        }
    }
}
