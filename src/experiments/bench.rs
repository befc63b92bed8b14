//! `handgrad bench`: how fast a preset trains (or infers) on this machine, in images per second
//! and as a share of the machine's arithmetic peak.
//!
//! A figure from a shared machine drifts from one minute to the next, so this command is built
//! to be run side by side with another framework (interleaved, the same data, the same batch)
//! and read as a ratio. It times whole steps, exactly as `train` runs them, after a warm-up
//! that lets buffers and caches settle.

use super::RunOptions;
use crate::data::mnist::{Dataset, ImageSet};
use crate::error::{Error, Result};
use crate::machine::{cpu_model, peak_rss};
use crate::models::ModelPlan;
use crate::seed::{self, Stream};
use crate::train::run_dir::new_trainer;
use crate::train::{Overrides, RunConfig};
use kernels::peak::fma_peak_gflops;
use std::time::Instant;

/// What to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchMode {
    /// Forward, loss, backward, optimiser update.
    Train,
    /// Forward only, recording nothing: one pass over the whole batch, its output written
    /// into a buffer kept between steps.
    Infer,
}

impl BenchMode {
    /// "train" or "infer".
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Train => "train",
            BenchMode::Infer => "infer",
        }
    }

    /// Parses "train" or "infer".
    ///
    /// # Errors
    /// [`Error::Config`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "train" => Ok(BenchMode::Train),
            "infer" => Ok(BenchMode::Infer),
            _ => Err(Error::config(
                "mode",
                format!("unknown {text:?} (train, infer)"),
            )),
        }
    }
}

/// Settings of a benchmark.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// The preset to time.
    pub preset: String,
    /// Train or infer.
    pub mode: BenchMode,
    /// Images per step [default: the preset's].
    pub batch: Option<usize>,
    /// Timed steps per run.
    pub steps: usize,
    /// Timed runs (the median is reported).
    pub runs: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Worker threads.
    pub threads: usize,
}

/// What a benchmark measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// The preset.
    pub preset: String,
    /// "train" or "infer".
    pub mode: &'static str,
    /// Images per step.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Each run's images per second.
    pub runs: Vec<f64>,
    /// Their median.
    pub img_per_s: f64,
    /// Floating-point operations per image and step (2 per multiply-add; a training step counts
    /// the forward pass and twice it for the backward pass).
    pub flops_per_image: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// The FMA peak of `threads` cores, measured just before.
    pub peak_gflops: f64,
    /// The instruction set of the peak.
    pub isa: &'static str,
    /// The processor.
    pub cpu: String,
    /// Where the images came from.
    pub data: String,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mb: f64,
    /// Steps taken, warm-up included, as counted while stepping.
    pub steps_taken: usize,
    /// Whether every product and convolution ran on its naive reference loop (`--naive`).
    pub reference_loops: bool,
}

impl BenchReport {
    /// One JSON object on one line.
    pub fn json(&self) -> String {
        serde_json::json!({
            "preset": self.preset,
            "mode": self.mode,
            "batch": self.batch,
            "threads": self.threads,
            "img_per_s": self.img_per_s,
            "runs": self.runs,
            "flops_per_image": self.flops_per_image,
            "gflops": self.gflops,
            "peak_gflops": self.peak_gflops,
            "share_of_peak": self.gflops / self.peak_gflops,
            "isa": self.isa,
            "cpu": self.cpu,
            "data": self.data,
            "peak_rss_mb": self.peak_rss_mb,
            "steps_taken": self.steps_taken,
            "reference_loops": self.reference_loops,
        })
        .to_string()
    }
}

/// The images a benchmark steps through: the first 8 batches of Fashion-MNIST's training set
/// (as the PyTorch reference uses) when it is installed, else of the shipped MNIST test set.
fn bench_images(batch: usize, opts: &RunOptions) -> Result<(ImageSet, String)> {
    let ds = Dataset::find("fashion-mnist", &opts.lookup)
        .or_else(|_| Dataset::find("mnist", &opts.lookup))?;
    let pool = ds.train.as_ref().unwrap_or(&ds.test);
    let n = (8 * batch).min(pool.len());
    if n < batch {
        return Err(Error::config(
            "batch size",
            format!("{batch} is more than the {} images available", pool.len()),
        ));
    }
    let px = pool.rows * pool.cols;
    let set = ImageSet {
        images: pool.images[..n * px].to_vec(),
        labels: pool.labels[..n].to_vec(),
        rows: pool.rows,
        cols: pool.cols,
    };
    Ok((set, format!("the first {n} images of {}", ds.dir.display())))
}

/// Times `spec` on this machine.
///
/// # Errors
/// [`Error::Config`] for zero steps, runs or threads, or an unknown preset; dataset errors.
pub fn bench(spec: &BenchSpec, opts: &RunOptions) -> Result<BenchReport> {
    if spec.steps == 0 || spec.runs == 0 || spec.threads == 0 {
        return Err(Error::config(
            "bench",
            "steps, runs and threads must each be at least 1",
        ));
    }
    let mut cfg = RunConfig::preset(&spec.preset)?;
    Overrides {
        batch_size: spec.batch,
        ..Overrides::default()
    }
    .apply(&mut cfg)?;
    cfg.validate()?;
    let batch = cfg.train.batch_size;
    let (set, data) = bench_images(batch, opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads)
        .build()
        .map_err(|e| Error::config("threads", e.to_string()))?;
    let (peak, isa) = fma_peak_gflops(spec.threads, 200);
    let plan = ModelPlan::new(&cfg.model)?;
    // Two floating-point operations per multiply-add.
    let flops_per_image = 2.0
        * match spec.mode {
            BenchMode::Train => plan.training_macs(),
            BenchMode::Infer => plan.macs(),
        } as f64;
    let batches = set.len() / batch;
    let mut steps_taken = 0;
    let runs = pool.install(|| -> Result<Vec<f64>> {
        let mut trainer = new_trainer(&cfg)?;
        let mut rng = seed::rng(cfg.train.seed, Stream::Step { epoch: 0, batch: 0 });
        // Inference reads the batches as floats made once beforehand, as the PyTorch
        // reference does; a training step loads its batch itself, as it does in `train`.
        let pixels = match spec.mode {
            BenchMode::Train => Vec::new(),
            BenchMode::Infer => set.first_pixels(batches * batch),
        };
        let batch_len = pixels.len() / batches.max(1);
        let mut output = Vec::new();
        let mut step = |k: usize| -> Result<()> {
            steps_taken += 1;
            match spec.mode {
                BenchMode::Train => {
                    let indices: Vec<usize> =
                        (0..batch).map(|i| (k % batches) * batch + i).collect();
                    trainer.step(&set, &indices, &mut rng)?;
                }
                BenchMode::Infer => {
                    let images = &pixels[(k % batches) * batch_len..][..batch_len];
                    // One forward pass over the whole batch, as PyTorch's `model(x)` makes.
                    trainer.model.reconstruct_into(images, batch, &mut output)?;
                    std::hint::black_box(&output);
                }
            }
            Ok(())
        };
        for k in 0..spec.warmup {
            step(k)?;
        }
        let mut rates = Vec::new();
        for _ in 0..spec.runs {
            let start = Instant::now();
            for k in 0..spec.steps {
                step(k)?;
            }
            rates.push((spec.steps * batch) as f64 / start.elapsed().as_secs_f64());
        }
        Ok(rates)
    })?;
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let img_per_s = sorted[sorted.len() / 2];
    Ok(BenchReport {
        preset: spec.preset.clone(),
        mode: spec.mode.name(),
        batch,
        threads: spec.threads,
        runs,
        img_per_s,
        flops_per_image,
        gflops: img_per_s * flops_per_image / 1e9,
        peak_gflops: peak,
        isa: isa.name(),
        cpu: cpu_model(),
        data,
        peak_rss_mb: peak_rss().map_or(f64::NAN, |b| b as f64 / (1u64 << 20) as f64),
        steps_taken,
        reference_loops: kernels::reference_loops(),
    })
}
