//! Saving and loading tensors as safetensors files, always atomically.
//!
//! A safetensors file is a JSON header (names, dtypes, shapes, byte offsets, and a free-form
//! string map of metadata) followed by the raw little-endian data. PyTorch reads it with
//! `safetensors.torch.load_file`, and since parameter names follow PyTorch's `nn.Sequential`
//! numbering, a `model.safetensors` written here loads into the same architecture there.
//!
//! Every write goes through [`write_atomic`]: a temporary file in the destination folder,
//! flushed to disk and renamed over the destination, so a crash mid-write leaves the previous
//! checkpoint intact.

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Named tensors, sorted by name.
pub type Tensors = BTreeMap<String, ArrayD<f32>>;

/// Serialises named f32 tensors (and string metadata) in the safetensors format.
///
/// # Errors
/// [`Error::Format`] if the format rejects a tensor (it cannot for f32 data of its own shape).
pub fn to_bytes(tensors: &Tensors, metadata: &HashMap<String, String>) -> Result<Vec<u8>> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                t.shape().to_vec(),
                t.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = raw
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::format("tensor", format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let info = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    safetensors::tensor::serialize(views, &info)
        .map_err(|e| Error::format("safetensors", e.to_string()))
}

/// The metadata entry `key` of the checkpoint at `path`, read from JSON.
///
/// # Errors
/// [`Error::Dataset`] naming the file when the entry is missing ("not a handgrad checkpoint
/// (no {what})") or is not valid JSON for `T`.
pub fn meta_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    metadata: &HashMap<String, String>,
    key: &str,
    what: &str,
) -> Result<T> {
    let bad = |detail: String| Error::Dataset {
        path: path.to_path_buf(),
        detail,
    };
    let text = metadata
        .get(key)
        .ok_or_else(|| bad(format!("not a handgrad checkpoint (no {what})")))?;
    serde_json::from_str(text).map_err(|e| bad(format!("bad {what}: {e}")))
}

/// Saves tensors and metadata to `path`, atomically.
///
/// # Errors
/// As [`write_atomic`] and [`to_bytes`].
pub fn save(path: &Path, tensors: &Tensors, metadata: &HashMap<String, String>) -> Result<()> {
    write_atomic(path, &to_bytes(tensors, metadata)?)
}

/// Loads every f32 tensor of a safetensors file, and its metadata.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Dataset`] naming the file if it is not a valid
/// safetensors file or holds a tensor that is not f32.
pub fn load(path: &Path) -> Result<(Tensors, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let bad = |detail: String| Error::Dataset {
        path: path.to_path_buf(),
        detail,
    };
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("unreadable header: {e}")))?;
    let mut tensors = Tensors::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} is {:?}, only F32 is read",
                view.dtype()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
            .map_err(|e| bad(format!("tensor {name}: {e}")))?;
        tensors.insert(name, array);
    }
    Ok((tensors, meta.metadata().clone().unwrap_or_default()))
}
