//! The one error type of the `vision` crate.

use std::path::PathBuf;

/// Everything that can go wrong when configuring, running, saving or loading a vision network.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A TOML network configuration did not parse.
    #[error("cannot parse the network configuration {origin}: {message}")]
    ConfigParse {
        /// The file (or preset name) the configuration came from.
        origin: String,
        /// What the parser said.
        message: String,
    },
    /// A configuration parsed but describes an impossible network.
    #[error("invalid network configuration `{name}`: {reason}")]
    InvalidConfig {
        /// The configuration's name.
        name: String,
        /// Which field is wrong and why.
        reason: String,
    },
    /// No configuration of that name ships with the crate.
    #[error("unknown vision preset `{0}` (known: tiny, small, paper; or pass a TOML file)")]
    UnknownPreset(String),
    /// The requested compute device is unknown or not built in.
    #[error("cannot use device `{name}`: {reason}")]
    Device {
        /// The name asked for.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// An input tensor or vector has the wrong shape for this network.
    #[error("bad input: {0}")]
    Shape(String),
    /// Voxel spacing must be finite and positive.
    #[error("voxel spacing must be finite and positive, got {0:?} mm")]
    Spacing([f64; 3]),
    /// The tensor backend returned data in an unexpected form (a bug, not a user error).
    #[error("tensor backend: {0}")]
    Backend(String),
    /// A checkpoint is missing, unreadable or does not match its configuration.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong with it and what to do.
        message: String,
    },
}

/// Short for `std::result::Result<T, VisionError>`.
pub type Result<T> = std::result::Result<T, VisionError>;
