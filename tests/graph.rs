//! The tape's bookkeeping: gradients add up, constants get none, recording can be switched
//! off, buffers are recycled, and misuse gives errors rather than panics.

mod common;

use common::uniform;
use handgrad::autodiff::{Graph, Pass, Reduction};
use handgrad::nn::{self, Init, Module};
use handgrad::{Error, Result};
use ndarray::{arr1, ArrayD};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn a_value_used_twice_gets_both_gradients() -> Result<()> {
    // y = x·3 + x·5 → dy/dx = 8
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[2.0f32]).into_dyn(), true);
    let a = g.mul_scalar(x, 3.0)?;
    let b = g.mul_scalar(x, 5.0)?;
    let y = g.add(a, b)?;
    let l = g.sum(y)?;
    g.backward(l)?;
    assert_eq!(g.grad(x).map(|d| d[[0]]), Some(8.0));
    Ok(())
}

#[test]
fn a_finite_loss_with_an_infinite_gradient_names_the_op_whose_backward_made_it() -> Result<()> {
    // √(2x) at x = 0 is 0, but its derivative 1/√(2x) is infinite there: every value on the
    // tape is finite, and the gradient that reaches x is not.
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[0.0f32, 1.0, 4.0]).into_dyn(), true);
    let y = g.mul_scalar(x, 2.0)?;
    let r = g.sqrt(y)?;
    let l = g.sum(r)?;
    assert_eq!(g.first_non_finite_value(), None);
    let place = g
        .first_non_finite_gradient(l)?
        .expect("the gradient of the square root at 0 is infinite");
    // Nodes in order: x, 2x, √, sum. The sum's backward is finite; the square root's is not.
    assert_eq!((place.node, place.pass), (2, Pass::Backward), "{place}");
    assert!(place.op.contains("Sqrt"), "{place:?}");
    Ok(())
}

#[test]
fn diamonds_multiply_along_each_path() -> Result<()> {
    // x → u = x², v = eˣ → y = u·v; dy/dx = 2x·eˣ + x²·eˣ = (2x + x²)·eˣ
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[0.7f32]).into_dyn(), true);
    let u = g.mul(x, x)?;
    let v = g.exp(x)?;
    let y = g.mul(u, v)?;
    let l = g.sum(y)?;
    g.backward(l)?;
    let want = (2.0 * 0.7 + 0.49f32) * 0.7f32.exp();
    let got = g.grad(x).map(|d| d[[0]]).unwrap_or(f32::NAN);
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    Ok(())
}

#[test]
fn constants_get_no_gradient() -> Result<()> {
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[1.0f32, 2.0]).into_dyn(), true);
    let c = g.constant(arr1(&[3.0f32, 4.0]).into_dyn());
    let y = g.mul(x, c)?;
    let l = g.sum(y)?;
    g.backward(l)?;
    assert!(g.grad(c).is_none());
    assert_eq!(
        g.grad(x).map(|d| d.to_owned()),
        Some(arr1(&[3.0f32, 4.0]).into_dyn())
    );
    Ok(())
}

#[test]
fn recording_off_computes_values_but_refuses_backward() -> Result<()> {
    let mut g = Graph::new();
    g.set_recording(false);
    let x = g.leaf(arr1(&[1.0f32, 2.0]).into_dyn(), true);
    let y = g.mul(x, x)?;
    let l = g.sum(y)?;
    assert_eq!(g.scalar(l)?, 5.0);
    assert!(!g.requires_grad(l));
    assert!(matches!(g.backward(l), Err(Error::Graph { .. })));
    Ok(())
}

#[test]
fn backward_needs_a_scalar() {
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[1.0f32, 2.0]).into_dyn(), true);
    let y = g.mul_scalar(x, 2.0).expect("an op");
    let err = g.backward(y).expect_err("a vector is not a loss");
    assert!(err.to_string().contains("scalar"), "{err}");
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let mut g = Graph::new();
    let x = g.constant(ArrayD::zeros(vec![64, 3, 28, 28]));
    let w = g.constant(ArrayD::zeros(vec![32, 1, 3, 3]));
    let err = g.conv2d(x, w, None, 1, 1).expect_err("channels differ");
    let text = err.to_string();
    assert!(
        text.contains("conv2d") && text.contains("3 channels") && text.contains("[32, 1, 3, 3]"),
        "{text}"
    );
    let a = g.constant(ArrayD::zeros(vec![2, 3]));
    let b = g.constant(ArrayD::zeros(vec![4]));
    assert!(g
        .add(a, b)
        .expect_err("no broadcast")
        .to_string()
        .contains("[2, 3] and [4]"));
}

#[test]
fn a_sequential_names_the_layer_that_does_not_fit() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = nn::Sequential::new("encoder")
        .with(nn::Conv2d::new(
            1,
            4,
            nn::Kernel::new(3, 2, 1),
            Init::PyTorchDefault,
            &mut rng,
        ))
        .with(nn::Flatten)
        .with(nn::Linear::new(
            100,
            2,
            true,
            Init::PyTorchDefault,
            &mut rng,
        )); // 4·14·14 = 784, not 100
    let mut g = Graph::new();
    let x = g.constant(ArrayD::zeros(vec![2, 1, 28, 28]));
    let err = model
        .forward(&mut g, x)
        .expect_err("784 features do not fit 100");
    match err {
        Error::Architecture { layer, detail } => {
            assert_eq!(layer, "encoder.2");
            assert!(detail.contains("784") && detail.contains("100"), "{detail}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn parameters_are_found_by_id_after_backward() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(2);
    let mut layer = nn::Linear::new(3, 2, true, Init::PyTorchDefault, &mut rng);
    let mut g = Graph::new();
    let x = g.constant(uniform(&[4, 3], -1.0, 1.0, 3));
    let y = layer.forward(&mut g, x)?;
    let t = g.constant(ArrayD::zeros(vec![4, 2]));
    let l = g.mse(y, t, Reduction::Mean)?;
    g.backward(l)?;
    assert_eq!(
        g.param_grad(layer.params.weight.id())
            .map(|d| d.shape().to_vec()),
        Some(vec![2, 3])
    );
    assert!(g
        .param_grad(
            layer
                .params
                .bias
                .as_ref()
                .map(|b| b.id())
                .expect("has a bias")
        )
        .is_some());
    Ok(())
}

#[test]
fn after_the_first_step_buffers_are_recycled_not_reallocated() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(4);
    let mut model = nn::Sequential::new("m")
        .with(nn::Conv2d::new(
            1,
            4,
            nn::Kernel::new(3, 2, 1),
            Init::PyTorchDefault,
            &mut rng,
        ))
        .with(nn::Flatten)
        .with(nn::Linear::new(
            4 * 4 * 4,
            8,
            true,
            Init::PyTorchDefault,
            &mut rng,
        ));
    let x = uniform(&[3, 1, 8, 8], 0.0, 1.0, 5);
    let mut g = Graph::new();
    let mut pooled = Vec::new();
    for _ in 0..3 {
        let xv = g.constant(x.clone());
        let y = model.forward(&mut g, xv)?;
        let l = g.mean(y)?;
        g.backward(l)?;
        g.reset();
        pooled.push(g.pooled_floats());
    }
    // Step 1 fills the pool; later steps take every buffer from it and give it back, so the
    // pool neither grows (no new allocations) nor shrinks.
    assert!(pooled[0] > 0);
    assert_eq!(pooled[1], pooled[0], "pool after each step: {pooled:?}");
    assert_eq!(pooled[2], pooled[0]);
    Ok(())
}

#[test]
fn dump_lists_every_node() -> Result<()> {
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[1.0f32]).into_dyn(), true);
    let y = g.sigmoid(x)?;
    let _ = g.sum(y)?;
    let text = g.dump();
    assert_eq!(text.lines().count(), 3);
    assert!(
        text.contains("Sigmoid") && text.contains("leaf (requires grad)"),
        "{text}"
    );
    Ok(())
}

#[test]
fn a_var_kept_across_reset_is_an_error_not_another_value() -> Result<()> {
    let mut g = Graph::new();
    let x = g.leaf(arr1(&[1.0f32, 2.0]).into_dyn(), true);
    let y = g.relu(x)?;
    g.reset();
    // The tape of the next step reuses positions 0 and 1 for other values.
    let _other = g.leaf(arr1(&[5.0f32, 6.0, 7.0]).into_dyn(), true);
    let err = g.relu(x).expect_err("x belongs to the previous step");
    assert!(
        err.to_string().contains("before the graph was reset"),
        "{err}"
    );
    assert!(g.backward(y).is_err());
    assert!(g.scalar(y).is_err());
    assert!(g.grad(x).is_none());
    Ok(())
}

#[test]
fn a_var_of_another_graph_is_an_error() -> Result<()> {
    let mut a = Graph::new();
    let mut b = Graph::new();
    let x = a.leaf(arr1(&[1.0f32]).into_dyn(), true);
    let _ = b.leaf(arr1(&[1.0f32]).into_dyn(), true);
    let err = b.exp(x).expect_err("x is a's");
    assert!(err.to_string().contains("another graph"), "{err}");
    Ok(())
}
