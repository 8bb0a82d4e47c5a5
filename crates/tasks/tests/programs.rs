//! Every family's ground-truth program runs in a runtime session on sampled subjects, with the
//! oracle answering `generate` with the true masks, and its answer passes the family's checker;
//! the samples are well formed (markers and meanings line up, inputs carry metadata) and
//! deterministic in their seed.
//!
//! The expected numbers here come from the same `voxel::measure` calls the programs make, so
//! they show that programs and truths agree, not that either is right: `analytic.rs` checks
//! the printed numbers against phantoms of known volume, extents, intensity and centroid.

mod common;

use common::catalogue;
use tasks::program::ModMeaning;
use tasks::{run_with_oracle, Group, Level};

/// Samples per family.
const SUBJECTS: u64 = 3;

fn check_group(group: Group) {
    let cat = catalogue();
    let families: Vec<_> = cat
        .families()
        .into_iter()
        .filter(|f| f.group == group)
        .collect();
    assert!(!families.is_empty(), "no family in {group:?}");
    let mut ran = 0;
    for f in families {
        if let Some(reason) = cat.unavailable(f.id).unwrap() {
            assert!(
                reason.contains("not in synth yet"),
                "{} is unavailable for another reason: {reason}",
                f.id
            );
            continue;
        }
        for seed in 0..SUBJECTS {
            let s = cat
                .sample(f.id, seed)
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", f.id));
            let ctx = format!("{} seed {seed} ({:?})", f.id, s.prompt.text);
            // Markers and meanings line up; encoder markers name inputs; the program stops.
            for step in &s.program {
                assert_eq!(
                    step.code.matches("<mod>").count(),
                    step.mods.len(),
                    "{ctx}: {}",
                    step.code
                );
                assert!(
                    !step.code.contains("<mod:"),
                    "{ctx}: named marker left in {}",
                    step.code
                );
                for m in &step.mods {
                    if let ModMeaning::Encode { volume } = m {
                        assert!(s.input(volume).is_some(), "{ctx}: encodes unknown {volume}");
                    }
                }
            }
            assert!(s.program.last().unwrap().code.contains("stop()"), "{ctx}");
            assert!(!s.inputs.is_empty(), "{ctx}");
            for i in &s.inputs {
                assert!(i
                    .metadata_line()
                    .starts_with(&format!("volume {}, modality ", i.name)));
                assert_eq!(i.date, s.truth.sessions[i.session].date, "{ctx}");
            }
            let e = &s.expected;
            assert!(
                !(e.numbers.is_empty() && e.choices.is_empty() && e.outputs.is_empty()),
                "{ctx}: nothing to check"
            );

            let run = run_with_oracle(&s).unwrap();
            assert!(
                run.output.error.is_none(),
                "{ctx}: {:?}\n{:#?}",
                run.output.error,
                run.steps
            );
            assert!(run.output.stopped, "{ctx}: the program did not stop");
            assert_eq!(run.steps.len(), s.program.len(), "{ctx}");
            for level in [Level::GroundTruth, Level::Model] {
                let report = s
                    .check(&run.output.response, &run.output.outputs, level)
                    .unwrap();
                assert!(
                    report.passed,
                    "{ctx} at {level:?}:\n{}\nresponse: {}\nexpected: {}",
                    report.failures(),
                    run.output.response,
                    s.answer
                );
                assert_eq!(
                    report.items.len(),
                    e.numbers.len() + e.choices.len() + e.outputs.len(),
                    "{ctx}"
                );
            }
            ran += 1;
        }
    }
    assert!(ran > 0);
}

#[test]
fn segmentation_programs_pass_with_true_masks() {
    check_group(Group::Segmentation);
}

#[test]
fn descriptor_programs_pass_with_true_masks() {
    check_group(Group::Descriptor);
}

#[test]
fn image_op_programs_pass_with_true_masks() {
    check_group(Group::ImageOps);
}

#[test]
fn statistics_programs_pass_with_true_masks() {
    check_group(Group::Statistics);
}

#[test]
fn morphology_programs_pass_with_true_masks() {
    check_group(Group::Morphology);
}

#[test]
fn multi_roi_programs_pass_with_true_masks() {
    check_group(Group::MultiRoi);
}

#[test]
fn longitudinal_programs_pass_with_true_masks() {
    check_group(Group::Longitudinal);
}

#[test]
fn characterisation_programs_pass_with_true_masks() {
    check_group(Group::Characterisation);
}

#[test]
fn presence_answers_no_exactly_when_the_true_mask_is_empty() {
    // The oracle's mask is the truth, so the volume the program reads is 0 exactly for the
    // subjects without the lesion, and those are the ones answered "No".
    let cat = catalogue();
    let (mut yes, mut no) = (0, 0);
    for seed in 0..10 {
        let s = cat.sample("lesion_presence", seed).unwrap();
        let run = run_with_oracle(&s).unwrap();
        assert!(
            run.output.error.is_none(),
            "seed {seed}: {:?}",
            run.output.error
        );
        let read: f64 = run.steps[1]
            .feedback
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("seed {seed}: read {:?}", run.steps[1].feedback));
        let answered_no = s.answer.starts_with("No:");
        assert_eq!(
            answered_no,
            read == 0.0,
            "seed {seed}: {} after {read} mL",
            s.answer
        );
        assert!(
            answered_no || s.answer.starts_with("Yes:"),
            "seed {seed}: {}",
            s.answer
        );
        if answered_no {
            assert!(s.truth.sessions[0].records.is_empty(), "seed {seed}");
            no += 1;
        } else {
            yes += 1;
        }
    }
    assert!(yes >= 2 && no >= 2, "{yes} yes, {no} no in 10 samples");
}

#[test]
fn samples_are_deterministic_in_their_seed() {
    let cat = catalogue();
    for id in [
        "segment_by_size",
        "lesion_percent_change",
        "crop_to_roi",
        "location",
    ] {
        let a = cat.sample(id, 11).unwrap();
        let b = cat.sample(id, 11).unwrap();
        assert_eq!(a.prompt, b.prompt, "{id}");
        assert_eq!(a.program_text(), b.program_text(), "{id}");
        assert_eq!(a.answer, b.answer, "{id}");
        assert_eq!(a.expected, b.expected, "{id}");
        for (x, y) in a.inputs.iter().zip(&b.inputs) {
            assert_eq!(x.image.data(), y.image.data(), "{id}");
        }
        let c = cat.sample(id, 12).unwrap();
        assert!(
            c.prompt != a.prompt || c.answer != a.answer,
            "{id}: seeds 11 and 12 gave the same sample"
        );
    }
}

#[test]
fn every_family_is_available() {
    // Every lesion class of the table is in synth, so no family waits for one.
    let cat = catalogue();
    for f in cat.families() {
        assert_eq!(cat.unavailable(f.id).unwrap(), None, "{}", f.id);
    }
    assert!(common::available().len() >= 25);
}

#[test]
fn input_names_vary_and_the_program_uses_them() {
    // A model trained on `scan_1` alone writes `scan_1` whatever the metadata says; samples
    // draw the inputs' names so the program must copy them from the first state.
    let cat = catalogue();
    let mut renamed = 0;
    let mut total = 0;
    let mut distinct = std::collections::BTreeSet::new();
    for id in ["segment_anatomy", "lesion_percent_change"] {
        for seed in 0..12 {
            let s = cat.sample(id, seed).unwrap();
            total += 1;
            if !s.inputs.iter().all(|i| i.name.starts_with("scan_")) {
                renamed += 1;
            }
            let first = &s.program[0].code;
            for i in &s.inputs {
                distinct.insert(i.name.clone());
                assert!(
                    first.contains(&format!("{} <mod>", i.name)),
                    "{id} seed {seed}: step 1 does not encode {}: {first}",
                    i.name
                );
            }
        }
    }
    assert!(
        renamed * 4 >= total,
        "only {renamed} of {total} samples renamed their inputs"
    );
    assert!(distinct.len() >= 8, "names seen: {distinct:?}");
}
