//! Engine construction and the sandbox's limits.
//!
//! The agent's code is untrusted input, so the interpreter is built from nothing
//! ([`rhai::Engine::new_raw`]) and given only what programs need:
//!
//! - packages: arithmetic, logic, maths, basic strings (concatenation, `to_string`,
//!   interpolation), arrays, object maps and iteration. Left out on purpose: `sleep` and
//!   `exit` (language-core package: a native `sleep` cannot be interrupted by the deadline),
//!   timestamps (non-determinism), BLOBs, and the extended string package, whose `replace` and
//!   friends can allocate `len²` bytes before any size check runs.
//! - no module resolver and no `import` (the `no_module` feature removes the syntax), `eval`
//!   disabled as a symbol, `print`/`debug` captured into the step log instead of stdout. There
//!   is no function that touches files, the network, the clock or the environment.
//! - limits on operations, call depth, expression depth, string/array/map sizes, variables and
//!   functions, and a wall-clock deadline checked in `on_progress` and at the start of every
//!   library call. Library functions check their own output sizes against a live-memory budget
//!   (see [`Limits::max_live_bytes`]), because the deadline cannot interrupt a native call.

use crate::error::{Result, RuntimeError};
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, Package,
};
use rhai::{Dynamic, Engine};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resource limits of one session. Defaults are chosen so that every refusal happens well
/// within a second on a laptop core while normal agent programs (a few dozen lines, a handful
/// of volumes) never come near them. All per-step limits reset at the start of each step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest step code accepted, in bytes (default 64 KiB).
    pub max_code_bytes: usize,
    /// Interpreter operations per step (default 1 000 000: 0.1–0.4 s of pure scripting, far
    /// more than an agent step needs).
    pub max_operations: u64,
    /// Wall-clock time per step in milliseconds, not counting time inside the vision backend
    /// (default 5000).
    pub step_deadline_ms: u64,
    /// Deepest nesting of script function calls (default 24).
    pub max_call_levels: usize,
    /// Deepest expression nesting at global level (default 64).
    pub max_expr_depth: usize,
    /// Deepest expression nesting inside script functions (default 32).
    pub max_function_expr_depth: usize,
    /// Longest string in bytes (default 16 KiB).
    pub max_string_bytes: usize,
    /// Most elements in an array, nested arrays counted in full (default 10 000).
    pub max_array_len: usize,
    /// Most properties in an object map, nested maps counted in full (default 1 000).
    pub max_map_len: usize,
    /// Most variables alive at once (default 1 000).
    pub max_variables: usize,
    /// Most script functions defined over the whole session (default 64).
    pub max_functions: usize,
    /// Memory that volumes created by library calls may hold at once, in bytes (default
    /// 256 MiB, raised to [`Limits::live_bytes_per_input_byte`] × the inputs' size when that is
    /// larger). Input volumes do not count; volumes the program dropped are freed and stop
    /// counting. The default keeps a hoarding loop's refusal under a second: allocating and
    /// filling fresh memory runs at well under 1 GB/s on a laptop core.
    pub max_live_bytes: usize,
    /// Budget per byte of input volumes (default 4), so large scans leave room for a few
    /// derived volumes of their size.
    pub live_bytes_per_input_byte: usize,
    /// Voxel visits per step, summed over library calls (each call counts the voxels of its
    /// volume arguments and results); default 2²⁷ ≈ 134 million, raised to
    /// [`Limits::voxel_work_per_input_voxel`] × the largest input's voxel count when that is
    /// larger. This is what stops a loop of cheap-to-write, expensive-to-run library calls
    /// quickly: the operation limit counts such a call as one operation.
    pub max_voxel_work: u64,
    /// Voxel visits per step per voxel of the largest input (default 64, i.e. a few dozen
    /// whole-volume operations).
    pub voxel_work_per_input_voxel: u64,
    /// Calls into the vision backend per step: `encode`, `generate`, and `read` of an encoding
    /// (default 32). Backend time does not count against the deadline, so this bounds it.
    pub max_vision_calls_per_step: usize,
    /// `read` calls per step (default 64).
    pub max_reads_per_step: usize,
    /// Feedback text per step in bytes (default 16 KiB).
    pub max_feedback_bytes: usize,
    /// Response text over the whole session in bytes (default 16 KiB).
    pub max_response_bytes: usize,
    /// Distinct named output volumes (default 32).
    pub max_outputs: usize,
    /// `<mod>` markers per step (default 64).
    pub max_mods_per_step: usize,
    /// Streams (volumes) in one `encode` call, at most 8 (default 8).
    pub max_streams: usize,
    /// Largest margin `crop_to` accepts, in mm (default 500).
    pub max_margin_mm: f64,
    /// Log text captured from `print`/`debug` per step, in bytes (default 4 KiB); more is
    /// dropped silently because the log is for people, not for the agent.
    pub max_log_bytes: usize,
}

/// Hard ceiling on streams per `encode` call: `encode` is registered once per arity, and each
/// stream may carry a ϕ argument.
pub const MAX_STREAMS: usize = 8;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_code_bytes: 64 * 1024,
            max_operations: 1_000_000,
            step_deadline_ms: 5_000,
            max_call_levels: 24,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_bytes: 16 * 1024,
            max_array_len: 10_000,
            max_map_len: 1_000,
            max_variables: 1_000,
            max_functions: 64,
            max_live_bytes: 256 << 20,
            live_bytes_per_input_byte: 4,
            max_voxel_work: 1 << 27,
            voxel_work_per_input_voxel: 64,
            max_vision_calls_per_step: 32,
            max_reads_per_step: 64,
            max_feedback_bytes: 16 * 1024,
            max_response_bytes: 16 * 1024,
            max_outputs: 32,
            max_mods_per_step: 64,
            max_streams: MAX_STREAMS,
            max_margin_mm: 500.0,
            max_log_bytes: 4 * 1024,
        }
    }
}

impl Limits {
    /// Limits from TOML text such as `configs/runtime/limits.toml`; missing keys keep their
    /// defaults, unknown keys are an error (a typo must not silently keep a default).
    pub fn from_toml(text: &str) -> Result<Limits> {
        let limits: Limits =
            toml::from_str(text).map_err(|e| RuntimeError::InvalidLimits(e.to_string()))?;
        limits.validate()?;
        Ok(limits)
    }

    /// Fails unless every limit is usable: counts at least 1 (a zero would disable the check in
    /// Rhai rather than forbid everything), streams at most [`MAX_STREAMS`], margin finite.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("max_code_bytes", self.max_code_bytes),
            ("max_call_levels", self.max_call_levels),
            ("max_expr_depth", self.max_expr_depth),
            ("max_function_expr_depth", self.max_function_expr_depth),
            ("max_string_bytes", self.max_string_bytes),
            ("max_array_len", self.max_array_len),
            ("max_map_len", self.max_map_len),
            ("max_variables", self.max_variables),
            ("max_live_bytes", self.max_live_bytes),
            ("max_reads_per_step", self.max_reads_per_step),
            ("max_vision_calls_per_step", self.max_vision_calls_per_step),
            ("max_feedback_bytes", self.max_feedback_bytes),
            ("max_response_bytes", self.max_response_bytes),
            ("max_outputs", self.max_outputs),
            ("max_streams", self.max_streams),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(RuntimeError::InvalidLimits(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        if self.max_operations == 0 || self.step_deadline_ms == 0 || self.max_voxel_work == 0 {
            return Err(RuntimeError::InvalidLimits(
                "max_operations, step_deadline_ms and max_voxel_work must be at least 1".into(),
            ));
        }
        if self.max_streams > MAX_STREAMS {
            return Err(RuntimeError::InvalidLimits(format!(
                "max_streams is {} but at most {MAX_STREAMS} is supported",
                self.max_streams
            )));
        }
        if !(self.max_margin_mm.is_finite() && self.max_margin_mm >= 0.0) {
            return Err(RuntimeError::InvalidLimits(
                "max_margin_mm must be a finite number ≥ 0".into(),
            ));
        }
        Ok(())
    }
}

/// The per-step wall-clock deadline. It is shared between the engine's progress callback and
/// the library functions, so it is lock-free: one atomic holding nanoseconds since `origin`.
#[derive(Debug)]
pub(crate) struct Clock {
    origin: Instant,
    deadline_ns: AtomicU64,
}

impl Clock {
    const UNARMED: u64 = u64::MAX;

    pub(crate) fn new() -> Clock {
        Clock {
            origin: Instant::now(),
            deadline_ns: AtomicU64::new(Self::UNARMED),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Starts a deadline `budget` from now.
    pub(crate) fn arm(&self, budget: Duration) {
        let ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX - 1);
        self.deadline_ns.store(
            self.now_ns().saturating_add(ns).min(u64::MAX - 1),
            Ordering::Relaxed,
        );
    }

    /// No deadline (between steps).
    pub(crate) fn disarm(&self) {
        self.deadline_ns.store(Self::UNARMED, Ordering::Relaxed);
    }

    /// Pushes the deadline back by `by`: time spent inside the vision backend is the backend's
    /// own cost and does not count against the script.
    pub(crate) fn extend(&self, by: Duration) {
        let d = self.deadline_ns.load(Ordering::Relaxed);
        if d != Self::UNARMED {
            let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX - 1);
            self.deadline_ns
                .store(d.saturating_add(ns).min(u64::MAX - 1), Ordering::Relaxed);
        }
    }

    /// True once an armed deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        let d = self.deadline_ns.load(Ordering::Relaxed);
        d != Self::UNARMED && self.now_ns() > d
    }
}

/// Why a script was halted from outside its own control flow. Carried in
/// `EvalAltResult::ErrorTerminated`, which `try`/`catch` cannot intercept.
#[derive(Clone, Debug)]
pub(crate) enum Halt {
    /// The program called `stop()`.
    Stop,
    /// The step's wall-clock deadline passed.
    Deadline,
    /// A library function refused to exceed a resource limit.
    Limit(String),
}

/// How often (in operations) the progress callback reads the clock: about every 10 µs of
/// scripting, which makes the check's cost invisible.
const CLOCK_CHECK_EVERY_OPS: u64 = 128;

/// A locked-down engine with the limits applied and no library functions yet. `log` receives
/// `print`/`debug` output.
pub(crate) fn build_engine(
    limits: &Limits,
    clock: Arc<Clock>,
    log: impl Fn(&str) + Send + Sync + Clone + 'static,
) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(ArithmeticPackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    engine.register_global_module(BasicStringPackage::new().as_shared_module());
    engine.register_global_module(BasicIteratorPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());

    engine.disable_symbol("eval");
    // Undeclared variables are reported when the step is compiled, before any of it runs.
    engine.set_strict_variables(true);

    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth);
    engine.set_max_string_size(limits.max_string_bytes);
    engine.set_max_array_size(limits.max_array_len);
    engine.set_max_map_size(limits.max_map_len);
    engine.set_max_variables(limits.max_variables);
    engine.set_max_functions(limits.max_functions);

    engine.on_progress(move |ops| {
        if ops % CLOCK_CHECK_EVERY_OPS == 0 && clock.expired() {
            Some(Dynamic::from(Halt::Deadline))
        } else {
            None
        }
    });
    let print_log = log.clone();
    engine.on_print(move |s| print_log(s));
    engine.on_debug(move |s, _, _| log(s));
    engine
}
