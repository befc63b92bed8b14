//! Principal component analysis: the best linear autoencoder, in closed form.
//!
//! Given n points of d numbers, PCA finds the k orthonormal directions along which the points
//! vary most. Projecting onto them (the "code") and back loses the least squared error any
//! k-dimensional linear map can: a linear autoencoder trained with MSE converges to the same
//! subspace. That makes PCA the baseline a nonlinear autoencoder has to beat.
//!
//! How: subtract the mean; form the covariance C = XᵀX / (n − 1) (d×d); its eigenvectors are
//! the directions and its eigenvalues the variance along each ([`super::eigen`]). The share
//! of the total variance (the trace of C) the first k eigenvalues hold is the "explained
//! variance" of k components.

use super::eigen::symmetric_eigen;
use crate::error::{Error, Result};

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// The mean point (d values), subtracted before projecting.
    pub mean: Vec<f64>,
    /// The first k directions, one per row (k×d, orthonormal).
    pub components: Vec<f64>,
    /// The variance along every direction, largest first (all d of them).
    pub variances: Vec<f64>,
    /// The dimension d of the points.
    pub dim: usize,
}

impl Pca {
    /// Fits `k` components to `points` (n rows of `dim` values).
    ///
    /// # Errors
    /// [`Error::Config`] for fewer than two points, `k` of 0 or above `dim`, or non-finite
    /// values.
    pub fn fit(points: &[f32], dim: usize, k: usize) -> Result<Self> {
        let n = points.len() / dim.max(1);
        if dim == 0 || n < 2 || points.len() != n * dim {
            return Err(Error::config(
                "PCA",
                format!(
                    "{} values are not at least two points of {dim} dimensions",
                    points.len()
                ),
            ));
        }
        if k == 0 || k > dim {
            return Err(Error::config(
                "components",
                format!("{k}: give between 1 and {dim} (the points' dimension)"),
            ));
        }
        if let Some(i) = points.iter().position(|v| !v.is_finite()) {
            return Err(Error::config(
                "PCA",
                format!("point {} has a non-finite value ({})", i / dim, points[i]),
            ));
        }
        let mut mean = vec![0.0f64; dim];
        for row in points.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centered: Vec<f64> = points
            .chunks_exact(dim)
            .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v as f64 - m))
            .collect();
        let cov = covariance(&centered, n, dim);
        let eigen = symmetric_eigen(&cov, dim)?;
        Ok(Pca {
            mean,
            components: eigen.vectors[..k * dim].to_vec(),
            // Rounding can leave the smallest eigenvalues a hair below zero.
            variances: eigen.values.iter().map(|v| v.max(0.0)).collect(),
            dim,
        })
    }

    /// The number of components kept.
    pub fn k(&self) -> usize {
        self.components.len() / self.dim
    }

    /// The share of the total variance held by the first `k` components, in [0, 1].
    pub fn explained(&self, k: usize) -> f64 {
        let total: f64 = self.variances.iter().sum();
        if total == 0.0 {
            return 0.0;
        }
        self.variances.iter().take(k).sum::<f64>() / total
    }

    /// Each point's coordinates along the first `k` components (n×k), `k` ≤ [`Pca::k`].
    pub fn transform(&self, points: &[f32], k: usize) -> Vec<f32> {
        let k = k.min(self.k());
        points
            .chunks_exact(self.dim)
            .flat_map(|row| {
                (0..k).map(move |c| {
                    let dir = &self.components[c * self.dim..(c + 1) * self.dim];
                    row.iter()
                        .zip(&self.mean)
                        .zip(dir)
                        .map(|((&v, m), d)| (v as f64 - m) * d)
                        .sum::<f64>() as f32
                })
            })
            .collect()
    }

    /// Back from coordinates (n×k) to points: mean + Σ coordinate · direction.
    pub fn inverse(&self, codes: &[f32], k: usize) -> Vec<f32> {
        let k = k.min(self.k()).max(1);
        codes
            .chunks_exact(k)
            .flat_map(|code| {
                (0..self.dim).map(move |j| {
                    let mut v = self.mean[j];
                    for (c, &z) in code.iter().enumerate() {
                        v += z as f64 * self.components[c * self.dim + j];
                    }
                    v as f32
                })
            })
            .collect()
    }
}

/// XᵀX / (n − 1) for a centred n×d matrix, d×d, with a blocked matrix product.
fn covariance(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut cov = vec![0.0f64; d * d];
    // C (d×d) = Xᵀ (d×n, strides 1 and d) · X (n×d, strides d and 1).
    // SAFETY: the pointers and strides describe exactly `x` (n×d) and `cov` (d×d), both alive
    // and unaliased for the call.
    unsafe {
        matrixmultiply::dgemm(
            d,
            n,
            d,
            1.0 / (n as f64 - 1.0),
            x.as_ptr(),
            1,
            d as isize,
            x.as_ptr(),
            d as isize,
            1,
            0.0,
            cov.as_mut_ptr(),
            d as isize,
            1,
        );
    }
    cov
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn the_covariance_matches_its_definition() {
        let x = [1.0, 2.0, -1.0, 0.5, 0.0, -2.5];
        let c = covariance(&x, 3, 2);
        let direct =
            |a: usize, b: usize| (0..3).map(|i| x[i * 2 + a] * x[i * 2 + b]).sum::<f64>() / 2.0;
        for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            assert!((c[a * 2 + b] - direct(a, b)).abs() < 1e-12);
        }
    }

    #[test]
    fn pca_recovers_known_components_and_their_variances() {
        // Points in 5-D spread with standard deviations 5, 2, 0.5 along three orthonormal
        // directions and not at all along the other two, around a mean of (1, 2, 3, 4, 5).
        let dirs: [[f64; 5]; 3] = [
            [0.6, 0.8, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0, 0.0],
            [0.8, -0.6, 0.0, 0.0, 0.0],
        ];
        let sds = [5.0, 2.0, 0.5];
        let mut rng = StdRng::seed_from_u64(3);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let n = 20_000;
        let mut pts = Vec::with_capacity(n * 5);
        for _ in 0..n {
            let z: Vec<f64> = sds.iter().map(|s| s * normal.sample(&mut rng)).collect();
            pts.extend((0..5).map(|j| {
                let v = (j + 1) as f64 + z.iter().zip(&dirs).map(|(zc, d)| zc * d[j]).sum::<f64>();
                v as f32
            }));
        }
        let pca = Pca::fit(&pts, 5, 3).unwrap();
        for c in 0..3 {
            let got = &pca.components[c * 5..(c + 1) * 5];
            let dot: f64 = got.iter().zip(&dirs[c]).map(|(a, b)| a * b).sum();
            assert!(dot.abs() > 0.999, "component {c}: {got:?}");
            let want = sds[c] * sds[c];
            assert!(
                (pca.variances[c] / want - 1.0).abs() < 0.04,
                "{:?}",
                pca.variances
            );
        }
        assert!(pca.variances[3] < 1e-6 && pca.variances[4] < 1e-6);
        for (m, want) in pca.mean.iter().zip(1..=5) {
            assert!((m - want as f64).abs() < 0.1, "{m}");
        }
        // Explained variance: 25 : 4 : 0.25 of 29.25, and all of it with three components.
        assert!((pca.explained(1) - 25.0 / 29.25).abs() < 0.01);
        assert!((pca.explained(3) - 1.0).abs() < 1e-9);
        let sum: f64 = pca.variances.iter().sum();
        let trace: f64 = (0..5)
            .map(|j| {
                let m = pca.mean[j];
                pts.chunks(5)
                    .map(|p| (p[j] as f64 - m).powi(2))
                    .sum::<f64>()
                    / (n - 1) as f64
            })
            .sum();
        assert!((sum / trace - 1.0).abs() < 1e-6, "{sum} vs trace {trace}");
        // With all three components the points come back (up to f32 rounding).
        let back = pca.inverse(&pca.transform(&pts[..50], 3), 3);
        for (a, b) in back.iter().zip(&pts[..50]) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(Pca::fit(&[1.0, 2.0], 2, 1).is_err(), "one point");
        assert!(Pca::fit(&[1.0, 2.0, 3.0, 4.0], 2, 3).is_err(), "k > d");
        assert!(Pca::fit(&[1.0, f32::NAN, 3.0, 4.0], 2, 1).is_err(), "NaN");
    }
}
