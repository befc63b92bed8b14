//! Every op, loss and layer against central finite differences, plus a golden case for the
//! main ops small enough to work out by hand, and proof that the checker catches a wrong
//! backward.

mod common;

use common::{away_from_zero, uniform};
use handgrad::autodiff::{
    grad_check, Activation, Backward, BackwardCtx, Grads, Graph, Reduction, Tolerance, Var,
};
use handgrad::nn::{self, grad_check_module, Init, Module};
use handgrad::{Error, Result};
use ndarray::{array, ArrayD};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn check(
    name: &str,
    inputs: Vec<ArrayD<f32>>,
    f: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
) -> Result<()> {
    grad_check(name, &inputs, f, Tolerance::default())
}

#[test]
fn broadcasting_arithmetic() -> Result<()> {
    let a = uniform(&[3, 4], -1.0, 1.0, 1);
    let row = uniform(&[4], -1.0, 1.0, 2);
    let col = uniform(&[3, 1], 0.5, 2.0, 3);
    check("add row", vec![a.clone(), row.clone()], |g, v| {
        g.add(v[0], v[1])
    })?;
    check("sub col", vec![a.clone(), col.clone()], |g, v| {
        g.sub(v[0], v[1])
    })?;
    check("mul row", vec![a.clone(), row], |g, v| g.mul(v[0], v[1]))?;
    check("div col", vec![a.clone(), col], |g, v| g.div(v[0], v[1]))?;
    check("x·x uses x twice", vec![a], |g, v| g.mul(v[0], v[0]))
}

#[test]
fn unary_maths() -> Result<()> {
    let x = uniform(&[2, 5], -1.0, 1.0, 4);
    let pos = uniform(&[2, 5], 0.5, 2.0, 5);
    check("exp", vec![x.clone()], |g, v| g.exp(v[0]))?;
    check("log", vec![pos.clone()], |g, v| g.log(v[0]))?;
    check("sqrt", vec![pos.clone()], |g, v| g.sqrt(v[0]))?;
    check("pow 2.5", vec![pos], |g, v| g.pow(v[0], 2.5))?;
    check("add_scalar", vec![x.clone()], |g, v| {
        g.add_scalar(v[0], 3.0)
    })?;
    check("mul_scalar", vec![x.clone()], |g, v| {
        g.mul_scalar(v[0], -0.7)
    })?;
    check("neg", vec![x], |g, v| g.neg(v[0]))
}

#[test]
fn reductions() -> Result<()> {
    let x = uniform(&[2, 3, 4], -1.0, 1.0, 6);
    check("sum", vec![x.clone()], |g, v| g.sum(v[0]))?;
    check("mean", vec![x.clone()], |g, v| g.mean(v[0]))?;
    check("sum_axis 1", vec![x.clone()], |g, v| {
        g.sum_axis(v[0], 1, false)
    })?;
    check("mean_axis 2 keep", vec![x.clone()], |g, v| {
        g.mean_axis(v[0], 2, true)
    })?;
    check("sum_axis 0", vec![x], |g, v| g.sum_axis(v[0], 0, false))
}

#[test]
fn shape_ops() -> Result<()> {
    let x = uniform(&[2, 3, 2, 2], -1.0, 1.0, 7);
    check("reshape", vec![x.clone()], |g, v| g.reshape(v[0], &[4, 6]))?;
    check("flatten", vec![x.clone()], |g, v| g.flatten(v[0]))?;
    check("slice", vec![x.clone()], |g, v| g.slice(v[0], 1, 1, 3))?;
    let y = uniform(&[2, 1, 2, 2], -1.0, 1.0, 8);
    check("concat", vec![x, y], |g, v| {
        g.concat(&[v[0], v[1], v[0]], 1)
    })
}

#[test]
fn linear_and_matmul() -> Result<()> {
    let x = uniform(&[4, 5], -1.0, 1.0, 9);
    let w = uniform(&[3, 5], -1.0, 1.0, 10);
    let b = uniform(&[3], -1.0, 1.0, 11);
    check("linear", vec![x.clone(), w.clone(), b], |g, v| {
        g.linear(v[0], v[1], Some(v[2]))
    })?;
    check("linear without bias", vec![x.clone(), w.clone()], |g, v| {
        g.linear(v[0], v[1], None)
    })?;
    let m = uniform(&[5, 2], -1.0, 1.0, 12);
    check("matmul", vec![x, m], |g, v| g.matmul(v[0], v[1]))
}

#[test]
fn conv2d_stride2_pad1_matches_finite_differences() -> Result<()> {
    let x = uniform(&[2, 3, 7, 6], -1.0, 1.0, 13);
    let w = uniform(&[4, 3, 3, 3], -1.0, 1.0, 14);
    let b = uniform(&[4], -1.0, 1.0, 15);
    check("conv2d s2 p1", vec![x, w, b], |g, v| {
        g.conv2d(v[0], v[1], Some(v[2]), 2, 1)
    })
}

#[test]
fn conv2d_odd_kernels_and_strides() -> Result<()> {
    let x = uniform(&[1, 2, 7, 6], -1.0, 1.0, 16);
    check(
        "conv2d 3×5 s1 p2",
        vec![x.clone(), uniform(&[3, 2, 3, 5], -1.0, 1.0, 17)],
        |g, v| g.conv2d(v[0], v[1], None, 1, 2),
    )?;
    check(
        "conv2d 2×2 s3",
        vec![x.clone(), uniform(&[2, 2, 2, 2], -1.0, 1.0, 18)],
        |g, v| g.conv2d(v[0], v[1], None, 3, 0),
    )?;
    check(
        "conv2d 1×1",
        vec![x, uniform(&[3, 2, 1, 1], -1.0, 1.0, 19)],
        |g, v| g.conv2d(v[0], v[1], None, 1, 0),
    )
}

#[test]
fn conv_transpose2d_with_output_padding() -> Result<()> {
    let x = uniform(&[2, 3, 4, 3], -1.0, 1.0, 20);
    let w = uniform(&[3, 2, 3, 3], -1.0, 1.0, 21);
    let b = uniform(&[2], -1.0, 1.0, 22);
    check(
        "conv_transpose2d s2 p1 op1",
        vec![x.clone(), w.clone(), b],
        |g, v| g.conv_transpose2d(v[0], v[1], Some(v[2]), 2, 1, 1),
    )?;
    check("conv_transpose2d s3 p0", vec![x, w], |g, v| {
        g.conv_transpose2d(v[0], v[1], None, 3, 0, 2)
    })
}

#[test]
fn pooling_and_upsampling() -> Result<()> {
    // Distinct values 0.1 apart, shuffled, so no ±h probe changes which element wins a window.
    let mut values: Vec<f32> = (0..2 * 2 * 6 * 5).map(|k| k as f32 * 0.1).collect();
    let mut rng = StdRng::seed_from_u64(23);
    rand::seq::SliceRandom::shuffle(values.as_mut_slice(), &mut rng);
    let x = ArrayD::from_shape_vec(vec![2, 2, 6, 5], values).expect("shape matches");
    check("max_pool2d k2 s2", vec![x.clone()], |g, v| {
        g.max_pool2d(v[0], 2, 2)
    })?;
    check("max_pool2d k3 s1", vec![x.clone()], |g, v| {
        g.max_pool2d(v[0], 3, 1)
    })?;
    check(
        "upsample ×2",
        vec![uniform(&[1, 2, 3, 2], -1.0, 1.0, 24)],
        |g, v| g.upsample_nearest2d(v[0], 2),
    )
}

#[test]
fn activations() -> Result<()> {
    // |x| > 2h so no probe straddles the kink at 0.
    let x = away_from_zero(&[3, 7], 0.05, 2.0, 25);
    for act in Activation::ALL {
        check(act.name(), vec![x.clone()], |g, v| g.activation(v[0], act))?;
    }
    Ok(())
}

#[test]
fn softmax_family() -> Result<()> {
    let x = uniform(&[3, 5], -2.0, 2.0, 26);
    check("softmax", vec![x.clone()], |g, v| g.softmax(v[0]))?;
    check("log_softmax", vec![x], |g, v| g.log_softmax(v[0]))
}

#[test]
fn batch_norm_train_and_eval() -> Result<()> {
    let x = uniform(&[4, 3, 2, 2], -1.0, 1.0, 27);
    let gamma = uniform(&[3], 0.5, 1.5, 28);
    let beta = uniform(&[3], -0.5, 0.5, 29);
    check(
        "batch_norm train 2d",
        vec![x.clone(), gamma.clone(), beta.clone()],
        |g, v| Ok(g.batch_norm_train(v[0], v[1], v[2], 1e-5)?.0),
    )?;
    check(
        "batch_norm train 1d",
        vec![uniform(&[6, 3], -1.0, 1.0, 30), gamma.clone(), beta.clone()],
        |g, v| Ok(g.batch_norm_train(v[0], v[1], v[2], 1e-5)?.0),
    )?;
    check("batch_norm eval", vec![x, gamma, beta], |g, v| {
        g.batch_norm_eval(v[0], v[1], v[2], &[0.1, -0.2, 0.0], &[1.5, 0.5, 1.0], 1e-5)
    })
}

#[test]
fn dropout_with_a_fixed_mask() -> Result<()> {
    let x = uniform(&[4, 6], -1.0, 1.0, 31);
    // A fresh generator with the same seed on every call draws the same mask.
    check("dropout", vec![x], |g, v| {
        g.dropout(v[0], 0.3, &mut StdRng::seed_from_u64(5))
    })
}

#[test]
fn losses() -> Result<()> {
    let p = uniform(&[4, 6], 0.05, 0.95, 32);
    let t = uniform(&[4, 6], 0.0, 1.0, 33);
    let z = uniform(&[4, 6], -3.0, 3.0, 34);
    check("mse mean", vec![p.clone(), t.clone()], |g, v| {
        g.mse(v[0], v[1], Reduction::Mean)
    })?;
    check("mse sum", vec![p.clone(), t.clone()], |g, v| {
        g.mse(v[0], v[1], Reduction::Sum)
    })?;
    check("bce", vec![p, t.clone()], |g, v| {
        g.bce(v[0], v[1], Reduction::Mean)
    })?;
    check("bce_with_logits", vec![z.clone(), t], |g, v| {
        g.bce_with_logits(v[0], v[1], Reduction::Sum)
    })?;
    check(
        "kl_gaussian",
        vec![
            uniform(&[4, 3], -1.0, 1.0, 35),
            uniform(&[4, 3], -1.0, 1.0, 36),
        ],
        |g, v| g.kl_gaussian(v[0], v[1]),
    )?;
    let targets = [1, 0, 5, 3];
    check("nll", vec![z.clone()], |g, v| {
        g.nll(v[0], &targets, Reduction::Mean)
    })?;
    check("cross_entropy", vec![z], |g, v| {
        g.cross_entropy(v[0], &targets, Reduction::Mean)
    })
}

#[test]
fn reparameterisation() -> Result<()> {
    let eps = uniform(&[3, 2], -1.0, 1.0, 37);
    let (mu, logvar) = (
        uniform(&[3, 2], -1.0, 1.0, 38),
        uniform(&[3, 2], -1.0, 1.0, 39),
    );
    check("reparameterize", vec![mu, logvar], |g, v| {
        let eps = g.constant(eps.clone());
        g.reparameterize(v[0], v[1], eps)
    })
}

#[test]
fn every_layer_against_finite_differences() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(40);
    let tol = Tolerance::default();
    grad_check_module(
        "Linear",
        &mut nn::Linear::new(5, 3, true, Init::PyTorchDefault, &mut rng),
        &uniform(&[2, 5], -1.0, 1.0, 41),
        tol,
    )?;
    let img = uniform(&[2, 2, 5, 5], -1.0, 1.0, 42);
    grad_check_module(
        "Conv2d",
        &mut nn::Conv2d::new(2, 3, nn::Kernel::new(3, 2, 1), Init::LecunNormal, &mut rng),
        &img,
        tol,
    )?;
    grad_check_module(
        "ConvTranspose2d",
        &mut nn::ConvTranspose2d::new(
            2,
            3,
            nn::Kernel::new(3, 2, 1),
            1,
            Init::XavierUniform,
            &mut rng,
        ),
        &img,
        tol,
    )?;
    grad_check_module("BatchNorm2d", &mut nn::BatchNorm::new(2), &img, tol)?;
    grad_check_module(
        "BatchNorm1d",
        &mut nn::BatchNorm::new(5),
        &uniform(&[4, 5], -1.0, 1.0, 43),
        tol,
    )?;
    grad_check_module(
        "Act(SELU)",
        &mut nn::Act(Activation::Selu),
        &away_from_zero(&[2, 5], 0.05, 2.0, 44),
        tol,
    )?;
    grad_check_module(
        "MaxPool2d",
        &mut nn::MaxPool2d {
            kernel: 2,
            stride: 2,
        },
        &uniform(&[1, 1, 4, 4], -1.0, 1.0, 45),
        tol,
    )?;
    grad_check_module("Upsample", &mut nn::Upsample(2), &img, tol)?;
    grad_check_module("Flatten", &mut nn::Flatten, &img, tol)?;
    grad_check_module(
        "Unflatten",
        &mut nn::Unflatten(vec![2, 5, 5]),
        &uniform(&[2, 50], -1.0, 1.0, 46),
        tol,
    )
}

#[test]
fn a_small_conv_autoencoder_end_to_end() -> Result<()> {
    // 1×8×8 →conv s2→ 3×4×4 →flatten→ 48 →linear→ 4 →linear→ 48 →unflatten→ 3×4×4
    // →transposed conv s2→ 1×8×8 →sigmoid, then MSE against the input itself.
    let mut rng = StdRng::seed_from_u64(47);
    let mut ae = nn::Sequential::new("ae")
        .with(nn::Conv2d::new(
            1,
            3,
            nn::Kernel::new(3, 2, 1),
            Init::LecunNormal,
            &mut rng,
        ))
        .with(nn::Act(Activation::Tanh))
        .with(nn::Flatten)
        .with(nn::Linear::new(48, 4, true, Init::LecunNormal, &mut rng))
        .with(nn::Act(Activation::Tanh))
        .with(nn::Linear::new(4, 48, true, Init::LecunNormal, &mut rng))
        .with(nn::Unflatten(vec![3, 4, 4]))
        .with(nn::ConvTranspose2d::new(
            3,
            1,
            nn::Kernel::new(3, 2, 1),
            1,
            Init::LecunNormal,
            &mut rng,
        ))
        .with(nn::Act(Activation::Sigmoid))
        .with(MseToTarget(uniform(&[2, 1, 8, 8], 0.0, 1.0, 48)));
    grad_check_module(
        "conv autoencoder",
        &mut ae,
        &uniform(&[2, 1, 8, 8], 0.0, 1.0, 48),
        Tolerance::default(),
    )
}

/// A loss as the last "layer", so the module check covers model + loss in one piece.
#[derive(Debug)]
struct MseToTarget(ArrayD<f32>);

impl Module for MseToTarget {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let t = g.constant(self.0.clone());
        g.mse(x, t, Reduction::Mean)
    }
}

/// y = x², with a backward that forgets the factor 2: the classic slip.
#[derive(Debug)]
struct SquareMissingTwo;

impl Backward for SquareMissingTwo {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        let d_x = &ctx.input(0) * ctx.d_y();
        Ok([Some(d_x)].into())
    }
}

/// y = x², with the correct backward 2x.
#[derive(Debug)]
struct Square;

impl Backward for Square {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        Ok([Some(&ctx.input(0) * ctx.d_y() * 2.0)].into())
    }
}

#[test]
fn the_checker_rejects_a_planted_wrong_backward() {
    let x = uniform(&[3, 3], -1.0, 1.0, 49);
    let square = |g: &mut Graph, v: &[Var], wrong: bool| {
        let y = g.value(v[0]).mapv(|a| a * a);
        if wrong {
            g.record(SquareMissingTwo, &[v[0]], y)
        } else {
            g.record(Square, &[v[0]], y)
        }
    };
    grad_check(
        "square",
        std::slice::from_ref(&x),
        |g, v| Ok(square(g, v, false)),
        Tolerance::default(),
    )
    .expect("the correct backward passes");
    let err = grad_check(
        "square",
        &[x],
        |g, v| Ok(square(g, v, true)),
        Tolerance::default(),
    )
    .expect_err("the wrong backward must be caught");
    match err {
        Error::GradientMismatch {
            analytic, numeric, ..
        } => assert!(
            (numeric - 2.0 * analytic).abs() < 1e-2,
            "{analytic} vs {numeric}"
        ),
        other => panic!("unexpected error {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Golden cases, small enough to work out by hand.

fn forward_backward(
    inputs: &[ArrayD<f32>],
    f: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
) -> Result<(ArrayD<f32>, Vec<ArrayD<f32>>)> {
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|x| g.leaf(x.clone(), true)).collect();
    let y = f(&mut g, &vars)?;
    let sum = g.sum(y)?;
    g.backward(sum)?;
    let grads = vars
        .iter()
        .map(|&v| g.grad(v).cloned().expect("every input gets a gradient"))
        .collect();
    Ok((g.value(y).to_owned(), grads))
}

#[test]
fn golden_linear() -> Result<()> {
    // x = [[1, 2]], w = [[3, 4], [5, 6]], b = [0.5, -1]
    // y = x·wᵀ + b = [1·3 + 2·4 + 0.5, 1·5 + 2·6 − 1] = [11.5, 16]
    // L = Σy: ∂L/∂x = [3 + 5, 4 + 6] = [8, 10]; ∂L/∂w = [[1, 2], [1, 2]]; ∂L/∂b = [1, 1]
    let (y, d) = forward_backward(
        &[
            array![[1.0f32, 2.0]].into_dyn(),
            array![[3.0f32, 4.0], [5.0, 6.0]].into_dyn(),
            array![0.5f32, -1.0].into_dyn(),
        ],
        |g, v| g.linear(v[0], v[1], Some(v[2])),
    )?;
    assert_eq!(y, array![[11.5f32, 16.0]].into_dyn());
    assert_eq!(d[0], array![[8.0f32, 10.0]].into_dyn());
    assert_eq!(d[1], array![[1.0f32, 2.0], [1.0, 2.0]].into_dyn());
    assert_eq!(d[2], array![1.0f32, 1.0].into_dyn());
    Ok(())
}

#[test]
fn golden_conv2d() -> Result<()> {
    // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 0], [0, −1]], stride 1, no pad, no bias.
    // y[i][j] = x[i][j] − x[i+1][j+1]: every entry is −4. ∂L/∂w[a][b] = Σ of the 2×2 window of
    // x at offset (a, b): [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12, 16], [24, 28]].
    let x = ArrayD::from_shape_vec(vec![1, 1, 3, 3], (1..=9).map(|v| v as f32).collect())
        .expect("9 values");
    let w = ArrayD::from_shape_vec(vec![1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0]).expect("4 values");
    let (y, d) = forward_backward(&[x, w], |g, v| g.conv2d(v[0], v[1], None, 1, 0))?;
    assert!(y.iter().all(|&v| v == -4.0));
    assert_eq!(
        d[1].iter().copied().collect::<Vec<_>>(),
        vec![12.0, 16.0, 24.0, 28.0]
    );
    // ∂L/∂x: +1 from each window's top-left tap, −1 from each bottom-right tap.
    assert_eq!(
        d[0].iter().copied().collect::<Vec<_>>(),
        vec![1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0]
    );
    Ok(())
}

#[test]
fn golden_conv_transpose2d() -> Result<()> {
    // One pixel x = 2 scatters the 2×2 kernel w = [[1, 2], [3, 4]] with stride 2 into a 2×2
    // output: y = 2·w = [[2, 4], [6, 8]]. With L = Σy, ∂L/∂x = Σw = 10 and ∂L/∂w = 2 everywhere.
    let x = ArrayD::from_elem(vec![1, 1, 1, 1], 2.0f32);
    let w = ArrayD::from_shape_vec(vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).expect("4 values");
    let (y, d) = forward_backward(&[x, w], |g, v| {
        g.conv_transpose2d(v[0], v[1], None, 2, 0, 0)
    })?;
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        vec![2.0, 4.0, 6.0, 8.0]
    );
    assert_eq!(d[0].iter().copied().collect::<Vec<_>>(), vec![10.0]);
    assert!(d[1].iter().all(|&v| v == 2.0));
    Ok(())
}

#[test]
fn golden_losses() -> Result<()> {
    // MSE of p = [1, 3] against t = [0, 1]: ((1 − 0)² + (3 − 1)²) / 2 = 2.5; ∂/∂p = 2(p − t)/2 = [1, 2].
    let (l, d) = forward_backward(
        &[
            array![1.0f32, 3.0].into_dyn(),
            array![0.0f32, 1.0].into_dyn(),
        ],
        |g, v| g.mse(v[0], v[1], Reduction::Mean),
    )?;
    assert_eq!(l.iter().copied().collect::<Vec<_>>(), vec![2.5]);
    assert_eq!(d[0], array![1.0f32, 2.0].into_dyn());
    // KL with μ = 0, logvar = 0 is 0 (the prior itself); with μ = 2: −½(1 + 0 − 4 − 1) = 2.
    let (kl, d) = forward_backward(
        &[array![[2.0f32]].into_dyn(), array![[0.0f32]].into_dyn()],
        |g, v| g.kl_gaussian(v[0], v[1]),
    )?;
    assert_eq!(kl.iter().copied().collect::<Vec<_>>(), vec![2.0]);
    assert_eq!((d[0][[0, 0]], d[1][[0, 0]]), (2.0, 0.0)); // ∂/∂μ = μ, ∂/∂logvar = ½(e⁰ − 1)
                                                          // Sigmoid at 0 is ½ and its slope there ½·(1 − ½) = ¼.
    let (s, d) = forward_backward(&[array![0.0f32].into_dyn()], |g, v| g.sigmoid(v[0]))?;
    assert_eq!((s[[0]], d[0][[0]]), (0.5, 0.25));
    Ok(())
}

#[test]
fn every_op_of_the_catalog_passes_and_fails_with_a_planted_bug() -> Result<()> {
    use handgrad::autodiff::catalog::{case, plant_bug, CaseOptions, OPS};
    use handgrad::autodiff::grad_check_report;
    for &name in OPS {
        for options in [
            CaseOptions::default(),
            CaseOptions {
                shape: vec![3, 4],
                kernel: 2,
                stride: 1,
                padding: 0,
                channels: (1, 2),
                size: 5,
            },
        ] {
            let c = case(name, &options)?;
            let reports = grad_check_report(&c.inputs, &c.f, Tolerance::default())?;
            assert_eq!(reports.len(), c.inputs.len());
            for r in &reports {
                assert!(r.passed(), "{name} {options:?}: {r:?}");
            }
            let planted = grad_check_report(
                &c.inputs,
                |g, v| {
                    let y = (c.f)(g, v)?;
                    Ok(plant_bug(g, y))
                },
                Tolerance::default(),
            )?;
            // Every input whose gradient is not zero is caught.
            assert!(
                planted.iter().any(|r| !r.passed()),
                "{name}: the planted bug slipped through"
            );
        }
    }
    Ok(())
}
