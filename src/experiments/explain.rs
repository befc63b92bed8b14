//! `handgrad explain`: a model as a table, before anything is trained — every layer's shapes,
//! parameters, multiply-adds and the memory its output takes at a batch size, and, for each
//! transposed convolution of the decoder, the arithmetic that gives its `output_padding`.
//!
//! Everything here comes from [`ModelPlan`], the same plan the model is built from, so what
//! the table says is what training will run.

use crate::error::Result;
use crate::machine::{human_bytes, human_count};
use crate::models::{ModelPlan, ModelSpec};

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainRow {
    /// `encoder.3`.
    pub name: String,
    /// `Conv2d 1→6 k3 s2 p1`.
    pub layer: String,
    /// Shape received for one image.
    pub input: Vec<usize>,
    /// Shape produced for one image.
    pub output: Vec<usize>,
    /// Trainable parameters.
    pub parameters: u128,
    /// Multiply-adds of the forward pass, per image.
    pub macs: u128,
    /// Bytes of its output over a batch (what training keeps for the backward pass).
    pub activation_bytes: u128,
    /// What a learner needs said beyond kind and shapes (see [`crate::models::plan::LayerPlan::note`]).
    pub note: Option<String>,
}

/// The table for `spec` at batch size `batch`, and the model's totals as sentences.
///
/// # Errors
/// Whatever [`ModelPlan::new`] refuses: a layer whose shapes do not fit, named.
pub fn explain(spec: &ModelSpec, batch: usize) -> Result<(Vec<ExplainRow>, Vec<String>)> {
    let plan = ModelPlan::new(spec)?;
    let rows: Vec<ExplainRow> = plan
        .layers()
        .map(|l| ExplainRow {
            name: l.name.clone(),
            layer: l.layer.to_string(),
            input: l.input.clone(),
            output: l.output.clone(),
            parameters: l.layer.parameters(),
            macs: l.macs(),
            activation_bytes: 4 * l.output_len() * batch as u128,
            note: l.note.clone(),
        })
        .collect();
    let activations: u128 = rows.iter().map(|r| r.activation_bytes).sum();
    let totals = vec![
        format!(
            "{} parameters ({} as f32), {} multiply-adds per image forward (a training step does about three times that)",
            human_count(plan.parameters()),
            human_bytes(4 * plan.parameters()),
            human_count(plan.macs())
        ),
        format!(
            "at batch {batch}: the layer outputs take {}; a training step needs about {} in all (values, gradients and scratch, plus the weights, their gradients and Adam's moments)",
            human_bytes(activations),
            human_bytes(plan.training_bytes(batch))
        ),
    ];
    Ok((rows, totals))
}

/// "1×28×28".
pub fn shape(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}
