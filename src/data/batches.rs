//! From a dataset to training batches: class subsets, seeded train/validation/test splits,
//! a new shuffle every epoch, and images as NCHW f32 in [0, 1].
//!
//! Splits are carved from shuffled indices with a seeded generator, so the same seed gives the
//! same split on every run — which is what lets `handgrad eval` find the very test images a
//! run was never trained on.

use super::mnist::{Dataset, ImageSet};
use crate::error::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// How much of something: a fraction of the available images, or a count.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// This fraction (0 to 1) of the pool.
    Fraction(f64),
    /// Exactly this many images.
    Count(usize),
}

impl Amount {
    /// Parses `0.1` (a fraction) or `5000` (a count).
    ///
    /// # Errors
    /// [`Error::Config`] for anything else, or a fraction outside [0, 1).
    pub fn parse(text: &str) -> Result<Self> {
        if let Ok(count) = text.parse::<usize>() {
            return Ok(Amount::Count(count));
        }
        match text.parse::<f64>() {
            Ok(f) if (0.0..1.0).contains(&f) => Ok(Amount::Fraction(f)),
            _ => Err(Error::config(
                "split size",
                format!("{text:?} is neither a fraction in [0, 1) nor a count"),
            )),
        }
    }

    /// How many of `pool` images this is.
    pub fn of(self, pool: usize) -> usize {
        match self {
            Amount::Fraction(f) => (pool as f64 * f).round() as usize,
            Amount::Count(c) => c,
        }
    }
}

/// How to cut a dataset into train, validation and test sets.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitSpec {
    /// Validation images, carved from the training pool.
    pub validation: Amount,
    /// Test images, carved from the pool only when the dataset has no separate training files.
    pub test: Amount,
    /// Keep only these classes (e.g. digits 0, 1, 2, 4, 7); all if empty.
    pub classes: Vec<u8>,
    /// At most this many images in the training pool (and in a separate test set).
    pub max_samples: Option<usize>,
    /// Seed of the split's shuffle.
    pub seed: u64,
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            validation: Amount::Fraction(0.1),
            test: Amount::Fraction(0.2),
            classes: Vec::new(),
            max_samples: None,
            seed: 0,
        }
    }
}

/// The three sets a run uses.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Images the model learns from.
    pub train: ImageSet,
    /// Images for early stopping and learning-rate schedules.
    pub val: ImageSet,
    /// Images never seen during training, for the final numbers.
    pub test: ImageSet,
}

impl ImageSet {
    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let pixels = self.rows * self.cols;
        let mut images = Vec::with_capacity(indices.len() * pixels);
        for &i in indices {
            images.extend_from_slice(&self.images[i * pixels..(i + 1) * pixels]);
        }
        ImageSet {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Indices of the images whose label is in `classes` (all when `classes` is empty).
    fn indices_of(&self, classes: &[u8]) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| classes.is_empty() || classes.contains(&self.labels[i]))
            .collect()
    }

    /// Writes images `indices` as f32 in [0, 1] into `out`, laid out (B, 1, rows, cols).
    pub fn batch_into(&self, indices: &[usize], out: &mut Vec<f32>) {
        let pixels = self.rows * self.cols;
        out.clear();
        for &i in indices {
            out.extend(
                self.images[i * pixels..(i + 1) * pixels]
                    .iter()
                    .map(|&p| p as f32 / 255.0),
            );
        }
    }

    /// The shape of a batch of `b` images: (b, 1, rows, cols).
    pub fn batch_shape(&self, b: usize) -> [usize; 4] {
        [b, 1, self.rows, self.cols]
    }
}

/// Cuts a dataset into train, validation and test sets.
///
/// # Errors
/// [`Error::Config`] when a class subset leaves nothing, or the requested validation and test
/// sizes leave no training images.
pub fn split(ds: &Dataset, spec: &SplitSpec) -> Result<Splits> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let pool_set = ds.train.as_ref().unwrap_or(&ds.test);
    let mut pool = pool_set.indices_of(&spec.classes);
    if pool.is_empty() {
        return Err(Error::config(
            "classes",
            format!("no image of classes {:?} in {}", spec.classes, ds.name),
        ));
    }
    pool.shuffle(&mut rng);
    let test = match &ds.train {
        Some(_) => {
            let mut test_idx = ds.test.indices_of(&spec.classes);
            if let Some(max) = spec.max_samples {
                test_idx.truncate(max);
            }
            ds.test.subset(&test_idx)
        }
        None => {
            let n_test = spec.test.of(pool.len()).min(pool.len());
            let test_idx: Vec<usize> = pool.drain(..n_test).collect();
            pool_set.subset(&test_idx)
        }
    };
    if let Some(max) = spec.max_samples {
        pool.truncate(max);
    }
    let n_val = spec.validation.of(pool.len()).min(pool.len());
    let val_idx: Vec<usize> = pool.drain(..n_val).collect();
    if pool.is_empty() {
        return Err(Error::config(
            "split",
            format!(
                "validation ({n_val}) and test ({}) sizes leave no training images",
                test.len()
            ),
        ));
    }
    Ok(Splits {
        train: pool_set.subset(&pool),
        val: pool_set.subset(&val_idx),
        test,
    })
}

/// The order in which epoch `epoch` visits `n` training images: a fresh seeded shuffle each
/// epoch, derived from (seed, epoch) alone so that a resumed run replays the same order.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    // SplitMix64's constant decorrelates neighbouring (seed, epoch) pairs.
    let mut rng =
        StdRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}
