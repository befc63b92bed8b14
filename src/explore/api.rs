//! The page's requests and their answers, with no network in sight: [`Explorer::handle`]
//! takes a method, a path and a body and returns a status, a content type and bytes. The
//! server ([`super::server`]) only moves those over HTTP, so every answer here can be tested
//! as a function call.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` (and `/explore.js`, `/explore.css`) | the page, embedded in the program |
//! | `GET /api/runs` | every run folder: [`RunInfo`] |
//! | `GET /api/runs/NAME` | one run: its info, every epoch's metrics, its snapshots |
//! | `GET /api/runs/NAME/map` | its test codes in 2-D and how a map point becomes a code ([`CodeMap`](super::runs::CodeMap)) |
//! | `GET /api/runs/NAME/images/I` | test image I's pixels and class |
//! | `POST /api/runs/NAME/decode` `{"code": [...]}` | `{"pixels": [...]}`: the decoder's image |
//! | `POST /api/runs/NAME/encode` `{"pixels": [...]}` | `{"code": [...], "pixels": [...]}`: the code and the reconstruction |
//! | `GET /api/runs/NAME/files/PATH.png` | a picture of the run folder |
//!
//! Decoding and encoding call the library ([`Autoencoder::decode_codes`], [`Autoencoder::codes`],
//! [`Autoencoder::reconstruct`]), so the page shows exactly what the library computes; numbers
//! travel as JSON, which writes an `f32` with the fewest digits that read back as the same
//! `f32`. A bad request gets a 4xx status and one sentence saying what is wrong; nothing a
//! request sends can stop the server.
//!
//! [`Autoencoder::decode_codes`]: crate::models::Autoencoder::decode_codes
//! [`Autoencoder::codes`]: crate::models::Autoencoder::codes
//! [`Autoencoder::reconstruct`]: crate::models::Autoencoder::reconstruct

use super::runs::{self, modified, OpenRun, RunInfo};
use crate::experiments::RunOptions;
use crate::train::fit::EpochMetrics;
use crate::train::run_dir::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The largest request body accepted: a code or an image as JSON takes a few kilobytes.
pub const MAX_BODY: usize = 256 * 1024;

/// The largest magnitude accepted for a code number or a pixel: far outside any code a
/// model makes, small enough that no layer overflows.
const MAX_VALUE: f32 = 1e4;

/// An answer: status, content type, body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body's media type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    fn json(value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status: 200,
                content_type: "application/json",
                body,
            },
            Err(e) => Problem::new(500, format!("the answer could not be written: {e}")).reply(),
        }
    }

    fn bytes(content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body,
        }
    }
}

/// A request that cannot be answered: its status and the sentence the page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// HTTP status (4xx: the request's fault; 5xx: ours).
    pub status: u16,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl Problem {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Problem {
            status,
            message: message.into(),
        }
    }

    /// As the JSON `{"error": "..."}`.
    pub fn reply(&self) -> Reply {
        let body = serde_json::json!({ "error": self.message }).to_string();
        Reply {
            status: self.status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }
}

type Answer = std::result::Result<Reply, Problem>;

/// The page itself, compiled into the program.
const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/explore.js");
const STYLE: &str = include_str!("page/explore.css");

/// One run in detail: what the run page draws.
#[derive(Serialize)]
struct RunDetail<'a> {
    info: RunInfo,
    history: &'a [EpochMetrics],
    /// Epochs with a reconstruction snapshot (`files/reconstructions/epoch_NNN.png`).
    snapshots: Vec<usize>,
    /// The model, one line per layer, as `explain` prints it.
    model: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PixelsBody {
    pixels: Vec<f32>,
}

#[derive(Serialize)]
struct Decoded {
    pixels: Vec<f32>,
}

#[derive(Serialize)]
struct Encoded {
    code: Vec<f32>,
    pixels: Vec<f32>,
}

#[derive(Serialize)]
struct TestImage<'a> {
    index: usize,
    label: u8,
    pixels: &'a [f32],
}

/// Answers the page's requests for the run folders under one folder. Each server thread has
/// its own, with its own opened runs.
#[derive(Debug)]
pub struct Explorer {
    root: PathBuf,
    opts: RunOptions,
    open: HashMap<String, OpenRun>,
}

impl Explorer {
    /// An explorer of the run folders directly under `root`; `opts` says where datasets are.
    pub fn new(root: &Path, opts: RunOptions) -> Self {
        Explorer {
            root: root.to_path_buf(),
            opts,
            open: HashMap::new(),
        }
    }

    /// The answer to `method path` with `body`. `path` may carry a query (ignored).
    pub fn handle(&mut self, method: &str, path: &str, body: &[u8]) -> Reply {
        self.route(method, path, body)
            .unwrap_or_else(|problem| problem.reply())
    }

    fn route(&mut self, method: &str, path: &str, body: &[u8]) -> Answer {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let parts: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .map(percent_decode)
            .collect::<Option<_>>()
            .ok_or_else(|| Problem::new(400, "the path is not valid percent-encoded UTF-8"))?;
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let get = method == "GET" || method == "HEAD";
        match (get, method == "POST", parts.as_slice()) {
            (true, _, [] | ["index.html"]) => {
                Ok(Reply::bytes("text/html; charset=utf-8", PAGE.into()))
            }
            (true, _, ["explore.js"]) => Ok(Reply::bytes(
                "text/javascript; charset=utf-8",
                SCRIPT.into(),
            )),
            (true, _, ["explore.css"]) => Ok(Reply::bytes("text/css; charset=utf-8", STYLE.into())),
            (true, _, ["api", "runs"]) => Ok(Reply::json(&runs::list(&self.root))),
            (true, _, ["api", "runs", name]) => self.detail(name),
            (true, _, ["api", "runs", name, "map"]) => {
                let run = self.opened(name)?;
                Ok(Reply::json(&run.map))
            }
            (true, _, ["api", "runs", name, "images", index]) => self.image(name, index),
            (true, _, ["api", "runs", name, "files", rest @ ..]) => self.file(name, rest),
            (_, true, ["api", "runs", name, "decode"]) => self.decode(name, body),
            (_, true, ["api", "runs", name, "encode"]) => self.encode(name, body),
            (false, false, _) => Err(Problem::new(
                405,
                format!("{method} is not a method this server answers (GET or POST)"),
            )),
            _ => Err(Problem::new(404, format!("nothing at {path} for {method}"))),
        }
    }

    /// The run folder `name`, or a 404 saying there is none.
    fn folder(&self, name: &str) -> std::result::Result<PathBuf, Problem> {
        runs::run_folder(&self.root, name).map_err(|e| Problem::new(404, e.to_string()))
    }

    fn detail(&self, name: &str) -> Answer {
        let dir = self.folder(name)?;
        let run = RunDir(dir.clone());
        let info = runs::info(&dir, name).map_err(|e| Problem::new(422, e.to_string()))?;
        let history = run
            .history()
            .map_err(|e| Problem::new(422, e.to_string()))?;
        let cfg = run
            .read_config()
            .map_err(|e| Problem::new(422, e.to_string()))?;
        let model = crate::models::ModelPlan::new(&cfg.model)
            .map(|p| p.summary())
            .unwrap_or_default();
        let mut snapshots: Vec<usize> = std::fs::read_dir(dir.join("reconstructions"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_prefix("epoch_")?
                            .strip_suffix(".png")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        snapshots.sort_unstable();
        Ok(Reply::json(&RunDetail {
            info,
            history: &history,
            snapshots,
            model,
        }))
    }

    /// The run `name`, opened (again, if its weights changed since).
    fn opened(&mut self, name: &str) -> std::result::Result<&mut OpenRun, Problem> {
        let dir = self.folder(name)?;
        let weights = RunDir(dir.clone()).model();
        let stamp = modified(&weights).map_err(|_| {
            Problem::new(
                409,
                format!("the run {name:?} has no model yet: it has not finished an epoch"),
            )
        })?;
        let fresh = self.open.get(name).is_some_and(|r| r.stamp == stamp);
        if !fresh {
            let run = OpenRun::open(&dir, &self.opts).map_err(|e| {
                Problem::new(422, format!("the run {name:?} cannot be opened: {e}"))
            })?;
            self.open.insert(name.to_string(), run);
        }
        self.open
            .get_mut(name)
            .ok_or_else(|| Problem::new(500, "the opened run went missing"))
    }

    fn image(&mut self, name: &str, index: &str) -> Answer {
        let run = self.opened(name)?;
        let n = run.map.labels.len();
        let i: usize = index.parse().ok().filter(|&i| i < n).ok_or_else(|| {
            Problem::new(
                404,
                format!("test image {index:?}: give 0 to {}", n.saturating_sub(1)),
            )
        })?;
        let px = run.images.len() / n.max(1);
        Ok(Reply::json(&TestImage {
            index: i,
            label: run.map.labels[i],
            pixels: &run.images[i * px..(i + 1) * px],
        }))
    }

    fn decode(&mut self, name: &str, body: &[u8]) -> Answer {
        let CodeBody { code } = parse_body(body)?;
        let run = self.opened(name)?;
        check_values("code", &code, run.map.latent)?;
        let pixels = run
            .model
            .decode_codes(&code)
            .map_err(|e| Problem::new(500, e.to_string()))?;
        Ok(Reply::json(&Decoded { pixels }))
    }

    fn encode(&mut self, name: &str, body: &[u8]) -> Answer {
        let PixelsBody { pixels } = parse_body(body)?;
        let run = self.opened(name)?;
        let [c, h, w] = run.cfg.model.input;
        check_values("pixels", &pixels, c * h * w)?;
        let (code, _) = run
            .model
            .codes(&pixels)
            .map_err(|e| Problem::new(500, e.to_string()))?;
        let pixels = run
            .model
            .reconstruct(&pixels)
            .map_err(|e| Problem::new(500, e.to_string()))?;
        Ok(Reply::json(&Encoded { code, pixels }))
    }

    /// A PNG of the run folder (or a folder inside it), by its path there.
    fn file(&self, name: &str, rest: &[&str]) -> Answer {
        let dir = self.folder(name)?;
        if rest.is_empty() || !rest.iter().all(|p| runs::plain_name(p)) {
            return Err(Problem::new(
                400,
                "a file is named by plain names below its run folder (no .., no hidden names)",
            ));
        }
        let relative: PathBuf = rest.iter().collect();
        if relative.extension().is_none_or(|e| e != "png") {
            return Err(Problem::new(403, "only a run's pictures (.png) are served"));
        }
        let path = dir.join(&relative);
        let bytes = std::fs::read(&path).map_err(|_| {
            Problem::new(
                404,
                format!("the run {name:?} has no {}", relative.display()),
            )
        })?;
        Ok(Reply::bytes("image/png", bytes))
    }
}

/// The JSON body of a request, or a 400 saying why it is not one.
fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::result::Result<T, Problem> {
    if body.len() > MAX_BODY {
        return Err(Problem::new(
            413,
            format!(
                "the body is {} bytes; at most {MAX_BODY} are accepted",
                body.len()
            ),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Problem::new(400, format!("the body is not the JSON expected: {e}")))
}

/// Refuses values of the wrong count, or not finite, or absurdly large.
fn check_values(what: &str, values: &[f32], want: usize) -> std::result::Result<(), Problem> {
    if values.len() != want {
        return Err(Problem::new(
            400,
            format!(
                "the {what} has {} numbers; this model takes {want}",
                values.len()
            ),
        ));
    }
    if let Some(i) = values
        .iter()
        .position(|v| !v.is_finite() || v.abs() > MAX_VALUE)
    {
        return Err(Problem::new(
            400,
            format!(
                "{what} number {} is {}: give finite numbers of magnitude at most {MAX_VALUE}",
                i + 1,
                values[i]
            ),
        ));
    }
    Ok(())
}

/// `%XX` sequences decoded, or `None` if they do not make UTF-8.
fn percent_decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_plain_text_and_refuses_broken_sequences() {
        assert_eq!(percent_decode("conv-selu").as_deref(), Some("conv-selu"));
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%2e%2e").as_deref(), Some(".."));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn values_are_checked_for_count_finiteness_and_size() {
        assert!(check_values("code", &[0.0, 1.0], 2).is_ok());
        assert_eq!(
            check_values("code", &[0.0], 2).map_err(|p| p.status),
            Err(400)
        );
        assert!(check_values("code", &[f32::NAN, 0.0], 2).is_err());
        assert!(check_values("code", &[f32::INFINITY, 0.0], 2).is_err());
        assert!(check_values("code", &[1e9, 0.0], 2).is_err());
    }

    #[test]
    fn unknown_paths_and_methods_get_4xx_with_a_sentence() {
        let mut e = Explorer::new(Path::new("/nonexistent-runs"), RunOptions::default());
        for (method, path, status) in [
            ("GET", "/nothing", 404),
            ("DELETE", "/api/runs", 405),
            ("GET", "/api/runs/..", 404),
            ("GET", "/api/runs/%2e%2e/map", 404),
            ("GET", "/api/runs/x%zz", 400),
            ("POST", "/api/runs/missing/decode", 400),
        ] {
            let r = e.handle(method, path, b"");
            assert_eq!(r.status, status, "{method} {path}");
            let text = String::from_utf8(r.body).expect("UTF-8");
            assert!(text.starts_with("{\"error\":\""), "{text}");
        }
        assert_eq!(e.handle("GET", "/api/runs", b"").body, b"[]");
        assert_eq!(e.handle("GET", "/", b"").status, 200);
    }
}
