//! The error type of the `tasks` crate.

/// Everything the task catalogue can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A prompt template or phrase rule is malformed (unbalanced braces, unknown rule, cycle).
    #[error("prompt grammar: {0}")]
    Grammar(String),
    /// No family has this name; `voxelprompt tasks list` shows the names.
    #[error("unknown task family {0:?}; `voxelprompt tasks list` shows the families")]
    UnknownFamily(String),
    /// The family needs something this build does not have yet (a lesion class).
    #[error("task family {family} is not available: {reason}")]
    Unavailable {
        /// The family.
        family: String,
        /// What it is waiting for.
        reason: String,
    },
    /// No subject fitting the family's scenario was found within the attempt budget.
    #[error(
        "task family {family}: no fitting subject after {attempts} attempts (last problem: {last})"
    )]
    NoSample {
        /// The family.
        family: String,
        /// How many subjects were tried.
        attempts: usize,
        /// The last reason a subject was rejected.
        last: String,
    },
    /// Replaying the lesion painting did not reproduce the subject's lesion map, so per-lesion
    /// masks cannot be trusted.
    #[error("lesion replay of session {session} differs from the synthesized lesion map in {voxels} voxels")]
    Replay {
        /// Session index.
        session: usize,
        /// Voxels that differ.
        voxels: usize,
    },
    /// A mask definition refers to something the subject does not have.
    #[error("mask definition: {0}")]
    Mask(String),
    /// The data engine failed.
    #[error(transparent)]
    Synth(#[from] synth::SynthError),
    /// The runtime refused the program or its inputs.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// An imaging operation failed.
    #[error(transparent)]
    Voxel(#[from] voxel::VoxelError),
    /// Writing output (the corpus) failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// A family built an inconsistent program (a bug in the catalogue, reported with context).
    #[error("program of {family}: {problem}")]
    Program {
        /// The family.
        family: String,
        /// What is inconsistent.
        problem: String,
    },
}

/// Result alias for `tasks`.
pub type Result<T> = std::result::Result<T, TaskError>;
