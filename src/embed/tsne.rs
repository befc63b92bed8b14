//! t-SNE: a 2-D map of high-dimensional points that keeps neighbours together.
//!
//! PCA keeps the directions of largest variance, which may not be where the classes differ.
//! t-SNE instead keeps neighbourhoods: points close in the original space land close on the
//! map, at the price of distances between far-apart groups meaning little.
//!
//! 1. **Affinities in the original space.** Around each point i, a Gaussian turns distances
//!    into probabilities p(j|i) ∝ exp(−‖xᵢ − xⱼ‖² · βᵢ). Its width is chosen per point by binary
//!    search on βᵢ so that the distribution's perplexity 2^H (its "effective number of
//!    neighbours") equals the one asked for: dense regions get narrow Gaussians, sparse ones
//!    wide. Symmetrised: pᵢⱼ = (p(j|i) + p(i|j)) / 2n.
//! 2. **Affinities on the map.** A Student-t with one degree of freedom,
//!    qᵢⱼ = (1 + ‖yᵢ − yⱼ‖²)⁻¹ / Z, Z summing that over all pairs. Its heavy tail lets
//!    moderately distant points sit far apart on the map, which is what separates clusters.
//! 3. **Gradient descent** on KL(P ‖ Q): ∂/∂yᵢ = 4 Σⱼ (pᵢⱼ − qᵢⱼ)(yᵢ − yⱼ)(1 + ‖yᵢ − yⱼ‖²)⁻¹,
//!    with momentum, per-coordinate gains (grow while the gradient keeps its sign, shrink when
//!    it flips), and "early exaggeration" (P × 12 for the first 250 steps) so that clusters
//!    form before they settle.
//!
//! This is the exact method: O(n²) time and memory per step, fine for a few thousand points
//! ([`MAX_POINTS`]). Rows are computed in parallel; every sum is taken in a fixed order, so a
//! seed gives the same map on any number of threads.

use crate::error::{Error, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// The most points the exact method accepts (its P matrix then takes 100 MB).
pub const MAX_POINTS: usize = 5000;

/// Settings of a t-SNE run.
#[derive(Clone, Copy, Debug)]
pub struct TsneSettings {
    /// The effective number of neighbours each point's Gaussian covers (5 to 50 is usual).
    pub perplexity: f64,
    /// Gradient steps.
    pub steps: usize,
    /// Seed of the initial map.
    pub seed: u64,
}

impl Default for TsneSettings {
    fn default() -> Self {
        TsneSettings {
            perplexity: 30.0,
            steps: 1000,
            seed: 0,
        }
    }
}

/// Steps with exaggerated P (and lower momentum) at the start.
const EARLY_STEPS: usize = 250;
const EXAGGERATION: f64 = 12.0;

/// Maps `points` (n rows of `dim` values) to 2-D: n (x, y) pairs.
///
/// # Errors
/// [`Error::Config`] for fewer than 3 or more than [`MAX_POINTS`] points, a perplexity that
/// is not below n − 1, or non-finite values.
pub fn tsne(points: &[f32], dim: usize, settings: &TsneSettings) -> Result<Vec<(f64, f64)>> {
    tsne_watched(points, dim, settings, &mut |_, _| {})
}

/// [`tsne`], calling `on_step(done, steps)` after each step of the descent, for a progress
/// bar: with thousands of points a map takes seconds.
///
/// # Errors
/// As [`tsne`].
pub fn tsne_watched(
    points: &[f32],
    dim: usize,
    settings: &TsneSettings,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Vec<(f64, f64)>> {
    let n = points.len() / dim.max(1);
    if dim == 0 || points.len() != n * dim || !(3..=MAX_POINTS).contains(&n) {
        return Err(Error::config(
            "t-SNE",
            format!("{n} points: the exact method takes 3 to {MAX_POINTS}"),
        ));
    }
    let perplexity = settings.perplexity;
    if !(perplexity >= 1.0 && perplexity < (n - 1) as f64) {
        return Err(Error::config(
            "perplexity",
            format!("{perplexity}: give a number from 1 to below the number of points ({n})"),
        ));
    }
    if let Some(i) = points.iter().position(|v| !v.is_finite()) {
        return Err(Error::config(
            "t-SNE",
            format!("point {} has a non-finite value", i / dim),
        ));
    }
    let p = affinities(points, n, dim, perplexity);
    Ok(descend(&p, n, settings, on_step))
}

/// Squared distances from point `i` to every point.
fn distances_from(points: &[f32], dim: usize, i: usize, out: &mut [f64]) {
    let xi = &points[i * dim..(i + 1) * dim];
    for (j, d) in out.iter_mut().enumerate() {
        let xj = &points[j * dim..(j + 1) * dim];
        *d = xi
            .iter()
            .zip(xj)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
    }
}

/// p(j|i) for one row, with β found by binary search so that the entropy is ln(perplexity).
fn conditional_row(dist: &[f64], i: usize, perplexity: f64, row: &mut [f64]) {
    let target = perplexity.ln();
    let (mut beta, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
    // Distances relative to the nearest neighbour keep exp() in range for any scale.
    let nearest = dist
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, &d)| d)
        .fold(f64::INFINITY, f64::min);
    let scale = dist.iter().sum::<f64>() / dist.len() as f64;
    let scale = if scale > 0.0 { scale } else { 1.0 };
    for _ in 0..100 {
        let mut sum = 0.0;
        let mut weighted = 0.0;
        for (j, (r, &d)) in row.iter_mut().zip(dist).enumerate() {
            let shifted = (d - nearest) / scale;
            *r = if j == i { 0.0 } else { (-shifted * beta).exp() };
            sum += *r;
            weighted += *r * shifted;
        }
        let sum = sum.max(f64::MIN_POSITIVE);
        // H = ln Σ + β·E[d]: the entropy of the normalised row, in nats.
        let entropy = sum.ln() + beta * weighted / sum;
        row.iter_mut().for_each(|r| *r /= sum);
        if (entropy - target).abs() < 1e-5 {
            break;
        }
        if entropy > target {
            lo = beta;
            beta = if hi.is_finite() {
                (beta + hi) / 2.0
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
}

/// The symmetric joint P (n×n, f32 to halve its memory).
fn affinities(points: &[f32], n: usize, dim: usize, perplexity: f64) -> Vec<f32> {
    let mut cond = vec![0.0f32; n * n];
    cond.par_chunks_mut(n).enumerate().for_each(|(i, out)| {
        let mut dist = vec![0.0; n];
        let mut row = vec![0.0; n];
        distances_from(points, dim, i, &mut dist);
        conditional_row(&dist, i, perplexity, &mut row);
        for (o, r) in out.iter_mut().zip(&row) {
            *o = *r as f32;
        }
    });
    let mut p = vec![0.0f32; n * n];
    let norm = 2.0 * n as f64;
    p.par_chunks_mut(n).enumerate().for_each(|(i, out)| {
        for (j, o) in out.iter_mut().enumerate() {
            let v = (cond[i * n + j] as f64 + cond[j * n + i] as f64) / norm;
            *o = v.max(1e-12) as f32;
        }
    });
    p
}

/// Gradient descent on KL(P ‖ Q) from a small random map.
fn descend(
    p: &[f32],
    n: usize,
    s: &TsneSettings,
    on_step: &mut dyn FnMut(usize, usize),
) -> Vec<(f64, f64)> {
    let mut rng = StdRng::seed_from_u64(s.seed);
    let normal = Normal::new(0.0, 1e-4).expect("a valid normal");
    let mut y: Vec<[f64; 2]> = (0..n)
        .map(|_| [normal.sample(&mut rng), normal.sample(&mut rng)])
        .collect();
    let mut velocity = vec![[0.0f64; 2]; n];
    let mut gains = vec![[1.0f64; 2]; n];
    // The learning rate grows with n (as in current practice): n / exaggeration / 4, ≥ 50.
    let rate = (n as f64 / EXAGGERATION / 4.0).max(50.0);
    for step in 0..s.steps {
        let early = step < EARLY_STEPS;
        let exaggeration = if early { EXAGGERATION } else { 1.0 };
        let momentum = if early { 0.5 } else { 0.8 };
        // One pass over all pairs per row: the attraction Σ pᵢⱼ·wᵢⱼ·(yᵢ − yⱼ), the repulsion
        // Σ wᵢⱼ²·(yᵢ − yⱼ) and the row's share of Z = Σ wᵢⱼ, with wᵢⱼ = 1/(1 + ‖yᵢ − yⱼ‖²).
        let rows: Vec<([f64; 2], [f64; 2], f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let (mut attract, mut repel, mut z) = ([0.0; 2], [0.0; 2], 0.0);
                let yi = y[i];
                for (j, yj) in y.iter().enumerate() {
                    if j == i {
                        continue;
                    }
                    let d = [yi[0] - yj[0], yi[1] - yj[1]];
                    let w = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
                    let pij = p[i * n + j] as f64;
                    for k in 0..2 {
                        attract[k] += pij * w * d[k];
                        repel[k] += w * w * d[k];
                    }
                    z += w;
                }
                (attract, repel, z)
            })
            .collect();
        let z: f64 = rows.iter().map(|r| r.2).sum();
        for (i, (attract, repel, _)) in rows.iter().enumerate() {
            for k in 0..2 {
                let grad = 4.0 * (exaggeration * attract[k] - repel[k] / z);
                let gain = &mut gains[i][k];
                *gain = if (grad > 0.0) == (velocity[i][k] > 0.0) {
                    (*gain * 0.8).max(0.01)
                } else {
                    *gain + 0.2
                };
                velocity[i][k] = momentum * velocity[i][k] - rate * *gain * grad;
                y[i][k] += velocity[i][k];
            }
        }
        // Keep the map centred (the objective does not care where it sits).
        for k in 0..2 {
            let mean = y.iter().map(|p| p[k]).sum::<f64>() / n as f64;
            y.iter_mut().for_each(|p| p[k] -= mean);
        }
        on_step(step + 1, s.steps);
    }
    y.into_iter().map(|p| (p[0], p[1])).collect()
}

/// The share of points whose nearest other point (in the 2-D map) has the same label: a
/// measure of how well a map keeps classes together (1 = perfectly, ≈ 1/classes = not at all).
pub fn neighbour_purity(map: &[(f64, f64)], labels: &[u8]) -> f64 {
    let n = map.len();
    if n < 2 {
        return 1.0;
    }
    let same = (0..n)
        .filter(|&i| {
            let nearest = (0..n)
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let da = (map[a].0 - map[i].0).powi(2) + (map[a].1 - map[i].1).powi(2);
                    let db = (map[b].0 - map[i].0).powi(2) + (map[b].1 - map[i].1).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap_or(i);
            labels[nearest] == labels[i]
        })
        .count();
    same as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `per` points around each of `k` random centres in `dim`-D, with labels.
    fn clusters(k: usize, per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let centres: Vec<Vec<f32>> = (0..k)
            .map(|_| (0..dim).map(|_| rng.random_range(-10.0..10.0)).collect())
            .collect();
        let (mut pts, mut labels) = (Vec::new(), Vec::new());
        for i in 0..k * per {
            let c = i % k;
            pts.extend(
                centres[c]
                    .iter()
                    .map(|&m| m + normal.sample(&mut rng) as f32),
            );
            labels.push(c as u8);
        }
        (pts, labels)
    }

    #[test]
    fn the_binary_search_hits_the_perplexity() {
        let (pts, _) = clusters(3, 40, 10, 1);
        let mut dist = vec![0.0; 120];
        let mut row = vec![0.0; 120];
        distances_from(&pts, 10, 7, &mut dist);
        conditional_row(&dist, 7, 20.0, &mut row);
        let h: f64 = row.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
        assert!((h.exp() - 20.0).abs() < 0.01, "perplexity {}", h.exp());
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12 && row[7] == 0.0);
    }

    #[test]
    fn separated_clusters_in_50_dimensions_stay_separated_and_a_seed_repeats() {
        let (pts, labels) = clusters(5, 60, 50, 2);
        let s = TsneSettings {
            perplexity: 20.0,
            steps: 500,
            seed: 4,
        };
        let map = tsne(&pts, 50, &s).unwrap();
        let purity = neighbour_purity(&map, &labels);
        assert!(purity > 0.98, "nearest-neighbour purity {purity}");
        // The same map with labels drawn at random scores about one in five.
        let mut rng = StdRng::seed_from_u64(8);
        let shuffled: Vec<u8> = labels.iter().map(|_| rng.random_range(0..5u8)).collect();
        assert!(neighbour_purity(&map, &shuffled) < 0.5);
        assert_eq!(map, tsne(&pts, 50, &s).unwrap(), "same seed, same map");
        let other = tsne(&pts, 50, &TsneSettings { seed: 5, ..s }).unwrap();
        assert_ne!(map, other);
    }

    #[test]
    fn the_settings_given_are_the_ones_used() {
        // The map is the descent on the affinities at exactly the perplexity asked for: a
        // perplexity halved (or replaced) on the way would give another map, even where the
        // clusters come out just as pure.
        let (pts, _) = clusters(3, 12, 4, 5);
        let s = TsneSettings {
            perplexity: 8.0,
            steps: 60,
            seed: 2,
        };
        let map = tsne(&pts, 4, &s).unwrap();
        let mut seen = Vec::new();
        let mut watch = |done, total| seen.push((done, total));
        assert_eq!(
            map,
            descend(&affinities(&pts, 36, 4, 8.0), 36, &s, &mut watch)
        );
        assert_ne!(
            map,
            descend(&affinities(&pts, 36, 4, 4.0), 36, &s, &mut |_, _| {})
        );
        // And the number of steps is the one given, each reported once, in order.
        assert_eq!(seen, (1..=60).map(|d| (d, 60)).collect::<Vec<_>>());
        let fewer = tsne(&pts, 4, &TsneSettings { steps: 59, ..s }).unwrap();
        assert_ne!(map, fewer);
    }

    #[test]
    fn bad_settings_are_refused() {
        let (pts, _) = clusters(2, 5, 3, 3);
        let s = TsneSettings::default();
        assert!(tsne(&pts, 3, &s).is_err(), "perplexity 30 with 10 points");
        assert!(tsne(
            &pts[..6],
            3,
            &TsneSettings {
                perplexity: 1.0,
                ..s
            }
        )
        .is_err());
    }
}
