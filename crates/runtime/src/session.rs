//! A session: one program's persistent environment Ω. It owns the sandboxed engine, the scope
//! that carries variables (and script functions) from step to step, the input scans bound as
//! constants, and everything the steps produced: feedback, response, named outputs and trace.
//!
//! ```
//! use runtime::{Limits, Session, UnavailableBackend};
//! use std::sync::Arc;
//! use voxel::{Geometry, Volume};
//!
//! let g = Geometry::from_spacing([4, 4, 4], [1.0; 3], [0.0; 3]).unwrap();
//! let scan = Arc::new(Volume::filled(g, 0.5f32));
//! let backend = Arc::new(UnavailableBackend::new("no vision network in this example"));
//! let mut s = Session::new(vec![("scan_1".into(), scan)], backend, Limits::default()).unwrap();
//! let out = s.step("let m = mean(scan_1); read(m);", &[]).unwrap();
//! assert_eq!(out.feedback_text(), "0.500");
//! let out = s.step("respond(`mean ${m}`); stop();", &[]).unwrap();
//! assert!(out.stopped);
//! assert_eq!(s.response(), "mean 0.500");
//! ```

use crate::context::{Context, OutputData, OutputVolume};
use crate::diagnose;
use crate::error::{Result, RuntimeError, StepError, StepErrorKind};
use crate::feedback::{feedback_text, FeedbackItem};
use crate::library::{self, LIBRARY};
use crate::phi_binding::{rewrite, PHI_FN};
use crate::sandbox::{build_engine, Clock, Limits};
use crate::trace::{PhiSummary, StepTrace, Trace};
use crate::values::{MaskHandle, Phi, VolumeHandle};
use crate::vision::VisionBackend;
use rhai::{Dynamic, Engine, OptimizationLevel, Scope, AST};
use serde::Serialize;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use voxel::{Image, Mask};

/// Longest input variable name.
const MAX_INPUT_NAME_LEN: usize = 64;

/// What one step gave back.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutcome {
    /// The step's feedback in order: `read` items, then the error (as text) if the step
    /// failed.
    pub feedback: Vec<FeedbackItem>,
    /// The error that ended the step early, if any.
    pub error: Option<StepError>,
    /// True when the program called `stop()` (in this step).
    pub stopped: bool,
}

impl StepOutcome {
    /// The feedback as text (encodings as one `<vol>` per stream).
    pub fn feedback_text(&self) -> String {
        feedback_text(&self.feedback)
    }
}

/// Everything a finished program produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The response text (`respond` lines joined by newlines).
    pub response: String,
    /// Named output volumes, each on its input scan's grid, in order of first `show`.
    pub outputs: Vec<OutputVolume>,
    /// Per-step provenance.
    pub trace: Trace,
    /// Whether the program called `stop()`.
    pub stopped: bool,
    /// The first step error, if a step failed.
    pub error: Option<StepError>,
    /// Evidence: the masks the program computed, kept in a variable and did not `show` (the
    /// mask a volume or a yes/no answer was read from), each on its input scan's grid and named
    /// after its variable, sorted by name. Not part of the answer; for a user who wants to
    /// see what a number rests on. Filled by [`Session::end_turn`] (the answers of a
    /// conversation); [`Session::finish`] leaves it empty, so programs run only for their
    /// values (task oracles, `exec`) do not pay for placing masks nobody reads.
    pub evidence: Vec<OutputVolume>,
}

/// A summary of [`RunOutput`] without the voxels, for JSON reports.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport<'a> {
    /// The response text.
    pub response: &'a str,
    /// Names of the output volumes with the input whose grid they are on.
    pub outputs: Vec<(&'a str, &'a str)>,
    /// Whether the program called `stop()`.
    pub stopped: bool,
    /// The trace.
    pub trace: &'a Trace,
}

impl RunOutput {
    /// The run without voxels, ready for `serde_json`.
    pub fn report(&self) -> RunReport<'_> {
        RunReport {
            response: &self.response,
            outputs: self
                .outputs
                .iter()
                .map(|o| (o.name.as_str(), o.grid_of.as_str()))
                .collect(),
            stopped: self.stopped,
            trace: &self.trace,
        }
    }
}

/// The default variable names of `n` inputs: `scan_1`, `scan_2`, ….
pub fn default_input_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("scan_{i}")).collect()
}

/// The persistent execution environment of one program.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Script functions defined so far, carried into later steps.
    functions: AST,
    ctx: Arc<Context>,
    trace: Trace,
    stopped: bool,
    first_error: Option<StepError>,
    /// The masks the variables held when this turn began (earlier turns' masks), which are not
    /// this turn's evidence; weak, so their addresses stay taken.
    masks_before_turn: Vec<Weak<Mask>>,
}

impl Session {
    /// A session whose programs see `inputs` as constants named by their names, reach the
    /// vision network through `backend`, and run under `limits`.
    pub fn new(
        inputs: Vec<(String, Arc<Image>)>,
        backend: Arc<dyn VisionBackend>,
        limits: Limits,
    ) -> Result<Session> {
        limits.validate()?;
        let clock = Arc::new(Clock::new());
        let ctx = Arc::new(Context::new(
            limits.clone(),
            clock.clone(),
            backend,
            inputs.clone(),
        ));
        let log_ctx = Arc::downgrade(&ctx);
        let max_log = limits.max_log_bytes;
        let mut engine = build_engine(&limits, clock, move |s: &str| {
            if let Some(ctx) = log_ctx.upgrade() {
                let mut st = ctx.state();
                if st.log.len() + s.len() < max_log {
                    st.log.push_str(s);
                    st.log.push('\n');
                }
            }
        });
        // No compile-time evaluation: the optimiser could otherwise run library functions
        // before the deadline is armed.
        engine.set_optimization_level(OptimizationLevel::None);
        library::register(&mut engine, &ctx);

        let mut scope = Scope::new();
        let mut seen = HashSet::new();
        for (name, image) in &inputs {
            check_input_name(&engine, name)?;
            if !seen.insert(name.clone()) {
                return Err(RuntimeError::InvalidInputName {
                    name: name.clone(),
                    reason: "given twice".into(),
                });
            }
            scope.push_constant_dynamic(name.clone(), Dynamic::from(VolumeHandle(image.clone())));
        }
        Ok(Session {
            engine,
            scope,
            functions: AST::empty(),
            ctx,
            trace: Trace::default(),
            stopped: false,
            first_error: None,
            masks_before_turn: Vec::new(),
        })
    }

    /// One line per input for the agent's first state: `scan_1: Volume 64x64x64 at
    /// 1.000x1.000x1.000 mm`.
    pub fn input_lines(&self) -> Vec<String> {
        self.ctx
            .inputs
            .iter()
            .map(|(n, img)| format!("{n}: {}", VolumeHandle(img.clone()).describe()))
            .collect()
    }

    /// Runs one step of code with the ϕ vectors for its `<mod>` markers, in order. Whatever
    /// the code does wrong comes back in the outcome (and the trace) as feedback; only a step
    /// after `stop()` is refused.
    pub fn step(&mut self, code: &str, phi: &[Phi]) -> Result<StepOutcome> {
        if self.stopped {
            return Err(RuntimeError::Stopped);
        }
        let started = Instant::now();
        let error = self.run_step(code, phi);
        self.ctx.clock.disarm();
        let (mut feedback, stopped, log) = {
            let mut st = self.ctx.state();
            (
                std::mem::take(&mut st.feedback),
                st.stopped,
                std::mem::take(&mut st.log),
            )
        };
        if let Some(e) = &error {
            feedback.push(FeedbackItem::Text(e.feedback_text()));
            if self.first_error.is_none() {
                self.first_error = Some(e.clone());
            }
        }
        self.stopped = stopped;
        self.trace.steps.push(StepTrace {
            index: self.trace.steps.len() + 1,
            code: code.to_string(),
            phi: PhiSummary::of(phi),
            feedback: feedback_text(&feedback),
            error: error.clone(),
            stopped,
            log,
            // Microsecond resolution is all a trace reader needs.
            wall_ms: started.elapsed().as_micros() as f64 / 1000.0,
        });
        Ok(StepOutcome {
            feedback,
            error,
            stopped,
        })
    }

    fn run_step(&mut self, code: &str, phi: &[Phi]) -> Option<StepError> {
        let limits = &self.ctx.limits;
        {
            let mut st = self.ctx.state();
            st.phi.clear();
            st.feedback.clear();
            st.feedback_bytes = 0;
            st.reads = 0;
            st.work = 0;
            st.vision_calls = 0;
            st.log.clear();
        }
        if code.len() > limits.max_code_bytes {
            return Some(StepError::new(
                StepErrorKind::Limit,
                format!(
                    "the step's code is {} bytes, over the {} allowed",
                    code.len(),
                    limits.max_code_bytes
                ),
            ));
        }
        let rewritten = rewrite(code);
        if rewritten.markers > limits.max_mods_per_step {
            return Some(StepError::new(
                StepErrorKind::Limit,
                format!(
                    "{} <mod> markers in one step, over the {} allowed",
                    rewritten.markers, limits.max_mods_per_step
                ),
            ));
        }
        if rewritten.markers != phi.len() {
            return Some(StepError::new(
                StepErrorKind::Mod,
                format!(
                    "the step has {} <mod> markers but {} ϕ vectors were produced for it",
                    rewritten.markers,
                    phi.len()
                ),
            ));
        }
        if let Some(i) = phi.iter().position(|p| p.iter().any(|v| !v.is_finite())) {
            return Some(StepError::new(
                StepErrorKind::Mod,
                format!("ϕ vector {} (for <mod> number {}) is not finite", i, i + 1),
            ));
        }
        self.ctx.state().phi = phi.to_vec();
        self.ctx
            .clock
            .arm(Duration::from_millis(limits.step_deadline_ms));

        let ast = match self.engine.compile_with_scope(&self.scope, &rewritten.code) {
            Ok(ast) => ast,
            Err(e) => return Some(diagnose::parse_error(&e, &rewritten)),
        };
        let merged = self.functions.merge(&ast);
        let defined = merged.iter_functions().count();
        if defined > limits.max_functions {
            return Some(StepError::new(
                StepErrorKind::Limit,
                format!(
                    "{defined} script functions defined, over the {} allowed",
                    limits.max_functions
                ),
            ));
        }
        if let Some(f) = merged
            .iter_functions()
            .find(|f| f.name == PHI_FN || LIBRARY.iter().any(|l| l.name == f.name))
        {
            return Some(StepError::new(
                StepErrorKind::Call,
                format!("`{}` is a library function and cannot be redefined", f.name),
            ));
        }
        self.functions = merged.clone_functions_only();

        let engine = &self.engine;
        let scope = &mut self.scope;
        let scope_len = scope.len();
        let (response_len, outputs_before, shown_len) = {
            let st = self.ctx.state();
            (st.response.len(), st.outputs.clone(), st.shown_masks.len())
        };
        let run = catch_unwind(AssertUnwindSafe(|| {
            engine.run_ast_with_scope(scope, &merged)
        }));
        let error = match run {
            Ok(Ok(())) => None,
            Ok(Err(e)) => diagnose::step_error(&e, limits, &rewritten),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into());
                Some(StepError::new(
                    StepErrorKind::Script,
                    format!("internal error in a library function ({what}); please report it"),
                ))
            }
        };
        // A step refused for a resource limit leaves nothing behind but its feedback: the
        // variables it created (so whatever it hoarded is freed), its response lines and its
        // outputs are dropped. After other errors they stay for the next step to use.
        if error
            .as_ref()
            .is_some_and(|e| e.kind == StepErrorKind::Limit)
        {
            self.scope.rewind(scope_len);
            let mut st = self.ctx.state();
            st.response.truncate(response_len);
            st.outputs = outputs_before;
            st.shown_masks.truncate(shown_len);
        }
        compact_scope(&mut self.scope);
        error
    }

    /// The current value of a program variable (the newest of that name), e.g. to compare a
    /// computed number with a task's expected answer at full precision.
    pub fn variable(&self, name: &str) -> Option<Dynamic> {
        self.scope.get_value::<Dynamic>(name)
    }

    /// True once the program has called `stop()`.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The response so far.
    pub fn response(&self) -> String {
        self.ctx.state().response.clone()
    }

    /// The named output volumes so far.
    pub fn outputs(&self) -> Vec<OutputVolume> {
        self.ctx.state().outputs.clone()
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Ends one program of a conversation and hands over what it produced, keeping the
    /// environment for the next: every variable the program left is also kept as
    /// `NAME_TURN` (`m_1`, `e_1`), so a later program or the user can still reach it after a
    /// new program rebinds `m`; script functions stay defined. The response, outputs, trace
    /// and the `stop()` flag start afresh.
    pub fn end_turn(&mut self, turn: usize) -> RunOutput {
        let evidence = self.evidence();
        let output = {
            let mut st = self.ctx.state();
            st.shown_masks.clear();
            RunOutput {
                response: std::mem::take(&mut st.response),
                outputs: std::mem::take(&mut st.outputs),
                trace: std::mem::take(&mut self.trace),
                stopped: self.stopped,
                error: self.first_error.take(),
                evidence,
            }
        };
        self.stopped = false;
        let inputs: HashSet<&str> = self.ctx.inputs.iter().map(|(n, _)| n.as_str()).collect();
        let kept: Vec<(String, Dynamic)> = self
            .scope
            .iter_raw()
            .filter(|(name, _, _)| !inputs.contains(name) && !is_turn_alias(name))
            .map(|(name, _, value)| (format!("{name}_{turn}"), value.clone()))
            .collect();
        for (name, value) in kept {
            self.scope.push_dynamic(name, value);
        }
        compact_scope(&mut self.scope);
        self.masks_before_turn = self
            .scope
            .iter_raw()
            .filter_map(|(_, _, value)| {
                value
                    .read_lock::<MaskHandle>()
                    .map(|m| Arc::downgrade(&m.0))
            })
            .collect();
        output
    }

    /// This turn's evidence (see [`RunOutput::evidence`]): masks held by variables, made this
    /// turn (so neither earlier turns' masks nor their `NAME_TURN` aliases, whatever the
    /// program's own names look like), not shown, and on an input's grid; at most
    /// [`Limits::max_outputs`] of them.
    pub fn evidence(&self) -> Vec<OutputVolume> {
        let st = self.ctx.state();
        let known = |m: &Arc<Mask>| {
            st.shown_masks
                .iter()
                .chain(&self.masks_before_turn)
                .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(m)))
        };
        let mut evidence: Vec<OutputVolume> = Vec::new();
        for (name, _, value) in self.scope.iter_raw() {
            if evidence.len() >= self.ctx.limits.max_outputs {
                break;
            }
            let Some(mask) = value.read_lock::<MaskHandle>().map(|m| m.0.clone()) else {
                continue;
            };
            if known(&mask) || evidence.iter().any(|e| e.name == name) {
                continue;
            }
            if let Some((grid_of, placed)) = library::outputs::mask_on_input_grid(&self.ctx, &mask)
            {
                evidence.push(OutputVolume {
                    name: name.to_string(),
                    grid_of,
                    data: OutputData::Mask(placed),
                });
            }
        }
        evidence.sort_by(|a, b| a.name.cmp(&b.name));
        evidence
    }

    /// The program variables now defined (inputs included), with the Rust type of each value.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.scope
            .iter_raw()
            .map(|(name, _, value)| (name.to_string(), value.type_name().to_string()))
            .collect()
    }

    /// Ends the session and hands over what it produced (no evidence: call [`Session::evidence`]
    /// first where it is wanted).
    pub fn finish(self) -> RunOutput {
        let st = self.ctx.state();
        RunOutput {
            response: st.response.clone(),
            outputs: st.outputs.clone(),
            trace: self.trace.clone(),
            stopped: self.stopped,
            error: self.first_error.clone(),
            evidence: Vec::new(),
        }
    }
}

/// Whether `name` is an alias [`Session::end_turn`] made (`NAME_TURN`); those are not aliased
/// again.
fn is_turn_alias(name: &str) -> bool {
    name.rsplit_once('_').is_some_and(|(stem, n)| {
        !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Keeps only the newest variable of each name. Top-level `let` in a later step shadows an
/// earlier one without removing it; left alone, the hidden copies would pile up over steps and
/// keep their volumes alive (and counted against the memory limit).
fn compact_scope(scope: &mut Scope<'static>) {
    let mut seen = HashSet::new();
    let mut keep: Vec<(String, bool, Dynamic)> = Vec::with_capacity(scope.len());
    for (name, constant, value) in scope.iter_raw().collect::<Vec<_>>().into_iter().rev() {
        if seen.insert(name.to_string()) {
            keep.push((name.to_string(), constant, value.clone()));
        }
    }
    if keep.len() == scope.len() {
        return;
    }
    scope.clear();
    for (name, constant, value) in keep.into_iter().rev() {
        if constant {
            scope.push_constant_dynamic(name, value);
        } else {
            scope.push_dynamic(name, value);
        }
    }
}

/// Input names become constants in every program, so they must be plain identifiers that are
/// neither keywords nor library function names.
fn check_input_name(engine: &Engine, name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(RuntimeError::InvalidInputName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    let plain = name.len() <= MAX_INPUT_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return bad("use a letter followed by letters, digits or '_' (at most 64)");
    }
    if LIBRARY.iter().any(|f| f.name == name) {
        return bad("is the name of a library function");
    }
    // The parser knows the keywords (including reserved ones) better than any list here.
    if engine.compile(format!("let {name} = 0;")).is_err() {
        return bad("is a reserved word of the program language");
    }
    Ok(())
}
