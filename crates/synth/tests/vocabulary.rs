//! The vocabulary table: size, id resolution, synonyms, and the generated docs page.

use synth::{Hemisphere, Source, Territory, Vocabulary};

#[test]
fn has_at_least_100_targets_with_ids() {
    let v = Vocabulary::builtin().unwrap();
    assert!(v.targets().len() >= 100, "{} targets", v.targets().len());
    for t in v.targets() {
        assert!(!t.labels.is_empty(), "{} has no label ids", t.name);
    }
}

#[test]
fn bilateral_expansion_and_synonyms() {
    let v = Vocabulary::builtin().unwrap();
    let lh = v.get("Left Hippocampus").unwrap();
    assert_eq!(lh.hemisphere, Hemisphere::Left);
    assert_eq!(lh.ids_in(Source::FsAseg), &[17]);
    assert_eq!(v.get("right HC").unwrap().ids_in(Source::FsAseg), &[53]);
    assert_eq!(
        v.get("hippocampus").unwrap().ids_in(Source::FsAseg),
        &[17, 53]
    );
    assert_eq!(v.get("l SFG").unwrap().ids_in(Source::FsAparcAseg), &[1028]);
    assert_eq!(v.get("ICV").unwrap().name, "intracranial volume");
    assert_eq!(
        v.structure_of_label(1028).unwrap().name,
        "left superior frontal gyrus"
    );
    assert_eq!(v.structure_of_label(53).unwrap().name, "right hippocampus");
    assert_eq!(
        v.get("left superior frontal gyrus").unwrap().territory,
        Some(Territory::ACA)
    );
}

#[test]
fn groups_are_unions_of_their_children() {
    let v = Vocabulary::builtin().unwrap();
    let frontal = v
        .get("left frontal lobe")
        .unwrap()
        .ids_in(Source::FsAparcAseg)
        .to_vec();
    // 11 Desikan-Killiany frontal parcels, all left-sided.
    assert_eq!(frontal.len(), 11, "{frontal:?}");
    assert!(frontal.iter().all(|&i| (1000..2000).contains(&i)));
    let cortex = v.get("left cerebral cortex").unwrap();
    assert_eq!(cortex.ids_in(Source::FsAseg), &[3]);
    assert_eq!(cortex.ids_in(Source::FsAparcAseg).len(), 34);
    let bg = v
        .get("basal ganglia")
        .unwrap()
        .ids_in(Source::FsAseg)
        .to_vec();
    assert_eq!(bg, vec![11, 12, 13, 26, 50, 51, 52, 58]);
    let icv = v.get("intracranial volume").unwrap().anatomy_ids();
    for id in [2, 3, 4, 14, 15, 16, 24, 257, 1028, 2035] {
        assert!(icv.contains(&id), "ICV lacks {id}");
    }
    for id in [0, 165, 258] {
        assert!(!icv.contains(&id), "ICV contains {id}");
    }
    let brain = v.get("brain").unwrap().anatomy_ids();
    assert!(
        !brain.contains(&4) && !brain.contains(&24) && brain.contains(&16) && brain.contains(&8)
    );
    assert!(v.is_within("left precentral gyrus", "frontal lobe"));
    assert!(v.is_within("left precentral gyrus", "brain"));
    assert!(!v.is_within("left precentral gyrus", "temporal lobe"));
}

#[test]
fn rejects_unknown_parents_and_cycles() {
    let bad = "[[structure]]\nname = \"a\"\nbilateral = false\naseg = [1]\ngroups = [\"nope\"]\n[[group]]\nname = \"g\"\nbilateral = false\n";
    assert!(Vocabulary::parse(bad, "test").is_err());
    let cyc = "structure = []\n[[group]]\nname = \"g\"\nbilateral = false\ngroups = [\"h\"]\n[[group]]\nname = \"h\"\nbilateral = false\ngroups = [\"g\"]\n";
    assert!(Vocabulary::parse(cyc, "test").is_err());
}

#[test]
fn docs_page_is_current() {
    let v = Vocabulary::builtin().unwrap();
    let md = synth::vocabulary::to_markdown(&v);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/vocabulary.md");
    if std::env::var_os("VOXELPROMPT_WRITE_DOCS").is_some() {
        std::fs::write(&path, &md).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        on_disk, md,
        "docs/vocabulary.md is stale; rerun with VOXELPROMPT_WRITE_DOCS=1"
    );
}

/// The neuromorphometrics atlas added targets the Desikan-Killiany atlas lacks; the lobes hold
/// parcels of both sources, each atlas cortical parcel in exactly one lobe-level group, and
/// targets of one source only have no ids in the other.
#[test]
fn neuromorphometrics_targets_and_lobes() {
    let v = Vocabulary::builtin().unwrap();
    // 249 targets from FreeSurfer alone; each new bilateral structure adds three.
    assert!(v.targets().len() >= 340, "{} targets", v.targets().len());
    let lobe_level = [
        "frontal lobe",
        "parietal lobe",
        "temporal lobe",
        "occipital lobe",
        "cingulate cortex",
        "insula",
    ];
    for lobe in &lobe_level[..5] {
        let t = v.get(&format!("left {lobe}")).unwrap();
        let dk = t.ids_in(Source::FsAparcAseg);
        let nmm = t.ids_in(Source::Neuromorphometrics);
        assert!(
            !dk.is_empty() && !nmm.is_empty(),
            "{lobe}: {dk:?} / {nmm:?}"
        );
        assert!(
            dk.iter().all(|&i| (1001..=1035).contains(&i)),
            "{lobe} {dk:?}"
        );
        assert!(
            nmm.iter().all(|&i| (1101..=1207).contains(&i)),
            "{lobe} {nmm:?}"
        );
    }
    let cortex = v
        .get("left cerebral cortex")
        .unwrap()
        .ids_in(Source::Neuromorphometrics)
        .to_vec();
    assert_eq!(cortex.len(), 49, "{cortex:?}");
    for id in &cortex {
        let owners: Vec<&str> = lobe_level
            .iter()
            .filter(|l| {
                v.get(&format!("left {l}"))
                    .unwrap()
                    .ids_in(Source::Neuromorphometrics)
                    .contains(id)
            })
            .copied()
            .collect();
        assert_eq!(
            owners.len(),
            1,
            "{id} ({:?}) in {owners:?}",
            v.structure_of_label(*id).map(|t| &t.name)
        );
    }
    // Same structure in both sources.
    let pre = v.get("left precentral gyrus").unwrap();
    assert_eq!(pre.ids_in(Source::FsAparcAseg), &[1024]);
    assert_eq!(pre.ids_in(Source::Neuromorphometrics), &[1183]);
    assert_eq!(v.get("PrG").unwrap().name, "precentral gyrus");
    assert_eq!(
        v.get("right hippocampus")
            .unwrap()
            .ids_in(Source::Neuromorphometrics),
        &[53]
    );
    // Atlas-only targets, with the atlas' abbreviations.
    for (abbr, name) in [
        ("left AIns", "left anterior insula"),
        ("left GRe", "left gyrus rectus"),
        ("r PT", "right planum temporale"),
        ("SMC", "supplementary motor cortex"),
        ("vermis", "cerebellar vermis"),
    ] {
        let t = v.get(abbr).unwrap_or_else(|| panic!("{abbr}"));
        assert_eq!(t.name, name);
        assert!(t.ids_in(Source::FsAparcAseg).is_empty() && t.ids_in(Source::FsAseg).is_empty());
        assert!(!t.ids_in(Source::Neuromorphometrics).is_empty());
    }
    assert_eq!(
        v.structure_of_label(1125).unwrap().name,
        "left gyrus rectus"
    );
    assert_eq!(
        v.structure_of_label(2075).unwrap().name,
        "right basal forebrain"
    );
    assert_eq!(
        v.structure_of_label(631).unwrap().name,
        "cerebellar vermal lobules VI-VII"
    );
    assert!(v.is_within("left gyrus rectus", "frontal lobe"));
    assert!(v.is_within("right parietal operculum", "parietal lobe"));
    assert!(v.is_within(
        "cerebellar vermal lobules I-V",
        "infratentorial compartment"
    ));
    // FreeSurfer-only targets: no atlas ids.
    for name in [
        "banks of the superior temporal sulcus",
        "choroid plexus",
        "corpus callosum",
    ] {
        assert!(
            v.get(name)
                .unwrap()
                .ids_in(Source::Neuromorphometrics)
                .is_empty(),
            "{name}"
        );
    }
    // Parents spanning both sources: the atlas' middle frontal gyrus holds DK's two parts.
    let mfg = v.get("left middle frontal gyrus").unwrap();
    assert_eq!(mfg.ids_in(Source::FsAparcAseg), &[1003, 1027]);
    assert_eq!(mfg.ids_in(Source::Neuromorphometrics), &[1143]);
}
