//! The sandbox as a security boundary: hostile or broken programs are refused with a clear,
//! typed error (by the limit the program hits, not by the wall-clock deadline) and with bounded
//! memory, and the same session then runs a normal step correctly. Each refusal's wall time is
//! printed for reading; the only timed assertion is a hang detector. One test function, so that the process's peak memory reflects this
//! suite alone.

mod common;
use common::*;
use runtime::{Limits, StepErrorKind as K};
use std::time::{Duration, Instant};

/// `(name, program, expected kind, a word the message must contain)`.
fn programs() -> Vec<(&'static str, String, K, &'static str)> {
    let nested_parens = format!("let x = {}1{};", "(".repeat(5000), ")".repeat(5000));
    let nested_arrays = format!("let x = {}1{};", "[".repeat(5000), "]".repeat(5000));
    let many_vars: String = (0..1200).map(|i| format!("let v{i} = {i};\n")).collect();
    let many_fns: String = (0..100).map(|i| format!("fn f{i}() {{ {i} }}\n")).collect();
    let huge_code = format!("let s = 0; {}", "s += 1; ".repeat(10_000));
    let p = |s: &str| s.to_string();
    vec![
        // Endless and long-running loops.
        ("endless loop", p("loop {}"), K::Limit, "operations"),
        (
            "endless while",
            p("while true { let x = 1; }"),
            K::Limit,
            "operations",
        ),
        (
            "huge range",
            p("let n = 0; for i in 0..9223372036854775807 { n += 1; }"),
            K::Limit,
            "operations",
        ),
        (
            "exponential recursion",
            p("fn f(n) { if n == 0 { 0 } else { f(n - 1) + f(n - 1) } } f(22)"),
            K::Limit,
            "operations",
        ),
        (
            "busy loop of library calls",
            p("for i in 0..1000000 { let k = largest_component(union(left, right)); }"),
            K::Limit,
            "voxels",
        ),
        (
            "busy loop of measurements",
            p("let x = 0.0; loop { x += volume(left); }"),
            K::Limit,
            "voxels",
        ),
        (
            "busy loop of encodes",
            p("loop { encode(scan_1); }"),
            K::Limit,
            "vision calls",
        ),
        // Deep recursion and nesting.
        (
            "deep recursion",
            p("fn f(x) { f(x + 1) } f(0)"),
            K::Limit,
            "nested deeper",
        ),
        (
            "mutual recursion",
            p("fn a(x) { b(x) } fn b(x) { a(x) } a(1)"),
            K::Limit,
            "nested deeper",
        ),
        (
            "closure recursion",
            p("fn g(f, n) { call(f, f, n + 1) } let f = |h, n| g(h, n); g(f, 0)"),
            K::Limit,
            "",
        ),
        (
            "deeply nested parentheses",
            nested_parens,
            K::Limit,
            "nested too deeply",
        ),
        (
            "deeply nested arrays",
            nested_arrays,
            K::Limit,
            "nested too deeply",
        ),
        // Memory: strings, arrays, maps, volumes.
        (
            "string doubling",
            p("let s = \"ab\"; loop { s += s; }"),
            K::Limit,
            "string",
        ),
        (
            "string appending",
            p("let s = \"\"; for i in 0..1000000 { s += \"abcdefghij\"; }"),
            K::Limit,
            "string",
        ),
        (
            "array doubling",
            p("let a = [1]; loop { a += a; }"),
            K::Limit,
            "array",
        ),
        (
            "nested array doubling",
            p("let a = [0]; loop { a = [a, a]; }"),
            K::Limit,
            "array",
        ),
        (
            "array pad",
            p("let a = []; a.pad(1000000000, 0);"),
            K::Limit,
            "array",
        ),
        // Rhai checks a map's size when the map is assigned as a whole, not when a new key is
        // assigned by index; the operation limit bounds that growth (to about 100k entries).
        (
            "huge map by index",
            p("let m = #{}; let i = 0; loop { m[\"k\" + i] = i; i += 1; }"),
            K::Limit,
            "",
        ),
        (
            "huge map by merging",
            p("let m = #{}; let i = 0; loop { let n = #{}; n[\"k\" + i] = i; m += n; i += 1; }"),
            K::Limit,
            "",
        ),
        (
            "nested map doubling",
            p("let m = #{a: 1}; loop { m = #{a: m, b: m}; }"),
            K::Limit,
            "map",
        ),
        (
            "closures in a growing array",
            p("let x = 1; let f = |y| x + y; let a = []; loop { a.push(f); }"),
            K::Limit,
            "array",
        ),
        // Stopped by the voxel-work budget here; the live-memory budget is tested in session.rs.
        (
            "hoarding volumes",
            p("let a = []; loop { a.push(mask_image(scan_1, left)); }"),
            K::Limit,
            "",
        ),
        ("too many variables", many_vars, K::Limit, "variables"),
        ("too many functions", many_fns, K::Limit, "functions"),
        ("oversized code", huge_code, K::Limit, "bytes"),
        // Flooding the outputs.
        ("read flood", p("loop { read(1); }"), K::Limit, "reads"),
        (
            "feedback flood",
            p("let s = \"x\"; for i in 0..13 { s += s; } read(s); read(s); read(s);"),
            K::Limit,
            "feedback",
        ),
        (
            "response flood",
            p("loop { respond(\"spam spam spam\"); }"),
            K::Limit,
            "response",
        ),
        (
            "output flood",
            p("for i in 0..100 { show(left, \"m\" + i); }"),
            K::Limit,
            "outputs",
        ),
        // Escaping the sandbox.
        ("eval", p("eval(\"loop {}\")"), K::Syntax, "eval"),
        (
            "eval through a function pointer",
            p("call(Fn(\"eval\"), \"1\")"),
            K::Syntax,
            "eval",
        ),
        ("import", p("import \"std\" as s;"), K::Syntax, "import"),
        (
            "module path",
            p("let t = std::fs::read(\"/etc/passwd\");"),
            K::Syntax,
            "",
        ),
        (
            "open a file",
            p("open(\"/etc/passwd\")"),
            K::Call,
            "no function",
        ),
        (
            "read a file",
            p("read_file(\"/etc/passwd\")"),
            K::Call,
            "no function",
        ),
        (
            "network",
            p("http_get(\"http://example.com/\")"),
            K::Call,
            "no function",
        ),
        ("shell", p("system(\"rm -rf /\")"), K::Call, "no function"),
        ("sleep", p("sleep(1000)"), K::Call, "no function"),
        ("exit", p("exit()"), K::Call, "no function"),
        ("clock", p("timestamp()"), K::Call, "no function"),
        (
            "string pad",
            p("let s = \"x\"; s.pad(100000000, \"y\")"),
            K::Call,
            "no function",
        ),
        (
            "path traversal in an output name",
            p("show(left, \"../../etc/passwd\")"),
            K::Library,
            "not allowed",
        ),
        (
            "NUL in an output name",
            p("show(left, \"a\\x00b\")"),
            K::Library,
            "not allowed",
        ),
        (
            "redefining a library function",
            p("fn volume(m) { 0.0 }"),
            K::Call,
            "library function",
        ),
        // Absurd sizes.
        (
            "absurd crop margin",
            p("crop_to(scan_1, left, 1e12)"),
            K::Limit,
            "margin",
        ),
        (
            "negative crop margin",
            p("crop_to(scan_1, left, -5)"),
            K::Library,
            "margin",
        ),
        (
            "resample",
            p("resample(scan_1, 0.001)"),
            K::Call,
            "no function",
        ),
        (
            "too many streams",
            p("encode(scan_1, scan_1, scan_1, scan_1, scan_1, scan_1, scan_1, scan_1, scan_1)"),
            K::Limit,
            "streams",
        ),
        // NaN and overflow arithmetic.
        (
            "NaN margin",
            p("crop_to(scan_1, left, 0.0 / 0.0)"),
            K::Library,
            "nan",
        ),
        (
            "NaN percent change",
            p("percent_change(0.0 / 0.0, 1.0)"),
            K::Library,
            "nan",
        ),
        (
            "infinite ratio",
            p("ratio(1.0 / 0.0, 2)"),
            K::Library,
            "inf",
        ),
        (
            "NaN component size",
            p("count_components(left, 0.0 / 0.0)"),
            K::Library,
            "nan",
        ),
        (
            "integer overflow",
            p("let a = 9223372036854775807; a + 1"),
            K::Script,
            "",
        ),
        ("division by zero", p("1 / 0"), K::Script, "zero"),
        // Wrong types and arities.
        (
            "volume of an image",
            p("volume(scan_1)"),
            K::Call,
            "volume(Mask)",
        ),
        (
            "union with a number",
            p("union(left, 3)"),
            K::Call,
            "union(Mask, Mask)",
        ),
        (
            "crop a string",
            p("crop_to(\"a\", left)"),
            K::Call,
            "crop_to",
        ),
        ("mean of a mask", p("mean(left)"), K::Call, "mean(Volume)"),
        (
            "generate from an image",
            p("generate(scan_1, \"Box\")"),
            K::Call,
            "Encoding",
        ),
        ("show a number", p("show(42, \"x\")"), K::Call, "show"),
        ("respond to nothing", p("respond()"), K::Call, "respond"),
        ("encode a mask", p("encode(left)"), K::Call, "encode"),
        ("a phi without a marker", p("__phi(0)"), K::Mod, "no ϕ"),
        ("throw", p("throw \"boom\""), K::Script, "boom"),
        (
            "unknown variable",
            p("volume(lesion)"),
            K::Syntax,
            "unknown variable",
        ),
    ]
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn hostile_programs_are_refused_quickly_and_the_session_goes_on() {
    let p = phantom();
    let mut s = session(&p, Limits::default());
    ok(&mut s, SEGMENT);
    let check = "let chk = volume(largest_component(union(left, right))); read(chk);";
    let want = runtime::format_number(voxel::measure::volume_ml(&p.mask(LEFT)));
    let cases = programs();
    assert!(cases.len() >= 30, "the issue asks for at least 30 programs");
    let mut slowest = (Duration::ZERO, "");
    let mut failures = Vec::new();
    for (name, code, kind, word) in &cases {
        let t = Instant::now();
        let out = s
            .step(code, &[])
            .expect("a step is always accepted before stop()");
        let took = t.elapsed();
        eprintln!(
            "{name:40} {took:>12.3?}  {}",
            out.feedback_text().lines().last().unwrap_or("")
        );
        match &out.error {
            None => failures.push(format!(
                "{name}: not refused; feedback {:?}",
                out.feedback_text()
            )),
            Some(e) if e.kind != *kind => failures.push(format!(
                "{name}: kind {:?}, not {kind:?}: {}",
                e.kind, e.message
            )),
            Some(e) if !e.message.to_lowercase().contains(&word.to_lowercase()) => {
                failures.push(format!("{name}: message {:?} lacks {word:?}", e.message))
            }
            Some(_) => {}
        }
        if took > slowest.0 {
            slowest = (took, name);
        }
        // The same session still works, with its earlier variables.
        let ok_out = s.step(check, &[]).expect("step after a refusal");
        if ok_out.error.is_some() || ok_out.feedback_text() != want {
            failures.push(format!("after {name}: {}", ok_out.feedback_text()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} hostile programs refused; slowest: {:?} ({})",
        cases.len(),
        slowest.0,
        slowest.1
    );

    // `stop()` cannot be caught, and ends the program.
    let out = s
        .step("try { stop(); } catch (e) { read(\"caught\"); }", &[])
        .unwrap();
    assert!(out.stopped && out.error.is_none() && out.feedback.is_empty());

    // A fresh program in the same process runs normally.
    let mut s2 = session(&p, Limits::default());
    ok(&mut s2, SEGMENT);
    let out = ok(&mut s2, check);
    assert_eq!(out.feedback_text(), want);

    // Bounded memory: the phantom is 221 KiB; the live-volume budget is 256 MiB. Nothing in the
    // suite may push the process far beyond that.
    if let Some(peak) = peak_rss_bytes() {
        eprintln!("peak resident memory: {} MiB", peak >> 20);
        assert!(peak < 768 << 20, "peak resident memory {} MiB", peak >> 20);
    }
}
