//! Helpers shared by the tests.

use burn::tensor::{Device, Tensor, TensorData};
use vision::{StreamOptions, Unet, UnetConfig};

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

/// Memory-bounded inference of `net` in slabs of `slab_rows` rows equals its whole-volume
/// forward pass on two random streams of `shape`.
pub fn assert_streams_like_whole(
    net: &Unet,
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    slab_rows: usize,
) {
    let device = device();
    let scans = random5([2, 1, shape[0], shape[1], shape[2]], 31, &device);
    let phi = random2([2, 32], 32, &device);
    let whole = net.forward(scans.clone(), spacing_mm, &phi).unwrap();
    let options = StreamOptions {
        slab_rows: Some(slab_rows),
        ..StreamOptions::default()
    };
    let streamed = net
        .forward_streamed(scans, spacing_mm, &phi, &options)
        .unwrap();
    assert_eq!(streamed.probabilities.dims(), whole.probabilities.dims());
    let diff = max_abs_diff(whole.probabilities, streamed.probabilities);
    assert!(diff < 1e-5, "probabilities differ by {diff}");
    assert!(max_abs_diff(whole.embedding, streamed.embedding) < 1e-4);
}

/// A plain tiny network given a part by `upgrade` computes what it computed before; trained
/// away from zero by `train`, it is saved and loaded as the same network.
pub fn assert_upgrade_keeps_function_and_round_trips(
    upgrade: impl FnOnce(Unet) -> Unet,
    train: impl FnOnce(Unet) -> Unet,
) {
    let device = device();
    let plain = Unet::new(&tiny(), 5, &device).unwrap();
    let scans = random5([1, 1, 9, 8, 7], 6, &device);
    let phi = random2([1, 32], 7, &device);
    let before = plain.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let upgraded = upgrade(plain);
    let after = upgraded.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    assert_eq!(max_abs_diff(before.probabilities, after.probabilities), 0.0);

    let trained = train(upgraded);
    let dir = tempfile::tempdir().unwrap();
    vision::checkpoint::save(&trained, dir.path()).unwrap();
    let loaded: Unet = vision::checkpoint::load(dir.path(), &device).unwrap();
    let a = trained.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let b = loaded.forward(scans, [1.0; 3], &phi).unwrap();
    assert_eq!(max_abs_diff(a.probabilities, b.probabilities), 0.0);
}

/// A fresh network of `config` computes what the plain tiny network of the same seed computes:
/// a part that starts at zero changes nothing.
pub fn assert_same_as_plain_when_fresh(config: &UnetConfig) {
    let device = device();
    let plain = Unet::new(&tiny(), 5, &device).unwrap();
    let other = Unet::new(config, 5, &device).unwrap();
    let scans = random5([2, 1, 9, 8, 7], 6, &device);
    let phi = random2([2, 32], 7, &device);
    let a = plain.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let b = other.forward(scans, [1.0; 3], &phi).unwrap();
    assert_eq!(max_abs_diff(a.probabilities, b.probabilities), 0.0);
    assert_eq!(max_abs_diff(a.embedding, b.embedding), 0.0);
}

/// Every weight `weights` picks from a fresh network of `config` gets a gradient from a loss
/// on its output (a part that starts at zero can learn).
pub fn assert_learns_from_zero(config: &UnetConfig, weights: impl Fn(&Unet) -> Vec<Tensor<2>>) {
    let device = device().autodiff();
    let net = Unet::new(config, 5, &device).unwrap();
    let scans = random5([2, 1, 8, 9, 7], 1, &device);
    let target = random5([2, 1, 8, 9, 7], 2, &device)
        .greater_elem(0.5)
        .float();
    let phi = random2([2, 32], 3, &device);
    let probabilities = net.forward(scans, [1.0; 3], &phi).unwrap().probabilities;
    let loss = (probabilities - target).powf_scalar(2.0).mean();
    let grads = loss.backward();
    for weight in weights(&net) {
        let grad = weight.grad(&grads).expect("the weight has a gradient");
        assert!(grad.abs().sum().into_scalar::<f32>() > 0.0);
    }
}
