//! A finished reproduction as `REPORT.md` and `report.html`: the context (machine, data,
//! seeds, time), the numbers beside the report's, the notes on where we differ, the steps with
//! their commands, and every picture with its caption.

use super::Reproduction;
use crate::error::Result;
use crate::names::Named;
use crate::viz::page::{Block, Page};

/// "+0.0012 (+5.8 %)" for ours − report.
fn difference(report: Option<f64>, ours: f64) -> String {
    match report {
        Some(rep) if rep != 0.0 => format!(
            "{:+.4} ({:+.1} %)",
            ours - rep,
            100.0 * (ours - rep) / rep.abs()
        ),
        _ => "—".into(),
    }
}

/// The numbers table: what, report, ours, difference, step.
fn figure_rows(r: &Reproduction) -> Vec<Vec<String>> {
    r.figures
        .iter()
        .map(|f| {
            vec![
                f.what.clone(),
                f.report.map_or("—".into(), |v| format!("{v:.4}")),
                format!("{:.4}", f.ours),
                difference(f.report, f.ours),
                (f.step + 1).to_string(),
            ]
        })
        .collect()
}

/// The numbers table's columns.
const FIGURE_HEADER: [&str; 5] = ["what", "report", "ours", "ours − report", "step"];
/// The steps table's columns.
const STEP_HEADER: [&str; 4] = ["step", "what", "command", "wall time"];

/// The steps table: number, what, the command that repeats it, wall time.
fn step_rows(r: &Reproduction) -> Vec<Vec<String>> {
    r.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                (i + 1).to_string(),
                s.what.clone(),
                s.command.clone(),
                format!("{:.1} s", s.seconds),
            ]
        })
        .collect()
}

/// Machine, threads and data, in one paragraph.
fn context(r: &Reproduction) -> String {
    format!(
        "Protocol {} ({}){}. Machine: {}, {} instructions, {} threads. Data: {}. Seeds: 0 for every run (initialisation, splits, shuffles, corruptions). Total wall time {:.0} s.",
        r.protocol.name(),
        r.protocol.describe(),
        if r.quick { ", --quick" } else { "" },
        crate::machine::cpu_model(),
        crate::machine::isa(),
        rayon::current_num_threads(),
        r.data,
        r.steps.iter().map(|s| s.seconds).sum::<f64>()
    )
}

/// A Markdown table; a `|` inside a cell is escaped.
fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        s += &format!("| {} |\n", cells.join(" | "));
    }
    s
}

/// Writes `REPORT.md` into the reproduction's folder.
pub(super) fn markdown(r: &Reproduction) -> Result<()> {
    let mut md = format!(
        "# Reproduction: {}\n\n{}\n\n## Numbers\n\n{}\n",
        r.protocol.name(),
        context(r),
        md_table(&FIGURE_HEADER, &figure_rows(r))
    );
    if !r.notes.is_empty() {
        md += "## Notes\n\n";
        for n in &r.notes {
            md += &format!("- {n}\n");
        }
        md += "\n";
    }
    md += &format!(
        "## Steps\n\n{}\n## Pictures\n\n",
        md_table(&STEP_HEADER, &step_rows(r))
    );
    for (path, caption) in &r.pictures {
        let rel = path.strip_prefix(&r.out).unwrap_or(path);
        md += &format!("![{caption}]({})\n\n*{caption}*\n\n", rel.display());
    }
    crate::fs::write_atomic(&r.out.join("REPORT.md"), md.as_bytes())
}

/// The same as a page, pictures shown in place.
pub(super) fn page(r: &Reproduction) -> Page {
    let mut page = Page::new(format!("handgrad reproduction: {}", r.protocol.name()));
    page.push(Block::Text(context(r)));
    page.push(Block::Heading("Numbers".into()));
    page.push(Block::Table {
        header: FIGURE_HEADER.iter().map(|s| s.to_string()).collect(),
        rows: figure_rows(r),
    });
    if !r.notes.is_empty() {
        page.push(Block::Heading("Notes".into()));
        for n in &r.notes {
            page.push(Block::Text(n.clone()));
        }
    }
    page.push(Block::Heading("Steps".into()));
    page.push(Block::Table {
        header: STEP_HEADER.iter().map(|s| s.to_string()).collect(),
        rows: step_rows(r),
    });
    page.push(Block::Heading("Pictures".into()));
    for (path, caption) in &r.pictures {
        page.push(Block::Picture {
            path: path.clone(),
            caption: caption.clone(),
        });
    }
    page
}
