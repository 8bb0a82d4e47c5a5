//! `runtime`: the execution environment Ω of VoxelPrompt (DESIGN.md §6). The agent's
//! programs run here, step by step, in a sandboxed Rhai interpreter with a persistent scope and
//! a small imaging library; the vision network is reached through [`VisionBackend`].
//!
//! - [`Session`]: one program's environment; [`Session::step`] runs a step with the ϕ vectors
//!   for its `<mod>` markers and returns its feedback.
//! - [`run_program`]: runs a whole hand-written program (for `voxelprompt exec`).
//! - [`Limits`]: what a program may use; see [`sandbox`] for what the sandbox leaves out.
//! - The library and its number format are documented in `docs/runtime-library.md`.

#![warn(missing_docs)]

pub mod error;
pub mod feedback;
pub mod grid;
pub mod library;
pub mod program;
pub mod sandbox;
pub mod session;
pub mod trace;
pub mod values;
pub mod vision;

mod context;
mod diagnose;
mod phi_binding;

pub use context::{OutputData, OutputVolume};
pub use error::{Result, RuntimeError, StepError, StepErrorKind};
pub use feedback::{format_number, FeedbackItem};
pub use phi_binding::marker_counts_after;
pub use program::{run_program, split_steps, GroundTruth};
pub use protocol::{MOD_MARKER, VOL_MARKER};
/// Script values as [`Session::variable`] returns them.
pub use rhai::Dynamic;
pub use sandbox::Limits;
pub use session::{default_input_names, RunOutput, RunReport, Session, StepOutcome};
pub use trace::{PhiSummary, StepTrace, Trace};
pub use values::{EncodingHandle, MaskHandle, Phi, PhiValue, VolumeHandle, PHI_DIM};
pub use vision::{GroundTruthBackend, StructureTable, UnavailableBackend, VisionBackend};
