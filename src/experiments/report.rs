//! The page that shows a run.
//!
//! [`run_page`] builds a run folder's `report.html`: the settings, the per-epoch metrics, the
//! test loss beside both baselines, and every picture the run made, captioned.

use super::baselines::Baselines;
use crate::error::Result;
use crate::names::Named;
use crate::train::fit::EpochMetrics;
use crate::train::RunConfig;
use crate::viz::page::{Block, Page};
use std::path::Path;

/// What a run's page shows besides the files in its folder.
pub struct RunSummary<'a> {
    /// The run's settings.
    pub cfg: &'a RunConfig,
    /// Every epoch's metrics.
    pub history: &'a [EpochMetrics],
    /// Test loss after training, if it finished.
    pub test_loss: Option<f64>,
    /// How training ended, in words.
    pub outcome: String,
    /// The baselines, if measured.
    pub baselines: Option<&'a Baselines>,
    /// The per-pixel test loss on clean images (the baselines' unit), if measured.
    pub clean_pixel_loss: Option<f64>,
    /// The verdict of a run that learned little (see [`super::verdict`]).
    pub verdict: Option<&'a str>,
}

/// The report page of the run folder `dir`: written to `dir/report.html` by
/// [`write_run_page`].
///
/// # Errors
/// Serialising the configuration.
pub fn run_page(dir: &Path, s: &RunSummary<'_>) -> Result<Page> {
    let cfg = s.cfg;
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let mut page = Page::new(format!(
        "handgrad run {name}: {} on {}",
        cfg.preset, cfg.dataset
    ));
    page.push(Block::Text(format!(
        "Objective: {}. {} Folder: {}.",
        cfg.objective(),
        s.outcome,
        dir.display()
    )));
    page.push(Block::Heading("Result".into()));
    let loss_name = cfg.train.loss.name().to_uppercase();
    let mut rows = Vec::new();
    if let Some(t) = s.test_loss {
        rows.push(vec![
            "this model (test set)".to_string(),
            format!("{t:.6}"),
            cfg.objective(),
        ]);
    }
    // A VAE's objective (summed per image, with KL) and a denoiser's (on damaged inputs)
    // are not the baselines' unit: the clean per-pixel loss stands beside them.
    if let (Some(p), true) = (
        s.clean_pixel_loss,
        cfg.model.variational || cfg.train.corrupt.is_some(),
    ) {
        rows.push(vec![
            "this model, clean test images".to_string(),
            format!("{p:.6}"),
            format!("{loss_name} per pixel"),
        ]);
    }
    if let Some(b) = s.baselines {
        rows.push(vec![
            "mean image of the training set".into(),
            format!("{:.6}", b.mean_image),
            format!("{loss_name} per pixel"),
        ]);
        rows.push(vec![
            format!("PCA, k = {} components", b.k),
            format!("{:.6}", b.pca),
            format!("{loss_name} per pixel"),
        ]);
    }
    page.push(Block::Table {
        header: vec!["what".into(), "test loss".into(), "measured as".into()],
        rows,
    });
    if let Some(v) = s.verdict {
        page.push(Block::Warning(v.into()));
    }
    if let Some(b) = s.baselines {
        page.push(Block::Text(format!(
            "Both baselines are fitted on the run's {} training images and measured on the same {} clean test images. A model worse than the mean image learned nothing about its input; one worse than PCA learned less than a linear projection of the same size.{}",
            b.fitted_on,
            b.test_images,
            if cfg.model.variational {
                " (This is a VAE: its objective is summed per image and includes the KL term; its reconstruction of clean test images from their mean codes, per pixel, is the row to compare.)"
            } else {
                ""
            }
        )));
    }
    page.push(Block::Heading("Training".into()));
    page.push(Block::Table {
        header: vec![
            "epoch".into(),
            "train loss".into(),
            "validation loss".into(),
            "learning rate".into(),
        ],
        rows: s
            .history
            .iter()
            .map(|m| {
                vec![
                    m.epoch.to_string(),
                    format!("{:.6}", m.train_loss),
                    if m.val_loss.is_nan() {
                        "—".into()
                    } else {
                        format!("{:.6}", m.val_loss)
                    },
                    format!("{:.2e}", m.lr),
                ]
            })
            .collect(),
    });
    for (file, caption) in [
        (
            "loss.png",
            "Loss per epoch: training (mean over the epoch's batches) and validation (after the epoch).",
        ),
        (
            "reconstructions.png",
            "Test images the model never trained on, one per class (top row), and what the model made of them after each epoch named on the left (one row per snapshot).",
        ),
    ] {
        let path = dir.join(file);
        if path.is_file() {
            page.push(Block::Picture {
                path,
                caption: caption.into(),
            });
        }
    }
    let mut snapshots: Vec<_> = std::fs::read_dir(dir.join("reconstructions"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .collect()
        })
        .unwrap_or_default();
    snapshots.sort();
    if !snapshots.is_empty() {
        page.push(Block::Heading("Reconstructions during training".into()));
        for path in snapshots {
            let stem = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            let epoch = stem.trim_start_matches("epoch_").trim_start_matches('0');
            page.push(Block::Picture {
                path,
                caption: format!(
                    "The same test images (top) and their reconstructions after epoch {epoch} (bottom)."
                ),
            });
        }
    }
    page.push(Block::Heading("Settings".into()));
    let json = serde_json::to_string_pretty(cfg)
        .map_err(|e| crate::Error::format("config", e.to_string()))?;
    page.push(Block::Preformatted(json));
    Ok(page)
}

/// Writes `dir/report.html` (atomically) and returns its path.
///
/// # Errors
/// As [`run_page`], and [`crate::Error::Io`] if a picture cannot be read or the page written.
pub fn write_run_page(dir: &Path, s: &RunSummary<'_>) -> Result<std::path::PathBuf> {
    let path = dir.join("report.html");
    run_page(dir, s)?.write(&path)?;
    Ok(path)
}
