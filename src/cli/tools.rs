//! `handgrad explain`, `trace`, `gradcheck` and `bench`: tools for looking at the engine
//! itself — a model's shapes and costs, one step's tape, the backward passes checked, and the
//! speed of a training step.

use super::{preset_help, DataArgs};
use clap::Args;
use handgrad::autodiff::catalog::{CaseOptions, OPS};
use handgrad::autodiff::{check_catalog, Tolerance};
use handgrad::experiments::bench::{bench, BenchMode, BenchSpec};
use handgrad::experiments::explain::{explain, shape};
use handgrad::experiments::trace::{input_shapes, output_shape, trace, write_dot};
use handgrad::fs::{claim, Replace, Target};
use handgrad::machine::{human_bytes, human_count};
use handgrad::train::config::DEFAULT_PRESET;
use handgrad::train::{Overrides, RunConfig, RunDir};
use handgrad::{Error, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(long, default_value = DEFAULT_PRESET, help = preset_help())]
    preset: String,
    /// A TOML or JSON run configuration instead of the preset.
    #[arg(long, conflicts_with = "run")]
    config: Option<PathBuf>,
    /// A run folder: explain the model it trained.
    #[arg(long)]
    run: Option<PathBuf>,
    /// The batch size memory is worked out for [default: the run's or preset's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// The model's shape on top of the preset or file, as `train` takes it: try a shape
    /// before training it.
    #[command(flatten)]
    model: super::train::ModelArgs,
}

impl ExplainArgs {
    /// Prints the model's table, layer by layer.
    pub fn run(&self) -> Result<ExitCode> {
        let cfg = match &self.run {
            Some(_) if self.model.any() => {
                return Err(Error::config(
                    "explain",
                    "--run explains the model a run trained, as it was; to try another shape give --preset or --config with the model options",
                ))
            }
            Some(run) => RunDir(run.clone()).read_config()?,
            None => {
                let mut cfg = RunConfig::load(&self.preset, self.config.as_deref())?;
                let mut o = Overrides::default();
                self.model.fill(&mut o);
                o.apply(&mut cfg)?;
                cfg
            }
        };
        let batch = self.batch_size.unwrap_or(cfg.train.batch_size);
        let (rows, totals) = explain(&cfg.model, batch)?;
        println!(
            "{:<11} {:<38} {:>10} {:>10} {:>11} {:>13} {:>12}",
            "layer",
            "what",
            "in",
            "out",
            "parameters",
            "mult-adds",
            format!("out ×{batch}")
        );
        for r in &rows {
            println!(
                "{:<11} {:<38} {:>10} {:>10} {:>11} {:>13} {:>12}",
                r.name,
                r.layer,
                shape(&r.input),
                shape(&r.output),
                human_count(r.parameters),
                human_count(r.macs),
                human_bytes(r.activation_bytes)
            );
            if let Some(a) = &r.note {
                println!("{:<11}   ↳ {a}", "");
            }
        }
        for t in totals {
            println!("{t}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[arg(long, default_value = DEFAULT_PRESET, help = preset_help())]
    preset: String,
    /// A TOML or JSON run configuration instead of the preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Images per step [default: the preset's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Also write the tape as a Graphviz graph to this file (render with `dot -Tsvg F.dot`).
    #[arg(long)]
    dot: Option<PathBuf>,
    /// Replace the --dot file if it exists.
    #[arg(long, requires = "dot")]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

impl TraceArgs {
    /// Records one training step and prints its tape.
    pub fn run(&self) -> Result<ExitCode> {
        let mut cfg = RunConfig::load(&self.preset, self.config.as_deref())?;
        Overrides {
            batch_size: self.batch_size,
            ..Overrides::default()
        }
        .apply(&mut cfg)?;
        if let Some(path) = &self.dot {
            claim(
                path,
                Target::File,
                "output file",
                Replace::asked(self.force),
            )?;
        }
        let rows = trace(&cfg, &self.data.options(Arc::default()))?;
        let ms = |d: Option<std::time::Duration>| {
            d.map_or("—".to_string(), |d| {
                format!("{:.3}", d.as_secs_f64() * 1e3)
            })
        };
        println!(
            "one training step of {} at batch {} (the second; the first warmed up): {} values on the tape",
            cfg.preset,
            cfg.train.batch_size,
            rows.len()
        );
        println!(
            "{:>4} {:<30} {:<11} {:<34} {:<16} {:>13} {:>9} {:>9}",
            "#", "op", "layer", "inputs", "output", "mult-adds", "fwd ms", "bwd ms"
        );
        for r in &rows {
            println!(
                "{:>4} {:<30} {:<11} {:<34} {:<16} {:>13} {:>9} {:>9}",
                r.index,
                r.op,
                r.scope,
                input_shapes(r),
                output_shape(r),
                if r.macs > 0 {
                    human_count(r.macs)
                } else {
                    String::new()
                },
                ms(r.forward),
                ms(r.backward)
            );
        }
        let total: u128 = rows.iter().map(|r| r.macs).sum();
        println!(
            "{} multiply-adds in the forward pass ({} per image); the backward pass does about twice that",
            human_count(total),
            human_count(total / cfg.train.batch_size.max(1) as u128)
        );
        if let Some(path) = &self.dot {
            write_dot(
                &rows,
                &format!(
                    "{}: one training step at batch {}",
                    cfg.preset, cfg.train.batch_size
                ),
                path,
            )?;
            println!("wrote {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct GradcheckArgs {
    #[arg(help = format!("The op: {}, or all", handgrad::autodiff::catalog::OPS.join(", ")))]
    op: String,
    /// The main input's shape, for element-wise ops, reductions, losses, linear and matmul.
    #[arg(long, value_delimiter = ',', default_value = "2,5")]
    shape: Vec<usize>,
    /// Convolutions and pooling: kernel size.
    #[arg(long, default_value_t = 3)]
    kernel: usize,
    /// Convolutions and pooling: stride.
    #[arg(long, default_value_t = 2)]
    stride: usize,
    /// Convolutions: zero padding.
    #[arg(long, default_value_t = 1)]
    padding: usize,
    /// Convolutions: input and output channels, e.g. 2,3.
    #[arg(long, value_delimiter = ',', default_value = "2,3")]
    channels: Vec<usize>,
    /// Convolutions and pooling: input height and width.
    #[arg(long, default_value_t = 6)]
    size: usize,
    /// Put a deliberately wrong backward after the op, to see what a failed check looks like.
    #[arg(long)]
    plant_bug: bool,
}

impl GradcheckArgs {
    /// Checks the op (or every op) and prints each input's errors.
    pub fn run(&self) -> Result<ExitCode> {
        let [c_in, c_out] = self.channels[..] else {
            return Err(Error::config(
                "channels",
                "give two numbers: input and output channels, e.g. 2,3",
            ));
        };
        let options = CaseOptions {
            shape: self.shape.clone(),
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            channels: (c_in, c_out),
            size: self.size,
        };
        let ops: Vec<&str> = if self.op == "all" {
            OPS.to_vec()
        } else {
            vec![self.op.as_str()]
        };
        let tol = Tolerance::default();
        println!(
            "central differences with h = {}, L = Σ r ⊙ y for a fixed random r; an element passes when |analytic − numeric| ≤ {} + {}·max(|analytic|, |numeric|)",
            tol.h, tol.abs, tol.rel
        );
        if self.plant_bug {
            println!(
                "planted: after each op, a node that hands its input on unchanged but passes back 1.5 times the gradient it receives, so every gradient below is off by half; the check is expected to FAIL on every op"
            );
        }
        // Ops whose planted bug went unnoticed (some input passed): a checker that misses it.
        let mut missed = Vec::new();
        let checked = check_catalog(&ops, &options, self.plant_bug, tol, |case, reports| {
            if reports.iter().all(|r| r.passed()) {
                missed.push(case.name.to_string());
            }
            for (r, (role, x)) in reports.iter().zip(case.roles.iter().zip(&case.inputs)) {
                let shape: Vec<String> = x.shape().iter().map(|d| d.to_string()).collect();
                println!(
                    "{:<20} {:<2} {:<12} max abs error {:.1e}, max rel error {:.1e}: {}",
                    case.name,
                    role,
                    shape.join("×"),
                    r.max_abs_error,
                    r.max_rel_error,
                    if r.passed() {
                        "passes".to_string()
                    } else {
                        let (k, a, n) = r.worst.unwrap_or_default();
                        format!(
                            "FAILS at {} of {} elements (worst: element {k}, analytic {a:.5}, numeric {n:.5})",
                            r.failures, r.elements
                        )
                    }
                );
            }
        });
        if !self.plant_bug {
            checked?;
            println!("every gradient matches its finite differences");
            return Ok(ExitCode::SUCCESS);
        }
        // With a planted bug, a mismatch is what was asked for; anything else is an error.
        if let Err(e) = checked {
            if !matches!(e, Error::GradientMismatch { .. }) {
                return Err(e);
            }
        }
        if !missed.is_empty() {
            return Err(Error::config(
                "gradcheck --plant-bug",
                format!(
                    "the planted wrong backward went unnoticed on {}: the checker is too lenient",
                    missed.join(", ")
                ),
            ));
        }
        println!(
            "the planted bug was caught on every op checked ({}): this is the expected outcome, and what a real mistake in a backward pass looks like",
            ops.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = DEFAULT_PRESET, help = preset_help())]
    preset: String,
    /// What to time: train (forward, loss, backward, Adam) or infer (forward only).
    #[arg(long, default_value = "train")]
    mode: String,
    /// Images per step [default: the preset's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Timed steps per run.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Untimed steps before the first run.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

impl BenchArgs {
    /// Times the steps and prints the speed (or one JSON line).
    pub fn run(&self) -> Result<ExitCode> {
        let threads = rayon::current_num_threads();
        let spec = BenchSpec {
            preset: self.preset.clone(),
            mode: BenchMode::parse(&self.mode)?,
            batch: self.batch_size,
            steps: self.steps,
            runs: self.runs,
            warmup: self.warmup,
            threads,
        };
        let r = bench(&spec, &self.data.options(Arc::default()))?;
        if self.json {
            println!("{}", r.json());
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{} {} at batch {}, {} threads, on {}",
            r.preset, r.mode, r.batch, r.threads, r.data
        );
        println!(
            "processor: {} ({} peak {:.1} GFLOP/s measured)",
            r.cpu, r.isa, r.peak_gflops
        );
        let runs: Vec<String> = r.runs.iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "images/s: median {:.0} (runs: {})",
            r.img_per_s,
            runs.join(", ")
        );
        println!(
            "{:.2} MFLOP per image → {:.1} GFLOP/s, {:.1} % of the FMA peak",
            r.flops_per_image / 1e6,
            r.gflops,
            100.0 * r.gflops / r.peak_gflops
        );
        println!("peak memory (RSS): {:.0} MiB", r.peak_rss_mb);
        if r.reference_loops {
            println!("every product and convolution ran on its naive reference loop (--naive)");
        }
        Ok(ExitCode::SUCCESS)
    }
}
