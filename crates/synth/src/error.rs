//! The error type of the `synth` crate.

use std::path::PathBuf;

/// Everything that can go wrong while synthesising subjects.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An imaging operation of the `voxel` crate failed.
    #[error(transparent)]
    Voxel(#[from] voxel::VoxelError),
    /// A configuration file (vocabulary, contrasts) is malformed.
    #[error("{what}: {problem}")]
    Config {
        /// Which configuration, e.g. `configs/synth/vocabulary.toml`.
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An argument is out of its documented range (unknown contrast name, zero subjects, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The anatomy cache is missing a file; run `python3 scripts/fetch_anatomy.py`.
    #[error(
        "{path}: anatomy source not found; run `python3 scripts/fetch_anatomy.py` to fetch it"
    )]
    MissingSource {
        /// The file that was expected.
        path: PathBuf,
    },
    /// Writing an output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An anatomy label has no tissue class, so it could not be given intensities.
    #[error("anatomy label {label} has no tissue class; add it to `synth::labels::tissue_of_label` or remap the atlas to FreeSurfer ids")]
    UnknownLabel {
        /// The label id.
        label: i32,
    },
    /// A lesion could not be placed (its site has no voxels in this subject).
    #[error("cannot place lesion: {0}")]
    Placement(String),
}

/// Result alias for `synth`.
pub type Result<T> = std::result::Result<T, SynthError>;
