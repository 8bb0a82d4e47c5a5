//! The checkers reject wrong answers: numbers off by 20 %, the wrong side or class of a finite
//! answer, the wrong lesion's mask, a missing output.

mod common;

use common::catalogue;
use runtime::{format_number, OutputData, OutputVolume};
use std::sync::Arc;
use tasks::checker::Quantity;
use tasks::truth::MaskDef;
use tasks::{run_with_oracle, Level};

/// `text` with the printed `value` (followed by `unit`) replaced by `value · factor`.
fn scale_number(text: &str, value: f64, unit: &str, factor: f64) -> String {
    let printed = format!("{} {unit}", format_number(value));
    assert!(text.contains(&printed), "{printed:?} not in {text:?}");
    text.replacen(
        &printed,
        &format!("{} {unit}", format_number(value * factor)),
        1,
    )
}

#[test]
fn numbers_off_by_a_fifth_fail_with_true_masks() {
    let cat = catalogue();
    let mut tried = 0;
    for id in common::available() {
        let s = cat.sample(id, 0).unwrap();
        for n in &s.expected.numbers {
            let printed = format!("{} {}", format_number(n.value), n.quantity.unit().text());
            if n.value.abs() < 0.5
                || n.quantity == Quantity::Count
                || s.answer.matches(&printed).count() != 1
            {
                continue;
            }
            let wrong = scale_number(&s.answer, n.value, n.quantity.unit().text().trim(), 1.2);
            let report = s.check(&wrong, &[], Level::GroundTruth).unwrap();
            let item = report.items.iter().find(|i| i.what == n.what).unwrap();
            assert!(!item.passed, "{id}: {:?} accepted in {wrong:?}", n.what);
            tried += 1;
        }
    }
    assert!(tried >= 20, "only {tried} numbers tried");
}

#[test]
fn a_volume_off_by_twenty_percent_fails_a_model_and_five_percent_passes() {
    let cat = catalogue();
    for seed in 0..3 {
        let s = cat.sample("volume", seed).unwrap();
        let n = &s.expected.numbers[0];
        assert_eq!(n.quantity, Quantity::VolumeMl);
        for (factor, ok) in [(1.2, false), (0.8, false), (1.05, true), (0.95, true)] {
            let answer = scale_number(&s.answer, n.value, "mL", factor);
            let report = s.check(&answer, &[], Level::Model).unwrap();
            let big_enough = (n.value * (factor - 1.0)).abs() > 0.1;
            if big_enough || ok {
                assert_eq!(report.passed, ok, "{answer} vs {}", s.answer);
            }
        }
    }
}

#[test]
fn wrong_finite_answers_fail() {
    let cat = catalogue();
    let swaps: &[(&str, &[(&str, &str)])] = &[
        ("location", &[(" left ", " right "), (" right ", " left ")]),
        (
            "vascular_territory",
            &[
                ("MCA (middle", "ACA (anterior"),
                ("ACA (anterior", "PCA (posterior"),
                ("PCA (posterior", "MCA (middle"),
            ],
        ),
        (
            "signal_intensity",
            &[
                ("hyperintense", "hypointense"),
                ("hypointense", "isointense"),
                ("isointense", "hyperintense"),
            ],
        ),
        ("diffusion_restriction", &[("Yes:", "No:"), ("No:", "Yes:")]),
        ("enhancement", &[("Yes:", "No:"), ("No:", "Yes:")]),
        ("lesion_presence", &[("Yes:", "No:"), ("No:", "Yes:")]),
    ];
    for (id, pairs) in swaps {
        for seed in 0..3 {
            let s = cat.sample(id, seed).unwrap();
            assert!(s.check(&s.answer, &[], Level::Model).unwrap().passed);
            let (from, to) = pairs
                .iter()
                .find(|(from, _)| s.answer.contains(from))
                .unwrap_or_else(|| panic!("{id}: no swap applies to {:?}", s.answer));
            let wrong = s.answer.replacen(from, to, 1);
            for level in [Level::GroundTruth, Level::Model] {
                assert!(
                    !s.check(&wrong, &[], level).unwrap().passed,
                    "{id}: {wrong:?} accepted"
                );
            }
            // Hedging between two answers is wrong too.
            let hedged = format!("{} Or: {wrong}", s.answer);
            assert!(
                !s.check(&hedged, &[], Level::Model).unwrap().passed,
                "{id}: {hedged:?}"
            );
        }
    }
}

#[test]
fn the_other_lesion_or_a_missing_output_fails() {
    let cat = catalogue();
    for id in [
        "segment_by_hemisphere",
        "segment_by_size",
        "segment_by_position",
    ] {
        let s = cat.sample(id, 1).unwrap();
        let run = run_with_oracle(&s).unwrap();
        assert!(
            s.check(&run.output.response, &run.output.outputs, Level::Model)
                .unwrap()
                .passed
        );
        let MaskDef::Lesion { lesion, components } = &s.expected.outputs[0].target else {
            panic!("{id}: the output is not a lesion");
        };
        let other = MaskDef::Lesion {
            lesion: 1 - lesion,
            components: components.clone(),
        };
        let wrong_mask = s.truth.mask(&other, 0).unwrap();
        let mut outputs = run.output.outputs.clone();
        let shown = outputs
            .iter_mut()
            .find(|o| o.name == "segmentation")
            .unwrap();
        shown.data = OutputData::Mask(Arc::new(wrong_mask));
        let report = s
            .check(&run.output.response, &outputs, Level::Model)
            .unwrap();
        let item = report
            .items
            .iter()
            .find(|i| i.what == "output segmentation")
            .unwrap();
        assert!(
            !item.passed,
            "{id}: the other lesion was accepted: {}",
            item.detail
        );
        let report = s.check(&run.output.response, &[], Level::Model).unwrap();
        assert!(!report.passed, "{id}: a missing output was accepted");
    }
}

#[test]
fn an_image_op_on_the_wrong_region_fails() {
    let cat = catalogue();
    for id in ["remove_roi", "extract_roi", "crop_to_roi"] {
        // A region much smaller than the head, so that leaving the scan untouched is far off.
        let s = (0..50)
            .map(|seed| cat.sample(id, seed).unwrap())
            .find(|s| {
                let roi = s.truth.mask(&s.expected.outputs[0].target, 0).unwrap();
                let head = s
                    .truth
                    .mask(
                        &MaskDef::Anatomy {
                            ids: (1..5000).collect(),
                        },
                        0,
                    )
                    .unwrap();
                roi.count() * 50 < head.count()
            })
            .expect("a small region within 50 seeds");
        let run = run_with_oracle(&s).unwrap();
        assert!(
            s.check(
                &run.output.response,
                &run.output.outputs,
                Level::GroundTruth
            )
            .unwrap()
            .passed
        );
        // The unmodified input in place of the output.
        let input = s.input("scan_1").unwrap().image.clone();
        let mut outputs: Vec<OutputVolume> = run.output.outputs.clone();
        outputs[0].data = OutputData::Image(input);
        let report = s
            .check(&run.output.response, &outputs, Level::Model)
            .unwrap();
        assert!(!report.passed, "{id}: the untouched scan was accepted");
    }
}
