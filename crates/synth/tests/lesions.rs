//! The lesion classes added for issue 3 (meningioma, arachnoid cyst, intraparenchymal
//! haemorrhage, subdural haematoma, abscess), several metastases per subject, and the smooth
//! deformation of every lesion, checked on the analytic phantom at 3 mm against measurements made
//! here on the written volumes (voxel's morphology, not the generator's own bookkeeping).

use synth::anatomy::{Anatomy, EXTRACEREBRAL_CSF, SCALP, SKULL};
use synth::contrast::Contrast;
use synth::lesion::{ids, IntensityClass, LesionClass, LesionRecord};
use synth::{
    synthesize_subject, Hemisphere, IntensityMode, Subject, SubjectSpec, SynthConfig, Vocabulary,
};
use voxel::{Image, LabelMap, Mask};

const SPACING_MM: f64 = 3.0;

/// Phantom anatomy and a configuration whose acquisitions keep the tissue contrast measurable
/// on thin lesions at 3 mm: no thick slices and little partial-volume blur (bias field, gamma,
/// texture and noise stay random).
fn setup() -> (Anatomy, SynthConfig, Vocabulary) {
    let mut config = SynthConfig::builtin().unwrap();
    config.spatial.thick_slice_probability = 0.0;
    config.intensity.blur_sigma_vox = [0.0, 0.3];
    let anatomy = Anatomy::phantom(SPACING_MM, &config.head).unwrap();
    (anatomy, config, Vocabulary::builtin().unwrap())
}

fn subject(
    setup: &(Anatomy, SynthConfig, Vocabulary),
    lesions: &[LesionClass],
    contrasts: &[Contrast],
    seed: u64,
) -> Subject {
    let spec = SubjectSpec {
        contrasts: contrasts.to_vec(),
        lesions: lesions.to_vec(),
        sessions: 1,
        spacing_mm: [SPACING_MM; 3],
        mode: IntensityMode::Realistic,
    };
    synthesize_subject(&setup.0, &spec, &setup.1, &setup.2, "t", seed).unwrap()
}

/// White or grey matter (cortex, deep nuclei, corpus callosum) by FreeSurfer id.
fn is_parenchyma(l: i32) -> bool {
    matches!(l, 2 | 41 | 10..=13 | 17 | 18 | 26 | 28 | 49..=54 | 58 | 60 | 251..=255 | 1000..=2999)
}

/// Parenchyma, cerebellum or brainstem: the normal tissue intensity classes compare against.
fn is_brain(l: i32) -> bool {
    is_parenchyma(l) || matches!(l, 7 | 8 | 16 | 46 | 47)
}

fn is_cerebral_cortex(l: i32) -> bool {
    (1000..3000).contains(&l) || l == 3 || l == 42
}

fn voxels_where(map: &LabelMap, ok: impl Fn(i32) -> bool) -> Vec<usize> {
    (0..map.data().len())
        .filter(|&i| ok(map.data()[i]))
        .collect()
}

fn mean(img: &Image, vs: &[usize]) -> f64 {
    vs.iter().map(|&i| img.data()[i] as f64).sum::<f64>() / vs.len().max(1) as f64
}

/// Whether a face neighbour of `i` satisfies `ok`.
fn touches(map: &LabelMap, i: usize, ok: impl Fn(i32) -> bool) -> bool {
    voxel::neighbourhood::face_neighbours(map.geometry(), i).any(|q| ok(map.data()[q]))
}

/// Normal parenchyma within `SURROUNDINGS_MM` of the whole lesion (edema included): what the
/// recorded intensity classes are relative to.
fn band(labels: &LabelMap, lesions: &LabelMap) -> Vec<usize> {
    let all: Mask = lesions.map(|l| l != 0);
    let grown = voxel::morphology::dilate(&all, synth::lesion::SURROUNDINGS_MM).unwrap();
    (0..labels.data().len())
        .filter(|&i| grown.data()[i] && lesions.data()[i] == 0 && is_brain(labels.data()[i]))
        .collect()
}

/// The image a contrast is measured on (CT in Hounsfield units).
fn measured(s: &synth::Session, c: Contrast) -> &Image {
    let img = &s.images[&c];
    img.hu.as_ref().unwrap_or(&img.image)
}

/// Asserts that the recorded class of `vs` on contrast `c` matches the image; returns whether
/// a directional check ran (isointense records are not checked).
fn check_class(
    what: &str,
    recorded: IntensityClass,
    s: &synth::Session,
    c: Contrast,
    vs: &[usize],
    around: &[usize],
) -> bool {
    let img = measured(s, c);
    let (les, bg) = (mean(img, vs), mean(img, around));
    match recorded {
        IntensityClass::Hyper => {
            assert!(les > bg, "{what} {c:?} recorded hyper: {les:.3} vs {bg:.3}")
        }
        IntensityClass::Hypo => {
            assert!(les < bg, "{what} {c:?} recorded hypo: {les:.3} vs {bg:.3}")
        }
        IntensityClass::Iso => return false,
    }
    true
}

const NEW: [LesionClass; 5] = [
    LesionClass::Meningioma,
    LesionClass::ArachnoidCyst,
    LesionClass::Haemorrhage,
    LesionClass::SubduralHaematoma,
    LesionClass::Abscess,
];

#[test]
fn class_names_aliases_and_component_ids() {
    assert_eq!(LesionClass::ALL.len(), 10);
    assert_eq!(LesionClass::ALL[0], LesionClass::Glioma);
    assert_eq!(LesionClass::ALL[4], LesionClass::Wmh);
    for c in LesionClass::ALL {
        assert_eq!(LesionClass::parse(c.name()).unwrap(), c);
        // serde and the CLI agree on the name.
        assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        assert!(!c.component_ids().is_empty());
    }
    for (alias, class) in [
        ("hemorrhage", LesionClass::Haemorrhage),
        ("ICH", LesionClass::Haemorrhage),
        ("intraparenchymal_haemorrhage", LesionClass::Haemorrhage),
        ("sdh", LesionClass::SubduralHaematoma),
        ("subdural-hematoma", LesionClass::SubduralHaematoma),
        ("arachnoid_cyst", LesionClass::ArachnoidCyst),
        ("meningioma", LesionClass::Meningioma),
        ("abscess", LesionClass::Abscess),
    ] {
        assert_eq!(LesionClass::parse(alias).unwrap(), class, "{alias}");
    }
    let err = LesionClass::parse("lipoma").unwrap_err().to_string();
    assert!(err.contains("subdural_haematoma"), "{err}");
    assert_eq!(
        LesionClass::SubduralHaematoma.component_ids(),
        &[ids::SDH_ACUTE, ids::SDH_CHRONIC]
    );
    assert_eq!(
        LesionClass::Abscess.component_ids(),
        &[ids::ABSCESS_CAVITY, ids::ABSCESS_CAPSULE, ids::EDEMA]
    );
    assert_eq!(
        (ids::MENINGIOMA, ids::ARACHNOID_CYST, ids::HAEMORRHAGE),
        (908, 909, 910)
    );
    // Every id a class paints has a vocabulary entry.
    let vocab = Vocabulary::builtin().unwrap();
    for c in LesionClass::ALL {
        for &id in c.component_ids() {
            assert!(
                vocab
                    .targets()
                    .iter()
                    .any(|t| t.ids_in(synth::Source::LesionMap) == [id]),
                "{c:?}: id {id} not in the vocabulary"
            );
        }
    }
}

/// The side of the nearest voxel of lateral cerebral tissue (cortex or white matter) to voxel
/// `i`, searched in growing cubes up to 30 mm.
fn nearest_cerebral_side(labels: &LabelMap, vocab: &Vocabulary, i: usize) -> Option<Hemisphere> {
    let g = labels.geometry();
    let c = g.coords(i).map(|x| x as i64);
    let n = g.shape();
    let max_r = (30.0 / SPACING_MM) as i64;
    for r in 1..=max_r {
        let mut best: Option<(i64, Hemisphere)> = None;
        for dk in -r..=r {
            for dj in -r..=r {
                for di in -r..=r {
                    let q = [c[0] + di, c[1] + dj, c[2] + dk];
                    if (0..3).any(|a| q[a] < 0 || q[a] >= n[a] as i64) {
                        continue;
                    }
                    let l = labels.at(q[0] as usize, q[1] as usize, q[2] as usize);
                    if !(is_cerebral_cortex(l) || l == 2 || l == 41) {
                        continue;
                    }
                    let d2 = di * di + dj * dj + dk * dk;
                    let side = vocab.structure_of_label(l).map(|s| s.hemisphere)?;
                    if best.is_none_or(|(b, _)| d2 < b) {
                        best = Some((d2, side));
                    }
                }
            }
        }
        if let Some((_, side)) = best {
            return Some(side);
        }
    }
    None
}

#[test]
fn extra_axial_lesions_lie_between_skull_and_brain() {
    let su = setup();
    let vocab = &su.2;
    for class in [
        LesionClass::Meningioma,
        LesionClass::ArachnoidCyst,
        LesionClass::SubduralHaematoma,
    ] {
        for seed in 0..4 {
            let sub = subject(&su, &[class], &[], 100 + seed);
            let s = &sub.sessions[0];
            let r = &s.lesion_records[0];
            let proper = voxels_where(&s.lesions, |l| l != 0 && l != ids::EDEMA);
            assert!(
                proper.len() >= 30,
                "{class:?} seed {seed}: {} voxels",
                proper.len()
            );
            let vml = s.labels.geometry().voxel_volume_mm3() / 1000.0;
            assert!((r.volume_ml - proper.len() as f64 * vml).abs() < 1e-9);
            // Outside the parenchyma (the brain is pushed away) or in the outer cortex it
            // presses on; never in bone, scalp or air.
            let outside = proper
                .iter()
                .filter(|&&i| {
                    let l = s.labels.data()[i];
                    !is_parenchyma(l) || is_cerebral_cortex(l)
                })
                .count();
            assert!(
                outside as f64 >= 0.8 * proper.len() as f64,
                "{class:?} seed {seed}: {outside}/{} outside the parenchyma",
                proper.len()
            );
            for &i in &proper {
                let l = s.labels.data()[i];
                assert!(
                    ![SKULL, SCALP, 0].contains(&l),
                    "{class:?} seed {seed} on label {l}"
                );
            }
            assert!(proper
                .iter()
                .any(|&i| s.labels.data()[i] == EXTRACEREBRAL_CSF));
            // Dural-based: it reaches the inner table of the skull (or the falx).
            let shape = &sub.lesion_shapes[0];
            let on_falx = shape
                .midline
                .is_some_and(|m| m.signed_mm(shape.centre_mm).abs() <= SPACING_MM);
            assert!(
                on_falx
                    || proper
                        .iter()
                        .any(|&i| touches(&s.labels, i, |l| l == SKULL)),
                "{class:?} seed {seed} does not touch the skull"
            );
            assert!(
                r.site == "extracerebral CSF" || r.site == synth::lesion::CEREBELLOPONTINE_ANGLE,
                "{class:?} seed {seed} site {}",
                r.site
            );
            assert!(r.territory.is_none());
            match class {
                LesionClass::Meningioma => assert!(r.enhancement && !r.restricted_diffusion),
                LesionClass::ArachnoidCyst => {
                    assert!(!r.enhancement && !r.restricted_diffusion)
                }
                _ => {
                    // One hemisphere: the brain nearest each voxel is on the recorded side.
                    assert_ne!(r.hemisphere, Hemisphere::Both, "seed {seed}");
                    let same = proper
                        .iter()
                        .filter(|&&i| {
                            nearest_cerebral_side(&s.labels, vocab, i) == Some(r.hemisphere)
                        })
                        .count();
                    assert!(
                        same as f64 >= 0.9 * proper.len() as f64,
                        "SDH seed {seed}: {same}/{} voxels on the {:?} side",
                        proper.len(),
                        r.hemisphere
                    );
                }
            }
        }
    }
}

/// Checks every recorded intensity class of the lesion and of each component against the
/// images; returns the number of directional checks.
fn check_record_against_images(class: LesionClass, s: &synth::Session, r: &LesionRecord) -> usize {
    let around = band(&s.labels, &s.lesions);
    assert!(around.len() >= 10, "{class:?}: no surroundings");
    let mut checks = 0;
    let proper = voxels_where(&s.lesions, |l| l != 0 && l != ids::EDEMA);
    for (&c, &rec) in &r.intensity {
        checks += check_class(&format!("{class:?}"), rec, s, c, &proper, &around) as usize;
    }
    for comp in &r.components {
        let vs = voxels_where(&s.lesions, |l| l == comp.id);
        if vs.len() < 5 {
            continue;
        }
        for (&c, &rec) in &comp.intensity {
            let what = format!("{class:?} {}", comp.name);
            checks += check_class(&what, rec, s, c, &vs, &around) as usize;
        }
    }
    checks
}

#[test]
fn recorded_intensities_of_new_lesions_match_the_images() {
    let su = setup();
    let mut checks = 0;
    for (k, class) in NEW.into_iter().enumerate() {
        for seed in 0..3u64 {
            let sub = subject(&su, &[class], &Contrast::ALL, 200 + 10 * k as u64 + seed);
            let s = &sub.sessions[0];
            let r = &s.lesion_records[0];
            assert_eq!(r.intensity.len(), Contrast::ALL.len());
            checks += check_record_against_images(class, s, r);
            // The radiological signature each class is defined by.
            let i = |c: Contrast| r.intensity[&c];
            use IntensityClass::*;
            match class {
                LesionClass::Meningioma => {
                    assert_eq!(i(Contrast::T1c), Hyper);
                    assert_eq!(i(Contrast::Ct), Hyper);
                    assert_ne!(i(Contrast::T1), Hyper);
                }
                LesionClass::ArachnoidCyst => {
                    assert_eq!(
                        [
                            Contrast::T1,
                            Contrast::T2,
                            Contrast::Flair,
                            Contrast::Adc,
                            Contrast::Dwi,
                            Contrast::Ct
                        ]
                        .map(i),
                        [Hypo, Hyper, Hypo, Hyper, Hypo, Hypo]
                    );
                }
                LesionClass::Haemorrhage => {
                    assert_eq!(i(Contrast::Ct), Hyper);
                    assert_eq!(i(Contrast::Gre), Hypo);
                    assert_eq!(i(Contrast::T2), Hypo);
                    assert_ne!(i(Contrast::T1), Hyper);
                }
                LesionClass::SubduralHaematoma | LesionClass::Abscess => {}
                _ => unreachable!(),
            }
        }
    }
    println!("{checks} directional intensity checks");
    assert!(checks >= 80, "only {checks} intensity checks ran");
}

/// Mean HU of the voxels of `id` that do not touch bone (partial volume with 1000 HU skull).
fn interior_hu(s: &synth::Session, id: i32) -> Option<f64> {
    let vs: Vec<usize> = voxels_where(&s.lesions, |l| l == id)
        .into_iter()
        .filter(|&i| !touches(&s.labels, i, |l| l == SKULL))
        .collect();
    (vs.len() >= 5).then(|| mean(s.images[&Contrast::Ct].hu.as_ref().unwrap(), &vs))
}

#[test]
fn acute_subdural_blood_is_denser_than_chronic_on_ct() {
    let su = setup();
    let (mut acute, mut chronic, mut mixed) = (vec![], vec![], 0);
    for seed in 0..12u64 {
        let sub = subject(
            &su,
            &[LesionClass::SubduralHaematoma],
            &[Contrast::Ct],
            300 + seed,
        );
        let s = &sub.sessions[0];
        let a = interior_hu(s, ids::SDH_ACUTE);
        let c = interior_hu(s, ids::SDH_CHRONIC);
        if let (Some(a), Some(c)) = (a, c) {
            assert!(
                a > c + 25.0,
                "acute-on-chronic seed {seed}: {a:.0} vs {c:.0} HU"
            );
            mixed += 1;
        }
        acute.extend(a);
        chronic.extend(c);
        // Both component volumes are recorded and add up to the lesion.
        let r = &s.lesion_records[0];
        let sum: f64 = r.components.iter().map(|c| c.volume_ml).sum();
        assert!((sum - r.volume_ml).abs() < 1e-9);
    }
    assert!(
        acute.len() >= 2 && chronic.len() >= 2 && mixed >= 1,
        "{acute:?} {chronic:?}"
    );
    for hu in &acute {
        assert!((50.0..=90.0).contains(hu), "acute SDH {hu:.0} HU");
    }
    for hu in &chronic {
        assert!((0.0..=35.0).contains(hu), "chronic SDH {hu:.0} HU");
    }
}

#[test]
fn abscess_restricts_and_its_capsule_enhances() {
    let su = setup();
    let contrasts = [Contrast::T1, Contrast::T1c, Contrast::Dwi, Contrast::Adc];
    for seed in 0..3u64 {
        let sub = subject(&su, &[LesionClass::Abscess], &contrasts, 400 + seed);
        let s = &sub.sessions[0];
        let r = &s.lesion_records[0];
        assert!(r.restricted_diffusion && r.enhancement, "seed {seed}");
        let cavity = voxels_where(&s.lesions, |l| l == ids::ABSCESS_CAVITY);
        let capsule = voxels_where(&s.lesions, |l| l == ids::ABSCESS_CAPSULE);
        assert!(cavity.len() >= 5 && capsule.len() >= 5, "seed {seed}");
        // A closed wall: pus never touches brain or edema.
        for &i in &cavity {
            assert!(!touches(&s.lesions, i, |l| l != ids::ABSCESS_CAVITY
                && l != ids::ABSCESS_CAPSULE));
        }
        let around = band(&s.labels, &s.lesions);
        let m = |c: Contrast, vs: &[usize]| mean(&s.images[&c].image, vs);
        // Ring enhancement: the capsule is brighter than the cavity and the brain after
        // contrast, and gains more than they do (relative to plain T1).
        assert!(m(Contrast::T1c, &capsule) > m(Contrast::T1c, &around));
        assert!(m(Contrast::T1c, &capsule) > m(Contrast::T1c, &cavity));
        let gain = |vs: &[usize]| m(Contrast::T1c, vs) / m(Contrast::T1, vs);
        assert!(gain(&capsule) > 1.2 * gain(&around), "seed {seed}");
        // Restriction in the cavity: DWI bright, ADC dark.
        assert!(m(Contrast::Dwi, &cavity) > m(Contrast::Dwi, &around));
        assert!(m(Contrast::Adc, &cavity) < m(Contrast::Adc, &around));
        let comp = |id: i32| r.components.iter().find(|c| c.id == id).unwrap();
        assert_eq!(
            comp(ids::ABSCESS_CAPSULE).intensity[&Contrast::T1c],
            IntensityClass::Hyper
        );
        assert_eq!(
            comp(ids::ABSCESS_CAVITY).intensity[&Contrast::Adc],
            IntensityClass::Hypo
        );
    }
    // Restriction is specific: not a necrotic tumour, a cyst or an old infarct.
    for (class, want) in [
        (LesionClass::AcuteInfarct, true),
        (LesionClass::Glioma, false),
        (LesionClass::ArachnoidCyst, false),
        (LesionClass::ChronicInfarct, false),
        (LesionClass::Haemorrhage, false),
    ] {
        for seed in 0..2u64 {
            let sub = subject(&su, &[class], &contrasts, 450 + seed);
            let r = &sub.sessions[0].lesion_records[0];
            assert_eq!(r.restricted_diffusion, want, "{class:?} seed {seed}");
        }
    }
}

#[test]
fn haemorrhage_is_dense_on_ct_and_dark_on_gre() {
    let su = setup();
    for seed in 0..4u64 {
        let sub = subject(
            &su,
            &[LesionClass::Haemorrhage],
            &[Contrast::Gre, Contrast::Ct],
            500 + seed,
        );
        let s = &sub.sessions[0];
        let r = &s.lesion_records[0];
        let blood = voxels_where(&s.lesions, |l| l == ids::HAEMORRHAGE);
        assert!(blood.len() >= 30, "seed {seed}: {} voxels", blood.len());
        // In the parenchyma: deep grey matter or lobar (cortex and white matter).
        assert!(blood.iter().all(|&i| is_parenchyma(s.labels.data()[i])));
        let around = band(&s.labels, &s.lesions);
        let gre = &s.images[&Contrast::Gre].image;
        assert!(
            mean(gre, &blood) < 0.7 * mean(gre, &around),
            "seed {seed}: no blooming"
        );
        let hu = interior_hu(s, ids::HAEMORRHAGE).unwrap();
        assert!((55.0..=85.0).contains(&hu), "seed {seed}: {hu:.0} HU");
        assert_eq!(r.intensity[&Contrast::Gre], IntensityClass::Hypo);
        assert!(!r.enhancement);
    }
}

#[test]
fn several_metastases_lie_apart_and_each_record_is_its_own() {
    let su = setup();
    let mets = [LesionClass::Metastasis; 3];
    for seed in 0..3u64 {
        let sub = subject(&su, &mets, &[Contrast::T1c], 600 + seed);
        let s = &sub.sessions[0];
        assert_eq!(s.lesion_records.len(), 3);
        let shapes = &sub.lesion_shapes;
        for a in 0..3 {
            for b in a + 1..3 {
                assert!(
                    !shapes[a].overlaps(&shapes[b]),
                    "seed {seed}: {a} and {b} overlap"
                );
            }
        }
        // Attribute every lesion voxel to the nearest metastasis centre; each record's volumes
        // must be those of its own voxels.
        let g = s.lesions.geometry();
        let vml = g.voxel_volume_mm3() / 1000.0;
        let mut proper = [0usize; 3];
        let mut edema = [0usize; 3];
        for i in voxels_where(&s.lesions, |l| l != 0) {
            let c = g.coords(i);
            let p = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
            let d = |k: usize| {
                (0..3)
                    .map(|a| (p[a] - shapes[k].centre_mm[a]).powi(2))
                    .sum::<f64>()
            };
            let k = (0..3).min_by(|&x, &y| d(x).total_cmp(&d(y))).unwrap();
            if s.lesions.data()[i] == ids::EDEMA {
                edema[k] += 1;
            } else {
                proper[k] += 1;
            }
        }
        for (k, r) in s.lesion_records.iter().enumerate() {
            assert_eq!(r.class, LesionClass::Metastasis);
            assert!(
                (r.volume_ml - proper[k] as f64 * vml).abs() < 1e-9,
                "seed {seed} met {k}"
            );
            assert!(
                (r.edema_ml - edema[k] as f64 * vml).abs() < 1e-9,
                "seed {seed} met {k}"
            );
            assert!(r.volume_ml > 0.0 && r.enhancement);
        }
    }
}

#[test]
fn new_classes_are_deterministic_per_seed() {
    let su = setup();
    let spec_lesions = [LesionClass::SubduralHaematoma, LesionClass::Abscess];
    let contrasts = [Contrast::Flair, Contrast::Ct];
    let a = subject(&su, &spec_lesions, &contrasts, 7);
    let b = subject(&su, &spec_lesions, &contrasts, 7);
    let c = subject(&su, &spec_lesions, &contrasts, 8);
    assert_eq!(a.sessions[0].labels.data(), b.sessions[0].labels.data());
    assert_eq!(a.sessions[0].lesions.data(), b.sessions[0].lesions.data());
    assert_eq!(
        a.sessions[0].images[&Contrast::Ct].image.data(),
        b.sessions[0].images[&Contrast::Ct].image.data()
    );
    let spec = SubjectSpec {
        contrasts: contrasts.to_vec(),
        lesions: spec_lesions.to_vec(),
        sessions: 1,
        spacing_mm: [SPACING_MM; 3],
        mode: IntensityMode::Realistic,
    };
    assert_eq!(
        synth::subject::subject_json(&a, &spec),
        synth::subject::subject_json(&b, &spec)
    );
    assert_ne!(a.sessions[0].lesions.data(), c.sessions[0].lesions.data());
    for class in NEW {
        let x = subject(&su, &[class], &[], 9);
        let y = subject(&su, &[class], &[], 9);
        assert_eq!(
            x.sessions[0].lesions.data(),
            y.sessions[0].lesions.data(),
            "{class:?}"
        );
    }
}

/// Paints `shape` over an all-white-matter grid of `spacing_mm` voxels whose voxel (i, j, k)
/// lies at `centre + spacing (ijk − 20)`.
fn paint_on_white_matter(shape: &synth::lesion::LesionShape, spacing_mm: f64) -> Vec<i32> {
    let n = 41;
    let origin = shape.centre_mm.map(|c| c - 20.0 * spacing_mm);
    let g = voxel::Geometry::from_spacing([n; 3], [spacing_mm; 3], origin).unwrap();
    let labels = LabelMap::new(g.clone(), vec![2; n * n * n]).unwrap();
    let mut lesions = labels.map(|_| 0);
    let vocab = Vocabulary::builtin().unwrap();
    synth::lesion::paint(
        shape,
        &labels,
        &mut lesions,
        &voxel::Affine::IDENTITY,
        &vocab,
    )
    .unwrap();
    lesions.into_data()
}

#[test]
fn deformation_is_seeded_irregular_and_scales_with_growth() {
    let su = setup();
    let labels = &su.0.labels;
    let mut differs = 0;
    for seed in 0..4u64 {
        let draw = |s| {
            synth::lesion::sample_lesion(
                LesionClass::Glioma,
                labels,
                &su.2,
                &su.1.lesions,
                &mut synth::rng::stream(s, 2),
            )
            .unwrap()
        };
        let shape = draw(seed);
        assert!(!shape.deformation.is_empty());
        assert_eq!(
            format!("{:?}", draw(seed)),
            format!("{shape:?}"),
            "not seeded"
        );
        // Growth by 2 on a grid twice as coarse about the centre gives the same voxels: the
        // noise lives in baseline lesion coordinates and grows with the lesion.
        let base = paint_on_white_matter(&shape, 2.0);
        let mut grown = shape.clone();
        grown.scale = 2.0;
        let big = paint_on_white_matter(&grown, 4.0);
        let painted = base.iter().filter(|&&l| l != 0).count();
        let mismatched = base.iter().zip(&big).filter(|(a, b)| a != b).count();
        assert!(painted > 100, "seed {seed}: {painted} voxels");
        assert!(
            mismatched * 200 <= painted,
            "seed {seed}: {mismatched}/{painted} differ"
        );
        // And the noise changes the shape: not a union of ellipsoids any more.
        let mut plain = shape.clone();
        plain.deformation.clear();
        let undeformed = paint_on_white_matter(&plain, 2.0);
        let changed = base.iter().zip(&undeformed).filter(|(a, b)| a != b).count();
        differs += (changed * 20 > painted) as usize;
    }
    assert!(
        differs >= 3,
        "deformation changed only {differs}/4 shapes by > 5 %"
    );
}

#[test]
fn follow_up_sessions_of_new_lesions_are_measured() {
    let su = setup();
    let spec = SubjectSpec {
        contrasts: vec![],
        lesions: vec![LesionClass::Meningioma, LesionClass::Haemorrhage],
        sessions: 2,
        spacing_mm: [SPACING_MM; 3],
        mode: IntensityMode::Realistic,
    };
    for seed in 0..2u64 {
        let sub = synthesize_subject(&su.0, &spec, &su.1, &su.2, "f", 700 + seed).unwrap();
        let vml = su.0.labels.geometry().voxel_volume_mm3() / 1000.0;
        for s in &sub.sessions {
            // Extra-axial lesions keep out of bone in every (misaligned) session.
            for i in voxels_where(&s.lesions, |l| l == ids::MENINGIOMA) {
                assert!(![SKULL, SCALP, 0].contains(&s.labels.data()[i]));
            }
        }
        let count = |k: usize, id: i32| {
            voxels_where(&sub.sessions[k].lesions, |l| l == id).len() as f64 * vml
        };
        for g in &sub.growth {
            let id = [ids::MENINGIOMA, ids::HAEMORRHAGE][g.lesion];
            assert!((g.change_ml - (count(g.session, id) - count(0, id))).abs() < 1e-9);
        }
        // A haematoma resolves between visits months apart.
        assert!(
            sub.growth[1].change_ml < 0.0,
            "seed {seed}: {:?}",
            sub.growth[1]
        );
    }
}

/// Distance from world point `p` to the nearest voxel of `map` with label `id` (brute force).
fn distance_to_label_mm(map: &LabelMap, id: i32, p: [f64; 3]) -> f64 {
    let g = map.geometry();
    map.data()
        .iter()
        .enumerate()
        .filter(|(_, &l)| l == id)
        .map(|(i, _)| {
            let c = g.coords(i);
            let q = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
            (0..3).map(|a| (q[a] - p[a]).powi(2)).sum::<f64>().sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn some_arachnoid_cysts_sit_in_the_cerebellopontine_angle() {
    let setup = setup();
    let mut found = 0;
    for seed in 0..24 {
        let sub = subject(&setup, &[LesionClass::ArachnoidCyst], &[Contrast::T2], seed);
        let s = &sub.sessions[0];
        let r = &s.lesion_records[0];
        if r.site != synth::lesion::CEREBELLOPONTINE_ANGLE {
            continue;
        }
        found += 1;
        // Beside the pons and the cerebellum, on one side.
        let brainstem = distance_to_label_mm(&s.labels, 16, r.centroid_mm);
        let cerebellum = distance_to_label_mm(&s.labels, 8, r.centroid_mm)
            .min(distance_to_label_mm(&s.labels, 47, r.centroid_mm));
        assert!(
            brainstem <= 12.0 + SPACING_MM,
            "seed {seed}: {brainstem} mm from the brainstem"
        );
        assert!(
            cerebellum <= 12.0 + SPACING_MM,
            "seed {seed}: {cerebellum} mm from the cerebellum"
        );
        assert_ne!(r.hemisphere, Hemisphere::Both, "seed {seed}");
    }
    assert!(found >= 1, "no cerebellopontine angle cyst in 24 seeds");
}
