//! The documentation's examples run as written: the `exec` example on the demo head with its
//! FreeSurfer labels, and the standard-library calls the function examples rely on.

mod common;
use runtime::{run_program, GroundTruth, Limits, StructureTable};

fn doc() -> &'static str {
    include_str!("../../../docs/runtime-library.md")
}

/// The code block following `marker` in the documentation.
fn block_after(marker: &str) -> String {
    let rest = &doc()[doc().find(marker).expect("marker in the docs")..];
    let start = rest.find("```\n").expect("a code block") + 4;
    let len = rest[start..].find("```").expect("closed code block");
    rest[start..start + len].to_string()
}

#[test]
fn the_exec_example_runs_on_the_demo_head() {
    let head = voxel::phantom::demo_head([2.0; 3]).unwrap();
    let program = block_after("Example (`hippocampus.rhai`):");
    let gt = GroundTruth {
        labels: head.labels.clone(),
        structures: StructureTable::from_lut(head.lut.clone()),
    };
    let run = run_program(
        &program,
        vec![("scan_1".into(), head.image.clone())],
        Some(gt),
        &Limits::default(),
    )
    .unwrap();
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.stopped);
    let left = voxel::measure::volume_ml(&head.labels.mask_of(17));
    let right = voxel::measure::volume_ml(&head.labels.mask_of(53));
    assert!(left > 0.0 && right > 0.0);
    let first = format!(
        "Left hippocampus: {} mL, right: {} mL.",
        runtime::format_number(left),
        runtime::format_number(right)
    );
    assert_eq!(run.response.lines().next(), Some(first.as_str()));
    assert_eq!(run.outputs.len(), 1);
    assert_eq!(run.outputs[0].name, "hippocampi");
    assert_eq!(
        run.trace.steps[0].feedback,
        format!(
            "[{}, {}]",
            runtime::format_number(left),
            runtime::format_number(right)
        )
    );
}

#[test]
fn standard_calls_used_in_the_examples_exist() {
    let p = common::phantom();
    let mut s = common::session(&p, Limits::default());
    common::ok(&mut s, common::SEGMENT);
    common::ok(
        &mut s,
        "let size = extents(left); let d = max(size[0], max(size[1], size[2]));
         let side = if centroid(left)[0] < 0 { \"left\" } else { \"right\" };
         let b = bbox(left); let si = b.max[2] - b.min[2];",
    );
    assert_eq!(common::float(&s, "d"), 14.0);
    assert_eq!(s.variable("side").unwrap().into_string().unwrap(), "left");
    assert_eq!(common::float(&s, "si"), common::floats(&s, "size")[2]);
}
