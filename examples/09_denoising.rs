//! Chapter 09, a denoising autoencoder: the same conv-selu model, but its inputs are damaged by
//! Gaussian noise and it is asked for the clean image. Compared with handing back the noisy
//! input unchanged, on test images it never saw.
//!
//! Run with `cargo run --release --example 09_denoising`.

use handgrad::data::batches::split;
use handgrad::data::corrupt::Corruption;
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::experiments::eval::corrupted;
use handgrad::train::run_dir::new_trainer;
use handgrad::train::task::pixel_loss;
use handgrad::train::{LossName, RunConfig};
use handgrad::Result;

fn main() -> Result<()> {
    let noise: Corruption = "gaussian:0.4".parse()?;
    let mut cfg = RunConfig::quick("conv-selu", 3000, 3, 32)?;
    // The training loop damages every batch afresh (seeded), the targets stay clean.
    cfg.train.corrupt = Some(noise.clone());
    let data = split(&Dataset::find("mnist", &Lookup::default())?, &cfg.split)?;
    let mut trainer = new_trainer(&cfg)?;
    trainer.fit(&data.train, &data.val, &mut ())?;

    let clean = data.test.first_pixels(usize::MAX);
    let noisy = corrupted(&noise, &clean, 28, 28, 7)?;
    let denoised = trainer.model.reconstruct(&noisy)?;
    let identity = pixel_loss(LossName::Mse, &noisy, &clean)?;
    let model = pixel_loss(LossName::Mse, &denoised, &clean)?;
    println!("noise {noise}: the noisy input is {identity:.4} (MSE per pixel) from the clean image; the model's output {model:.4}");
    assert!(
        model < identity,
        "the denoiser must beat handing back its input"
    );
    println!(
        "the denoiser removes {:.0} % of the noise's error",
        100.0 * (1.0 - model / identity)
    );
    Ok(())
}
