//! `voxelprompt serve` over HTTP: the binary started on a free loopback port with a `tiny`
//! model trained here for 3 steps, every route of docs/api.md and its error cases exercised
//! with a plain HTTP client, concurrent questions, and a bounded load test. Plumbing only: a
//! model this small answers nothing correctly (hand-written code through `/code` gives masks).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{fixture, p, BIN};

/// A running server, killed when dropped.
struct Server {
    child: Child,
    base: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let fx = fixture();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // An empty web cache: the page's viewer falls back to PNGs.
        let web = dir.path().join("web");
        let mut child = Command::new(BIN)
            .args(["serve", "--model", p(&fx.model), "--port", "0"])
            .args(["--data", p(&data), "--max-steps", "2"])
            .args(if extra.contains(&"--web") {
                vec![]
            } else {
                vec!["--web", p(&web)]
            })
            .args(extra)
            .env_remove("VOXELPROMPT_MODEL")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim()
            .replace("0.0.0.0", "127.0.0.1");
        Server {
            child,
            base: url,
            data,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

/// Status and body of a request, whatever the status.
fn send(r: Result<ureq::Response, ureq::Error>) -> (u16, Vec<u8>, Option<String>) {
    let response = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let session = response.header("x-voxelprompt-session").map(str::to_string);
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).unwrap();
    (status, body, session)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn get(url: &str) -> (u16, Value) {
    let (s, b, _) = send(agent().get(url).call());
    (s, json_of(&b))
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (s, b, _) = send(
        agent()
            .post(url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
    );
    (s, json_of(&b))
}

enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

/// A multipart/form-data body and its content type.
fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "----voxelpromptTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    for part in parts {
        write!(body, "--{boundary}\r\n").unwrap();
        match part {
            Part::Text(name, value) => {
                write!(
                    body,
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .unwrap();
            }
            Part::File(name, file, bytes) => {
                write!(
                    body,
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .unwrap();
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post_multipart(url: &str, parts: &[Part]) -> (u16, Value, Option<String>) {
    let (kind, body) = multipart(parts);
    let (s, b, session) = send(
        agent()
            .post(url)
            .set("Content-Type", &kind)
            .send_bytes(&body),
    );
    (s, json_of(&b), session)
}

fn scan_bytes() -> Vec<u8> {
    std::fs::read(&fixture().scan).unwrap()
}

/// A session over the example scan named `t1`; its id.
fn new_session(server: &Server) -> String {
    let scan = scan_bytes();
    let (s, v, _) = post_multipart(
        &server.url("/api/sessions"),
        &[
            Part::File("scan", "t1.nii.gz", &scan),
            Part::Text("name", "t1"),
            Part::Text("date", "2024-03-01"),
        ],
    );
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Status line of a raw request (for headers a client library would not let us set).
fn raw_status(server: &Server, request: &str) -> String {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn every_route_answers() {
    let server = Server::start(&[]);

    let (s, health) = get(&server.url("/api/health"));
    assert_eq!(s, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model"], "tiny");
    assert_eq!(health["viewer"], "png", "the web cache is empty");

    // The page and its assets; the viewer is missing, so the page will fall back to PNGs.
    let (s, page, _) = send(agent().get(&server.url("/")).call());
    assert_eq!(s, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("VoxelPrompt") && page.contains("/app.js"),
        "{page}"
    );
    let (s, script, _) = send(agent().get(&server.url("/app.js")).call());
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&script).contains("EventSource"));
    assert_eq!(send(agent().get(&server.url("/app.css")).call()).0, 200);
    let (s, v) = get(&server.url("/vendor/niivue.js"));
    assert_eq!(s, 404);
    assert!(v["error"].as_str().unwrap().contains("fetch_web.sh"), "{v}");

    // /api/run: the report.json of `voxelprompt run`, its files in the named session.
    let scan = scan_bytes();
    let (s, report, session) = post_multipart(
        &server.url("/api/run"),
        &[
            Part::Text("prompt", "Segment the brain."),
            Part::File("scan", "t1.nii.gz", &scan),
            Part::Text("name", "t1"),
            Part::Text("date", "2024-03-01"),
        ],
    );
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["prompt"], "Segment the brain.");
    assert_eq!(report["inputs"][0]["name"], "t1");
    assert_eq!(report["inputs"][0]["date"], "2024-03-01");
    assert_eq!(report["inputs"][0]["shape"], json!([40, 48, 40]));
    assert!(report["steps"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(report["model"]["name"], "tiny");
    assert!(
        report.get("files").is_none(),
        "the report of run, unchanged"
    );
    let session = session.expect("X-Voxelprompt-Session");
    let (s, written, _) = send(
        agent()
            .get(&server.url(&format!("/api/sessions/{session}/files/1/report.json")))
            .call(),
    );
    assert_eq!(s, 200);
    assert_eq!(json_of(&written)["prompt"], "Segment the brain.");

    // A session: its description, its step stream, questions, code and files.
    let id = new_session(&server);
    assert_eq!(id.len(), 32);
    let (s, info) = get(&server.url(&format!("/api/sessions/{id}")));
    assert_eq!(s, 200);
    assert_eq!(info["inputs"][0]["name"], "t1");
    assert_eq!(info["inputs"][0]["file"], "t1.nii.gz");
    assert_eq!(info["files"], json!(["view/t1.nii.gz"]));
    let (s, view, _) = send(
        agent()
            .get(&server.url(&format!("/api/sessions/{id}/files/view/t1.nii.gz")))
            .call(),
    );
    assert_eq!(s, 200);
    assert_eq!(&view[..2], &[0x1f, 0x8b], "gzip");

    let events = agent()
        .get(&server.url(&format!("/api/sessions/{id}/events")))
        .call()
        .unwrap();
    assert_eq!(events.content_type(), "text/event-stream");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kinds = Vec::new();
        let mut event = String::new();
        for line in BufReader::new(events.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                let data: Value = serde_json::from_str(d).unwrap();
                kinds.push((event.clone(), data));
                if event == "answer" || event == "error" {
                    break;
                }
            }
        }
        tx.send(kinds).unwrap();
    });
    let (s, answer) = post_json(
        &server.url(&format!("/api/sessions/{id}/ask")),
        &json!({"prompt": "Segment the brain."}),
    );
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["turn"], 1);
    assert_eq!(answer["session"], id.as_str());
    let steps = answer["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= 2);
    for step in steps {
        assert!(step["code"].is_string() && step["decode_seconds"].is_number());
    }
    let streamed = rx.recv_timeout(Duration::from_secs(60)).expect("events");
    let names: Vec<&str> = streamed.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = vec!["start"];
    expected.extend(std::iter::repeat_n("step", steps.len()));
    expected.push("answer");
    assert_eq!(names, expected);
    for (k, (_, data)) in streamed.iter().filter(|(e, _)| e == "step").enumerate() {
        assert_eq!(data["index"], k + 1);
        assert_eq!(data["step"]["code"], steps[k]["code"]);
    }
    assert_eq!(streamed.last().unwrap().1["answer"], answer["answer"]);

    // Hand-written code draws a mask (zero instruction vectors for the markers).
    let code = "let m = generate(encode(t1 <mod>) <mod>); let kept = union(m, m); \
                respond(\"region: \" + volume(m) + \" mL\"); show(m, \"region\"); stop();";
    let (s, answer) = post_json(
        &server.url(&format!("/api/sessions/{id}/code")),
        &json!({ "code": code }),
    );
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["turn"], 2);
    assert_eq!(answer["error"], Value::Null, "{answer}");
    assert_eq!(answer["measurements"][0]["unit"], "mL");
    let files = answer["files"].as_array().unwrap();
    let kind_of = |name: &str| {
        files
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(kind_of("2/region.nii.gz").as_deref(), Some("mask"));
    assert_eq!(kind_of("2/region.png").as_deref(), Some("png"));
    assert_eq!(kind_of("2/report.json").as_deref(), Some("report"));
    // A mask kept but not shown is evidence: a viewer layer of its own, with its overlay.
    assert_eq!(kind_of("2/evidence/kept.nii.gz").as_deref(), Some("mask"));
    assert_eq!(kind_of("2/evidence/kept.png").as_deref(), Some("png"));
    let kept = files
        .iter()
        .find(|f| f["name"] == "2/evidence/kept.nii.gz")
        .unwrap();
    assert_eq!(kept["output"], "evidence: kept");
    assert_eq!(kept["evidence"], true, "the page lists it hidden");
    assert_eq!(kept["scan"], "t1");
    assert_eq!(answer["evidence"][0]["variable"], "kept");
    assert!(kind_of("2/evidence/m.nii.gz").is_none(), "{files:?}");
    let mask = files.iter().find(|f| f["kind"] == "mask").unwrap();
    assert_eq!(mask["scan"], "t1");
    assert_eq!(mask["evidence"], false, "a shown mask is drawn");
    let fetch = |name: &str| {
        send(
            agent()
                .get(&server.url(&format!("/api/sessions/{id}/files/{name}")))
                .call(),
        )
    };
    let (s, nifti, _) = fetch("2/region.nii.gz");
    assert_eq!(s, 200);
    assert_eq!(&nifti[..2], &[0x1f, 0x8b]);
    let (s, png, _) = fetch("2/region.png");
    assert_eq!(s, 200);
    assert_eq!(&png[..4], b"\x89PNG");
    let (s, kept_nifti, _) = fetch("2/evidence/kept.nii.gz");
    assert_eq!(s, 200);
    assert_eq!(kept_nifti, nifti, "kept is m, voxel for voxel");
    let (s, report, _) = fetch("2/report.json");
    assert_eq!(s, 200);
    assert_eq!(json_of(&report)["answer"], answer["answer"]);

    // Names are looked up, never joined to a path.
    for name in [
        "2/nothing.nii.gz",
        "../../etc/passwd",
        "inputs/scan_1.nii.gz",
    ] {
        let (s, body, _) = fetch(name);
        assert_eq!(s, 404, "{name}: {}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn bad_requests_get_clear_4xx() {
    let server = Server::start(&[]);
    let scan = scan_bytes();
    let sessions = server.url("/api/sessions");

    // Files that are not scans: the reader's reason, with the client's name, not the path.
    let (s, v, _) = post_multipart(
        &sessions,
        &[Part::File("scan", "notes.txt", b"hello, not a scan")],
    );
    assert_eq!(s, 400, "{v}");
    let why = v["error"].as_str().unwrap();
    assert!(
        why.contains("notes.txt") && why.contains("not a scan"),
        "{why}"
    );
    assert!(!why.contains(p(&server.data)), "{why}");
    let (s, v, _) = post_multipart(
        &server.url("/api/run"),
        &[
            Part::Text("prompt", "Segment the brain."),
            Part::File("scan", "broken.nii.gz", b"\x1f\x8bnot really gzip"),
        ],
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("broken.nii.gz"),
        "{v}"
    );

    // Missing or bad fields.
    let cases: Vec<(&str, Vec<Part>, &str)> = vec![
        ("/api/sessions", vec![], "no scan"),
        (
            "/api/run",
            vec![Part::File("scan", "t1.nii.gz", &scan)],
            "prompt",
        ),
        (
            "/api/sessions",
            vec![
                Part::File("scan", "t1.nii.gz", &scan),
                Part::Text("name", "1 bad name"),
            ],
            "scan name",
        ),
        (
            "/api/sessions",
            vec![
                Part::File("scan", "t1.nii.gz", &scan),
                Part::Text("date", "yesterday"),
            ],
            "YYYY-MM-DD",
        ),
        (
            "/api/sessions",
            vec![
                Part::File("scan", "a.nii.gz", &scan),
                Part::File("scan", "b.nii.gz", &scan),
                Part::Text("name", "t1"),
                Part::Text("name", "t1"),
            ],
            "twice",
        ),
        (
            "/api/sessions",
            vec![Part::Text("payload", "x")],
            "unknown field",
        ),
    ];
    for (route, parts, needle) in cases {
        let (s, v, _) = post_multipart(&server.url(route), &parts);
        assert_eq!(s, 400, "{route} {needle}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }

    // Malformed multipart and JSON.
    let (s, b, _) = send(
        agent()
            .post(&sessions)
            .set("Content-Type", "multipart/form-data; boundary=XX")
            .send_bytes(b"garbage"),
    );
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    let (s, b, _) = send(agent().post(&sessions).send_string("plain text"));
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    let id = new_session(&server);
    let ask = server.url(&format!("/api/sessions/{id}/ask"));
    let (s, b, _) = send(
        agent()
            .post(&ask)
            .set("Content-Type", "application/json")
            .send_string("{\"prompt\": "),
    );
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    assert_eq!(post_json(&ask, &json!({"prompt": "   "})).0, 400);
    assert_eq!(post_json(&ask, &json!({"question": "x"})).0, 400);
    assert_eq!(post_json(&ask, &json!([1, 2])).0, 400);
    let code = server.url(&format!("/api/sessions/{id}/code"));
    assert_eq!(post_json(&code, &json!({"code": ""})).0, 400);

    // Unknown sessions and routes.
    let ghost = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/api/sessions/{ghost}"),
        format!("/api/sessions/{ghost}/events"),
        format!("/api/sessions/{ghost}/files/1/report.json"),
        "/api/nothing".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let (s, v) = get(&server.url(&path));
        assert_eq!(s, 404, "{path}: {v}");
        assert!(v["error"].is_string());
    }
    let (s, v) = post_json(
        &server.url(&format!("/api/sessions/{ghost}/ask")),
        &json!({"prompt": "x"}),
    );
    assert_eq!(s, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no such session"));

    // Without a token, only loopback host names are answered (DNS-rebinding guard).
    let line = raw_status(
        &server,
        "GET /api/health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(line.starts_with("HTTP/1.1 403"), "{line}");
    let line = raw_status(
        &server,
        "GET /api/health HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n",
    );
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");

    // Failed uploads leave nothing behind: only the one session made above.
    let dirs: Vec<_> = std::fs::read_dir(&server.data).unwrap().collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(
        get(&server.url("/api/health")).1["status"],
        "ok",
        "still up"
    );
}

#[test]
fn oversized_uploads_get_413() {
    let server = Server::start(&["--max-upload-mb", "1"]);
    let big = vec![7u8; 3 << 20];
    let (s, v, _) = post_multipart(
        &server.url("/api/sessions"),
        &[Part::File("scan", "big.nii.gz", &big)],
    );
    assert_eq!(s, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("1 MiB"), "{v}");
    let id = new_session(&server);
    let prompt = "x".repeat(2 << 20);
    let (s, v) = post_json(
        &server.url(&format!("/api/sessions/{id}/ask")),
        &json!({ "prompt": prompt }),
    );
    assert_eq!(s, 413, "{v}");
    assert_eq!(get(&server.url("/api/health")).0, 200);
}

#[test]
fn a_public_host_needs_the_token() {
    // Refused outright without a token.
    let o = Command::new(BIN)
        .args(["serve", "--model", p(&fixture().model), "--host", "0.0.0.0"])
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--token"));

    let server = Server::start(&["--host", "0.0.0.0", "--token", "s3cret"]);
    let health = server.url("/api/health");
    let (s, v, _) = send(agent().get(&health).call());
    assert_eq!(s, 401, "{}", String::from_utf8_lossy(&v));
    assert!(json_of(&v)["error"].as_str().unwrap().contains("token"));
    let (s, _, _) = send(
        agent()
            .get(&health)
            .set("Authorization", "Bearer wrong")
            .call(),
    );
    assert_eq!(s, 401);
    let (s, v, _) = send(
        agent()
            .get(&health)
            .set("Authorization", "Bearer s3cret")
            .call(),
    );
    assert_eq!(s, 200);
    assert_eq!(json_of(&v)["status"], "ok");
    // Uploads too; and the page sets a cookie that stands in for the header.
    let (kind, body) = multipart(&[Part::File("scan", "t1.nii.gz", &scan_bytes())]);
    let (s, _, _) = send(
        agent()
            .post(&server.url("/api/sessions"))
            .set("Content-Type", &kind)
            .send_bytes(&body),
    );
    assert_eq!(s, 401);
    assert_eq!(send(agent().get(&server.url("/")).call()).0, 401);
    let page = agent().get(&server.url("/?token=s3cret")).call().unwrap();
    let cookie = page.header("set-cookie").unwrap().to_string();
    assert!(cookie.starts_with("vp_token=s3cret") && cookie.contains("HttpOnly"));
    let (s, _, _) = send(agent().get(&health).set("Cookie", "vp_token=s3cret").call());
    assert_eq!(s, 200);
}

#[test]
fn concurrent_questions_share_the_model() {
    let server = Server::start(&["--queue", "1"]);
    let id = new_session(&server);
    let ask = server.url(&format!("/api/sessions/{id}/ask"));
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let ask = ask.clone();
            std::thread::spawn(move || {
                post_json(
                    &ask,
                    &json!({ "prompt": format!("Segment the brain ({k}).") }),
                )
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let answered = results.iter().filter(|(s, _)| *s == 200).count();
    let busy = results.iter().filter(|(s, _)| *s == 503).count();
    println!(
        "4 concurrent asks with --queue 1: {answered} answered, {busy} busy, {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(answered + busy, 4, "{results:?}");
    assert!(answered >= 1);
    for (s, v) in &results {
        if *s == 503 {
            assert_eq!(v["busy"], true);
            assert!(v["error"].as_str().unwrap().starts_with("busy"));
        }
    }
    // Each answered question is its own turn, numbered in the order they ran.
    let mut turns: Vec<u64> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v["turn"].as_u64().unwrap())
        .collect();
    turns.sort();
    assert_eq!(turns, (1..=answered as u64).collect::<Vec<_>>());
}

#[test]
fn the_least_recently_used_session_makes_room() {
    let server = Server::start(&["--max-sessions", "2"]);
    let first = new_session(&server);
    let second = new_session(&server);
    assert_eq!(get(&server.url(&format!("/api/sessions/{first}"))).0, 200);
    let third = new_session(&server);
    assert_eq!(get(&server.url(&format!("/api/sessions/{second}"))).0, 404);
    assert!(!server.data.join(&second).exists());
    for id in [first, third] {
        assert_eq!(get(&server.url(&format!("/api/sessions/{id}"))).0, 200);
    }
}

#[test]
fn idle_sessions_are_deleted() {
    let server = Server::start(&["--session-idle-minutes", "0.02"]);
    let id = new_session(&server);
    assert!(server.data.join(&id).is_dir());
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(get(&server.url(&format!("/api/sessions/{id}"))).0, 404);
    assert!(!server.data.join(&id).exists());
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// 50 health and 20 run requests from 4 clients at once: none fails or hangs.
#[test]
fn bounded_load() {
    let server = Server::start(&[]);
    let scan = scan_bytes();
    let (kind, body) = multipart(&[
        Part::Text("prompt", "Segment the brain."),
        Part::File("scan", "t1.nii.gz", &scan),
    ]);
    let jobs: Vec<bool> = (0..70).map(|k| k % 7 < 2).collect();
    let jobs = std::sync::Arc::new(std::sync::Mutex::new(jobs.into_iter().enumerate()));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let jobs = jobs.clone();
            let (health, run) = (server.url("/api/health"), server.url("/api/run"));
            let (kind, body) = (kind.clone(), body.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                loop {
                    let Some((_, is_run)) = jobs.lock().unwrap().next() else {
                        break;
                    };
                    let t = Instant::now();
                    let (s, _, _) = if is_run {
                        send(
                            agent()
                                .post(&run)
                                .set("Content-Type", &kind)
                                .send_bytes(&body),
                        )
                    } else {
                        send(agent().get(&health).call())
                    };
                    out.push((is_run, s, t.elapsed().as_secs_f64() * 1000.0));
                }
                out
            })
        })
        .collect();
    let results: Vec<(bool, u16, f64)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let wall = started.elapsed().as_secs_f64();
    for (label, is_run) in [("health", false), ("run", true)] {
        let mut ms: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == is_run)
            .map(|r| r.2)
            .collect();
        ms.sort_by(f64::total_cmp);
        let ok = results
            .iter()
            .filter(|r| r.0 == is_run && r.1 == 200)
            .count();
        println!(
            "{label}: {} requests, {ok} ok, latency ms p50 {:.1} p95 {:.1} max {:.1}",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms.last().unwrap()
        );
    }
    println!("70 requests, 4 clients: {wall:.2} s");
    assert_eq!(results.iter().filter(|r| !r.0).count(), 50);
    assert_eq!(results.iter().filter(|r| r.0).count(), 20);
    // The default queue (4) holds every waiting client: nothing is busy, nothing fails.
    assert!(results.iter().all(|r| r.1 == 200), "{results:?}");
}

/// The page in headless Chromium (scripts/serve_browser_check.py over the DevTools protocol):
/// upload, a question, `:code` showing a mask, the overlay, the answer, the measurement and the
/// download links found in the page; screenshots under the target's tmp dir. With the PNG
/// fallback always, with niivue too when scripts/fetch_web.sh has filled the web cache.
/// Where `chromium` or `python3` is missing it prints a skip line locally and fails in CI.
#[test]
fn the_page_in_headless_chromium() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("chromium") || !have("python3") {
        // Fails under CI / VOXELPROMPT_REQUIRE_DATA=1 (.ci/run installs chromium).
        voxel::test_support::skip_missing("chromium (or python3)", "apt-get install chromium");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/serve_browser_check.py");
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cache = home.join(".cache/voxelprompt/web");
    let mut modes = vec![("png", None)];
    if cache.join("niivue.umd.js").is_file() {
        modes.push(("niivue", Some(cache)));
    }
    for (mode, web) in modes {
        let mut extra = Vec::new();
        if let Some(w) = &web {
            extra = vec!["--web".to_string(), w.display().to_string()];
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let server = Server::start(&extra);
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve_page_{mode}.png"));
        let o = Command::new("python3")
            .arg(&script)
            .args([&server.url("/"), p(&fixture().scan), p(&shot)])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        println!("{mode}: {out}");
        assert!(
            o.status.success(),
            "{mode}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains(&format!("\"viewer\": \"{mode}\"")), "{out}");
        assert!(shot.is_file());
    }
}
