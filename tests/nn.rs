//! Layers: PyTorch-style names, initialisation statistics, state round trips, train/eval.

mod common;

use handgrad::autodiff::{Activation, Graph};
use handgrad::nn::{self, init::fans, load_state_dict, parameter_count, state_dict, Init, Module};
use handgrad::{Error, Result};
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn small_model(seed: u64) -> nn::Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    nn::Sequential::new("encoder")
        .with(nn::Conv2d::new(
            1,
            4,
            nn::Kernel::new(3, 2, 1),
            Init::LecunNormal,
            &mut rng,
        ))
        .with(nn::BatchNorm::new(4))
        .with(nn::Act(Activation::Selu))
        .with(nn::Flatten)
        .with(nn::Linear::new(
            4 * 4 * 4,
            3,
            true,
            Init::LecunNormal,
            &mut rng,
        ))
}

#[test]
fn names_follow_pytorchs_sequential_numbering() {
    let names: Vec<String> = state_dict(&small_model(1)).into_keys().collect();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.weight",
            "4.bias",
            "4.weight"
        ]
    );
    // Trainable count: conv 4·1·3·3 + 4, batch norm 4 + 4, linear 64·3 + 3.
    assert_eq!(parameter_count(&small_model(1)), 36 + 4 + 8 + 192 + 3);
}

#[test]
fn fan_in_and_out_follow_pytorchs_rule() {
    assert_eq!(fans(&[40, 648]), (648, 40));
    assert_eq!(fans(&[6, 1, 3, 3]), (9, 54));
    // Transposed conv weight (C_in, C_out, k, k): fan_in is C_out·k·k, as in PyTorch.
    assert_eq!(fans(&[72, 39, 3, 3]), (351, 648));
}

#[test]
fn initialisers_draw_the_documented_spread() {
    let mut rng = StdRng::seed_from_u64(5);
    let shape = [400, 500]; // fan_in 500, fan_out 400
    let std = |a: &ArrayD<f32>| {
        (a.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
    };
    let max = |a: &ArrayD<f32>| a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let within = |got: f64, want: f64| (got - want).abs() < 0.03 * want;
    assert!(within(
        std(&Init::LecunNormal.weight(&shape, &mut rng)),
        (1.0f64 / 500.0).sqrt()
    ));
    assert!(within(
        std(&Init::KaimingNormal.weight(&shape, &mut rng)),
        (2.0f64 / 500.0).sqrt()
    ));
    assert!(within(
        std(&Init::XavierNormal.weight(&shape, &mut rng)),
        (2.0f64 / 900.0).sqrt()
    ));
    let torch = Init::PyTorchDefault.weight(&shape, &mut rng);
    assert!(
        max(&torch) <= 1.0 / 500f32.sqrt()
            && within(std(&torch), (1.0f64 / 500.0).sqrt() / 3f64.sqrt())
    );
    let xavier = Init::XavierUniform.weight(&shape, &mut rng);
    assert!(max(&xavier) <= (6.0f32 / 900.0).sqrt());
    assert!(Init::LecunNormal
        .bias(5, &shape, &mut rng)
        .iter()
        .all(|&b| b == 0.0));
    assert!(matches!(
        "glorot".parse::<Init>(),
        Err(Error::Config { .. })
    ));
}

#[test]
fn the_same_seed_builds_the_same_model() {
    assert_eq!(state_dict(&small_model(9)), state_dict(&small_model(9)));
    assert_ne!(state_dict(&small_model(9)), state_dict(&small_model(10)));
}

#[test]
fn a_state_dict_moves_a_model_exactly() -> Result<()> {
    let (mut a, mut b) = (small_model(1), small_model(2));
    a.set_training(false);
    b.set_training(false);
    let unused = load_state_dict(&mut b, &state_dict(&a))?;
    assert!(unused.is_empty());
    let x = common::uniform(&[2, 1, 8, 8], 0.0, 1.0, 3);
    let run = |m: &mut nn::Sequential| -> Result<ArrayD<f32>> {
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let y = m.forward(&mut g, xv)?;
        Ok(g.value(y).to_owned())
    };
    assert_eq!(run(&mut a)?, run(&mut b)?);
    Ok(())
}

#[test]
fn loading_names_the_missing_or_misshaped_tensor() {
    let mut state = state_dict(&small_model(1));
    state.remove("4.weight");
    let err = load_state_dict(&mut small_model(2), &state).expect_err("a tensor is missing");
    assert!(
        err.to_string().contains("4.weight") && err.to_string().contains("missing"),
        "{err}"
    );
    let mut state = state_dict(&small_model(1));
    state.insert("0.bias".into(), ArrayD::zeros(vec![5]));
    let err = load_state_dict(&mut small_model(2), &state).expect_err("wrong shape");
    assert!(
        err.to_string().contains("0.bias") && err.to_string().contains("[5]"),
        "{err}"
    );
}

#[test]
fn dropout_and_batch_norm_switch_behaviour_in_evaluation() -> Result<()> {
    let x = common::uniform(&[8, 4], -1.0, 1.0, 4);
    let mut dropout = nn::Dropout::new(0.5, 7)?;
    let mut g = Graph::new();
    let xv = g.constant(x.clone());
    let train = dropout.forward(&mut g, xv)?;
    let zeros = g.value(train).iter().filter(|&&v| v == 0.0).count();
    assert!(zeros > 4 && zeros < 28, "{zeros} of 32 dropped");
    dropout.set_training(false);
    let eval = dropout.forward(&mut g, xv)?;
    assert_eq!(g.value(eval), &x);
    assert!(matches!(
        nn::Dropout::new(1.0, 0),
        Err(Error::Config { .. })
    ));

    // Batch norm: training normalises each channel to mean 0; evaluation with fresh running
    // statistics (mean 0.1·batch mean, var 0.9 + 0.1·batch var) does something else.
    let mut bn = nn::BatchNorm::new(4);
    let y = bn.forward(&mut g, xv)?;
    for c in 0..4 {
        let mean: f32 = g.value(y).iter().skip(c).step_by(4).sum::<f32>() / 8.0;
        assert!(mean.abs() < 1e-5);
    }
    assert!(bn.running_mean.value.iter().any(|&m| m != 0.0));
    bn.set_training(false);
    let y_eval = bn.forward(&mut g, xv)?;
    assert_ne!(g.value(y_eval), g.value(y));
    Ok(())
}
