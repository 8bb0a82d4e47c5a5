//! Helpers shared by the tests.

use burn::tensor::{Device, Tensor, TensorData};
use vision::{Unet, UnetConfig};

/// The CPU device all tests run on.
pub fn device() -> Device {
    Device::flex()
}

/// The `tiny` preset.
pub fn tiny() -> UnetConfig {
    UnetConfig::preset("tiny").expect("tiny preset parses")
}

/// A tiny network with a fixed seed.
pub fn tiny_net(device: &Device) -> Unet {
    Unet::new(&tiny(), 11, device).expect("tiny network builds")
}

/// Deterministic pseudo-random values in [0, 1) (no global RNG, so tests may run in parallel).
pub fn values(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// A deterministic random tensor of `shape`.
pub fn random5(shape: [usize; 5], seed: u64, device: &Device) -> Tensor<5> {
    let count = shape.iter().product();
    Tensor::from_data(TensorData::new(values(count, seed), shape), device)
}

/// A deterministic random `[rows, cols]` tensor centred on 0.
pub fn random2(shape: [usize; 2], seed: u64, device: &Device) -> Tensor<2> {
    let count = shape.iter().product();
    let centred: Vec<f32> = values(count, seed)
        .into_iter()
        .map(|v| 2.0 * v - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(centred, shape), device)
}

/// Largest absolute difference between two tensors of one shape.
pub fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}
