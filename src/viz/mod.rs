//! Pictures: every result a person would rather look at than read.
//!
//! A picture here is read without the command that made it, so each one carries a title,
//! a caption for every row and column (epoch, σ, class name, "clean / corrupted /
//! denoised"), axis labels, and a legend wherever colour means something.
//!
//! Reading order: [`Canvas`] (pixels and text) → [`grid`] (labelled grids of images:
//! reconstructions, generated digits, filters) → [`chart`] (line plots, scatter plots,
//! confusion matrices).
//!
//! Text is drawn with the DejaVu Sans font compiled into the program, so no system font
//! library is needed and every machine draws the same pixels; [`text`] places its glyphs.

pub mod chart;
pub mod grid;
pub mod page;
pub mod text;

use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

pub use grid::{cells, Cell, ImageGrid};

/// Registers the embedded font with plotters, once per process.
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A bundled, valid TrueType font: registration cannot fail, and text would merely be
        // missing if it did, so the result is not worth an error path.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// A drawing error from plotters, as ours.
pub(crate) fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::format("picture", e.to_string())
}

/// A colour as red, green, blue.
pub type Rgb = [u8; 3];

/// Black.
pub const INK: Rgb = [20, 20, 20];
/// Grey for secondary text.
pub const MUTED: Rgb = [95, 95, 95];
/// White.
pub const PAPER: Rgb = [255, 255, 255];

/// Ten colours that stay distinguishable side by side (Tableau's palette), one per class.
pub const CLASS_COLORS: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Where a piece of text sits relative to its anchor point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The anchor is the text's top-left corner.
    TopLeft,
    /// The anchor is the middle of the text's top edge.
    TopCenter,
    /// The anchor is the middle of the text's right edge.
    RightMiddle,
    /// The anchor is the text's centre.
    Center,
}

/// An RGB picture to draw images, rectangles and text on, then save as PNG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// width·height·3 bytes, row-major, red-green-blue.
    pub rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Self {
        register_font();
        Canvas {
            width: width.max(1),
            height: height.max(1),
            rgb: vec![255; width.max(1) * height.max(1) * 3],
        }
    }

    /// Sets one pixel (ignored outside the canvas).
    pub fn set(&mut self, x: usize, y: usize, color: Rgb) {
        if x < self.width && y < self.height {
            let at = (y * self.width + x) * 3;
            self.rgb[at..at + 3].copy_from_slice(&color);
        }
    }

    /// Fills a rectangle.
    pub fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, color: Rgb) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.set(xx, yy, color);
            }
        }
    }

    /// Draws an `h`×`w` grayscale image (values in [0, 1], clamped; 0 black, 1 white) with
    /// its top-left corner at (x, y), every pixel enlarged to `scale`×`scale`.
    pub fn image(&mut self, x: usize, y: usize, pixels: &[f32], h: usize, w: usize, scale: usize) {
        for (r, row) in pixels.chunks(w).take(h).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                self.rect(x + c * scale, y + r * scale, scale, scale, [g, g, g]);
            }
        }
    }

    /// The width and height `text` takes at font size `size` (pixels).
    pub fn text_size(&mut self, text: &str, size: u32) -> (usize, usize) {
        let (w, h) = text::measure(text, size as f64, false);
        (w as usize, h as usize)
    }

    /// The size bold `text` takes (titles).
    pub fn bold_size(&mut self, text: &str, size: u32) -> (usize, usize) {
        let (w, h) = text::measure(text, size as f64, true);
        (w as usize, h as usize)
    }

    /// Draws `text` at font size `size`, anchored at (x, y).
    pub fn text(&mut self, x: usize, y: usize, text: &str, size: u32, color: Rgb, anchor: Anchor) {
        self.styled_text(x, y, text, size, color, anchor, false, false);
    }

    /// Draws bold `text` (titles).
    pub fn bold(&mut self, x: usize, y: usize, text: &str, size: u32, color: Rgb, anchor: Anchor) {
        self.styled_text(x, y, text, size, color, anchor, true, false);
    }

    /// Draws `text` turned a quarter left (reading bottom to top): vertical axis titles.
    pub fn vertical_text(&mut self, x: usize, y: usize, text: &str, size: u32, color: Rgb) {
        self.styled_text(x, y, text, size, color, Anchor::Center, false, true);
    }

    #[allow(clippy::too_many_arguments)]
    fn styled_text(
        &mut self,
        x: usize,
        y: usize,
        text: &str,
        size: u32,
        color: Rgb,
        anchor: Anchor,
        bold: bool,
        vertical: bool,
    ) {
        let (w, h) = (self.width as u32, self.height as u32);
        let root = text::Pixels::new(&mut self.rgb, (w, h)).into_drawing_area();
        let font = if bold {
            ("sans-serif", size, FontStyle::Bold).into_font()
        } else {
            ("sans-serif", size).into_font()
        };
        let color = RGBColor(color[0], color[1], color[2]);
        let pos = match anchor {
            Anchor::TopLeft => Pos::new(HPos::Left, VPos::Top),
            Anchor::TopCenter => Pos::new(HPos::Center, VPos::Top),
            Anchor::RightMiddle => Pos::new(HPos::Right, VPos::Center),
            Anchor::Center => Pos::new(HPos::Center, VPos::Center),
        };
        let mut style = TextStyle::from(font).color(&color).pos(pos);
        if vertical {
            style = style.transform(FontTransform::Rotate270);
        }
        // Text outside the canvas is clipped by the backend; nothing to report.
        let _ = root.draw_text(text, &style, (x as i32, y as i32));
    }

    /// Encodes as PNG.
    ///
    /// # Errors
    /// [`Error::Config`] if the encoder fails (it cannot for a consistent canvas).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        rgb_png(&self.rgb, self.width as u32, self.height as u32)
    }

    /// Writes the PNG to `path`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path if it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fs::write_atomic(path, &self.to_png()?)
    }
}

/// Encodes an RGB buffer as PNG.
pub(crate) fn rgb_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(plot_error)?;
    writer.write_image_data(rgb).map_err(plot_error)?;
    writer.finish().map_err(plot_error)?;
    Ok(out)
}

/// Refuses an output path that does not end in `.png`: every picture is written as PNG, and a
/// `.jpg` name holding PNG bytes would mislead whatever opens it.
///
/// # Errors
/// [`Error::Output`] naming the path.
pub fn check_png_path(path: &Path) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        Ok(())
    } else {
        Err(Error::output(
            "output file",
            format!(
                "{} does not end in .png; pictures are written as PNG, so name the file …png",
                path.display()
            ),
        ))
    }
}
