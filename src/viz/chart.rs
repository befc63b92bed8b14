//! Charts: lines (loss curves, sweeps), scatter plots (codes in the plane), and confusion
//! matrices. Lines and scatters are drawn with `plotters`; every chart has a title, labelled
//! axes, and a legend naming each colour.

use super::{plot_error, register_font, rgb_png, Anchor, Canvas, Rgb, CLASS_COLORS, INK, MUTED};
use crate::error::Result;
use crate::fs::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Blue, for training curves.
pub const TRAIN: Rgb = [31, 119, 180];
/// Red, for validation curves.
pub const VALIDATION: Rgb = [214, 39, 40];

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// What the legend calls it.
    pub label: String,
    /// Its colour.
    pub color: Rgb,
    /// (x, y) points, in x order; non-finite y values are left out.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed, so that a line lying on another stays visible.
    pub dashed: bool,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct LineChart {
    /// One line at the top.
    pub title: String,
    /// The horizontal axis, with unit.
    pub x_label: String,
    /// The vertical axis, with unit.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Whether x counts something (epochs, a code size): ticks then fall on whole numbers.
    pub integer_x: bool,
    /// Reference levels drawn as dashed horizontal lines across the chart, each with its
    /// legend entry: (what it is, its colour, y) — a baseline the lines are to be read against.
    pub levels: Vec<(String, Rgb, f64)>,
}

/// Grey, for the mean-image baseline.
pub const MEAN_IMAGE: Rgb = [127, 127, 127];

/// Green, for the PCA baseline.
pub const PCA_LEVEL: Rgb = [44, 160, 44];

const WIDTH: u32 = 800;
const PANEL_HEIGHT: u32 = 480;

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// A tick value as people write it, on an axis spanning `span`: as many decimals as a tenth
/// of the span needs (at least 0, at most 10), no trailing zeros ("0.6", not
/// "0.6000000000000001"; "250", not "250.0"; "0.0672" on an axis from 0.067 to 0.068).
pub fn tick(v: f64, span: f64) -> String {
    let step = (span.abs() / 10.0).max(1e-12);
    let decimals = (-step.log10()).ceil().clamp(0.0, 10.0) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// [lo, hi] of the finite values, padded by 5 %, never empty.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1e-3) };
    (lo - 0.05 * span, hi + 0.05 * span)
}

impl LineChart {
    /// A chart with no lines yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            integer_x: false,
            levels: Vec::new(),
        }
    }

    /// Adds a reference level: a dashed horizontal line at `y` named in the legend.
    pub fn level(mut self, label: impl Into<String>, color: Rgb, y: f64) -> Self {
        if y.is_finite() {
            self.levels.push((label.into(), color, y));
        }
        self
    }

    /// Adds a line.
    pub fn line(mut self, label: impl Into<String>, color: Rgb, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            label: label.into(),
            color,
            points,
            dashed: false,
        });
        self
    }

    /// Adds a dashed line: for one that may lie on top of another (a test loss following the
    /// validation loss), which a solid line would hide.
    pub fn dashed_line(
        mut self,
        label: impl Into<String>,
        color: Rgb,
        points: Vec<(f64, f64)>,
    ) -> Self {
        self = self.line(label, color, points);
        if let Some(s) = self.series.last_mut() {
            s.dashed = true;
        }
        self
    }

    /// Marks x as a count, for whole-number ticks.
    pub fn counting_x(mut self) -> Self {
        self.integer_x = true;
        self
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let (x_lo, x_hi) = if self.integer_x {
            let (lo, hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
            if lo.is_finite() {
                (lo, if hi > lo { hi } else { lo + 1.0 })
            } else {
                (0.0, 1.0)
            }
        } else {
            padded_range(points().map(|p| p.0))
        };
        let (y_lo, y_hi) =
            padded_range(points().map(|p| p.1).chain(self.levels.iter().map(|l| l.2)));
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", title_size(&self.title, WIDTH)))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(plot_error)?;
        let span = (x_hi - x_lo).round() as usize + 1;
        let integer_x = self.integer_x;
        let x_format = move |v: &f64| {
            if !integer_x {
                tick(*v, x_hi - x_lo)
            } else if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        };
        let y_format = |v: &f64| tick(*v, y_hi - y_lo);
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(if integer_x { span.clamp(2, 12) } else { 10 })
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(plot_error)?;
        for s in &self.series {
            let color = rgb(s.color);
            let finite: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.1.is_finite())
                .collect();
            let drawn = if s.dashed {
                chart.draw_series(DashedLineSeries::new(
                    finite.clone(),
                    6,
                    4,
                    color.stroke_width(3),
                ))
            } else {
                chart.draw_series(LineSeries::new(finite.clone(), color.stroke_width(2)))
            };
            drawn
                .map_err(plot_error)?
                .label(&s.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    finite
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(plot_error)?;
        }
        for (label, color, y) in &self.levels {
            let color = rgb(*color);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_lo, *y), (x_hi, *y)],
                    8,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(emptiest_corner(
                points().copied(),
                (x_lo, x_hi),
                (y_lo, y_hi),
            ))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }

    /// Draws the chart alone and writes it as PNG, atomically.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the path.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_stacked(path, std::slice::from_ref(self))
    }
}

/// The font size (at most 20 px) at which `title` fits `width` pixels: a sans-serif glyph is
/// about 0.55 of the size wide on average, and a margin is left on both sides.
fn title_size(title: &str, width: u32) -> f64 {
    let chars = title.chars().count().max(1) as f64;
    ((width as f64 - 30.0) / (0.55 * chars)).clamp(11.0, 20.0)
}

/// The corner of the plot with the fewest points under where a legend would sit (the outer
/// 45 % of the width and 30 % of the height), upper right first when several tie: the legend
/// then hides as little of the lines as it can.
fn emptiest_corner(
    points: impl Iterator<Item = (f64, f64)>,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
) -> SeriesLabelPosition {
    // (is right, is upper) for each corner, in order of preference.
    let corners = [(true, true), (true, false), (false, true), (false, false)];
    let mut counts = [0usize; 4];
    for (x, y) in points {
        let fx = (x - x_lo) / (x_hi - x_lo).max(f64::MIN_POSITIVE);
        let fy = (y - y_lo) / (y_hi - y_lo).max(f64::MIN_POSITIVE);
        for (count, &(right, upper)) in counts.iter_mut().zip(&corners) {
            let in_x = if right { fx > 0.55 } else { fx < 0.45 };
            let in_y = if upper { fy > 0.7 } else { fy < 0.3 };
            *count += usize::from(in_x && in_y);
        }
    }
    let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
    match corners[best] {
        (true, true) => SeriesLabelPosition::UpperRight,
        (true, false) => SeriesLabelPosition::LowerRight,
        (false, true) => SeriesLabelPosition::UpperLeft,
        (false, false) => SeriesLabelPosition::LowerLeft,
    }
}

/// Draws charts one above the other in one picture (a loss and its terms, say).
///
/// # Errors
/// [`crate::Error::Io`] naming the path.
pub fn save_stacked(path: &Path, charts: &[LineChart]) -> Result<()> {
    register_font();
    let height = PANEL_HEIGHT * charts.len().max(1) as u32;
    let mut buf = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = super::text::Pixels::new(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let panels = root.split_evenly((charts.len().max(1), 1));
        for (chart, area) in charts.iter().zip(&panels) {
            chart.draw(area)?;
        }
        root.present().map_err(plot_error)?;
    }
    write_atomic(path, &rgb_png(&buf, WIDTH, height)?)
}

/// A group of points sharing a colour and a legend entry.
#[derive(Clone, Debug)]
pub struct PointGroup {
    /// What the legend calls it.
    pub label: String,
    /// Its colour.
    pub color: Rgb,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// Drawn as stars (marked positions) rather than dots.
    pub stars: bool,
}

/// A scatter plot of point groups: codes in the plane, coloured by class.
#[derive(Clone, Debug)]
pub struct Scatter {
    /// One line at the top.
    pub title: String,
    /// The horizontal axis.
    pub x_label: String,
    /// The vertical axis.
    pub y_label: String,
    /// The groups, drawn in order (later ones on top).
    pub groups: Vec<PointGroup>,
}

impl Scatter {
    /// One group per class (colours from [`CLASS_COLORS`]), named by `class_names`.
    pub fn by_class(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        points: &[(f64, f64)],
        labels: &[u8],
        class_names: &[&str],
    ) -> Self {
        let mut groups = Vec::new();
        for class in 0..10u8 {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .zip(labels)
                .filter(|(_, &l)| l == class)
                .map(|(p, _)| *p)
                .collect();
            if !pts.is_empty() {
                groups.push(PointGroup {
                    label: class_names
                        .get(class as usize)
                        .map_or_else(|| class.to_string(), |n| n.to_string()),
                    color: CLASS_COLORS[class as usize],
                    points: pts,
                    stars: false,
                });
            }
        }
        Scatter {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            groups,
        }
    }

    /// Draws the plot and writes it as PNG, atomically. The legend sits to the right of the
    /// plot so it never hides points.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the path.
    pub fn save(&self, path: &Path) -> Result<()> {
        register_font();
        let (w, h) = (900u32, 720u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = super::text::Pixels::new(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            let (plot_area, legend_area) = root.split_horizontally(740);
            let all = || self.groups.iter().flat_map(|g| g.points.iter());
            let (x_lo, x_hi) = padded_range(all().map(|p| p.0));
            let (y_lo, y_hi) = padded_range(all().map(|p| p.1));
            let mut chart = ChartBuilder::on(&plot_area)
                .caption(&self.title, ("sans-serif", title_size(&self.title, 740)))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .x_label_formatter(&|v| tick(*v, x_hi - x_lo))
                .y_label_formatter(&|v| tick(*v, y_hi - y_lo))
                .axis_desc_style(("sans-serif", 16))
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(plot_error)?;
            for g in &self.groups {
                let color = rgb(g.color);
                if g.stars {
                    chart
                        .draw_series(g.points.iter().map(|&p| {
                            Text::new(
                                "★",
                                p,
                                ("sans-serif", 16).into_font().color(&color).pos(
                                    plotters::style::text_anchor::Pos::new(
                                        plotters::style::text_anchor::HPos::Center,
                                        plotters::style::text_anchor::VPos::Center,
                                    ),
                                ),
                            )
                        }))
                        .map_err(plot_error)?;
                } else {
                    chart
                        .draw_series(
                            g.points
                                .iter()
                                .map(|&p| Circle::new(p, 2, color.mix(0.75).filled())),
                        )
                        .map_err(plot_error)?;
                }
            }
            // The legend: a swatch and a name per group, beside the plot.
            let style = ("sans-serif", 15).into_font();
            legend_area
                .draw_text(
                    "class",
                    &("sans-serif", 15, FontStyle::Bold)
                        .into_font()
                        .color(&BLACK),
                    (10, 40),
                )
                .map_err(plot_error)?;
            for (i, g) in self.groups.iter().enumerate() {
                let y = 70 + 24 * i as i32;
                let color = rgb(g.color);
                if g.stars {
                    legend_area
                        .draw_text(
                            "★",
                            &("sans-serif", 16).into_font().color(&color),
                            (10, y - 2),
                        )
                        .map_err(plot_error)?;
                } else {
                    legend_area
                        .draw(&Circle::new((16, y + 7), 6, color.filled()))
                        .map_err(plot_error)?;
                }
                legend_area
                    .draw_text(&g.label, &style.color(&BLACK), (30, y))
                    .map_err(plot_error)?;
            }
            root.present().map_err(plot_error)?;
        }
        write_atomic(path, &rgb_png(&buf, w, h)?)
    }
}

/// A confusion matrix as a picture: true class down, predicted class across, each cell
/// shaded by its share of its row and showing its count.
///
/// # Errors
/// [`crate::Error::Io`] naming the path.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    notes: &[String],
    class_names: &[&str],
    counts: &[Vec<usize>],
) -> Result<Canvas> {
    let n = counts.len();
    let cell = 58;
    let mut m = Canvas::new(1, 1);
    let name_w = class_names
        .iter()
        .map(|c| m.text_size(c, 13).0)
        .max()
        .unwrap_or(0);
    let left = 40 + name_w + 12;
    // Column names that fit the column's width are written across; longer ones (Fashion-
    // MNIST's "T-shirt/top") are turned to read upwards, and the header grows to hold them.
    let upright = name_w + 6 <= cell;
    let header = if upright { 20 } else { name_w.min(90) };
    let top = 40 + 22 * notes.len() + 30 + header + 10;
    let footer = "cell: number of test images; shade: share of the row (its true class)";
    // Wide enough for the matrix and for every line of text (bold runs ~10 % wider).
    let width = (left + n * cell + 30)
        .max(m.bold_size(title, 18).0 + 40)
        .max(
            notes
                .iter()
                .map(|t| m.text_size(t, 13).0 + 40)
                .max()
                .unwrap_or(0),
        )
        .max(left + m.text_size(footer, 12).0 + 20);
    let height = top + n * cell + 60;
    let mut c = Canvas::new(width, height);
    c.bold(20, 12, title, 18, INK, Anchor::TopLeft);
    for (i, note) in notes.iter().enumerate() {
        c.text(20, 40 + 22 * i, note, 13, MUTED, Anchor::TopLeft);
    }
    c.text(
        left + n * cell / 2,
        top - header - 34,
        "predicted class",
        14,
        INK,
        Anchor::TopCenter,
    );
    c.vertical_text(16, top + n * cell / 2, "true class", 14, INK);
    for (j, name) in class_names.iter().enumerate().take(n) {
        let x = left + j * cell + cell / 2;
        if upright {
            c.text(x, top - 16, name, 12, INK, Anchor::Center);
        } else {
            c.vertical_text(x, top - header / 2 - 8, name, 12, INK);
        }
    }
    for (i, row) in counts.iter().enumerate() {
        let name = class_names.get(i).copied().unwrap_or("?");
        c.text(
            left - 8,
            top + i * cell + cell / 2,
            name,
            13,
            INK,
            Anchor::RightMiddle,
        );
        let total: usize = row.iter().sum::<usize>().max(1);
        for (j, &count) in row.iter().enumerate() {
            let share = count as f64 / total as f64;
            // White (0 %) to deep blue (100 %), on the diagonal and off it alike.
            let shade = |full: u8| (255.0 - (255.0 - full as f64) * share).round() as u8;
            let color = [shade(8), shade(69), shade(148)];
            let (x, y) = (left + j * cell, top + i * cell);
            c.rect(x, y, cell - 1, cell - 1, color);
            let ink = if share > 0.5 { [255, 255, 255] } else { INK };
            c.text(
                x + cell / 2,
                y + cell / 2,
                &count.to_string(),
                13,
                ink,
                Anchor::Center,
            );
        }
    }
    c.text(
        left,
        top + n * cell + 14,
        footer,
        12,
        MUTED,
        Anchor::TopLeft,
    );
    c.save(path)?;
    Ok(c)
}

/// The colour of class `k` (0–9), cycling beyond.
pub fn class_color(k: usize) -> Rgb {
    CLASS_COLORS[k % CLASS_COLORS.len()]
}

#[cfg(test)]
mod tick_tests {
    use super::tick;

    #[test]
    fn ticks_carry_the_decimals_their_axis_needs_and_no_more() {
        assert_eq!(tick(0.6000000000000001, 1.0), "0.6");
        assert_eq!(tick(250.0, 500.0), "250");
        assert_eq!(tick(0.0672, 0.0015), "0.0672");
        assert_eq!(tick(0.0675, 0.0015), "0.0675");
        assert_eq!(tick(-0.00001, 1.0), "0");
        assert_eq!(tick(0.002, 1e-2), "0.002");
    }
}
