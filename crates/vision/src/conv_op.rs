//! The size-preserving 3-D convolution as a burn operation with its own backward pass.
//!
//! On the CPU backend (flex, with or without autodiff) the kernels of [`crate::conv_kernel`] run
//! the forward pass and all three gradients; on any other backend (CUDA, wgpu) or dtype the call
//! falls through to burn's `conv3d`, so the network code is the same everywhere. Swap this for
//! burn's op once its CPU convolution backward is as fast.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor, Flex, TensorMetadata};
use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor, TensorData};

use crate::conv_kernel::{
    conv3d_bias_grad, conv3d_forward, conv3d_input_grad, conv3d_weight_grad, ConvShape,
};
use crate::profile;

/// Stride-1 convolution of `x` (`[N, c_in, D, H, W]`) with `weight` (`[c_out, c_in, kd, kh, kw]`,
/// extents 1 or 3) and zero padding `k / 2`, so the output keeps the input's spatial size.
pub fn conv3d_same(x: Tensor<5>, weight: Tensor<5>, bias: Option<Tensor<1>>) -> Tensor<5> {
    let [c_out, _, kd, kh, kw] = weight.dims();
    let bias = bias.unwrap_or_else(|| Tensor::zeros([c_out], &x.device()));
    native(&x, &weight, &bias).unwrap_or_else(|| {
        let options = ConvOptions::new([1, 1, 1], [kd / 2, kh / 2, kw / 2], [1, 1, 1], 1);
        conv3d(x, weight, Some(bias), options)
    })
}

/// [`conv3d_same`] with this crate's CPU kernels, or `None` where they do not apply (another
/// backend or dtype), so a caller can pick its own fallback.
pub fn conv3d_same_native(
    x: Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
) -> Option<Tensor<5>> {
    let c_out = weight.dims()[0];
    let bias = bias.unwrap_or_else(|| Tensor::zeros([c_out], &x.device()));
    native(&x, &weight, &bias)
}

fn native(x: &Tensor<5>, weight: &Tensor<5>, bias: &Tensor<1>) -> Option<Tensor<5>> {
    if x.is_autodiff() {
        tracked::<NoCheckpointing>(x, weight, bias)
            .or_else(|| tracked::<BalancedCheckpointing>(x, weight, bias))
    } else {
        untracked(x, weight, bias)
    }
}

/// The shape of a convolution, if every operand is a usable f32 tensor of matching sizes.
fn conv_shape(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> Option<ConvShape> {
    if [x.dtype(), weight.dtype(), bias.dtype()] != [DType::F32; 3] {
        return None;
    }
    let xs = x.shape();
    let ws = weight.shape();
    if xs.num_dims() != 5 || ws.num_dims() != 5 || xs[1] != ws[1] || bias.shape()[0] != ws[0] {
        return None;
    }
    if !(2..5).all(|axis| ws[axis] == 1 || ws[axis] == 3) {
        return None;
    }
    Some(ConvShape {
        batch: xs[0],
        c_in: xs[1],
        c_out: ws[0],
        spatial: [xs[2], xs[3], xs[4]],
        kernel: [ws[2], ws[3], ws[4]],
    })
}

/// Contiguous f32 values of a flex tensor.
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// A CPU tensor of `values` in `shape` (the custom ops' outputs and gradients).
pub(crate) fn flex_tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor, s: &ConvShape) -> FlexTensor {
    let (x, weight, bias) = (values(x), values(weight), values(bias));
    let out = conv3d_forward(
        x.storage::<f32>(),
        weight.storage::<f32>(),
        Some(bias.storage::<f32>()),
        s,
    );
    flex_tensor(
        out,
        &[s.batch, s.c_out, s.spatial[0], s.spatial[1], s.spatial[2]],
    )
}

fn untracked(x: &Tensor<5>, weight: &Tensor<5>, bias: &Tensor<1>) -> Option<Tensor<5>> {
    let xp = x.clone().try_into_primitive::<Flex>().ok()?;
    let wp = weight.clone().try_into_primitive::<Flex>().ok()?;
    let bp = bias.clone().try_into_primitive::<Flex>().ok()?;
    let shape = conv_shape(&xp, &wp, &bp)?;
    Some(Tensor::from_primitive::<Flex>(forward(
        &xp, &wp, &bp, &shape,
    )))
}

/// The backward step: gradients for input, weight and bias from the output gradient.
#[derive(Debug)]
struct SameConvBackward;

impl Backward<Flex, 3> for SameConvBackward {
    type State = (NodeId, NodeId, ConvShape);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        profile::time("conv backward", || {
            Self::gradients(ops, grads, checkpointer)
        });
    }
}

impl SameConvBackward {
    fn gradients(
        ops: Ops<(NodeId, NodeId, ConvShape), 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = values(&grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state, s) = ops.state;
        let grad_values = grad.storage::<f32>();
        if let Some(node) = node_x {
            let weight = values(&checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
            let dx = conv3d_input_grad(grad_values, weight.storage::<f32>(), &s);
            let shape = [s.batch, s.c_in, s.spatial[0], s.spatial[1], s.spatial[2]];
            grads.register::<Flex>(node.id, flex_tensor(dx, &shape));
        }
        if let Some(node) = node_weight {
            let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x_state));
            let dw = conv3d_weight_grad(x.storage::<f32>(), grad_values, &s);
            let shape = [s.c_out, s.c_in, s.kernel[0], s.kernel[1], s.kernel[2]];
            grads.register::<Flex>(node.id, flex_tensor(dw, &shape));
        }
        if let Some(node) = node_bias {
            let db = conv3d_bias_grad(grad_values, &s);
            grads.register::<Flex>(node.id, flex_tensor(db, &[s.c_out]));
        }
    }
}

fn tracked<C: CheckpointStrategy>(
    x: &Tensor<5>,
    weight: &Tensor<5>,
    bias: &Tensor<1>,
) -> Option<Tensor<5>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let xa = x.clone().try_into_primitive::<Autodiff<Flex, C>>().ok()?;
    let wa = weight
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    let ba = bias
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    let shape = conv_shape(xa.primitive(), wa.primitive(), ba.primitive())?;
    let out = match SameConvBackward
        .prepare::<C>([xa.node(), wa.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&xa);
            let weight_state = prep.checkpoint(&wa);
            let output = forward(xa.primitive(), wa.primitive(), ba.primitive(), &shape);
            prep.finish((x_state, weight_state, shape), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(
            xa.primitive(),
            wa.primitive(),
            ba.primitive(),
            &shape,
        )),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}
