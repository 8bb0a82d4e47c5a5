//! Any number of streams, any spatial size: the output is always on the input grid.

use burn::tensor::Tensor;
use vision::{Unet, UnetConfig, VisionError};

use crate::common::{device, random2, random5, tiny, tiny_net};

#[test]
fn one_to_four_streams_and_odd_sizes_keep_the_input_grid() {
    let device = device();
    let net = tiny_net(&device);
    let config = tiny();
    // Odd and prime sizes; the tiny net pads to multiples of 4 internally.
    let shapes = [[13, 9, 7], [5, 11, 8], [1, 1, 1], [6, 3, 10]];
    for (streams, shape) in (1..=4).zip(shapes) {
        let scans = random5(
            [streams, 1, shape[0], shape[1], shape[2]],
            streams as u64,
            &device,
        );
        let phi = random2([streams, config.phi_dim], 100 + streams as u64, &device);
        let out = net.forward(scans, [1.0, 1.0, 1.0], &phi).unwrap();
        assert_eq!(
            out.probabilities.dims(),
            [streams, 1, shape[0], shape[1], shape[2]]
        );
        assert_eq!(out.embedding.dims(), [streams, config.embedding_dim]);
        let min = out.probabilities.clone().min().into_scalar::<f32>();
        let max = out.probabilities.max().into_scalar::<f32>();
        assert!((0.0..=1.0).contains(&min) && (0.0..=1.0).contains(&max));
    }
}

#[test]
fn the_paper_network_runs_on_a_small_odd_volume() {
    let device = device();
    let config = UnetConfig::preset("paper").unwrap();
    let net = Unet::new(&config, 3, &device).unwrap();
    let scans = random5([2, 1, 9, 7, 5], 1, &device);
    let phi = random2([2, 32], 2, &device);
    let out = net.forward(scans, [1.0, 1.0, 1.0], &phi).unwrap();
    assert_eq!(out.probabilities.dims(), [2, 1, 9, 7, 5]);
    assert_eq!(out.embedding.dims(), [2, 512]);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let device = device();
    let net = tiny_net(&device);
    let phi = random2([1, 32], 1, &device);
    let two_channels = Tensor::<5>::zeros([1, 2, 8, 8, 8], &device);
    assert!(matches!(
        net.forward(two_channels, [1.0; 3], &phi),
        Err(VisionError::Shape(_))
    ));
    let scans = Tensor::<5>::zeros([2, 1, 8, 8, 8], &device);
    assert!(matches!(
        net.forward(scans.clone(), [1.0; 3], &phi),
        Err(VisionError::Shape(_))
    ));
    let phi2 = random2([2, 32], 1, &device);
    assert!(matches!(
        net.forward(scans, [1.0, -1.0, 1.0], &phi2),
        Err(VisionError::Spacing(_))
    ));
}
