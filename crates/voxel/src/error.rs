//! The error type of the `voxel` crate.

use std::path::PathBuf;

/// Everything that can go wrong in `voxel`. File errors carry the path so a user knows which
/// input to fix.
#[derive(Debug, thiserror::Error)]
pub enum VoxelError {
    /// The operating system refused to read or write a file.
    // Not marked as `source`: the message already includes the OS error, and chaining it
    // would print it twice.
    #[error("{path}: {cause}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },
    /// The file exists but is not a valid file of its format (bad magic, truncated, corrupt).
    #[error("{path}: {problem}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// The file's extension names no format we read or write.
    #[error("{path}: unknown file format (expected .nii, .nii.gz, .mgh or .mgz)")]
    UnknownFormat {
        /// The file concerned.
        path: PathBuf,
    },
    /// A file would overwrite one of the inputs.
    #[error("{path}: refusing to overwrite an input file")]
    WouldOverwriteInput {
        /// The file concerned.
        path: PathBuf,
    },
    /// Two volumes that must share a grid do not.
    #[error("grid mismatch: {0}")]
    GridMismatch(String),
    /// An argument is out of its documented range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A geometry is degenerate (zero-size, singular affine, non-positive spacing).
    #[error("invalid geometry: {0}")]
    InvalidGeometry(String),
    /// The operation would need more memory than the caller allowed.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A measurement needs at least one voxel in a mask, and the mask has none.
    #[error("empty mask: {0}")]
    EmptyMask(String),
}

/// Result alias for `voxel`.
pub type Result<T> = std::result::Result<T, VoxelError>;

impl VoxelError {
    pub(crate) fn format(path: &std::path::Path, problem: impl Into<String>) -> Self {
        VoxelError::Format {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        VoxelError::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }
}
