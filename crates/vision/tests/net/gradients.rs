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
    let loss = phi_loss(&net, scans, target, &phi_enc, &phi_gen);
    let grads = loss.backward();

    assert!(grad_norm(phi_gen.grad(&grads)) > 0.0);
    assert!(grad_norm(phi_enc.grad(&grads)) > 0.0);
    let first_conv = net.encoder.blocks[0].convs[0].weight.val();
    let conv_grad = first_conv.grad(&grads).expect("conv weight has a gradient");
    assert!(conv_grad.abs().sum().into_scalar::<f32>() > 0.0);
}

/// The loss of these tests: soft Dice of the generated map plus a small penalty on ε°.
fn phi_loss(
    net: &vision::Unet,
    scans: Tensor<5>,
    target: Tensor<5>,
    phi_enc: &Tensor<2>,
    phi_gen: &Tensor<2>,
) -> Tensor<1> {
    let encoding = net.encode(scans, [1.0; 3], phi_enc).unwrap();
    let probabilities = net.generate(&encoding, phi_gen).unwrap();
    let overlap = (probabilities.clone() * target.clone()).sum();
    let dice = overlap.mul_scalar(2.0) / (probabilities.sum() + target.sum()).add_scalar(1e-6);
    dice.neg() + encoding.embedding.powf_scalar(2.0).mean().mul_scalar(1e-1)
}

#[test]
fn phi_gradients_match_central_differences() {
    // Autodiff through our conv3d and GroupNorm+SiLU ops, the ϕ mixing and attention must give
    // the derivative the loss actually has: compared with (L(ϕ + h) − L(ϕ − h)) / 2h.
    let device = device().autodiff();
    let net = tiny_net(&device);
    let scans = random5([2, 1, 8, 9, 7], 1, &device);
    let target = random5([2, 1, 8, 9, 7], 2, &device)
        .greater_elem(0.5)
        .float();
    let phi_enc = random2([2, 32], 3, &device);
    let phi_gen = random2([2, 32], 4, &device);
    let (enc_ad, gen_ad) = {
        let e = phi_enc.clone().require_grad();
        let g = phi_gen.clone().require_grad();
        let grads = phi_loss(&net, scans.clone(), target.clone(), &e, &g).backward();
        let values = |t: Option<Tensor<2>>| t.unwrap().into_data().try_to_vec::<f32>().unwrap();
        (values(e.grad(&grads)), values(g.grad(&grads)))
    };
    let loss_at = |enc: &Tensor<2>, gen: &Tensor<2>| -> f64 {
        f64::from(phi_loss(&net, scans.clone(), target.clone(), enc, gen).into_scalar::<f32>())
    };
    let nudged = |t: &Tensor<2>, index: usize, by: f32| -> Tensor<2> {
        let mut v = t.clone().into_data().try_to_vec::<f32>().unwrap();
        v[index] += by;
        Tensor::from_data(burn::tensor::TensorData::new(v, [2, 32]), &device)
    };
    let h = 1e-2f32;
    let mut checked = 0;
    for index in [0, 7, 33, 50] {
        for (which, analytic) in [("encoder", &enc_ad), ("generator", &gen_ad)] {
            let (plus, minus) = if which == "encoder" {
                (
                    loss_at(&nudged(&phi_enc, index, h), &phi_gen),
                    loss_at(&nudged(&phi_enc, index, -h), &phi_gen),
                )
            } else {
                (
                    loss_at(&phi_enc, &nudged(&phi_gen, index, h)),
                    loss_at(&phi_enc, &nudged(&phi_gen, index, -h)),
                )
            };
            let numeric = (plus - minus) / (2.0 * f64::from(h));
            let exact = f64::from(analytic[index]);
            let tolerance = 0.05 * exact.abs().max(numeric.abs()) + 2e-4;
            assert!(
                (numeric - exact).abs() <= tolerance,
                "ϕ {which} [{index}]: autodiff {exact:.6e}, central difference {numeric:.6e}"
            );
            checked += usize::from(exact.abs() > 1e-5);
        }
    }
    assert!(
        checked >= 4,
        "too few non-zero derivatives to compare ({checked})"
    );
}
