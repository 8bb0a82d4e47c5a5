//! Blood on CT: a subdural haematoma that is acute (hyperdense) at baseline is a chronic,
//! hypodense collection at a follow-up months later (lesion map, records and the CT itself),
//! and a thin collection against the skull reads the density it was given, not bone.

use synth::anatomy::Anatomy;
use synth::contrast::Contrast;
use synth::contrast::SubjectTissues;
use synth::lesion::{ids, LesionClass};
use synth::subject::SDH_CHRONIC_AFTER_DAYS;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};

fn mean_hu(hu: &[f32], lesions: &[i32], id: i32) -> Option<f64> {
    let v: Vec<f64> = hu
        .iter()
        .zip(lesions)
        .filter(|(_, &l)| l == id)
        .map(|(&h, _)| h as f64)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[test]
fn acute_subdural_blood_is_chronic_and_darker_at_follow_up() {
    let mut config = SynthConfig::builtin().unwrap();
    config.spatial.thick_slice_probability = 0.0;
    config.intensity.blur_sigma_vox = [0.0, 0.3];
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(3.0, &config.head).unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::Ct],
        lesions: vec![LesionClass::SubduralHaematoma],
        sessions: 2,
        spacing_mm: [3.0; 3],
        mode: IntensityMode::Realistic,
    };
    let mut checked = 0;
    for seed in 0..12 {
        let s = synthesize_subject(&anatomy, &spec, &config, &vocab, "age", seed).unwrap();
        let (base, follow) = (&s.sessions[0], &s.sessions[1]);
        let base_hu = base.images[&Contrast::Ct].hu.as_ref().unwrap();
        let Some(acute) = mean_hu(base_hu.data(), base.lesions.data(), ids::SDH_ACUTE) else {
            continue;
        };
        assert!(follow.days_from_baseline >= SDH_CHRONIC_AFTER_DAYS);
        assert!(
            !follow.lesions.data().contains(&ids::SDH_ACUTE),
            "seed {seed}: fresh blood left after {} days",
            follow.days_from_baseline
        );
        let components: Vec<i32> = follow.lesion_records[0]
            .components
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(components, vec![ids::SDH_CHRONIC], "seed {seed}");
        let follow_hu = follow.images[&Contrast::Ct].hu.as_ref().unwrap();
        let chronic = mean_hu(follow_hu.data(), follow.lesions.data(), ids::SDH_CHRONIC)
            .expect("the collection is still there");
        assert!(
            chronic < acute - 20.0,
            "seed {seed}: follow-up {chronic:.0} HU vs baseline acute {acute:.0} HU"
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} seeds had acute blood at baseline"
    );
}

#[test]
fn thin_collections_against_the_skull_read_their_own_density() {
    let mut config = SynthConfig::builtin().unwrap();
    // Within-grid thick slices mix bone into the slab at the vertex, as real 5 mm CT does;
    // this checks the in-plane point spread alone.
    config.spatial.thick_slice_probability = 0.0;
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(2.0, &config.head).unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::Ct],
        lesions: vec![LesionClass::SubduralHaematoma],
        sessions: 2,
        spacing_mm: [2.0; 3],
        mode: IntensityMode::Realistic,
    };
    let mut errors = Vec::new();
    for seed in 0..8 {
        let s = synthesize_subject(&anatomy, &spec, &config, &vocab, "ct", seed).unwrap();
        let set = SubjectTissues::sample(&config, spec.mode, &mut synth::rng::stream(seed, 1))
            .means(&config, Contrast::Ct)
            .of_lesion(ids::SDH_CHRONIC) as f64;
        let f = &s.sessions[1];
        let hu = f.images[&Contrast::Ct].hu.as_ref().unwrap();
        let measured = mean_hu(hu.data(), f.lesions.data(), ids::SDH_CHRONIC).unwrap();
        errors.push((measured - set).abs());
    }
    errors.sort_by(|a, b| a.total_cmp(b));
    println!("|measured - set| HU of chronic SDH, 8 seeds: {errors:.1?}");
    assert!(
        errors[4] < 5.0 && errors[7] < 15.0,
        "chronic subdural collections read far from their density: {errors:.0?} HU"
    );
}

#[test]
fn ct_thick_slices_are_axial_and_mr_ones_take_any_plane() {
    let mut config = SynthConfig::builtin().unwrap();
    config.spatial.thick_slice_probability = 1.0;
    let mut rng = synth::rng::stream(9, 0);
    let mut mr_axes = [0usize; 3];
    for _ in 0..300 {
        let ct = synth::contrast::Acquisition::sample(&config, Contrast::Ct, [1.0; 3], &mut rng);
        if let Some(t) = ct.thick_slices {
            assert_eq!(t.axis, 2, "CT slices across axis {}", t.axis);
        }
        let mr = synth::contrast::Acquisition::sample(&config, Contrast::T2, [1.0; 3], &mut rng);
        if let Some(t) = mr.thick_slices {
            mr_axes[t.axis] += 1;
        }
    }
    assert!(
        mr_axes.iter().all(|&n| n > 30),
        "MR slice planes {mr_axes:?}"
    );
}

#[test]
fn intraparenchymal_haemorrhage_is_no_longer_dense_at_follow_up() {
    let mut config = SynthConfig::builtin().unwrap();
    config.spatial.thick_slice_probability = 0.0;
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(3.0, &config.head).unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::Ct],
        lesions: vec![LesionClass::Haemorrhage],
        sessions: 2,
        spacing_mm: [3.0; 3],
        mode: IntensityMode::Realistic,
    };
    let mut checked = 0;
    for seed in 0..4 {
        let s = synthesize_subject(&anatomy, &spec, &config, &vocab, "iph", seed).unwrap();
        let hu = |k: usize| {
            let ses = &s.sessions[k];
            let img = ses.images[&Contrast::Ct].hu.as_ref().unwrap();
            mean_hu(img.data(), ses.lesions.data(), ids::HAEMORRHAGE)
        };
        let (Some(acute), Some(late)) = (hu(0), hu(1)) else {
            continue; // resorbed completely at this resolution
        };
        assert!(acute > 50.0, "seed {seed}: fresh haemorrhage {acute:.0} HU");
        assert!(
            late < 30.0,
            "seed {seed}: {late:.0} HU after {} days",
            s.sessions[1].days_from_baseline
        );
        let class = |k: usize| s.sessions[k].lesion_records[0].intensity[&Contrast::Ct];
        assert_eq!(
            class(0),
            synth::lesion::IntensityClass::Hyper,
            "seed {seed}"
        );
        assert_eq!(class(1), synth::lesion::IntensityClass::Hypo, "seed {seed}");
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} haemorrhages were still visible at follow-up"
    );
}
