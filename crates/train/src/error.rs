//! The error type of the `train` crate.

use std::path::PathBuf;

/// Everything that can go wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An imaging operation (resampling, I/O, metrics) failed.
    #[error(transparent)]
    Voxel(#[from] voxel::VoxelError),
    /// Synthesising a training subject failed.
    #[error(transparent)]
    Synth(#[from] synth::SynthError),
    /// Building, running or (de)serialising a network failed.
    #[error(transparent)]
    Vision(#[from] vision::VisionError),
    /// A training setting is out of range or inconsistent with the network.
    #[error("invalid training settings ({what}): {problem}")]
    Settings {
        /// Where the settings came from, e.g. `configs/train/baseline.toml`.
        what: String,
        /// What is wrong.
        problem: String,
    },
    /// A checkpoint directory is incomplete or belongs to something else.
    #[error("{path}: {problem}")]
    Checkpoint {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// An evaluation report (report.json) is missing a field or is not one.
    #[error("{path}: {problem}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The tensor backend returned data in an unexpected form.
    #[error("tensor backend: {0}")]
    Backend(String),
    /// The agent failed (tokenizer, sequence, decoder).
    #[error(transparent)]
    Agent(#[from] agent::AgentError),
    /// The runtime refused a program or session.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// Drawing a task sample failed.
    #[error(transparent)]
    Task(#[from] tasks::TaskError),
    /// Drawing one evaluation sample failed: which one, so it can be drawn again.
    #[error("sample {family} on {anatomy}, seed {seed}")]
    Sample {
        /// Task family.
        family: String,
        /// Anatomy of the catalogue.
        anatomy: String,
        /// Sample seed.
        seed: u64,
        /// What went wrong.
        source: tasks::TaskError,
    },
    /// The background thread that synthesises training samples stopped unexpectedly.
    #[error("the sample synthesis thread stopped: {0}")]
    Sampler(String),
}

/// Result alias for `train`.
pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> TrainError {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// A problem with a checkpoint or model file at `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, problem: impl Into<String>) -> TrainError {
        TrainError::Checkpoint {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
