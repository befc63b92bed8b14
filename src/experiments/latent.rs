//! Looking inside a trained model: where its codes lie, and what its first layer looks for.
//!
//! * [`latent`]: the test images' codes drawn in the plane, coloured by class. A code has
//!   more than two numbers, so it is first brought down to two: by [`crate::embed::pca`]
//!   (the plane of largest spread; distances are faithful, but classes may overlap),
//!   [`crate::embed::tsne`] (each code's neighbours kept near it; clusters show, distances
//!   between them mean little), or `raw` (the first two code numbers as they are).
//! * [`weights`]: the first layer's weights as pictures. A convolution's filters are small
//!   images; a linear layer on the pixels has, per hidden unit, one weight per pixel, which
//!   drawn as an image shows what that unit responds to (often pen strokes).

use super::eval::{class_name, open_run};
use super::{picture_path, RunOptions};
use crate::embed::pca::Pca;
use crate::embed::tsne::{neighbour_purity, tsne_watched, TsneSettings, MAX_POINTS};
use crate::error::{Error, Result};
use crate::names::Named;
use crate::nn::state_dict;
use crate::train::observe::{Event, Observer};
use crate::train::run_dir::load_run;
use crate::viz::chart::Scatter;
use crate::viz::{Cell, ImageGrid};
use std::path::{Path, PathBuf};

crate::named_enum! {
    /// How codes are brought down to two numbers for a picture.
    pub enum Projection: "projection" {
        /// The first two principal components of the codes.
        Pca = "pca", "the plane in which the codes spread most (principal components)",
        /// A t-SNE map of the codes.
        Tsne = "tsne", "a t-SNE map: each code's nearest neighbours kept near it",
        /// The first two code numbers.
        Raw = "raw", "the first two numbers of each code, as they are",
    }
}

/// What [`latent`] drew.
#[derive(Clone, Debug)]
pub struct LatentReport {
    /// The picture.
    pub out: PathBuf,
    /// Codes drawn.
    pub points: usize,
    /// The share of points whose nearest point on the picture has the same class.
    pub purity: f64,
    /// For PCA: the share of the codes' variance the two axes hold.
    pub explained: Option<f64>,
}

/// What map of the codes to draw.
#[derive(Clone, Debug)]
pub struct MapSpec {
    /// How codes become points in the plane.
    pub method: Projection,
    /// How many test images' codes (the first ones).
    pub n: usize,
    /// t-SNE's settings (unused by the other methods).
    pub tsne: TsneSettings,
}

/// `handgrad latent`: the first `spec.n` test images' codes (a VAE's means), in 2-D by
/// `spec.method`, coloured by class, into `out` (default `<run>/latent-<method>.png`); a
/// t-SNE map's descent is reported to `obs` step by step.
///
/// # Errors
/// [`Error::Config`] for `n` outside 3..=the test set (t-SNE: ..=[`MAX_POINTS`]), `raw` on a
/// code of one number, an existing output unless `replace`; as [`load_run`].
pub fn latent(
    dir: &Path,
    spec: &MapSpec,
    out: Option<&Path>,
    replace: bool,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> Result<LatentReport> {
    let (method, n, settings) = (spec.method, spec.n, &spec.tsne);
    let out = picture_path(dir, &format!("latent-{}", method.name()), out, replace)?;
    let (cfg, mut model, images) = open_run(dir, None, opts)?;
    let most = match method {
        Projection::Tsne => MAX_POINTS.min(images.set.len()),
        _ => images.set.len(),
    };
    if !(3..=most).contains(&n) {
        return Err(Error::config(
            "points",
            format!(
                "{n}: give 3 to {most} ({}{})",
                images.source,
                if method == Projection::Tsne {
                    "; exact t-SNE takes at most 5,000"
                } else {
                    ""
                }
            ),
        ));
    }
    let latent = model.latent();
    if latent < 2 {
        return Err(Error::config(
            "latent size",
            "a code of one number has no plane to draw; it is already a line".to_string(),
        ));
    }
    let (codes, _) = model.codes(&images.set.first_pixels(n))?;
    let labels = &images.set.labels[..n];
    let (points, x_label, y_label, explained) = match method {
        Projection::Raw => (
            codes
                .chunks(latent)
                .map(|c| (c[0] as f64, c[1] as f64))
                .collect(),
            "z₁ (first code number)".to_string(),
            "z₂ (second code number)".to_string(),
            None,
        ),
        Projection::Pca => {
            let pca = Pca::fit(&codes, latent, 2)?;
            let xy = pca.transform(&codes, 2);
            let share = |k: usize| 100.0 * (pca.explained(k) - pca.explained(k - 1));
            (
                xy.chunks(2).map(|c| (c[0] as f64, c[1] as f64)).collect(),
                format!(
                    "first principal component ({:.1} % of the codes' variance)",
                    share(1)
                ),
                format!("second principal component ({:.1} %)", share(2)),
                Some(pca.explained(2)),
            )
        }
        Projection::Tsne => (
            tsne_watched(&codes, latent, settings, &mut |done, total| {
                obs.event(Event::Working {
                    done,
                    total,
                    what: "t-SNE descent",
                });
            })?,
            "t-SNE axis 1 (no units: only neighbourhoods are meaningful)".to_string(),
            "t-SNE axis 2".to_string(),
            None,
        ),
    };
    let purity = neighbour_purity(&points, labels);
    let names: Vec<String> = (0..10).map(|c| class_name(&images, c)).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let how = match method {
        Projection::Tsne => format!("t-SNE, perplexity {}", settings.perplexity),
        Projection::Pca => "PCA".to_string(),
        Projection::Raw => "first two numbers".to_string(),
    };
    Scatter::by_class(
        format!(
            "{}: {n} test codes ({latent} numbers each), {how}",
            cfg.label()
        ),
        x_label,
        y_label,
        &points,
        labels,
        &name_refs,
    )
    .save(&out)?;
    Ok(LatentReport {
        out,
        points: n,
        purity,
        explained,
    })
}

/// The most tiles one weights picture shows; `--first` pages through the rest.
pub const MAX_TILES: usize = 256;

/// `handgrad weights`: a layer's weights as one picture, a tile per output unit, each tile
/// scaled from its own minimum (black) to its maximum (white). `layer` defaults to the
/// encoder's first layer with weights; it must be a convolution on one channel or a linear layer on the
/// image's pixels. Shown: up to [`MAX_TILES`] units from number `first`. Default output
/// `<run>/weights-<layer>.png`. Returns the path and the number of tiles.
///
/// # Errors
/// [`Error::Config`] for a layer that does not exist or whose weights are not images, or a
/// `first` past its last unit.
pub fn weights(
    dir: &Path,
    layer: Option<&str>,
    first: usize,
    out: Option<&Path>,
    replace: bool,
) -> Result<(PathBuf, usize)> {
    let (cfg, model) = load_run(dir)?;
    let params = state_dict(&model);
    // By default the encoder's first layer with weights (encoder.0 for a conv net, encoder.1
    // after an MLP's Flatten), by its position, not its spelling (encoder.10 comes after .9).
    let first_layer = params
        .keys()
        .filter_map(|k| k.strip_prefix("encoder.")?.strip_suffix(".weight"))
        .filter_map(|i| i.parse::<usize>().ok())
        .min()
        .map(|i| format!("encoder.{i}"));
    let layer = layer.or(first_layer.as_deref()).unwrap_or("encoder.0");
    let key = format!("{layer}.weight");
    let Some(w) = params.get(&key) else {
        // In the model's order: the encoder's layers, then the decoder's, each by position
        // (decoder.2 before decoder.11), not sorted as text.
        let mut known: Vec<(usize, usize, &str)> = params
            .keys()
            .filter_map(|k| k.strip_suffix(".weight"))
            .map(|name| {
                let (part, index) = name.split_once('.').unwrap_or((name, ""));
                let half = usize::from(part != "encoder");
                (half, index.parse().unwrap_or(usize::MAX), name)
            })
            .collect();
        known.sort_unstable();
        let known: Vec<&str> = known.into_iter().map(|(_, _, name)| name).collect();
        return Err(Error::config(
            "layer",
            format!(
                "{layer:?} has no weights; layers with weights: {}",
                known.join(", ")
            ),
        ));
    };
    let [_, h, wd] = cfg.model.input;
    let shape = w.shape().to_vec();
    let (tile_h, tile_w, what) = match shape.as_slice() {
        // A transposed convolution's weights are [in, out, k, k]: with one output channel,
        // each tile is what one code channel paints onto the output image.
        [inputs, 1, kh, kw] if layer.starts_with("decoder.") => (
            *kh,
            *kw,
            format!("the {kh}×{kw} stroke each of its {inputs} input channels paints onto the output image"),
        ),
        [_, 1, kh, kw] => (*kh, *kw, format!("{kh}×{kw} filters on the input image")),
        [_, inputs] if *inputs == h * wd => (
            h,
            wd,
            format!("each unit's {inputs} input weights as a {h}×{wd} image"),
        ),
        _ => {
            return Err(Error::config(
                "layer",
                format!(
                    "{layer}'s weights are {shape:?}: only a convolution on one channel ([out, 1, k, k]) or a linear layer on the {}×{} pixels ([out, {}]) can be drawn as images",
                    h,
                    wd,
                    h * wd
                ),
            ))
        }
    };
    let out = picture_path(dir, &format!("weights-{layer}"), out, replace)?;
    let units = shape[0];
    if first >= units {
        return Err(Error::config(
            "first",
            format!(
                "{layer} has {units} units, numbered 0 to {}: start below that",
                units - 1
            ),
        ));
    }
    let shown = (units - first).min(MAX_TILES);
    let tile = tile_h * tile_w;
    let data: Vec<f32> = w.iter().copied().collect();
    let tiles: Vec<Vec<f32>> = data
        .chunks(tile)
        .skip(first)
        .take(shown)
        .map(|t| {
            let (lo, hi) = t
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let span = if hi > lo { hi - lo } else { 1.0 };
            t.iter().map(|v| (v - lo) / span).collect()
        })
        .collect();
    let per_row = if tile_h <= 8 { 8 } else { 16 };
    let scale = if tile_h <= 8 { 20 } else { 2 };
    let mut grid = ImageGrid::new(
        format!("{}: {layer}, {what}", cfg.label()),
        tile_h,
        tile_w,
        scale,
    )
    .note(format!(
        "One tile per {} ({shown} of {units} shown, from number {first}; --first chooses where to start), numbered left to right, top to bottom.",
        if shape.len() == 4 && layer.starts_with("decoder.") { "input channel" } else { "output unit" }
    ))
    .note("Each tile is scaled on its own: black = its most negative weight, white = its most positive.");
    for (r, row) in tiles.chunks(per_row).enumerate() {
        let start = first + r * per_row;
        let cells = row.iter().map(|t| Cell::plain(t)).collect();
        grid = grid.row(format!("units {}–{}", start, start + row.len() - 1), cells);
    }
    grid.save(&out)?;
    Ok((out, shown))
}
