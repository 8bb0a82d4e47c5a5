//! End-to-end checks of the data engine on the analytic phantom (4 mm, ≤ 60³ voxels):
//! head model, determinism, contrast ordering, and that every recorded lesion attribute is
//! measurably true of the written volumes.

mod common;

use synth::anatomy::{Anatomy, EXTRACEREBRAL_CSF, SCALP, SKULL};
use synth::contrast::Contrast;
use synth::lesion::{ids, IntensityClass, LesionClass};
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};
use voxel::{Image, LabelMap};

fn setup() -> (Anatomy, SynthConfig, Vocabulary) {
    let config = SynthConfig::builtin().unwrap();
    let anatomy = Anatomy::phantom(4.0, &config.head).unwrap();
    (anatomy, config, Vocabulary::builtin().unwrap())
}

fn spec(contrasts: &[Contrast], lesions: &[LesionClass], sessions: usize) -> SubjectSpec {
    SubjectSpec {
        contrasts: contrasts.to_vec(),
        lesions: lesions.to_vec(),
        sessions,
        spacing_mm: [4.0; 3],
        mode: IntensityMode::Realistic,
    }
}

fn mean_where(img: &Image, labels: &LabelMap, ids: &[i32]) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for (&v, l) in img.data().iter().zip(labels.data()) {
        if ids.contains(l) {
            s += v as f64;
            n += 1;
        }
    }
    assert!(n > 0, "no voxels of {ids:?}");
    s / n as f64
}

#[test]
fn head_model_surrounds_the_brain() {
    let (anatomy, _, vocab) = setup();
    let labels = anatomy.labels.labels();
    for id in [0, 2, 41, 4, 16, 1028, 2011, EXTRACEREBRAL_CSF, SKULL, SCALP] {
        assert!(labels.contains(&id), "phantom head lacks {id}");
    }
    // Along the line from the centre to the top of the head: brain, CSF, skull, scalp, air.
    let g = anatomy.labels.geometry();
    let c = g
        .world_to_voxel([0.0, -8.0, 0.0])
        .map(|x| x.round() as usize);
    let seq = common::layers_upward(&anatomy.labels, [c[0] + 8, c[1], c[2]]);
    assert_eq!(seq, vec![0, 1, 2, 3, 4, 5], "radial layer order");
    // ICV = brain + CSF and is larger than the brain.
    let icv = anatomy
        .labels
        .mask_of_any(&vocab.get("ICV").unwrap().anatomy_ids())
        .count();
    let brain = anatomy
        .labels
        .mask_of_any(&vocab.get("brain").unwrap().anatomy_ids())
        .count();
    assert!(icv > brain && brain > 0);
}

#[test]
fn same_seed_same_subject_different_seed_different() {
    let (anatomy, config, vocab) = setup();
    let s = spec(&[Contrast::T1, Contrast::Flair], &[LesionClass::Glioma], 2);
    let a = synthesize_subject(&anatomy, &s, &config, &vocab, "a", 7).unwrap();
    let b = synthesize_subject(&anatomy, &s, &config, &vocab, "a", 7).unwrap();
    let c = synthesize_subject(&anatomy, &s, &config, &vocab, "a", 8).unwrap();
    for (x, y) in a.sessions.iter().zip(&b.sessions) {
        assert_eq!(x.labels.data(), y.labels.data());
        assert_eq!(x.lesions.data(), y.lesions.data());
        for c in [Contrast::T1, Contrast::Flair] {
            assert_eq!(x.images[&c].image.data(), y.images[&c].image.data());
        }
    }
    assert_eq!(
        synth::subject::subject_json(&a, &s),
        synth::subject::subject_json(&b, &s)
    );
    assert_ne!(
        a.sessions[0].images[&Contrast::T1].image.data(),
        c.sessions[0].images[&Contrast::T1].image.data()
    );
}

#[test]
fn tissue_ordering_per_contrast() {
    let (anatomy, config, vocab) = setup();
    let all = [
        Contrast::T1,
        Contrast::T2,
        Contrast::Flair,
        Contrast::Ct,
        Contrast::Adc,
    ];
    let sub = synthesize_subject(&anatomy, &spec(&all, &[], 1), &config, &vocab, "o", 3).unwrap();
    let s = &sub.sessions[0];
    let wm = [2, 41];
    let gm: Vec<i32> = vocab.get("cerebral cortex").unwrap().anatomy_ids();
    let csf = [4, 43];
    let m = |c: Contrast, ids: &[i32]| mean_where(&s.images[&c].image, &s.labels, ids);
    assert!(
        m(Contrast::T1, &wm) > m(Contrast::T1, &gm) && m(Contrast::T1, &gm) > m(Contrast::T1, &csf)
    );
    assert!(
        m(Contrast::T2, &csf) > m(Contrast::T2, &gm) && m(Contrast::T2, &gm) > m(Contrast::T2, &wm)
    );
    assert!(
        m(Contrast::Flair, &gm) > m(Contrast::Flair, &wm)
            && m(Contrast::Flair, &wm) > m(Contrast::Flair, &csf)
    );
    assert!(m(Contrast::Adc, &csf) > m(Contrast::Adc, &wm));
    let hu = s.images[&Contrast::Ct].hu.as_ref().unwrap();
    assert!(
        mean_where(hu, &s.labels, &[SKULL]) > 500.0,
        "bone is bright on CT"
    );
    assert!(
        mean_where(hu, &s.labels, &[0]) < -900.0,
        "air is dark on CT"
    );
    for c in all {
        assert!(
            s.images[&c]
                .image
                .data()
                .iter()
                .all(|v| (0.0..=1.0).contains(v)),
            "{c:?} outside [0,1]"
        );
    }
}

/// White or grey matter (cortex, deep nuclei) by FreeSurfer id.
fn is_parenchyma(l: i32) -> bool {
    matches!(l, 2 | 41 | 10..=13 | 17 | 18 | 26 | 28 | 49..=54 | 58 | 60 | 1000..=2999)
}

/// Whether a 6-neighbour of voxel `i` is CSF or air: such voxels are partial-volume mixtures at
/// 4 mm and would make the band darker (T1) or brighter (T2) than the tissue it stands for.
fn touches_csf(labels: &LabelMap, i: usize) -> bool {
    use voxel::neighbourhood::{offset_index, FACE_OFFSETS};
    let g = labels.geometry();
    let c = g.coords(i);
    FACE_OFFSETS.iter().any(|&o| {
        offset_index(g, c, o).is_none_or(|q| {
            matches!(
                labels.data()[q],
                0 | 4 | 5 | 14 | 15 | 24 | 43 | 44 | EXTRACEREBRAL_CSF
            )
        })
    })
}

/// Mean of `img` over the `comps` voxels and over the normal tissue within
/// `SURROUNDINGS_MM` of the whole lesion that is parenchyma (the surroundings), computed here with `voxel`'s
/// morphology, independently of the generator.
fn lesion_vs_shell(
    img: &Image,
    labels: &LabelMap,
    lesions: &LabelMap,
    comps: &[i32],
) -> (f64, f64) {
    // The lesion's interior (one voxel in from its edge), so that partial-volume blur with the
    // neighbouring tissue does not decide the comparison for small lesions.
    let lesion = voxel::morphology::erode(
        &lesions.map(|l| comps.contains(&l)),
        lesions.geometry().spacing_mm()[0],
    )
    .unwrap();
    if lesion.count() < 5 {
        return (f64::NAN, f64::NAN);
    }
    let grown = voxel::morphology::dilate(&lesions.map(|l| l != 0), synth::lesion::SURROUNDINGS_MM)
        .unwrap();
    let (mut a, mut na, mut b, mut nb) = (0.0, 0, 0.0, 0);
    for i in 0..img.data().len() {
        let v = img.data()[i] as f64;
        if lesion.data()[i] {
            a += v;
            na += 1;
        } else if grown.data()[i]
            && lesions.data()[i] == 0
            && is_parenchyma(labels.data()[i])
            && !touches_csf(labels, i)
        {
            b += v;
            nb += 1;
        }
    }
    (a / na.max(1) as f64, b / nb.max(1) as f64)
}

#[test]
fn recorded_attributes_are_measurably_true() {
    let (anatomy, config, vocab) = setup();
    let checked = check_recorded_attributes(
        &anatomy,
        &config,
        &vocab,
        &[
            (11, LesionClass::Glioma),
            (12, LesionClass::AcuteInfarct),
            (13, LesionClass::Metastasis),
            (14, LesionClass::Glioma),
        ],
    );
    assert!(checked >= 10, "only {checked} intensity checks ran");
}

/// Synthesises one 4 mm subject per `(seed, class)` from `anatomy` and checks that its lesion
/// record is measurably true of the volumes (volume, lobe, side, territory, intensity classes,
/// enhancement, restriction); returns the number of intensity checks that ran.
fn check_recorded_attributes(
    anatomy: &Anatomy,
    config: &SynthConfig,
    vocab: &Vocabulary,
    cases: &[(u64, LesionClass)],
) -> usize {
    let contrasts = [
        Contrast::T1,
        Contrast::Flair,
        Contrast::T1c,
        Contrast::Dwi,
        Contrast::Adc,
    ];
    // The whole head in view: these seeds were chosen on whole-head grids, and a cut field of
    // view draws another subject whose 4 mm intensity checks can sit within noise of the
    // recorded class (fields of view are tested in `fields_of_view_frame_the_head`).
    let mut config = config.clone();
    config.spatial.fov_mode_weights = [(synth::spatial::FovMode::Head, 1.0)].into();
    let config = &config;
    let mut checked = 0;
    for &(seed, class) in cases {
        let sub = synthesize_subject(
            anatomy,
            &spec(&contrasts, &[class], 1),
            config,
            vocab,
            "t",
            seed,
        )
        .unwrap();
        let s = &sub.sessions[0];
        let r = &s.lesion_records[0];
        let vml = s.labels.geometry().voxel_volume_mm3() / 1000.0;
        // Volume: recorded = counted (lesion proper excludes edema).
        let proper = s
            .lesions
            .data()
            .iter()
            .filter(|&&l| l != 0 && l != ids::EDEMA)
            .count();
        assert!(
            (r.volume_ml - proper as f64 * vml).abs() < 1e-9,
            "{class:?} volume"
        );
        assert!(r.volume_ml > 0.0, "{class:?} painted nothing");
        // Lobe: the centroid's structure is in the recorded lobe, or (white matter) the lobe
        // is one of the cerebral lobes.
        let c = s
            .labels
            .geometry()
            .world_to_voxel(r.centroid_mm)
            .map(|x| x.round() as usize);
        let under = s.labels.at(c[0], c[1], c[2]);
        let structure = vocab
            .structure_of_label(under)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        if (1000..3000).contains(&under) {
            assert!(
                vocab.is_within(&structure, &r.lobe) || structure.ends_with(&r.lobe),
                "{structure} not in {}",
                r.lobe
            );
        }
        // Hemisphere: the centroid lies on the recorded side of the grid's anatomy.
        if r.hemisphere != synth::Hemisphere::Both {
            let t = vocab.structure_of_label(under);
            if let Some(t) = t.filter(|t| t.hemisphere != synth::Hemisphere::Both) {
                assert_eq!(t.hemisphere, r.hemisphere, "{class:?} hemisphere");
            }
        }
        if class == LesionClass::AcuteInfarct {
            assert!(r.territory.is_some() && r.restricted_diffusion);
        }
        // Intensities: hyper is brighter than the surroundings, hypo darker, on the images.
        let comps: Vec<i32> = r
            .components
            .iter()
            .map(|c| c.id)
            .filter(|&i| i != ids::EDEMA)
            .collect();
        // A mostly cortical lesion at 4 mm lies in a cortex 1-2 voxels thick: its interior and
        // band are partial-volume mixtures with white matter and CSF, so the image cannot show
        // the tissue contrast the record states; skip those intensity checks.
        let under: Vec<i32> = (0..s.lesions.data().len())
            .filter(|&i| comps.contains(&s.lesions.data()[i]))
            .map(|i| s.labels.data()[i])
            .collect();
        let cortical = under.iter().filter(|l| (1000..3000).contains(*l)).count();
        if 2 * cortical > under.len() {
            println!("{class:?}: mostly cortical at 4 mm, intensity classes not measurable");
            continue;
        }
        for (&con, &class_rec) in &r.intensity {
            let Some(img) = s.images.get(&con) else {
                continue;
            };
            let (les, shell) = lesion_vs_shell(&img.image, &s.labels, &s.lesions, &comps);
            if les.is_nan() {
                println!("{class:?}: lesion interior too small to measure at 4 mm");
                continue;
            }
            match class_rec {
                IntensityClass::Hyper => assert!(
                    les > shell,
                    "{class:?} {con:?} recorded hyper: {les:.3} vs {shell:.3}"
                ),
                IntensityClass::Hypo => assert!(
                    les < shell,
                    "{class:?} {con:?} recorded hypo: {les:.3} vs {shell:.3}"
                ),
                IntensityClass::Iso => {}
            }
            checked += 1;
        }
        if r.enhancement {
            let (les, shell) = lesion_vs_shell(
                &s.images[&Contrast::T1c].image,
                &s.labels,
                &s.lesions,
                &[ids::ENHANCING],
            );
            assert!(
                les.is_nan() || les > shell,
                "enhancing rim not bright on T1c"
            );
        }
        if r.restricted_diffusion {
            let (a, b) = lesion_vs_shell(
                &s.images[&Contrast::Adc].image,
                &s.labels,
                &s.lesions,
                &comps,
            );
            let (d, e) = lesion_vs_shell(
                &s.images[&Contrast::Dwi].image,
                &s.labels,
                &s.lesions,
                &comps,
            );
            assert!(
                a.is_nan() || (a < b && d > e),
                "restriction: ADC {a:.3}/{b:.3}, DWI {d:.3}/{e:.3}"
            );
        }
    }
    checked
}

#[test]
fn recorded_growth_equals_measured_change() {
    let (anatomy, config, vocab) = setup();
    let sub = synthesize_subject(
        &anatomy,
        &spec(&[Contrast::T1], &[LesionClass::Glioma], 3),
        &config,
        &vocab,
        "g",
        21,
    )
    .unwrap();
    let vml = sub.sessions[0].labels.geometry().voxel_volume_mm3() / 1000.0;
    let measured = |k: usize| {
        sub.sessions[k]
            .lesions
            .data()
            .iter()
            .filter(|&&l| l != 0 && l != ids::EDEMA)
            .count() as f64
            * vml
    };
    assert_eq!(sub.growth.len(), 2);
    for g in &sub.growth {
        assert!((g.change_ml - (measured(g.session) - measured(0))).abs() < 1e-9);
        assert!(g.days > 0);
    }
    assert!(sub.sessions[1].date > sub.sessions[0].date);
    // Ventricles do not shrink over follow-up.
    assert!(sub.sessions[2].ventricles_ml >= sub.sessions[0].ventricles_ml * 0.95);
}

#[test]
fn writes_nifti_json_and_png() {
    let (anatomy, config, vocab) = setup();
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&[Contrast::T1, Contrast::Ct], &[LesionClass::Wmh], 1);
    let dirs = synth::subject::write_subjects_from(dir.path(), 1, &anatomy, &s, &config, &vocab, 5)
        .unwrap();
    let ses = dirs[0].join("ses-0");
    for f in [
        "t1.nii.gz",
        "ct.nii.gz",
        "ct_hu.nii.gz",
        "labels.nii.gz",
        "lesions.nii.gz",
        "t1.png",
    ] {
        assert!(ses.join(f).exists(), "{f} missing");
    }
    let back = voxel::io::read_labels(&ses.join("lesions.nii.gz")).unwrap();
    assert!(back.data().contains(&ids::WMH));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("subject.json")).unwrap())
            .unwrap();
    assert_eq!(json["sessions"][0]["lesions"][0]["class"], "wmh");
}

#[test]
fn subjects_take_the_anatomies_in_turn() {
    let (anatomy, config, vocab) = setup();
    let mut other = anatomy.clone();
    other.name = "phantom-b".into();
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&[Contrast::T1], &[], 1);
    let dirs = synth::subject::write_subjects_from_anatomies(
        dir.path(),
        3,
        &[anatomy.clone(), other],
        &s,
        &config,
        &vocab,
        5,
    )
    .unwrap();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            let j: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("subject.json")).unwrap())
                    .unwrap();
            j["anatomy"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names, ["phantom", "phantom-b", "phantom"]);
    assert!(synth::subject::write_subjects_from_anatomies(
        dir.path(),
        1,
        &[],
        &s,
        &config,
        &vocab,
        5
    )
    .is_err());
    let nowhere = std::path::Path::new("/nonexistent");
    assert!(Anatomy::load("nope", nowhere, &config).is_err());
    assert!(matches!(
        Anatomy::load("neuromorphometrics", nowhere, &config),
        Err(synth::SynthError::MissingSource { .. })
    ));
    assert!(synth::anatomy::available_anatomies(nowhere).is_empty());
}

#[test]
fn fsaverage_subject_when_cache_present() {
    let config = SynthConfig::builtin().unwrap();
    let vocab = Vocabulary::builtin().unwrap();
    let Some(anatomy) = common::fsaverage_or_skip(&config) else {
        return;
    };
    let labels = anatomy.labels.labels();
    for id in [2, 17, 1028, 2035, EXTRACEREBRAL_CSF, SKULL, SCALP] {
        assert!(labels.contains(&id), "fsaverage head lacks {id}");
    }
    let mut s = spec(&[Contrast::T1], &[LesionClass::AcuteInfarct], 1);
    s.spacing_mm = [4.0; 3];
    let sub = synthesize_subject(&anatomy, &s, &config, &vocab, "fs", 1).unwrap();
    assert!(sub.sessions[0].lesion_records[0].volume_ml > 0.0);
}

/// Subjects from the second real anatomy (the CAT12 neuromorphometrics atlas) pass the same
/// attribute checks as the phantom's, and every lesion class can be placed in it.
#[test]
fn neuromorphometrics_subjects_when_cache_present() {
    let present = synth::anatomy::default_cache_dir()
        .is_some_and(|d| synth::anatomy::available_anatomies(&d).contains(&"neuromorphometrics"));
    if !present {
        return voxel::test_support::skip_missing(
            "the neuromorphometrics atlas in the anatomy cache",
            "run python3 scripts/fetch_anatomy.py",
        );
    }
    let config = SynthConfig::builtin().unwrap();
    let vocab = Vocabulary::builtin().unwrap();
    let mut loaded = synth::subject::load_anatomies("neuromorphometrics", &config).unwrap();
    assert_eq!(loaded.len(), 1);
    let anatomy = loaded.remove(0);
    assert_eq!(anatomy.source, synth::Source::Neuromorphometrics);
    let checked = check_recorded_attributes(
        &anatomy,
        &config,
        &vocab,
        &[
            (11, LesionClass::Glioma),
            (12, LesionClass::AcuteInfarct),
            (13, LesionClass::Metastasis),
            (14, LesionClass::ChronicInfarct),
            (15, LesionClass::Haemorrhage),
            (16, LesionClass::Glioma),
            (17, LesionClass::Glioma),
            (18, LesionClass::Haemorrhage),
        ],
    );
    assert!(checked >= 10, "only {checked} intensity checks ran");
    for (seed, class) in LesionClass::ALL.iter().enumerate() {
        let sub = synthesize_subject(
            &anatomy,
            &spec(&[Contrast::T1], &[*class], 1),
            &config,
            &vocab,
            "nmm",
            100 + seed as u64,
        )
        .unwrap_or_else(|e| panic!("{class:?}: {e}"));
        let r = &sub.sessions[0].lesion_records[0];
        assert!(r.volume_ml > 0.0, "{class:?} painted nothing");
        assert!(
            !r.lobe.is_empty() && r.lobe != "unknown",
            "{class:?} lobe {:?}",
            r.lobe
        );
    }
}

/// ADC and CT are quantitative maps: no bias field or display gamma, so the ADC image times its
/// normalisation scale reads in 10⁻³ mm²/s (white matter ≈ 0.75, CSF ≈ 3.0 in the tissue table,
/// with the subject's random variation) and its white-matter values do not drift across the head.
#[test]
fn adc_maps_are_quantitative() {
    let (anatomy, config, vocab) = setup();
    for seed in [1, 2, 3, 4] {
        let sub = synthesize_subject(
            &anatomy,
            &spec(&[Contrast::Adc, Contrast::Ct, Contrast::T1], &[], 1),
            &config,
            &vocab,
            "adc",
            seed,
        )
        .unwrap();
        let s = &sub.sessions[0];
        for c in [Contrast::Adc, Contrast::Ct] {
            let acq = &s.images[&c].acquisition;
            assert_eq!((acq.gamma, acq.bias_sd), (1.0, 0.0), "{c:?} seed {seed}");
        }
        let adc = &s.images[&Contrast::Adc];
        let scale = adc.acquisition.normalisation_scale;
        assert_eq!(scale, config.intensity.adc_max);
        let wm = mean_where(&adc.image, &s.labels, &[2, 41]) * scale;
        let csf = mean_where(&adc.image, &s.labels, &[4, 43]) * scale;
        assert!(
            (0.5..1.1).contains(&wm),
            "white matter ADC {wm} (seed {seed})"
        );
        // Ventricles are a few 4 mm voxels wide: partial volume with white matter lowers them.
        assert!(
            (1.2..3.3).contains(&csf),
            "ventricle ADC {csf} (seed {seed})"
        );
        // Left and right white matter agree: no bias field scales one side.
        let (l, r) = (
            mean_where(&adc.image, &s.labels, &[2]),
            mean_where(&adc.image, &s.labels, &[41]),
        );
        assert!((l / r - 1.0).abs() < 0.05, "left/right WM ADC {l} vs {r}");
    }
}
