//! Chapter 10, a variational autoencoder: the encoder gives a mean and a log-variance per code
//! number, the code is sampled with the reparameterisation trick, and the loss adds a KL term
//! that pulls the codes towards N(0, I) — so that decoding random N(0, I) codes gives digits.
//!
//! Run with `cargo run --release --example 10_vae`.

use handgrad::data::batches::split;
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::train::run_dir::new_trainer;
use handgrad::train::{LossName, RunConfig};
use handgrad::Result;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn main() -> Result<()> {
    let mut cfg = RunConfig::quick("conv-selu", 3000, 4, 64)?;
    cfg.model.variational = true;
    cfg.train.loss = LossName::Bce;
    let data = split(&Dataset::find("mnist", &Lookup::default())?, &cfg.split)?;
    let mut trainer = new_trainer(&cfg)?;
    trainer.fit(&data.train, &data.val, &mut ())?;
    println!("per image: reconstruction (BCE summed over pixels) + KL(q(z|x) ‖ N(0, I))");
    for m in &trainer.state.history {
        println!(
            "epoch {}: training {:.1} = {:.1} + {:.1}, validation {:.1}",
            m.epoch, m.train_loss, m.train_terms[0], m.train_terms[1], m.val_loss
        );
    }
    let (first, last) = (&trainer.state.history[0], &trainer.state.history[3]);
    assert!(last.train_loss < first.train_loss, "the loss falls");
    assert!(
        last.train_terms[1] > 0.5,
        "the codes carry information: the KL term is not zero"
    );

    // Generation: decode codes drawn from the prior the KL term pulled the codes towards.
    let mut rng = StdRng::seed_from_u64(1);
    let codes: Vec<f32> = (0..8 * 6)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let images = trainer.model.decode_codes(&codes)?;
    let ink: Vec<String> = images
        .chunks(784)
        .map(|img| {
            format!(
                "{:.0}%",
                100.0 * img.iter().filter(|&&p| p > 0.5).count() as f32 / 784.0
            )
        })
        .collect();
    let real = data.test.first_pixels(100);
    let real_ink = 100.0 * real.iter().filter(|&&p| p > 0.5).count() as f32 / real.len() as f32;
    println!(
        "8 images decoded from N(0, I) codes; the share of their pixels above 0.5: {} (real digits: {real_ink:.0}% on average)",
        ink.join(", ")
    );
    println!("after four short epochs some samples are still far from digits: the prior is only being learned");
    assert!(images.iter().all(|p| (0.0..=1.0).contains(p)));
    println!(
        "to see them: handgrad train --variational --loss bce, then handgrad generate --run R"
    );
    Ok(())
}
