//! Trilinear upsampling by 2 along chosen axes of a 5-D tensor.
//!
//! burn 0.22 interpolates 4-D tensors only, and its bilinear backward is missing on the GPU
//! backends, so each axis is upsampled separately from shifted copies: output 2i is
//! 0.75·x[i] + 0.25·x[i−1] and output 2i+1 is 0.75·x[i] + 0.25·x[i+1], with the neighbours
//! clamped at the edges. That is PyTorch's `interpolate(scale_factor=2, mode="trilinear",
//! align_corners=False)` exactly, and separable, so per-axis passes compose to trilinear.
//!
//! On the CPU backend (f32) the whole upsampling is one burn operation with its own kernels,
//! forward and backward (the adjoint of the same linear map): composed from tensor operations
//! it made ~20 full-tensor passes and as many autodiff nodes, 7 % of a training step of the
//! `small` net at 64³ forward and more backward. Elsewhere the composed form runs.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor, Flex, TensorMetadata};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::profile;

/// Upsamples `x` (`[N, C, X, Y, Z]`) by `factors` (each 1 or 2) per axis, trilinearly.
pub fn upsample_linear_x2(x: Tensor<5>, factors: [usize; 3]) -> Tensor<5> {
    if factors.iter().all(|&f| f == 1) {
        return x;
    }
    let fast = if x.is_autodiff() {
        tracked::<NoCheckpointing>(&x, factors)
            .or_else(|| tracked::<BalancedCheckpointing>(&x, factors))
    } else {
        untracked(&x, factors)
    };
    fast.unwrap_or_else(|| upsample_linear_x2_composed(x, factors))
}

/// [`upsample_linear_x2`] composed from burn tensor operations (any backend; the reference
/// the fused kernels are tested against).
pub fn upsample_linear_x2_composed(x: Tensor<5>, factors: [usize; 3]) -> Tensor<5> {
    let mut out = x;
    for (axis, factor) in factors.iter().enumerate() {
        if *factor > 1 {
            out = upsample_axis(out, 2 + axis);
        }
    }
    out
}

/// Doubles dimension `dim` of `x` by linear interpolation (half-pixel centres, clamped edges).
fn upsample_axis(x: Tensor<5>, dim: usize) -> Tensor<5> {
    let dims = x.dims();
    let n = dims[dim];
    let (previous, next) = if n == 1 {
        (x.clone(), x.clone())
    } else {
        let first = x.clone().narrow(dim, 0, 1);
        let last = x.clone().narrow(dim, n - 1, 1);
        (
            Tensor::cat(vec![first, x.clone().narrow(dim, 0, n - 1)], dim),
            Tensor::cat(vec![x.clone().narrow(dim, 1, n - 1), last], dim),
        )
    };
    let centre = x.mul_scalar(0.75);
    let even = centre.clone() + previous.mul_scalar(0.25);
    let odd = centre + next.mul_scalar(0.25);
    let mut out_dims = dims;
    out_dims[dim] = 2 * n;
    Tensor::stack::<6>(vec![even, odd], dim + 1).reshape(out_dims)
}

/// The axes doubled, as dimension indices of the 5-D tensor.
fn doubled_dims(factors: [usize; 3]) -> impl DoubleEndedIterator<Item = usize> {
    (0..3).filter(move |&a| factors[a] > 1).map(|a| a + 2)
}

/// `(outer, n, inner)` of dimension `dim` of `shape` (row-major).
fn split(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// Doubles the middle axis of `input` laid out as `[outer, n, inner]`: output `2i` is
/// 0.75·x[i] + 0.25·x[i−1], `2i+1` is 0.75·x[i] + 0.25·x[i+1], edges clamped (the arithmetic
/// of [`upsample_axis`], so the results are the same to the bit).
fn double_axis(input: &[f32], outer: usize, n: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; outer * 2 * n * inner];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(2 * n * inner)
        .zip(input.par_chunks(n * inner))
        .for_each(|(o, x)| {
            for i in 0..n {
                let previous = &x[i.saturating_sub(1) * inner..][..inner];
                let next = &x[(i + 1).min(n - 1) * inner..][..inner];
                let centre = &x[i * inner..][..inner];
                let (even, odd) = o[2 * i * inner..][..2 * inner].split_at_mut(inner);
                for k in 0..inner {
                    let c = centre[k] * 0.75;
                    even[k] = c + previous[k] * 0.25;
                    odd[k] = c + next[k] * 0.25;
                }
            }
        });
    out
}

/// The adjoint of [`double_axis`]: the gradient of its input given that of its output.
fn double_axis_backward(grad: &[f32], outer: usize, n: usize, inner: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; outer * n * inner];
    if dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(n * inner)
        .zip(grad.par_chunks(2 * n * inner))
        .for_each(|(d, g)| {
            for i in 0..n {
                let (previous, next) = (i.saturating_sub(1), (i + 1).min(n - 1));
                for k in 0..inner {
                    let even = g[2 * i * inner + k];
                    let odd = g[(2 * i + 1) * inner + k];
                    d[i * inner + k] += 0.75 * (even + odd);
                    d[previous * inner + k] += 0.25 * even;
                    d[next * inner + k] += 0.25 * odd;
                }
            }
        });
    dx
}

fn forward(x: &FlexTensor, factors: [usize; 3]) -> FlexTensor {
    let mut shape = x.shape().to_vec();
    let input = x.to_contiguous();
    // The first pass reads the input in place; later passes read the previous one's output.
    let mut values: Option<Vec<f32>> = None;
    for dim in doubled_dims(factors) {
        let (outer, n, inner) = split(&shape, dim);
        let source = values.as_deref().unwrap_or(input.storage::<f32>());
        values = Some(double_axis(source, outer, n, inner));
        shape[dim] *= 2;
    }
    let values = values.unwrap_or_else(|| input.storage::<f32>().to_vec());
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn usable(x: &FlexTensor) -> bool {
    x.dtype() == DType::F32 && x.shape().len() == 5
}

fn untracked(x: &Tensor<5>, factors: [usize; 3]) -> Option<Tensor<5>> {
    let xp = x.clone().try_into_primitive::<Flex>().ok()?;
    if !usable(&xp) {
        return None;
    }
    Some(Tensor::from_primitive::<Flex>(forward(&xp, factors)))
}

/// The backward step of the fused upsampling: the adjoint passes in reverse axis order.
#[derive(Debug)]
struct UpsampleBackward;

impl Backward<Flex, 1> for UpsampleBackward {
    /// The input's shape and the factors.
    type State = (Vec<usize>, [usize; 3]);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        profile::time("upsample backward", || {
            let [node_x] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
            let Some(node) = node_x else { return };
            let (input_shape, factors) = ops.state;
            let mut shape: Vec<usize> = input_shape.clone();
            for dim in doubled_dims(factors) {
                shape[dim] *= 2;
            }
            let mut values: Option<Vec<f32>> = None;
            for dim in doubled_dims(factors).rev() {
                shape[dim] /= 2;
                let (outer, n, inner) = split(&shape, dim);
                let source = values.as_deref().unwrap_or(grad.storage::<f32>());
                values = Some(double_axis_backward(source, outer, n, inner));
            }
            let values = values.unwrap_or_else(|| grad.storage::<f32>().to_vec());
            grads.register::<Flex>(
                node.id,
                FlexTensor::from_data(TensorData::new(values, input_shape)),
            );
        });
    }
}

fn tracked<C: CheckpointStrategy>(x: &Tensor<5>, factors: [usize; 3]) -> Option<Tensor<5>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let xa = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    if !usable(xa.primitive()) {
        return None;
    }
    let out = match UpsampleBackward
        .prepare::<C>([xa.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let shape = xa.primitive().shape().to_vec();
            prep.finish((shape, factors), forward(xa.primitive(), factors))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(xa.primitive(), factors)),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}
