//! FiLM (`phi_scale`): ϕ scales the mixed features per channel as well as shifting them. It
//! starts as the network without it, computes the formula of `phi_mixing`'s docs, learns from
//! zero, and streams like the rest of the network.

use burn::module::Param;
use burn::tensor::activation::{silu, tanh};
use burn::tensor::Device;
use vision::conv::pointwise_matmul;
use vision::{Unet, UnetConfig};

use crate::common::{
    assert_learns_from_zero, assert_same_as_plain_when_fresh, assert_streams_like_whole,
    assert_upgrade_keeps_function_and_round_trips, device, max_abs_diff, random2, random5, tiny,
};

fn tiny_film() -> UnetConfig {
    UnetConfig {
        phi_scale: true,
        ..tiny()
    }
}

/// `net` with every FiLM weight set to small random values (seeded by level).
fn with_random_scales(mut net: Unet, device: &Device) -> Unet {
    let blocks = net
        .encoder
        .blocks
        .iter_mut()
        .chain(net.generator.blocks.iter_mut());
    for (index, block) in blocks.enumerate() {
        let weight = block
            .mixing
            .phi_scale_weight
            .as_ref()
            .expect("a FiLM network has scale weights");
        let shape = weight.val().dims();
        let values = random2(shape, 900 + index as u64, device).mul_scalar(2.0);
        block.mixing.phi_scale_weight = Some(Param::from_tensor(values));
    }
    net
}

#[test]
fn film_starts_as_the_network_without_it() {
    let plain = Unet::new(&tiny(), 5, &device()).unwrap();
    assert!(plain.encoder.blocks[0].mixing.phi_scale_weight.is_none());
    assert_same_as_plain_when_fresh(&tiny_film());
}

#[test]
fn film_mixing_is_the_scaled_and_shifted_layer() {
    let device = device();
    let net = with_random_scales(Unet::new(&tiny_film(), 5, &device).unwrap(), &device);
    let mixing = &net.encoder.blocks[1].mixing;
    let channels = mixing.bias.val().dims()[0];
    let a = random5([2, channels, 3, 4, 5], 8, &device);
    let phi = random2([2, 32], 9, &device);
    let got = mixing.forward(a.clone(), Some(&phi));

    // silu((1 + tanh(W_γ·ϕ_s / √32)) ⊙ W_a·a_s + W_ϕ·ϕ_s + b), written out with broadcasts.
    let mixed = pointwise_matmul(a, mixing.feature_weight.val(), None);
    let scale = tanh(
        phi.clone()
            .matmul(mixing.phi_scale_weight.as_ref().unwrap().val().transpose())
            / 32f32.sqrt(),
    ) + 1.0;
    let shift = phi.matmul(mixing.phi_weight.as_ref().unwrap().val().transpose())
        + mixing.bias.val().unsqueeze::<2>();
    let want =
        silu(mixed * scale.reshape([2, channels, 1, 1, 1]) + shift.reshape([2, channels, 1, 1, 1]));
    let diff = max_abs_diff(got, want);
    assert!(
        diff < 1e-5,
        "FiLM mixing differs from its formula by {diff}"
    );
}

#[test]
fn film_weights_learn_from_zero() {
    assert_learns_from_zero(&tiny_film(), |net| {
        net.encoder
            .blocks
            .iter()
            .chain(&net.generator.blocks)
            .map(|block| block.mixing.phi_scale_weight.as_ref().unwrap().val())
            .collect()
    });
}

#[test]
fn film_streams_like_the_whole_volume_pass() {
    let net = with_random_scales(Unet::new(&tiny_film(), 5, &device()).unwrap(), &device());
    assert_streams_like_whole(&net, [21, 13, 10], [1.0; 3], 3);
}

#[test]
fn a_network_given_film_keeps_its_function_and_round_trips() {
    assert_upgrade_keeps_function_and_round_trips(
        |plain| {
            let upgraded = plain.with_phi_scale();
            assert!(upgraded.config().phi_scale);
            upgraded
        },
        |upgraded| with_random_scales(upgraded, &device()),
    );
    // A network without FiLM writes no `phi_scale`, so configurations from before it stay
    // byte for byte what they were.
    assert!(!tiny().to_json().contains("phi_scale"));
    assert!(tiny_film().to_json().contains("\"phi_scale\": true"));
}
