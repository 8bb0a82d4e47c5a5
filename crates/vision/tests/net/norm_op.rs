//! Fused GroupNorm + SiLU against burn's GroupNorm followed by SiLU, values and gradients.

use burn::module::Param;
use burn::nn::GroupNormConfig;
use burn::tensor::activation::silu;
use burn::tensor::Tensor;
use vision::norm_op::group_norm_silu;

use crate::common::{device, max_abs_diff, random5};

#[test]
fn matches_burn_group_norm_then_silu_with_gradients() {
    let plain = device();
    let ad = plain.clone().autodiff();
    let shape = [2, 8, 5, 6, 7];
    let grad_out = random5(shape, 9, &ad);
    let run = |fused: bool| {
        let mut norm = GroupNormConfig::new(2, 8).init(&ad);
        let gamma = random5([1, 1, 1, 1, 8], 3, &ad)
            .reshape([8])
            .add_scalar(0.5);
        let beta = random5([1, 1, 1, 1, 8], 4, &ad)
            .reshape([8])
            .sub_scalar(0.5);
        norm.gamma = Some(Param::from_tensor(gamma));
        norm.beta = Some(Param::from_tensor(beta));
        // Scaled and shifted input, so the statistics are far from (0, 1).
        let x = random5(shape, 1, &ad)
            .mul_scalar(3.0)
            .add_scalar(2.0)
            .detach()
            .require_grad();
        let y = if fused {
            group_norm_silu(x.clone(), &norm)
        } else {
            silu(norm.forward(x.clone()))
        };
        let grads = (y.clone() * grad_out.clone()).sum().backward();
        let g = |p: &Option<Param<Tensor<1>>>| p.as_ref().unwrap().val().grad(&grads).unwrap();
        (
            y.inner(),
            x.grad(&grads).unwrap(),
            g(&norm.gamma),
            g(&norm.beta),
        )
    };
    let (y1, dx1, dg1, db1) = run(true);
    let (y2, dx2, dg2, db2) = run(false);
    assert!(max_abs_diff(y1, y2) < 1e-4);
    assert!(max_abs_diff(dx1, dx2) < 1e-4);
    assert!(max_abs_diff(dg1, dg2) < 1e-3);
    assert!(max_abs_diff(db1, db2) < 1e-3);

    // Without autodiff too.
    let norm = GroupNormConfig::new(4, 8).init(&plain);
    let x = random5(shape, 2, &plain);
    assert!(max_abs_diff(group_norm_silu(x.clone(), &norm), silu(norm.forward(x))) < 1e-4);
}
