//! Chapter 08, a convolutional autoencoder: the conv-selu preset, whose encoder shrinks a
//! 28×28 image through three convolutions and four linear layers to a code of 6 numbers, and
//! whose decoder mirrors it with transposed convolutions. Prints the plan, trains two epochs,
//! and compares with the mean image and with PCA of the same code size.
//!
//! Run with `cargo run --release --example 08_conv_autoencoder`.

use handgrad::data::batches::split;
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::embed::pca::Pca;
use handgrad::train::run_dir::new_trainer;
use handgrad::train::task::pixel_loss;
use handgrad::train::{evaluate, LossName, RunConfig};
use handgrad::Result;

fn main() -> Result<()> {
    // 3,000 images, 2 epochs, small batches: quick, and enough steps to learn.
    let cfg = RunConfig::quick("conv-selu", 3000, 2, 32)?;
    let data = split(&Dataset::find("mnist", &Lookup::default())?, &cfg.split)?;
    let mut trainer = new_trainer(&cfg)?;
    println!("{}", trainer.model.summary().join("\n"));
    trainer.fit(&data.train, &data.val, &mut ())?;
    let ours = evaluate(&mut trainer.model, &data.test, &cfg.train, None)?.loss;

    let (train_px, test_px) = (
        data.train.first_pixels(usize::MAX),
        data.test.first_pixels(usize::MAX),
    );
    let pca = Pca::fit(&train_px, 784, 6)?;
    let pca_loss = pixel_loss(
        LossName::Mse,
        &pca.inverse(&pca.transform(&test_px, 6), 6),
        &test_px,
    )?;
    let mean: Vec<f32> = (0..784)
        .map(|j| train_px.iter().skip(j).step_by(784).sum::<f32>() / data.train.len() as f32)
        .collect();
    let means: Vec<f32> = test_px
        .chunks(784)
        .flat_map(|_| mean.iter().copied())
        .collect();
    let mean_loss = pixel_loss(LossName::Mse, &means, &test_px)?;
    println!("test MSE per pixel: conv-selu {ours:.4}, PCA with 6 components {pca_loss:.4}, the mean image {mean_loss:.4}");
    assert!(
        ours < 0.75 * mean_loss,
        "conv-selu should be well below the mean image"
    );
    Ok(())
}
