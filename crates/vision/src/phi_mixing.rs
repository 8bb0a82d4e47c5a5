//! ϕ mixing: injecting the agent's latent instruction ϕ_s into every voxel's features.
//!
//! The paper concatenates ϕ_s to the features a_s of stream s on the channel axis and applies a
//! fully-connected layer back to c channels: W·[a; ϕ] + b. Splitting W = [W_a | W_ϕ] gives
//! W_a·a + (W_ϕ·ϕ_s + b): a 1×1×1 convolution of the features plus one bias vector per stream.
//! That is the same function with the same parameters, but ϕ is multiplied once per stream
//! instead of once per voxel, and no (c + 32)-channel copy of the volume is made.
//!
//! With `phi_scale` (FiLM) ϕ also scales the mixed features per channel by the gain
//! `g_s = 1 + tanh(W_γ·ϕ_s / √phi_dim)`: `silu(g_s ⊙ W_a·a_s + W_ϕ·ϕ_s + b)`. The gain is folded
//! into the feature weight, `diag(g_s)·W_a`, one matrix per stream, so it too costs nothing per
//! voxel. `W_γ` starts at zero: a network given FiLM keeps the function it had without it. The
//! gain is bounded to (0, 2) and its input scaled by 1/√phi_dim because the unbounded
//! `1 + W_γ·ϕ_s` moved every channel's gain by up to phi_dim Adam steps at once: in a 4-target
//! experiment (`train/examples/film_yield.rs`, lr 4e-4) it collapsed the network to empty
//! masks within 300 steps, where the bias-only network learnt.

use burn::module::{Module, Param};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};

use crate::bias_silu::bias_silu;
use crate::conv::pointwise;
use crate::init::SeededInit;

/// The ϕ-mixing layer of one level: `silu(W_a·a_s + W_ϕ·ϕ_s + b)` at every voxel.
///
/// Built without `W_ϕ` it is the plain fully-connected layer of the single-task baselines.
#[derive(Module, Debug)]
pub struct PhiMixing {
    /// Feature part of the fully-connected weight, `[c, c]`.
    pub feature_weight: Param<Tensor<2>>,
    /// ϕ part of the fully-connected weight, `[c, phi_dim]`; absent in the baselines.
    pub phi_weight: Option<Param<Tensor<2>>>,
    /// FiLM weight `W_γ`, `[c, phi_dim]`: ϕ's per-channel gain of the mixed features; absent
    /// unless the network was built with `phi_scale`.
    pub phi_scale_weight: Option<Param<Tensor<2>>>,
    /// Bias, `[c]`.
    pub bias: Param<Tensor<1>>,
}

impl PhiMixing {
    /// A mixing layer for `channels` features and a `phi_dim`-wide ϕ (`None`: no ϕ input);
    /// `phi_scale` adds the FiLM scale (ignored without ϕ).
    pub(crate) fn new(
        channels: usize,
        phi_dim: Option<usize>,
        phi_scale: bool,
        init: &mut SeededInit,
        device: &Device,
    ) -> Self {
        // The fan-in of the concatenated layer is c + phi_dim; both parts share its scale.
        let fan_in = channels + phi_dim.unwrap_or(0);
        Self {
            feature_weight: init.he_uniform([channels, channels], fan_in, device),
            phi_weight: phi_dim.map(|p| init.he_uniform([channels, p], fan_in, device)),
            phi_scale_weight: phi_dim
                .filter(|_| phi_scale)
                .map(|p| SeededInit::constant([channels, p], 0.0, device)),
            bias: SeededInit::constant([channels], 0.0, device),
        }
    }

    /// Adds the FiLM scale `W_γ = 0` where the layer has ϕ but no scale yet (the function is
    /// unchanged); a layer without ϕ, or with a scale already, is left as it is.
    pub fn add_phi_scale(&mut self) {
        if self.phi_scale_weight.is_some() {
            return;
        }
        if let Some(phi_weight) = &self.phi_weight {
            let weight = phi_weight.val();
            let zeros = Tensor::<2>::zeros(weight.dims(), &weight.device());
            self.phi_scale_weight = Some(Param::from_tensor(zeros));
        }
    }

    /// The per-stream bias `W_ϕ·ϕ_s + b` as `[S, c]`; without ϕ (or without `W_ϕ`) just `b`.
    pub fn stream_bias(&self, phi: Option<&Tensor<2>>) -> Tensor<2> {
        let bias = self.bias.val().unsqueeze::<2>();
        match (&self.phi_weight, phi) {
            (Some(weight), Some(phi)) => phi.clone().matmul(weight.val().transpose()) + bias,
            _ => bias,
        }
    }

    /// What ϕ does to every voxel of each stream: the feature weight (one `[c, c]` matrix
    /// shared by the streams, or one per stream with FiLM) and the bias `[S, c]`.
    pub fn stream_conditioning(&self, phi: Option<&Tensor<2>>) -> StreamConditioning {
        let feature = self.feature_weight.val();
        let weights = match (&self.phi_scale_weight, phi) {
            (Some(scale), Some(phi)) => {
                let [channels, _] = feature.dims();
                // [S, c]: the gain, then each stream's rows of W_a scaled by it.
                let [_, phi_dim] = phi.dims();
                let gain = tanh(
                    phi.clone()
                        .matmul(scale.val().transpose())
                        .div_scalar((phi_dim as f32).sqrt()),
                ) + 1.0;
                let streams = gain.dims()[0];
                (0..streams)
                    .map(|s| {
                        let row = gain.clone().narrow(0, s, 1).reshape([channels, 1]);
                        feature.clone() * row
                    })
                    .collect()
            }
            _ => vec![feature],
        };
        StreamConditioning {
            weights,
            bias: self.stream_bias(phi),
        }
    }

    /// Mixes `a` (`[S, c, X, Y, Z]`) with ϕ (`[S, phi_dim]`, required when built with ϕ).
    pub fn forward(&self, a: Tensor<5>, phi: Option<&Tensor<2>>) -> Tensor<5> {
        let conditioning = self.stream_conditioning(phi);
        Self::forward_conditioned(a, &conditioning)
    }

    /// [`Self::forward`] with a precomputed [`Self::stream_conditioning`] (reused across slabs).
    pub fn forward_conditioned(a: Tensor<5>, conditioning: &StreamConditioning) -> Tensor<5> {
        let mixed = match conditioning.weights.as_slice() {
            [shared] => pointwise(a, shared.clone(), None),
            // One weight per stream (FiLM): ϕ was checked against the streams, so they pair up.
            per_stream => Tensor::cat(
                per_stream
                    .iter()
                    .enumerate()
                    .map(|(s, weight)| pointwise(a.clone().narrow(0, s, 1), weight.clone(), None))
                    .collect(),
                0,
            ),
        };
        bias_silu(mixed, conditioning.bias.clone())
    }
}

/// ϕ's effect on one mixing layer for a set of streams ([`PhiMixing::stream_conditioning`]).
#[derive(Debug, Clone)]
pub struct StreamConditioning {
    /// The feature weight `[c, c]`: one shared by every stream, or one per stream (FiLM).
    pub weights: Vec<Tensor<2>>,
    /// The per-stream bias `W_ϕ·ϕ_s + b`, `[S, c]`.
    pub bias: Tensor<2>,
}
