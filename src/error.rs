//! One error type for the whole crate, so every failure a user can cause — a shape that does
//! not fit, a corrupt file, a diverging loss — arrives as a sentence that names what is wrong.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in handgrad.
#[derive(Debug)]
pub enum Error {
    /// Tensors whose shapes do not fit an op, e.g.
    /// "conv2d: input has 3 channels but the kernel expects 1 (x [64, 3, 28, 28], w [32, 1, 3, 3])".
    Shape {
        /// The op that refused its inputs.
        op: &'static str,
        /// Both shapes and what disagrees.
        detail: String,
    },
    /// A model description whose layers do not fit together, naming the layer.
    Architecture {
        /// The layer, as the model names it (`encoder.3`).
        layer: String,
        /// What does not fit.
        detail: String,
    },
    /// A setting outside its meaningful range (a negative learning rate, a dropout of 1.5).
    Config {
        /// Which setting.
        what: &'static str,
        /// Why it is refused.
        detail: String,
    },
    /// Data that a file format cannot hold, or a stored file's contents that do not fit what
    /// reads them: a tensor the safetensors writer refuses, a checkpoint's optimizer state for
    /// another model, a picture the plotting library cannot draw.
    Format {
        /// What was being written or read.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An output a command would write that it must not: a file that exists (without
    /// `--force`), a folder already in use, a folder that does not exist, a picture name that
    /// does not end in `.png`.
    Output {
        /// Which output: "output file", "output folder".
        what: &'static str,
        /// The path and what to do instead.
        detail: String,
    },
    /// Misuse of the tape: backward from a non-scalar, from a value recorded without gradients.
    Graph {
        /// What was attempted and why it cannot work.
        detail: String,
    },
    /// A file or folder could not be read or written.
    Io {
        /// The path involved.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A data file that is not what it claims: bad magic number, truncated, counts disagree.
    Dataset {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The loss or a gradient became NaN or infinite: training stops before the bad step
    /// changes any weight.
    NonFinite {
        /// `"loss"` or `"gradient"`.
        what: &'static str,
        /// The epoch it happened in (from 1).
        epoch: usize,
        /// The batch within that epoch (from 1).
        batch: usize,
        /// Where the first non-finite value appeared, when found: "the forward pass of layer
        /// encoder.7 (Linear, tape node %41)".
        origin: Option<String>,
        /// What was kept on disk, when a caller that writes checkpoints knows it.
        kept: Option<String>,
    },
    /// A gradient check found an analytic gradient that disagrees with finite differences.
    GradientMismatch {
        /// The op or expression checked.
        op: String,
        /// Which input (position in the input list).
        input: usize,
        /// Flat index of the element within that input.
        index: usize,
        /// The gradient backward computed.
        analytic: f64,
        /// The central finite difference.
        numeric: f64,
    },
}

/// `Result` with handgrad's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape { op, detail } => write!(f, "{op}: {detail}"),
            Error::Architecture { layer, detail } => write!(f, "layer {layer}: {detail}"),
            Error::Config { what, detail }
            | Error::Format { what, detail }
            | Error::Output { what, detail } => write!(f, "invalid {what}: {detail}"),
            Error::Graph { detail } => write!(f, "{detail}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Dataset { path, detail } => write!(f, "{}: {detail}", path.display()),
            Error::NonFinite {
                what,
                epoch,
                batch,
                origin,
                kept,
            } => {
                write!(f, "the {what} became NaN or infinite at epoch {epoch}, batch {batch}")?;
                if let Some(origin) = origin {
                    write!(f, "; the first non-finite value appeared in {origin}")?;
                }
                write!(f, "; try a lower learning rate")?;
                if let Some(kept) = kept {
                    write!(f, " ({kept})")?;
                }
                Ok(())
            }
            Error::GradientMismatch { op, input, index, analytic, numeric } => write!(
                f,
                "gradient check of {op}: input {input}, element {index}: backward gives {analytic:.6e}, \
                 finite differences give {numeric:.6e}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<kernels::GeometryError> for Error {
    fn from(e: kernels::GeometryError) -> Self {
        Error::Shape {
            op: e.op,
            detail: e.detail,
        }
    }
}

impl Error {
    /// Shorthand for [`Error::Shape`].
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Config {
            what,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Format`].
    pub fn format(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Format {
            what,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Output`].
    pub fn output(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Output {
            what,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Io`], for use in `map_err`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// A user's text as an error message quotes it: in quotes, with what cannot be printed
/// escaped, and cut after 60 characters (a message names the input; it need not repeat a
/// page of it).
pub fn quote(text: &str) -> String {
    const SHOWN: usize = 60;
    let cut: String = text.chars().take(SHOWN).collect();
    let quoted = format!("{cut:?}");
    if text.chars().count() > SHOWN {
        format!("{}…\"", &quoted[..quoted.len() - 1])
    } else {
        quoted
    }
}
