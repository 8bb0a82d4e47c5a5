//! The single-task baseline trainer on the analytic phantom at coarse voxels: small enough for
//! the dev profile (24³ patches at 8 mm, the `tiny` network, a few dozen steps).

use burn::tensor::Device;
use synth::anatomy::Anatomy;
use synth::{SynthConfig, Vocabulary};
use train::checkpoint::{self, TrainedBaseline, TrainingRecord};
use train::evaluation::{evaluate, probabilities, segment};
use train::{BaselineSettings, BaselineTrainer, Sampler, TrainOptions};
use vision::UnetConfig;
use voxel::Orientation;

/// Shipped settings scaled down: 8 mm network voxels, 24³ patches, subjects at 5–6 mm.
fn settings() -> BaselineSettings {
    let mut s = BaselineSettings::builtin().expect("shipped settings parse");
    s.spacing_mm = 8.0;
    s.patch_shape = [24, 24, 24];
    s.synthesis.spacing_mm = [5.0, 6.0];
    s.learning_rate = 3e-3;
    s.log_every = 2;
    s.checkpoint_every = 2;
    s
}

struct World {
    anatomy: Anatomy,
    synth: SynthConfig,
    vocabulary: Vocabulary,
}

fn world() -> World {
    let synth = SynthConfig::builtin().expect("synth config parses");
    World {
        anatomy: Anatomy::phantom(4.0, &synth.head).expect("phantom builds"),
        synth,
        vocabulary: Vocabulary::builtin().expect("vocabulary parses"),
    }
}

fn tiny() -> UnetConfig {
    UnetConfig::preset("tiny").expect("tiny preset")
}

fn record(settings: &BaselineSettings, steps: usize) -> TrainingRecord {
    TrainingRecord {
        settings: settings.clone(),
        network: "tiny".into(),
        seed: 1,
        steps,
        seconds: 0.0,
        recent_loss: None,
        anatomy: "phantom".into(),
    }
}

#[test]
fn sampler_gives_patches_of_the_requested_shape_with_the_target() {
    let w = world();
    let s = settings();
    let sampler = Sampler::new(&w.anatomy, &w.synth, &w.vocabulary, &s).unwrap();
    let mut masked = 0;
    for seed in 0..6 {
        let sample = sampler.sample(seed).unwrap();
        assert_eq!(sample.image.shape(), [24, 24, 24]);
        assert_eq!(sample.target.shape(), [24, 24, 24]);
        assert_eq!(sample.image.geometry().spacing_mm(), [8.0; 3]);
        let inside = sample.target.data().iter().filter(|&&v| v > 0.5).count();
        // The phantom brain is about 1.3 L, i.e. ~2600 voxels of 8 mm; scaling varies it.
        assert!(
            (1000..5000).contains(&inside),
            "seed {seed}: {inside} target voxels"
        );
        let (lo, hi) = sample.image.min_max().unwrap();
        assert!(
            lo >= 0.0 && hi <= 1.0 && hi > 0.5,
            "seed {seed}: range {lo}..{hi}"
        );
        // Masked samples are zero wherever the (dilated) mask is not: the target's outside
        // far from the brain is black.
        if sample.masked_dilation_mm.is_some() {
            masked += 1;
            let outside_bright = sample
                .image
                .data()
                .iter()
                .zip(sample.target.data())
                .filter(|(&v, &t)| t == 0.0 && v > 0.0)
                .count();
            let outside = sample.target.data().iter().filter(|&&t| t == 0.0).count();
            assert!(
                outside_bright < outside / 2,
                "seed {seed}: masking left {outside_bright}"
            );
        }
    }
    // Same seed, same sample.
    let a = sampler.sample(3).unwrap();
    let b = sampler.sample(3).unwrap();
    assert_eq!(a.image, b.image);
    assert!(
        masked > 0 && masked < 6,
        "{masked} of 6 masked at probability 0.5"
    );
}

#[test]
fn loss_decreases_and_segment_learns_a_fixed_sample_on_any_grid() {
    let w = world();
    let s = settings();
    let sampler = Sampler::new(&w.anatomy, &w.synth, &w.vocabulary, &s).unwrap();
    let sample = sampler.sample(11).unwrap();
    let mut trainer = BaselineTrainer::new(&tiny(), s.learning_rate, 1).unwrap();
    let losses: Vec<f64> = (0..40).map(|_| trainer.step(&sample).unwrap()).collect();
    let first = losses[..5].iter().sum::<f64>() / 5.0;
    let last = losses[35..].iter().sum::<f64>() / 5.0;
    println!("loss {first:.3} -> {last:.3}");
    assert!(last < 0.5 * first, "loss {first} -> {last}: {losses:?}");

    let model = trainer.trained(record(&s, 40));
    let truth = sample.target.threshold(0.5);
    let mask = segment(&model, &sample.image).unwrap();
    assert_eq!(mask.geometry(), sample.image.geometry());
    let fit = evaluate(&mask, &truth).unwrap();
    assert!(fit.dice > 0.8, "Dice on the training sample {}", fit.dice);

    // The same scan stored with permuted, flipped axes gives the same mask, on its own grid.
    let turned = sample.image.reorient(Orientation::parse("SPL").unwrap());
    assert_ne!(turned.geometry(), sample.image.geometry());
    let turned_mask = segment(&model, &turned).unwrap();
    assert_eq!(turned_mask.geometry(), turned.geometry());
    let back = evaluate(&turned_mask.to_ras(), &mask).unwrap();
    assert!(
        back.dice > 0.999,
        "orientation changed the mask: Dice {}",
        back.dice
    );
}

#[test]
fn train_writes_a_checkpoint_that_reloads_with_identical_predictions() {
    let w = world();
    let s = settings();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    let options = TrainOptions {
        settings: s.clone(),
        network: tiny(),
        minutes: 5.0,
        max_steps: Some(4),
        seed: 5,
        device: burn::tensor::Device::flex(),
        out: Some(out.clone()),
        stop: None,
    };
    let mut logged = Vec::new();
    let (model, report) = train::train(&options, &w.anatomy, &w.synth, &w.vocabulary, |l| {
        logged.push(l.step)
    })
    .unwrap();
    assert_eq!(report.steps, 4);
    assert_eq!(report.losses.len(), 4);
    assert_eq!(logged, vec![2, 4]);

    let loaded = TrainedBaseline::load(&out, &Device::flex()).unwrap();
    assert_eq!(loaded.record.steps, 4);
    assert_eq!(loaded.record.settings, s);
    let sampler = Sampler::new(&w.anatomy, &w.synth, &w.vocabulary, &s).unwrap();
    let image = sampler.sample(99).unwrap().image;
    let a = probabilities(&model, &image).unwrap();
    let b = probabilities(&loaded, &image).unwrap();
    assert_eq!(a, b);
    // A differently seeded network predicts differently (so the equality above could fail).
    let other = BaselineTrainer::new(&tiny(), 1e-3, 6)
        .unwrap()
        .trained(record(&s, 0));
    assert_ne!(probabilities(&other, &image).unwrap(), a);

    // A second save replaces the network atomically and updates the record.
    checkpoint::save(&out, &loaded.net, &record(&s, 7)).unwrap();
    assert_eq!(checkpoint::read_record(&out).unwrap().steps, 7);
}

#[test]
fn a_stop_request_ends_training_at_the_next_step_with_its_checkpoint() {
    // What SIGINT/SIGTERM do to `voxelprompt baseline train`: the flag is set, the step in
    // flight finishes, and the steps taken are saved.
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = TrainOptions {
        settings: settings(),
        network: tiny(),
        minutes: 5.0,
        max_steps: Some(10),
        seed: 5,
        device: burn::tensor::Device::flex(),
        out: Some(out.clone()),
        stop: Some(stop.clone()),
    };
    let (_, report) = train::train(&options, &w.anatomy, &w.synth, &w.vocabulary, |l| {
        if l.step == 2 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert_eq!(report.steps, 2);
    assert_eq!(checkpoint::read_record(&out).unwrap().steps, 2);
}

#[test]
fn a_lesion_class_baseline_learns_the_lesion_proper_on_a_conspicuous_contrast() {
    let w = world();
    let mut s = settings();
    s.target = "glioma".into();
    let sampler = Sampler::new(&w.anatomy, &w.synth, &w.vocabulary, &s).unwrap();
    let glioma = tasks::classes::CLASSES
        .iter()
        .find(|c| c.name == "glioma")
        .unwrap();
    for seed in 0..3 {
        let sample = sampler.sample(seed).unwrap();
        assert!(
            glioma.contrasts.contains(&sample.contrast),
            "{:?}",
            sample.contrast
        );
        let inside = sample.target.data().iter().filter(|&&v| v > 0.5).count();
        assert!(inside > 0, "seed {seed}: no lesion in the patch");
        // The lesion proper, not the brain: a small part of the patch.
        assert!(
            inside * 10 < sample.target.data().len(),
            "seed {seed}: {inside} voxels"
        );
    }
    s.target = "no such thing".into();
    assert!(Sampler::new(&w.anatomy, &w.synth, &w.vocabulary, &s).is_err());
}
