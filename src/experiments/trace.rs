//! `handgrad trace`: one training step's tape, node by node — what a learner would otherwise
//! have to imagine. Each row is one value on the tape: the data copied in and the
//! parameters shared with their layers (`leaf`), then every op of the forward pass in the
//! order it ran, with the shapes it read and made, its multiply-adds, and how long its
//! forward and backward took.

use super::RunOptions;
use crate::autodiff::TraceRow;
use crate::data::mnist::Dataset;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::seed::{self, Stream};
use crate::train::run_dir::new_trainer;
use crate::train::RunConfig;
use std::path::Path;

/// Runs two training steps of `cfg` at its batch size on the first images of its dataset (the
/// first step warms buffers up) and returns the second step's tape.
///
/// # Errors
/// Dataset and model errors; a batch larger than the images available.
pub fn trace(cfg: &RunConfig, opts: &RunOptions) -> Result<Vec<TraceRow>> {
    cfg.validate()?;
    let ds = Dataset::find(&cfg.dataset, &opts.lookup)?;
    super::check_image_size(&ds, cfg.model.input)?;
    let images = ds.train.as_ref().unwrap_or(&ds.test);
    let batch = cfg.train.batch_size;
    if batch > images.len() {
        return Err(Error::config(
            "batch size",
            format!("{batch} is more than the {} images available", images.len()),
        ));
    }
    let mut trainer = new_trainer(cfg)?;
    trainer.enable_profile();
    let mut rng = seed::rng(cfg.train.seed, Stream::Step { epoch: 0, batch: 0 });
    let indices: Vec<usize> = (0..batch).collect();
    for _ in 0..2 {
        trainer.step(images, &indices, &mut rng)?;
    }
    Ok(trainer.trace())
}

/// "512×6×14×14".
fn shape(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// Writes the tape as a Graphviz graph: a node per value (leaves as ellipses, ops as boxes,
/// labelled with the op, the layer, the shape and the multiply-adds), an edge per input.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_dot(rows: &[TraceRow], title: &str, path: &Path) -> Result<()> {
    let mut dot = format!(
        "digraph tape {{\n  label=\"{}\";\n  labelloc=t;\n  rankdir=TB;\n  node [fontname=\"sans-serif\", fontsize=10];\n",
        title.replace('"', "'")
    );
    for r in rows {
        let shape_kind = if r.op == "leaf" { "ellipse" } else { "box" };
        let macs = if r.macs > 0 {
            format!("\\n{} multiply-adds", crate::machine::human_count(r.macs))
        } else {
            String::new()
        };
        let scope = if r.scope.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.scope)
        };
        dot.push_str(&format!(
            "  n{} [shape={shape_kind}, label=\"{} {}{}\\n{}{}\"];\n",
            r.index,
            r.index,
            r.op.replace('"', "'"),
            scope,
            shape(&r.output),
            macs
        ));
        for i in &r.inputs {
            dot.push_str(&format!("  n{i} -> n{};\n", r.index));
        }
    }
    dot.push_str("}\n");
    write_atomic(path, dot.as_bytes())
}

/// A row's input shapes, "512×648, 145×648, 145".
pub fn input_shapes(r: &TraceRow) -> String {
    r.input_shapes
        .iter()
        .map(|s| shape(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row's output shape.
pub fn output_shape(r: &TraceRow) -> String {
    if r.output.is_empty() {
        // A 0-dimensional value: the loss.
        return "scalar".into();
    }
    shape(&r.output)
}
