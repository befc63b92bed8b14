//! Loss curves as PNG plots, drawn with `plotters` and the embedded DejaVu Sans font (so no
//! system font library is needed).

use super::checkpoint::write_atomic;
use super::fit::EpochMetrics;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

/// Registers the embedded font with plotters, once per process.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A bundled, valid TrueType font: registration cannot fail, and text would merely be
        // missing if it did, so the result is not worth an error path.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::config("plot", e.to_string())
}

/// Draws training and validation loss against epoch, with labelled axes and a legend.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn loss_curve(path: &Path, title: &str, history: &[EpochMetrics]) -> Result<()> {
    register_font();
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let finite = |v: f64| v.is_finite().then_some(v);
        let values: Vec<f64> = history
            .iter()
            .flat_map(|m| [finite(m.train_loss), finite(m.val_loss)])
            .flatten()
            .collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() {
            (lo, if hi > lo { hi } else { lo + 1e-3 })
        } else {
            (0.0, 1.0)
        };
        let pad = (hi - lo) * 0.05;
        let last = history.last().map_or(1, |m| m.epoch).max(2);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(75)
            .build_cartesian_2d(1f64..last as f64, (lo - pad)..(hi + pad))
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_error)?;
        let series = |f: fn(&EpochMetrics) -> f64| {
            history
                .iter()
                .filter_map(move |m| finite(f(m)).map(|v| (m.epoch as f64, v)))
        };
        for (label, color, f) in [
            (
                "training",
                BLUE,
                (|m: &EpochMetrics| m.train_loss) as fn(&EpochMetrics) -> f64,
            ),
            ("validation", RED, |m| m.val_loss),
        ] {
            chart
                .draw_series(LineSeries::new(series(f), color.stroke_width(2)))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(series(f).map(|p| Circle::new(p, 3, color.filled())))
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    write_atomic(path, &rgb_png(&rgb, WIDTH, HEIGHT)?)
}

/// Encodes an RGB buffer as PNG.
fn rgb_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(plot_error)?;
    writer.write_image_data(rgb).map_err(plot_error)?;
    writer.finish().map_err(plot_error)?;
    Ok(out)
}
