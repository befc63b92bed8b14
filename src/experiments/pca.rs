//! `handgrad pca`: the linear baseline. How well do the best k-dimensional *linear* codes
//! reconstruct the test images? An autoencoder with a code of size k that does no better
//! than this has learned nothing a projection could not.

use super::baselines::rebuild;
use super::check_output;
use super::eval::{image, one_per_class_first};
use crate::data::batches::{split, SplitSpec};
use crate::data::mnist::{Dataset, DatasetName, Lookup};
use crate::embed::pca::Pca;
use crate::error::{Error, Result};
use crate::machine::human_count;
use crate::train::task::pixel_loss;
use crate::train::LossName;
use crate::viz::{Cell, ImageGrid};
use std::path::{Path, PathBuf};

/// One row of the baseline's table.
#[derive(Clone, Debug, PartialEq)]
pub struct PcaRow {
    /// Components kept.
    pub k: usize,
    /// The share of the training images' variance they hold.
    pub explained: f64,
    /// Mean squared error per pixel of the test images' reconstructions.
    pub test_mse: f64,
}

/// What [`pca_baseline`] measured.
#[derive(Clone, Debug)]
pub struct PcaReport {
    /// The picture.
    pub out: PathBuf,
    /// Training images the components were fitted on.
    pub train_images: usize,
    /// Test images measured.
    pub test_images: usize,
    /// One row per k, in the order asked.
    pub rows: Vec<PcaRow>,
}

/// Parses "32,64,128" into component counts.
///
/// # Errors
/// [`Error::Config`] for an entry that is not a whole number ≥ 1, or an empty list.
pub fn parse_components(text: &str) -> Result<Vec<usize>> {
    let ks = super::parse_sizes(text, "components", "32,64,128,256")?;
    if ks.is_empty() || ks.len() > 12 {
        return Err(Error::config(
            "components",
            format!(
                "{} has {} values: give 1 to 12",
                crate::error::quote(text),
                ks.len()
            ),
        ));
    }
    Ok(ks)
}

/// Fits PCA to `dataset`'s training images (of `split.classes`, at most `split.max_samples`),
/// then reconstructs its test images from each number of components in `ks` (pixels clamped
/// to [0, 1], as [the baseline](super::baselines) does, so that with a run's split the row
/// of k = its code size is the PCA baseline `train` prints): a table of
/// explained variance and test MSE, and one picture (a row of originals, then a row per k)
/// at `out` (default `pca-<dataset>.png` in the current folder).
///
/// # Errors
/// Dataset and split errors; a k above the pixel count; an existing output unless `replace`.
pub fn pca_baseline(
    dataset: &str,
    ks: &[usize],
    split_spec: &SplitSpec,
    count: usize,
    out: Option<&Path>,
    replace: bool,
    lookup: &Lookup,
) -> Result<PcaReport> {
    super::eval::check_count(count)?;
    let label = Path::new(dataset)
        .file_name()
        .map_or_else(|| "dataset".into(), |f| f.to_string_lossy().into_owned());
    let out = out.map_or_else(
        || PathBuf::from(format!("pca-{label}.png")),
        Path::to_path_buf,
    );
    check_output(&out, replace)?;
    split_spec.validate()?;
    let ds = Dataset::find(dataset, lookup)?;
    let splits = split(&ds, split_spec)?;
    let (train, test) = (&splits.train, &splits.test);
    let (h, w) = (test.rows, test.cols);
    let dim = h * w;
    let top = ks.iter().copied().max().unwrap_or(1);
    if top > dim.min(train.len()) {
        return Err(Error::config(
            "components",
            format!(
                "{top} components: at most {} (the {dim} pixels, and the {} training images)",
                dim.min(train.len()),
                train.len()
            ),
        ));
    }
    let pca = Pca::fit(&train.first_pixels(usize::MAX), dim, top)?;
    let clean = test.first_pixels(usize::MAX);
    let mut rows = Vec::new();
    let mut shown_recons = Vec::new();
    let shown = one_per_class_first(test, count);
    let mut originals = Vec::new();
    test.batch_into(&shown, &mut originals);
    for &k in ks {
        rows.push(PcaRow {
            k,
            explained: pca.explained(k),
            test_mse: pixel_loss(LossName::Mse, &rebuild(&pca, &clean, k), &clean)?,
        });
        shown_recons.push(rebuild(&pca, &originals, k));
    }
    let names = ds.kind.map(DatasetName::class_names);
    let columns = shown
        .iter()
        .map(|&i| {
            let c = test.labels[i];
            names.map_or_else(|| c.to_string(), |n| n[c as usize].to_string())
        })
        .collect();
    let mut grid = ImageGrid::new(
        format!("PCA on {label}: test images rebuilt from k principal components"),
        h,
        w,
        2,
    )
    .note(format!(
        "Components fitted on {} training images; each row: mean image + the first k components' share of the test image.",
        human_count(train.len() as u128)
    ))
    .note("Row label: k, the share of the training variance those k components hold, and the test MSE per pixel over all test images.")
    .columns(columns)
    .row(
        "original",
        (0..shown.len())
            .map(|i| Cell::plain(image(&originals, i, dim)))
            .collect(),
    );
    for (row, recon) in rows.iter().zip(&shown_recons) {
        grid = grid.row(
            format!(
                "k = {} · {:.1} % var. · MSE {:.4}",
                row.k,
                100.0 * row.explained,
                row.test_mse
            ),
            (0..shown.len())
                .map(|i| Cell::plain(image(recon, i, dim)))
                .collect(),
        );
    }
    grid.save(&out)?;
    Ok(PcaReport {
        out,
        train_images: train.len(),
        test_images: test.len(),
        rows,
    })
}
