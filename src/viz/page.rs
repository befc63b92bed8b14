//! Report pages: one self-contained HTML file per run, the thing to open after training.
//!
//! A [`Page`] is a title and a list of [`Block`]s (headings, paragraphs, tables, pictures,
//! preformatted text). [`Page::write`] renders it to a single file that needs nothing else:
//! pictures are embedded as `data:` URLs (the PNG bytes in base64), the style sheet is inline,
//! and no script or font is fetched from anywhere. So the page can be mailed, archived, or
//! opened on a machine with no network.
//!
//! A short inline script checks, once the page has loaded, that every picture decoded, and
//! writes what it found into `data-pictures` on `<body>` (the browser test reads it back);
//! a picture that did not load is also named at the bottom of the page, for the reader.

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use base64::Engine;
use std::path::{Path, PathBuf};

/// One piece of a page, in reading order.
#[derive(Clone, Debug)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// A paragraph of plain text.
    Text(String),
    /// A table: a header row, then rows of cells (plain text).
    Table {
        /// Column names.
        header: Vec<String>,
        /// One entry per row, each as long as the header.
        rows: Vec<Vec<String>>,
    },
    /// A PNG file, embedded, with a caption saying what it shows.
    Picture {
        /// The file to embed.
        path: PathBuf,
        /// What the picture shows.
        caption: String,
    },
    /// Text shown as is, in a fixed-width font (a configuration, a command).
    Preformatted(String),
    /// A paragraph the reader must not miss (a run that learned nothing), boxed.
    Warning(String),
}

/// A report page: a title and its blocks.
#[derive(Clone, Debug, Default)]
pub struct Page {
    title: String,
    blocks: Vec<Block>,
}

impl Page {
    /// An empty page with this title.
    pub fn new(title: impl Into<String>) -> Self {
        Page {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a block.
    pub fn push(&mut self, block: Block) -> &mut Self {
        self.blocks.push(block);
        self
    }

    /// The pictures the page embeds, in order.
    pub fn pictures(&self) -> impl Iterator<Item = &Path> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Picture { path, .. } => Some(path.as_path()),
            _ => None,
        })
    }

    /// The page as one self-contained HTML document.
    ///
    /// # Errors
    /// [`Error::Io`] naming a picture that cannot be read.
    pub fn render(&self) -> Result<String> {
        let mut body = String::new();
        for block in &self.blocks {
            match block {
                Block::Heading(text) => body += &format!("<h2>{}</h2>\n", escape(text)),
                Block::Text(text) => body += &format!("<p>{}</p>\n", escape(text)),
                Block::Warning(text) => {
                    body += &format!("<p class=\"warning\">{}</p>\n", escape(text));
                }
                Block::Preformatted(text) => body += &format!("<pre>{}</pre>\n", escape(text)),
                Block::Table { header, rows } => {
                    body += "<table>\n<tr>";
                    for h in header {
                        body += &format!("<th>{}</th>", escape(h));
                    }
                    body += "</tr>\n";
                    for row in rows {
                        body += "<tr>";
                        for cell in row {
                            // Numbers line up on the right, words read from the left.
                            let class = if looks_numeric(cell) {
                                " class=\"n\""
                            } else {
                                ""
                            };
                            body += &format!("<td{class}>{}</td>", escape(cell));
                        }
                        body += "</tr>\n";
                    }
                    body += "</table>\n";
                }
                Block::Picture { path, caption } => {
                    let bytes = std::fs::read(path).map_err(Error::io(path))?;
                    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                    let name = path
                        .file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
                    body += &format!(
                        "<figure><img alt=\"{}\" title=\"{}\" src=\"data:image/png;base64,{data}\">\n<figcaption>{}</figcaption></figure>\n",
                        escape(&name),
                        escape(&name),
                        escape(caption)
                    );
                }
            }
        }
        Ok(format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body data-pictures=\"loading\">\n<h1>{title}</h1>\n{body}<p id=\"picture-check\"></p>\n<script>{CHECK}</script>\n</body>\n</html>\n",
            title = escape(&self.title),
        ))
    }

    /// Renders the page to `path`, atomically (a temporary file, then a rename).
    ///
    /// # Errors
    /// [`Error::Io`] for a picture that cannot be read or a file that cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.render()?.as_bytes())
    }
}

/// Whether a table cell holds a number ("0.0733", "+0.0552 (+51.1 %)", "1.5 s", "—").
fn looks_numeric(cell: &str) -> bool {
    cell.trim()
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '−' | '—' | '.'))
}

/// Text made safe to put inside HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

/// The page's looks: readable width, tables with lines, pictures at their natural size (they
/// are drawn for it) but never wider than the page.
const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #bbb;padding:0.25em 0.6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td.n{text-align:right;white-space:nowrap}\
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}\
figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}figcaption{color:#444;font-size:0.95em;margin-top:0.3em}\
#picture-check{color:#666;font-size:0.85em}\
p.warning{background:#fff4e0;border-left:4px solid #d08000;padding:0.5em 0.8em}";

/// After loading: counts the pictures that decoded (in `data-pictures`, for the browser
/// test) and names those that did not, on the page for the reader.
const CHECK: &str = "window.addEventListener('load',function(){\
var imgs=Array.prototype.slice.call(document.images);\
var bad=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0);}).map(function(i){return i.alt;});\
var ok=imgs.length-bad.length;\
document.body.setAttribute('data-pictures',bad.length?('missing: '+bad.join(', ')):('all '+ok+' shown'));\
if(bad.length){document.getElementById('picture-check').textContent='Pictures that did not load: '+bad.join(', ');}\
});";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_pictures_are_embedded() {
        let dir = std::env::temp_dir().join(format!("handgrad-page-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("a.png");
        std::fs::write(&png, b"\x89PNG not really").unwrap();
        let mut page = Page::new("x < y & z");
        page.push(Block::Text("\"quoted\"".into()))
            .push(Block::Picture {
                path: png.clone(),
                caption: "a <picture>".into(),
            });
        let html = page.render().unwrap();
        assert!(html.contains("<title>x &lt; y &amp; z</title>"));
        assert!(html.contains("<p>&quot;quoted&quot;</p>"));
        assert!(html.contains("<figcaption>a &lt;picture&gt;</figcaption>"));
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG not really");
        assert!(html.contains(&format!("data:image/png;base64,{encoded}")));
        assert!(
            !html.contains("http"),
            "a self-contained page fetches nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = Page::new("t")
            .push(Block::Picture {
                path: dir.join("gone.png"),
                caption: String::new(),
            })
            .render();
        assert!(missing.unwrap_err().to_string().contains("gone.png"));
    }
}
