//! `handgrad latent`, `weights`, `pca` and `classify`: what a trained model learned — its
//! codes drawn in 2-D, its weights as pictures, the linear baseline beside it, and what its
//! codes are worth to a classifier.

use super::console::Console;
use super::{DataArgs, PictureArgs};
use clap::Args;
use handgrad::data::batches::{Amount, SplitSpec};
use handgrad::embed::tsne::TsneSettings;
use handgrad::experiments::classify::{classify, Backbone, ClassifySpec};
use handgrad::experiments::latent::{latent, weights, Projection};
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
        let settings = TsneSettings {
            perplexity: self.perplexity,
            steps: self.steps,
            seed: self.seed,
        };
        let r = latent(
            &p.run,
            method,
            self.n,
            &settings,
            p.out.as_deref(),
            p.force,
            &p.options(),
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
            self.out.as_deref(),
            self.force,
        )?;
        println!("wrote {} ({tiles} tiles)", out.display());
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
        // No validation set: PCA has nothing to tune.
        let spec = SplitSpec {
            validation: Amount::Count(0),
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
    /// With --features pca:K: mnist, fashion-mnist, or a folder with IDX files.
    #[arg(long, default_value = "mnist")]
    dataset: String,
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
    /// Trains the classifier and prints its test accuracy.
    pub fn run(&self) -> Result<ExitCode> {
        let split = SplitSpec {
            classes: self.classes.clone().unwrap_or_default(),
            max_samples: self.max_samples,
            ..SplitSpec::default()
        };
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
                let source = Backbone::parse_features(f, &self.dataset, split)?;
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
        let out = self.out.clone().unwrap_or(default_out);
        let opts = self.data.options(Arc::default());
        let r = classify(&source, &spec, &out, &opts, &mut Console::new(self.quiet))?;
        println!(
            "test accuracy {:.2} % over {} images",
            100.0 * r.test_accuracy,
            r.test_images
        );
        println!(
            "outputs in {}: metrics.csv, curves.png, confusion.png",
            r.out.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
