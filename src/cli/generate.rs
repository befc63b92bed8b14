//! `handgrad generate`, `manifold` and `interpolate`: the decoder as a generator of images
//! from codes no test image had.

use super::PictureArgs;
use clap::Args;
use handgrad::experiments::generate::{
    centroids, generate, interpolate, manifold, parse_sigmas, CodeSource,
};
use handgrad::names;
use handgrad::Result;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// How many images (up to 100).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Where codes come from: prior (N(0, I), for a VAE) or codes (each dimension's mean and
    /// spread over the training images' codes) [default: prior for a VAE, codes otherwise].
    #[arg(long)]
    source: Option<String>,
    /// Instead: each class's mean code, plus N(0, σ²) noise for each --sigmas value.
    #[arg(long)]
    centroids: bool,
    /// The noise levels σ for --centroids.
    #[arg(long, default_value = "0,2.5,5,7.5,10")]
    sigmas: String,
    /// Seed of the random codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl GenerateArgs {
    /// Decodes random codes, or the class centroids with growing noise.
    pub fn run(&self) -> Result<ExitCode> {
        let p = &self.picture;
        let opts = p.options();
        if self.centroids {
            let sigmas = parse_sigmas(&self.sigmas)?;
            let (out, cents) =
                centroids(&p.run, &sigmas, self.seed, p.out.as_deref(), p.force, &opts)?;
            println!(
                "wrote {} ({} classes × {} noise levels)",
                out.display(),
                cents.len(),
                sigmas.len()
            );
            super::refresh_page(&p.run, &[&out]);
        } else {
            let source = self
                .source
                .as_deref()
                .map(names::parse::<CodeSource>)
                .transpose()?;
            let (out, _) = generate(
                &p.run,
                self.n,
                source,
                self.seed,
                p.out.as_deref(),
                p.force,
                &opts,
            )?;
            println!("wrote {} ({} generated images)", out.display(), self.n);
            super::refresh_page(&p.run, &[&out]);
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct ManifoldArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// Points per side of the grid of codes.
    #[arg(long, default_value_t = 15)]
    grid: usize,
}

impl ManifoldArgs {
    /// Decodes a grid over a 2-D code plane and plots the test codes on it.
    pub fn run(&self) -> Result<ExitCode> {
        let p = &self.picture;
        let stem = p.out.as_ref().map(|o| o.with_extension(""));
        let (grid, codes) = manifold(&p.run, self.grid, stem.as_deref(), p.force, &p.options())?;
        println!(
            "wrote {} (decoded grid) and {} (test codes by class)",
            grid.display(),
            codes.display()
        );
        super::refresh_page(&p.run, &[&grid, &codes]);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    #[command(flatten)]
    picture: PictureArgs,
    /// The first test image: its index in the run's test split, or class:N for the first image of class N.
    #[arg(long)]
    from: String,
    /// The last test image, as --from.
    #[arg(long)]
    to: String,
    /// Decoded codes between the two ends.
    #[arg(long, default_value_t = 8)]
    steps: usize,
}

impl InterpolateArgs {
    /// Decodes the straight line between two test images' codes.
    pub fn run(&self) -> Result<ExitCode> {
        let p = &self.picture;
        let (out, _) = interpolate(
            &p.run,
            &self.from,
            &self.to,
            self.steps,
            p.out.as_deref(),
            p.force,
            &p.options(),
        )?;
        println!("wrote {}", out.display());
        super::refresh_page(&p.run, &[&out]);
        Ok(ExitCode::SUCCESS)
    }
}
