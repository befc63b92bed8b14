//! Text laid out glyph by glyph, each glyph where the font puts it.
//!
//! plotters draws text through its drawing backend, and its `ab_glyph` path places every
//! glyph's bitmap at the pen position, forgetting the glyph's left side bearing (the blank a
//! font leaves before the ink of a letter), and truncates the pen to whole pixels. Letters
//! with a wide bearing then sit too far left and the ones after them too far right: "1500"
//! reads "15 00", "image" reads "im age". [`Pixels`] is plotters' bitmap backend with text
//! drawn the way a font asks: the pen advances in fractions of a pixel by each glyph's
//! advance and kerning, and each glyph's ink is placed at its own bounds around the pen.
//! Everything else (lines, rectangles, circles, pixels) is the bitmap backend's.

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontStyle,
};

/// The embedded DejaVu Sans, regular or bold.
fn font(bold: bool) -> Option<FontRef<'static>> {
    let bytes = if bold {
        dejavu::sans::bold()
    } else {
        dejavu::sans::regular()
    };
    FontRef::try_from_slice(bytes).ok()
}

/// One glyph's ink: coverage (0 to 1) of each pixel it touches, relative to the top-left
/// corner of the line of text.
type Ink = Vec<(i32, i32, f32)>;

/// Walks `text` at `size` pixels (the height from the font's ascent to its descent, as
/// plotters measures it), calling `each(glyph)` with every glyph placed at its pen position
/// on the baseline (advances and kerning, in fractions of a pixel); returns the line's width
/// and height.
fn walk(
    text: &str,
    size: f64,
    bold: bool,
    mut each: impl FnMut(&FontRef<'_>, Glyph),
) -> (u32, u32) {
    let Some(font) = font(bold) else {
        return (0, 0);
    };
    let scale = PxScale::from(size as f32);
    let scaled = font.as_scaled(scale);
    let mut pen = 0.0f32;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            pen += scaled.kern(p, id);
        }
        previous = Some(id);
        // The glyph's origin on the baseline, the ascent below the top of the line.
        each(
            &font,
            id.with_scale_and_position(scale, point(pen, scaled.ascent())),
        );
        pen += scaled.h_advance(id);
    }
    let height = scaled.ascent() - scaled.descent();
    (pen.ceil() as u32, height.ceil() as u32)
}

/// The width and height of `text` at `size` pixels, without drawing it.
pub fn measure(text: &str, size: f64, bold: bool) -> (u32, u32) {
    walk(text, size, bold, |_, _| {})
}

/// Lays out `text` at `size` pixels: the ink of every glyph, and the line's width and height.
pub fn layout(text: &str, size: f64, bold: bool) -> (Ink, (u32, u32)) {
    let mut ink = Vec::new();
    let size = walk(text, size, bold, |font, glyph| {
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (left, top) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|x, y, coverage| ink.push((left + x as i32, top + y as i32, coverage)));
        }
    });
    (ink, size)
}

/// plotters' bitmap backend over an RGB buffer, with text laid out by [`layout`].
pub struct Pixels<'a>(BitMapBackend<'a>);

impl<'a> Pixels<'a> {
    /// Draws on `rgb`, a `width`×`height` picture of red-green-blue bytes.
    pub fn new(rgb: &'a mut [u8], (width, height): (u32, u32)) -> Self {
        Pixels(BitMapBackend::with_buffer(rgb, (width, height)))
    }
}

type Outcome<E> = Result<(), DrawingErrorKind<E>>;

impl DrawingBackend for Pixels<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Outcome<Self::ErrorType> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Outcome<Self::ErrorType> {
        self.0.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Outcome<Self::ErrorType> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Outcome<Self::ErrorType> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Outcome<Self::ErrorType> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Outcome<Self::ErrorType> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Outcome<Self::ErrorType> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Outcome<Self::ErrorType> {
        self.0.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Outcome<Self::ErrorType> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// The text's ink, shifted to its anchor (left, centre or right; top, centre or bottom),
    /// turned as the style asks, each pixel blended by its coverage.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        (x, y): BackendCoord,
    ) -> Outcome<Self::ErrorType> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let bold = matches!(style.style(), FontStyle::Bold);
        let (ink, (width, height)) = layout(text, style.size(), bold);
        let (width, height) = (width as i32, height as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let turn = style.transform();
        let (w, h) = self.get_size();
        for (gx, gy, coverage) in ink {
            let (tx, ty) = turn.transform(gx + dx, gy + dy);
            let (px, py) = (x + tx, y + ty);
            if px >= 0 && py >= 0 && px < w as i32 && py < h as i32 {
                let alpha = color.alpha * coverage.clamp(0.0, 1.0) as f64;
                self.0
                    .draw_pixel((px, py), BackendColor { alpha, ..color })?;
            }
        }
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let bold = matches!(style.style(), FontStyle::Bold);
        Ok(measure(text, style.size(), bold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns that hold ink, as runs of consecutive columns: one run per glyph for
    /// letters that do not touch.
    fn ink_runs(text: &str) -> Vec<(i32, i32)> {
        let (ink, _) = layout(text, 40.0, false);
        let mut columns: Vec<i32> = ink.iter().filter(|p| p.2 > 0.3).map(|p| p.0).collect();
        columns.sort_unstable();
        columns.dedup();
        let mut runs: Vec<(i32, i32)> = Vec::new();
        for c in columns {
            match runs.last_mut() {
                Some(r) if r.1 + 1 == c => r.1 = c,
                _ => runs.push((c, c)),
            }
        }
        runs
    }

    #[test]
    fn each_glyph_is_inked_at_its_pen_position_plus_its_left_bearing() {
        // plotters' own text path starts each glyph's ink at the pen, which at 40 px puts
        // "1" (a bearing of about 4 px) 4 px too far left of the "5" after it.
        let text = "1500";
        let font = font(false).expect("the embedded font");
        let scaled = font.as_scaled(PxScale::from(40.0));
        let mut pen = 0.0;
        let mut previous = None;
        let mut expected = Vec::new();
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                pen += scaled.kern(p, id);
            }
            previous = Some(id);
            expected.push(pen + scaled.h_side_bearing(id));
            pen += scaled.h_advance(id);
        }
        let runs = ink_runs(text);
        assert_eq!(runs.len(), 4, "{runs:?}");
        for (run, want) in runs.iter().zip(&expected) {
            assert!(
                (run.0 as f32 - want).abs() <= 1.0,
                "ink starts at {runs:?}, the font says {expected:?}"
            );
        }
    }

    #[test]
    fn the_width_is_the_sum_of_advances_and_a_line_is_as_tall_as_the_size() {
        let (w1, h) = measure("00", 20.0, false);
        let (w2, _) = measure("0", 20.0, false);
        assert!((w1 as i32 - 2 * w2 as i32).abs() <= 1);
        assert!((h as i32 - 20).abs() <= 1, "{h}");
        assert_eq!(measure("", 20.0, false).0, 0);
        assert_eq!(layout("00", 20.0, false).1, (w1, h));
    }
}
