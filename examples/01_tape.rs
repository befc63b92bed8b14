//! Chapter 01, the tape: record a small computation, walk it backwards, and check every
//! gradient against one worked out by hand.
//!
//! The function is a one-neuron logistic loss, L = log(1 + e^(w·x + b)), on numbers small
//! enough to follow: with z = w·x + b and σ(z) = 1 / (1 + e^(−z)),
//!
//! ∂L/∂w = σ(z)·x,   ∂L/∂b = σ(z),   ∂L/∂x = σ(z)·w.
//!
//! Run with `cargo run --release --example 01_tape`.

use handgrad::autodiff::Graph;
use handgrad::Result;
use ndarray::{arr1, ArrayD};

/// A one-element tensor: the tape works on tensors, and a number is the smallest one.
fn number(v: f32) -> ArrayD<f32> {
    arr1(&[v]).into_dyn()
}

fn main() -> Result<()> {
    let (w0, x0, b0) = (0.5f32, 2.0f32, -0.3f32);
    let mut g = Graph::new();

    // Leaves: values we may want gradients for. `true` asks the tape to track them.
    let w = g.leaf(number(w0), true);
    let x = g.leaf(number(x0), true);
    let b = g.leaf(number(b0), true);

    // Each op computes its value now and records a node: its inputs and how to go back.
    let wx = g.mul(w, x)?; // node: wx = w·x
    let z = g.add(wx, b)?; // node: z = wx + b
    let ez = g.exp(z)?; // node: e^z
    let one_plus = g.add_scalar(ez, 1.0)?; // node: 1 + e^z
    let loss = g.log(one_plus)?; // node: L = log(1 + e^z)
    println!("the tape holds {} values:", g.len());
    println!("  w = {w0}, x = {x0}, b = {b0}");
    println!(
        "  z = w·x + b = {:.4},  L = log(1 + e^z) = {:.6}",
        g.scalar(z)?,
        g.scalar(loss)?
    );

    // Backward: start from ∂L/∂L = 1 and walk the nodes in reverse, each one turning the
    // gradient of its output into gradients of its inputs (the chain rule, one link at a time).
    g.backward(loss)?;
    let grad = |v| g.grad(v).map_or(f32::NAN, |a| a[0]);

    let z0 = w0 * x0 + b0;
    let sigma = 1.0 / (1.0 + (-z0).exp());
    let by_hand = [
        ("w", sigma * x0, grad(w)),
        ("b", sigma, grad(b)),
        ("x", sigma * w0, grad(x)),
    ];
    println!("gradients (by hand against backward()):");
    let mut worst = 0.0f32;
    for (name, hand, tape) in by_hand {
        println!("  ∂L/∂{name}: by hand {hand:.6}, by the tape {tape:.6}");
        worst = worst.max((hand - tape).abs());
    }
    assert!(
        worst < 1e-6,
        "the tape disagrees with the hand derivation by {worst}"
    );
    println!("they agree to {worst:.1e}");
    Ok(())
}
