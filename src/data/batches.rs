//! From a dataset to training batches: class subsets, seeded train/validation/test splits,
//! a new shuffle every epoch, and images as NCHW f32 in [0, 1].
//!
//! Splits are carved from shuffled indices with a seeded generator, so the same seed gives the
//! same split on every run — which is what lets `handgrad eval` find the very test images a
//! run was never trained on.

use super::mnist::{Dataset, ImageSet};
use crate::error::{Error, Result};
use crate::seed::{self, Stream};
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
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Validation images, carved from the training pool.
    pub validation: Amount,
    /// Test images carved from the pool, for a dataset with test files only (like the shipped
    /// MNIST test set); [`DEFAULT_TEST`] when not given. A dataset with its own training files
    /// uses its own test set, and refuses this setting.
    #[serde(default)]
    pub test: Option<Amount>,
    /// Keep only these classes (e.g. digits 0, 1, 2, 4, 7); all if empty.
    #[serde(default)]
    pub classes: Vec<u8>,
    /// At most this many images in the pool that training and validation images are drawn
    /// from (before validation is carved out). The test set is never cut.
    #[serde(default)]
    pub max_samples: Option<usize>,
    /// Seed of the split's shuffle.
    #[serde(default)]
    pub seed: u64,
}

/// The test share carved from a dataset that has test files only.
pub const DEFAULT_TEST: Amount = Amount::Fraction(0.2);

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            validation: Amount::Fraction(0.1),
            test: None,
            classes: Vec::new(),
            max_samples: None,
            seed: 0,
        }
    }
}

impl SplitSpec {
    /// Checks what can be checked without the data: classes are 0–9, sizes are not 0.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if let Some(&c) = self.classes.iter().find(|&&c| c > 9) {
            return Err(Error::config(
                "classes",
                format!("{c} is not a class; MNIST and Fashion-MNIST have classes 0 to 9"),
            ));
        }
        if self.max_samples == Some(0) {
            return Err(Error::config("max samples", "must be at least 1"));
        }
        if matches!(self.test, Some(Amount::Count(0))) || self.test == Some(Amount::Fraction(0.0)) {
            return Err(Error::config(
                "test split",
                "an empty test set leaves nothing to measure the model on; give a positive size",
            ));
        }
        Ok(())
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

/// Anything training draws batches from: images (with their labels), or feature vectors
/// made from them.
pub trait Samples: Sync {
    /// How many samples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every sample's label.
    fn labels(&self) -> &[u8];
    /// The shape of a batch of `n` samples: (n, 1, rows, cols) for images, (n, features) for
    /// vectors.
    fn batch_dims(&self, n: usize) -> ndarray::IxDyn;
    /// Writes samples `indices`, one after another, as f32 into `out`, which holds exactly
    /// that many samples (a buffer of [`Samples::batch_dims`]`(indices.len())`: training
    /// loads each batch straight into a buffer of the tape).
    fn fill_batch(&self, indices: &[usize], out: &mut [f32]);
}

/// Samples that are plain vectors: PCA coordinates, or an encoder's codes computed once.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// n·dim values, sample after sample.
    pub values: Vec<f32>,
    /// Values per sample.
    pub dim: usize,
    /// n labels.
    pub labels: Vec<u8>,
}

impl Samples for Features {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn labels(&self) -> &[u8] {
        &self.labels
    }
    fn batch_dims(&self, n: usize) -> ndarray::IxDyn {
        ndarray::IxDyn(&[n, self.dim])
    }
    fn fill_batch(&self, indices: &[usize], out: &mut [f32]) {
        for (&i, sample) in indices.iter().zip(out.chunks_exact_mut(self.dim)) {
            sample.copy_from_slice(&self.values[i * self.dim..(i + 1) * self.dim]);
        }
    }
}

impl Samples for ImageSet {
    fn len(&self) -> usize {
        ImageSet::len(self)
    }
    fn labels(&self) -> &[u8] {
        &self.labels
    }
    fn batch_dims(&self, n: usize) -> ndarray::IxDyn {
        ndarray::IxDyn(&self.batch_shape(n))
    }
    fn fill_batch(&self, indices: &[usize], out: &mut [f32]) {
        ImageSet::fill_batch(self, indices, out)
    }
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
}

/// Cuts a dataset into train, validation and test sets.
///
/// # Errors
/// [`Error::Config`] when a requested class has no image, a test size is given for a dataset
/// with its own test set, the test set would be empty, or the validation and test sizes
/// leave no training images.
pub fn split(ds: &Dataset, spec: &SplitSpec) -> Result<Splits> {
    spec.validate()?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let pool_set = ds.train.as_ref().unwrap_or(&ds.test);
    if let Some(&missing) = spec
        .classes
        .iter()
        .find(|&&c| !pool_set.labels.contains(&c))
    {
        return Err(Error::config(
            "classes",
            format!("{} has no image of class {missing}", ds.name),
        ));
    }
    let mut pool = pool_set.indices_of(&spec.classes);
    pool.shuffle(&mut rng);
    let test = match (&ds.train, spec.test) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "test split",
                format!(
                    "{} has its own test set ({} images), which is always the test set; a test size applies only to a dataset with test files only",
                    ds.name,
                    ds.test.len()
                ),
            ))
        }
        (Some(_), None) => ds.test.subset(&ds.test.indices_of(&spec.classes)),
        (None, amount) => {
            let n_test = amount.unwrap_or(DEFAULT_TEST).of(pool.len()).min(pool.len());
            let test_idx: Vec<usize> = pool.drain(..n_test).collect();
            pool_set.subset(&test_idx)
        }
    };
    if test.is_empty() {
        return Err(Error::config(
            "test split",
            format!(
                "the test set would be empty ({} test images of classes {:?} in {})",
                test.len(),
                spec.classes,
                ds.name
            ),
        ));
    }
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
    let mut rng = seed::rng(seed, Stream::Shuffle { epoch });
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}
