//! The ϕ head (DESIGN.md §4): a fully-connected layer to `phi_dim` (32) outputs followed by SiLU,
//! applied to the hidden state of each ϕ slot, the position that follows an emitted `<mod>`.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::init::SeededInit;

/// `ϕ = SiLU(W·h + b)` for hidden states `h` of width `d_model`.
#[derive(Module, Debug)]
pub struct PhiHead {
    /// `d → phi_dim` projection with bias.
    pub proj: Linear,
}

impl PhiHead {
    pub(crate) fn new(
        d_model: usize,
        phi_dim: usize,
        std: f64,
        rng: &mut SeededInit,
        device: &Device,
    ) -> Self {
        Self {
            proj: rng.linear_with_bias(d_model, phi_dim, std, device),
        }
    }

    /// ϕ vectors `[n, phi_dim]` from hidden states `[n, d_model]`.
    pub fn forward(&self, hidden: Tensor<2>) -> Tensor<2> {
        silu(self.proj.forward(hidden))
    }

    /// Length of each ϕ vector.
    pub fn phi_dim(&self) -> usize {
        self.proj.weight.dims()[1]
    }
}
