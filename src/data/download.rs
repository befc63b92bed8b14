//! Downloading MNIST and Fashion-MNIST: try each mirror in turn, check the published MD5 of
//! every file, and write atomically.
//!
//! A file is streamed into `<name>.part` in the target folder, its checksum verified, and only
//! then renamed to its final name — so an interrupted or corrupt download never leaves a file
//! that looks complete. Files already present with the right checksum are kept; a leftover
//! `.part` is always started afresh.

use super::mnist::DatasetName;
use crate::error::{Error, Result};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One file of a dataset and its published MD5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, identical on every mirror.
    pub name: String,
    /// Lowercase hex MD5 of the file's bytes.
    pub md5: String,
}

/// Where a dataset can be fetched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Base URLs tried in order; a file's URL is base + name.
    pub mirrors: Vec<String>,
    /// The files and their checksums.
    pub files: Vec<RemoteFile>,
}

fn files(list: &[(&str, &str)]) -> Vec<RemoteFile> {
    list.iter()
        .map(|(name, md5)| RemoteFile {
            name: name.to_string(),
            md5: md5.to_string(),
        })
        .collect()
}

impl Remote {
    /// The public mirrors and checksums of a named dataset.
    pub fn of(name: DatasetName) -> Self {
        match name {
            DatasetName::Mnist => Remote {
                mirrors: vec![
                    "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
                    "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
                ],
                files: files(&[
                    (
                        "train-images-idx3-ubyte.gz",
                        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    ),
                    (
                        "train-labels-idx1-ubyte.gz",
                        "d53e105ee54ea40749a09fcbcd1e9432",
                    ),
                    (
                        "t10k-images-idx3-ubyte.gz",
                        "9fb629c4189551a2d022fa330f9573f3",
                    ),
                    (
                        "t10k-labels-idx1-ubyte.gz",
                        "ec29112dd5afa0611ce80d1b7f02629c",
                    ),
                ]),
            },
            DatasetName::FashionMnist => Remote {
                mirrors: vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into()],
                files: files(&[
                    (
                        "train-images-idx3-ubyte.gz",
                        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    ),
                    (
                        "train-labels-idx1-ubyte.gz",
                        "25c81989df183df01b3e8a0aad5dffbe",
                    ),
                    (
                        "t10k-images-idx3-ubyte.gz",
                        "bef4ecab320f06d8554ea6380940ec79",
                    ),
                    (
                        "t10k-labels-idx1-ubyte.gz",
                        "bb300cfdad3c16e7a12a480ee83cd310",
                    ),
                ]),
            },
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Already present with the right checksum.
    Kept(PathBuf),
    /// Downloaded from this URL.
    Downloaded {
        /// Where it was written.
        path: PathBuf,
        /// The mirror URL that served it.
        url: String,
    },
}

/// What to tell someone whose download failed: training does not need the network.
pub const OFFLINE_HINT: &str = "without a network, training still works: the MNIST test set ships in data/mnist-t10k/, and Fashion-MNIST installs with `apt-get install dataset-fashion-mnist`";

/// Fetches every file of `source` into `dir` (created if needed, and removed again if this
/// call created it and nothing could be fetched).
///
/// # Errors
/// [`Error::Io`] when the folder cannot be written; [`Error::Dataset`] naming the file and
/// every mirror's failure (unreachable, HTTP error, checksum mismatch) when no mirror
/// delivers a good copy.
pub fn download(source: &Remote, dir: &Path, mut log: impl FnMut(&str)) -> Result<Vec<Fetched>> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let result = fetch_all(source, dir, &mut log);
    let empty = || {
        std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
    };
    if result.is_err() && created && empty() {
        // Best effort: the folder was ours and holds nothing.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

fn fetch_all(source: &Remote, dir: &Path, log: &mut impl FnMut(&str)) -> Result<Vec<Fetched>> {
    let mut done = Vec::new();
    for file in &source.files {
        let path = dir.join(&file.name);
        if path.is_file() && md5_of_file(&path)? == file.md5 {
            log(&format!("{} already present, checksum ok", path.display()));
            done.push(Fetched::Kept(path));
            continue;
        }
        let mut failures = Vec::new();
        let mut fetched = None;
        for mirror in &source.mirrors {
            let url = format!("{mirror}{}", file.name);
            match fetch_verified(&url, &path, &file.md5) {
                Ok(()) => {
                    log(&format!("downloaded {url}, checksum ok"));
                    fetched = Some(url);
                    break;
                }
                Err(why) => failures.push(format!("{url}: {why}")),
            }
        }
        match fetched {
            Some(url) => done.push(Fetched::Downloaded { path, url }),
            None => {
                return Err(Error::Dataset {
                    path,
                    detail: format!(
                        "no mirror delivered a good copy ({}); {OFFLINE_HINT}",
                        failures.join("; ")
                    ),
                })
            }
        }
    }
    Ok(done)
}

/// Streams `url` into `<path>.part`, checks its MD5, renames it to `path`. Any failure
/// removes the partial file and is returned as a sentence.
fn fetch_verified(url: &str, path: &Path, want_md5: &str) -> std::result::Result<(), String> {
    let part = part_path(path);
    let result = (|| {
        let response = ureq::get(url)
            .timeout(std::time::Duration::from_secs(60))
            .call()
            .map_err(|e| {
                // ureq's message starts with the URL, which the caller prints already.
                let text = e.to_string();
                text.strip_prefix(&format!("{url}: "))
                    .map_or(text.clone(), str::to_string)
            })?;
        let mut reader = response.into_reader();
        let mut out = std::fs::File::create(&part)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        let mut hasher = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("download interrupted: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        }
        out.sync_all()
            .map_err(|e| format!("cannot flush {}: {e}", part.display()))?;
        let got = hex(&hasher.finalize());
        if got != want_md5 {
            return Err(format!(
                "checksum mismatch (got MD5 {got}, expected {want_md5})"
            ));
        }
        std::fs::rename(&part, path)
            .map_err(|e| format!("cannot rename into {}: {e}", path.display()))
    })();
    if result.is_err() {
        // Best effort: a leftover .part is harmless (it is overwritten next time).
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// The lowercase hex MD5 of a file.
///
/// # Errors
/// [`Error::Io`] if it cannot be read.
pub fn md5_of_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    Ok(hex(&Md5::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
