//! Sessions: the scans of one upload, a persistent [`Conversation`] about them, the files its
//! answers wrote (the only files the server hands out) and the stream of its steps.
//! Each lives in `DATA/<random id>/` and is deleted after an idle timeout.

use anyhow::{anyhow, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use train::inference::{Answer, AnswerOptions, Conversation, Scan};
use voxel::io::WriteOptions;

use crate::cmd::run::{
    failure, write_answer, Inputs, LoadedModel, OutputOptions, ScanArg, EVIDENCE_DIR,
};

/// One server-sent event: its type (`start`, `step`, `answer`, `error`) and JSON data.
#[derive(Clone, Debug)]
pub struct StreamEvent {
    /// SSE event name.
    pub kind: &'static str,
    /// JSON text.
    pub data: String,
}

/// A scan of a session as the client described it.
#[derive(Clone, Serialize)]
pub struct InputInfo {
    /// Program variable name.
    pub name: String,
    /// Acquisition date, if given.
    pub date: Option<String>,
    /// The client's file name, for display only.
    pub file: String,
    /// `[x, y, z]` voxels.
    pub shape: [usize; 3],
    /// Voxel size, mm.
    pub spacing_mm: [f64; 3],
    /// The scan as NIfTI, for the viewer (a name under `files/`).
    pub view: String,
}

/// One session.
pub struct Session {
    /// Random id (32 hex digits).
    pub id: String,
    dir: PathBuf,
    scans: Vec<Scan>,
    parsed: Vec<ScanArg>,
    /// The scans as uploaded.
    pub inputs: Vec<InputInfo>,
    conversation: Mutex<Conversation<'static>>,
    files: Mutex<BTreeMap<String, PathBuf>>,
    events: broadcast::Sender<StreamEvent>,
    last_used: Mutex<Instant>,
    busy: AtomicUsize,
}

/// Marks a session in use (not to be swept) until dropped.
pub struct InUse(Arc<Session>);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Session {
    /// A session over scans already read; writes each as NIfTI under `view/` for the viewer.
    pub fn new(
        id: String,
        dir: PathBuf,
        loaded: &'static LoadedModel,
        scans: Vec<Scan>,
        parsed: Vec<ScanArg>,
        files: Vec<String>,
        options: AnswerOptions,
    ) -> Result<Session> {
        let view_dir = dir.join("view");
        std::fs::create_dir_all(&view_dir)?;
        let mut served = BTreeMap::new();
        let mut inputs = Vec::new();
        for ((scan, p), file) in scans.iter().zip(&parsed).zip(files) {
            let name = format!("view/{}.nii.gz", scan.name);
            let path = dir.join(&name);
            voxel::io::write_image(&path, &scan.image, &WriteOptions::default())?;
            served.insert(name.clone(), path);
            inputs.push(InputInfo {
                name: scan.name.clone(),
                date: p.date.clone(),
                file,
                shape: scan.image.shape(),
                spacing_mm: scan.image.geometry().spacing_mm(),
                view: name,
            });
        }
        let conversation = Conversation::new(&loaded.model, &scans, options)
            .map_err(|e| anyhow!("cannot start a session on these scans: {e}"))?;
        let (events, _) = broadcast::channel(256);
        Ok(Session {
            id,
            dir,
            scans,
            parsed,
            inputs,
            conversation: Mutex::new(conversation),
            files: Mutex::new(served),
            events,
            last_used: Mutex::new(Instant::now()),
            busy: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Marks the session in use until the guard drops.
    pub fn in_use(self: &Arc<Self>) -> InUse {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.touch();
        InUse(self.clone())
    }

    /// A receiver of the events of the answers from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamEvent> {
        self.events.subscribe()
    }

    fn emit(&self, kind: &'static str, data: &Value) {
        // No subscriber is not an error.
        let _ = self.events.send(StreamEvent {
            kind,
            data: data.to_string(),
        });
    }

    /// The file served as `name` (one the session wrote), if any.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Names of every file the session serves.
    pub fn file_names(&self) -> Vec<String> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Answers `prompt` (blocking: a model call), streaming each step as an event, writing the
    /// answer's files under `answers/NN/`; returns the report of `run` with `session`, `turn`,
    /// `files` (names under `files/`) and `error` (why it is not a success, or null) added.
    pub fn ask(&self, loaded: &'static LoadedModel, prompt: &str) -> Result<Value> {
        let mut conversation = self.conversation()?;
        let turn = conversation.turns() + 1;
        self.emit("start", &json!({ "turn": turn, "prompt": prompt }));
        let mut index = 0;
        let result = conversation.ask_with(prompt, |step| {
            index += 1;
            self.emit(
                "step",
                &json!({ "turn": turn, "index": index, "step": step }),
            );
        });
        self.finish(loaded, turn, prompt, result)
    }

    /// Runs hand-written code as a turn (blocking: vision calls are model calls), its `<mod>`
    /// markers answered with zero instruction vectors; the same report as [`Session::ask`].
    pub fn run_code(&self, loaded: &'static LoadedModel, code: &str) -> Result<Value> {
        let mut conversation = self.conversation()?;
        let turn = conversation.turns() + 1;
        self.emit("start", &json!({ "turn": turn, "prompt": code }));
        let phis = vec![[0.0f32; runtime::PHI_DIM]; code.matches("<mod>").count()];
        let result = conversation.run_code_answer(code, &phis);
        if let Ok(a) = &result {
            for (k, step) in a.steps.iter().enumerate() {
                self.emit(
                    "step",
                    &json!({ "turn": turn, "index": k + 1, "step": step }),
                );
            }
        }
        self.finish(loaded, turn, code, result)
    }

    fn conversation(&self) -> Result<std::sync::MutexGuard<'_, Conversation<'static>>> {
        self.conversation
            .lock()
            .map_err(|_| anyhow!("this session broke in an earlier answer; start a new one"))
    }

    /// Writes an answer's files and registers them; the report with the session's additions.
    fn finish(
        &self,
        loaded: &'static LoadedModel,
        turn: usize,
        prompt: &str,
        result: train::Result<Answer>,
    ) -> Result<Value> {
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                let message = format!("answering failed: {e}");
                self.emit("error", &json!({ "turn": turn, "error": message }));
                return Err(anyhow!(message));
            }
        };
        let error = failure(&answer).map(|e| e.to_string());
        let kinds: Vec<(String, &'static str, String)> = answer
            .output
            .outputs
            .iter()
            .map(|o| {
                let kind = match o.data {
                    runtime::OutputData::Mask(_) => "mask",
                    runtime::OutputData::Image(_) => "image",
                };
                (o.name.clone(), kind, o.grid_of.clone())
            })
            .collect();
        let dir = self.dir.join("answers").join(format!("{turn:02}"));
        let seconds = answer.seconds;
        let inputs = Inputs {
            scans: &self.scans,
            args: &self.parsed,
            read_seconds: 0.0,
        };
        let output = OutputOptions {
            dir: Some(&dir),
            dicom_seg: false,
        };
        let answered = write_answer(loaded, inputs, prompt, answer, seconds, &output)?;
        let mut written: Vec<PathBuf> = answered.outputs.iter().map(PathBuf::from).collect();
        written.push(dir.join("report.json"));
        let mut files = Vec::new();
        {
            let mut served = self.files.lock().unwrap_or_else(|e| e.into_inner());
            for path in written {
                let Some(leaf) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                let name = format!("{turn}/{leaf}");
                let output = kinds
                    .iter()
                    .find(|(n, _, _)| leaf == format!("{n}.nii.gz") || leaf == format!("{n}.png"));
                let kind = match (output, leaf) {
                    (Some((_, k, _)), l) if l.ends_with(".nii.gz") => *k,
                    (Some(_), _) => "png",
                    (None, "report.json") => "report",
                    (None, "trace.json") => "trace",
                    _ => "other",
                };
                files.push(json!({
                    "name": name,
                    "kind": kind,
                    "output": output.map(|o| o.0.clone()),
                    "scan": output.map(|o| o.2.clone()),
                    "evidence": false,
                }));
                served.insert(name, path);
            }
            // Evidence masks: layers of the viewer like shown masks, marked as evidence (the page
            // lists them hidden: the program did not show them).
            for e in &answered.evidence {
                let Some(nifti) = e.file.as_ref().map(PathBuf::from) else {
                    continue;
                };
                let label = match &e.target {
                    Some(t) => format!("evidence: {} ({t})", e.variable),
                    None => format!("evidence: {}", e.variable),
                };
                let png = nifti.with_file_name(format!("{}.png", e.variable));
                for (path, kind) in [(nifti, "mask"), (png, "png")] {
                    let Some(leaf) = path.file_name().and_then(|f| f.to_str()) else {
                        continue;
                    };
                    if !path.is_file() {
                        continue;
                    }
                    let name = format!("{turn}/{EVIDENCE_DIR}/{leaf}");
                    files.push(json!({
                        "name": name,
                        "kind": kind,
                        "output": label,
                        "scan": e.grid_of,
                        "evidence": true,
                    }));
                    served.insert(name, path);
                }
            }
        }
        let mut report: Value = serde_json::from_str(&answered.json)?;
        if let Value::Object(map) = &mut report {
            map.insert("session".into(), json!(self.id));
            map.insert("turn".into(), json!(turn));
            map.insert("files".into(), Value::Array(files));
            map.insert("error".into(), json!(error));
        }
        self.emit("answer", &report);
        Ok(report)
    }
}

/// Every live session.
pub struct Store {
    data: PathBuf,
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Store {
    /// An empty store keeping its sessions under `data`.
    pub fn new(data: PathBuf) -> Store {
        Store {
            data,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh random id and its directory (created, with `inputs/`).
    pub fn allocate(&self) -> Result<(String, PathBuf)> {
        let id = format!("{:032x}", rand::random::<u128>());
        let dir = self.data.join(&id);
        std::fs::create_dir_all(dir.join("inputs"))?;
        Ok((id, dir))
    }

    /// Adds a session; beyond `max` sessions, deletes the least recently used ones not in use.
    pub fn insert(&self, session: Arc<Session>, max: usize) {
        let evicted: Vec<Arc<Session>> = {
            let mut map = self.lock();
            map.insert(session.id.clone(), session);
            let mut idle: Vec<(Instant, String)> = map
                .values()
                .filter(|s| s.busy.load(Ordering::SeqCst) == 0)
                .map(|s| {
                    (
                        *s.last_used.lock().unwrap_or_else(|e| e.into_inner()),
                        s.id.clone(),
                    )
                })
                .collect();
            idle.sort();
            let excess = map.len().saturating_sub(max.max(1));
            idle.into_iter()
                .take(excess)
                .filter_map(|(_, id)| map.remove(&id))
                .collect()
        };
        for s in evicted {
            remove_dir(&s.dir);
        }
    }

    /// The session `id`, if it exists.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().get(id).cloned()
    }

    /// Sessions now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Deletes session `id` (or an allocated directory never made a session) and its files.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
        remove_dir(&self.data.join(id));
    }

    /// Deletes the sessions unused for `idle` and not in use.
    pub fn sweep(&self, idle: Duration) {
        let expired: Vec<Arc<Session>> = {
            let mut map = self.lock();
            let ids: Vec<String> = map
                .values()
                .filter(|s| {
                    s.busy.load(Ordering::SeqCst) == 0
                        && s.last_used
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .elapsed()
                            > idle
                })
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for s in expired {
            remove_dir(&s.dir);
        }
    }

    /// Deletes every session (at shutdown).
    pub fn remove_all(&self) {
        let all: Vec<Arc<Session>> = self.lock().drain().map(|(_, s)| s).collect();
        for s in all {
            remove_dir(&s.dir);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn remove_dir(dir: &Path) {
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("voxelprompt serve: cannot delete {}: {e}", dir.display());
        }
    }
}
