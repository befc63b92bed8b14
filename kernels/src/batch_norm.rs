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
    debug_assert_eq!(x.len(), layout.n * layout.c * layout.inner);
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
