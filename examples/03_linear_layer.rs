//! Chapter 03, a linear layer and gradient descent, then Adam: fit y = 3x − 1 from noisy
//! points with one linear layer (one weight, one bias), first by plain gradient descent, then
//! with Adam, and watch both find w ≈ 3, b ≈ −1.
//!
//! Run with `cargo run --release --example 03_linear_layer`.

use handgrad::autodiff::{Graph, Reduction};
use handgrad::nn::Param;
use handgrad::optim::{Adam, Optimizer};
use handgrad::Result;
use ndarray::{Array2, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// 64 points on y = 3x − 1 with a little noise, x in [−1, 1]: (x as N×1, y as N×1).
fn data() -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = StdRng::seed_from_u64(3);
    let xs: Vec<f32> = (0..64).map(|_| rng.random_range(-1.0..1.0)).collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|x| 3.0 * x - 1.0 + rng.random_range(-0.05..0.05))
        .collect();
    let col = |v: Vec<f32>| Array2::from_shape_vec((64, 1), v).map(|a| a.into_dyn());
    (col(xs).expect("64 values"), col(ys).expect("64 values"))
}

/// One step: the forward pass, the MSE loss, backward; returns the loss and (∂L/∂w, ∂L/∂b).
fn loss_and_gradients(
    g: &mut Graph,
    w: &Param,
    b: &Param,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
) -> Result<(f32, f32, f32)> {
    g.reset();
    let (xv, yv) = (g.constant(x.clone()), g.constant(y.clone()));
    let (wv, bv) = (w.on(g), b.on(g));
    // A linear layer: x · wᵀ + b, with w of shape (out, in) = (1, 1) and b of shape (1).
    let prediction = g.linear(xv, wv, Some(bv))?;
    let loss = g.mse(prediction, yv, Reduction::Mean)?;
    g.backward(loss)?;
    let dw = g
        .param_grad(w.id())
        .map_or(0.0, |d| d.iter().copied().sum());
    let db = g
        .param_grad(b.id())
        .map_or(0.0, |d| d.iter().copied().sum());
    Ok((g.scalar(loss)?, dw, db))
}

fn main() -> Result<()> {
    let (x, y) = data();
    let mut g = Graph::new();

    // Gradient descent: move each parameter a small step against its gradient.
    let mut w = Param::new(ArrayD::zeros(IxDyn(&[1, 1])));
    let mut b = Param::new(ArrayD::zeros(IxDyn(&[1])));
    let lr = 0.1;
    println!("gradient descent, learning rate {lr}:");
    for step in 0..=200 {
        let (loss, dw, db) = loss_and_gradients(&mut g, &w, &b, &x, &y)?;
        if step % 40 == 0 {
            println!(
                "  step {step:>3}: loss {loss:.5}, w {:.4}, b {:.4}",
                w.value[[0, 0]],
                b.value[[0]]
            );
        }
        w.value[[0, 0]] -= lr * dw;
        b.value[[0]] -= lr * db;
    }
    assert!((w.value[[0, 0]] - 3.0).abs() < 0.05 && (b.value[[0]] + 1.0).abs() < 0.05);

    // Adam: the same gradients, but each parameter's step is scaled by running averages of
    // its gradient (the momentum) and of its square (how large its gradients usually are).
    let mut w = Param::new(ArrayD::zeros(IxDyn(&[1, 1])));
    let mut b = Param::new(ArrayD::zeros(IxDyn(&[1])));
    let mut adam = Adam::new(0.1)?;
    println!("Adam, learning rate 0.1:");
    for step in 0..=200 {
        let (loss, dw, db) = loss_and_gradients(&mut g, &w, &b, &x, &y)?;
        if step % 40 == 0 {
            println!(
                "  step {step:>3}: loss {loss:.5}, w {:.4}, b {:.4}",
                w.value[[0, 0]],
                b.value[[0]]
            );
        }
        adam.update("w", w.value.as_slice_mut().unwrap_or_default(), &[dw]);
        adam.update("b", b.value.as_slice_mut().unwrap_or_default(), &[db]);
    }
    assert!((w.value[[0, 0]] - 3.0).abs() < 0.05 && (b.value[[0]] + 1.0).abs() < 0.05);
    println!("both found w ≈ 3, b ≈ −1");
    Ok(())
}
