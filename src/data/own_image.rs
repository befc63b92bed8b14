//! A person's own picture, made into an input the model has seen the like of.
//!
//! MNIST's digits were not photographs dropped into 28×28 pixels. Each was (LeCun et al.)
//! white ink on black, its bounding box scaled to fit a 20×20 box with its aspect ratio kept
//! (anti-aliased, so edges are grey), and that box placed in 28×28 so that the ink's centre of
//! mass sits at the centre. A model trained on them expects exactly that; a digit drawn dark on
//! white, filling its frame, is far from anything it saw. [`prepare`] repeats those steps on any
//! PNG — any size, grey or colour, with or without transparency, light or dark background —
//! and keeps each stage so that a learner can see what the model is given.

use crate::error::{Error, Result};
use std::path::Path;

/// Every stage of [`prepare`], each an image of the model's input size, values in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Stages {
    /// The picture in grey (transparency over white), scaled to fit the frame, as given.
    pub grey: Vec<f32>,
    /// The same with ink white on black: inverted if its border was mostly light.
    pub ink: Vec<f32>,
    /// The ink's bounding box scaled to fit the inner box (20×20 of 28×28), in the middle.
    pub fitted: Vec<f32>,
    /// That box moved so the ink's centre of mass is the frame's centre: the model's input.
    pub centred: Vec<f32>,
    /// Whether the picture was inverted.
    pub inverted: bool,
    /// The picture's own size, (height, width).
    pub source: (usize, usize),
}

/// A decoded picture in grey: (height, width, values in [0, 1] row by row).
type Grey = (usize, usize, Vec<f32>);

/// The most pixels a picture may have (a 12-megapixel photograph).
const MAX_PIXELS: u64 = 12_000_000;

/// Pixels below this (after inversion, on a [0, 1] scale) are background for the bounding box.
const INK: f32 = 0.1;

/// Reads the PNG at `path` and prepares it for a model whose input is `rows`×`cols`, as MNIST
/// was made (see the module's text). The inner box is 20/28 of the frame.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Dataset`] naming it when it is not a
/// PNG, or holds no ink at all (a blank picture).
pub fn prepare(path: &Path, rows: usize, cols: usize) -> Result<Stages> {
    let (h, w, grey) = read_grey(path)?;
    prepare_grey(&grey, h, w, rows, cols).map_err(|detail| Error::Dataset {
        path: path.to_path_buf(),
        detail,
    })
}

/// [`prepare`] on a decoded grey picture; `Err` says what is wrong with it.
fn prepare_grey(
    grey: &[f32],
    h: usize,
    w: usize,
    rows: usize,
    cols: usize,
) -> std::result::Result<Stages, String> {
    // A light border means dark ink on a light background: turn it round.
    let border: Vec<f32> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .filter(|&(y, x)| y == 0 || x == 0 || y + 1 == h || x + 1 == w)
        .map(|(y, x)| grey[y * w + x])
        .collect();
    let background = border.iter().sum::<f32>() / border.len().max(1) as f32;
    let inverted = background > 0.5;
    let mut ink: Vec<f32> = if inverted {
        grey.iter().map(|v| 1.0 - v).collect()
    } else {
        grey.to_vec()
    };
    // The background itself to 0 and the strongest ink to 1, as MNIST's levels are.
    let floor = if inverted {
        1.0 - background
    } else {
        background
    }
    .min(0.5);
    let top = ink.iter().copied().fold(0.0f32, f32::max);
    if top - floor < INK {
        return Err("the picture holds no ink: every pixel is about the same shade".into());
    }
    ink.iter_mut()
        .for_each(|v| *v = ((*v - floor) / (top - floor)).clamp(0.0, 1.0));
    let (y0, y1, x0, x1) = bounding_box(&ink, h, w);
    let (inner_r, inner_c) = ((rows * 20).div_ceil(28), (cols * 20).div_ceil(28));
    // The box scaled to fit the inner box, its aspect ratio kept.
    let (bh, bw) = (y1 - y0, x1 - x0);
    let scale = (inner_r as f64 / bh as f64).min(inner_c as f64 / bw as f64);
    let (fh, fw) = (
        ((bh as f64 * scale).round() as usize).clamp(1, inner_r),
        ((bw as f64 * scale).round() as usize).clamp(1, inner_c),
    );
    let crop: Vec<f32> = (y0..y1)
        .flat_map(|y| ink[y * w + x0..y * w + x1].iter().copied())
        .collect();
    let glyph = resample(&crop, bh, bw, fh, fw);
    let (top_r, left_c) = ((rows - fh) / 2, (cols - fw) / 2);
    let fitted = place(&glyph, fh, fw, rows, cols, top_r as isize, left_c as isize);
    // Move it so the centre of mass lands on the frame's centre (whole pixels, as MNIST did).
    let (cy, cx) = centre_of_mass(&fitted, rows, cols);
    let dy = (rows as f64 / 2.0 - cy).round() as isize;
    let dx = (cols as f64 / 2.0 - cx).round() as isize;
    let centred = place(
        &glyph,
        fh,
        fw,
        rows,
        cols,
        top_r as isize + dy,
        left_c as isize + dx,
    );
    // The stages before fitting, shown at the frame's size.
    let (sh, sw) = fit_within(h, w, rows, cols);
    let frame = |img: &[f32]| {
        let small = resample(img, h, w, sh, sw);
        place(
            &small,
            sh,
            sw,
            rows,
            cols,
            ((rows - sh) / 2) as isize,
            ((cols - sw) / 2) as isize,
        )
    };
    Ok(Stages {
        grey: frame(grey),
        ink: frame(&ink),
        fitted,
        centred,
        inverted,
        source: (h, w),
    })
}

/// The size of an `h`×`w` picture scaled to fit `rows`×`cols` with its aspect ratio kept.
fn fit_within(h: usize, w: usize, rows: usize, cols: usize) -> (usize, usize) {
    let scale = (rows as f64 / h as f64).min(cols as f64 / w as f64);
    (
        ((h as f64 * scale).round() as usize).clamp(1, rows),
        ((w as f64 * scale).round() as usize).clamp(1, cols),
    )
}

/// Rows y0..y1 and columns x0..x1 holding every pixel of at least [`INK`].
fn bounding_box(img: &[f32], h: usize, w: usize) -> (usize, usize, usize, usize) {
    let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
    for y in 0..h {
        for x in 0..w {
            if img[y * w + x] >= INK {
                y0 = y0.min(y);
                y1 = y1.max(y + 1);
                x0 = x0.min(x);
                x1 = x1.max(x + 1);
            }
        }
    }
    (y0, y1.max(y0 + 1), x0, x1.max(x0 + 1))
}

/// `img` (`h`×`w`) resampled to `oh`×`ow` by area: each output pixel is the mean of the input
/// area it covers, partly covered pixels counted by the share covered. It anti-aliases when
/// shrinking and stretches pixels into blocks when growing.
pub fn resample(img: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let (sy, sx) = (h as f64 / oh as f64, w as f64 / ow as f64);
    // For each output index: the input indices it covers and their weights.
    let spans = |n_out: usize, s: f64, n_in: usize| -> Vec<Vec<(usize, f64)>> {
        (0..n_out)
            .map(|o| {
                let (a, b) = (o as f64 * s, (o + 1) as f64 * s);
                (a.floor() as usize..(b.ceil() as usize).min(n_in))
                    .map(|i| (i, (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0)))
                    .filter(|&(_, wgt)| wgt > 0.0)
                    .collect()
            })
            .collect()
    };
    let (rows, cols) = (spans(oh, sy, h), spans(ow, sx, w));
    let mut out = vec![0.0f32; oh * ow];
    for (oy, ry) in rows.iter().enumerate() {
        for (ox, rx) in cols.iter().enumerate() {
            let (mut sum, mut weight) = (0.0f64, 0.0f64);
            for &(y, wy) in ry {
                for &(x, wx) in rx {
                    sum += img[y * w + x] as f64 * wy * wx;
                    weight += wy * wx;
                }
            }
            out[oy * ow + ox] = (sum / weight.max(f64::MIN_POSITIVE)) as f32;
        }
    }
    out
}

/// A `rows`×`cols` black frame with `glyph` (`gh`×`gw`) put at (`top`, `left`); what falls
/// outside the frame is cut off.
fn place(
    glyph: &[f32],
    gh: usize,
    gw: usize,
    rows: usize,
    cols: usize,
    top: isize,
    left: isize,
) -> Vec<f32> {
    let mut frame = vec![0.0f32; rows * cols];
    for y in 0..gh {
        for x in 0..gw {
            let (fy, fx) = (top + y as isize, left + x as isize);
            if (0..rows as isize).contains(&fy) && (0..cols as isize).contains(&fx) {
                frame[fy as usize * cols + fx as usize] = glyph[y * gw + x];
            }
        }
    }
    frame
}

/// The ink-weighted mean position (row, column), pixel centres at +0.5.
fn centre_of_mass(img: &[f32], rows: usize, cols: usize) -> (f64, f64) {
    let (mut m, mut my, mut mx) = (0.0f64, 0.0f64, 0.0f64);
    for y in 0..rows {
        for x in 0..cols {
            let v = img[y * cols + x] as f64;
            m += v;
            my += v * (y as f64 + 0.5);
            mx += v * (x as f64 + 0.5);
        }
    }
    if m == 0.0 {
        return (rows as f64 / 2.0, cols as f64 / 2.0);
    }
    (my / m, mx / m)
}

/// Decodes any PNG to grey: colour by luminance (0.299 R + 0.587 G + 0.114 B), 16-bit
/// narrowed, palettes expanded, transparency laid over white.
fn read_grey(path: &Path) -> Result<Grey> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    let not_png = |e: png::DecodingError| Error::Dataset {
        path: path.to_path_buf(),
        detail: format!("not a PNG picture this program can read: {e}"),
    };
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    decoder.set_limits(png::Limits { bytes: 64 << 20 });
    let mut reader = decoder.read_info().map_err(not_png)?;
    // A picture larger than this is refused before its pixels are allocated.
    let (width, height) = (reader.info().width, reader.info().height);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::Dataset {
            path: path.to_path_buf(),
            detail: format!(
                "a {width}×{height} picture is larger than the {} million pixels read here: scale it down",
                MAX_PIXELS / 1_000_000
            ),
        });
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(not_png)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let bytes = &buf[..info.buffer_size()];
    let grey = bytes
        .chunks_exact(channels)
        .map(|p| {
            let v = |i: usize| p[i] as f32 / 255.0;
            let (lum, alpha) = match channels {
                1 => (v(0), 1.0),
                2 => (v(0), v(1)),
                3 => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), 1.0),
                _ => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), v(3)),
            };
            lum * alpha + (1.0 - alpha)
        })
        .collect::<Vec<f32>>();
    if h == 0 || w == 0 || grey.len() != h * w {
        return Err(Error::Dataset {
            path: path.to_path_buf(),
            detail: format!("a {w}×{h} picture has no pixels to read"),
        });
    }
    Ok((h, w, grey))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dark "L" on white, `h`×`w`, its strokes 1/8 of the size thick, off to one side.
    fn dark_l(h: usize, w: usize) -> Vec<f32> {
        let t = (h / 8).max(1);
        (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let in_l = (x >= w / 8 && x < w / 8 + t && y >= h / 8 && y < h - h / 8)
                        || (y >= h - h / 8 - t && y < h - h / 8 && x >= w / 8 && x < w / 2);
                    if in_l {
                        0.1
                    } else {
                        0.95
                    }
                })
            })
            .collect()
    }

    #[test]
    fn a_dark_drawing_on_white_becomes_white_ink_fitted_into_20_and_centred_by_mass() {
        let s = prepare_grey(&dark_l(200, 160), 200, 160, 28, 28).expect("prepared");
        assert!(s.inverted);
        // The background is black, the strongest ink white.
        assert_eq!(s.centred[0], 0.0);
        let top = s.centred.iter().copied().fold(0.0f32, f32::max);
        assert!((top - 1.0).abs() < 1e-6, "{top}");
        // The ink fits the 20×20 box: its bounding box is 20 tall (the L is taller than wide).
        let (y0, y1, x0, x1) = bounding_box(&s.fitted, 28, 28);
        assert_eq!(y1 - y0, 20, "rows {y0}..{y1}");
        assert!(x1 - x0 <= 20);
        // Its centre of mass is within half a pixel of the frame's centre.
        let (cy, cx) = centre_of_mass(&s.centred, 28, 28);
        assert!(
            (cy - 14.0).abs() <= 0.5 && (cx - 14.0).abs() <= 0.5,
            "{cy}, {cx}"
        );
        // An L's mass sits low and left, so centring moved it up and right.
        let (fy, fx) = centre_of_mass(&s.fitted, 28, 28);
        assert!(fy > cy && fx < cx, "{fy},{fx} → {cy},{cx}");
    }

    #[test]
    fn white_ink_on_black_is_kept_and_a_blank_picture_is_refused() {
        let light: Vec<f32> = dark_l(56, 56).iter().map(|v| 1.0 - v).collect();
        let s = prepare_grey(&light, 56, 56, 28, 28).expect("prepared");
        assert!(!s.inverted);
        let blank = vec![0.8f32; 30 * 30];
        let e = prepare_grey(&blank, 30, 30, 28, 28).expect_err("no ink");
        assert!(e.contains("no ink"), "{e}");
    }

    #[test]
    fn resampling_by_area_keeps_the_mean_and_a_constant() {
        let img: Vec<f32> = (0..12 * 9).map(|i| (i % 7) as f32 / 7.0).collect();
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let down = resample(&img, 12, 9, 4, 3);
        assert!((mean(&down) - mean(&img)).abs() < 1e-5);
        let flat = resample(&[0.25; 5 * 7], 5, 7, 13, 4);
        assert!(flat.iter().all(|v| (v - 0.25).abs() < 1e-6));
        // Same size: the identity.
        assert_eq!(resample(&img, 12, 9, 12, 9), img);
    }
}
