//! The error types of the `runtime` crate.
//!
//! Two kinds of failure are kept apart on purpose. [`RuntimeError`] is for the *caller* of the
//! runtime (bad input names, invalid limits, a session used after it stopped); it is a normal
//! Rust error. [`StepError`] is for the *program*: anything a step does wrong, from a syntax
//! error to an exhausted limit, becomes a `StepError` that is turned into feedback text the
//! agent reads, never a failure of the process.

use serde::{Deserialize, Serialize};

/// Everything the runtime's Rust API can refuse.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An input volume name is not usable as a program variable.
    #[error("input name {name:?}: {reason}")]
    InvalidInputName {
        /// The name as given.
        name: String,
        /// Why it cannot be used, in words.
        reason: String,
    },
    /// A [`crate::Limits`] value is out of its documented range.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// The vision backend refused or failed; the message says which call and why.
    #[error("vision backend: {0}")]
    Vision(String),
    /// An imaging operation failed (grid mismatch, empty mask, too large, …).
    #[error(transparent)]
    Voxel(#[from] voxel::VoxelError),
    /// A step was submitted after the program called `stop()`.
    #[error("the program has already stopped; start a new session to run more steps")]
    Stopped,
    /// The trace could not be written as JSON.
    #[error("trace serialisation: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias for the runtime's Rust API.
pub type Result<T> = std::result::Result<T, RuntimeError>;

/// The class of a step failure, so callers and tests can tell a refused resource grab from a
/// typo without parsing messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepErrorKind {
    /// The code does not parse, or uses a disabled construct (`eval`, `import`).
    Syntax,
    /// A sandbox limit was reached: operations, time, call depth, data sizes, voxel memory.
    Limit,
    /// A function does not exist or was called with the wrong argument types.
    Call,
    /// A library function refused its arguments (empty mask, grid mismatch, bad number).
    Library,
    /// The `<mod>` markers do not match the ϕ vectors or the vision call's arguments.
    Mod,
    /// The vision backend failed.
    Vision,
    /// Any other run-time error of the script itself (unknown variable, bad index, `throw`).
    Script,
}

impl StepErrorKind {
    /// The lower-case word used in feedback text, e.g. `"limit"`.
    pub fn label(self) -> &'static str {
        match self {
            StepErrorKind::Syntax => "syntax",
            StepErrorKind::Limit => "limit",
            StepErrorKind::Call => "call",
            StepErrorKind::Library => "library",
            StepErrorKind::Mod => "mod",
            StepErrorKind::Vision => "vision",
            StepErrorKind::Script => "script",
        }
    }
}

/// A failed step, as the agent sees it. `line`/`column` refer to the step's code as written
/// (with `<mod>` markers), 1-based.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.feedback_text())]
pub struct StepError {
    /// What class of failure this is.
    pub kind: StepErrorKind,
    /// What went wrong and, where possible, what to do instead.
    pub message: String,
    /// Line in the step's code, when known.
    pub line: Option<usize>,
    /// Column in that line, when known.
    pub column: Option<usize>,
    /// The library function that refused a mask with no voxel, when that is the error: a
    /// measurement that is undefined, not a mistake in the code, so writing the step again
    /// cannot help (`train::inference` ends the answer there and says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_mask_in: Option<String>,
    /// The library function whose result is undefined for the values it was given (`ratio`
    /// with a zero denominator, most often a volume of an empty mask), when that is the error:
    /// a dead end as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undefined_in: Option<String>,
}

impl StepError {
    /// A step error without a position.
    pub fn new(kind: StepErrorKind, message: impl Into<String>) -> StepError {
        StepError {
            kind,
            message: message.into(),
            line: None,
            column: None,
            empty_mask_in: None,
            undefined_in: None,
        }
    }

    /// The one-line text that goes into the feedback, e.g.
    /// `error (limit) at line 2, column 5: too many operations`.
    pub fn feedback_text(&self) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
            (Some(l), None) => format!(" at line {l}"),
            _ => String::new(),
        };
        format!("error ({}){at}: {}", self.kind.label(), self.message)
    }
}
