//! What a reconstruction loss is worth.
//!
//! A test loss of 0.02 means nothing on its own. Two baselines, measured on the same split
//! with the same loss, say what it is worth:
//! * **the mean image**: predict the training set's average picture whatever the input — what
//!   a model that learned nothing about the input scores;
//! * **PCA with k = the code size**: the best *linear* code of the same size, fitted on the
//!   training images — what an autoencoder must beat to have learned anything a projection
//!   could not.

use crate::data::mnist::ImageSet;
use crate::embed::pca::Pca;
use crate::error::Result;
use crate::names::Named;
use crate::train::task::pixel_loss;
use crate::train::LossName;

/// The two baselines of [`baselines`], per pixel.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baselines {
    /// The loss they are measured with.
    pub loss: LossName,
    /// Components of the PCA baseline (the code size).
    pub k: usize,
    /// Training images the mean and the components come from.
    pub fitted_on: usize,
    /// Test images measured.
    pub test_images: usize,
    /// Loss of predicting the training set's mean image for every test image.
    pub mean_image: f64,
    /// Loss of the test images rebuilt from their first k principal components.
    pub pca: f64,
}

impl Baselines {
    /// One line for a terminal: "baselines on the same 10000 test images: mean image 0.0673,
    /// PCA k=6 0.0303 (MSE per pixel)".
    pub fn line(&self) -> String {
        format!(
            "baselines on the same {} test images: mean image {:.6}, PCA with k = {} {:.6} ({} per pixel, clean inputs)",
            self.test_images,
            self.mean_image,
            self.k,
            self.pca,
            self.loss.name().to_uppercase()
        )
    }
}

/// Measures both baselines: the mean image and a k-component PCA, fitted on `train`, scored
/// with `loss` on the clean images of `test`.
///
/// # Errors
/// A k of 0 or above the pixel count or the number of training images (clamped instead when
/// a model's code is larger than what PCA can give, see below); empty sets.
pub fn baselines(train: &ImageSet, test: &ImageSet, k: usize, loss: LossName) -> Result<Baselines> {
    let dim = test.rows * test.cols;
    let fit = train.first_pixels(usize::MAX);
    let clean = test.first_pixels(usize::MAX);
    let n = fit.len() / dim.max(1);
    let mut mean = vec![0.0f64; dim];
    for image in fit.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(image) {
            *m += v as f64;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / n.max(1) as f64) as f32).collect();
    let predicted: Vec<f32> = clean
        .chunks_exact(dim)
        .flat_map(|_| mean.iter().copied())
        .collect();
    // A code larger than the data's rank cannot be matched by PCA; use all it has.
    let k = k.min(dim).min(n.saturating_sub(1)).max(1);
    let pca = Pca::fit(&fit, dim, k)?;
    let rebuilt = rebuild(&pca, &clean, k);
    Ok(Baselines {
        loss,
        k,
        fitted_on: n,
        test_images: clean.len() / dim.max(1),
        mean_image: pixel_loss(loss, &predicted, &clean)?,
        pca: pixel_loss(loss, &rebuilt, &clean)?,
    })
}

/// `images` rebuilt from their first `k` principal components, each pixel clamped to [0, 1]:
/// pixels live there, a linear reconstruction may overshoot, and BCE needs the range. The one
/// PCA reconstruction of the program: the baseline here and `handgrad pca` use it alike.
pub fn rebuild(pca: &Pca, images: &[f32], k: usize) -> Vec<f32> {
    let mut rebuilt = pca.inverse(&pca.transform(images, k), k);
    rebuilt.iter_mut().for_each(|p| *p = p.clamp(0.0, 1.0));
    rebuilt
}
