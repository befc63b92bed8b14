//! Measuring a model without training it: its mean loss (and the loss's other terms) over a
//! validation or test set, with gradients off, in fixed batches and from a fixed seed, so the
//! same model always gets exactly the same number.
//!
//! Also the one way a batch reaches the tape, shared with the training loop: the clean
//! samples as the target and, for a denoiser, a damaged copy as the input.

use super::config::TrainSpec;
use super::task::{Batch, Task};
use crate::autodiff::graph::{as_slice, as_slice_mut};
use crate::autodiff::Graph;
use crate::data::batches::Samples;
use crate::data::corrupt::Corruption;
use crate::error::{Error, Result};
use crate::seed;
use rand::rngs::StdRng;

/// Batch size for evaluation passes (validation, test): large enough to be fast, and fixed,
/// so the same model always gets exactly the same loss.
pub const EVAL_BATCH: usize = 500;

/// A model's mean loss and terms over a set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The task's loss, averaged over samples.
    pub loss: f64,
    /// Its other terms, averaged over samples.
    pub terms: Vec<f64>,
}

/// Loads the batch `indices` of `set` straight into buffers of the tape (no copy in between):
/// the clean samples as the target and — with a corruption — a damaged copy as the input.
pub(super) fn batch_on_tape<'a>(
    g: &mut Graph,
    set: &dyn Samples,
    indices: &[usize],
    corrupt: Option<&Corruption>,
    rng: &mut StdRng,
    labels: &'a [u8],
) -> Result<Batch<'a>> {
    let dims = set.batch_dims(indices.len());
    let shape = ndarray::Dimension::slice(&dims);
    let mut clean = g.alloc(shape);
    set.fill_batch(indices, as_slice_mut(&mut clean));
    let damaged = match corrupt {
        None => None,
        Some(c) => {
            let [_, _, h, w] = *shape else {
                return Err(Error::config(
                    "corruption",
                    "only images can be corrupted, not feature vectors",
                ));
            };
            let mut damaged = g.alloc(shape);
            as_slice_mut(&mut damaged).copy_from_slice(as_slice(&clean));
            c.apply(as_slice_mut(&mut damaged), h, w, rng)?;
            Some(damaged)
        }
    };
    let target = g.constant_owned(clean);
    let input = match damaged {
        Some(d) => g.constant_owned(d),
        None => target,
    };
    Ok(Batch {
        input,
        target,
        labels,
    })
}

/// Mean loss and terms of `model` over `set`, without recording, in batches of
/// [`EVAL_BATCH`], with inputs damaged by `corrupt` (from a fixed seed) if given.
///
/// # Errors
/// Shape errors from the model; a corruption that does not fit the images.
pub fn evaluate<M: Task>(
    model: &mut M,
    set: &dyn Samples,
    spec: &TrainSpec,
    corrupt: Option<&Corruption>,
) -> Result<Evaluation> {
    let names = model.term_names().len();
    if set.is_empty() {
        return Ok(Evaluation {
            loss: f64::NAN,
            terms: vec![f64::NAN; names],
        });
    }
    model.set_training(false);
    let result = (|| {
        let mut g = Graph::new();
        g.set_recording(false);
        let mut rng = seed::evaluation();
        let (mut total, mut term_totals) = (0.0, vec![0.0; names]);
        let indices: Vec<usize> = (0..set.len()).collect();
        for chunk in indices.chunks(EVAL_BATCH) {
            g.reset();
            let labels: Vec<u8> = chunk.iter().map(|&i| set.labels()[i]).collect();
            let batch = batch_on_tape(&mut g, set, chunk, corrupt, &mut rng, &labels)?;
            let (loss, terms) = model.loss(&mut g, &batch, spec, false, &mut rng)?;
            let weight = chunk.len() as f64;
            total += g.scalar(loss)? as f64 * weight;
            for (acc, v) in term_totals.iter_mut().zip(terms.as_slice()) {
                *acc += v * weight;
            }
        }
        let n = set.len() as f64;
        Ok(Evaluation {
            loss: total / n,
            terms: term_totals.iter().map(|t| t / n).collect(),
        })
    })();
    model.set_training(true);
    result
}
