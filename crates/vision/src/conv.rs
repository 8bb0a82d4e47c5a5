//! Native-space 3×3×3 convolution and the per-voxel (1×1×1) linear map.
//!
//! One 3×3×3 kernel serves every resolution: along a coarse axis (see [`crate::schedule`]) only
//! its central slice is used, with no padding on that axis. With one coarse axis this is exactly
//! a 2-D convolution of every slice with the kernel's central slice, written as a 3-D
//! convolution with a 1×3×3-shaped kernel so no slice has to be folded into the batch.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::conv_op::{conv3d_same, conv3d_same_native};
use crate::init::SeededInit;

/// A 3×3×3 convolution whose kernel collapses to its central slice along coarse axes.
#[derive(Module, Debug)]
pub struct NativeConv {
    /// Kernel, `[c_out, c_in, 3, 3, 3]`.
    pub weight: Param<Tensor<5>>,
    /// Bias, `[c_out]`.
    pub bias: Param<Tensor<1>>,
}

impl NativeConv {
    /// A He-initialised convolution from `c_in` to `c_out` channels.
    pub(crate) fn new(c_in: usize, c_out: usize, init: &mut SeededInit, device: &Device) -> Self {
        Self {
            weight: init.he_uniform([c_out, c_in, 3, 3, 3], c_in * 27, device),
            bias: SeededInit::constant([c_out], 0.0, device),
        }
    }

    /// Convolves `x` (`[N, c_in, X, Y, Z]`), zero-padded to keep its size; `collapsed` marks the
    /// coarse axes (x, y, z) that use only the kernel's central slice.
    pub fn forward(&self, x: Tensor<5>, collapsed: [bool; 3]) -> Tensor<5> {
        native_conv3d(x, self.weight.val(), Some(self.bias.val()), collapsed)
    }
}

/// Size-preserving 3×3×3 convolution of `x` with `weight` (`[c_out, c_in, 3, 3, 3]`), using only
/// the central kernel slice and no padding along each axis marked in `collapsed`.
///
/// With `collapsed = [false, false, true]` this equals a 2-D convolution of every z-slice with
/// `weight[:, :, :, :, 1]` (tested in `tests/native_space.rs`).
pub fn native_conv3d(
    x: Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
    collapsed: [bool; 3],
) -> Tensor<5> {
    let mut kernel = weight;
    for (axis, coarse) in collapsed.into_iter().enumerate() {
        if coarse {
            // A 1-wide kernel axis gets no padding, so the slices never mix.
            kernel = kernel.narrow(2 + axis, 1, 1);
        }
    }
    conv3d_same(x, kernel, bias)
}

/// A per-voxel linear map over channels (a 1×1×1 convolution).
///
/// `x` is `[N, c_in, X, Y, Z]`, `weight` is `[c_out, c_in]`, `bias` is `[c_out]`.
pub fn pointwise(x: Tensor<5>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<5> {
    let [c_out, c_in] = weight.dims();
    // On the CPU a 1×1×1 convolution: the convolution kernels' one matrix product per tile
    // and their backward, where burn's batched matmul with a broadcast weight and its
    // autodiff took 13 % of a `small` training step.
    if let Some(out) = conv3d_same_native(
        x.clone(),
        weight.clone().reshape([c_out, c_in, 1, 1, 1]),
        bias.clone(),
    ) {
        return out;
    }
    pointwise_matmul(x, weight, bias)
}

/// [`pointwise`] as a batched matrix product (any backend; the reference it is tested against).
pub fn pointwise_matmul(x: Tensor<5>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<5> {
    let [n, c_in, sx, sy, sz] = x.dims();
    let [c_out, _] = weight.dims();
    let flat = x.reshape([n, c_in, sx * sy * sz]);
    // [1, c_out, c_in] @ [n, c_in, V] broadcasts the weight over the streams.
    let mut out = weight.unsqueeze::<3>().matmul(flat);
    if let Some(bias) = bias {
        out = out + bias.reshape([1, c_out, 1]);
    }
    out.reshape([n, c_out, sx, sy, sz])
}

/// A learned per-voxel linear map ([`pointwise`]) with its parameters.
#[derive(Module, Debug)]
pub struct Pointwise {
    /// Weight, `[c_out, c_in]`.
    pub weight: Param<Tensor<2>>,
    /// Bias, `[c_out]`.
    pub bias: Param<Tensor<1>>,
}

impl Pointwise {
    /// A map from `c_in` to `c_out` channels with variance-preserving initial weights.
    pub(crate) fn new(c_in: usize, c_out: usize, init: &mut SeededInit, device: &Device) -> Self {
        Self {
            weight: init.linear_uniform([c_out, c_in], c_in, device),
            bias: SeededInit::constant([c_out], 0.0, device),
        }
    }

    /// Applies the map to `x` (`[N, c_in, X, Y, Z]`).
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        pointwise(x, self.weight.val(), Some(self.bias.val()))
    }
}
