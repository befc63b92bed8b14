//! Grids of images with a title, explanatory notes, a header over every column, a label
//! beside every row, and an optional caption under every image: reconstructions over epochs,
//! clean / corrupted / denoised rows, generated digits with their codes, learned filters.

use super::{Anchor, Canvas, INK, MUTED};
use crate::error::Result;
use std::path::Path;

/// One image of a grid, with an optional caption (may hold several lines).
#[derive(Clone, Debug)]
pub struct Cell<'a> {
    /// h·w values in [0, 1].
    pub pixels: &'a [f32],
    /// Text under the image, `\n` between lines.
    pub caption: Option<String>,
}

impl<'a> Cell<'a> {
    /// An image without a caption.
    pub fn plain(pixels: &'a [f32]) -> Self {
        Cell {
            pixels,
            caption: None,
        }
    }

    /// An image with a caption.
    pub fn captioned(pixels: &'a [f32], caption: impl Into<String>) -> Self {
        Cell {
            pixels,
            caption: Some(caption.into()),
        }
    }
}

/// A grid of equally sized grayscale images and everything that says what they are.
#[derive(Clone, Debug)]
pub struct ImageGrid<'a> {
    /// One line at the top.
    pub title: String,
    /// Lines under the title saying what rows, columns and captions are.
    pub notes: Vec<String>,
    /// A header over each column (empty for none).
    pub column_labels: Vec<String>,
    /// A label left of each row (empty for none).
    pub row_labels: Vec<String>,
    /// The images, row by row.
    pub rows: Vec<Vec<Cell<'a>>>,
    /// Image height in pixels.
    pub h: usize,
    /// Image width in pixels.
    pub w: usize,
    /// Every image pixel drawn as scale×scale.
    pub scale: usize,
}

const TITLE: u32 = 18;
const NOTE: u32 = 13;
const LABEL: u32 = 13;
const CAPTION: u32 = 11;
const PAD: usize = 10;
const GAP: usize = 6;

impl<'a> ImageGrid<'a> {
    /// An empty grid of `h`×`w` images drawn at `scale`.
    pub fn new(title: impl Into<String>, h: usize, w: usize, scale: usize) -> Self {
        ImageGrid {
            title: title.into(),
            notes: Vec::new(),
            column_labels: Vec::new(),
            row_labels: Vec::new(),
            rows: Vec::new(),
            h,
            w,
            scale: scale.max(1),
        }
    }

    /// Adds a line of explanation under the title.
    pub fn note(mut self, line: impl Into<String>) -> Self {
        self.notes.push(line.into());
        self
    }

    /// Adds a row of images with its label.
    pub fn row(mut self, label: impl Into<String>, cells: Vec<Cell<'a>>) -> Self {
        self.row_labels.push(label.into());
        self.rows.push(cells);
        self
    }

    /// Sets the column headers.
    pub fn columns(mut self, labels: Vec<String>) -> Self {
        self.column_labels = labels;
        self
    }

    /// Draws the grid.
    pub fn render(&self) -> Canvas {
        // Measure first (on a scratch canvas), then draw on one of the right size.
        let mut m = Canvas::new(1, 1);
        let (img_w, img_h) = (self.w * self.scale, self.h * self.scale);
        let line_h = |m: &mut Canvas, size| m.text_size("Ag", size).1 + 2;
        let caption_lines = self
            .rows
            .iter()
            .flatten()
            .filter_map(|c| c.caption.as_ref())
            .map(|c| c.lines().count())
            .max()
            .unwrap_or(0);
        let caption_w = self
            .rows
            .iter()
            .flatten()
            .filter_map(|c| c.caption.as_ref())
            .flat_map(|c| c.lines())
            .map(|l| m.text_size(l, CAPTION).0)
            .max()
            .unwrap_or(0);
        let header_w = self
            .column_labels
            .iter()
            .map(|l| m.text_size(l, LABEL).0)
            .max()
            .unwrap_or(0);
        let cell_w = img_w.max(caption_w).max(header_w) + GAP;
        let cell_h = img_h + caption_lines * line_h(&mut m, CAPTION) + GAP;
        let label_w = self
            .row_labels
            .iter()
            .map(|l| m.text_size(l, LABEL).0)
            .max()
            .map_or(0, |w| w + PAD);
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let title_h = line_h(&mut m, TITLE) + 4;
        let notes_h = self.notes.len() * line_h(&mut m, NOTE);
        let header_h = if self.column_labels.is_empty() {
            0
        } else {
            line_h(&mut m, LABEL) + 2
        };
        let top = PAD + title_h + notes_h + PAD / 2 + header_h;
        let grid_w = label_w + cols * cell_w;
        let text_w = std::iter::once(m.bold_size(&self.title, TITLE).0)
            .chain(self.notes.iter().map(|n| m.text_size(n, NOTE).0 * 11 / 10))
            .max()
            .unwrap_or(0);
        let width = 2 * PAD + grid_w.max(text_w);
        let height = top + self.rows.len() * cell_h + PAD;

        let mut c = Canvas::new(width, height);
        c.bold(PAD, PAD, &self.title, TITLE, INK, Anchor::TopLeft);
        let mut y = PAD + title_h;
        for note in &self.notes {
            c.text(PAD, y, note, NOTE, MUTED, Anchor::TopLeft);
            y += line_h(&mut c, NOTE);
        }
        let x0 = PAD + label_w;
        for (j, label) in self.column_labels.iter().enumerate() {
            let x = x0 + j * cell_w + (cell_w - GAP) / 2;
            c.text(x, top - header_h, label, LABEL, INK, Anchor::TopCenter);
        }
        let caption_line = line_h(&mut c, CAPTION);
        for (i, row) in self.rows.iter().enumerate() {
            let y = top + i * cell_h;
            if let Some(label) = self.row_labels.get(i) {
                c.text(
                    x0 - PAD,
                    y + img_h / 2,
                    label,
                    LABEL,
                    INK,
                    Anchor::RightMiddle,
                );
            }
            for (j, cell) in row.iter().enumerate() {
                let x = x0 + j * cell_w;
                let ix = x + (cell_w - GAP - img_w) / 2;
                c.rect(ix - 1, y - 1, img_w + 2, img_h + 2, [150, 150, 150]);
                c.image(ix, y, cell.pixels, self.h, self.w, self.scale);
                if let Some(caption) = &cell.caption {
                    for (k, line) in caption.lines().enumerate() {
                        let cy = y + img_h + 2 + k * caption_line;
                        let cx = x + (cell_w - GAP) / 2;
                        c.text(cx, cy, line, CAPTION, INK, Anchor::TopCenter);
                    }
                }
            }
        }
        c
    }

    /// Draws the grid and writes it as PNG, atomically.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the path.
    pub fn save(&self, path: &Path) -> Result<Canvas> {
        let canvas = self.render();
        canvas.save(path)?;
        Ok(canvas)
    }
}

/// Consecutive images of `len` values each, as uncaptioned cells.
pub fn cells(data: &[f32], len: usize) -> Vec<Cell<'_>> {
    data.chunks(len.max(1)).map(Cell::plain).collect()
}
