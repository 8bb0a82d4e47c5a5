//! `silu(x + b)` with one bias per (stream, channel), as one burn operation with its own
//! backward pass: the tail of ϕ mixing, where `b` is the stream's `W_ϕ·ϕ_s + b`.
//!
//! Composed from burn operations it is a broadcast add and burn's SiLU (a sigmoid and a
//! product), each a full pass over the volume forward and more backward (the add's bias
//! gradient is a reduction over a broadcast shape); ϕ mixing took ~7 % of the small network's
//! training step that way. Here the forward is one pass that keeps the sigmoids, and the backward
//! one pass that writes the input gradient and sums the bias gradient. On the CPU backend the
//! kernels below run; elsewhere (CUDA, wgpu, other dtypes) the composed form.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor, Flex, TensorMetadata};
use burn::tensor::activation::silu;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use crate::conv_op::flex_tensor;
use crate::norm_kernel::sigmoid;
use crate::profile;

/// `silu(x + bias)` for `x` `[N, C, X, Y, Z]` and `bias` `[N, C]` (one value per stream and
/// channel, broadcast over the voxels) or `[1, C]` (the same for every stream).
pub fn bias_silu(x: Tensor<5>, bias: Tensor<2>) -> Tensor<5> {
    let [batch, channels, ..] = x.dims();
    let bias = match bias.dims() {
        [rows, c] if rows == batch && c == channels => bias,
        [1, c] if c == channels => bias.expand([batch, channels]),
        other => panic!("bias_silu: bias {other:?} for {batch} streams of {channels} channels"),
    };
    let fast = if x.is_autodiff() {
        tracked::<NoCheckpointing>(&x, &bias)
            .or_else(|| tracked::<BalancedCheckpointing>(&x, &bias))
    } else {
        untracked(&x, &bias)
    };
    fast.unwrap_or_else(|| silu(x + bias.reshape([batch, channels, 1, 1, 1])))
}

/// Forward kernel on contiguous `x` (`[N·C, voxels]` rows) and `bias` (`[N·C]`): the output and,
/// when `keep_sigmoid`, `sigmoid(x + b)` per element (empty otherwise).
pub fn bias_silu_forward(x: &[f32], bias: &[f32], keep_sigmoid: bool) -> (Vec<f32>, Vec<f32>) {
    assert!(
        !bias.is_empty() && x.len().is_multiple_of(bias.len()),
        "bias_silu: {} values are not rows of {} biases",
        x.len(),
        bias.len()
    );
    let voxels = x.len() / bias.len();
    let mut out = vec![0.0f32; x.len()];
    if voxels == 0 {
        return (out, Vec::new());
    }
    if keep_sigmoid {
        let mut sigmoids = vec![0.0f32; x.len()];
        out.par_chunks_mut(voxels)
            .zip(sigmoids.par_chunks_mut(voxels))
            .zip(x.par_chunks(voxels))
            .zip(bias.par_iter())
            .for_each(|(((out, sig), x), &b)| {
                for ((o, q), &v) in out.iter_mut().zip(sig).zip(x) {
                    let z = v + b;
                    *q = sigmoid(z);
                    *o = z * *q;
                }
            });
        (out, sigmoids)
    } else {
        out.par_chunks_mut(voxels)
            .zip(x.par_chunks(voxels))
            .zip(bias.par_iter())
            .for_each(|((out, x), &b)| {
                for (o, &v) in out.iter_mut().zip(x) {
                    let z = v + b;
                    *o = z * sigmoid(z);
                }
            });
        (out, Vec::new())
    }
}

/// Backward kernel: `(dx, dbias)` from the output gradient, the input, the bias and the
/// sigmoids the forward kept. silu′(z) = σ(z)·(1 + z·(1 − σ(z))); dbias sums dx over the voxels
/// (in f64).
pub fn bias_silu_backward(
    x: &[f32],
    bias: &[f32],
    sigmoids: &[f32],
    grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    assert!(
        !bias.is_empty()
            && x.len().is_multiple_of(bias.len())
            && sigmoids.len() == x.len()
            && grad.len() == x.len(),
        "bias_silu backward: mismatched lengths"
    );
    let voxels = x.len() / bias.len();
    let mut dx = vec![0.0f32; x.len()];
    if voxels == 0 {
        return (dx, vec![0.0; bias.len()]);
    }
    let dbias = dx
        .par_chunks_mut(voxels)
        .zip(x.par_chunks(voxels))
        .zip(sigmoids.par_chunks(voxels))
        .zip(grad.par_chunks(voxels))
        .zip(bias.par_iter())
        .map(|((((dx, x), sig), grad), &b)| {
            let mut sum = 0.0f64;
            for (((d, &v), &s), &g) in dx.iter_mut().zip(x).zip(sig).zip(grad) {
                let z = v + b;
                *d = g * s * (1.0 + z * (1.0 - s));
                sum += *d as f64;
            }
            sum as f32
        })
        .collect();
    (dx, dbias)
}

fn usable(tensors: [&FlexTensor; 2]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The output and (when `keep_sigmoid`) the sigmoids.
fn forward(x: &FlexTensor, bias: &FlexTensor, keep_sigmoid: bool) -> (FlexTensor, Vec<f32>) {
    let (xc, bc) = (x.to_contiguous(), bias.to_contiguous());
    let (out, sigmoids) = bias_silu_forward(xc.storage::<f32>(), bc.storage::<f32>(), keep_sigmoid);
    (flex_tensor(out, &x.shape().to_vec()), sigmoids)
}

fn untracked(x: &Tensor<5>, bias: &Tensor<2>) -> Option<Tensor<5>> {
    let xp = x.clone().try_into_primitive::<Flex>().ok()?;
    let bp = bias.clone().try_into_primitive::<Flex>().ok()?;
    if !usable([&xp, &bp]) {
        return None;
    }
    Some(Tensor::from_primitive::<Flex>(forward(&xp, &bp, false).0))
}

/// The backward step of the fused bias + SiLU.
#[derive(Debug)]
struct BiasSiluBackward;

impl Backward<Flex, 2> for BiasSiluBackward {
    type State = (NodeId, NodeId, Vec<f32>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        profile::time("bias+silu backward", || {
            let [node_x, node_bias] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
            let (x_state, bias_state, sigmoids) = ops.state;
            let x = checkpointer
                .retrieve_node_output::<FlexTensor>(x_state)
                .to_contiguous();
            let bias = checkpointer
                .retrieve_node_output::<FlexTensor>(bias_state)
                .to_contiguous();
            let (x_shape, bias_shape) = (x.shape().to_vec(), bias.shape().to_vec());
            let (dx, dbias) = bias_silu_backward(
                x.storage::<f32>(),
                bias.storage::<f32>(),
                &sigmoids,
                grad.storage::<f32>(),
            );
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, flex_tensor(dx, &x_shape));
            }
            if let Some(node) = node_bias {
                grads.register::<Flex>(node.id, flex_tensor(dbias, &bias_shape));
            }
        });
    }
}

fn tracked<C: CheckpointStrategy>(x: &Tensor<5>, bias: &Tensor<2>) -> Option<Tensor<5>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let xa = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let ba = bias
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    if !usable([xa.primitive(), ba.primitive()]) {
        return None;
    }
    let out = match BiasSiluBackward
        .prepare::<C>([xa.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&xa);
            let bias_state = prep.checkpoint(&ba);
            let (output, sigmoids) = forward(xa.primitive(), ba.primitive(), true);
            prep.finish((x_state, bias_state, sigmoids), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(xa.primitive(), ba.primitive(), false).0),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}
