//! The command line as a user runs it: the demo files, `info`, `measure`, and bad input.

use std::path::Path;
use std::process::Output;

mod common;
use common::{stdout_json, voxelprompt};

/// `a` and `b` are the same JSON, numbers to 1e-9 relative (a sum over voxels on several
/// threads may round differently from run to run, and parsing need not round-trip).
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(y.abs()), "{x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{a} vs {b}");
            x.iter().zip(y).for_each(|(x, y)| assert_json_close(x, y));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert!(x.keys().eq(y.keys()), "{a} vs {b}");
            x.values()
                .zip(y.values())
                .for_each(|(x, y)| assert_json_close(x, y));
        }
        _ => assert_eq!(a, b),
    }
}

/// Standard output and standard error.
fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn demo(dir: &Path) {
    let o = voxelprompt(&["example", "--out", dir.to_str().unwrap(), "--spacing", "2"]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn info_reports_geometry_and_intensity() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let o = voxelprompt(&[
        "info",
        "--json",
        dir.path().join("t1.nii.gz").to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = &v[0];
    assert_eq!(r["format"], "NIfTI-1");
    assert_eq!(r["orientation"], "RAS");
    assert_eq!(r["shape"], serde_json::json!([80, 96, 80]));
    assert_eq!(r["spacing_mm"], serde_json::json!([2.0, 2.0, 2.0]));
    assert!(r["intensity_max"].as_f64().unwrap() <= 1.0);
    let o = voxelprompt(&["info", dir.path().join("labels.nii.gz").to_str().unwrap()]);
    let (out, _) = text(&o);
    assert!(out.contains("U8") && out.contains("80 × 96 × 80"), "{out}");
}

#[test]
fn measure_matches_the_phantom_truth() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let labels = dir.path().join("labels.nii.gz");
    let image = dir.path().join("t1.nii.gz");
    let lut = dir.path().join("labels_lut.txt");
    let o = voxelprompt(&[
        "measure",
        labels.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--lut",
        lut.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 9);
    let lesion = rows.iter().find(|r| r["name"] == "Lesion").unwrap();
    // A sphere of radius 9 mm at (-30, 25, 25): 3.05 mL; at 2 mm voxels within 8%.
    let v = lesion["volume_ml"].as_f64().unwrap();
    let truth = 4.0 / 3.0 * std::f64::consts::PI * 9f64.powi(3) / 1000.0;
    assert!((v - truth).abs() / truth < 0.08, "lesion {v} mL vs {truth}");
    let c: Vec<f64> = lesion["centroid_mm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (a, b) in c.iter().zip([-30.0, 25.0, 25.0]) {
        assert!((a - b).abs() < 0.5, "centroid {c:?}");
    }
    // The image is 0.35 inside the lesion plus noise of ±0.02.
    assert!((lesion["mean"].as_f64().unwrap() - 0.35).abs() < 0.01);
    // Left and right hippocampi are mirror images.
    let vol = |name: &str| {
        rows.iter().find(|r| r["name"] == name).unwrap()["volume_ml"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(vol("Left-Hippocampus"), vol("Right-Hippocampus"));
    // CSV has a header and one line per label.
    let o = voxelprompt(&["measure", labels.to_str().unwrap(), "--format", "csv"]);
    let (out, _) = text(&o);
    assert_eq!(out.lines().count(), 10);
    assert!(out.starts_with("label,name,voxel_count,volume_ml"));
    // The global --json is --format json; with another --format it is refused.
    let o = voxelprompt(&[
        "measure",
        labels.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--lut",
        lut.to_str().unwrap(),
        "--json",
    ]);
    assert_json_close(&stdout_json(&o), &serde_json::Value::from(rows));
    let o = voxelprompt(&[
        "measure",
        labels.to_str().unwrap(),
        "--json",
        "--format",
        "csv",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(out.is_empty() && err.contains("--format for csv"), "{err}");
}

#[test]
fn bad_input_exits_non_zero_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let garbage = dir.path().join("garbage.nii.gz");
    std::fs::write(&garbage, b"not gzip at all").unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../voxel/tests/fixtures/f32_sform.nii");
    let labels = dir.path().join("labels.nii.gz");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["info".into(), garbage.display().to_string()],
            "garbage.nii.gz",
        ),
        (
            vec![
                "info".into(),
                dir.path().join("missing.mgz").display().to_string(),
            ],
            "missing.mgz",
        ),
        (
            vec![
                "measure".into(),
                labels.display().to_string(),
                "--image".into(),
                fixture.display().to_string(),
            ],
            "grid mismatch",
        ),
        (
            vec!["measure".into(), fixture.display().to_string()],
            "not a label map",
        ),
        (
            vec![
                "example".into(),
                "--out".into(),
                dir.path().display().to_string(),
                "--spacing".into(),
                "0".into(),
            ],
            "spacing",
        ),
    ];
    for (args, expect) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = voxelprompt(&a);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn exec_runs_the_example_program_on_the_demo_head() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hippocampus.rhai");
    let out = dir.path().join("out");
    let p = |name: &str| dir.path().join(name).display().to_string();
    let o = voxelprompt(&[
        "exec",
        "--program",
        program.to_str().unwrap(),
        "--labels",
        &p("labels.nii.gz"),
        "--lut",
        &p("labels_lut.txt"),
        "--out",
        out.to_str().unwrap(),
        &p("t1.nii.gz"),
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // Mirror-image hippocampi: identical volumes, asymmetry exactly 0.
    assert!(stdout.contains("Asymmetry index: 0.000 %."), "{stdout}");
    let labels = voxel::io::read_labels(&dir.path().join("labels.nii.gz")).unwrap();
    let left_ml = voxel::measure::volume_ml(&labels.mask_of(17));
    assert!(
        stdout.contains(&format!("Left hippocampus: {left_ml:.3} mL")),
        "{stdout}"
    );
    // Outputs are on the scan's grid and equal the label masks.
    let lesion = voxel::io::read_labels(&out.join("lesion.nii.gz")).unwrap();
    assert_eq!(lesion.geometry(), labels.geometry());
    let want: Vec<i32> = labels.data().iter().map(|&l| (l == 99) as i32).collect();
    assert_eq!(lesion.data(), want.as_slice());
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trace.json")).unwrap()).unwrap();
    assert_eq!(trace["stopped"], true);
    // --json: the same response, every shown volume with its file, and the files written.
    let out_json = dir.path().join("out-json");
    let o = voxelprompt(&[
        "exec",
        "--program",
        program.to_str().unwrap(),
        "--labels",
        &p("labels.nii.gz"),
        "--lut",
        &p("labels_lut.txt"),
        "--out",
        out_json.to_str().unwrap(),
        &p("t1.nii.gz"),
        "--json",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json = stdout_json(&o);
    let response = json["response"].as_str().unwrap();
    assert_eq!(response.lines().count(), 3, "{response}");
    assert!(
        stdout.starts_with(response),
        "--json: {response:?}, text: {stdout:?}"
    );
    assert_eq!(json["stopped"], true);
    assert_eq!(json["error"], serde_json::Value::Null);
    let shown = |name: &str| {
        out_json
            .join(format!("{name}.nii.gz"))
            .display()
            .to_string()
    };
    assert_eq!(
        json["outputs"],
        serde_json::json!([
            {"name": "hippocampi", "grid_of": "scan_1", "kind": "mask", "path": shown("hippocampi")},
            {"name": "lesion", "grid_of": "scan_1", "kind": "mask", "path": shown("lesion")},
        ])
    );
    let trace = out_json.join("trace.json").display().to_string();
    assert_eq!(
        json["written"],
        serde_json::json!([shown("hippocampi"), shown("lesion"), trace])
    );
    assert_eq!(
        voxel::io::read_labels(&out_json.join("lesion.nii.gz")).unwrap(),
        voxel::io::read_labels(&out.join("lesion.nii.gz")).unwrap()
    );
    // Without --labels the vision call fails with advice, and the exit code says so.
    let o = voxelprompt(&[
        "exec",
        "--program",
        program.to_str().unwrap(),
        &p("t1.nii.gz"),
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("--labels"), "{err}");
}

#[test]
fn synth_writes_a_deterministic_subject() {
    let dir = tempfile::tempdir().unwrap();
    let run = |sub: &str| {
        let out = dir.path().join(sub);
        let o = voxelprompt(&[
            "synth",
            "--out",
            out.to_str().unwrap(),
            "--n",
            "1",
            "--contrasts",
            "t1,flair",
            "--lesions",
            "glioma",
            "--spacing",
            "4",
            "--seed",
            "5",
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
        out.join("sub-000")
    };
    let a = run("a");
    let b = run("b");
    // --json lists every file written, and nothing else is there.
    let c = dir.path().join("c");
    let o = voxelprompt(&[
        "synth",
        "--out",
        c.to_str().unwrap(),
        "--spacing",
        "4",
        "--anatomy",
        "phantom",
        "--json",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json = stdout_json(&o);
    assert_eq!(json["anatomies"], serde_json::json!(["phantom"]));
    assert_eq!(
        json["subjects"],
        serde_json::json!([c.join("sub-000").display().to_string()])
    );
    let mut listed: Vec<String> = json["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut found = Vec::new();
    let mut stack = vec![c.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found.sort();
    assert_eq!(listed, found);
    assert!(listed.iter().any(|f| f.ends_with("sub-000/subject.json")));
    let json_a = std::fs::read_to_string(a.join("subject.json")).unwrap();
    assert_eq!(
        json_a,
        std::fs::read_to_string(b.join("subject.json")).unwrap()
    );
    let img_a = voxel::io::read_image(&a.join("ses-0/flair.nii.gz")).unwrap();
    let img_b = voxel::io::read_image(&b.join("ses-0/flair.nii.gz")).unwrap();
    assert_eq!(img_a, img_b);
    let o = voxelprompt(&[
        "synth",
        "--out",
        dir.path().to_str().unwrap(),
        "--lesions",
        "unicorn",
    ]);
    assert!(!o.status.success());
}

#[test]
fn synth_writes_native_thick_slice_grids() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("thick");
    let o = voxelprompt(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--contrasts",
        "flair",
        "--spacing",
        "3,3,6",
        "--seed",
        "2",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    for file in ["ses-0/flair.nii.gz", "ses-0/labels.nii.gz"] {
        let spacing = voxel::io::read_image(&out.join("sub-000").join(file))
            .unwrap()
            .geometry()
            .spacing_mm();
        for (got, want) in spacing.iter().zip([3.0, 3.0, 6.0]) {
            assert!((got - want).abs() < 1e-4, "{file}: spacing {spacing:?}");
        }
    }
    let o = voxelprompt(&[
        "synth",
        "--out",
        dir.path().join("bad").to_str().unwrap(),
        "--spacing",
        "1,2",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("one voxel size or three"), "{err}");
}

#[test]
fn tasks_list_and_corpus() {
    let o = voxelprompt(&["tasks", "list", "--json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 30, "{} families", rows.len());
    for r in rows {
        let templates = r["templates"].as_array().unwrap().len();
        assert_eq!(r["held_out_template"].as_u64(), Some(templates as u64 - 1));
        if r["unavailable"].is_null() {
            assert!(r["example_program"].as_str().unwrap().contains("<step>"));
        }
    }
    let o = voxelprompt(&["tasks", "list"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for id in [
        "segment_anatomy",
        "segment_by_size",
        "mean_hu",
        "asymmetry",
        "ventricular_growth",
        "enhancement",
    ] {
        assert!(
            out.contains(&format!("{id}  [")),
            "{id} missing from the list"
        );
    }
    assert!(
        out.contains("<step>") && out.contains("<mod>") && out.contains("<feedback>"),
        "{out}"
    );
    let total_line = out.lines().last().unwrap();
    let total: u128 = total_line
        .split("; ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in {total_line:?}"));
    assert!(total >= 1_000_000, "{total_line}");

    let dir = tempfile::tempdir().unwrap();
    let corpus = |name: &str| {
        let path = dir.path().join(name);
        let o = voxelprompt(&[
            "tasks",
            "corpus",
            "--n",
            "40",
            "--seed",
            "3",
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
        std::fs::read_to_string(path).unwrap()
    };
    let a = corpus("a.txt");
    assert_eq!(a, corpus("b.txt"), "the same seed gives the same corpus");
    assert_eq!(a.matches("<bos>").count(), 40);
    assert_eq!(a.matches("<bos>").count(), a.matches("<eos>").count());
    assert!(a.contains("volume scan_1, modality "), "metadata lines");
    assert!(a.matches("<step>").count() >= 80 && a.contains("<endfeedback>"));
    let o = voxelprompt(&["tasks", "corpus", "--n", "0"]);
    assert!(!o.status.success());
}

#[test]
fn measure_names_labels_only_from_a_table_that_belongs_to_the_map() {
    let dir = tempfile::tempdir().unwrap();
    // An AAL-like map: labels 1 and 2 (left and right precentral gyrus), not FreeSurfer's.
    let g = voxel::Geometry::from_spacing([6, 4, 4], [2.0; 3], [0.0; 3]).unwrap();
    let data: Vec<i32> = (0..96).map(|i| if i % 6 < 3 { 1 } else { 2 }).collect();
    let map = voxel::LabelMap::new(g, data).unwrap();
    let path = dir.path().join("aal.nii");
    voxel::io::write_labels(&path, &map).unwrap();
    let names = |o: &Output| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&text(o).0).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    // No table: ids only (FreeSurfer's label 2 is not "Left-Cerebral-White-Matter" here).
    let o = voxelprompt(&["measure", path.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(names(&o), ["", ""]);
    // A table beside the map (AAL's own `aal.nii.txt` layout: id name code).
    std::fs::write(
        dir.path().join("aal.nii.txt"),
        "1 Precentral_L 2001\n2 Precentral_R 2002\n",
    )
    .unwrap();
    let o = voxelprompt(&["measure", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(names(&o), ["Precentral_L", "Precentral_R"]);
    // The demo head's map is recognisably FreeSurfer's and gets its names without a table.
    demo(dir.path());
    std::fs::remove_file(dir.path().join("labels_lut.txt")).unwrap();
    let o = voxelprompt(&[
        "measure",
        dir.path().join("labels.nii.gz").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        names(&o).iter().any(|n| n == "Left-Hippocampus"),
        "{:?}",
        names(&o)
    );
}

#[test]
fn threads_and_quiet_are_global_flags() {
    // The corpus writer reports on stderr; --quiet leaves only the corpus on stdout.
    let o = voxelprompt(&["--threads", "1", "tasks", "corpus", "--n", "2", "--quiet"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("<step>"), "{out}");
    assert!(err.is_empty(), "stderr under --quiet: {err}");
    let o = voxelprompt(&["tasks", "corpus", "--n", "2"]);
    let (_, err) = text(&o);
    assert!(err.contains("wrote 2 samples"), "{err}");
    let o = voxelprompt(&["--threads", "0x", "tasks", "list"]);
    assert!(!o.status.success());
}

#[test]
fn json_is_refused_by_commands_without_it() {
    for args in [
        &[
            "train", "--config", "tiny", "--steps", "1", "--out", "unused",
        ][..],
        &["tasks", "corpus", "--n", "1"],
        &["baseline", "train", "--out", "unused"],
        &["ship", "--run", "unused", "--eval", "unused"],
    ] {
        let mut args = args.to_vec();
        args.push("--json");
        let o = voxelprompt(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        let name = if args[0] == "ship" || args[0] == "train" {
            args[0].to_string()
        } else {
            format!("{} {}", args[0], args[1])
        };
        assert!(
            err.contains(&format!("`{name}` has no JSON output")),
            "{args:?}: {err}"
        );
    }
    assert!(!Path::new("unused").exists());
}

#[test]
fn example_and_render_list_what_they_wrote_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let o = voxelprompt(&["example", "--out", dir.path().to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let names = ["t1.nii.gz", "labels.nii.gz", "labels_lut.txt"];
    let want: Vec<String> = names
        .iter()
        .map(|n| dir.path().join(n).display().to_string())
        .collect();
    assert_eq!(stdout_json(&o), serde_json::json!({ "written": want }));
    let png = dir.path().join("t1.png");
    let o = voxelprompt(&[
        "render",
        &want[0],
        "--labels",
        &want[1],
        "--out",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        stdout_json(&o),
        serde_json::json!({ "written": [png.display().to_string()] })
    );
    assert!(png.is_file());
}

/// A baseline trained for two steps on the phantom segments the example head; `segment --json` reports the
/// mask's volume and its Dice against the truth, both recomputed here from the files.
#[test]
fn baseline_segment_reports_volume_and_dice_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let scan = common::example_head(&root.join("example"));
    let truth = root.join("example/labels.nii.gz");
    // Subjects synthesised at 5-6 mm and a network at 8 mm on 24-voxel patches: seconds.
    let shipped = include_str!("../../../configs/train/baseline.toml");
    let settings = shipped.replace("spacing_mm = [1.3, 2.5]", "spacing_mm = [5.0, 6.0]");
    assert_ne!(
        settings, shipped,
        "the shipped settings changed; update this test"
    );
    std::fs::write(root.join("baseline.toml"), settings).unwrap();
    let checkpoint = root.join("baseline");
    let o = voxelprompt(&[
        "baseline",
        "train",
        "--config",
        "tiny",
        "--spacing",
        "8",
        "--patch",
        "24",
        "24",
        "24",
        "--max-steps",
        "2",
        "--anatomy",
        "phantom",
        "--settings",
        root.join("baseline.toml").to_str().unwrap(),
        "--out",
        checkpoint.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mask_path = root.join("brain.nii.gz");
    let o = voxelprompt(&[
        "baseline",
        "segment",
        scan.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        mask_path.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--picture",
        root.join("brain.png").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json = stdout_json(&o);
    let mask = voxel::io::read_labels(&mask_path).unwrap().map(|l| l != 0);
    let reference = voxel::io::read_labels(&truth).unwrap().map(|l| l != 0);
    let ml = |m: &voxel::Mask| m.count() as f64 * m.geometry().voxel_volume_mm3() / 1000.0;
    let close = |json: &serde_json::Value, key: &str, want: f64| {
        let got = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {json}"));
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{key}: {got} vs {want}"
        );
    };
    assert_eq!(json["image"], scan.to_str().unwrap());
    assert_eq!(json["target"], "brain");
    assert_eq!(json["mask"], mask_path.to_str().unwrap());
    assert_eq!(json["truth"], truth.to_str().unwrap());
    assert_eq!(json["picture"], root.join("brain.png").to_str().unwrap());
    assert!(root.join("brain.png").is_file());
    assert_eq!(
        mask.geometry(),
        reference.geometry(),
        "the mask is on the scan's grid"
    );
    close(&json, "volume_ml", ml(&mask));
    close(&json, "reference_ml", ml(&reference));
    close(
        &json,
        "dice",
        voxel::metrics::dice(&mask, &reference).unwrap(),
    );
    // Without --truth there is no Dice.
    let o = voxelprompt(&[
        "baseline",
        "segment",
        scan.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        root.join("again.nii.gz").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json = stdout_json(&o);
    for key in ["truth", "dice", "reference_ml", "picture"] {
        assert!(json[key].is_null(), "{key}: {json}");
    }
    close(&json, "volume_ml", ml(&mask));
}
