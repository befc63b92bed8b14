//! What the page knows about run folders: the list (read from the files each time, so a run
//! being trained elsewhere shows its progress), and a run opened for decoding (its model and
//! test codes, kept until its weights change on disk).

use crate::embed::pca::Pca;
use crate::error::{Error, Result};
use crate::experiments::eval::test_images;
use crate::experiments::report::RunResult;
use crate::experiments::RunOptions;
use crate::models::Autoencoder;
use crate::train::run_dir::{load_run, RunDir, RunState};
use crate::train::RunConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Test images whose codes make the map: enough to see every class's region, few enough to
/// encode in a moment and to draw smoothly.
pub const MAP_POINTS: usize = 2000;

/// One run folder, as the runs page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// The folder's name under the runs folder.
    pub name: String,
    /// Its title: preset, what differs from it, dataset ("conv-selu (code 2) on mnist").
    pub label: String,
    /// The preset it started from.
    pub preset: String,
    /// The dataset.
    pub dataset: String,
    /// What the loss measures, in words.
    pub objective: String,
    /// Trainable parameters.
    pub parameters: u128,
    /// The size of the code.
    pub latent: usize,
    /// Whether it is a variational autoencoder.
    pub variational: bool,
    /// A denoiser's corruption (`gaussian:0.3`), if it is one.
    pub corrupt: Option<String>,
    /// Epochs done.
    pub epochs_done: usize,
    /// Epochs asked for.
    pub epochs: usize,
    /// The last validation loss.
    pub val_loss: Option<f64>,
    /// The test loss, once finished.
    pub test_loss: Option<f64>,
    /// The per-pixel test loss on clean images, in the baselines' unit.
    pub clean_pixel_loss: Option<f64>,
    /// The mean-image baseline (same unit as `clean_pixel_loss`).
    pub mean_image: Option<f64>,
    /// The PCA baseline with as many components as the code has numbers.
    pub pca: Option<f64>,
    /// Training, finished, interrupted or not started.
    pub state: RunState,
    /// Whether a model file exists to decode with.
    pub has_model: bool,
}

/// Whether `name` can only mean a folder directly under the runs folder: not empty, no path
/// separator, not `.` or `..`, not hidden.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.chars().all(|c| !c.is_control())
}

/// The run folder `name` under `root`.
///
/// # Errors
/// [`Error::Config`] for a name that is not a plain folder name, or names no run folder (a
/// folder with a `config.json`).
pub fn run_folder(root: &Path, name: &str) -> Result<PathBuf> {
    if !plain_name(name) {
        return Err(Error::config(
            "run",
            format!("{name:?} is not a run folder's name (a name, not a path)"),
        ));
    }
    let dir = root.join(name);
    if !RunDir(dir.clone()).config().is_file() {
        return Err(Error::config(
            "run",
            format!("there is no run {name:?} in {}", root.display()),
        ));
    }
    Ok(dir)
}

/// Every run folder under `root`, by name; a folder whose configuration cannot be read is
/// left out (the page cannot say anything true about it).
pub fn list(root: &Path) -> Vec<RunInfo> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| plain_name(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|n| info(&root.join(n), n).ok())
        .collect()
}

/// What the files of the run folder `dir` say about it.
///
/// # Errors
/// A configuration that cannot be read.
pub fn info(dir: &Path, name: &str) -> Result<RunInfo> {
    let run = RunDir(dir.to_path_buf());
    let cfg = run.read_config()?;
    let history = run.history().unwrap_or_default();
    let result = summary(&run);
    let baselines = result.as_ref().and_then(|r| r.baselines.clone());
    let parameters = crate::models::ModelPlan::new(&cfg.model)
        .map(|p| p.parameters())
        .unwrap_or(0);
    Ok(RunInfo {
        name: name.to_string(),
        label: cfg.label(),
        preset: cfg.preset.clone(),
        dataset: cfg.dataset.clone(),
        objective: cfg.objective(),
        parameters,
        latent: cfg.model.latent,
        variational: cfg.model.variational,
        corrupt: cfg.train.corrupt.as_ref().map(|c| c.to_string()),
        epochs_done: history.len(),
        epochs: cfg.train.epochs,
        val_loss: history.last().map(|m| m.val_loss),
        test_loss: result.as_ref().and_then(|r| r.test_loss),
        clean_pixel_loss: result.as_ref().and_then(|r| r.clean_pixel_loss),
        mean_image: baselines.as_ref().map(|b| b.mean_image),
        pca: baselines.as_ref().map(|b| b.pca),
        state: run.state(),
        has_model: run.model().is_file(),
    })
}

/// The run's `summary.json`, if it has a readable one.
fn summary(run: &RunDir) -> Option<RunResult> {
    let text = std::fs::read_to_string(run.summary()).ok()?;
    serde_json::from_str(&text).ok()
}

/// The 2-D map of a run's codes and how a point of it becomes a code again.
///
/// A code of two numbers is its own map. A longer one is drawn on its first two principal
/// components: a point (x, y) of the map stands for the code `base + (x − x_b)·a₁ + (y −
/// y_b)·a₂`, where a₁, a₂ are the components, `base` a code the other components are held at
/// (the codes' mean, or one image's code) and (x_b, y_b) where `base` lies on the map.
#[derive(Clone, Debug, Serialize)]
pub struct CodeMap {
    /// Numbers per code.
    pub latent: usize,
    /// Each test image's code, one after another.
    pub codes: Vec<f32>,
    /// Each test image's place on the map, (x, y) after (x, y).
    pub points: Vec<f32>,
    /// Each test image's class.
    pub labels: Vec<u8>,
    /// The classes' names.
    pub class_names: Vec<String>,
    /// The point the map is centred on: the codes' mean (zeros for a code of 1 or 2).
    pub mean: Vec<f32>,
    /// The map's two directions in code space, each of `latent` numbers.
    pub axes: [Vec<f32>; 2],
    /// What the map's axes are, for their labels.
    pub axis_names: [String; 2],
    /// Each code number's smallest and largest value over the test codes, widened by a
    /// tenth of the range on both sides: the sliders' ranges.
    pub ranges: Vec<[f32; 2]>,
}

impl CodeMap {
    /// The map of `codes` (n codes of `latent` numbers).
    ///
    /// # Errors
    /// As [`Pca::fit`].
    pub fn new(
        codes: Vec<f32>,
        latent: usize,
        labels: Vec<u8>,
        names: Vec<String>,
    ) -> Result<Self> {
        let unit = |k: usize| (0..latent).map(|i| f32::from(i == k)).collect::<Vec<f32>>();
        let (points, mean, axes, axis_names) = if latent <= 2 {
            let points = codes
                .chunks(latent)
                .flat_map(|c| [c[0], c.get(1).copied().unwrap_or(0.0)])
                .collect();
            let second = if latent == 2 { unit(1) } else { vec![0.0] };
            (
                points,
                vec![0.0; latent],
                [unit(0), second],
                ["z₁".to_string(), "z₂".to_string()],
            )
        } else {
            let pca = Pca::fit(&codes, latent, 2)?;
            let share = |k: usize| 100.0 * (pca.explained(k) - pca.explained(k - 1));
            let axis = |k: usize| {
                pca.components[k * latent..(k + 1) * latent]
                    .iter()
                    .map(|&v| v as f32)
                    .collect::<Vec<f32>>()
            };
            (
                pca.transform(&codes, 2),
                pca.mean.iter().map(|&v| v as f32).collect(),
                [axis(0), axis(1)],
                [
                    format!(
                        "first principal component ({:.0} % of the variance)",
                        share(1)
                    ),
                    format!("second principal component ({:.0} %)", share(2)),
                ],
            )
        };
        let ranges = (0..latent)
            .map(|i| {
                let values = codes.iter().skip(i).step_by(latent);
                let lo = values.clone().fold(f32::INFINITY, |a, &b| a.min(b));
                let hi = values.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let pad = ((hi - lo) / 10.0).max(1e-3);
                [lo - pad, hi + pad]
            })
            .collect();
        Ok(CodeMap {
            latent,
            codes,
            points,
            labels,
            class_names: names,
            mean,
            axes,
            axis_names,
            ranges,
        })
    }
}

/// A run opened for decoding and encoding.
#[derive(Debug)]
pub struct OpenRun {
    /// Its configuration.
    pub cfg: RunConfig,
    /// Its model.
    pub model: Autoencoder,
    /// When its weights file was last written: a newer file means a newer model.
    pub stamp: SystemTime,
    /// Its test images (pixels in [0, 1], image after image), as many as the map shows.
    pub images: Vec<f32>,
    /// The map of those images' codes.
    pub map: CodeMap,
}

/// When `path` was last written.
pub fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(Error::io(path))
}

impl OpenRun {
    /// Loads the run in `dir`: its model, its first [`MAP_POINTS`] test images and their map.
    ///
    /// # Errors
    /// As [`load_run`] (a missing or corrupt model, named) and [`test_images`].
    pub fn open(dir: &Path, opts: &RunOptions) -> Result<Self> {
        let stamp = modified(&RunDir(dir.to_path_buf()).model())?;
        let (cfg, mut model) = load_run(dir)?;
        let test = test_images(&cfg, None, opts)?;
        let n = MAP_POINTS.min(test.set.len());
        let images = test.set.first_pixels(n);
        let (codes, _) = model.codes(&images)?;
        let names = match test.class_names {
            Some(names) => names.iter().map(|s| s.to_string()).collect(),
            None => (0..10).map(|c| c.to_string()).collect(),
        };
        let labels = test.set.labels[..n].to_vec();
        let map = CodeMap::new(codes, cfg.model.latent, labels, names)?;
        Ok(OpenRun {
            cfg,
            model,
            stamp,
            images,
            map,
        })
    }
}
