//! Data: reading the IDX files MNIST and Fashion-MNIST come in, finding them on disk,
//! downloading them, and cutting them into shuffled batches of NCHW images in [0, 1].
//!
//! Reading order: [`idx`] (the file format) → [`mnist`] (datasets and where they are looked
//! for) → [`batches`] (splits, class subsets, shuffling, batching) → [`corrupt`] (the damage a
//! denoising autoencoder learns to undo) → [`download`].

pub mod batches;
pub mod corrupt;
pub mod download;
pub mod idx;
pub mod mnist;
pub mod own_image;

pub use batches::{Samples, SplitSpec, Splits};
pub use corrupt::Corruption;
pub use mnist::{Dataset, DatasetName};
