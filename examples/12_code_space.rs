//! Chapter 12, touching the code space: why a plain autoencoder's map of codes has holes a
//! variational one's does not, measured. Two models with a code of two numbers are trained
//! the same way, one plain and one variational; each one's test codes are scaled to unit
//! spread, and a grid over the square where they lie says how much of it no code comes near.
//! A point in such a hole decodes to something that is no digit. `handgrad explore` lets you
//! feel the same thing by dragging the mouse across the map.
//!
//! Run with `cargo run --release --example 12_code_space`.

use handgrad::data::batches::split;
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::train::run_dir::new_trainer;
use handgrad::train::{LossName, RunConfig};
use handgrad::Result;

/// The share of a 12×12 grid over [−2, 2]² (in units of the codes' spread per number) whose
/// cell centre has no code within a third of a cell side… times 4: no code nearer than 0.44.
fn empty_share(codes: &[f32]) -> f64 {
    let n = codes.len() / 2;
    let stats = |k: usize| {
        let v: Vec<f64> = codes.iter().skip(k).step_by(2).map(|&x| x as f64).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        v.into_iter().map(move |x| (x - mean) / sd.max(1e-12))
    };
    let points: Vec<(f64, f64)> = stats(0).zip(stats(1)).collect();
    let side = 12;
    let mut empty = 0;
    for i in 0..side {
        for j in 0..side {
            let cx = -2.0 + 4.0 * (i as f64 + 0.5) / side as f64;
            let cy = -2.0 + 4.0 * (j as f64 + 0.5) / side as f64;
            let nearest = points
                .iter()
                .map(|(x, y)| (x - cx).hypot(y - cy))
                .fold(f64::INFINITY, f64::min);
            if nearest > 4.0 / side as f64 * 1.33 {
                empty += 1;
            }
        }
    }
    empty as f64 / (side * side) as f64
}

fn main() -> Result<()> {
    let data_cfg = RunConfig::quick("mlp3-2", 3000, 8, 32)?;
    let data = split(
        &Dataset::find("mnist", &Lookup::default())?,
        &data_cfg.split,
    )?;
    let test = data.test.first_pixels(1000);
    let mut shares = Vec::new();
    for variational in [false, true] {
        let mut cfg = data_cfg.clone();
        if variational {
            cfg.model.variational = true;
            cfg.model.code_activation = None;
            cfg.train.loss = LossName::Bce;
        }
        let mut trainer = new_trainer(&cfg)?;
        trainer.fit(&data.train, &data.val, &mut ())?;
        let (codes, _) = trainer.model.codes(&test)?;
        let share = empty_share(&codes);
        println!(
            "{}: {:.0} % of the square within two spreads of the codes' centre has no test code nearby",
            if variational { "variational autoencoder" } else { "plain autoencoder      " },
            100.0 * share
        );
        shares.push(share);
    }
    assert!(
        shares[1] < shares[0],
        "the KL term fills the square more evenly than a plain autoencoder's codes do"
    );
    println!("the KL term pulls every image's code towards N(0, I) and blurs it with σ: the codes fill the space between them, so points between classes decode to something like a digit");
    println!("see it: handgrad train --preset mlp3-2 --epochs 8 --batch-size 32 --out runs/ae2; the same with --variational --code-activation none --loss bce --out runs/vae2; then handgrad explore");
    Ok(())
}
