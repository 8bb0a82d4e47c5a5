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
