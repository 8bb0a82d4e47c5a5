//! The trained-model commands as a user runs them, with a `tiny` model trained here for a few
//! steps on the phantom anatomy: `train` (new run, resume), `run` (report, outputs, exit codes)
//! and `eval` (report files with a row per family). Plumbing only: a model this small answers
//! nothing correctly.

use std::path::Path;
use std::process::{Command, Output};

fn voxelprompt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxelprompt"))
        .args(args)
        .env_remove("VOXELPROMPT_MODEL")
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Settings for a fast tiny run: few tokenizer samples, no validation.
fn tiny_settings(dir: &Path) -> std::path::PathBuf {
    let shipped = include_str!("../../../configs/train/joint.toml");
    let text = shipped
        .replace("tokenizer_samples = 400", "tokenizer_samples = 40")
        .replace("validate_every = 100", "validate_every = 2")
        .replace("validation_samples = 12", "validation_samples = 1")
        .replace("accumulation = 2", "accumulation = 1");
    assert_ne!(
        text, shipped,
        "the shipped settings changed; update this test"
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn train_resume_run_and_eval_with_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let settings = tiny_settings(root);
    let run_dir = root.join("run");

    let o = voxelprompt(&[
        "train",
        "--config",
        "tiny",
        "--anatomy",
        "phantom",
        "--settings",
        p(&settings),
        "--steps",
        "3",
        "--out",
        p(&run_dir),
        "--seed",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(run_dir.join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(run_dir.join("checkpoint/model/manifest.json").is_file());

    // A second `--out` into the same run is refused; --resume continues it.
    let o = voxelprompt(&[
        "train",
        "--config",
        "tiny",
        "--steps",
        "4",
        "--out",
        p(&run_dir),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("--resume"),
        "{}",
        text(&o)
    );
    let o = voxelprompt(&["train", "--resume", p(&run_dir), "--steps", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(run_dir.join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["step"], 4);

    let model = run_dir.join("checkpoint/model");
    let example = root.join("example");
    let o = voxelprompt(&["example", "--out", p(&example), "--spacing", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    let scan = example.join("t1.nii.gz");

    // `run` answers (badly) and always writes its report; exit 0 or 4 (program failed).
    let out = root.join("answer");
    let o = voxelprompt(&[
        "run",
        "--model",
        p(&model),
        "--prompt",
        "Segment the brain.",
        "--out",
        p(&out),
        "--max-steps",
        "2",
        &format!("t1@2024-03-01={}", p(&scan)),
    ]);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0) | Some(4)),
        "exit {code:?}: {}",
        text(&o)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["prompt"], "Segment the brain.");
    assert_eq!(report["inputs"][0]["name"], "t1");
    assert_eq!(report["inputs"][0]["date"], "2024-03-01");
    assert!(report["steps"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(report["model"]["weights_sha256"].as_str().unwrap().len() == 64);
    assert!(out.join("trace.json").is_file());

    // Exit codes: 3 without a model, 2 for an unreadable scan or an empty prompt.
    let o = voxelprompt(&[
        "run",
        "--model",
        p(&root.join("nowhere")),
        "--prompt",
        "x",
        p(&scan),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = voxelprompt(&[
        "run",
        "--model",
        p(&model),
        "--prompt",
        "x",
        p(&root.join("missing.nii.gz")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("missing.nii.gz"), "{}", text(&o));
    let o = voxelprompt(&["run", "--model", p(&model), "--prompt", "  ", p(&scan)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A corrupt model is named.
    let bad = root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in [
        "model.json",
        "tokenizer.json",
        "weights.safetensors",
        "manifest.json",
    ] {
        std::fs::copy(model.join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join("weights.safetensors"), b"not weights").unwrap();
    let o = voxelprompt(&["run", "--model", p(&bad), "--prompt", "x", p(&scan)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("weights.safetensors"), "{}", text(&o));

    // `batch`: a manifest of two subjects (one with two sessions) in two shards; a rerun skips
    // finished folders and redoes a half-written one.
    let manifest = root.join("subjects.csv");
    std::fs::write(
        &manifest,
        format!(
            "subject,session,date,t1\nA,1,2024-01-02,{s}\nA,2,2024-06-30,{s}\nB,,,{s}\n",
            s = p(&scan)
        ),
    )
    .unwrap();
    let batch_out = root.join("batch");
    for shard in ["1/2", "2/2"] {
        let o = voxelprompt(&[
            "batch",
            "--model",
            p(&model),
            "--manifest",
            p(&manifest),
            "--prompt",
            "Segment the brain.",
            "--out",
            p(&batch_out),
            "--shard",
            shard,
            "--max-steps",
            "1",
        ]);
        assert!(matches!(o.status.code(), Some(0) | Some(4)), "{}", text(&o));
    }
    for dir in ["sub-A/ses-1", "sub-A/ses-2", "sub-B"] {
        assert!(batch_out.join(dir).join("report.json").is_file(), "{dir}");
    }
    let csv = std::fs::read_to_string(batch_out.join("measurements.csv")).unwrap();
    assert!(csv.starts_with("subject,session,quantity,structure,value,unit"));
    assert!(batch_out.join("failures.csv").is_file());
    std::fs::remove_file(batch_out.join("sub-B/report.json")).unwrap();
    let stamp = std::fs::metadata(batch_out.join("sub-A/ses-1/report.json"))
        .unwrap()
        .modified()
        .unwrap();
    let o = voxelprompt(&[
        "batch",
        "--model",
        p(&model),
        "--manifest",
        p(&manifest),
        "--prompt",
        "Segment the brain.",
        "--out",
        p(&batch_out),
        "--max-steps",
        "1",
    ]);
    assert!(text(&o).contains("2 already finished"), "{}", text(&o));
    assert!(batch_out.join("sub-B/report.json").is_file());
    let again = std::fs::metadata(batch_out.join("sub-A/ses-1/report.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(stamp, again, "a finished folder was redone");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(batch_out.join("sub-A/ses-2/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["inputs"][0]["date"], "2024-06-30");

    // `eval`: one sample per family on the phantom; the report has a row per family.
    let ev = root.join("eval");
    let o = voxelprompt(&[
        "eval",
        "--model",
        p(&model),
        "--out",
        p(&ev),
        "--per-family",
        "1",
        "--anatomy",
        "phantom",
        "--spacing",
        "4",
        "--max-steps",
        "2",
        "--max-new-tokens",
        "24",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("report.json")).unwrap()).unwrap();
    assert!(
        report["breakdown"]["spacing: 4 mm"]["samples"].as_u64() > Some(0),
        "{}",
        report["breakdown"]
    );
    let families = report["families"].as_object().unwrap();
    assert!(families.len() >= 20, "{} families", families.len());
    let samples = report["samples"].as_array().unwrap();
    assert_eq!(samples.len(), families.len());
    let md = std::fs::read_to_string(ev.join("report.md")).unwrap();
    for id in families.keys() {
        assert!(md.contains(&format!("| {id} |")), "report.md lacks {id}");
    }

    // `ship`: the checkpoint in f16 with its training log and evaluation; a worse model does
    // not replace a better one.
    let shipped = root.join("models/voxelprompt-small");
    let o = voxelprompt(&[
        "ship",
        "--run",
        p(&run_dir),
        "--eval",
        p(&ev),
        "--out",
        p(&shipped),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "weights.safetensors",
        "manifest.json",
        "train.csv",
        "eval/report.md",
        "eval/report.json",
    ] {
        assert!(shipped.join(f).is_file(), "{f} not shipped");
    }
    let size = |d: &Path| {
        std::fs::metadata(d.join("weights.safetensors"))
            .unwrap()
            .len()
    };
    assert!(size(&shipped) * 10 < size(&model) * 6, "weights not in f16");
    std::fs::write(shipped.join("MODEL.md"), "card").unwrap();
    let old_report = std::fs::read_to_string(shipped.join("eval/report.json")).unwrap();
    let mut better: serde_json::Value = serde_json::from_str(&old_report).unwrap();
    better["success"] = serde_json::json!(0.5);
    std::fs::write(shipped.join("eval/report.json"), better.to_string()).unwrap();
    let o = voxelprompt(&[
        "ship",
        "--run",
        p(&run_dir),
        "--eval",
        p(&ev),
        "--out",
        p(&shipped),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("not replacing"),
        "{}",
        text(&o)
    );
    let o = voxelprompt(&[
        "ship",
        "--run",
        p(&run_dir),
        "--eval",
        p(&ev),
        "--out",
        p(&shipped),
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(shipped.join("MODEL.md")).unwrap(),
        "card"
    );

    // `chat` with scripted stdin: the shipped model answers, hand-written code reaches the
    // variables of earlier turns as NAME_TURN, :save writes each answer.
    let saved = root.join("chat");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxelprompt"))
        .args([
            "chat",
            "--model",
            p(&shipped),
            "--max-steps",
            "1",
            &format!("t1={}", p(&scan)),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        write!(
            stdin,
            "Segment the brain.\n:code let v = 2 + 3; read(v);\n:code read(v_2 * 2);\n:vars\n:steps\n:save {}\n:nonsense\n:quit\n",
            p(&saved)
        )
        .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(|l| l == "5") && out.lines().any(|l| l == "10"),
        "{out}"
    );
    assert!(
        out.contains("v_2: integer") && out.contains("t1: volume"),
        "{out}"
    );
    assert!(out.contains("-- step 1 --"), "{out}");
    assert!(
        out.contains("unknown or incomplete command :nonsense"),
        "{out}"
    );
    assert!(saved.join("01/report.json").is_file(), "{out}");

    // `demo` runs every built-in case with the model and writes a summary.
    let demo = root.join("demo");
    let o = voxelprompt(&[
        "demo",
        "--model",
        p(&shipped),
        "--out",
        p(&demo),
        "--spacing",
        "4",
        "--max-steps",
        "2",
        "--max-new-tokens",
        "24",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = std::fs::read_to_string(demo.join("summary.md")).unwrap();
    for case in ["1-segment-and-measure", "4-longitudinal"] {
        assert!(summary.contains(case), "{summary}");
        assert!(demo.join(case).join("report.json").is_file(), "{case}");
    }
    assert!(text(&o).contains("truth:"), "{}", text(&o));
}
