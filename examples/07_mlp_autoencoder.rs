//! Chapter 07, an MLP autoencoder: 784 → 400 → 32 → 400 → 784 with sigmoids, trained on the
//! shipped MNIST images, and judged against the two baselines every reconstruction loss needs:
//! predicting the mean image, and PCA with as many components as the code has numbers.
//!
//! Run with `cargo run --release --example 07_mlp_autoencoder`.

use handgrad::data::batches::split;
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::embed::pca::Pca;
use handgrad::train::run_dir::new_trainer;
use handgrad::train::task::pixel_loss;
use handgrad::train::{evaluate, LossName, RunConfig};
use handgrad::Result;

fn main() -> Result<()> {
    // The preset of the course report: three sigmoid layers each way, a code of 32 numbers,
    // Adam at 1e-3 and small batches. The shipped test set's 7,200 training images and 5
    // epochs keep the example quick.
    let cfg = RunConfig::quick("mlp3-32", 8000, 5, 32)?;
    let data = split(&Dataset::find("mnist", &Lookup::default())?, &cfg.split)?;
    let mut trainer = new_trainer(&cfg)?;
    println!("{}", trainer.model.summary().join("\n"));
    trainer.fit(&data.train, &data.val, &mut ())?;
    for m in &trainer.state.history {
        println!(
            "epoch {}: training MSE {:.4}, validation {:.4}",
            m.epoch, m.train_loss, m.val_loss
        );
    }
    let ours = evaluate(&mut trainer.model, &data.test, &cfg.train, None)?.loss;

    // Baseline 1: the mean training image, whatever the input.
    let train_px = data.train.first_pixels(usize::MAX);
    let test_px = data.test.first_pixels(usize::MAX);
    let mut mean = vec![0.0f32; 784];
    for img in train_px.chunks(784) {
        for (m, &p) in mean.iter_mut().zip(img) {
            *m += p / data.train.len() as f32;
        }
    }
    let mean_images: Vec<f32> = test_px
        .chunks(784)
        .flat_map(|_| mean.iter().copied())
        .collect();
    let mean_loss = pixel_loss(LossName::Mse, &mean_images, &test_px)?;

    // Baseline 2: the best linear code of the same size, PCA with 32 components.
    let pca = Pca::fit(&train_px, 784, 32)?;
    let pca_loss = pixel_loss(
        LossName::Mse,
        &pca.inverse(&pca.transform(&test_px, 32), 32),
        &test_px,
    )?;

    println!("test MSE per pixel: the autoencoder {ours:.4}, the mean image {mean_loss:.4}, PCA with 32 components {pca_loss:.4}");
    assert!(
        ours < 0.8 * mean_loss,
        "the autoencoder should be well below the mean image"
    );
    if ours > pca_loss {
        println!("after {} epochs the nonlinear code is still behind the linear one: train longer (handgrad train --preset mlp3-32) and compare again", cfg.train.epochs);
    }
    Ok(())
}
