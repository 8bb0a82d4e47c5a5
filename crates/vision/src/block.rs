//! One level of the encoder or generator: convolutions with GroupNorm and SiLU, then ϕ mixing,
//! then stream attention.

use burn::module::Module;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::{Device, Tensor};

use crate::conv::NativeConv;
use crate::init::SeededInit;
use crate::norm_op::group_norm_silu;
use crate::phi_mixing::PhiMixing;
use crate::profile;
use crate::stream_attention::StreamAttention;

/// The layers of one resolution level.
#[derive(Module, Debug)]
pub struct LevelBlock {
    /// 3×3×3 native-space convolutions, applied in order.
    pub convs: Vec<NativeConv>,
    /// One GroupNorm after each convolution.
    pub norms: Vec<GroupNorm>,
    /// ϕ mixing (a plain fully-connected layer in the baselines).
    pub mixing: PhiMixing,
    /// Attention across streams.
    pub attention: StreamAttention,
}

/// Sizes of one [`LevelBlock`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockShape {
    pub c_in: usize,
    pub c_out: usize,
    pub convs: usize,
    pub group_size: usize,
    pub phi_dim: Option<usize>,
    pub phi_scale: bool,
    pub attention_width: usize,
}

impl LevelBlock {
    /// A block with freshly initialised weights.
    pub(crate) fn new(shape: BlockShape, init: &mut SeededInit, device: &Device) -> Self {
        let convs = (0..shape.convs)
            .map(|i| {
                let c_in = if i == 0 { shape.c_in } else { shape.c_out };
                NativeConv::new(c_in, shape.c_out, init, device)
            })
            .collect();
        let norms = (0..shape.convs)
            .map(|_| GroupNormConfig::new(shape.c_out / shape.group_size, shape.c_out).init(device))
            .collect();
        Self {
            convs,
            norms,
            mixing: PhiMixing::new(shape.c_out, shape.phi_dim, shape.phi_scale, init, device),
            attention: StreamAttention::new(shape.c_out, shape.attention_width, init, device),
        }
    }

    /// Runs the level on `x` (`[S, c_in, X, Y, Z]`); `collapsed` marks coarse axes, `phi` is
    /// `[S, phi_dim]` (ignored by the baselines).
    pub fn forward(
        &self,
        x: Tensor<5>,
        collapsed: [bool; 3],
        phi: Option<&Tensor<2>>,
    ) -> Tensor<5> {
        let mut x = x;
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            x = profile::time("conv", || conv.forward(x, collapsed));
            x = profile::time("groupnorm+silu", || group_norm_silu(x, norm));
        }
        let x = profile::time("phi mixing", || self.mixing.forward(x, phi));
        profile::time("stream attention", || self.attention.forward(x))
    }
}
