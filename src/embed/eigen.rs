//! Eigenvalues and eigenvectors of a symmetric matrix, which is what PCA needs.
//!
//! A symmetric n×n matrix A has n real eigenvalues λᵢ and orthonormal eigenvectors vᵢ with
//! A·vᵢ = λᵢ·vᵢ. Two ways to find them live here:
//!
//! * [`jacobi`], the reference: rotate pairs of coordinates, one at a time, so that the
//!   off-diagonal entry they share becomes 0; sweep over all pairs until nothing is left off
//!   the diagonal. Simple and very accurate, but each sweep costs O(n³) and it needs several:
//!   fine for a code of size 20, slow for 784 pixels.
//! * [`symmetric_eigen`], the fast path (O(n³) once): first Householder reflections bring A to
//!   a tridiagonal T = Qᵀ·A·Q (zero except the diagonal and its two neighbours), then implicit
//!   QR steps with Wilkinson shifts drive T's off-diagonal to zero, each step a chain of Givens
//!   rotations that are also applied to Q, so that Q ends up holding the eigenvectors.
//!
//! Tests check the fast path against the reference on random matrices, and both against
//! matrices built from known eigenvalues and eigenvectors. Everything is in f64: the
//! covariance of 60,000 images has eigenvalues spanning many orders of magnitude.

use crate::error::{Error, Result};

/// Eigenvalues in decreasing order, with their unit eigenvectors.
#[derive(Clone, Debug)]
pub struct Eigen {
    /// λ₁ ≥ λ₂ ≥ … ≥ λₙ.
    pub values: Vec<f64>,
    /// Row i is the eigenvector of `values[i]` (n×n, row-major).
    pub vectors: Vec<f64>,
    /// The matrix size n.
    pub n: usize,
}

impl Eigen {
    /// Eigenvector `i` (of the i-th largest eigenvalue).
    pub fn vector(&self, i: usize) -> &[f64] {
        &self.vectors[i * self.n..(i + 1) * self.n]
    }

    /// Sorts by decreasing eigenvalue; `columns` holds eigenvector k as column k.
    fn sorted(values: Vec<f64>, columns: &[f64], n: usize) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let mut vectors = Vec::with_capacity(n * n);
        for &k in &order {
            vectors.extend((0..n).map(|row| columns[row * n + k]));
        }
        Eigen {
            values: order.iter().map(|&k| values[k]).collect(),
            vectors,
            n,
        }
    }
}

/// Checks that `a` is an n×n symmetric matrix of finite numbers.
fn check_symmetric(a: &[f64], n: usize) -> Result<()> {
    if a.len() != n * n {
        return Err(Error::shape(
            "eigen",
            format!("{} values are not a {n}×{n} matrix", a.len()),
        ));
    }
    if let Some(i) = a.iter().position(|v| !v.is_finite()) {
        return Err(Error::shape(
            "eigen",
            format!("entry ({}, {}) is {}", i / n, i % n, a[i]),
        ));
    }
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for i in 0..n {
        for j in 0..i {
            if (a[i * n + j] - a[j * n + i]).abs() > 1e-9 * scale {
                return Err(Error::shape(
                    "eigen",
                    format!("the matrix is not symmetric at ({i}, {j})"),
                ));
            }
        }
    }
    Ok(())
}

/// The reference: cyclic Jacobi rotations until the off-diagonal part is negligible.
///
/// For each pair (p, q) with `A[p][q] ≠ 0`, the rotation by θ with
/// `tan 2θ = 2·A[p][q] / (A[q][q] − A[p][p])` makes the new `A[p][q]` zero. Rotations undo some
/// earlier zeros, but the sum of squares off the diagonal falls with every one, quadratically
/// once small.
///
/// # Errors
/// [`Error::Shape`] for a matrix that is not n×n, symmetric and finite.
pub fn jacobi(a: &[f64], n: usize) -> Result<Eigen> {
    check_symmetric(a, n)?;
    let mut a = a.to_vec();
    // v accumulates the rotations: its columns become the eigenvectors.
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off <= 1e-30 * total.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // t = tan θ, the smaller root of t² + 2·t·cot 2θ − 1 = 0.
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Rᵀ·A·R, with R the rotation in the (p, q) plane: columns, then rows.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| a[i * n + i]).collect();
    Ok(Eigen::sorted(values, &v, n))
}

/// The fast path: Householder tridiagonalisation, then implicit shifted QR.
///
/// # Errors
/// [`Error::Shape`] for a matrix that is not n×n, symmetric and finite; [`Error::Shape`] if
/// the QR iteration does not converge (which does not happen for finite symmetric input).
pub fn symmetric_eigen(a: &[f64], n: usize) -> Result<Eigen> {
    check_symmetric(a, n)?;
    let (mut diag, mut off, mut q) = tridiagonalize(a, n);
    tridiagonal_qr(&mut diag, &mut off, &mut q, n)?;
    Ok(Eigen::sorted(diag, &q, n))
}

/// Householder reduction: returns T's diagonal, its off-diagonal (`off[i]` = T[i][i+1]) and
/// Q (row-major, n×n) with A = Q·T·Qᵀ.
///
/// Step k reflects coordinates k+1…n−1 so that column k has zeros below row k+1: with x that
/// part of the column, v ∝ x − α·e₁ (α = −sign(x₁)·‖x‖, to avoid cancellation), and
/// H = I − 2·v·vᵀ. Applied on both sides: A ← H·A·H = A − v·wᵀ − w·vᵀ, where p = A·v and
/// w = 2·(p − (vᵀp)·v).
fn tridiagonalize(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut q = vec![0.0; n * n];
    for i in 0..n {
        q[i * n + i] = 1.0;
    }
    let mut v = vec![0.0; n];
    let mut p = vec![0.0; n];
    for k in 0..n.saturating_sub(2) {
        let lo = k + 1;
        let norm = (lo..n).map(|i| a[i * n + k].powi(2)).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let alpha = if a[lo * n + k] > 0.0 { -norm } else { norm };
        for i in lo..n {
            v[i] = a[i * n + k];
        }
        v[lo] -= alpha;
        let vnorm = (lo..n).map(|i| v[i] * v[i]).sum::<f64>().sqrt();
        if vnorm == 0.0 {
            continue;
        }
        for x in &mut v[lo..n] {
            *x /= vnorm;
        }
        // p = A·v on the trailing block, K = vᵀp, w = 2(p − K·v) (stored in p).
        for i in lo..n {
            p[i] = (lo..n).map(|j| a[i * n + j] * v[j]).sum();
        }
        let kk: f64 = (lo..n).map(|i| v[i] * p[i]).sum();
        for i in lo..n {
            p[i] = 2.0 * (p[i] - kk * v[i]);
        }
        for i in lo..n {
            for j in lo..n {
                a[i * n + j] -= v[i] * p[j] + p[i] * v[j];
            }
        }
        // Column k (and row k) now read α then zeros.
        a[lo * n + k] = alpha;
        a[k * n + lo] = alpha;
        for i in lo + 1..n {
            a[i * n + k] = 0.0;
            a[k * n + i] = 0.0;
        }
        // Q ← Q·H: each row r of Q loses 2·(r·v)·vᵀ.
        for r in 0..n {
            let row = &mut q[r * n..(r + 1) * n];
            let dot: f64 = (lo..n).map(|j| row[j] * v[j]).sum();
            for j in lo..n {
                row[j] -= 2.0 * dot * v[j];
            }
        }
    }
    let diag = (0..n).map(|i| a[i * n + i]).collect();
    let off = (0..n.saturating_sub(1)).map(|i| a[i * n + i + 1]).collect();
    (diag, off, q)
}

/// Implicit symmetric QR on a tridiagonal matrix (`diag`, `off`), applying every rotation to
/// the columns of `z` too. On return `diag` holds the eigenvalues and column k of `z` the
/// eigenvector of `diag[k]`.
///
/// Each step works on the lowest unreduced block l…m: a Wilkinson shift μ (the eigenvalue of
/// the trailing 2×2 block nearer T[m][m]) sets the first rotation, which creates a "bulge"
/// outside the band; each following rotation chases it one row down until it falls off the
/// end. The last off-diagonal entry then shrinks fast (cubically, in practice) and is set to
/// zero once negligible, and the block shrinks.
fn tridiagonal_qr(diag: &mut [f64], off: &mut [f64], z: &mut [f64], n: usize) -> Result<()> {
    if n < 2 {
        return Ok(());
    }
    // An off-diagonal entry is negligible beside its two diagonal neighbours, or beside the
    // whole matrix (for eigenvalues that are themselves ~0, as a low-rank covariance has).
    let scale = diag
        .iter()
        .chain(off.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = scale * f64::EPSILON * 1e-6;
    let negligible = move |off: f64, a: f64, b: f64| {
        off.abs() <= f64::EPSILON * (a.abs() + b.abs()) || off.abs() <= floor
    };
    let mut m = n - 1;
    let mut steps = 0;
    while m > 0 {
        if negligible(off[m - 1], diag[m - 1], diag[m]) {
            off[m - 1] = 0.0;
            m -= 1;
            continue;
        }
        let mut l = m - 1;
        while l > 0 && !negligible(off[l - 1], diag[l - 1], diag[l]) {
            l -= 1;
        }
        steps += 1;
        if steps > 50 * n {
            return Err(Error::shape(
                "eigen",
                "the QR iteration did not converge".to_string(),
            ));
        }
        // Wilkinson shift from the trailing 2×2 block.
        let d = (diag[m - 1] - diag[m]) / 2.0;
        let b = off[m - 1];
        let sign = if d >= 0.0 { 1.0 } else { -1.0 };
        let mu = diag[m] - b * b / (d + sign * d.hypot(b));
        // The first rotation zeroes the second entry of T's first column minus μ; the others
        // zero the bulge left by the one before.
        let mut x = diag[l] - mu;
        let mut y = off[l];
        for k in l..m {
            let r = x.hypot(y);
            let (c, s) = if r == 0.0 {
                (1.0, 0.0)
            } else {
                (x / r, -y / r)
            };
            if k > l {
                off[k - 1] = r;
            }
            // The 2×2 block at (k, k+1), rotated on both sides.
            let (p, q, e) = (diag[k], diag[k + 1], off[k]);
            diag[k] = c * c * p - 2.0 * c * s * e + s * s * q;
            diag[k + 1] = s * s * p + 2.0 * c * s * e + c * c * q;
            off[k] = c * s * (p - q) + (c * c - s * s) * e;
            // The next column: a new bulge at (k, k+2).
            if k + 1 < m {
                let below = off[k + 1];
                y = -s * below;
                off[k + 1] = c * below;
                x = off[k];
            }
            for row in z.chunks_exact_mut(n) {
                let (zk, zk1) = (row[k], row[k + 1]);
                row[k] = c * zk - s * zk1;
                row[k + 1] = s * zk + c * zk1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A random orthogonal matrix (Gram–Schmidt on random rows), row-major.
    fn random_orthogonal(n: usize, rng: &mut StdRng) -> Vec<f64> {
        let mut u: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        for i in 0..n {
            for j in 0..i {
                let dot: f64 = (0..n).map(|k| u[i * n + k] * u[j * n + k]).sum();
                for k in 0..n {
                    u[i * n + k] -= dot * u[j * n + k];
                }
            }
            let norm = (0..n).map(|k| u[i * n + k].powi(2)).sum::<f64>().sqrt();
            for k in 0..n {
                u[i * n + k] /= norm;
            }
        }
        u
    }

    /// A = Σ λᵢ·uᵢ·uᵢᵀ for the rows uᵢ of `u`.
    fn from_eigen(values: &[f64], u: &[f64], n: usize) -> Vec<f64> {
        let mut a = vec![0.0; n * n];
        for (i, &l) in values.iter().enumerate() {
            for r in 0..n {
                for c in 0..n {
                    a[r * n + c] += l * u[i * n + r] * u[i * n + c];
                }
            }
        }
        a
    }

    fn check_known(solve: fn(&[f64], usize) -> Result<Eigen>, n: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let u = random_orthogonal(n, &mut rng);
        // Distinct eigenvalues spanning six orders of magnitude, one negative, in no order.
        let mut values: Vec<f64> = (0..n)
            .map(|i| 10f64.powf(3.0 - 6.0 * i as f64 / n as f64))
            .collect();
        values[n / 2] = -2.5;
        let a = from_eigen(&values, &u, n);
        let e = solve(&a, n).expect("solves");
        let mut want = values.clone();
        want.sort_by(|a, b| b.total_cmp(a));
        for (got, want) in e.values.iter().zip(&want) {
            assert!((got - want).abs() < 1e-9 * 1e3, "{got} vs {want}");
        }
        // Each vector is ± the planted one, and A·v = λ·v.
        for (i, &l) in e.values.iter().enumerate() {
            let v = e.vector(i);
            let planted = values
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - l).abs().total_cmp(&(b.1 - l).abs()))
                .map(|(k, _)| k)
                .expect("some");
            let dot: f64 = (0..n).map(|k| v[k] * u[planted * n + k]).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-6, "vector {i}: |dot| {dot}");
            for r in 0..n {
                let av: f64 = (0..n).map(|c| a[r * n + c] * v[c]).sum();
                assert!(
                    (av - l * v[r]).abs() < 1e-8 * 1e3,
                    "row {r}: {av} vs {}",
                    l * v[r]
                );
            }
        }
    }

    #[test]
    fn jacobi_finds_planted_eigenvalues_and_vectors() {
        check_known(jacobi, 12, 1);
    }

    #[test]
    fn the_fast_path_finds_planted_eigenvalues_and_vectors() {
        for (n, seed) in [(1, 2), (2, 3), (3, 4), (12, 5), (40, 6)] {
            if n == 1 {
                let e = symmetric_eigen(&[4.0], 1).expect("1×1");
                assert_eq!((e.values[0], e.vectors[0].abs()), (4.0, 1.0));
                continue;
            }
            check_known(symmetric_eigen, n, seed);
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_reference_on_random_and_degenerate_matrices() {
        let mut rng = StdRng::seed_from_u64(9);
        let n = 30;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = rng.random_range(-1.0..1.0);
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        let (fast, slow) = (symmetric_eigen(&a, n).unwrap(), jacobi(&a, n).unwrap());
        for (f, s) in fast.values.iter().zip(&slow.values) {
            assert!((f - s).abs() < 1e-10, "{f} vs {s}");
        }
        // A covariance of rank 3 (many zero eigenvalues) and a diagonal matrix.
        let x: Vec<f64> = (0..3 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut cov = vec![0.0; n * n];
        for r in 0..3 {
            for i in 0..n {
                for j in 0..n {
                    cov[i * n + j] += x[r * n + i] * x[r * n + j];
                }
            }
        }
        let (fast, slow) = (symmetric_eigen(&cov, n).unwrap(), jacobi(&cov, n).unwrap());
        for (f, s) in fast.values.iter().zip(&slow.values) {
            assert!((f - s).abs() < 1e-10, "{f} vs {s}");
        }
        assert!(fast.values[3].abs() < 1e-10);
        let diag: Vec<f64> = (0..n * n)
            .map(|k| {
                if k % (n + 1) == 0 {
                    (k / n) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let e = symmetric_eigen(&diag, n).unwrap();
        assert_eq!(e.values[0], (n - 1) as f64);
    }

    #[test]
    fn bad_matrices_are_refused() {
        assert!(symmetric_eigen(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(symmetric_eigen(&[1.0, 2.0, 3.0, 1.0], 2).is_err());
        assert!(jacobi(&[1.0, f64::NAN, f64::NAN, 1.0], 2).is_err());
    }
}
