//! Optimisers, schedules and early stopping against hand-computed values.

mod common;

use handgrad::autodiff::{Graph, Reduction};
use handgrad::nn::{self, Init, Module};
use handgrad::optim::{
    AdaGrad, Adam, EarlyStopping, Mode, Optimizer, ReduceLrOnPlateau, Sgd, StepLr, ThresholdMode,
    Verdict,
};
use handgrad::{Error, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn adams_first_step_moves_each_weight_by_the_learning_rate() -> Result<()> {
    // p = 1, g = 0.5, lr = 0.1, β = (0.9, 0.999):
    // m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025,
    // step = lr/(1 − 0.9) = 1, denominator = √0.00025/√(1 − 0.999) + 1e-8 = 0.5 (+1e-8),
    // p ← 1 − 1·0.05/0.5 = 0.9: the first step is lr·sign(g), whatever |g|.
    let mut adam = Adam::new(0.1)?;
    let mut p = [1.0f32, -2.0];
    adam.update("p", &mut p, &[0.5, -300.0]);
    assert!(
        (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
        "{p:?}"
    );
    Ok(())
}

#[test]
fn adam_state_round_trips_through_its_saved_form() -> Result<()> {
    let mut a = Adam::new(0.01)?.with_betas(0.8, 0.99, 1e-6)?;
    let mut p = [0.3f32, -0.7, 1.1];
    for _ in 0..3 {
        a.update("w", &mut p, &[0.2, -0.1, 0.4]);
    }
    let mut b = Adam::new(0.01)?.with_betas(0.8, 0.99, 1e-6)?;
    b.load_state(&a.state())?;
    let (mut pa, mut pb) = (p, p);
    a.update("w", &mut pa, &[0.1, 0.1, 0.1]);
    b.update("w", &mut pb, &[0.1, 0.1, 0.1]);
    assert_eq!(pa, pb);
    Ok(())
}

#[test]
fn sgd_momentum_accumulates_velocity() -> Result<()> {
    // Constant gradient 1, lr 0.1, μ 0.9: b₁ = 1 → p = 0.9; b₂ = 0.9 + 1 = 1.9 → p = 0.71.
    let mut sgd = Sgd::new(0.1)?.with_momentum(0.9, false)?;
    let mut p = [1.0f32];
    sgd.update("p", &mut p, &[1.0]);
    assert!((p[0] - 0.9).abs() < 1e-6);
    sgd.update("p", &mut p, &[1.0]);
    assert!((p[0] - 0.71).abs() < 1e-6, "{}", p[0]);
    // Nesterov looks ahead: first step uses g + μ·b = 1.9.
    let mut nesterov = Sgd::new(0.1)?.with_momentum(0.9, true)?;
    let mut q = [1.0f32];
    nesterov.update("q", &mut q, &[1.0]);
    assert!((q[0] - 0.81).abs() < 1e-6, "{}", q[0]);
    Ok(())
}

#[test]
fn adagrad_divides_by_the_root_of_summed_squares() -> Result<()> {
    // g = 2 twice, lr 1: s = 4 → p −= 2/2 = 1; s = 8 → p −= 2/√8 ≈ 0.7071.
    let mut ada = AdaGrad::new(1.0)?;
    let mut p = [0.0f32];
    ada.update("p", &mut p, &[2.0]);
    ada.update("p", &mut p, &[2.0]);
    assert!((p[0] + 1.0 + 2.0 / 8f32.sqrt()).abs() < 1e-5, "{}", p[0]);
    Ok(())
}

#[test]
fn nonsense_hyperparameters_are_refused() {
    assert!(matches!(Adam::new(-1.0), Err(Error::Config { .. })));
    assert!(matches!(
        Adam::new(1e-3).and_then(|a| a.with_betas(1.0, 0.9, 1e-8)),
        Err(Error::Config { .. })
    ));
    assert!(matches!(Sgd::new(f32::NAN), Err(Error::Config { .. })));
    assert!(matches!(
        ReduceLrOnPlateau::new(1.5, 3),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        StepLr::new(0.1, 0, 0.5),
        Err(Error::Config { .. })
    ));
}

#[test]
fn plateau_reduces_after_patience_then_cools_down() -> Result<()> {
    // patience 1, factor 0.5, cooldown 1: two bad epochs (> patience) halve the rate, the next
    // epoch is cooldown, then two more bad epochs halve it again.
    let mut s = ReduceLrOnPlateau::new(0.5, 1)?.with_limits(0.0, ThresholdMode::Abs, 1, 0.0)?;
    let mut lr = 1.0;
    let mut seen = Vec::new();
    for m in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0] {
        lr = s.step(m, lr);
        seen.push(lr);
    }
    assert_eq!(seen, [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    // In max mode a rising metric is an improvement.
    let mut up = ReduceLrOnPlateau::new(0.1, 0)?.with_mode(Mode::Max);
    assert_eq!(up.step(0.5, 1.0), 1.0);
    assert_eq!(up.step(0.6, 1.0), 1.0);
    assert!((up.step(0.6, 1.0) - 0.1).abs() < 1e-12);
    Ok(())
}

#[test]
fn plateau_respects_min_lr() -> Result<()> {
    let mut s = ReduceLrOnPlateau::new(0.1, 0)?.with_limits(1e-4, ThresholdMode::Rel, 0, 0.05)?;
    let mut lr = 0.1;
    for _ in 0..5 {
        lr = s.step(1.0, lr);
    }
    assert_eq!(lr, 0.05);
    Ok(())
}

#[test]
fn early_stopping_counts_epochs_without_improvement() {
    let mut stop = EarlyStopping::new(2, 0.0);
    let verdicts: Vec<Verdict> = [3.0, 2.0, 2.5, 2.4]
        .iter()
        .enumerate()
        .map(|(e, &m)| stop.update(e + 1, m))
        .collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Improved,
            Verdict::Improved,
            Verdict::Wait,
            Verdict::Stop
        ]
    );
    assert_eq!(stop.best(), Some((2, 2.0)));
}

#[test]
fn step_decay_halves_every_step_size_epochs() -> Result<()> {
    let s = StepLr::new(0.1, 3, 0.5)?;
    let lrs: Vec<f64> = (0..7).map(|e| s.lr_at(e)).collect();
    assert_eq!(lrs, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
    Ok(())
}

#[test]
fn optimizer_step_trains_a_linear_regression() -> Result<()> {
    // y = 2·x₀ − x₁ + 0.5, learned from 32 points by a 2 → 1 linear layer.
    let mut rng = StdRng::seed_from_u64(3);
    let mut layer = nn::Linear::new(2, 1, true, Init::PyTorchDefault, &mut rng);
    let x = common::uniform(&[32, 2], -1.0, 1.0, 4);
    let y = x
        .map_axis(ndarray::Axis(1), |r| 2.0 * r[0] - r[1] + 0.5)
        .insert_axis(ndarray::Axis(1))
        .into_dyn();
    let mut opt = Adam::new(0.05)?;
    let mut g = Graph::new();
    let mut losses = Vec::new();
    for _ in 0..300 {
        let (xv, yv) = (g.constant(x.clone()), g.constant(y.clone()));
        let pred = layer.forward(&mut g, xv)?;
        let loss = g.mse(pred, yv, Reduction::Mean)?;
        losses.push(g.scalar(loss)?);
        g.backward(loss)?;
        opt.step(&mut layer, &mut g);
        g.reset();
    }
    assert!(
        losses[299] < 1e-4 && losses[0] > 0.1,
        "loss went from {} to {}",
        losses[0],
        losses[299]
    );
    let w = &layer.params.weight.value;
    assert!(
        (w[[0, 0]] - 2.0).abs() < 0.02 && (w[[0, 1]] + 1.0).abs() < 0.02,
        "{w}"
    );
    Ok(())
}
