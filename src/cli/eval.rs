//! `handgrad eval`, `reconstruct` and `denoise`: how well a trained run reconstructs its
//! test images, in numbers and in pictures.

use super::{DataArgs, PictureArgs};
use clap::Args;
use handgrad::data::corrupt::Corruption;
use handgrad::experiments::eval::{
    denoise_run, eval_run, noise_sweep, parse_sweep, reconstruct_image, reconstruct_run,
    sweep_outputs, MAX_SHOWN,
};
use handgrad::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Measure on every test image of this dataset (mnist, fashion-mnist or a folder of IDX
    /// files) instead of the run's own test split.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Also measure with inputs damaged this way (repeat for several): gaussian:F,
    /// occlusion:S, occlusion:S@R,C, salt-pepper:P, joined by +.
    #[arg(long)]
    corrupt: Vec<String>,
    /// Measure under Gaussian noise of every factor START:END:STEP (e.g. 0:1:0.1); writes a
    /// plot and a CSV of test loss against noise level.
    #[arg(long)]
    noise_sweep: Option<String>,
    /// Where the sweep's files go, without extension [default: <run>/noise-sweep].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the sweep's files if they exist.
    #[arg(long)]
    force: bool,
}

impl EvalArgs {
    /// Prints the test losses (and writes the noise sweep's files when asked).
    pub fn run(&self) -> Result<ExitCode> {
        // Everything that can be refused is checked before the first number is printed.
        let corruptions = self
            .corrupt
            .iter()
            .map(|c| c.parse::<Corruption>())
            .collect::<Result<Vec<_>>>()?;
        let sweep = match &self.noise_sweep {
            Some(text) => Some((
                parse_sweep(text)?,
                sweep_outputs(&self.run, self.out.as_deref(), self.force)?,
            )),
            None => None,
        };
        let opts = self.data.options(Arc::default());
        let dataset = self.dataset.as_deref();
        let r = eval_run(&self.run, dataset, &corruptions, &opts)?;
        println!("{}: {}", self.run.display(), r.source);
        println!(
            "the run's own objective ({}): {:.6}",
            r.objective.0, r.objective.1
        );
        println!();
        println!(
            "{:<28} {:>14} {:>22}",
            "input",
            format!("model {}", short(&r.loss)),
            "identity (input itself)"
        );
        for row in &r.rows {
            let identity = row.identity.map_or("—".to_string(), |v| format!("{v:.6}"));
            println!("{:<28} {:>14.6} {:>22}", row.condition, row.model, identity);
        }
        println!();
        println!(
            "model: the {} between the model's output and the clean image;",
            r.loss
        );
        println!("identity: the same loss for handing back the (corrupted) input unchanged.");
        match &r.baselines {
            Some(b) => println!("{}", b.line()),
            None => println!("(no baselines: they are fitted on the run's own training images, and these test images come from another dataset)"),
        }
        if let Some(v) = &r.verdict {
            println!("{v}");
        }
        if let Some((levels, outputs)) = sweep {
            let (rows, csv, png) = noise_sweep(&self.run, dataset, &levels, outputs, &opts)?;
            println!();
            println!(
                "{:>12} {:>14} {:>22}",
                "noise factor",
                format!("model {}", short(&r.loss)),
                "identity (input itself)"
            );
            for (f, m, i) in rows {
                println!("{f:>12.2} {m:>14.6} {i:>22.6}");
            }
            println!("wrote {} and {}", csv.display(), png.display());
            super::refresh_page(&self.run, &[&png]);
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct ReconstructArgs {
    #[command(flatten)]
    picture: PictureArgs,
    #[arg(long, default_value_t = 16, conflicts_with = "image", help = format!("How many test images, 1 to {MAX_SHOWN}"))]
    count: usize,
    /// Use every test image of this dataset instead of the run's test split.
    #[arg(long, conflicts_with = "image")]
    dataset: Option<String>,
    /// Reconstruct your own PNG instead (any size, grey or colour, light or dark
    /// background): made grey, inverted if needed, fitted into 20×20 and centred by its centre
    /// of mass, as MNIST was made; the picture shows each stage [default output:
    /// reconstruct-<name>.png in the run folder].
    #[arg(long)]
    image: Option<PathBuf>,
}

impl ReconstructArgs {
    /// Writes test images above their reconstructions, or the stages of one's own picture.
    pub fn run(&self) -> Result<ExitCode> {
        let p = &self.picture;
        if let Some(image) = &self.image {
            let r = reconstruct_image(&p.run, image, p.out.as_deref(), p.force)?;
            println!(
                "wrote {} ({}each stage and the reconstruction; {} {:.6})",
                r.out.display(),
                if r.inverted {
                    "inverted to white ink on black; "
                } else {
                    ""
                },
                r.unit,
                r.loss
            );
            super::refresh_page(&p.run, &[&r.out]);
            return Ok(ExitCode::SUCCESS);
        }
        let out = reconstruct_run(
            &p.run,
            p.out.as_deref(),
            self.count,
            self.dataset.as_deref(),
            p.force,
            &p.options(),
        )?;
        println!(
            "wrote {} (test images above their reconstructions)",
            out.display()
        );
        super::refresh_page(&p.run, &[&out]);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct DenoiseArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// The damage: gaussian:F, occlusion:S, occlusion:S@R,C, salt-pepper:P, joined by +.
    #[arg(long)]
    corrupt: String,
    #[arg(long, default_value_t = 10, help = format!("How many test images, 1 to {MAX_SHOWN}"))]
    count: usize,
}

impl DenoiseArgs {
    /// Writes clean, corrupted and denoised rows, and says how much the model helped.
    pub fn run(&self) -> Result<ExitCode> {
        let p = &self.picture;
        let corruption: Corruption = self.corrupt.parse()?;
        let r = denoise_run(
            &p.run,
            &corruption,
            p.out.as_deref(),
            self.count,
            p.force,
            &p.options(),
        )?;
        println!(
            "wrote {}: {} {:.6} denoised, {:.6} for the corrupted input itself",
            r.out.display(),
            r.loss,
            r.model,
            r.identity
        );
        super::refresh_page(&p.run, &[&r.out]);
        Ok(ExitCode::SUCCESS)
    }
}

/// "MSE per pixel" → "MSE".
fn short(loss: &str) -> &str {
    loss.split(' ').next().unwrap_or(loss)
}
