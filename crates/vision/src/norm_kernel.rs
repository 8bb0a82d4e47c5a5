//! CPU kernels of GroupNorm followed by SiLU, fused: forward and backward.
//!
//! Pure functions on contiguous f32 slices `[N, C, V]` (V voxels). burn composes GroupNorm from
//! about ten tensor operations, each a full pass over the volume forward and again backward;
//! here the forward is two reading passes and one writing pass per group, and the backward two.
//!
//! Forward per (sample n, group g): μ, σ² over the group's channels and voxels (f64 sums),
//! x̂ = (x − μ)/√(σ² + ε), y = γ_c·x̂ + β_c, out = y·sigmoid(y).
//! Backward: dy = dout·silu′(y), dγ_c = Σ dy·x̂, dβ_c = Σ dy, and with dx̂ = γ_c·dy,
//! dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / √(σ² + ε), the means taken over the group.

use rayon::prelude::*;

/// Shape of one fused GroupNorm + SiLU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormShape {
    /// Batch size N (streams).
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Groups (C divisible by it).
    pub groups: usize,
    /// Voxels per channel.
    pub voxels: usize,
    /// ε added to the variance.
    pub epsilon: f64,
}

impl NormShape {
    fn group_len(&self) -> usize {
        self.channels / self.groups * self.voxels
    }
}

/// The logistic function (shared by the fused SiLU kernels).
pub(crate) fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Mean and 1/√(σ² + ε) of every (n, g), two-pass in f64, as `[N·G]` pairs.
pub fn group_stats(x: &[f32], s: &NormShape) -> Vec<(f32, f32)> {
    x.par_chunks(s.group_len())
        .map(|values| {
            let count = values.len() as f64;
            let mean = values.iter().map(|&v| v as f64).sum::<f64>() / count;
            let var = values
                .iter()
                .map(|&v| (v as f64 - mean) * (v as f64 - mean))
                .sum::<f64>()
                / count;
            (mean as f32, (1.0 / (var + s.epsilon).sqrt()) as f32)
        })
        .collect()
}

/// What the forward pass returns.
pub struct NormForward {
    /// `silu(γ·x̂ + β)`, laid out as the input.
    pub out: Vec<f32>,
    /// Mean and 1/√(σ² + ε) of every (n, g), for the backward pass.
    pub stats: Vec<(f32, f32)>,
    /// sigmoid(γ·x̂ + β) per element when asked for (empty otherwise), so the backward pass need
    /// not evaluate `exp` again (it was most of the backward's time).
    pub sigmoids: Vec<f32>,
}

/// The forward pass, keeping the sigmoids when `keep_sigmoid` (for a backward pass).
pub fn group_norm_silu_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    s: &NormShape,
    keep_sigmoid: bool,
) -> NormForward {
    let stats = group_stats(x, s);
    let per_group = s.channels / s.groups;
    let mut out = vec![0.0f32; x.len()];
    let mut sigmoids = vec![0.0f32; if keep_sigmoid { x.len() } else { 0 }];
    let row_body = |row: usize, out: &mut [f32], x: &[f32], sig: Option<&mut [f32]>| {
        let (n, c) = (row / s.channels, row % s.channels);
        let (mean, rstd) = stats[n * s.groups + c / per_group];
        let (g, b) = (gamma[c], beta[c]);
        match sig {
            Some(sig) => {
                for ((o, &v), q) in out.iter_mut().zip(x).zip(sig) {
                    let y = (v - mean) * rstd * g + b;
                    *q = sigmoid(y);
                    *o = y * *q;
                }
            }
            None => {
                for (o, &v) in out.iter_mut().zip(x) {
                    let y = (v - mean) * rstd * g + b;
                    *o = y * sigmoid(y);
                }
            }
        }
    };
    if keep_sigmoid {
        out.par_chunks_mut(s.voxels)
            .zip(x.par_chunks(s.voxels))
            .zip(sigmoids.par_chunks_mut(s.voxels))
            .enumerate()
            .for_each(|(row, ((out, x), sig))| row_body(row, out, x, Some(sig)));
    } else {
        out.par_chunks_mut(s.voxels)
            .zip(x.par_chunks(s.voxels))
            .enumerate()
            .for_each(|(row, (out, x))| row_body(row, out, x, None));
    }
    NormForward {
        out,
        stats,
        sigmoids,
    }
}

/// Gradients `(dx, dγ, dβ)` from the output gradient `grad`, the input `x`, the statistics and
/// the sigmoids the forward pass kept.
pub fn group_norm_silu_backward(
    x: &[f32],
    grad: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[(f32, f32)],
    sigmoids: &[f32],
    s: &NormShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(sigmoids.len(), x.len(), "one kept sigmoid per element");
    let per_group = s.channels / s.groups;
    let group_len = s.group_len();
    let mut dx = vec![0.0f32; x.len()];
    // Per (n, g): dx written in place, and the group's per-channel (dγ, dβ) returned.
    let partials: Vec<Vec<(f64, f64)>> = dx
        .par_chunks_mut(group_len)
        .zip(x.par_chunks(group_len))
        .zip(grad.par_chunks(group_len))
        .zip(sigmoids.par_chunks(group_len))
        .enumerate()
        .map(|(index, (((dx, x), grad), sigmoids))| {
            let (mean, rstd) = stats[index];
            let first_channel = (index % s.groups) * per_group;
            let mut channel_sums = Vec::with_capacity(per_group);
            let (mut sum_dxhat, mut sum_dxhat_xhat) = (0.0f64, 0.0f64);
            // Pass 1: dy into dx (as dx̂), and the sums.
            for k in 0..per_group {
                let c = first_channel + k;
                let (g, b) = (gamma[c], beta[c]);
                let range = k * s.voxels..(k + 1) * s.voxels;
                let (mut dgamma, mut dbeta) = (0.0f64, 0.0f64);
                for (((d, &v), &go), &sig) in dx[range.clone()]
                    .iter_mut()
                    .zip(&x[range.clone()])
                    .zip(&grad[range.clone()])
                    .zip(&sigmoids[range])
                {
                    let xhat = (v - mean) * rstd;
                    let y = xhat * g + b;
                    let dy = go * sig * (1.0 + y * (1.0 - sig));
                    dgamma += (dy * xhat) as f64;
                    dbeta += dy as f64;
                    let dxhat = dy * g;
                    sum_dxhat += dxhat as f64;
                    sum_dxhat_xhat += (dxhat * xhat) as f64;
                    *d = dxhat;
                }
                channel_sums.push((dgamma, dbeta));
            }
            // Pass 2: dx from dx̂ and the group means.
            let count = group_len as f64;
            let mean_dxhat = (sum_dxhat / count) as f32;
            let mean_dxhat_xhat = (sum_dxhat_xhat / count) as f32;
            for (d, &v) in dx.iter_mut().zip(x) {
                let xhat = (v - mean) * rstd;
                *d = (*d - mean_dxhat - xhat * mean_dxhat_xhat) * rstd;
            }
            channel_sums
        })
        .collect();
    let mut dgamma = vec![0.0f64; s.channels];
    let mut dbeta = vec![0.0f64; s.channels];
    for (index, sums) in partials.iter().enumerate() {
        let first_channel = (index % s.groups) * per_group;
        for (k, (dg, db)) in sums.iter().enumerate() {
            dgamma[first_channel + k] += dg;
            dbeta[first_channel + k] += db;
        }
    }
    (
        dx,
        dgamma.into_iter().map(|v| v as f32).collect(),
        dbeta.into_iter().map(|v| v as f32).collect(),
    )
}
