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

/// Refuses a folder that exists and holds anything: a command's outputs never land among
/// another's. `advice` ends the message ("choose another --out").
///
/// # Errors
/// [`Error::Output`] naming the folder; [`Error::Io`] if it cannot be read.
pub fn check_unused_folder(dir: &Path, what: &'static str, advice: &str) -> Result<()> {
    let occupied = dir.exists()
        && std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .next()
            .is_some();
    if occupied {
        return Err(Error::output(
            what,
            format!("{} already exists; {advice}", dir.display()),
        ));
    }
    Ok(())
}

/// Checks that a file can be written to `path`: no file there already unless `replace` says
/// so, and a folder that exists.
///
/// # Errors
/// [`Error::Output`] naming the path and what to do.
pub fn check_new_file(path: &Path, replace: bool) -> Result<()> {
    if path.exists() && !replace {
        return Err(Error::output(
            "output file",
            format!(
                "{} exists; pass --force to replace it, or choose another --out",
                path.display()
            ),
        ));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::output(
            "output file",
            format!("the folder {} does not exist", parent.display()),
        ));
    }
    Ok(())
}
