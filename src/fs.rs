//! Writing files so that nothing is lost: every write goes through a temporary file and a
//! rename, and a command checks where its outputs will go before it does any work.
//!
//! A rename within one folder is atomic: a reader (or a crash) sees either the old file or the
//! new one, never half of either. A checkpoint written this way survives Ctrl-C or a power cut
//! in the middle of saving; a picture or a table is never left truncated.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file and a rename.
///
/// # Errors
/// [`Error::Io`] naming the file when the folder is missing or not writable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        file.write_all(bytes).map_err(Error::io(&tmp))?;
        file.sync_all().map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless once the write failed.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What a command is about to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One file, replaced with `--force` where the command offers it.
    File,
    /// A folder of outputs (a run, a search, a report): written only where nothing is yet.
    Folder,
}

/// May what exists be replaced? Commands that write files offer `--force`; commands that
/// fill a folder never overwrite one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace<'a> {
    /// The user passed `--force`.
    Forced,
    /// The command offers `--force` and it was not given.
    Ask,
    /// Nothing that exists is replaced; `advice` ends the refusal ("choose another --out").
    Never(&'a str),
}

impl Replace<'_> {
    /// [`Replace::Forced`] when `--force` was given, else [`Replace::Ask`].
    pub fn asked(force: bool) -> Self {
        if force {
            Replace::Forced
        } else {
            Replace::Ask
        }
    }
}

/// Claims `path` for a command's output before it does any work: the one rule every command
/// follows, so nothing that exists is overwritten unless the user asked for it.
///
/// * A file may be written where nothing is, or over a file with [`Replace::Forced`]; its
///   folder must exist; a folder in its place is refused.
/// * A folder may be written where nothing is or into an empty folder (a file in its place
///   is refused); an occupied one only with [`Replace::Forced`].
///
/// `what` names the output in the refusal ("output file", "run folder").
///
/// # Errors
/// [`Error::Output`] naming the path and what to do instead; [`Error::Io`] if a folder
/// cannot be read.
pub fn claim(path: &Path, target: Target, what: &'static str, replace: Replace<'_>) -> Result<()> {
    let refuse = |why: String| Err(Error::output(what, format!("{} {why}", path.display())));
    let advice = match replace {
        Replace::Forced => None,
        Replace::Ask => Some("pass --force to replace it, or choose another --out"),
        Replace::Never(advice) => Some(advice),
    };
    match target {
        Target::File => {
            if path.is_dir() {
                return refuse("is a folder; name a file".into());
            }
            if let (true, Some(advice)) = (path.exists(), advice) {
                return refuse(format!("exists; {advice}"));
            }
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(Error::output(
                    what,
                    format!("the folder {} does not exist", parent.display()),
                ));
            }
        }
        Target::Folder => {
            if path.exists() && !path.is_dir() {
                return refuse("is a file; name a folder".into());
            }
            let occupied = path.is_dir()
                && std::fs::read_dir(path)
                    .map_err(Error::io(path))?
                    .next()
                    .is_some();
            if let (true, Some(advice)) = (occupied, advice) {
                return refuse(format!("already exists; {advice}"));
            }
        }
    }
    Ok(())
}
