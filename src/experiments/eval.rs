//! `handgrad eval` and `handgrad reconstruct`: how well a trained model rebuilds images it
//! never saw — clean, or damaged by a corruption — next to the loss of doing nothing at all
//! (handing back the damaged input unchanged), which is what a denoiser has to beat.

use super::verdict::Training;
use super::{check_image_size, check_output, picture_path, RunOptions};
use crate::data::batches::split;
use crate::data::corrupt::Corruption;
use crate::data::mnist::{Dataset, DatasetName, ImageSet};
use crate::error::{Error, Result};
use crate::fs::{claim, Replace, Target};
use crate::machine::human_count;
use crate::models::Autoencoder;
use crate::names::Named;
use crate::seed::{self, Stream};
use crate::train::evaluate::evaluate;
use crate::train::run_dir::{load_run, RunDir};
use crate::train::task::pixel_loss;
use crate::train::RunConfig;
use crate::viz::{Cell, ImageGrid};
use std::path::{Path, PathBuf};

/// The images a command measures a run on.
#[derive(Debug)]
pub struct TestImages {
    /// The images.
    pub set: ImageSet,
    /// Where they come from, for people: "the run's test split of mnist (2,000 images)".
    pub source: String,
    /// Class names, when the dataset is a named one.
    pub class_names: Option<[&'static str; 10]>,
}

/// A run's test images: its own test split, or with `dataset` every test image of another
/// dataset (a named one or a folder of IDX files), checked to have the model's image size.
///
/// # Errors
/// Dataset errors; images of another size than the model's input.
pub fn test_images(
    cfg: &RunConfig,
    dataset: Option<&str>,
    opts: &RunOptions,
) -> Result<TestImages> {
    let name = dataset.unwrap_or(&cfg.dataset);
    let ds = Dataset::find(name, &opts.lookup)?;
    check_image_size(&ds, cfg.model.input)?;
    let class_names = ds.kind.map(DatasetName::class_names);
    match dataset {
        Some(_) => Ok(TestImages {
            source: format!(
                "all {} test images of {} ({})",
                human_count(ds.test.len() as u128),
                name,
                ds.dir.display()
            ),
            set: ds.test,
            class_names,
        }),
        None => {
            let splits = split(&ds, &cfg.split)?;
            Ok(TestImages {
                source: format!(
                    "the run's test split of {name} ({} images)",
                    human_count(splits.test.len() as u128)
                ),
                set: splits.test,
                class_names,
            })
        }
    }
}

/// A run's configuration, its model, and the test images it is measured on (see
/// [`test_images`]).
///
/// # Errors
/// As [`load_run`] and [`test_images`].
pub fn open_run(
    dir: &Path,
    dataset: Option<&str>,
    opts: &RunOptions,
) -> Result<(RunConfig, Autoencoder, TestImages)> {
    let (cfg, model) = load_run(dir)?;
    let images = test_images(&cfg, dataset, opts)?;
    Ok((cfg, model, images))
}

/// A copy of `clean` damaged by `c`, from a fixed seed (the same damage every time).
///
/// # Errors
/// A corruption that does not fit the images.
pub fn corrupted(
    c: &Corruption,
    clean: &[f32],
    rows: usize,
    cols: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let mut damaged = clean.to_vec();
    c.apply(
        &mut damaged,
        rows,
        cols,
        &mut seed::rng(seed, Stream::Damage),
    )?;
    Ok(damaged)
}

/// One line of the evaluation table.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRow {
    /// "clean" or the corruption's spec.
    pub condition: String,
    /// The model's per-pixel loss: its output (from the damaged input) against the clean image.
    pub model: f64,
    /// The loss of handing back the damaged input unchanged (`None` for clean inputs).
    pub identity: Option<f64>,
}

/// What `handgrad eval` found.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// The per-pixel loss the table is in: "MSE per pixel".
    pub loss: String,
    /// Where the images came from.
    pub source: String,
    /// The run's own training objective on these images (with its own corruption, for a
    /// denoising run): (what it is, value).
    pub objective: (String, f64),
    /// Clean first, then each corruption.
    pub rows: Vec<EvalRow>,
    /// The mean-image and PCA baselines on the same test images (`None` when they come from
    /// another dataset than the run's, whose training images the baselines would need).
    pub baselines: Option<super::baselines::Baselines>,
    /// What [`super::verdict::autoencoder`] found, if the run learned little (only on the
    /// run's own dataset, where the baselines are measured).
    pub verdict: Option<String>,
}

/// Measures a run on clean test images and on each corruption.
///
/// # Errors
/// As [`load_run`] and [`test_images`]; a corruption that does not fit the images.
pub fn eval_run(
    dir: &Path,
    dataset: Option<&str>,
    corruptions: &[Corruption],
    opts: &RunOptions,
) -> Result<EvalReport> {
    let (cfg, mut model, images) = open_run(dir, dataset, opts)?;
    let set = &images.set;
    let kind = cfg.train.loss;
    let objective = evaluate(&mut model, set, &cfg.train, cfg.train.corrupt.as_ref())?.loss;
    let rows = pixel_rows(&mut model, set, &cfg, corruptions)?;
    let own = match &cfg.train.corrupt {
        Some(c) => format!("{}, inputs corrupted by {c}", cfg.objective()),
        None => cfg.objective(),
    };
    // The baselines are fitted on the run's own training split: the same split its test
    // images come from, unless another dataset was asked for.
    // The verdict needs them too, and how the run trained.
    let (baselines, verdict) = match dataset {
        Some(d) if d != cfg.dataset => (None, None),
        _ => {
            let (_, splits) =
                super::load_data(&cfg, &opts.lookup, &mut crate::train::observe::Silent)?;
            let b = super::baselines::baselines(&splits.train, set, cfg.model.latent, kind)?;
            let training = Training {
                val_losses: RunDir(dir.to_path_buf()).val_losses()?,
                ..Training::of_run(&cfg, splits.train.len(), &[])
            };
            // A denoiser is judged on its own corruption, measured here if not asked for.
            let mut judged = rows.clone();
            if let Some(c) = &cfg.train.corrupt {
                if !corruptions.contains(c) {
                    judged
                        .extend(pixel_rows(&mut model, set, &cfg, std::slice::from_ref(c))?.pop());
                }
            }
            let verdict = judge(&cfg, &judged, &b, &training);
            (Some(b), verdict)
        }
    };
    Ok(EvalReport {
        loss: kind.per_pixel(),
        source: images.source,
        objective: (own, objective),
        rows,
        baselines,
        verdict,
    })
}

/// The per-pixel loss of `model` on `set` (with the run's loss), on clean images and on each
/// of `corruptions` (damaged from the run's seed), beside the identity's: the rows of `eval`'s
/// table, also measured by `train` at the end of a run.
///
/// # Errors
/// Shape errors from the model; a corruption that does not fit the images.
pub fn pixel_rows(
    model: &mut Autoencoder,
    set: &ImageSet,
    cfg: &RunConfig,
    corruptions: &[Corruption],
) -> Result<Vec<EvalRow>> {
    let clean = set.first_pixels(usize::MAX);
    let kind = cfg.train.loss;
    let mut rows = vec![EvalRow {
        condition: "clean".into(),
        model: pixel_loss(kind, &model.reconstruct(&clean)?, &clean)?,
        identity: None,
    }];
    for c in corruptions {
        let damaged = corrupted(c, &clean, set.rows, set.cols, cfg.train.seed)?;
        rows.push(EvalRow {
            condition: c.to_string(),
            model: pixel_loss(kind, &model.reconstruct(&damaged)?, &clean)?,
            identity: Some(pixel_loss(kind, &damaged, &clean)?),
        });
    }
    Ok(rows)
}

/// The [verdict](super::verdict::autoencoder) on a run from its [`pixel_rows`]: the clean
/// row, and the row of the run's own corruption if it has one.
pub fn judge(
    cfg: &RunConfig,
    rows: &[EvalRow],
    b: &super::baselines::Baselines,
    training: &Training,
) -> Option<String> {
    let clean = rows.iter().find(|r| r.identity.is_none())?.model;
    let own = cfg.train.corrupt.as_ref().map(ToString::to_string);
    let denoised = rows
        .iter()
        .find(|r| Some(&r.condition) == own.as_ref())
        .and_then(|r| Some((r.model, r.identity?)));
    super::verdict::autoencoder(cfg, clean, denoised, b, training)
}

/// Image `k` of an array of images of `len` values each.
pub fn image(data: &[f32], k: usize, len: usize) -> &[f32] {
    &data[k * len..][..len]
}

/// The most images `reconstruct` shows: beyond this a picture stops being readable.
pub const MAX_SHOWN: usize = 100;

/// Images per row of pairs in `reconstruct`'s picture.
const PER_ROW: usize = 10;

/// Checks a count of images to show against [`MAX_SHOWN`].
///
/// # Errors
/// [`Error::Config`] for 0 or more than [`MAX_SHOWN`].
pub fn check_count(count: usize) -> Result<()> {
    if count == 0 || count > MAX_SHOWN {
        return Err(Error::config(
            "count",
            format!("{count} images: show between 1 and {MAX_SHOWN}"),
        ));
    }
    Ok(())
}

/// `handgrad reconstruct`: a picture of `count` test images and their reconstructions, ten
/// per row pair, written to `out` (default `<run>/reconstruct.png`). Returns the path written.
///
/// # Errors
/// A count outside 1..=[`MAX_SHOWN`], an output path that is not a new `.png` (unless
/// `replace`), and as [`eval_run`].
pub fn reconstruct_run(
    dir: &Path,
    out: Option<&Path>,
    count: usize,
    dataset: Option<&str>,
    replace: bool,
    opts: &RunOptions,
) -> Result<PathBuf> {
    let (out, cfg, mut model, images) =
        open_for_picture(dir, "reconstruct", out, count, dataset, replace, opts)?;
    let set = &images.set;
    let shown: Vec<usize> = (0..set.len().min(count)).collect();
    let mut originals = Vec::new();
    set.batch_into(&shown, &mut originals);
    let recon = model.reconstruct(&originals)?;
    save_pairs(&cfg, &images, &shown, &originals, &recon, &out)?;
    Ok(out)
}

/// What [`reconstruct_image`] found.
#[derive(Clone, Debug)]
pub struct OwnImageReport {
    /// The picture written.
    pub out: PathBuf,
    /// The per-pixel loss of the reconstruction against the prepared input.
    pub loss: f64,
    /// The loss's unit: "MSE per pixel".
    pub unit: String,
    /// Whether the picture was inverted (dark ink on a light background).
    pub inverted: bool,
}

/// `handgrad reconstruct --image FILE`: a person's own PNG prepared as MNIST was made
/// ([`crate::data::own_image::prepare`]), then reconstructed; one row of pictures, each stage
/// and the model's output, written to `out` (default `<run>/reconstruct-<file stem>.png`).
///
/// # Errors
/// An image that cannot be read or holds no ink; a model whose input is not one channel; an
/// output path that is not a new `.png` (unless `replace`); as [`load_run`].
pub fn reconstruct_image(
    dir: &Path,
    image: &Path,
    out: Option<&Path>,
    replace: bool,
) -> Result<OwnImageReport> {
    let stem = image
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let out = picture_path(dir, &format!("reconstruct-{stem}"), out, replace)?;
    let (cfg, mut model) = load_run(dir)?;
    let [channels, h, w] = cfg.model.input;
    if channels != 1 {
        return Err(Error::config(
            "image",
            format!("this run's model reads {channels}-channel images; a picture is made grey for one channel"),
        ));
    }
    let stages = crate::data::own_image::prepare(image, h, w)?;
    let recon = model.reconstruct(&stages.centred)?;
    let loss = pixel_loss(cfg.train.loss, &recon, &stages.centred)?;
    let (sh, sw) = stages.source;
    ImageGrid::new(
        format!("{}: {} reconstructed", cfg.label(), image.display()),
        h,
        w,
        6,
    )
    .note(format!(
        "grey: the {sw}×{sh} picture in grey, fitted to {w}×{h}; ink: {}.",
        if stages.inverted {
            "inverted to white ink on black, as MNIST is"
        } else {
            "already white ink on black, kept"
        },
    ))
    .note(format!(
        "fitted: the ink's bounding box scaled to fit {}×{}; centred: moved so its",
        (w * 20).div_ceil(28),
        (h * 20).div_ceil(28),
    ))
    .note("centre of mass is the centre (the model's input); rebuilt: the model's output.")
    .note(format!(
        "{} of the reconstruction against the model's input: {loss:.4}.",
        cfg.train.loss.per_pixel()
    ))
    .row(
        "stages",
        vec![
            Cell::captioned(&stages.grey, "grey"),
            Cell::captioned(&stages.ink, "ink"),
            Cell::captioned(&stages.fitted, "fitted"),
            Cell::captioned(&stages.centred, "centred"),
            Cell::captioned(&recon, "rebuilt"),
        ],
    )
    .save(&out)?;
    Ok(OwnImageReport {
        out,
        loss,
        unit: cfg.train.loss.per_pixel(),
        inverted: stages.inverted,
    })
}

/// The common start of a picture command on test images: the count checked, the output path
/// checked, the run loaded, its test images read.
fn open_for_picture(
    dir: &Path,
    name: &str,
    out: Option<&Path>,
    count: usize,
    dataset: Option<&str>,
    replace: bool,
    opts: &RunOptions,
) -> Result<(PathBuf, RunConfig, Autoencoder, TestImages)> {
    check_count(count)?;
    let out = picture_path(dir, name, out, replace)?;
    let (cfg, model, images) = open_run(dir, dataset, opts)?;
    Ok((out, cfg, model, images))
}

fn save_pairs(
    cfg: &RunConfig,
    images: &TestImages,
    shown: &[usize],
    originals: &[f32],
    recon: &[f32],
    out: &Path,
) -> Result<()> {
    let set = &images.set;
    let (h, w) = (set.rows, set.cols);
    let name = |i: usize| {
        let label = set.labels[i];
        images
            .class_names
            .map_or_else(|| label.to_string(), |n| n[label as usize].to_string())
    };
    let mut grid = ImageGrid::new(
        format!("{}: test images and their reconstructions", cfg.label()),
        h,
        w,
        2,
    )
    .note(format!(
        "Images: {}; each caption is the image's class.",
        images.source
    ))
    .note("Each \"original\" row is followed by what the model rebuilt from it.");
    for (k, chunk) in shown.chunks(PER_ROW).enumerate() {
        let start = k * PER_ROW;
        let captioned = |data| -> Vec<Cell<'_>> {
            chunk
                .iter()
                .enumerate()
                .map(|(j, &i)| Cell::captioned(image(data, start + j, h * w), name(i)))
                .collect()
        };
        grid = grid
            .row("original", captioned(originals))
            .row("reconstruction", captioned(recon));
    }
    grid.save(out)?;
    Ok(())
}

/// What `handgrad denoise` measured on the images it shows.
#[derive(Clone, Debug)]
pub struct DenoiseReport {
    /// The picture written.
    pub out: PathBuf,
    /// The model's per-pixel loss on the shown images (output vs clean).
    pub model: f64,
    /// Handing back the corrupted input unchanged, on the same images.
    pub identity: f64,
    /// "MSE per pixel".
    pub loss: String,
}

/// `handgrad denoise`: `count` test images, clean / corrupted by `corruption` / the model's
/// output from the corrupted one, as three labelled rows (default `<run>/denoise.png`).
///
/// # Errors
/// As [`reconstruct_run`], and a corruption that does not fit the images.
pub fn denoise_run(
    dir: &Path,
    corruption: &Corruption,
    out: Option<&Path>,
    count: usize,
    replace: bool,
    opts: &RunOptions,
) -> Result<DenoiseReport> {
    let (out, cfg, mut model, images) =
        open_for_picture(dir, "denoise", out, count, None, replace, opts)?;
    let set = &images.set;
    let shown = one_per_class_first(set, count);
    let mut clean = Vec::new();
    set.batch_into(&shown, &mut clean);
    let damaged = corrupted(corruption, &clean, set.rows, set.cols, cfg.train.seed)?;
    let output = model.reconstruct(&damaged)?;
    let kind = cfg.train.loss;
    let (model_loss, identity) = (
        pixel_loss(kind, &output, &clean)?,
        pixel_loss(kind, &damaged, &clean)?,
    );
    let loss = kind.per_pixel();
    let len = set.rows * set.cols;
    let names: Vec<String> = shown
        .iter()
        .map(|&i| class_name(&images, set.labels[i]))
        .collect();
    ImageGrid::new(
        format!("{}: denoising {corruption}", cfg.label()),
        set.rows,
        set.cols,
        2,
    )
    .note(format!("Test images the model never trained on ({}); class above each column.", images.source))
    .note(format!(
        "{loss} against the clean images: denoised {model_loss:.4}, corrupted input itself {identity:.4}."
    ))
    .note(match &cfg.train.corrupt {
        Some(c) => format!("The model was trained to denoise {c}."),
        None => "The model was trained on clean images only (a plain autoencoder).".to_string(),
    })
    .columns(names)
    .row("clean", crate::viz::cells(&clean, len))
    .row("corrupted", crate::viz::cells(&damaged, len))
    .row("denoised", crate::viz::cells(&output, len))
    .save(&out)?;
    Ok(DenoiseReport {
        out,
        model: model_loss,
        identity,
        loss,
    })
}

/// `count` test images: the first of each class in turn (so ten shown images show ten
/// classes), then the following ones.
pub fn one_per_class_first(set: &ImageSet, count: usize) -> Vec<usize> {
    let mut shown: Vec<usize> = (0..10u8)
        .filter_map(|c| set.labels.iter().position(|&l| l == c))
        .collect();
    shown.sort_unstable();
    shown.truncate(count);
    let mut i = 0;
    while shown.len() < count.min(set.len()) {
        if !shown.contains(&i) {
            shown.push(i);
        }
        i += 1;
    }
    shown
}

/// A class's name in the dataset the images come from ("7", or "Sneaker").
pub fn class_name(images: &TestImages, label: u8) -> String {
    images
        .class_names
        .map_or_else(|| label.to_string(), |n| n[label as usize].to_string())
}

/// Noise levels `start:end:step` (`0:1:0.1` → 0, 0.1, …, 1).
///
/// # Errors
/// [`Error::Config`] unless three numbers with 0 ≤ start ≤ end and step > 0, at most 101 levels.
pub fn parse_sweep(text: &str) -> Result<Vec<f32>> {
    let bad = |why: &str| {
        Error::config(
            "noise sweep",
            format!("{text:?}: {why} (START:END:STEP, e.g. 0:1:0.1)"),
        )
    };
    let parts: Vec<f32> = text
        .split(':')
        .map(|p| {
            p.trim()
                .parse::<f32>()
                .map_err(|_| bad("not three numbers"))
        })
        .collect::<Result<_>>()?;
    let [start, end, step] = parts[..] else {
        return Err(bad("not three numbers"));
    };
    if !(start.is_finite() && end.is_finite() && step.is_finite()) {
        return Err(bad("every number must be finite"));
    }
    if !(start >= 0.0 && end >= start && step > 0.0) {
        return Err(bad("needs 0 ≤ START ≤ END and STEP > 0"));
    }
    // Counted in f64 before any conversion to an integer, so a huge span is refused, not wrapped.
    let n = ((f64::from(end) - f64::from(start)) / f64::from(step) + 1e-4).floor() + 1.0;
    if n > 101.0 {
        return Err(bad("more than 101 levels"));
    }
    Ok((0..n as usize).map(|k| start + k as f32 * step).collect())
}

/// One row of a noise sweep: the Gaussian noise factor, the model's loss, the identity's.
pub type SweepRow = (f32, f64, f64);

/// Where a noise sweep writes: `<stem>.csv` and `<stem>.png` (default stem
/// `<run>/noise-sweep`), checked to be writable before any work is done.
///
/// # Errors
/// As [`check_output`]: existing files unless `replace`, a folder that does not exist.
pub fn sweep_outputs(dir: &Path, stem: Option<&Path>, replace: bool) -> Result<(PathBuf, PathBuf)> {
    let stem = stem.map_or_else(|| dir.join("noise-sweep"), Path::to_path_buf);
    let (csv_path, png_path) = (stem.with_extension("csv"), stem.with_extension("png"));
    check_output(&png_path, replace)?;
    claim(
        &csv_path,
        Target::File,
        "output file",
        Replace::asked(replace),
    )?;
    Ok((csv_path, png_path))
}

/// `handgrad eval --noise-sweep`: the test loss with Gaussian noise of each factor in
/// `levels`, for the model and for the identity, on the run's test split (or every test
/// image of `dataset`); writes the CSV and the plot to `outputs` (see [`sweep_outputs`]).
///
/// # Errors
/// As [`eval_run`].
pub fn noise_sweep(
    dir: &Path,
    dataset: Option<&str>,
    levels: &[f32],
    outputs: (PathBuf, PathBuf),
    opts: &RunOptions,
) -> Result<(Vec<SweepRow>, PathBuf, PathBuf)> {
    let (csv_path, png_path) = outputs;
    let (cfg, mut model, images) = open_run(dir, dataset, opts)?;
    let set = &images.set;
    let clean = set.first_pixels(usize::MAX);
    let kind = cfg.train.loss;
    let mut rows = Vec::new();
    for &factor in levels {
        let c = Corruption {
            steps: vec![crate::data::corrupt::Damage::Gaussian { factor }],
        };
        let damaged = corrupted(&c, &clean, set.rows, set.cols, cfg.train.seed)?;
        rows.push((
            factor,
            pixel_loss(kind, &model.reconstruct(&damaged)?, &clean)?,
            pixel_loss(kind, &damaged, &clean)?,
        ));
    }
    let loss = kind.name().to_uppercase();
    let mut csv = format!(
        "noise_factor,model_{},identity_{}\n",
        kind.name(),
        kind.name()
    );
    for (f, m, i) in &rows {
        csv.push_str(&format!("{f},{m},{i}\n"));
    }
    crate::fs::write_atomic(&csv_path, csv.as_bytes())?;
    crate::viz::chart::LineChart::new(
        format!(
            "{}: test loss against input noise ({} images)",
            cfg.label(),
            human_count(set.len() as u128)
        ),
        "noise factor F (input + F·N(0, 1), clamped to [0, 1])",
        format!("{loss} per pixel against the clean image"),
    )
    .line(
        "model output",
        crate::viz::chart::TRAIN,
        rows.iter().map(|r| (r.0 as f64, r.1)).collect(),
    )
    .line(
        "identity (the noisy input itself)",
        crate::viz::chart::VALIDATION,
        rows.iter().map(|r| (r.0 as f64, r.2)).collect(),
    )
    .save(&png_path)?;
    Ok((rows, csv_path, png_path))
}
