//! What each `handgrad` command does, as library functions that return what they found (the
//! command line only parses arguments and prints). Each file is one command or one family of
//! them; their pictures are drawn with [`crate::viz`].
//!
//! Reading order: [`explain`] (a model as a table, before training) → [`train`] (a run from
//! start to finish) → [`eval`] (test losses, with and
//! without corruption; reconstructions; denoising) → [`generate`] (the decoder as a
//! generator: random codes, class centroids, the 2-D manifold, interpolation) → [`latent`]
//! (codes drawn in 2-D; first-layer weights as pictures) → [`pca`] (the linear baseline) →
//! [`classify`] (a classifier on codes, a fine-tuned encoder, or PCA features) → [`search`]
//! (sweeps over one setting, random search over several) → [`bench`](mod@bench) (speed, as a share of
//! the machine's peak) → [`trace`] (one step's tape, node by node).

pub mod baselines;
pub mod bench;
pub mod classify;
pub mod eval;
pub mod explain;
pub mod generate;
pub mod latent;
pub mod pca;
pub mod report;
pub mod reproduce;
pub mod search;
pub mod shards;
pub mod trace;
pub mod train;
pub mod verdict;

use crate::data::batches::split;
use crate::data::mnist::{Dataset, Lookup};
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::machine::human_count;
use crate::train::observe::Observer;
use crate::train::RunConfig;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Settings that do not change what is computed.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where to look for datasets.
    pub lookup: Lookup,
    /// Set (by a Ctrl-C handler) to stop training after the current batch, saving a checkpoint.
    pub interrupt: Arc<AtomicBool>,
    /// Time every op of the training steps (`train --profile`).
    pub profile: bool,
}

/// Loads the run's dataset and cuts it as the configuration says, telling `obs` what it got.
///
/// # Errors
/// A missing or broken dataset; images of another size than the model's input; a split that
/// leaves a set empty.
pub fn load_data(
    cfg: &RunConfig,
    lookup: &Lookup,
    obs: &mut dyn Observer,
) -> Result<(Dataset, Splits)> {
    let ds = Dataset::find(&cfg.dataset, lookup)?;
    obs.info(&format!("data: {}", ds.describe()));
    check_image_size(&ds, cfg.model.input)?;
    let splits = split(&ds, &cfg.split)?;
    obs.info(&format!(
        "split: {} training, {} validation, {} test images{}",
        human_count(splits.train.len() as u128),
        human_count(splits.val.len() as u128),
        human_count(splits.test.len() as u128),
        if cfg.split.classes.is_empty() {
            String::new()
        } else {
            format!(" of classes {:?}", cfg.split.classes)
        }
    ));
    Ok((ds, splits))
}

/// Refuses a dataset whose images are not the model's input size.
///
/// # Errors
/// [`Error::Dataset`] naming both sizes.
pub fn check_image_size(ds: &Dataset, input: [usize; 3]) -> Result<()> {
    let [c, h, w] = input;
    if (c, h, w) != (1, ds.test.rows, ds.test.cols) {
        return Err(Error::Dataset {
            path: ds.dir.clone(),
            detail: format!(
                "images are 1×{}×{} but the model expects {c}×{h}×{w}",
                ds.test.rows, ds.test.cols
            ),
        });
    }
    Ok(())
}

/// Parses a comma-separated list of sizes ("512,256,256"), each a whole number ≥ 1.
///
/// # Errors
/// [`Error::Config`] naming `what` and the bad entry, with `example` as a hint.
pub fn parse_sizes(text: &str, what: &'static str, example: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|t| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| {
                    let what_is_wrong = if t.trim().is_empty() {
                        format!("{} has an empty entry", crate::error::quote(text))
                    } else {
                        format!("{t:?} is not a whole number ≥ 1")
                    };
                    Error::config(what, format!("{what_is_wrong} (e.g. {example})"))
                })
        })
        .collect()
}

/// Where a command writes its picture: `out` if given, else `<run>/<name>.png`; checked
/// with [`check_output`] before any work is done.
///
/// # Errors
/// As [`check_output`].
pub fn picture_path(dir: &Path, name: &str, out: Option<&Path>, replace: bool) -> Result<PathBuf> {
    let path = out.map_or_else(|| dir.join(format!("{name}.png")), Path::to_path_buf);
    check_output(&path, replace)?;
    Ok(path)
}

/// Checks that a picture can be written to `path`: a `.png` name, a folder that exists, and
/// no file there already unless `replace` says so.
///
/// # Errors
/// [`Error::Output`] naming the path and what to do.
pub fn check_output(path: &Path, replace: bool) -> Result<()> {
    crate::viz::check_png_path(path)?;
    use crate::fs::{claim, Replace, Target};
    claim(path, Target::File, "output file", Replace::asked(replace))
}
