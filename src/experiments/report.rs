//! The page that shows a run.
//!
//! [`run_page`] builds a run folder's `report.html`: the settings, the per-epoch metrics, the
//! test loss beside both baselines, and every picture the run made, captioned.

use super::baselines::Baselines;
use crate::error::Result;
use crate::machine::human_count;
use crate::names::Named;
use crate::train::fit::EpochMetrics;
use crate::train::{RunConfig, RunDir};
use crate::viz::page::{Block, Page};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What training measured that the other files of a run folder do not hold. Kept beside the
/// page as `summary.json`, so that the page can be drawn again when a later command (`eval
/// --noise-sweep`, `latent`, `denoise`, …) adds a picture to the folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// How training ended, in words.
    pub outcome: String,
    /// Optimiser steps in one epoch.
    pub steps_per_epoch: usize,
    /// Test loss after training, if it finished.
    pub test_loss: Option<f64>,
    /// The per-pixel test loss on clean images (the baselines' unit), if measured.
    pub clean_pixel_loss: Option<f64>,
    /// The baselines, if measured.
    pub baselines: Option<Baselines>,
    /// The verdict of a run that learned little (see [`super::verdict`]).
    pub verdict: Option<String>,
}

/// What a run's page shows besides the pictures in its folder.
pub struct RunSummary<'a> {
    /// The run's settings.
    pub cfg: &'a RunConfig,
    /// Every epoch's metrics.
    pub history: &'a [EpochMetrics],
    /// What training measured.
    pub result: &'a RunResult,
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
    let mut page = Page::new(format!("handgrad run {name}: {}", cfg.label()));
    page.push(Block::Text(format!(
        "Objective: {}. {} Folder: {}.",
        cfg.objective(),
        s.result.outcome,
        dir.display()
    )));
    page.push(Block::Heading("Result".into()));
    let loss_name = cfg.train.loss.name().to_uppercase();
    let mut rows = Vec::new();
    if let Some(t) = s.result.test_loss {
        rows.push(vec![
            "this model (test set)".to_string(),
            format!("{t:.6}"),
            cfg.objective(),
        ]);
    }
    // A VAE's objective (summed per image, with KL) and a denoiser's (on damaged inputs)
    // are not the baselines' unit: the clean per-pixel loss stands beside them.
    if let (Some(p), true) = (
        s.result.clean_pixel_loss,
        cfg.model.variational || cfg.train.corrupt.is_some(),
    ) {
        rows.push(vec![
            "this model, clean test images".to_string(),
            format!("{p:.6}"),
            format!("{loss_name} per pixel"),
        ]);
    }
    if let Some(b) = &s.result.baselines {
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
    if let Some(v) = &s.result.verdict {
        page.push(Block::Warning(v.clone()));
    }
    if let Some(b) = &s.result.baselines {
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
    let seconds: f64 = s.history.iter().map(|m| m.seconds).sum();
    if !s.history.is_empty() {
        page.push(Block::Text(format!(
            "{} epochs of {} optimiser steps each took {:.1} s of training in all ({:.2} s an epoch; evaluation and writing outputs not counted).",
            s.history.len(),
            s.result.steps_per_epoch,
            seconds,
            seconds / s.history.len() as f64
        )));
    }
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
            "Loss per epoch: training (mean over the epoch's batches) and validation (after the epoch); dashed, the mean-image and PCA baselines on the test images (not drawn for a VAE, whose objective is in another unit).",
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
    push_analyses(&mut page, dir);
    push_model(&mut page, cfg)?;
    page.push(Block::Heading("Settings".into()));
    page.push(Block::Text(
        "Everything config.json holds (train --config reads it back), by part: the model, the data and how it is split, and the training.".into(),
    ));
    page.push(Block::Table {
        header: vec!["part".into(), "setting".into(), "value".into()],
        rows: settings_rows(cfg)?,
    });
    Ok(page)
}

/// What the pictures later commands write into a run folder show, by the start of their
/// default names.
const ANALYSES: &[(&str, &str)] = &[
    ("reconstruct-", "One's own picture, each stage of preparing it as MNIST was made, and its reconstruction (handgrad reconstruct --image)."),
    ("reconstruct", "Test images above their reconstructions (handgrad reconstruct)."),
    ("denoise", "Clean test images, the same images corrupted, and the model's output from the corrupted ones (handgrad denoise)."),
    ("noise-sweep", "Test loss against the strength of Gaussian noise on the input, beside handing the noisy input back (handgrad eval --noise-sweep)."),
    ("generate", "Images the decoder makes from codes it was never given: random codes, or class centroids with growing noise (handgrad generate)."),
    ("manifold", "The decoder over a grid of 2-D codes (handgrad manifold)."),
    ("interpolate", "Decoded codes on the straight line between two test images' codes (handgrad interpolate)."),
    ("latent", "The test images' codes drawn in 2-D, coloured by class (handgrad latent)."),
    ("weights", "A layer's weights drawn as images (handgrad weights)."),
    ("classify-", "A classifier on this run's codes (handgrad classify; the folder says how the encoder was used: frozen, finetune or from-scratch): loss and accuracy per epoch (curves.png), and its test confusion matrix with the accuracy in its title (confusion.png)."),
];

/// The PNG files directly in `dir`.
fn pictures_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .collect()
        })
        .unwrap_or_default()
}

/// The pictures later commands added to the folder (every PNG beside the page other than the
/// ones training writes, and those of the classifiers in its `classify-*` folders), in name
/// order, captioned by what wrote them.
fn push_analyses(page: &mut Page, dir: &Path) {
    let mut pictures: Vec<PathBuf> = pictures_in(dir)
        .into_iter()
        .filter(|p| !p.ends_with("loss.png") && !p.ends_with("reconstructions.png"))
        .collect();
    let classifiers = std::fs::read_dir(dir).map(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("classify-"))
            })
            .collect::<Vec<_>>()
    });
    for folder in classifiers.unwrap_or_default() {
        pictures.extend(pictures_in(&folder));
    }
    if pictures.is_empty() {
        return;
    }
    pictures.sort();
    page.push(Block::Heading("Analyses".into()));
    for path in pictures {
        // The name below the run folder: "latent-pca.png", "classify-finetune/confusion.png".
        let name = path
            .strip_prefix(dir)
            .map_or_else(|_| String::new(), |p| p.to_string_lossy().into_owned());
        let caption = ANALYSES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or_else(
                || format!("{name}, written into the run folder after training."),
                |(_, what)| format!("{name}: {what}"),
            );
        page.push(Block::Picture { path, caption });
    }
}

/// The model as `explain` shows it: a row per layer, then its totals.
fn push_model(page: &mut Page, cfg: &RunConfig) -> Result<()> {
    let (rows, totals) = super::explain::explain(&cfg.model, cfg.train.batch_size)?;
    page.push(Block::Heading("Model".into()));
    page.push(Block::Table {
        header: vec![
            "layer".into(),
            "what".into(),
            "output (one image)".into(),
            "parameters".into(),
            "multiply-adds".into(),
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    match &r.note {
                        Some(note) => format!("{} ({note})", r.layer),
                        None => r.layer.clone(),
                    },
                    super::explain::shape(&r.output),
                    human_count(r.parameters),
                    human_count(r.macs),
                ]
            })
            .collect(),
    });
    page.push(Block::Text(totals.join(". ") + "."));
    Ok(())
}

/// The configuration as (part, setting, value) rows: the top-level settings, then each part's
/// fields in the order config.json has them, values written as in the file.
fn settings_rows(cfg: &RunConfig) -> Result<Vec<Vec<String>>> {
    let value =
        serde_json::to_value(cfg).map_err(|e| crate::Error::format("config", e.to_string()))?;
    let mut rows = Vec::new();
    let serde_json::Value::Object(fields) = value else {
        return Ok(rows);
    };
    for (key, v) in fields {
        let part = match key.as_str() {
            "model" => "model",
            "split" => "data",
            "train" => "training",
            _ => {
                rows.push(vec!["run".into(), key, plain(&v)]);
                continue;
            }
        };
        if let serde_json::Value::Object(inner) = v {
            for (k, v) in inner {
                // No classes named means every class.
                let shown = if k == "classes" && v.as_array().is_some_and(Vec::is_empty) {
                    "all".into()
                } else {
                    plain(&v)
                };
                rows.push(vec![part.into(), k, shown]);
            }
        }
    }
    Ok(rows)
}

/// A JSON value as a table cell, for people: strings without quotes, "none" for null, numbers
/// as the f32 settings they are (0.001, not 0.0010000000474974513), a table's fields as
/// "name value" pairs and lists separated by commas.
fn plain(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(whole), _) => whole.to_string(),
            (None, Some(x)) => (x as f32).to_string(),
            _ => n.to_string(),
        },
        Value::Array(items) if items.is_empty() => "empty".into(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(
            if items.iter().any(Value::is_object) {
                "; "
            } else {
                ", "
            },
        ),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k} {}", plain(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Bool(b) => b.to_string(),
    }
}

/// Writes `dir/summary.json` and `dir/report.html` (each atomically) and returns the page's
/// path.
///
/// # Errors
/// As [`run_page`], and [`crate::Error::Io`] if a picture cannot be read or a file written.
pub fn write_run_page(dir: &Path, s: &RunSummary<'_>) -> Result<PathBuf> {
    let json = serde_json::to_string_pretty(s.result)
        .map_err(|e| crate::Error::format("run summary", e.to_string()))?;
    crate::fs::write_atomic(&RunDir(dir.to_path_buf()).summary(), json.as_bytes())?;
    let path = dir.join("report.html");
    run_page(dir, s)?.write(&path)?;
    Ok(path)
}

/// Draws the page of the run folder `dir` again from its files (after a command added a
/// picture to it): `Ok(None)` when the folder has no `summary.json` (a run still training,
/// or one whose training was interrupted), else the page's path.
///
/// # Errors
/// A configuration, metrics or summary file that cannot be read; as [`write_run_page`].
pub fn refresh_run_page(dir: &Path) -> Result<Option<PathBuf>> {
    let run = RunDir(dir.to_path_buf());
    let path = run.summary();
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(crate::Error::io(&path))?;
    let result: RunResult = serde_json::from_str(&text).map_err(|e| crate::Error::Dataset {
        path: path.clone(),
        detail: format!("not a run summary: {e}"),
    })?;
    let cfg = run.read_config()?;
    let history = run.history()?;
    let page = dir.join("report.html");
    run_page(
        dir,
        &RunSummary {
            cfg: &cfg,
            history: &history,
            result: &result,
        },
    )?
    .write(&page)?;
    Ok(Some(page))
}
