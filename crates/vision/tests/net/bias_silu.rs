//! Fused bias + SiLU (the tail of ϕ mixing) against burn's broadcast add followed by SiLU,
//! values and gradients, with one bias per stream and one shared by all streams.

use burn::tensor::activation::silu;
use burn::tensor::Tensor;
use vision::bias_silu::bias_silu;

use crate::common::{device, max_abs_diff, random2, random5};

/// `(y, dx, dw)` of `silu(x + bias)` with `bias = phi·wᵀ` (as ϕ mixing makes it, so the bias
/// gradient reaches a parameter through a matmul), fused or composed.
fn run(fused: bool, streams_in_bias: usize) -> (Tensor<5>, Tensor<5>, Tensor<2>) {
    let ad = device().autodiff();
    let shape = [3, 4, 5, 6, 7];
    let grad_out = random5(shape, 9, &ad);
    // Spread over about ±4, where silu′ varies most.
    let x = random5(shape, 1, &ad)
        .mul_scalar(8.0)
        .sub_scalar(4.0)
        .detach()
        .require_grad();
    let phi = random2([streams_in_bias, 5], 2, &ad);
    let w = random2([4, 5], 3, &ad).detach().require_grad();
    let bias = phi.matmul(w.clone().transpose());
    let y = if fused {
        bias_silu(x.clone(), bias)
    } else {
        let rows = if streams_in_bias == 1 { 1 } else { shape[0] };
        silu(x.clone() + bias.reshape([rows, 4, 1, 1, 1]))
    };
    let grads = (y.clone() * grad_out).sum().backward();
    (y.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap())
}

#[test]
fn matches_add_then_silu_with_gradients() {
    for streams_in_bias in [3, 1] {
        let (y1, dx1, dw1) = run(true, streams_in_bias);
        let (y2, dx2, dw2) = run(false, streams_in_bias);
        assert!(max_abs_diff(y1, y2) < 1e-5, "{streams_in_bias} bias rows");
        assert!(max_abs_diff(dx1, dx2) < 1e-5, "{streams_in_bias} bias rows");
        // dw sums 210 voxels per stream; f32 sums in another order.
        assert!(max_abs_diff(dw1, dw2) < 1e-3, "{streams_in_bias} bias rows");
    }
    // Without autodiff too.
    let plain = device();
    let x = random5([2, 4, 3, 3, 3], 4, &plain);
    let bias = random2([2, 4], 5, &plain);
    let composed = silu(x.clone() + bias.clone().reshape([2, 4, 1, 1, 1]));
    assert!(max_abs_diff(bias_silu(x, bias), composed) < 1e-6);
}
