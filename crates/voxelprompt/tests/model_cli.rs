//! The trained-model commands as a user runs them, with a `tiny` model trained here for a few
//! steps on the phantom anatomy: `train` (new run, resume), `run` (report, outputs, exit codes)
//! and `eval` (report files with a row per family). Plumbing only: a model this small answers
//! nothing correctly.

use std::path::Path;

mod common;
use common::{example_head, p, stdout_json, text, train_tiny, voxelprompt, voxelprompt_with_stdin};

#[test]
fn train_resume_run_and_eval_with_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let run_dir = root.join("run");

    let o = train_tiny(root, &run_dir, 3);
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

    // The run keeps a moving average of its weights (joint.toml): that is the model it
    // validates and ships, so it is the one evaluated here.
    let model = run_dir.join("checkpoint/average");
    assert!(model.join("manifest.json").is_file());
    let scan = example_head(&root.join("example"));

    // `average`: the mean of several checkpoints' weights as a new model; never over a folder.
    let averaged = root.join("averaged");
    let raw = run_dir.join("checkpoint/model");
    let o = voxelprompt(&["average", "--out", p(&averaged), p(&raw), p(&model)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("averaged 2 models"), "{}", text(&o));
    assert!(averaged.join("manifest.json").is_file());
    let o = voxelprompt(&["average", "--out", p(&averaged), p(&raw), p(&model)]);
    assert!(
        !o.status.success() && text(&o).contains("exists"),
        "{}",
        text(&o)
    );
    let o = voxelprompt(&["average", "--out", p(&root.join("one")), p(&raw)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

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
        "--json",
    ]);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0) | Some(4)),
        "exit {code:?}: {}",
        text(&o)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // `--json` (a global flag now) prints the report as written, and nothing else.
    assert_eq!(stdout_json(&o), report);
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
    // Jobs in sorted order are A/1, A/2, B; shard I takes those with index k, k mod 2 = I - 1.
    for (shard, folders) in [
        ("1/2", vec!["sub-A/ses-1", "sub-B"]),
        ("2/2", vec!["sub-A/ses-2"]),
    ] {
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
            "--json",
        ]);
        assert!(matches!(o.status.code(), Some(0) | Some(4)), "{}", text(&o));
        let summary = stdout_json(&o);
        let failed = folders
            .iter()
            .filter(|f| batch_out.join(f).join("error.txt").is_file())
            .count();
        assert_eq!(summary["shard"], shard);
        assert_eq!(summary["listed"], 3);
        assert_eq!(summary["in_shard"], folders.len());
        assert_eq!(summary["skipped"], 0);
        assert_eq!(summary["failed"], failed, "{summary}");
        assert_eq!(summary["done"], folders.len() - failed, "{summary}");
        assert_eq!(o.status.code(), Some(if failed > 0 { 4 } else { 0 }));
        check_batch_tables(&summary, &batch_out);
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
        "--json",
    ]);
    assert!(text(&o).contains("2 already finished"), "{}", text(&o));
    let summary = stdout_json(&o);
    let failed = usize::from(batch_out.join("sub-B/error.txt").is_file());
    assert_eq!(
        (&summary["in_shard"], &summary["skipped"]),
        (&3.into(), &2.into())
    );
    assert_eq!(
        (&summary["done"], &summary["failed"]),
        (&(1 - failed).into(), &failed.into()),
        "{summary}"
    );
    check_batch_tables(&summary, &batch_out);
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
        "4,4x4x6",
        "--max-steps",
        "2",
        "--max-new-tokens",
        "24",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("report.json")).unwrap()).unwrap();
    // `--json`: report.json's numbers without its samples, and where the files are.
    let summary = stdout_json(&o);
    let samples = report["samples"].as_array().unwrap();
    let passed = samples.iter().filter(|s| s["passed"] == true).count();
    assert_eq!(summary["samples"], samples.len());
    assert_eq!(summary["passed"], passed);
    assert_eq!(summary["success"], report["success"]);
    assert_eq!(summary["model"], report["model"]);
    for key in ["families", "dice_by_target", "breakdown"] {
        assert_eq!(summary[key], report[key], "{key}");
    }
    // No --segmentation: the experiment's list is empty in both.
    assert_eq!(summary["segmentation"], serde_json::json!([]));
    assert_eq!(report["segmentation"], serde_json::json!([]));
    assert_eq!(summary["report_json"], p(&ev.join("report.json")));
    assert_eq!(summary["report_md"], p(&ev.join("report.md")));
    assert_eq!(summary["pictures"], p(&ev.join("pictures")));
    // One set per voxel size: isotropic 4 mm and thick 6 mm slices.
    let families = report["families"].as_object().unwrap();
    assert!(families.len() >= 20, "{} families", families.len());
    for set in ["spacing: 4 mm", "spacing: 4×4×6 mm"] {
        assert_eq!(
            report["breakdown"][set]["samples"].as_u64(),
            Some(families.len() as u64),
            "{set}: {}",
            report["breakdown"]
        );
    }
    let samples = report["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2 * families.len());
    assert!(samples
        .iter()
        .any(|s| s["spacing_mm"] == serde_json::json!([4.0, 4.0, 6.0])));
    let md = std::fs::read_to_string(ev.join("report.md")).unwrap();
    for id in families.keys() {
        assert!(md.contains(&format!("| {id} |")), "report.md lacks {id}");
    }
    // Charts: success per family, and the learning curve from the run's train.csv beside the
    // model; report.md shows both.
    for chart in ["charts/success_by_family.png", "charts/learning_curve.png"] {
        let bytes = std::fs::read(ev.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{chart} is not a PNG");
        assert!(
            md.contains(&format!("]({chart})")),
            "report.md does not show {chart}"
        );
    }

    // `eval --oracle-vision`: the agent alone, its vision calls answered with the truth; the
    // report says so.
    let oracle_eval = |out: &Path, more: &[&str]| {
        let mut args = vec![
            "eval",
            "--model",
            p(&model),
            "--out",
            p(out),
            "--per-family",
            "1",
            "--anatomy",
            "phantom",
            "--spacing",
            "6",
            "--max-steps",
            "2",
            "--max-new-tokens",
            "24",
            "--oracle-vision",
            "--json",
        ];
        args.extend_from_slice(more);
        voxelprompt(&args)
    };
    let oracle_ev = root.join("eval-oracle");
    let o = oracle_eval(&oracle_ev, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = stdout_json(&o);
    assert!(
        summary["model"]
            .as_str()
            .is_some_and(|m| m.ends_with(train::eval::ORACLE_VISION_SUFFIX)),
        "{summary}"
    );
    // Every family that has a sample on the 6 mm phantom is in the report.
    let oracle_families = summary["families"].as_object().unwrap();
    assert!(oracle_families.len() >= 20, "{summary}");
    let per_family: u64 = oracle_families
        .values()
        .map(|f| f["samples"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["samples"].as_u64(), Some(per_family));
    // `eval --family`: only those families, each with the samples of the whole evaluation; the
    // presence answers are counted; a family that does not exist is refused by name.
    let family_ev = root.join("eval-family");
    let o = oracle_eval(&family_ev, &["--family", "volume,lesion_presence"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = stdout_json(&o);
    let families: Vec<&String> = summary["families"].as_object().unwrap().keys().collect();
    assert_eq!(families, ["lesion_presence", "volume"], "{summary}");
    let presence = &summary["presence"];
    assert_eq!(
        presence["present"].as_u64().unwrap() + presence["absent"].as_u64().unwrap(),
        summary["families"]["lesion_presence"]["samples"]
            .as_u64()
            .unwrap(),
        "{summary}"
    );
    let prompts = |dir: &std::path::Path| -> Vec<String> {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        r["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["family"] == "lesion_presence" || s["family"] == "volume")
            .map(|s| s["prompt"].as_str().unwrap().to_string())
            .collect()
    };
    let mut whole = prompts(&oracle_ev);
    let mut alone = prompts(&family_ev);
    whole.sort();
    alone.sort();
    assert_eq!(alone, whole);
    let o = oracle_eval(&root.join("eval-unknown"), &["--family", "presence"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("\"presence\"") && text(&o).contains("lesion_presence"),
        "{}",
        text(&o)
    );
    // Experiment 2: `baseline classify` trains a classifier for one question and
    // `eval --characterisation` compares it with the model on the same samples.
    let classifiers = root.join("classifiers");
    let o = voxelprompt(&[
        "baseline",
        "classify",
        "--family",
        "enhancement",
        "--steps",
        "2",
        "--config",
        "tiny",
        "--model-config",
        "tiny",
        "--anatomy",
        "phantom",
        "--out",
        p(&classifiers.join("enhancement")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("trained 2 steps"), "{}", text(&o));
    let char_ev = root.join("eval-characterisation");
    let o = voxelprompt(&[
        "eval",
        "--model",
        p(&model),
        "--out",
        p(&char_ev),
        "--per-family",
        "0",
        "--anatomy",
        "phantom",
        "--spacing",
        "6",
        "--max-steps",
        "2",
        "--max-new-tokens",
        "16",
        "--characterisation",
        "1",
        "--classifiers",
        p(&classifiers),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = stdout_json(&o);
    let rows = summary["characterisation"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{summary}");
    for r in rows {
        let has = r["family"] == "enhancement";
        assert_eq!(r["classifier_accuracy"].is_number(), has, "{r}");
    }
    let md = std::fs::read_to_string(char_ev.join("report.md")).unwrap();
    assert!(md.contains("Characterisation against single-task classifiers"));

    // An evaluation of other weights than those shipped is refused.
    let other_ev = root.join("eval-other");
    std::fs::create_dir_all(&other_ev).unwrap();
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("report.json")).unwrap()).unwrap();
    other["model"] = serde_json::json!("tiny 000000000000");
    std::fs::write(other_ev.join("report.json"), other.to_string()).unwrap();
    let o = voxelprompt(&[
        "ship",
        "--run",
        p(&run_dir),
        "--eval",
        p(&other_ev),
        "--out",
        p(&root.join("models/other")),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("evaluate the model that is shipped"),
        "{}",
        text(&o)
    );

    // Such a report measures the agent alone: `ship` refuses it.
    let o = voxelprompt(&[
        "ship",
        "--run",
        p(&run_dir),
        "--eval",
        p(&oracle_ev),
        "--out",
        p(&root.join("models/oracle")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("oracle vision"), "{}", text(&o));

    // `ship`: the checkpoint in f16 with its training log and evaluation; a worse model does
    // not replace a better one. A run snapshot without its chart gets one drawn from the log.
    let _ = std::fs::remove_file(run_dir.join("loss.png"));
    let shipped = root.join("models/voxelprompt-small");
    let ship = |extra: &[&str]| {
        let mut args = vec![
            "ship",
            "--run",
            p(&run_dir),
            "--eval",
            p(&ev),
            "--out",
            p(&shipped),
        ];
        args.extend_from_slice(extra);
        voxelprompt(&args)
    };
    let o = ship(&[]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "weights.safetensors",
        "manifest.json",
        "train.csv",
        "loss.png",
        // The per-target learning curves (scripts/mask_curves.py reads them).
        "masks.csv",
        "eval/report.md",
        "eval/report.json",
        // The charts report.md shows travel with it.
        "eval/charts/success_by_family.png",
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
    let original: serde_json::Value = serde_json::from_str(&old_report).unwrap();
    // A shipped evaluation of other samples (another seed): the rates are not comparable.
    let mut elsewhere = original.clone();
    for sample in elsewhere["samples"].as_array_mut().unwrap() {
        sample["seed"] = serde_json::json!(sample["seed"].as_u64().unwrap() ^ 1);
    }
    std::fs::write(shipped.join("eval/report.json"), elsewhere.to_string()).unwrap();
    let o = ship(&[]);
    assert!(
        !o.status.success() && text(&o).contains("evaluate the shipped model"),
        "{}",
        text(&o)
    );
    // The shipped model passed a sample this one fails: not replaced.
    let mut better = original.clone();
    let first = &mut better["samples"][0];
    assert_eq!(first["passed"], false, "the tiny model passed a sample");
    first["passed"] = serde_json::json!(true);
    std::fs::write(shipped.join("eval/report.json"), better.to_string()).unwrap();
    let o = ship(&[]);
    assert!(
        !o.status.success() && text(&o).contains("not replacing"),
        "{}",
        text(&o)
    );
    // The same samples in both evaluations: the comparison pairs every one of them.
    let samples = better["samples"].as_array().unwrap().len();
    let o = ship(&["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{samples} samples in both evaluations")),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("would refuse: on the") && text(&o).contains("not replacing"),
        "--dry-run names the rule's verdict: {}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(shipped.join("eval/report.json")).unwrap(),
        better.to_string(),
        "--dry-run changed the shipped model"
    );
    let o = ship(&["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(shipped.join("eval/comparison.md").is_file());
    assert_eq!(
        std::fs::read_to_string(shipped.join("MODEL.md")).unwrap(),
        "card"
    );

    // `chat` with scripted stdin: the shipped model answers, hand-written code reaches the
    // variables of earlier turns as NAME_TURN, :save writes each answer.
    let saved = root.join("chat");
    let chat = [
        "chat",
        "--model",
        p(&shipped),
        "--max-steps",
        "1",
        &format!("t1={}", p(&scan)),
    ];
    let o = voxelprompt_with_stdin(
        &chat,
        &format!(
            "Segment the brain.\n:code let v = 2 + 3; read(v);\n:code read(v_2 * 2);\n:vars\n\
             :steps\n:save {}\n:nonsense\n:quit\n",
            p(&saved)
        ),
    );
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

    // `chat --json`: one JSON object per line read (JSON Lines), so a script can drive it.
    let chat_out = root.join("chat-json");
    let mut chat_json = chat.to_vec();
    chat_json.extend(["--out", p(&chat_out), "--json"]);
    let o = voxelprompt_with_stdin(
        &chat_json,
        "Segment the brain.\n:code let v = 2 + 3; respond(\"v is \" + v);\n:vars\n:nonsense\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), 4, "{}", text(&o));
    let (asked, code, vars, bad) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    // The question's line says what the report written for it says.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(chat_out.join("01/report.json")).unwrap())
            .unwrap();
    assert_eq!(asked["kind"], "answer");
    assert_eq!(asked["turn"], 1);
    assert_eq!(asked["prompt"], "Segment the brain.");
    for key in ["answer", "ending", "measurements"] {
        assert_eq!(asked[key], report[key], "{key}");
    }
    let files = asked["files"].as_array().unwrap();
    assert_eq!(
        files.last().unwrap(),
        &serde_json::json!(p(&chat_out.join("01/report.json")))
    );
    for f in files {
        assert!(Path::new(f.as_str().unwrap()).is_file(), "{f}");
    }
    // Hand-written code is turn 2, its answer known exactly.
    assert_eq!(code["kind"], "code");
    assert_eq!(code["turn"], 2);
    assert_eq!(code["answer"], "v is 5");
    assert_eq!(code["error"], serde_json::Value::Null);
    assert_eq!(code["shown"], serde_json::json!([]));
    // …and saved under --out like a question, with its code as the prompt.
    let code_report = chat_out.join("02/report.json");
    assert_eq!(
        code["files"],
        serde_json::json!([p(&chat_out.join("02/trace.json")), p(&code_report)])
    );
    let saved_code: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&code_report).unwrap()).unwrap();
    assert_eq!(saved_code["answer"], "v is 5");
    assert!(
        saved_code.to_string().contains(":code let v = 2 + 3;"),
        "{saved_code}"
    );
    assert_eq!(vars["kind"], "variables");
    assert_eq!(vars["variables"]["v_2"], "integer");
    assert_eq!(vars["variables"]["t1"], "volume");
    assert_eq!(bad["kind"], "error");
    assert!(
        bad["error"].as_str().unwrap().contains(":nonsense"),
        "{bad}"
    );

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
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = std::fs::read_to_string(demo.join("summary.md")).unwrap();
    for case in ["1-segment-and-measure", "4-longitudinal"] {
        assert!(summary.contains(case), "{summary}");
        assert!(demo.join(case).join("report.json").is_file(), "{case}");
    }
    // The cases as people read them go to stderr under --json.
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("truth:"),
        "{}",
        text(&o)
    );
    // `--json`: each case as its report.json has it, with the truth and the verdict.
    let json = stdout_json(&o);
    assert_eq!(json["summary"], p(&demo.join("summary.md")));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shipped.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["model"]["weights_sha256"],
        manifest["files"]["weights.safetensors"]["sha256"]
    );
    let cases = json["cases"].as_array().unwrap();
    assert!(cases.len() >= 4, "{json}");
    for (k, case) in cases.iter().enumerate() {
        let dir = demo.join(case["case"].as_str().unwrap());
        assert_eq!(case["dir"], p(&dir));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(case["prompt"], report["prompt"]);
        assert_eq!(case["answer"], report["answer"]);
        assert_eq!(case["outputs"], report["outputs"]);
        assert!(case["seconds"].as_f64().unwrap() > 0.0);
        let synthetic = k < 4;
        assert_eq!(case["truth"].is_string(), synthetic, "{case}");
        assert_eq!(case["reference"].is_string(), !synthetic, "{case}");
        match case["verdict"].as_str() {
            Some(v) => assert_eq!(case["passed"], v.starts_with("passed"), "{case}"),
            None => assert!(!synthetic && case["passed"].is_null(), "{case}"),
        }
    }
    assert_eq!(cases[0]["case"], "1-segment-and-measure");
    assert_eq!(cases[3]["case"], "4-longitudinal");
}

/// `batch --json`'s table counts and paths agree with the tables.
fn check_batch_tables(summary: &serde_json::Value, out: &Path) {
    for (count, path, file) in [
        ("measurements", "measurements_csv", "measurements.csv"),
        ("failures", "failures_csv", "failures.csv"),
        ("answers", "answers_csv", "answers.csv"),
    ] {
        let table = out.join(file);
        assert_eq!(summary[path], p(&table));
        let rows = csv::Reader::from_path(&table).unwrap().records().count();
        assert_eq!(summary[count], rows, "{file}: {summary}");
    }
}
