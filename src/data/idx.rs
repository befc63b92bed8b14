//! The IDX format: how MNIST's images and labels are stored.
//!
//! An IDX file is a 4-byte magic number, one big-endian u32 per dimension, then the data:
//!
//! ```text
//! 00 00 08 03 | 00 00 27 10 | 00 00 00 1c | 00 00 00 1c | 10000·28·28 bytes …
//!  magic       N = 10000      rows = 28     cols = 28
//! ```
//!
//! The magic's third byte is the element type (0x08: unsigned byte, all MNIST uses) and the
//! fourth the number of dimensions, so images have magic 2051 (0x803) and labels 2049 (0x801).
//! Files are usually gzip-compressed (`.gz`). Everything is checked: a wrong magic, a type we
//! do not read, a file shorter or longer than its header promises, or broken gzip is an
//! [`Error::Dataset`] naming the file — never a panic, never a silent short read.

use crate::error::{Error, Result};
use byteorder::{BigEndian, ByteOrder};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Magic number of an IDX file of u8 images (N, rows, cols).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels (N).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes from the header, outermost first.
    pub dims: Vec<usize>,
    /// Row-major data, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads an IDX file, gunzipping it first if it starts with gzip's magic bytes.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Dataset`] for corrupt gzip or a bad header.
pub fn read(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(Error::io(path))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| dataset_error(path, format!("corrupt gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse(&bytes, path)
}

/// Parses the bytes of an (uncompressed) IDX file; `path` is only used in error messages.
///
/// # Errors
/// [`Error::Dataset`] for a bad magic number, an unsupported element type, or data whose
/// length differs from what the header promises.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let Some(magic) = bytes.get(..4) else {
        return Err(dataset_error(
            path,
            format!("too short for an IDX header ({} bytes)", bytes.len()),
        ));
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(dataset_error(
            path,
            format!(
                "not an IDX file (magic number {:#010x})",
                BigEndian::read_u32(magic)
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(dataset_error(
            path,
            format!(
                "element type {:#04x} is not unsigned bytes (0x08)",
                magic[2]
            ),
        ));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(dataset_error(path, "the header declares zero dimensions"));
    }
    let header_len = 4 + 4 * ndim;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(dataset_error(
            path,
            format!(
                "truncated header: {ndim} dimensions need {header_len} bytes, the file has {}",
                bytes.len()
            ),
        ));
    };
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| BigEndian::read_u32(c) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| dataset_error(path, format!("dimensions {dims:?} overflow")))?;
    let data = &bytes[header_len..];
    if data.len() < expected {
        return Err(dataset_error(path, format!("truncated: the header promises {expected} bytes of data ({dims:?}), the file has {}", data.len())));
    }
    if data.len() > expected {
        return Err(dataset_error(
            path,
            format!(
                "{} unexpected bytes after the {expected} bytes the header promises ({dims:?})",
                data.len() - expected
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

/// Serialises bytes as an IDX file (uncompressed): the inverse of [`parse`], used to write
/// test fixtures and subsets.
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Reads an image file (N, rows, cols) and its label file (N), checking that they agree.
///
/// # Errors
/// As [`read`], plus wrong magic numbers for images or labels, labels above 9, and counts that
/// disagree between the two files.
pub fn read_images_and_labels(images: &Path, labels: &Path) -> Result<(IdxArray, Vec<u8>)> {
    let img = read(images)?;
    if img.dims.len() != 3 {
        return Err(dataset_error(
            images,
            format!(
                "expected images (magic {IMAGES_MAGIC}, 3 dimensions), found {} dimensions",
                img.dims.len()
            ),
        ));
    }
    let lab = read(labels)?;
    if lab.dims.len() != 1 {
        return Err(dataset_error(
            labels,
            format!(
                "expected labels (magic {LABELS_MAGIC}, 1 dimension), found {} dimensions",
                lab.dims.len()
            ),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(dataset_error(
            labels,
            format!(
                "{} labels for {} images in {}",
                lab.dims[0],
                img.dims[0],
                images.display()
            ),
        ));
    }
    if let Some(bad) = lab.data.iter().find(|&&l| l > 9) {
        return Err(dataset_error(
            labels,
            format!("label {bad} is not a class 0–9"),
        ));
    }
    Ok((img, lab.data))
}

fn dataset_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::Dataset {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}
