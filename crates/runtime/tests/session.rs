//! The session: persistence across steps, `<mod>` binding, errors as feedback, the trace.

mod common;
use common::*;
use runtime::{
    FeedbackItem, GroundTruthBackend, Limits, Phi, RuntimeError, Session, StepErrorKind, Trace,
    UnavailableBackend, VisionBackend, PHI_DIM,
};
use std::sync::Arc;

fn code(v: f32) -> Phi {
    [v; PHI_DIM]
}

/// A backend steered by ϕ codes, like the trained network but exact: code 1 → left blob,
/// code -1 → right blob.
fn coded(p: &Phantom) -> Arc<dyn VisionBackend> {
    Arc::new(
        backend(p)
            .with_code("Left-Blob", code(1.0))
            .with_code("Right-Blob", code(-1.0)),
    )
}

#[test]
fn variables_and_functions_persist_across_steps() {
    let p = phantom();
    let mut s = session(&p, Limits::default());
    ok(
        &mut s,
        "let e = encode(scan_1); let left = generate(e, \"Left-Blob\"); fn double(x) { 2 * x }",
    );
    ok(&mut s, "let v = volume(left); let vv = double(v);");
    let out = ok(
        &mut s,
        "read(vv / v); read(v > 0); let t = \"v=\"; t += 1.5; t += 2; read(t);",
    );
    assert_eq!(out.feedback_text(), "2.000\ntrue\nv=1.5002");
    // A failed step keeps what it did before the error, and the next step sees it.
    let out = s
        .step(
            "let before = 7; let bad = centroid(subtract(left, left)); let after = 8;",
            &[],
        )
        .unwrap();
    assert!(out.error.is_some());
    assert_eq!(int(&s, "before"), 7);
    assert!(s.variable("after").is_none());
    ok(&mut s, "let again = before + 1;");
    assert_eq!(int(&s, "again"), 8);
}

#[test]
fn inputs_are_constants_with_default_or_given_names() {
    let p = phantom();
    let names = runtime::default_input_names(2);
    assert_eq!(names, vec!["scan_1", "scan_2"]);
    let backend: Arc<dyn VisionBackend> = Arc::new(backend(&p));
    let inputs = vec![
        ("t1".to_string(), p.image.clone()),
        ("flair".to_string(), p.image.clone()),
    ];
    let mut s = Session::new(inputs, backend.clone(), Limits::default()).unwrap();
    assert_eq!(
        s.input_lines()[1],
        "flair: Volume 48x48x24 at 1.000x1.000x2.000 mm"
    );
    ok(&mut s, "let m = mean(t1) - mean(flair);");
    assert!(close(float(&s, "m"), 0.0, 1e-12));
    let out = s.step("t1 = flair;", &[]).unwrap();
    assert!(out.error.is_some(), "inputs cannot be overwritten");
    for bad in ["1scan", "scan-1", "volume", "let", "fn", "", "a b"] {
        let r = Session::new(
            vec![(bad.to_string(), p.image.clone())],
            backend.clone(),
            Limits::default(),
        );
        assert!(
            matches!(r, Err(RuntimeError::InvalidInputName { .. })),
            "{bad:?} accepted"
        );
    }
    let twice = vec![
        ("a".to_string(), p.image.clone()),
        ("a".to_string(), p.image.clone()),
    ];
    assert!(Session::new(twice, backend, Limits::default()).is_err());
}

#[test]
fn mod_markers_bind_phi_in_order() {
    let p = phantom();
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        coded(&p),
        Limits::default(),
    )
    .unwrap();
    // Two generate calls: the second and third ϕ select the structures.
    let out = s
        .step(
            "let e = encode(scan_1 <mod>);\nlet a = generate(e <mod>);\nlet b = generate(e <MOD>);\nread(volume(a) > volume(b));",
            &[code(0.3), code(0.9), code(-0.8)],
        )
        .unwrap();
    assert!(out.error.is_none(), "{}", out.feedback_text());
    assert_eq!(mask(&s, "a").data(), p.mask(LEFT).data());
    assert_eq!(mask(&s, "b").data(), p.mask(RIGHT).data());
    // Markers inside strings and comments are not markers.
    let out = s
        .step(
            "// <mod>\nlet t = \"<mod>\"; let c = generate(e <mod>);",
            &[code(1.0)],
        )
        .unwrap();
    assert!(out.error.is_none(), "{}", out.feedback_text());
    let t = &s.trace().steps[0];
    assert_eq!(t.phi.count, 3);
    assert!((t.phi.mean - (0.3 + 0.9 - 0.8) / 3.0).abs() < 1e-6);
    let norm = ((0.3f64 * 0.3 * 32.0).sqrt()
        + (0.9f64 * 0.9 * 32.0).sqrt()
        + (0.8f64 * 0.8 * 32.0).sqrt())
        / 3.0;
    assert!((t.phi.norm - norm).abs() < 1e-5, "{} vs {norm}", t.phi.norm);
}

#[test]
fn wrong_phi_counts_are_errors_the_agent_sees() {
    let p = phantom();
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        coded(&p),
        Limits::default(),
    )
    .unwrap();
    let cases: [(&str, Vec<Phi>, &str); 6] = [
        (
            "let a = generate(encode(scan_1 <mod>) <mod>);",
            vec![code(1.0)],
            "2 <mod> markers but 1 ϕ",
        ),
        (
            "let a = generate(encode(scan_1 <mod>) <mod>);",
            vec![code(1.0); 3],
            "2 <mod> markers but 3 ϕ",
        ),
        (
            "let a = generate(encode(scan_1 <mod>));",
            vec![code(1.0)],
            "no <mod> after the encoding",
        ),
        (
            "let a = generate(encode(scan_1 <mod>) <mod> <mod>);",
            vec![code(1.0); 3],
            "takes exactly one",
        ),
        (
            "let a = encode(scan_1 <mod>, scan_1);",
            vec![code(1.0)],
            "2 volumes but 1 <mod>",
        ),
        (
            "let a = encode(scan_1 <mod> <mod>);",
            vec![code(1.0); 2],
            "does not follow a volume",
        ),
    ];
    for (code_text, phi, want) in cases {
        let out = s.step(code_text, &phi).unwrap();
        let e = out
            .error
            .clone()
            .unwrap_or_else(|| panic!("{code_text} with {} ϕ accepted", phi.len()));
        assert_eq!(e.kind, StepErrorKind::Mod, "{code_text}: {}", e.message);
        assert!(e.message.contains(want), "{code_text}: {}", e.message);
        assert_eq!(out.feedback_text(), e.feedback_text());
    }
    // A learned backend needs ϕ: encoding without <mod> is refused.
    struct Learned;
    impl VisionBackend for Learned {
        fn name(&self) -> &str {
            "learned"
        }
        fn encode(
            &self,
            v: &[Arc<voxel::Image>],
            phi: &[Phi],
        ) -> runtime::Result<runtime::EncodingHandle> {
            Ok(runtime::EncodingHandle::new(v.to_vec(), phi.to_vec(), None))
        }
        fn generate(
            &self,
            e: &runtime::EncodingHandle,
            _: &Phi,
        ) -> runtime::Result<Vec<voxel::Image>> {
            Ok(e.streams().iter().map(|s| s.map(|v| v)).collect())
        }
        fn embedding(&self, e: &runtime::EncodingHandle) -> runtime::Result<Vec<Vec<f32>>> {
            Ok(e.streams().iter().map(|_| vec![0.5; 4]).collect())
        }
    }
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        Arc::new(Learned),
        Limits::default(),
    )
    .unwrap();
    let out = s.step("let e = encode(scan_1);", &[]).unwrap();
    assert_eq!(out.error.unwrap().kind, StepErrorKind::Mod);
    let out = s
        .step(
            "let e = encode(scan_1 <mod>, scan_1 <mod>); read(e); let g = generate(e, \"Box\");",
            &[code(0.0); 2],
        )
        .unwrap();
    assert_eq!(
        out.feedback[0],
        FeedbackItem::Encoding {
            streams: vec![vec![0.5; 4]; 2]
        }
    );
    let e = out.error.expect("a learned backend takes no names");
    assert_eq!(e.kind, StepErrorKind::Vision);
    // Generate with two streams gives one mask per stream.
    let out = s
        .step("let m = generate(e <mod>); read(m.len());", &[code(0.0)])
        .unwrap();
    assert_eq!(out.feedback_text(), "2");
}

#[test]
fn errors_become_feedback_with_positions_in_the_written_code() {
    let p = phantom();
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        coded(&p),
        Limits::default(),
    )
    .unwrap();
    let out = s
        .step(
            "let e = encode(scan_1 <mod>);\nlet m = generate(e <mod>); read(volume(e));",
            &[code(1.0); 2],
        )
        .unwrap();
    let e = out.error.clone().unwrap();
    assert_eq!(e.kind, StepErrorKind::Call);
    assert_eq!(e.line, Some(2));
    // `volume(e)` starts at column 33 as written (the rewritten line is longer).
    assert_eq!(e.column, Some(33));
    assert!(
        e.message.contains("volume(Mask) -> number (mL)"),
        "{}",
        e.message
    );
    assert_eq!(
        out.feedback_text(),
        format!("error (call) at line 2, column 33: {}", e.message)
    );
}

#[test]
fn trace_records_code_phi_feedback_and_time_and_round_trips_as_json() {
    let p = phantom();
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        coded(&p),
        Limits::default(),
    )
    .unwrap();
    s.step(
        "let e = encode(scan_1 <mod>); read(e); print(\"hello\");",
        &[code(0.5)],
    )
    .unwrap();
    s.step(
        "let m = generate(e <mod>); read(volume(m)); read(nope);",
        &[code(1.0)],
    )
    .unwrap();
    s.step("respond(`done`); stop();", &[]).unwrap();
    let trace = s.trace().clone();
    assert_eq!(trace.steps.len(), 3);
    let t0 = &trace.steps[0];
    assert_eq!(
        (t0.index, t0.code.as_str()),
        (
            1,
            "let e = encode(scan_1 <mod>); read(e); print(\"hello\");"
        )
    );
    assert_eq!((t0.phi.count, t0.phi.mean), (1, 0.5));
    assert_eq!(t0.feedback, "<vol>");
    assert_eq!(t0.log, "hello\n");
    assert!(t0.wall_ms >= 0.0 && t0.wall_ms < 10_000.0);
    let t1 = &trace.steps[1];
    // `nope` is undefined: the step is refused at compile time, before anything runs.
    assert_eq!(
        t1.error.as_ref().map(|e| e.kind),
        Some(StepErrorKind::Syntax)
    );
    assert!(
        t1.feedback.starts_with("error (syntax) at line 1"),
        "{}",
        t1.feedback
    );
    assert!(trace.steps[2].stopped);
    let json = trace.to_json().unwrap();
    assert!(json.contains("\"wall_ms\""));
    // serde_json parses floats to within an ulp, so compare times with a tolerance.
    let mut back = Trace::from_json(&json).unwrap();
    for (b, t) in back.steps.iter_mut().zip(&trace.steps) {
        assert!((b.wall_ms - t.wall_ms).abs() < 1e-9 && (b.phi.norm - t.phi.norm).abs() < 1e-9);
        (b.wall_ms, b.phi.norm) = (t.wall_ms, t.phi.norm);
    }
    assert_eq!(back, trace);
    let run = s.finish();
    let report = serde_json::to_value(run.report()).unwrap();
    assert_eq!(report["response"], "done");
    assert_eq!(report["trace"]["steps"][1]["error"]["kind"], "syntax");
}

#[test]
fn dropped_volumes_free_their_budget_and_shadowed_ones_are_released() {
    let p = phantom();
    // Room for about 20 images of the phantom (221 KiB each) beyond the inputs.
    let limits = Limits {
        max_live_bytes: 20 * 48 * 48 * 24 * 4,
        live_bytes_per_input_byte: 0,
        ..Limits::default()
    };
    let mut s = session(&p, limits);
    ok(&mut s, SEGMENT);
    // 100 images made and dropped in a loop: fine.
    ok(
        &mut s,
        "for i in 0..100 { let k = mask_image(scan_1, left); }",
    );
    // Redefining a variable in later steps releases the old volume.
    for _ in 0..40 {
        ok(&mut s, "let k = mask_image(scan_1, left);");
    }
    // Keeping them all is refused.
    let out = s
        .step(
            "let a = []; for i in 0..100 { a.push(mask_image(scan_1, left)); }",
            &[],
        )
        .unwrap();
    let e = out.error.unwrap();
    assert_eq!(e.kind, StepErrorKind::Limit);
    assert!(e.message.contains("drop volumes"), "{}", e.message);
}

#[test]
fn exec_programs_run_steps_and_stop_at_the_first_error() {
    let p = phantom();
    let gt = runtime::GroundTruth {
        labels: p.labels.clone(),
        structures: p.structures.clone(),
    };
    let program = "<step>let m = generate(encode(scan_1), \"Left-Blob\"); read(volume(m));<endstep>\
                   <step>respond(\"left \" + volume(m) + \" mL\"); show(m, \"left\"); stop();<endstep>";
    let run = runtime::run_program(
        program,
        vec![("scan_1".into(), (*p.image).clone())],
        Some(gt.clone()),
        &Limits::default(),
    )
    .unwrap();
    assert!(run.error.is_none() && run.stopped);
    assert_eq!(run.trace.steps.len(), 2);
    assert_eq!(
        run.response,
        format!(
            "left {} mL",
            runtime::format_number(voxel::measure::volume_ml(&p.mask(LEFT)))
        )
    );
    assert_eq!(run.outputs[0].name, "left");

    let run = runtime::run_program(
        "read(1); let x = nope(); read(2);",
        vec![("scan_1".into(), (*p.image).clone())],
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(run.error.map(|e| e.kind), Some(StepErrorKind::Call));
    // Without labels, vision calls say what to do.
    let run = runtime::run_program(
        "generate(encode(scan_1), \"Box\")",
        vec![("scan_1".into(), (*p.image).clone())],
        None,
        &Limits::default(),
    )
    .unwrap();
    let e = run.error.unwrap();
    assert_eq!(e.kind, StepErrorKind::Vision);
    assert!(e.message.contains("--labels"), "{}", e.message);
}

#[test]
fn ground_truth_labels_follow_crops_and_per_volume_maps() {
    let p = phantom();
    // A second session whose right blob has grown: matched by identity, not by grid.
    let later = Arc::new((*p.image).clone());
    let grown = voxel::phantom::sphere_mask(p.geometry(), [11.0, 2.0, 0.0], 7.0);
    let later_labels = p
        .labels
        .zip_map(&grown, |l, g| {
            if g {
                RIGHT
            } else if l == RIGHT {
                0
            } else {
                l
            }
        })
        .unwrap();
    let backend = GroundTruthBackend::new(p.structures.clone())
        .with_labels(p.labels.clone())
        .with_labels_for(later.clone(), later_labels);
    let inputs = vec![
        ("scan_1".to_string(), p.image.clone()),
        ("scan_2".to_string(), later),
    ];
    let mut s = Session::new(inputs, Arc::new(backend), Limits::default()).unwrap();
    ok(
        &mut s,
        r#"let m = generate(encode(scan_1, scan_2), "Right-Blob");
           let growth = percent_change(volume(m[0]), volume(m[1]));
           let c = crop_to(scan_1, m[0], 3); let mc = generate(encode(c), "Right-Blob");
           let same = volume(mc) == volume(m[0]);"#,
    );
    let before = voxel::measure::volume_ml(&p.mask(RIGHT));
    let after = voxel::measure::volume_ml(&grown);
    assert!((float(&s, "growth") - 100.0 * (after - before) / before).abs() < 1e-9);
    assert_eq!(s.variable("same").unwrap().as_bool(), Ok(true));
}

#[test]
fn unavailable_backend_explains_itself() {
    let p = phantom();
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        Arc::new(UnavailableBackend::new("no network loaded")),
        Limits::default(),
    )
    .unwrap();
    let out = s.step("encode(scan_1)", &[]).unwrap();
    assert!(out.feedback_text().contains("no network loaded"));
}

#[test]
fn invalid_limits_are_refused() {
    let p = phantom();
    for limits in [
        Limits {
            max_operations: 0,
            ..Limits::default()
        },
        Limits {
            max_streams: 9,
            ..Limits::default()
        },
        Limits {
            max_margin_mm: f64::NAN,
            ..Limits::default()
        },
    ] {
        let r = Session::new(
            vec![("scan_1".into(), p.image.clone())],
            Arc::new(backend(&p)),
            limits,
        );
        assert!(matches!(r, Err(RuntimeError::InvalidLimits(_))));
    }
    let parsed = Limits::from_toml("max_operations = 5000").unwrap();
    assert_eq!(
        parsed,
        Limits {
            max_operations: 5000,
            ..Limits::default()
        }
    );
    assert!(
        Limits::from_toml("max_operatons = 5000").is_err(),
        "typos are refused"
    );
    assert!(Limits::from_toml("max_streams = 0").is_err());
}

#[test]
fn the_limits_config_file_is_the_default() {
    let text = include_str!("../../../configs/runtime/limits.toml");
    assert_eq!(Limits::from_toml(text).unwrap(), Limits::default());
}

#[test]
fn sessions_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Session>();
    send::<runtime::RunOutput>();
}

#[test]
fn the_wall_clock_deadline_stops_scripts_but_not_vision_time() {
    let p = phantom();
    let limits = Limits {
        max_operations: u64::MAX / 2,
        max_voxel_work: u64::MAX / 2,
        step_deadline_ms: 100,
        ..Limits::default()
    };
    let mut s = session(&p, limits.clone());
    // The refusal itself proves the deadline fired: without it `loop {}` would run for 2^62
    // operations and the message would name the operation limit instead.
    let out = s.step("loop {}", &[]).unwrap();
    let e = out.error.unwrap();
    assert_eq!(e.kind, StepErrorKind::Limit);
    assert!(e.message.contains("time limit of 100 ms"), "{}", e.message);
    // A loop of library calls is stopped at the next call, too.
    ok(&mut s, SEGMENT);
    let out = s.step("loop { let k = union(left, right); }", &[]).unwrap();
    assert!(out.error.unwrap().message.contains("time limit"));

    // A slow vision backend does not eat the script's time.
    struct Slow(GroundTruthBackend);
    impl VisionBackend for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn requires_phi(&self) -> bool {
            false
        }
        fn encode(
            &self,
            v: &[Arc<voxel::Image>],
            phi: &[Phi],
        ) -> runtime::Result<runtime::EncodingHandle> {
            std::thread::sleep(std::time::Duration::from_millis(150));
            self.0.encode(v, phi)
        }
        fn generate(
            &self,
            e: &runtime::EncodingHandle,
            phi: &Phi,
        ) -> runtime::Result<Vec<voxel::Image>> {
            self.0.generate(e, phi)
        }
        fn generate_named(
            &self,
            e: &runtime::EncodingHandle,
            name: &str,
        ) -> runtime::Result<Vec<voxel::Image>> {
            self.0.generate_named(e, name)
        }
        fn embedding(&self, e: &runtime::EncodingHandle) -> runtime::Result<Vec<Vec<f32>>> {
            self.0.embedding(e)
        }
    }
    let mut s = Session::new(
        vec![("scan_1".into(), p.image.clone())],
        Arc::new(Slow(backend(&p))),
        limits,
    )
    .unwrap();
    let out = s
        .step(
            "let a = encode(scan_1); let b = encode(scan_1); read(volume(generate(b, \"Box\")));",
            &[],
        )
        .unwrap();
    assert!(out.error.is_none(), "{}", out.feedback_text());
    assert!(s.trace().steps[0].wall_ms >= 300.0);
}

#[test]
fn a_conversation_keeps_each_programs_variables_under_its_turn() {
    let p = phantom();
    let mut s = session(&p, Limits::default());
    ok(
        &mut s,
        "let e = encode(scan_1); let m = generate(e, \"Left-Blob\"); respond(\"left \" + volume(m)); show(m, \"left\"); stop();",
    );
    let first = s.end_turn(1);
    assert!(first.stopped && first.error.is_none());
    assert!(first.response.starts_with("left "), "{}", first.response);
    assert_eq!(first.outputs.len(), 1);
    assert_eq!(first.trace.steps.len(), 1);
    // The next program starts clean (no stop, no response, no outputs) but sees turn 1.
    assert!(!s.is_stopped());
    assert_eq!(s.response(), "");
    assert!(s.outputs().is_empty());
    ok(
        &mut s,
        "let m = generate(e, \"Right-Blob\"); read(volume(m) + volume(m_1) > volume(m)); stop();",
    );
    let second = s.end_turn(2);
    assert_eq!(second.trace.steps.len(), 1);
    assert_eq!(second.trace.steps[0].feedback, "true");
    let names: Vec<String> = s.variables().into_iter().map(|(n, _)| n).collect();
    for n in ["scan_1", "e", "m", "e_1", "m_1", "m_2", "e_2"] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    // Aliases are not aliased again, and inputs are never.
    assert!(
        !names.iter().any(|x| x == "m_1_2" || x == "scan_1_1"),
        "{names:?}"
    );
}

#[test]
fn evidence_is_each_turns_unshown_masks_on_the_input_grid() {
    let p = phantom();
    let mut s = session(&p, Limits::default());
    // A crop: the evidence must come back on the scan's own grid, voxel for voxel.
    ok(
        &mut s,
        "let e = encode(scan_1); let m = generate(e, \"Left-Blob\"); let c = crop_to(m, m); \
         let r = generate(e, \"Right-Blob\"); show(r, \"right\"); let v = volume(m); \
         respond(\"yes\"); stop();",
    );
    let first = s.end_turn(1);
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.outputs.len(), 1);
    let names: Vec<&str> = first.evidence.iter().map(|e| e.name.as_str()).collect();
    // `r` was shown, `v` is a number, `e` an encoding; `m` and its crop `c` are evidence.
    assert_eq!(names, ["c", "m"], "{names:?}");
    for e in &first.evidence {
        assert_eq!(e.grid_of, "scan_1");
        let runtime::OutputData::Mask(mask) = &e.data else {
            panic!("{} is not a mask", e.name)
        };
        assert!(mask.geometry().same_grid(p.geometry(), 1e-6), "{}", e.name);
        assert_eq!(mask.data(), p.mask(LEFT).data(), "{}", e.name);
    }
    // The next turn's evidence is its own: turn 1's masks (as `m`, `m_1`, `c_1`) are not in it.
    // A program's own name that looks like an alias (`lesion_2`) is evidence like any other.
    ok(
        &mut s,
        "let b = generate(e, \"Box\"); let lesion_2 = b; read(volume(b)); respond(\"no\"); stop();",
    );
    let second = s.end_turn(2);
    let names: Vec<&str> = second.evidence.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["b", "lesion_2"], "{names:?}");
    let runtime::OutputData::Mask(mask) = &second.evidence[0].data else {
        panic!("b is not a mask")
    };
    assert_eq!(mask.data(), p.mask(BOX).data());
    // A session ended with `finish` (oracles, `exec`) leaves it to the caller.
    ok(&mut s, "let k = generate(e, \"Box\"); stop();");
    assert_eq!(s.evidence().len(), 1);
    assert!(s.finish().evidence.is_empty());
}
