//! Streams have no order: permuting the input streams (with their ϕ) permutes the outputs.

use burn::tensor::{Int, Tensor};

use crate::common::{device, max_abs_diff, random2, random5, tiny_net};

#[test]
fn permuting_streams_permutes_outputs() {
    let device = device();
    let net = tiny_net(&device);
    let scans = random5([3, 1, 10, 7, 9], 21, &device);
    let phi = random2([3, 32], 22, &device);
    let order = Tensor::<1, Int>::from_data([2, 0, 1], &device);

    let out = net.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let permuted = net
        .forward(
            scans.select(0, order.clone()),
            [1.0; 3],
            &phi.select(0, order.clone()),
        )
        .unwrap();
    assert!(
        max_abs_diff(
            out.probabilities.clone().select(0, order.clone()),
            permuted.probabilities
        ) < 1e-5
    );
    assert!(max_abs_diff(out.embedding.select(0, order), permuted.embedding) < 1e-5);
}

#[test]
fn streams_actually_interact() {
    // Guards the test above: if streams never met, equivariance would hold trivially.
    let device = device();
    let net = tiny_net(&device);
    let a = random5([1, 1, 8, 8, 8], 1, &device);
    let b = random5([1, 1, 8, 8, 8], 2, &device);
    let c = random5([1, 1, 8, 8, 8], 3, &device);
    let phi = random2([2, 32], 4, &device);
    let with_b = net
        .forward(Tensor::cat(vec![a.clone(), b], 0), [1.0; 3], &phi)
        .unwrap();
    let with_c = net
        .forward(Tensor::cat(vec![a, c], 0), [1.0; 3], &phi)
        .unwrap();
    let first = |t: Tensor<5>| t.narrow(0, 0, 1);
    assert!(max_abs_diff(first(with_b.probabilities), first(with_c.probabilities)) > 1e-6);
}

#[test]
fn one_stream_shortcut_equals_attention_over_identical_streams() {
    // Two identical streams attend to each other with weights ½, ½ over identical values, so the
    // general path must reproduce the S = 1 shortcut f(V·a) + a.
    let device = device();
    let net = tiny_net(&device);
    let scan = random5([1, 1, 9, 8, 7], 5, &device);
    let phi = random2([1, 32], 6, &device);
    let single = net.forward(scan.clone(), [1.0; 3], &phi).unwrap();
    let double = net
        .forward(
            Tensor::cat(vec![scan.clone(), scan], 0),
            [1.0; 3],
            &Tensor::cat(vec![phi.clone(), phi], 0),
        )
        .unwrap();
    let first = double.probabilities.narrow(0, 0, 1);
    assert!(max_abs_diff(single.probabilities, first) < 1e-5);
}
