//! Batch normalisation: standardise each channel over the batch, then rescale.
//!
//! Training mode, per channel c over all N·inner values of the batch:
//! μ = mean(x), σ² = mean((x − μ)²) (biased), x̂ = (x − μ)/√(σ² + ε), y = γ·x̂ + β.
//! Evaluation mode uses running estimates of μ and σ² instead of the batch's.
//!
//! Backward (training), with M = N·inner values per channel:
//! d_β = Σ d_y, d_γ = Σ d_y ⊙ x̂, d_x = γ/(M·√(σ²+ε)) · (M·d_y − d_β − x̂·d_γ).
//! The two subtracted terms are there because μ and σ² themselves depend on every x.
//! In evaluation mode μ and σ² are constants, so d_x = γ/√(σ²+ε) · d_y.

/// Per-channel mean and biased variance over batch and space, in f64.
///
/// # Shapes
/// x (N, C, inner) → mean (C), var (C).
pub fn channel_stats(layout: Channels, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
    layout.check(
        "batch_norm::channel_stats",
        &[("x", x.len())],
        &[("mean", mean.len()), ("var", var.len())],
    );
    let m = (layout.n * layout.inner) as f64;
    for ch in 0..layout.c {
        let blocks = || layout.blocks(ch).map(|r| &x[r]);
        let mu = blocks().map(crate::reduce::sum).sum::<f64>() / m;
        let sq: f64 = blocks()
            .flat_map(|b| b.iter())
            .map(|&v| (v as f64 - mu).powi(2))
            .sum();
        mean[ch] = mu as f32;
        var[ch] = (sq / m) as f32;
    }
}

/// How a tensor is laid out for batch norm: N samples, C channels, `inner` values per
/// channel per sample (1 for BatchNorm1d, H·W for BatchNorm2d).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    /// Batch size N.
    pub n: usize,
    /// Channels C.
    pub c: usize,
    /// Values per channel per sample.
    pub inner: usize,
}

impl Channels {
    /// Panics unless every tensor slice holds N·C·inner values and every per-channel slice C.
    #[track_caller]
    fn check(self, kernel: &str, tensors: &[(&str, usize)], per_channel: &[(&str, usize)]) {
        let all = self.n * self.c * self.inner;
        let lens: Vec<(&str, usize, usize)> = tensors
            .iter()
            .map(|&(name, got)| (name, got, all))
            .chain(per_channel.iter().map(|&(name, got)| (name, got, self.c)))
            .collect();
        crate::check_lens(kernel, &lens);
    }

    /// The flat ranges holding channel `ch`, one per sample.
    fn blocks(self, ch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
        (0..self.n)
            .map(move |img| (img * self.c + ch) * self.inner..(img * self.c + ch + 1) * self.inner)
    }
}

/// The per-channel numbers that define one normalisation: y = γ·(x − μ)·inv_std + β.
#[derive(Clone, Copy, Debug)]
pub struct Normalization<'a> {
    /// μ per channel.
    pub mean: &'a [f32],
    /// 1/√(σ² + ε) per channel.
    pub inv_std: &'a [f32],
    /// γ per channel.
    pub gamma: &'a [f32],
}

/// y ← γ·(x − μ)·inv_std + β per channel.
pub fn normalize(
    layout: Channels,
    norm: Normalization<'_>,
    beta: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    layout.check(
        "batch_norm::normalize",
        &[("x", x.len()), ("y", y.len())],
        &[
            ("mean", norm.mean.len()),
            ("inv_std", norm.inv_std.len()),
            ("gamma", norm.gamma.len()),
            ("beta", beta.len()),
        ],
    );
    for (k, (y_block, x_block)) in y
        .chunks_exact_mut(layout.inner)
        .zip(x.chunks_exact(layout.inner))
        .enumerate()
    {
        let ch = k % layout.c;
        let scale = norm.gamma[ch] * norm.inv_std[ch];
        let shift = beta[ch] - scale * norm.mean[ch];
        for (o, &v) in y_block.iter_mut().zip(x_block) {
            *o = v * scale + shift;
        }
    }
}

/// Where [`backward`] writes: d_x (if wanted), d_γ and d_β.
#[derive(Debug)]
pub struct Grads<'a> {
    /// ∂L/∂x, or `None` when the input needs no gradient.
    pub d_x: Option<&'a mut [f32]>,
    /// ∂L/∂γ per channel.
    pub d_gamma: &'a mut [f32],
    /// ∂L/∂β per channel.
    pub d_beta: &'a mut [f32],
}

/// Gradients of [`normalize`]: d_γ, d_β always; d_x for training (`training = true`, μ and
/// σ² from this batch) or evaluation mode (running statistics, constants).
pub fn backward(
    layout: Channels,
    norm: Normalization<'_>,
    x: &[f32],
    d_y: &[f32],
    training: bool,
    out: Grads<'_>,
) {
    let Grads {
        d_x,
        d_gamma,
        d_beta,
    } = out;
    let d_x_len = d_x.as_ref().map_or(x.len(), |d| d.len());
    layout.check(
        "batch_norm::backward",
        &[("x", x.len()), ("d_y", d_y.len()), ("d_x", d_x_len)],
        &[
            ("mean", norm.mean.len()),
            ("inv_std", norm.inv_std.len()),
            ("gamma", norm.gamma.len()),
            ("d_gamma", d_gamma.len()),
            ("d_beta", d_beta.len()),
        ],
    );
    for ch in 0..layout.c {
        let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
        for range in layout.blocks(ch) {
            for (&g, &v) in d_y[range.clone()].iter().zip(&x[range]) {
                sum_g += g as f64;
                sum_gx += g as f64 * ((v - norm.mean[ch]) * norm.inv_std[ch]) as f64;
            }
        }
        d_beta[ch] = sum_g as f32;
        d_gamma[ch] = sum_gx as f32;
    }
    let Some(d_x) = d_x else { return };
    let m = (layout.n * layout.inner) as f32;
    for ch in 0..layout.c {
        let (mean, inv_std) = (norm.mean[ch], norm.inv_std[ch]);
        let k = norm.gamma[ch] * inv_std;
        let (mean_g, mean_gx) = (d_beta[ch] / m, d_gamma[ch] / m);
        for range in layout.blocks(ch) {
            let (d_x_block, d_y_block, x_block) =
                (&mut d_x[range.clone()], &d_y[range.clone()], &x[range]);
            for ((o, &g), &v) in d_x_block.iter_mut().zip(d_y_block).zip(x_block) {
                *o = if training {
                    k * (g - mean_g - (v - mean) * inv_std * mean_gx)
                } else {
                    k * g
                };
            }
        }
    }
}

/// The reference: the definitions above as plain loops over (sample, channel, position) in f64,
/// written to be read. The fast functions of this file must agree with them.
pub mod naive {
    use super::Channels;

    fn at(l: Channels, n: usize, c: usize, i: usize) -> usize {
        (n * l.c + c) * l.inner + i
    }

    /// Per-channel mean and biased variance, by the definition.
    pub fn channel_stats(l: Channels, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let m = (l.n * l.inner) as f64;
        let mut mean = vec![0.0; l.c];
        let mut var = vec![0.0; l.c];
        for c in 0..l.c {
            for n in 0..l.n {
                for i in 0..l.inner {
                    mean[c] += x[at(l, n, c, i)] as f64 / m;
                }
            }
            for n in 0..l.n {
                for i in 0..l.inner {
                    var[c] += (x[at(l, n, c, i)] as f64 - mean[c]).powi(2) / m;
                }
            }
        }
        (mean, var)
    }

    /// y = γ·(x − μ)/√(σ² + ε) + β with the given per-channel μ and σ².
    pub fn normalize(
        l: Channels,
        x: &[f32],
        (mean, var): (&[f64], &[f64]),
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
    ) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for n in 0..l.n {
            for c in 0..l.c {
                for i in 0..l.inner {
                    let k = at(l, n, c, i);
                    let x_hat = (x[k] as f64 - mean[c]) / (var[c] + eps).sqrt();
                    y[k] = gamma[c] as f64 * x_hat + beta[c] as f64;
                }
            }
        }
        y
    }

    /// (d_x, d_γ, d_β) of L = Σ d_y ⊙ y. Training mode: μ and σ² are this batch's, so every x
    /// reaches every y of its channel through them; d_x is then the textbook three-term formula
    /// d_x = γ/(M·σ) · (M·d_y − Σd_y − x̂·Σ(d_y ⊙ x̂)). Evaluation mode: μ and σ² are constants.
    pub fn backward(
        l: Channels,
        x: &[f32],
        d_y: &[f32],
        (mean, var): (&[f64], &[f64]),
        gamma: &[f32],
        eps: f64,
        training: bool,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let m = (l.n * l.inner) as f64;
        let (mut d_x, mut d_gamma, mut d_beta) =
            (vec![0.0; x.len()], vec![0.0; l.c], vec![0.0; l.c]);
        for c in 0..l.c {
            let sigma = (var[c] + eps).sqrt();
            let x_hat = |k: usize| (x[k] as f64 - mean[c]) / sigma;
            for n in 0..l.n {
                for i in 0..l.inner {
                    let k = at(l, n, c, i);
                    d_beta[c] += d_y[k] as f64;
                    d_gamma[c] += d_y[k] as f64 * x_hat(k);
                }
            }
            for n in 0..l.n {
                for i in 0..l.inner {
                    let k = at(l, n, c, i);
                    let g = d_y[k] as f64;
                    d_x[k] = if training {
                        gamma[c] as f64 / (m * sigma) * (m * g - d_beta[c] - x_hat(k) * d_gamma[c])
                    } else {
                        gamma[c] as f64 / sigma * g
                    };
                }
            }
        }
        (d_x, d_gamma, d_beta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, uniform};

    const EPS: f32 = 1e-5;

    fn as_f32(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&a| a as f32).collect()
    }

    /// Runs the fast kernels on `layout`, returning (y, d_x, d_γ, d_β).
    fn fast(
        l: Channels,
        x: &[f32],
        d_y: &[f32],
        gamma: &[f32],
        beta: &[f32],
        training: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut mean, mut var) = (vec![0.0; l.c], vec![0.0; l.c]);
        channel_stats(l, x, &mut mean, &mut var);
        if !training {
            // Evaluation mode normalises with given statistics; use fixed made-up ones.
            mean = (0..l.c).map(|c| 0.1 * c as f32).collect();
            var = (0..l.c).map(|c| 0.5 + 0.25 * c as f32).collect();
        }
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + EPS).sqrt()).collect();
        let norm = Normalization {
            mean: &mean,
            inv_std: &inv_std,
            gamma,
        };
        let mut y = vec![f32::NAN; x.len()];
        normalize(l, norm, beta, x, &mut y);
        let (mut d_x, mut d_gamma, mut d_beta) =
            (vec![f32::NAN; x.len()], vec![0.0; l.c], vec![0.0; l.c]);
        let grads = Grads {
            d_x: Some(&mut d_x),
            d_gamma: &mut d_gamma,
            d_beta: &mut d_beta,
        };
        backward(l, norm, x, d_y, training, grads);
        (y, d_x, d_gamma, d_beta)
    }

    #[test]
    fn fast_kernels_match_the_naive_definitions() {
        crate::testing::on_every_isa(fast_kernels_match_the_naive_definitions_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn fast_kernels_match_the_naive_definitions_once() {
        for (case, &(n, c, inner)) in [(1, 1, 2), (2, 3, 1), (4, 5, 7), (3, 2, 49), (8, 6, 196)]
            .iter()
            .enumerate()
        {
            let l = Channels { n, c, inner };
            let len = n * c * inner;
            // Shifted and scaled inputs: statistics far from (0, 1) exercise the formulas.
            let x: Vec<f32> = uniform(len, case as u64)
                .iter()
                .map(|v| 3.0 * v + 1.5)
                .collect();
            let d_y = uniform(len, 10 + case as u64);
            let gamma: Vec<f32> = uniform(c, 20 + case as u64)
                .iter()
                .map(|v| v + 1.2)
                .collect();
            let beta = uniform(c, 30 + case as u64);
            for training in [true, false] {
                let (y, d_x, d_gamma, d_beta) = fast(l, &x, &d_y, &gamma, &beta, training);
                let stats = if training {
                    naive::channel_stats(l, &x)
                } else {
                    (
                        (0..c).map(|k| (0.1 * k as f32) as f64).collect(),
                        (0..c).map(|k| (0.5 + 0.25 * k as f32) as f64).collect(),
                    )
                };
                let stats = (stats.0.as_slice(), stats.1.as_slice());
                let want_y = naive::normalize(l, &x, stats, &gamma, &beta, EPS as f64);
                let (want_dx, want_dg, want_db) =
                    naive::backward(l, &x, &d_y, stats, &gamma, EPS as f64, training);
                let what = format!("{l:?} training={training}");
                assert_close(&y, &as_f32(&want_y), 1e-5, &format!("y, {what}"));
                assert_close(&d_x, &as_f32(&want_dx), 1e-4, &format!("d_x, {what}"));
                assert_close(
                    &d_gamma,
                    &as_f32(&want_dg),
                    1e-4,
                    &format!("d_gamma, {what}"),
                );
                assert_close(&d_beta, &as_f32(&want_db), 1e-5, &format!("d_beta, {what}"));
            }
        }
    }

    #[test]
    fn the_naive_backward_is_the_derivative_of_the_naive_forward() {
        // L(x) = Σ r ⊙ normalize(x) with batch statistics: central differences in f64 against
        // the three-term formula, so the reference itself is checked, not just copied.
        let l = Channels {
            n: 3,
            c: 2,
            inner: 5,
        };
        let x = uniform(30, 1);
        let r = uniform(30, 2);
        let (gamma, beta) = ([1.3f32, 0.7], [0.2f32, -0.4]);
        let loss = |x: &[f32]| {
            let (m, v) = naive::channel_stats(l, x);
            let y = naive::normalize(l, x, (&m, &v), &gamma, &beta, 1e-5);
            y.iter().zip(&r).map(|(a, &b)| a * b as f64).sum::<f64>()
        };
        let (m, v) = naive::channel_stats(l, &x);
        let (d_x, _, _) = naive::backward(l, &x, &r, (&m, &v), &gamma, 1e-5, true);
        for k in 0..x.len() {
            let h = 1e-3f32;
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[k] += h;
            minus[k] -= h;
            let h = (plus[k] - minus[k]) as f64; // the step as f32 actually stored it
            let numeric = (loss(&plus) - loss(&minus)) / h;
            assert!(
                (numeric - d_x[k]).abs() < 1e-3 * (1.0 + d_x[k].abs()),
                "element {k}: {numeric} vs {}",
                d_x[k]
            );
        }
    }

    #[test]
    #[should_panic(expected = "batch_norm::normalize: y holds 5 values, the sizes need 6")]
    fn a_wrong_sized_slice_is_refused_in_release_builds_too() {
        let l = Channels {
            n: 1,
            c: 2,
            inner: 3,
        };
        let ones = [1.0f32; 2];
        let norm = Normalization {
            mean: &ones,
            inv_std: &ones,
            gamma: &ones,
        };
        normalize(l, norm, &ones, &[0.0; 6], &mut [0.0; 5]);
    }
}
