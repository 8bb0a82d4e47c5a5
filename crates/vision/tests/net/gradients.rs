//! Gradients flow from the segmentation and from ε° back into ϕ (that is how the agent learns).

use burn::tensor::Tensor;

use crate::common::{device, random2, random5, tiny_net};

fn grad_norm(t: Option<Tensor<2>>) -> f32 {
    t.expect("ϕ has a gradient")
        .abs()
        .sum()
        .into_scalar::<f32>()
}

#[test]
fn gradients_reach_phi_through_the_generator_and_the_embedding() {
    let device = device().autodiff();
    let net = tiny_net(&device);
    let scans = random5([2, 1, 8, 9, 7], 1, &device);
    let target = random5([2, 1, 8, 9, 7], 2, &device)
        .greater_elem(0.5)
        .float();
    let phi_enc = random2([2, 32], 3, &device).require_grad();
    let phi_gen = random2([2, 32], 4, &device).require_grad();

    let encoding = net.encode(scans, [1.0; 3], &phi_enc).unwrap();
    let probabilities = net.generate(&encoding, &phi_gen).unwrap();
    // Soft Dice, as in training.
    let overlap = (probabilities.clone() * target.clone()).sum();
    let dice = overlap.mul_scalar(2.0) / (probabilities.sum() + target.sum()).add_scalar(1e-6);
    let loss = dice.neg() + encoding.embedding.powf_scalar(2.0).mean().mul_scalar(1e-3);
    let grads = loss.backward();

    assert!(grad_norm(phi_gen.grad(&grads)) > 0.0);
    assert!(grad_norm(phi_enc.grad(&grads)) > 0.0);
    let first_conv = net.encoder.blocks[0].convs[0].weight.val();
    let conv_grad = first_conv.grad(&grads).expect("conv weight has a gradient");
    assert!(conv_grad.abs().sum().into_scalar::<f32>() > 0.0);
}
