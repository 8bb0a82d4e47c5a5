//! ϕ mixing: injecting the agent's latent instruction ϕ_s into every voxel's features.
//!
//! The paper concatenates ϕ_s to the features a_s of stream s on the channel axis and applies a
//! fully-connected layer back to c channels: W·[a; ϕ] + b. Splitting W = [W_a | W_ϕ] gives
//! W_a·a + (W_ϕ·ϕ_s + b): a 1×1×1 convolution of the features plus one bias vector per stream.
//! That is the same function with the same parameters, but ϕ is multiplied once per stream
//! instead of once per voxel, and no (c + 32)-channel copy of the volume is made.

use burn::module::{Module, Param};
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
    /// Bias, `[c]`.
    pub bias: Param<Tensor<1>>,
}

impl PhiMixing {
    /// A mixing layer for `channels` features and a `phi_dim`-wide ϕ (`None`: no ϕ input).
    pub(crate) fn new(
        channels: usize,
        phi_dim: Option<usize>,
        init: &mut SeededInit,
        device: &Device,
    ) -> Self {
        // The fan-in of the concatenated layer is c + phi_dim; both parts share its scale.
        let fan_in = channels + phi_dim.unwrap_or(0);
        Self {
            feature_weight: init.he_uniform([channels, channels], fan_in, device),
            phi_weight: phi_dim.map(|p| init.he_uniform([channels, p], fan_in, device)),
            bias: SeededInit::constant([channels], 0.0, device),
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

    /// Mixes `a` (`[S, c, X, Y, Z]`) with ϕ (`[S, phi_dim]`, required when built with ϕ).
    pub fn forward(&self, a: Tensor<5>, phi: Option<&Tensor<2>>) -> Tensor<5> {
        let stream_bias = self.stream_bias(phi);
        self.forward_with_bias(a, stream_bias)
    }

    /// [`Self::forward`] with a precomputed [`Self::stream_bias`] (reused across slabs).
    pub fn forward_with_bias(&self, a: Tensor<5>, stream_bias: Tensor<2>) -> Tensor<5> {
        let mixed = pointwise(a, self.feature_weight.val(), None);
        bias_silu(mixed, stream_bias)
    }
}
