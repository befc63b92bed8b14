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
pub fn channel_stats(x: &[f32], n: usize, c: usize, inner: usize, mean: &mut [f32], var: &mut [f32]) {
    let m = (n * inner) as f64;
    for ch in 0..c {
        let blocks = || (0..n).map(move |img| &x[(img * c + ch) * inner..][..inner]);
        let mu = blocks().map(crate::reduce::sum).sum::<f64>() / m;
        let sq: f64 = blocks().flat_map(|b| b.iter()).map(|&v| (v as f64 - mu).powi(2)).sum();
        mean[ch] = mu as f32;
        var[ch] = (sq / m) as f32;
    }
}

/// y ← γ·(x − μ)·inv_std + β per channel, with inv_std = 1/√(σ² + ε) precomputed.
pub fn normalize(x: &[f32], n: usize, c: usize, inner: usize, mean: &[f32], inv_std: &[f32], gamma: &[f32], beta: &[f32], y: &mut [f32]) {
    for (k, (y_block, x_block)) in y.chunks_exact_mut(inner).zip(x.chunks_exact(inner)).enumerate() {
        let ch = k % c;
        let (scale, shift) = (gamma[ch] * inv_std[ch], beta[ch] - gamma[ch] * inv_std[ch] * mean[ch]);
        for (o, &v) in y_block.iter_mut().zip(x_block) {
            *o = v * scale + shift;
        }
    }
    debug_assert_eq!(x.len(), n * c * inner);
}

/// Gradients of [`normalize`]: d_γ, d_β always; d_x for training (`training = true`, μ and
/// σ² from this batch) or evaluation mode (running statistics, constants).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    n: usize,
    c: usize,
    inner: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    d_y: &[f32],
    training: bool,
    d_x: Option<&mut [f32]>,
    d_gamma: &mut [f32],
    d_beta: &mut [f32],
) {
    let blocks = |ch: usize| (0..n).map(move |img| (img * c + ch) * inner..(img * c + ch + 1) * inner);
    for ch in 0..c {
        let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
        for range in blocks(ch) {
            for (&g, &v) in d_y[range.clone()].iter().zip(&x[range]) {
                sum_g += g as f64;
                sum_gx += g as f64 * ((v - mean[ch]) * inv_std[ch]) as f64;
            }
        }
        d_beta[ch] = sum_g as f32;
        d_gamma[ch] = sum_gx as f32;
    }
    let Some(d_x) = d_x else { return };
    let m = (n * inner) as f32;
    for ch in 0..c {
        let k = gamma[ch] * inv_std[ch];
        for range in blocks(ch) {
            let (d_x_block, d_y_block, x_block) = (&mut d_x[range.clone()], &d_y[range.clone()], &x[range]);
            if training {
                let (mean_g, mean_gx) = (d_beta[ch] / m, d_gamma[ch] / m);
                for ((o, &g), &v) in d_x_block.iter_mut().zip(d_y_block).zip(x_block) {
                    let x_hat = (v - mean[ch]) * inv_std[ch];
                    *o = k * (g - mean_g - x_hat * mean_gx);
                }
            } else {
                for (o, &g) in d_x_block.iter_mut().zip(d_y_block) {
                    *o = k * g;
                }
            }
        }
    }
}
