//! Save → load gives the same network.

use vision::checkpoint::{self, CONFIG_FILE};
use vision::{BaselineUnet, Classifier, Unet, VisionError};

use crate::common::{device, random2, random5, tiny, tiny_net};

#[test]
fn save_then_load_gives_identical_outputs() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    let net = tiny_net(&device);
    checkpoint::save(&net, dir.path()).unwrap();
    let loaded: Unet = checkpoint::load(dir.path(), &device).unwrap();

    let scans = random5([2, 1, 9, 6, 7], 1, &device);
    let phi = random2([2, 32], 2, &device);
    let a = net.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let b = loaded.forward(scans, [1.0; 3], &phi).unwrap();
    assert_eq!(
        a.probabilities.into_data().try_to_vec::<f32>().unwrap(),
        b.probabilities.into_data().try_to_vec::<f32>().unwrap()
    );
    assert_eq!(
        a.embedding.into_data().try_to_vec::<f32>().unwrap(),
        b.embedding.into_data().try_to_vec::<f32>().unwrap()
    );
    // A differently seeded network really is different (the check above could fail).
    let other = vision::Unet::new(&tiny(), 12, &device).unwrap();
    let c = other
        .forward(random5([2, 1, 9, 6, 7], 1, &device), [1.0; 3], &phi)
        .unwrap();
    let a2 = net
        .forward(random5([2, 1, 9, 6, 7], 1, &device), [1.0; 3], &phi)
        .unwrap();
    assert!(crate::common::max_abs_diff(a2.probabilities, c.probabilities) > 1e-6);
}

#[test]
fn baselines_round_trip_and_kinds_are_checked() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    let classifier = Classifier::new(&tiny(), 4, 3, &device).unwrap();
    checkpoint::save(&classifier, dir.path()).unwrap();
    let loaded: Classifier = checkpoint::load(dir.path(), &device).unwrap();
    let scans = random5([1, 1, 8, 8, 8], 1, &device);
    let a = classifier.forward(scans.clone(), [1.0; 3]).unwrap();
    let b = loaded.forward(scans, [1.0; 3]).unwrap();
    assert_eq!(
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap()
    );

    assert!(matches!(
        checkpoint::load::<Unet>(dir.path(), &device),
        Err(VisionError::Checkpoint { .. })
    ));
    let baseline_dir = tempfile::tempdir().unwrap();
    checkpoint::save(
        &BaselineUnet::new(&tiny(), 1, &device).unwrap(),
        baseline_dir.path(),
    )
    .unwrap();
    assert!(checkpoint::load::<BaselineUnet>(baseline_dir.path(), &device).is_ok());
}

#[test]
fn missing_or_corrupt_checkpoints_are_typed_errors() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        checkpoint::load::<Unet>(dir.path(), &device),
        Err(VisionError::Io { .. })
    ));
    std::fs::write(dir.path().join(CONFIG_FILE), "{ not json").unwrap();
    assert!(matches!(
        checkpoint::load::<Unet>(dir.path(), &device),
        Err(VisionError::Checkpoint { .. })
    ));
}

#[test]
fn a_baseline_starts_the_instructable_network_and_zero_phi_reproduces_it() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    let baseline = BaselineUnet::new(&tiny(), 5, &device).unwrap();
    checkpoint::save(&baseline, dir.path()).unwrap();
    // A joint network with another seed and a wider ε° (its projection keeps its own weights).
    let mut config = tiny();
    config.embedding_dim += 8;
    let mut net = Unet::new(&config, 9, &device).unwrap();
    let scans = random5([1, 1, 9, 6, 7], 1, &device);
    let zero = burn::tensor::Tensor::<2>::zeros([1, config.phi_dim], &device);
    let want = baseline.forward(scans.clone(), [1.0; 3]).unwrap();
    let before = net.forward(scans.clone(), [1.0; 3], &zero).unwrap();
    assert!(crate::common::max_abs_diff(before.probabilities, want.probabilities.clone()) > 1e-6);

    let applied = checkpoint::load_baseline_into(&mut net, dir.path()).unwrap();
    assert!(applied > 10, "{applied} tensors taken");
    let got = net.forward(scans.clone(), [1.0; 3], &zero).unwrap();
    assert!(crate::common::max_abs_diff(got.probabilities, want.probabilities.clone()) < 1e-6);
    // ϕ still steers it: its weights were kept, not zeroed.
    let phi = random2([1, config.phi_dim], 2, &device);
    let steered = net.forward(scans, [1.0; 3], &phi).unwrap();
    assert!(crate::common::max_abs_diff(steered.probabilities, want.probabilities) > 1e-6);

    // Other sizes, or a checkpoint of another kind, are refused with the file named.
    let mut wider = tiny();
    wider.channels_top += 4;
    let mut other = Unet::new(&wider, 9, &device).unwrap();
    let e = checkpoint::load_baseline_into(&mut other, dir.path()).unwrap_err();
    assert!(e.to_string().contains(CONFIG_FILE), "{e}");
    let unet_dir = tempfile::tempdir().unwrap();
    checkpoint::save(&tiny_net(&device), unet_dir.path()).unwrap();
    let e = checkpoint::load_baseline_into(&mut net, unet_dir.path()).unwrap_err();
    assert!(e.to_string().contains("baseline"), "{e}");
}
