//! GroupNorm followed by SiLU as one burn operation with its own backward pass.
//!
//! On the CPU backend the fused kernels of [`crate::norm_kernel`] run; elsewhere (CUDA, wgpu,
//! other dtypes) the same function is composed from burn tensor operations.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor, Flex, TensorMetadata};
use burn::nn::GroupNorm;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Tensor};

use crate::conv_op::flex_tensor;
use crate::norm_kernel::{
    group_norm_silu_backward, group_norm_silu_forward, NormForward, NormShape,
};
use crate::profile;

/// `silu(norm(x))` for `x` `[N, C, X, Y, Z]` and an affine GroupNorm `norm`.
pub fn group_norm_silu(x: Tensor<5>, norm: &GroupNorm) -> Tensor<5> {
    let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
        return silu(norm.forward(x));
    };
    let (gamma, beta) = (gamma.val(), beta.val());
    let [batch, channels, sx, sy, sz] = x.dims();
    let shape = NormShape {
        batch,
        channels,
        groups: norm.num_groups,
        voxels: sx * sy * sz,
        epsilon: norm.epsilon,
    };
    let fast = if x.is_autodiff() {
        tracked::<NoCheckpointing>(&x, &gamma, &beta, shape)
            .or_else(|| tracked::<BalancedCheckpointing>(&x, &gamma, &beta, shape))
    } else {
        untracked(&x, &gamma, &beta, shape)
    };
    fast.unwrap_or_else(|| silu(norm.forward(x)))
}

fn usable(tensors: [&FlexTensor; 3]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

fn f32_values(t: &FlexTensor) -> Vec<f32> {
    t.to_contiguous().storage::<f32>().to_vec()
}

/// The output, and what the backward pass needs: the statistics and (when `keep_sigmoid`)
/// the sigmoids.
fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    s: &NormShape,
    keep_sigmoid: bool,
) -> (FlexTensor, NormForward) {
    let xc = x.to_contiguous();
    let mut result = group_norm_silu_forward(
        xc.storage::<f32>(),
        &f32_values(gamma),
        &f32_values(beta),
        s,
        keep_sigmoid,
    );
    let out = std::mem::take(&mut result.out);
    (flex_tensor(out, &x.shape().to_vec()), result)
}

fn untracked(
    x: &Tensor<5>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    s: NormShape,
) -> Option<Tensor<5>> {
    let xp = x.clone().try_into_primitive::<Flex>().ok()?;
    let gp = gamma.clone().try_into_primitive::<Flex>().ok()?;
    let bp = beta.clone().try_into_primitive::<Flex>().ok()?;
    if !usable([&xp, &gp, &bp]) {
        return None;
    }
    Some(Tensor::from_primitive::<Flex>(
        forward(&xp, &gp, &bp, &s, false).0,
    ))
}

/// The backward step of the fused GroupNorm + SiLU.
#[derive(Debug)]
struct GroupNormSiluBackward;

type NormState = (NodeId, NodeId, NodeId, Vec<(f32, f32)>, Vec<f32>, NormShape);

impl Backward<Flex, 3> for GroupNormSiluBackward {
    type State = NormState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        profile::time("groupnorm+silu backward", || {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
            let (x_state, gamma_state, beta_state, stats, sigmoids, s) = ops.state;
            let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
            let gamma = f32_values(&checkpointer.retrieve_node_output::<FlexTensor>(gamma_state));
            let beta = f32_values(&checkpointer.retrieve_node_output::<FlexTensor>(beta_state));
            let x_shape = x.shape().to_vec();
            let x = x.to_contiguous();
            let (dx, dgamma, dbeta) = group_norm_silu_backward(
                x.storage::<f32>(),
                grad.storage::<f32>(),
                &gamma,
                &beta,
                &stats,
                &sigmoids,
                &s,
            );
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, flex_tensor(dx, &x_shape));
            }
            if let Some(node) = node_gamma {
                grads.register::<Flex>(node.id, flex_tensor(dgamma, &[s.channels]));
            }
            if let Some(node) = node_beta {
                grads.register::<Flex>(node.id, flex_tensor(dbeta, &[s.channels]));
            }
        });
    }
}

fn tracked<C: CheckpointStrategy>(
    x: &Tensor<5>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    s: NormShape,
) -> Option<Tensor<5>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let xa = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let ga = gamma
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    let ba = beta
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    if !usable([xa.primitive(), ga.primitive(), ba.primitive()]) {
        return None;
    }
    let out = match GroupNormSiluBackward
        .prepare::<C>([xa.node(), ga.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&xa);
            let gamma_state = prep.checkpoint(&ga);
            let beta_state = prep.checkpoint(&ba);
            let (output, kept) = forward(xa.primitive(), ga.primitive(), ba.primitive(), &s, true);
            let state = (
                x_state,
                gamma_state,
                beta_state,
                kept.stats,
                kept.sigmoids,
                s,
            );
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(xa.primitive(), ga.primitive(), ba.primitive(), &s, false).0)
        }
    };
    Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}
