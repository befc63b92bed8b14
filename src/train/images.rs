//! Pictures of images: grids of originals and reconstructions, written as grayscale PNGs.
//!
//! A grid is rows of equally sized images with a one-pixel gap, each pixel enlarged to a
//! `scale`×`scale` block so 28×28 digits are visible at a glance.

use super::checkpoint::write_atomic;
use crate::error::{Error, Result};
use std::path::Path;

/// A grayscale picture, 8 bits per pixel, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gray {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// width·height intensities.
    pub pixels: Vec<u8>,
}

impl Gray {
    /// Encodes as PNG.
    ///
    /// # Errors
    /// [`Error::Config`] if the encoder fails (it cannot for a consistent picture).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| Error::config("png", e.to_string()))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| Error::config("png", e.to_string()))?;
        writer
            .finish()
            .map_err(|e| Error::config("png", e.to_string()))?;
        Ok(out)
    }

    /// Writes the PNG to `path`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path if it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_png()?)
    }
}

/// Lays out rows of images (each `h`×`w` values in [0, 1]) as one picture, every pixel
/// enlarged `scale` times, with gaps of one (enlarged) pixel between images and rows.
pub fn grid(rows: &[Vec<&[f32]>], h: usize, w: usize, scale: usize) -> Gray {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let cell_w = (w + 1) * scale;
    let cell_h = (h + 1) * scale;
    let (width, height) = ((cols * cell_w).max(1), (rows.len() * cell_h).max(1));
    // Gaps are mid-grey so black and white images both stand out from them.
    let mut pixels = vec![128u8; width * height];
    for (r, row) in rows.iter().enumerate() {
        for (c, image) in row.iter().enumerate() {
            for y in 0..h * scale {
                let dst = (r * cell_h + y) * width + c * cell_w;
                for x in 0..w * scale {
                    let v = image
                        .get((y / scale) * w + x / scale)
                        .copied()
                        .unwrap_or(0.0);
                    pixels[dst + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    Gray {
        width,
        height,
        pixels,
    }
}
