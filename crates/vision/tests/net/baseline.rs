//! The single-task baselines: a UNet without ϕ and a classifier.

use vision::{BaselineUnet, Classifier};

use crate::common::{device, max_abs_diff, random5, tiny};

#[test]
fn baseline_unet_has_no_phi_weights_and_keeps_the_grid() {
    let device = device();
    let net = BaselineUnet::new(&tiny(), 5, &device).unwrap();
    assert!(net.unet.encoder.blocks[0].mixing.phi_weight.is_none());
    let out = net
        .forward(random5([2, 1, 7, 9, 6], 1, &device), [1.0; 3])
        .unwrap();
    assert_eq!(out.probabilities.dims(), [2, 1, 7, 9, 6]);
}

#[test]
fn classifier_gives_a_distribution_independent_of_stream_order() {
    let device = device();
    let classifier = Classifier::new(&tiny(), 3, 5, &device).unwrap();
    let a = random5([1, 1, 8, 8, 8], 1, &device);
    let b = random5([1, 1, 8, 8, 8], 2, &device);
    let ab = burn::tensor::Tensor::cat(vec![a.clone(), b.clone()], 0);
    let ba = burn::tensor::Tensor::cat(vec![b, a], 0);
    let p_ab = classifier.forward(ab, [1.0; 3]).unwrap();
    let p_ba = classifier.forward(ba, [1.0; 3]).unwrap();
    assert_eq!(p_ab.dims(), [3]);
    assert!((p_ab.clone().sum().into_scalar::<f32>() - 1.0).abs() < 1e-5);
    assert!(max_abs_diff(p_ab, p_ba) < 1e-5);
    assert!(Classifier::new(&tiny(), 1, 5, &device).is_err());
}
