//! The CAT12 neuromorphometrics atlas as a second real anatomy: every atlas id is remapped,
//! every vocabulary target it defines is present with a plausible volume on the right side, a
//! flipped subject swaps sides, and the head model surrounds the brain. Skips (with a message)
//! when the anatomy cache is absent; the remap-table checks run always.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use synth::anatomy::{Anatomy, EXTRACEREBRAL_CSF, SCALP, SKULL};
use synth::contrast::Contrast;
use synth::neuromorphometrics::Remap;
use synth::{synthesize_subject, Hemisphere, IntensityMode, Source, SubjectSpec, SynthConfig};
use synth::{Target, Vocabulary};
use voxel::LabelMap;

/// The anatomy, loaded once per test binary (`None` without the cache).
fn anatomy() -> Option<&'static Anatomy> {
    static ANATOMY: OnceLock<Option<Anatomy>> = OnceLock::new();
    ANATOMY
        .get_or_init(|| {
            let dir = synth::anatomy::default_cache_dir()?;
            if !synth::anatomy::available_anatomies(&dir).contains(&"neuromorphometrics") {
                return None;
            }
            let config = SynthConfig::builtin().unwrap();
            Some(Anatomy::neuromorphometrics(&dir, &config.head).unwrap())
        })
        .as_ref()
}

fn skip() {
    voxel::test_support::skip_missing(
        "the neuromorphometrics atlas in the anatomy cache",
        "run python3 scripts/fetch_anatomy.py",
    );
}

fn count(labels: &LabelMap) -> BTreeMap<i32, usize> {
    let mut out = BTreeMap::new();
    for &l in labels.data() {
        *out.entry(l).or_insert(0usize) += 1;
    }
    out
}

fn ml(labels: &LabelMap, counts: &BTreeMap<i32, usize>, t: &Target) -> f64 {
    let n: usize = t
        .anatomy_ids()
        .iter()
        .map(|id| counts.get(id).copied().unwrap_or(0))
        .sum();
    n as f64 * labels.geometry().voxel_volume_mm3() / 1000.0
}

/// Mean world position of the voxels labelled with any of `ids`.
fn centroid(labels: &LabelMap, ids: &[i32]) -> Option<[f64; 3]> {
    let g = labels.geometry();
    let (mut s, mut n) = ([0.0f64; 3], 0usize);
    for (i, l) in labels.data().iter().enumerate() {
        if ids.contains(l) {
            let c = g.coords(i);
            for a in 0..3 {
                s[a] += c[a] as f64;
            }
            n += 1;
        }
    }
    (n > 0).then(|| g.voxel_to_world(s.map(|x| x / n as f64)))
}

#[test]
fn remap_table_is_consistent_with_the_vocabulary() {
    let remap = Remap::builtin().unwrap();
    let vocab = Vocabulary::builtin().unwrap();
    let swap = voxel::crop::LabelSwap::freesurfer();
    let nmm_ids: Vec<i32> = remap.labels.iter().map(|l| l.id).collect();
    for l in &remap.labels {
        // Every remapped id names a vocabulary structure of the atlas, on the atlas' side.
        let t = vocab
            .structure_of_label(l.id)
            .unwrap_or_else(|| panic!("{} ({}) has no vocabulary structure", l.name, l.id));
        assert!(
            t.ids_in(Source::Neuromorphometrics).contains(&l.id),
            "{} ({}) -> {} which does not list it for neuromorphometrics",
            l.name,
            l.id,
            t.name
        );
        let side = if l.name.starts_with("Left ") {
            Hemisphere::Left
        } else if l.name.starts_with("Right ") {
            Hemisphere::Right
        } else {
            Hemisphere::Both
        };
        assert_eq!(t.hemisphere, side, "{} -> {}", l.name, t.name);
        // The FreeSurfer left/right swap of a flip maps it onto the other side's structure.
        let m = swap.apply(l.id);
        assert!(nmm_ids.contains(&m), "{} ({}) swaps to {m}", l.name, l.id);
        let mt = vocab.structure_of_label(m).unwrap();
        let base = |n: &str| {
            n.trim_start_matches("left ")
                .trim_start_matches("right ")
                .to_string()
        };
        assert_eq!(
            base(&mt.name),
            base(&t.name),
            "{} swaps to {}",
            t.name,
            mt.name
        );
        if side == Hemisphere::Both {
            assert_eq!(m, l.id, "{} is midline", l.name);
        } else {
            assert_ne!(
                mt.hemisphere, t.hemisphere,
                "{} swaps to its own side",
                t.name
            );
        }
    }
    // The atlas ids do not collide with fsaverage's Desikan-Killiany parcels or the head model.
    for &id in &nmm_ids {
        assert!(
            !(1000..=1035).contains(&id) && !(2000..=2035).contains(&id),
            "{id}"
        );
        assert!(![EXTRACEREBRAL_CSF, SKULL, SCALP].contains(&id), "{id}");
    }
}

#[test]
fn every_atlas_id_is_remapped() {
    let Some(anatomy) = anatomy() else {
        return skip();
    };
    let dir = synth::anatomy::default_cache_dir().unwrap();
    let remap = Remap::builtin().unwrap();
    let raw = voxel::io::read_labels(&dir.join(&remap.atlas.labels_file)).unwrap();
    let raw_ids = raw.labels();
    assert!(raw_ids.len() > 130, "{} atlas ids", raw_ids.len());
    for id in raw_ids.iter().filter(|&&i| i != 0) {
        assert!(
            remap.get(*id).is_some(),
            "atlas id {id} is not in the table"
        );
    }
    // The anatomy holds only remapped ids and head-model labels, all known to the vocabulary.
    let vocab = Vocabulary::builtin().unwrap();
    let known: Vec<i32> = remap.labels.iter().map(|l| l.id).collect();
    for id in anatomy.labels.labels() {
        assert!(
            id == 0
                || [EXTRACEREBRAL_CSF, SKULL, SCALP].contains(&id)
                || synth::labels::HEAD_LABELS.contains(&id)
                || known.contains(&id),
            "unexpected label {id}"
        );
        if id != 0 {
            assert!(vocab.structure_of_label(id).is_some(), "{id} unknown");
        }
    }
    // Every atlas structure survives carving and scaling.
    for l in &remap.labels {
        assert!(
            anatomy.labels.data().contains(&l.id),
            "{} ({}) is missing",
            l.name,
            l.id
        );
    }
    assert_eq!(anatomy.source, Source::Neuromorphometrics);
}

#[test]
fn targets_have_plausible_volumes() {
    let Some(anatomy) = anatomy() else {
        return skip();
    };
    let vocab = Vocabulary::builtin().unwrap();
    let labels = &anatomy.labels;
    let counts = count(labels);
    let v = |name: &str| ml(labels, &counts, vocab.require(name).unwrap());
    for t in vocab.targets() {
        if !t.ids_in(Source::Neuromorphometrics).is_empty() {
            assert!(ml(labels, &counts, t) > 0.0, "{} is empty", t.name);
        }
    }
    let brain = v("brain");
    let (lv_l, lv_r) = (v("left lateral ventricle"), v("right lateral ventricle"));
    let (hc_l, hc_r) = (v("left hippocampus"), v("right hippocampus"));
    println!(
        "neuromorphometrics: brain {brain:.0} mL, ICV {:.0} mL, cortex {:.0} mL, cerebral WM \
         {:.0} mL, lateral ventricles {lv_l:.1}/{lv_r:.1} mL, hippocampus {hc_l:.2}/{hc_r:.2} mL, \
         thalamus {:.1} mL, cerebellum {:.0} mL, vermis {:.1} mL, brainstem {:.1} mL",
        v("intracranial volume"),
        v("cerebral cortex"),
        v("cerebral white matter"),
        v("thalamus"),
        v("cerebellum"),
        v("cerebellar vermis"),
        v("brainstem"),
    );
    assert!((1000.0..1600.0).contains(&brain), "brain {brain} mL");
    assert!(v("intracranial volume") > brain);
    assert!(
        (0.5..2.0).contains(&(lv_l / lv_r)),
        "lateral ventricles {lv_l}/{lv_r}"
    );
    for h in [hc_l, hc_r] {
        assert!((2.0..6.0).contains(&h), "hippocampus {h} mL");
    }
    // The cortex lost its sulcal CSF: it is about half the brain, not two thirds.
    let cortex = v("cerebral cortex");
    assert!(
        (0.3..0.55).contains(&(cortex / brain)),
        "cortex {cortex} of {brain} mL"
    );
    // Lobes partition the cortex parcels: their volumes add up to the cortex.
    let lobes: f64 = [
        "frontal lobe",
        "parietal lobe",
        "temporal lobe",
        "occipital lobe",
        "cingulate cortex",
        "insula",
    ]
    .iter()
    .map(|n| v(n))
    .sum();
    let bf = v("basal forebrain");
    assert!(
        (lobes - cortex).abs() < 1e-6 * cortex,
        "lobes {lobes} vs cortex {cortex}, basal forebrain {bf}"
    );
}

#[test]
fn left_structures_lie_left() {
    let Some(anatomy) = anatomy() else {
        return skip();
    };
    let vocab = Vocabulary::builtin().unwrap();
    let mut checked = 0;
    for t in vocab.targets() {
        if t.hemisphere != Hemisphere::Left || t.ids_in(Source::Neuromorphometrics).is_empty() {
            continue;
        }
        let right = vocab
            .require(&t.name.replacen("left ", "right ", 1))
            .unwrap();
        let l = centroid(&anatomy.labels, t.ids_in(Source::Neuromorphometrics)).unwrap();
        let r = centroid(&anatomy.labels, right.ids_in(Source::Neuromorphometrics)).unwrap();
        assert!(
            l[0] < 0.0 && r[0] > 0.0,
            "{}: x {} / {}",
            t.name,
            l[0],
            r[0]
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked} pairs");
}

#[test]
fn flipped_subject_swaps_left_and_right() {
    let Some(anatomy) = anatomy() else {
        return skip();
    };
    let vocab = Vocabulary::builtin().unwrap();
    let mut config = SynthConfig::builtin().unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::T1],
        lesions: vec![],
        sessions: 1,
        spacing_mm: [3.0; 3],
        mode: IntensityMode::Realistic,
    };
    for flip in [0.0, 1.0] {
        config.spatial.flip_probability = flip;
        let sub = synthesize_subject(anatomy, &spec, &config, &vocab, "f", 4).unwrap();
        assert_eq!(sub.transform.flip, flip == 1.0);
        let labels = &sub.sessions[0].labels;
        for name in [
            "hippocampus",
            "thalamus",
            "superior frontal gyrus",
            "anterior insula",
            "gyrus rectus",
            "basal forebrain",
            "cerebellar cortex",
        ] {
            let side = |s: &str| {
                let t = vocab.require(&format!("{s} {name}")).unwrap();
                centroid(labels, &t.anatomy_ids()).unwrap()[0]
            };
            let (l, r) = (side("left"), side("right"));
            assert!(l < r, "flip {flip}: {name} left x {l} vs right x {r}");
        }
    }
}

#[test]
fn head_model_surrounds_the_brain() {
    let Some(anatomy) = anatomy() else {
        return skip();
    };
    let vocab = Vocabulary::builtin().unwrap();
    let labels = &anatomy.labels;
    let g = labels.geometry();
    // Upwards from above the thalami: brain, CSF, skull, scalp, air.
    let c = g
        .world_to_voxel([0.0, -10.0, 20.0])
        .map(|x| x.round() as usize);
    let seq = common::layers_upward(labels, [c[0] + 10, c[1], c[2]]);
    // Sulci on the way up are CSF pockets inside the brain; the outer layers are in order.
    let tail: Vec<i32> = seq[seq.len() - 5..].to_vec();
    assert_eq!(tail, vec![1, 2, 3, 4, 5], "radial layers {seq:?}");
    // No brain voxel touches skull, scalp or air.
    let brain = vocab.require("brain").unwrap().anatomy_ids();
    let n = g.shape();
    for (i, l) in labels.data().iter().enumerate() {
        if !brain.contains(l) {
            continue;
        }
        let p = g.coords(i);
        for (a, d) in [(0, -1i64), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1)] {
            let mut q = [p[0] as i64, p[1] as i64, p[2] as i64];
            q[a] += d;
            assert!(
                q[a] >= 0 && q[a] < n[a] as i64,
                "brain touches the grid edge"
            );
            let m = labels.at(q[0] as usize, q[1] as usize, q[2] as usize);
            assert!(![0, SKULL, SCALP].contains(&m), "brain voxel next to {m}");
        }
    }
}
