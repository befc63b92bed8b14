//! Chapter 02, shapes and broadcasting: adding a bias row to every row of a batch, and why
//! the bias's gradient is the sum of the rows' gradients.
//!
//! y = x + b with x of shape (3, 4) and b of shape (4): b is "stretched" along the first axis
//! and added to each of the three rows. Backward must undo the stretch: each element of b
//! touched three outputs, so its gradient is the sum of their three gradients.
//!
//! Run with `cargo run --release --example 02_broadcasting`.

use handgrad::autodiff::Graph;
use handgrad::Result;
use ndarray::{array, Axis};

fn main() -> Result<()> {
    let mut g = Graph::new();
    let x = g.leaf(
        array![
            [1.0f32, 2.0, 3.0, 4.0],
            [5.0, 6.0, 7.0, 8.0],
            [9.0, 10.0, 11.0, 12.0]
        ]
        .into_dyn(),
        true,
    );
    let b = g.leaf(array![0.1f32, 0.2, 0.3, 0.4].into_dyn(), true);
    let y = g.add(x, b)?;
    println!(
        "x is {:?}, b is {:?}, x + b is {:?}",
        g.shape(x),
        g.shape(b),
        g.shape(y)
    );

    // A loss that weighs every output differently, so the gradients are not all alike:
    // L = Σ r ⊙ y, whose gradient with respect to y is r itself.
    let r = g.constant(
        array![
            [1.0f32, 0.0, -1.0, 2.0],
            [0.5, 0.5, 0.5, 0.5],
            [-1.0, 3.0, 0.0, 1.0]
        ]
        .into_dyn(),
    );
    let weighted = g.mul(y, r)?;
    let loss = g.sum(weighted)?;
    g.backward(loss)?;

    let r_values = g.value(r).clone();
    let d_x = g.grad(x).cloned().unwrap_or_default();
    let d_b = g.grad(b).cloned().unwrap_or_default();
    println!("∂L/∂x =\n{d_x}");
    println!("∂L/∂b = {d_b}");
    // x was not stretched: its gradient is r, element for element.
    assert_eq!(d_x, r_values);
    // b was stretched over 3 rows: its gradient sums r over them.
    let column_sums = r_values.sum_axis(Axis(0));
    println!("the columns of r summed: {column_sums}");
    assert_eq!(d_b, column_sums);
    println!("the bias's gradient is the row gradients summed, as the chapter says");
    Ok(())
}
