//! Making new images from codes: the decoder as a generator.
//!
//! An autoencoder's decoder turns any code into an image, not only the codes of real images.
//! Which codes give sensible images is the question these commands explore:
//!
//! * [`generate`]: random codes. For a VAE, draws from N(0, I), the distribution its KL term
//!   pulled the codes towards. A plain autoencoder was never asked to put its codes anywhere in
//!   particular, so its codes are drawn per dimension from the mean and spread its training
//!   images' codes actually have.
//! * [`centroids`]: the mean code of each class, decoded, then codes around it with growing
//!   noise σ: how far one can wander from a class before its images stop looking like it.
//! * [`manifold`]: for a code of size 2, a regular grid over the plane, decoded — the whole
//!   code space as one picture — beside the test images' codes coloured by class.
//! * [`interpolate`]: the straight line between two images' codes, decoded step by step.

use super::eval::{class_name, image, open_run, test_images, TestImages};
use super::{check_output, load_data, picture_path, RunOptions};
use crate::data::mnist::{DatasetName, ImageSet};
use crate::error::{Error, Result};
use crate::seed::{self, Stream};
use crate::train::observe::Silent;
use crate::train::run_dir::load_run;
use crate::train::RunConfig;
use crate::viz::chart::{PointGroup, Scatter};
use crate::viz::{Cell, ImageGrid};
use rand::Rng;
use rand_distr::StandardNormal;
use std::path::{Path, PathBuf};

/// The run's training images, for code statistics.
fn training_images(cfg: &RunConfig, opts: &RunOptions) -> Result<ImageSet> {
    Ok(load_data(cfg, &opts.lookup, &mut Silent)?.1.train)
}

/// A code's values for a caption, four to a line: "0.12 −1.30 0.44 2.01\n…".
pub fn code_caption(code: &[f32]) -> String {
    code.chunks(4)
        .map(|c| {
            c.iter()
                .map(|v| format!("{v:.2}").replace('-', "−"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A class label with one code for it (its centroid).
pub type ClassCode = (u8, Vec<f32>);

/// Per-dimension mean and standard deviation of `codes` (rows of `latent` values).
pub fn code_statistics(codes: &[f32], latent: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (codes.len() / latent.max(1)).max(1) as f64;
    let mut mean = vec![0.0f64; latent];
    for row in codes.chunks(latent) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / n;
        }
    }
    let mut var = vec![0.0f64; latent];
    for row in codes.chunks(latent) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v as f64 - m).powi(2) / n;
        }
    }
    (
        mean.iter().map(|&m| m as f32).collect(),
        var.iter().map(|&v| v.sqrt() as f32).collect(),
    )
}

crate::named_enum! {
    /// Where [`generate`] draws its codes from.
    pub enum CodeSource: "code source" {
        Prior = "prior", "N(0, I): a VAE's prior",
        TrainingCodes = "codes", "N(μ_d, σ_d²) per dimension, from the training images' codes",
    }
}

/// `handgrad generate`: `n` decoded random codes, each captioned with its values (default
/// `<run>/generate.png`). `source` defaults to the prior for a VAE and the training codes'
/// statistics for a plain autoencoder. Returns the path written and the codes.
///
/// # Errors
/// [`Error::Config`] for the prior with a plain autoencoder (its codes were never trained to
/// follow N(0, I)), a count outside 1..=100, or an existing output unless `replace`.
pub fn generate(
    dir: &Path,
    n: usize,
    source: Option<CodeSource>,
    seed: u64,
    out: Option<&Path>,
    replace: bool,
    opts: &RunOptions,
) -> Result<(PathBuf, Vec<f32>)> {
    super::eval::check_count(n)?;
    let out = out.map_or_else(|| dir.join("generate.png"), Path::to_path_buf);
    let (cfg, mut model) = load_run(dir)?;
    let variational = model.is_variational();
    let source = source.unwrap_or(if variational {
        CodeSource::Prior
    } else {
        CodeSource::TrainingCodes
    });
    let latent = model.latent();
    let (mean, std, how) = match source {
        CodeSource::Prior if !variational => {
            return Err(Error::config(
                "code source",
                "this run is a plain autoencoder: its codes were never trained to follow N(0, I), so the prior would give noise; use --source codes (its default), or train with --variational",
            ))
        }
        CodeSource::Prior => {
            check_output(&out, replace)?;
            (

            vec![0.0; latent],
            vec![1.0; latent],
            "each code drawn from N(0, I), the prior the VAE's KL term pulls codes towards".to_string(),
        )
        }
        CodeSource::TrainingCodes => {
            check_output(&out, replace)?;
            let train = training_images(&cfg, opts)?;
            let (codes, _) = model.codes(&train.first_pixels(usize::MAX))?;
            let (mean, std) = code_statistics(&codes, latent);
            let how = format!(
                "each code value drawn from N(μ, σ²) of its dimension over the {} training images' codes",
                train.len()
            );
            (mean, std, how)
        }
    };
    let mut rng = seed::rng(seed, Stream::Generate);
    let codes: Vec<f32> = (0..n)
        .flat_map(|_| {
            mean.iter()
                .zip(&std)
                .map(|(&m, &s)| m + s * rng.sample::<f32, _>(StandardNormal))
                .collect::<Vec<_>>()
        })
        .collect();
    let images = model.decode_codes(&codes)?;
    let [_, h, w] = cfg.model.input;
    let mut grid = ImageGrid::new(
        format!("{}: images decoded from random codes", cfg.label()),
        h,
        w,
        2,
    )
    .note(format!(
        "Under each image: the code ({latent} values) the decoder was given; {how}."
    ))
    .note(format!(
        "μ per dimension: {}",
        code_caption(&mean).replace('\n', " ")
    ))
    .note(format!(
        "σ per dimension: {}",
        code_caption(&std).replace('\n', " ")
    ));
    for (r, row) in (0..n).collect::<Vec<_>>().chunks(8).enumerate() {
        let cells = row
            .iter()
            .map(|&k| {
                Cell::captioned(
                    image(&images, k, h * w),
                    code_caption(&codes[k * latent..][..latent]),
                )
            })
            .collect();
        grid = grid.row(format!("{}–{}", r * 8 + 1, r * 8 + row.len()), cells);
    }
    grid.save(&out)?;
    Ok((out, codes))
}

/// The mean code of each class present in `labels`, as (class, code).
pub fn class_centroids(codes: &[f32], labels: &[u8], latent: usize) -> Vec<ClassCode> {
    (0..10u8)
        .filter_map(|class| {
            let rows: Vec<&[f32]> = codes
                .chunks(latent)
                .zip(labels)
                .filter(|(_, &l)| l == class)
                .map(|(c, _)| c)
                .collect();
            if rows.is_empty() {
                return None;
            }
            let mut mean = vec![0.0f64; latent];
            for row in &rows {
                for (m, &v) in mean.iter_mut().zip(*row) {
                    *m += v as f64 / rows.len() as f64;
                }
            }
            Some((class, mean.iter().map(|&m| m as f32).collect()))
        })
        .collect()
}

/// Parses comma-separated σ values (`0,2.5,5`).
///
/// # Errors
/// [`Error::Config`] for anything but numbers ≥ 0.
pub fn parse_sigmas(text: &str) -> Result<Vec<f32>> {
    text.split(',')
        .map(|t| match t.trim().parse::<f32>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
            _ if t.trim().is_empty() => Err(Error::config(
                "sigmas",
                format!(
                    "{} has an empty entry (e.g. 0,2.5,5,7.5,10)",
                    crate::error::quote(text)
                ),
            )),
            _ => Err(Error::config(
                "sigmas",
                format!("{t:?} is not a number ≥ 0 (e.g. 0,2.5,5,7.5,10)"),
            )),
        })
        .collect()
}

/// `handgrad generate --centroids`: a column per class, a row per σ: the class's mean code
/// (over the training images) plus N(0, σ²) noise, decoded (default `<run>/centroids.png`).
/// Returns the path and the centroids.
///
/// # Errors
/// Existing output unless `replace`; as [`load_run`].
pub fn centroids(
    dir: &Path,
    sigmas: &[f32],
    seed: u64,
    out: Option<&Path>,
    replace: bool,
    opts: &RunOptions,
) -> Result<(PathBuf, Vec<ClassCode>)> {
    let out = picture_path(dir, "centroids", out, replace)?;
    if sigmas.is_empty() || sigmas.len() > 20 {
        return Err(Error::config("sigmas", "give between 1 and 20 values"));
    }
    let (cfg, mut model) = load_run(dir)?;
    let train = training_images(&cfg, opts)?;
    let latent = model.latent();
    let (codes, _) = model.codes(&train.first_pixels(usize::MAX))?;
    let cents = class_centroids(&codes, &train.labels, latent);
    let mut rng = seed::rng(seed, Stream::Centroids);
    let mut rows_codes = Vec::new();
    for &sigma in sigmas {
        let mut row = Vec::new();
        for (_, c) in &cents {
            row.extend(
                c.iter()
                    .map(|&m| m + sigma * rng.sample::<f32, _>(StandardNormal)),
            );
        }
        rows_codes.push(row);
    }
    let all: Vec<f32> = rows_codes.concat();
    let images = model.decode_codes(&all)?;
    let [_, h, w] = cfg.model.input;
    let names = DatasetName::parse(&cfg.dataset).map(DatasetName::class_names);
    let columns = cents
        .iter()
        .map(|(c, _)| names.map_or_else(|| c.to_string(), |n| n[*c as usize].to_string()))
        .collect();
    let mut grid = ImageGrid::new(
        format!("{}: decoded class centroids, with noise", cfg.label()),
        h,
        w,
        2,
    )
    .note(format!(
        "Column: a class; its centroid is the mean code of its {} training images' codes{}.",
        train.len(),
        if model.is_variational() {
            " (the means μ)"
        } else {
            ""
        }
    ))
    .note("Row σ: the decoder's image of centroid + σ·ε, ε ~ N(0, I) drawn once per cell.")
    .columns(columns);
    let per_row = cents.len();
    for (r, &sigma) in sigmas.iter().enumerate() {
        let cells = (0..per_row)
            .map(|k| Cell::plain(image(&images, r * per_row + k, h * w)))
            .collect();
        grid = grid.row(format!("σ = {sigma}"), cells);
    }
    grid.save(&out)?;
    Ok((out, cents))
}

/// `handgrad manifold`, for a code of size 2: decodes an `n`×`n` grid over the code plane
/// (the prior's ±2.5 for a VAE; the test codes' central 98 % for a plain autoencoder) into
/// `<stem>.png`, and draws the test codes coloured by class with the grid points as black
/// stars into `<stem>-codes.png` (default stem `<run>/manifold`).
///
/// # Errors
/// [`Error::Config`] for a code size other than 2, a grid outside 2..=30, existing outputs.
pub fn manifold(
    dir: &Path,
    n: usize,
    stem: Option<&Path>,
    replace: bool,
    opts: &RunOptions,
) -> Result<(PathBuf, PathBuf)> {
    let stem = stem.map_or_else(|| dir.join("manifold"), Path::to_path_buf);
    let grid_png = stem.with_extension("png");
    let codes_png = PathBuf::from(format!("{}-codes.png", stem.display()));
    if !(2..=30).contains(&n) {
        return Err(Error::config(
            "grid",
            format!("{n} points per side: give 2 to 30"),
        ));
    }
    let (cfg, mut model) = load_run(dir)?;
    if model.latent() != 2 {
        return Err(Error::config(
            "latent size",
            format!(
                "this run's code has {} dimensions; a manifold picture needs exactly 2 (train with --latent 2), or look at the codes with `handgrad latent`",
                model.latent()
            ),
        ));
    }
    check_output(&grid_png, replace)?;
    check_output(&codes_png, replace)?;
    let images = test_images(&cfg, None, opts)?;
    let (codes, _) = model.codes(&images.set.first_pixels(usize::MAX))?;
    let span = |axis: usize| -> (f32, f32) {
        if model.is_variational() {
            return (-2.5, 2.5);
        }
        let mut v: Vec<f32> = codes.iter().skip(axis).step_by(2).copied().collect();
        v.sort_by(f32::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.01), at(0.99))
    };
    let (x_span, y_span) = (span(0), span(1));
    let step = |(lo, hi): (f32, f32), k: usize| lo + (hi - lo) * k as f32 / (n - 1) as f32;
    // Rows from the top: z₂ decreasing, as on a plot; columns: z₁ increasing.
    let mut grid_codes = Vec::with_capacity(2 * n * n);
    for r in 0..n {
        for c in 0..n {
            grid_codes.push(step(x_span, c));
            grid_codes.push(step(y_span, n - 1 - r));
        }
    }
    let decoded = model.decode_codes(&grid_codes)?;
    let [_, h, w] = cfg.model.input;
    let kind = if model.is_variational() {
        "VAE"
    } else {
        "autoencoder"
    };
    let mut grid = ImageGrid::new(
        format!(
            "{} ({kind}, code size 2): the decoder over a grid of codes",
            cfg.label()
        ),
        h,
        w,
        1,
    )
    .note(format!(
        "Column: z₁ from {:.2} to {:.2}; row: z₂ from {:.2} (top) to {:.2} (bottom); {}.",
        x_span.0,
        x_span.1,
        y_span.1,
        y_span.0,
        if model.is_variational() {
            "±2.5 standard deviations of the prior N(0, I)"
        } else {
            "the central 98 % of the test images' codes"
        }
    ))
    .columns((0..n).map(|c| format!("{:.1}", step(x_span, c))).collect());
    for r in 0..n {
        let cells = (0..n)
            .map(|c| Cell::plain(image(&decoded, r * n + c, h * w)))
            .collect();
        grid = grid.row(format!("z₂ = {:.1}", step(y_span, n - 1 - r)), cells);
    }
    grid.save(&grid_png)?;

    let points: Vec<(f64, f64)> = codes
        .chunks(2)
        .map(|c| (c[0] as f64, c[1] as f64))
        .collect();
    let names: Vec<String> = (0..10).map(|c| class_name(&images, c)).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut scatter = Scatter::by_class(
        format!(
            "{} ({kind}): test codes by class, grid points ★",
            cfg.label()
        ),
        "z₁ (first code dimension)",
        "z₂ (second code dimension)",
        &points,
        &images.set.labels,
        &name_refs,
    );
    scatter.groups.push(PointGroup {
        label: format!(
            "grid points decoded in {}",
            grid_png
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
        ),
        color: [0, 0, 0],
        points: grid_codes
            .chunks(2)
            .map(|c| (c[0] as f64, c[1] as f64))
            .collect(),
        stars: true,
    });
    scatter.save(&codes_png)?;
    Ok((grid_png, codes_png))
}

/// A test image chosen by index (`12`) or as the first of a class (`class:7`).
///
/// # Errors
/// [`Error::Config`] for an index past the test set, a class without test images, or text
/// that is neither.
pub fn pick(images: &TestImages, text: &str) -> Result<usize> {
    let set = &images.set;
    if let Some(class) = text.strip_prefix("class:") {
        let class: u8 = class.trim().parse().map_err(|_| {
            Error::config(
                "image",
                format!("{text:?}: class:N takes a class number 0–9"),
            )
        })?;
        return set.labels.iter().position(|&l| l == class).ok_or_else(|| {
            Error::config(
                "image",
                format!(
                    "the test images ({}) have no image of class {class}",
                    images.source
                ),
            )
        });
    }
    match text.trim().parse::<usize>() {
        Ok(i) if i < set.len() => Ok(i),
        Ok(i) => Err(Error::config(
            "image",
            format!(
                "index {i} is past the test set ({} images: 0 to {})",
                set.len(),
                set.len() - 1
            ),
        )),
        Err(_) => Err(Error::config(
            "image",
            format!("{text:?} is neither an index nor class:N"),
        )),
    }
}

/// `handgrad interpolate`: encodes test images `from` and `to`, decodes `steps` codes evenly
/// between their codes (and the two ends), and writes one strip: the original, the decoded
/// line from t = 0 to t = 1, the other original (default `<run>/interpolate.png`). Returns the
/// path and the decoded frames (t = 0 first).
///
/// # Errors
/// As [`pick`]; a step count outside 1..=30; an existing output unless `replace`.
pub fn interpolate(
    dir: &Path,
    from: &str,
    to: &str,
    steps: usize,
    out: Option<&Path>,
    replace: bool,
    opts: &RunOptions,
) -> Result<(PathBuf, Vec<f32>)> {
    let out = picture_path(dir, "interpolate", out, replace)?;
    if !(1..=30).contains(&steps) {
        return Err(Error::config(
            "steps",
            format!("{steps}: give 1 to 30 steps between the two images"),
        ));
    }
    let (cfg, mut model, images) = open_run(dir, None, opts)?;
    let (a, b) = (pick(&images, from)?, pick(&images, to)?);
    let mut ends = Vec::new();
    images.set.batch_into(&[a, b], &mut ends);
    let (codes, _) = model.codes(&ends)?;
    let latent = model.latent();
    let (za, zb) = codes.split_at(latent);
    let frames = steps + 2;
    let line: Vec<f32> = (0..frames)
        .flat_map(|k| {
            let t = k as f32 / (frames - 1) as f32;
            za.iter()
                .zip(zb)
                .map(move |(&p, &q)| (1.0 - t) * p + t * q)
                .collect::<Vec<_>>()
        })
        .collect();
    let decoded = model.decode_codes(&line)?;
    let [_, h, w] = cfg.model.input;
    let len = h * w;
    let describe = |i: usize| format!("#{i} ({})", class_name(&images, images.set.labels[i]));
    let mut cells = vec![Cell::captioned(
        image(&ends, 0, len),
        format!("original\n{}", describe(a)),
    )];
    for k in 0..frames {
        let t = k as f32 / (frames - 1) as f32;
        let label = match k {
            0 => "t = 0\n(its reconstruction)".to_string(),
            _ if k + 1 == frames => "t = 1\n(its reconstruction)".to_string(),
            _ => format!("t = {t:.2}"),
        };
        cells.push(Cell::captioned(image(&decoded, k, len), label));
    }
    cells.push(Cell::captioned(
        image(&ends, 1, len),
        format!("original\n{}", describe(b)),
    ));
    ImageGrid::new(
        format!(
            "{}: from test image {} to {}",
            cfg.label(),
            describe(a),
            describe(b)
        ),
        h,
        w,
        3,
    )
    .note("Between the two originals: the decoder's images of (1 − t)·code(start) + t·code(end).")
    .row("", cells)
    .save(&out)?;
    Ok((out, decoded))
}
