//! Skull-stripped scans (`[skull_stripped]` in the synthesis configuration): a question about
//! the brain may come with its MR scans zeroed outside the brain mask, as BET or SynthStrip
//! leave them; a question about the head, or one with a CT scan, keeps the whole head. Checked
//! on the phantom against the truth's own label map.

use synth::{Contrast, SynthConfig};
use tasks::catalogue::{Catalogue, TemplateSplit};
use tasks::scenario::{Key, Roi};
use tasks::TaskSample;

const SPACING_MM: f64 = 3.0;

/// The phantom catalogue where every eligible question is stripped to the undilated brain mask.
fn always_stripped() -> Catalogue {
    let mut config = SynthConfig::builtin().unwrap();
    config.skull_stripped.probability = 1.0;
    config.skull_stripped.intracranial_probability = 0.0;
    config.skull_stripped.dilation_mm = [0.0, 0.0];
    Catalogue::phantom(SPACING_MM)
        .unwrap()
        .with_synth_config(config)
}

fn segment(cat: &Catalogue, target: &str, seed: u64) -> TaskSample {
    let t = cat.target_index(target).unwrap();
    cat.sample_where("segment_anatomy", seed, TemplateSplit::Any, &|s| {
        s.get("target") == Some(Key::Roi(Roi::Anatomy(t)))
    })
    .unwrap()
}

/// Voxels of each input that are non-zero outside, and zero inside, the brain mask.
fn outside_and_inside_zero(cat: &Catalogue, sample: &TaskSample) -> Vec<(Contrast, usize, f64)> {
    let ids = cat.vocab().require("brain mask").unwrap().anatomy_ids();
    let labels = &sample.truth.session(0).unwrap().labels;
    sample
        .inputs
        .iter()
        .map(|input| {
            let (mut outside_nonzero, mut inside, mut inside_zero) = (0, 0, 0);
            for (&v, &l) in input.image.data().iter().zip(labels.data()) {
                if ids.contains(&l) {
                    inside += 1;
                    inside_zero += (v == 0.0) as usize;
                } else {
                    outside_nonzero += (v != 0.0) as usize;
                }
            }
            (
                input.contrast,
                outside_nonzero,
                inside_zero as f64 / inside as f64,
            )
        })
        .collect()
}

#[test]
fn brain_questions_come_stripped_and_head_questions_keep_the_head() {
    let cat = always_stripped();
    let (mut stripped, mut ct) = (0, 0);
    for seed in 0..6u64 {
        let sample = segment(&cat, "lateral ventricle", seed);
        let counts = outside_and_inside_zero(&cat, &sample);
        if sample.inputs.iter().any(|i| i.contrast == Contrast::Ct) {
            // CT is never stripped: its zero is water.
            assert!(counts.iter().all(|c| c.1 > 1000), "seed {seed}: {counts:?}");
            ct += 1;
            continue;
        }
        for (contrast, outside_nonzero, inside_zero) in counts {
            assert_eq!(outside_nonzero, 0, "seed {seed} {contrast:?}");
            // The brain itself is untouched (an MR image is dark only in a few voxels of it).
            assert!(
                inside_zero < 0.05,
                "seed {seed} {contrast:?}: {inside_zero}"
            );
        }
        stripped += 1;
    }
    assert!(stripped >= 3, "{stripped} stripped, {ct} with CT");

    // The skull lies outside any brain mask: its question keeps the head.
    for seed in 0..3u64 {
        let sample = segment(&cat, "skull", seed);
        let counts = outside_and_inside_zero(&cat, &sample);
        assert!(counts.iter().all(|c| c.1 > 1000), "seed {seed}: {counts:?}");
    }
}

#[test]
fn the_builtin_engine_strips_some_brain_questions_only() {
    let cat = Catalogue::phantom(SPACING_MM).unwrap();
    let p = cat.synth_config().skull_stripped.probability;
    assert!(p > 0.0 && p < 0.5, "{p}");
    let stripped = (0..24u64)
        .filter(|&seed| {
            let sample = segment(&cat, "white matter", seed);
            let counts = outside_and_inside_zero(&cat, &sample);
            counts.iter().all(|c| c.1 == 0)
        })
        .count();
    assert!((1..12).contains(&stripped), "{stripped} of 24 stripped");
}
