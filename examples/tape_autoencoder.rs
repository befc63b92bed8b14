//! An autoencoder with nothing but the tape: parameters as plain tensors, the forward pass as
//! a handful of ops, backward, and an Adam update by hand — the whole training loop in one
//! screen, without the `nn`, `models` or `train` layers that wrap it in the real command.
//!
//! 784 →linear→ 64 →ReLU→ 16 →ReLU (the code) →linear→ 64 →ReLU→ 784 →sigmoid, MSE to the
//! input.
//!
//! Run with `cargo run --release --example tape_autoencoder` (uses the shipped MNIST test set).

use handgrad::autodiff::{Graph, Reduction};
use handgrad::data::batches::{epoch_order, split, SplitSpec};
use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::nn::{Init, Param};
use handgrad::optim::{Adam, Optimizer};
use handgrad::Result;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> Result<()> {
    let data = split(
        &Dataset::find("mnist", &Lookup::default())?,
        &SplitSpec::default(),
    )?;
    let mut rng = StdRng::seed_from_u64(0);

    // Four layers: weight (out, in) and bias (out) each, PyTorch's layout.
    let sizes = [(784, 64), (64, 16), (16, 64), (64, 784)];
    let mut params: Vec<(String, Param)> = Vec::new();
    for (i, &(d_in, d_out)) in sizes.iter().enumerate() {
        let shape = [d_out, d_in];
        params.push((
            format!("{i}.weight"),
            Param::new(Init::KaimingUniform.weight(&shape, &mut rng)),
        ));
        params.push((
            format!("{i}.bias"),
            Param::new(Init::KaimingUniform.bias(d_out, &shape, &mut rng)),
        ));
    }
    let mut adam = Adam::new(2e-3)?;
    let mut g = Graph::new();
    let mut batch = Vec::new();

    for epoch in 1..=3 {
        let (mut total, mut seen) = (0.0, 0);
        for indices in epoch_order(data.train.len(), 0, epoch).chunks(128) {
            // Forward: every op is recorded on the tape.
            g.reset();
            data.train.batch_into(indices, &mut batch);
            let view = ndarray::ArrayViewD::from_shape(vec![indices.len(), 784], &batch);
            let x =
                g.constant_view(view.map_err(|e| handgrad::Error::shape("batch", e.to_string()))?);
            let mut h = x;
            for (layer, pair) in params.chunks(2).enumerate() {
                let (w, b) = (pair[0].1.on(&mut g), pair[1].1.on(&mut g));
                h = g.linear(h, w, Some(b))?;
                // ReLU between layers, sigmoid at the end so pixels land in (0, 1).
                h = if layer + 1 < sizes.len() {
                    g.relu(h)?
                } else {
                    g.sigmoid(h)?
                };
            }
            let loss = g.mse(h, x, Reduction::Mean)?;

            // Backward: one call walks the tape in reverse and fills in ∂loss/∂θ.
            g.backward(loss)?;

            // Update: Adam reads each parameter's gradient and moves it. The tape holds a
            // second handle to each weight (it shares them rather than copying them); it lets
            // go of them first, so that Adam writes in place instead of copying each weight.
            g.release_params();
            for (name, p) in &mut params {
                if let (Some(grad), Some(values)) = (
                    g.param_grad(p.id()).and_then(|d| d.as_slice()),
                    p.value.as_slice_mut(),
                ) {
                    adam.update(name, values, grad);
                }
            }
            total += g.scalar(loss)? as f64 * indices.len() as f64;
            seen += indices.len();
        }
        println!(
            "epoch {epoch}: mean training loss {:.5}",
            total / seen as f64
        );
    }
    println!("the tape of the last step:\n{}", g.dump());
    Ok(())
}
