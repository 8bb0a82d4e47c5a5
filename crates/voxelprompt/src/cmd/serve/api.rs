//! The HTTP API of docs/api.md: handlers, the access guard and JSON errors.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use train::inference::Scan;

use super::gate::GateError;
use super::sessions::{Session, StreamEvent};
use super::upload::{self, valid_date, valid_name};
use super::Shared;
use crate::cmd::run::ScanArg;

/// Longest prompt, characters.
const MAX_PROMPT: usize = 2000;

/// Largest refused body still read before the 413 is sent.
const DRAIN_BYTES: usize = 64 << 20;

/// Longest hand-written program, bytes.
const MAX_CODE: usize = 16 * 1024;

/// An error answer: a status and `{"error": message}` (plus `"busy": true` for 503).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500, for failures of the server itself.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    fn unknown_session() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no such session (it may have expired after the idle timeout): POST /api/sessions \
             starts one",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let busy = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut body = json!({ "error": self.message });
        if busy {
            body["busy"] = json!(true);
        }
        let mut response = (self.status, Json(body)).into_response();
        if busy {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn json_error(r: JsonRejection, limit_bytes: usize) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        upload::too_large(limit_bytes)
    } else {
        ApiError::bad_request(format!(
            "expected a JSON body such as {{\"prompt\": \"…\"}}: {}",
            r.body_text()
        ))
    }
}

fn check_prompt(prompt: Option<String>) -> Result<String, ApiError> {
    let prompt = prompt.map(|p| p.trim().to_string()).unwrap_or_default();
    if prompt.is_empty() {
        return Err(ApiError::bad_request("the prompt is missing or empty"));
    }
    if prompt.chars().count() > MAX_PROMPT {
        return Err(ApiError::bad_request(format!(
            "the prompt is longer than {MAX_PROMPT} characters"
        )));
    }
    Ok(prompt)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Access control in front of every route. With `--token`: the bearer header, the cookie set
/// by `/?token=TOKEN`, or that query on `/` itself. Without: only loopback `Host` names, so a
/// web page elsewhere cannot reach the server through DNS rebinding.
pub async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let mut set_cookie = None;
    match &st.token {
        Some(token) => {
            let headers = req.headers();
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| same(t.trim(), token));
            let cookie = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().strip_prefix("vp_token="))
                .any(|t| same(t, token));
            let query = req.uri().path() == "/"
                && req
                    .uri()
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("token="))
                    .any(|t| same(t, token));
            if query {
                set_cookie = HeaderValue::from_str(&format!(
                    "vp_token={token}; HttpOnly; SameSite=Strict; Path=/"
                ))
                .ok();
            }
            if !(bearer || cookie || query) {
                // Read (and drop) a body within the limit first: a client still sending an
                // upload then gets this answer instead of a broken pipe.
                let _ = axum::body::to_bytes(req.into_body(), st.max_upload_bytes).await;
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong token: send Authorization: Bearer TOKEN (in a browser, \
                     open /?token=TOKEN once)",
                )
                .into_response();
            }
        }
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            if let Some(host) = host.filter(|h| !is_loopback_host(h)) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Host {host:?} is not loopback; this server has no --token, so it \
                         answers only requests to localhost"
                    ),
                )
                .into_response();
            }
        }
    }
    // A body declared too large is refused before any handler reads it; one of up to
    // DRAIN_BYTES is read and dropped first, so a client that sends its whole body before
    // reading the answer gets the 413 instead of a broken pipe.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|&n| n > st.max_upload_bytes) {
        if n <= DRAIN_BYTES {
            let _ = axum::body::to_bytes(req.into_body(), n).await;
        }
        return upload::too_large(st.max_upload_bytes).into_response();
    }
    let mut response = next.run(req).await;
    if let Some(c) = set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

/// `GET /api/health`.
pub async fn health(State(st): State<Shared>) -> Json<Value> {
    let m = st.loaded;
    Json(json!({
        "status": "ok",
        "model": m.manifest.model,
        "model_path": m.path.display().to_string(),
        "weights_sha256": m.manifest.files.get(train::model::WEIGHTS_FILE).map(|e| e.sha256.clone()),
        "version": env!("CARGO_PKG_VERSION"),
        "viewer": if st.web_dir.join(super::page::NIIVUE_FILE).is_file() { "niivue" } else { "png" },
        "sessions": st.sessions.len(),
        "model_calls": st.gate.load(),
    }))
}

/// Reads a multipart upload into a new session; the session is deleted again on any error.
async fn new_session(
    st: &Shared,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(Arc<Session>, Option<String>), ApiError> {
    let multipart = multipart.map_err(|r| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data upload: {}",
            r.body_text()
        ))
    })?;
    let (id, dir) = st.sessions.allocate().map_err(ApiError::internal)?;
    let made = async {
        let upload = upload::receive(multipart, &dir.join("inputs"), st.max_upload_bytes).await?;
        if upload.scans.is_empty() {
            return Err(ApiError::bad_request(
                "no scan: add one or more file fields named \"scan\"",
            ));
        }
        if upload.names.len() > upload.scans.len() || upload.dates.len() > upload.scans.len() {
            return Err(ApiError::bad_request(
                "more name or date fields than scans (the i-th name and date describe the i-th scan)",
            ));
        }
        let mut parsed: Vec<ScanArg> = Vec::new();
        for (i, file) in upload.scans.iter().enumerate() {
            let name = match upload.names.get(i).filter(|n| !n.is_empty()) {
                Some(n) if valid_name(n) => n.clone(),
                Some(n) => {
                    return Err(ApiError::bad_request(format!(
                        "scan name {:?}: use letters, digits and _, starting with a letter (at most 64)",
                        upload::display_name(n)
                    )))
                }
                None => format!("scan_{}", i + 1),
            };
            if parsed.iter().any(|p| p.name == name) {
                return Err(ApiError::bad_request(format!(
                    "the name {name} is given twice"
                )));
            }
            let date = match upload.dates.get(i).filter(|d| !d.is_empty()) {
                Some(d) if valid_date(d) => Some(d.clone()),
                Some(d) => {
                    return Err(ApiError::bad_request(format!(
                        "date {:?} of scan {name}: use YYYY-MM-DD",
                        upload::display_name(d)
                    )))
                }
                None => None,
            };
            parsed.push(ScanArg {
                name,
                date,
                path: file.path.clone(),
            });
        }
        let loaded = st.loaded;
        let options = st.options.clone();
        let client_names: Vec<String> =
            upload.scans.iter().map(|u| u.client_name.clone()).collect();
        let session_id = id.clone();
        let session_dir = dir.clone();
        let session = tokio::task::spawn_blocking(move || -> Result<Session, ApiError> {
            let mut scans = Vec::new();
            for (p, client) in parsed.iter().zip(&client_names) {
                let image = super::super::scan_input::read_scan(&p.path).map_err(|e| {
                    // The reason without the server's path.
                    let why = format!("{e:#}").replace(&p.path.display().to_string(), client);
                    ApiError::bad_request(format!("cannot read scan {} ({client}): {why}", p.name))
                })?;
                scans.push(Scan {
                    name: p.name.clone(),
                    image: Arc::new(image),
                    modality: None,
                    date: p.date.clone(),
                });
            }
            Session::new(
                session_id,
                session_dir,
                loaded,
                scans,
                parsed,
                client_names,
                options,
            )
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))
        })
        .await
        .map_err(|e| ApiError::internal(format!("reading the scans failed: {e}")))??;
        Ok((Arc::new(session), upload.prompt))
    }
    .await;
    match made {
        Ok((session, prompt)) => {
            st.sessions.insert(session.clone(), st.max_sessions);
            Ok((session, prompt))
        }
        Err(e) => {
            st.sessions.remove(&id);
            Err(e)
        }
    }
}

/// A model call answering `prompt` in `session`, through the gate.
async fn ask_in(st: &Shared, session: &Arc<Session>, prompt: String) -> Result<Value, ApiError> {
    model_call(st, session, move |s, loaded| s.ask(loaded, &prompt)).await
}

/// `f` on the session, through the gate.
async fn model_call(
    st: &Shared,
    session: &Arc<Session>,
    f: impl FnOnce(&Session, &'static crate::cmd::run::LoadedModel) -> anyhow::Result<Value>
        + Send
        + 'static,
) -> Result<Value, ApiError> {
    let in_use = session.in_use();
    let loaded = st.loaded;
    let s = session.clone();
    let result = st
        .gate
        .run(move || {
            let _in_use = in_use;
            f(&s, loaded)
        })
        .await;
    match result {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(ApiError::internal(format!("{e:#}"))),
        Err(GateError::Busy { admitted }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "busy: the model is answering and {} more questions are waiting; try again shortly",
                admitted.saturating_sub(1)
            ),
        )),
        Err(GateError::Failed(why)) => Err(ApiError::internal(why)),
    }
}

/// `POST /api/run`: a multipart upload with a prompt, answered at once; the `report.json` of
/// `voxelprompt run`, with the session holding its files in `X-Voxelprompt-Session`.
pub async fn run(
    State(st): State<Shared>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let (session, prompt) = new_session(&st, multipart).await?;
    let answered = match check_prompt(prompt) {
        Ok(p) => ask_in(&st, &session, p).await,
        Err(e) => Err(e),
    };
    let mut report = match answered {
        Ok(r) => r,
        Err(e) => {
            st.sessions.remove(&session.id);
            return Err(e);
        }
    };
    if let Value::Object(map) = &mut report {
        for key in ["session", "turn", "files", "error"] {
            map.remove(key);
        }
    }
    let mut response = Json(report).into_response();
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        response.headers_mut().insert("x-voxelprompt-session", v);
    }
    Ok(response)
}

/// `POST /api/sessions`: a multipart upload of scans → `{"id", "inputs", "files"}`.
pub async fn create_session(
    State(st): State<Shared>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let (session, _) = new_session(&st, multipart).await?;
    Ok((StatusCode::CREATED, Json(describe(&session))).into_response())
}

fn describe(session: &Session) -> Value {
    json!({
        "id": session.id,
        "inputs": session.inputs,
        "files": session.file_names(),
    })
}

/// `GET /api/sessions/{id}`: its scans and files.
pub async fn session_info(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = st.sessions.get(&id).ok_or_else(ApiError::unknown_session)?;
    let _in_use = session.in_use();
    Ok(Json(describe(&session)))
}

/// Body of `ask`.
#[derive(Deserialize)]
pub struct AskBody {
    prompt: Option<String>,
}

/// `POST /api/sessions/{id}/ask` with `{"prompt": "…"}` → the answer.
pub async fn ask(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<AskBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let session = st.sessions.get(&id).ok_or_else(ApiError::unknown_session)?;
    let Json(body) = body.map_err(|r| json_error(r, st.max_upload_bytes))?;
    let prompt = check_prompt(body.prompt)?;
    Ok(Json(ask_in(&st, &session, prompt).await?))
}

/// Body of `code`.
#[derive(Deserialize)]
pub struct CodeBody {
    code: Option<String>,
}

/// `POST /api/sessions/{id}/code` with `{"code": "…"}`: hand-written code run as a turn (as
/// `:code` in `voxelprompt chat`) → the same answer as `ask`.
pub async fn code(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let session = st.sessions.get(&id).ok_or_else(ApiError::unknown_session)?;
    let Json(body) = body.map_err(|r| json_error(r, st.max_upload_bytes))?;
    let code = body.code.unwrap_or_default();
    if code.trim().is_empty() {
        return Err(ApiError::bad_request("the code is missing or empty"));
    }
    if code.len() > MAX_CODE {
        return Err(ApiError::bad_request(format!(
            "the code is longer than {MAX_CODE} bytes"
        )));
    }
    Ok(Json(
        model_call(&st, &session, move |s, loaded| s.run_code(loaded, &code)).await?,
    ))
}

/// `GET /api/sessions/{id}/events`: server-sent events `start`, `step` (one per step as it
/// finishes), `answer` and `error` of the answers from now on.
pub async fn events(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let session = st.sessions.get(&id).ok_or_else(ApiError::unknown_session)?;
    let rx = session.subscribe();
    drop(session);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(StreamEvent { kind, data }) => {
                    return Some((Ok(Event::default().event(kind).data(data)), rx))
                }
                Err(RecvError::Lagged(_)) => continue,
                // The session was deleted.
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/sessions/{id}/files/{name}`: a file the session wrote (`view/NAME.nii.gz`,
/// `TURN/report.json`, `TURN/OUTPUT.nii.gz`, `TURN/OUTPUT.png`, `TURN/trace.json`).
pub async fn file(
    State(st): State<Shared>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let session = st.sessions.get(&id).ok_or_else(ApiError::unknown_session)?;
    let _in_use = session.in_use();
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no file {:?} in this session (GET /api/sessions/{id} lists them)",
                upload::display_name(&name)
            ),
        )
    };
    let path = session.file(&name).ok_or_else(missing)?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| missing())?;
    let kind = if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".png") {
        "image/png"
    } else if name.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    };
    let leaf = name.rsplit('/').next().unwrap_or("file");
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{leaf}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route (docs/api.md lists them)",
    )
}
