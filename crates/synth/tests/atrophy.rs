//! Ventricle and sulcal size per subject (`[atrophy]`), measured on fsaverage's own 1 mm label
//! map by counting labels: the configured range spans small to large ventricles, only the
//! labels the rule names change (and each to its own side), nothing outside the brain moves,
//! and a synthesised subject records its draw and carries it into its label map.

mod common;

use std::collections::BTreeMap;
use synth::atrophy::Atrophy;
use synth::contrast::Contrast;
use synth::subject::subject_json;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};
use voxel::LabelMap;

const LATERAL_VENTRICLES: [i32; 2] = [4, 43];
const EXTRACEREBRAL_CSF: i32 = synth::labels::EXTRACEREBRAL_CSF;

fn ml(labels: &LabelMap, ok: impl Fn(i32) -> bool) -> f64 {
    let voxel_ml = labels.geometry().spacing_mm().iter().product::<f64>() / 1000.0;
    labels.data().iter().filter(|&&l| ok(l)).count() as f64 * voxel_ml
}

fn is_cortex(l: i32) -> bool {
    l == 3 || l == 42 || (1000..3000).contains(&l)
}

#[test]
fn atrophy_spans_small_to_large_ventricles_and_changes_only_its_labels() {
    let config = SynthConfig::builtin().unwrap();
    let Some(anatomy) = common::fsaverage_or_skip(&config) else {
        return;
    };
    let labels = &anatomy.labels;
    let maps = anatomy
        .atrophy_maps
        .as_ref()
        .expect("fsaverage has ventricles");
    let ventricles = |m: &LabelMap| ml(m, |l| LATERAL_VENTRICLES.contains(&l));
    let base = ventricles(labels);
    let with = |ventricle_wall_mm, sulcal_widening| {
        Atrophy {
            ventricle_wall_mm,
            sulcal_widening,
            ..Atrophy::sample(&config.atrophy, &mut synth::rng::stream(1, 5))
        }
        .apply(labels, maps)
        .unwrap()
        .into_owned()
    };
    let [low, high] = config.atrophy.ventricle_wall_mm;
    let smallest = ventricles(&with(low, 0.0));
    let largest = ventricles(&with(high, 0.0));
    eprintln!("lateral ventricles: {smallest:.1} / {base:.1} / {largest:.1} mL");
    assert!(smallest < 0.8 * base, "{smallest:.1} vs {base:.1} mL");
    assert!(largest > 2.0 * base, "{largest:.1} vs {base:.1} mL");

    // Each changed voxel follows the rule: a side's white matter, caudate or thalamus into that
    // side's ventricle, cortex into the CSF over the brain.
    let widest = config.atrophy.sulcal_widening[1];
    let both = with(high, widest);
    let mut changes: BTreeMap<(i32, i32), usize> = BTreeMap::new();
    for (&from, &to) in labels.data().iter().zip(both.data()) {
        if from != to {
            *changes.entry((from, to)).or_default() += 1;
        }
    }
    for &(from, to) in changes.keys() {
        let allowed = matches!((from, to), (2 | 10 | 11, 4) | (41 | 49 | 50, 43))
            || (is_cortex(from) && to == EXTRACEREBRAL_CSF);
        assert!(allowed, "{from} became {to}");
    }
    let cortex = ml(labels, is_cortex);
    let thinned = ml(&both, is_cortex);
    eprintln!("cortex {cortex:.1} -> {thinned:.1} mL");
    // The outer layer is about a third of fsaverage's cortex.
    assert!(
        thinned < (1.0 - 0.2 * widest) * cortex && thinned > (1.0 - 0.5 * widest) * cortex,
        "{thinned:.1} of {cortex:.1} mL at {widest}"
    );
    // Shrinking gives the ventricle back to its own side's white matter.
    let shrunk = with(low, 0.0);
    for (&from, &to) in labels.data().iter().zip(shrunk.data()) {
        if from != to {
            assert!(
                matches!((from, to), (4, 2) | (43, 41)),
                "{from} became {to}"
            );
        }
    }
}

#[test]
fn subjects_record_their_atrophy_and_show_it() {
    let mut config = SynthConfig::builtin().unwrap();
    let anatomy = synth::Anatomy::phantom(2.0, &config.head).unwrap();
    assert!(anatomy.atrophy_maps.is_some(), "the phantom has ventricles");
    let vocab = Vocabulary::builtin().unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::T1],
        lesions: vec![],
        sessions: 1,
        spacing_mm: [2.0; 3],
        mode: IntensityMode::Realistic,
    };
    let mut ventricles_at = |wall_mm: f64| {
        config.atrophy.ventricle_wall_mm = [wall_mm, wall_mm];
        config.atrophy.sulcal_widening = [0.0, 0.0];
        let s = synthesize_subject(&anatomy, &spec, &config, &vocab, "t", 3).unwrap();
        let json = subject_json(&s, &spec);
        assert_eq!(json["atrophy"]["ventricle_wall_mm"], wall_mm);
        ml(&s.sessions[0].labels, |l| LATERAL_VENTRICLES.contains(&l))
    };
    let (none, grown) = (ventricles_at(0.0), ventricles_at(4.0));
    assert!(grown > 1.5 * none, "{grown:.1} vs {none:.1} mL");
}
