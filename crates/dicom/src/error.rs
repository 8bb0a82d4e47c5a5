//! The error type of the `dicom` crate. Every variant names the file (or the series and its
//! folder) and what is wrong, so a user knows which input to fix.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing DICOM. `path` is the file as the user would
/// find it: a file on disk, or `archive.zip!member` for a file inside a zip.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The operating system refused to read or write a file.
    #[error("{path}: {cause}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },
    /// A file starts like DICOM but cannot be parsed (truncated, corrupt).
    #[error("{path}: not a readable DICOM file: {problem}")]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// What the parser said.
        problem: String,
    },
    /// An element is missing or its value cannot be read as what the standard says it is
    /// (a wrong VR, a wrong number of values).
    #[error("{path}: {element} {problem}")]
    BadElement {
        /// The file concerned.
        path: PathBuf,
        /// Keyword and tag, e.g. `ImagePositionPatient (0020,0032)`.
        element: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An image file whose PixelData element is absent.
    #[error("{path}: has no pixel data (PixelData (7FE0,0010) is missing)")]
    NoPixelData {
        /// The file concerned.
        path: PathBuf,
    },
    /// The pixel data is compressed with a transfer syntax we cannot decode.
    #[error(
        "{path}: transfer syntax {name} ({uid}) is not supported; readable are uncompressed \
         (implicit/explicit little endian, explicit big endian), deflate, RLE lossless, \
         8-bit JPEG baseline, JPEG lossless and JPEG 2000; convert the file (e.g. `gdcmconv --raw`)"
    )]
    UnsupportedTransferSyntax {
        /// The file concerned.
        path: PathBuf,
        /// Transfer syntax UID.
        uid: String,
        /// Its name from the standard, or "unknown".
        name: String,
    },
    /// A valid image we do not read (colour, palette, more than one sample per pixel).
    #[error("{path}: {problem}")]
    Unsupported {
        /// The file concerned.
        path: PathBuf,
        /// What we do not support.
        problem: String,
    },
    /// The codec failed on the pixel data (corrupt compressed stream, wrong length).
    #[error("{path}: cannot decode pixel data: {problem}")]
    Decode {
        /// The file concerned.
        path: PathBuf,
        /// What the decoder said.
        problem: String,
    },
    /// The slices of a series do not form one regular grid (gantry tilt, missing slices,
    /// non-uniform spacing, duplicate positions). Never resampled silently.
    #[error("{path}: series {series}: {problem}")]
    Geometry {
        /// The folder, file or zip the series was found in.
        path: PathBuf,
        /// The series' selector, e.g. `3` or `3:2`.
        series: String,
        /// What is irregular, with the numbers.
        problem: String,
    },
    /// A path holds no DICOM image at all.
    #[error("{path}: no DICOM image found{}", skipped_note(*.skipped))]
    NoImages {
        /// The path scanned.
        path: PathBuf,
        /// Files that were not DICOM or held no image (DICOMDIR, reports).
        skipped: usize,
    },
    /// No selector was given and the path holds several volumes.
    #[error(
        "{path}: holds {count} series; choose one as {path}#SERIES_NUMBER or {path}#UID:\n{list}"
    )]
    Ambiguous {
        /// The path scanned.
        path: PathBuf,
        /// Number of series found.
        count: usize,
        /// One line per series (no patient data).
        list: String,
    },
    /// The selector matches no series (or several).
    #[error("{path}: {problem} #{selector}; series found:\n{list}")]
    NoMatch {
        /// The path scanned.
        path: PathBuf,
        /// The selector as given.
        selector: String,
        /// "no series matches" or "several series match".
        problem: String,
        /// One line per series (no patient data).
        list: String,
    },
    /// A selector that is neither a series number nor a UID.
    #[error(
        "invalid series selector #{0}: expected a SeriesNumber (e.g. #3), a SeriesInstanceUID, \
         optionally with :PART when a series was split (e.g. #3:2)"
    )]
    BadSelector(String),
    /// A zip archive that cannot be read.
    #[error("{path}: cannot read zip archive: {problem}")]
    Zip {
        /// The archive.
        path: PathBuf,
        /// What the zip reader said.
        problem: String,
    },
    /// A mask handed to the SEG writer is not on the grid of the series it is to reference.
    #[error("segment \"{segment}\": {problem}")]
    MaskGrid {
        /// The segment's label.
        segment: String,
        /// Both grids, and what to do.
        problem: String,
    },
    /// Writing a DICOM object failed.
    #[error("{path}: cannot write DICOM: {problem}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        problem: String,
    },
}

fn skipped_note(skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(" ({skipped} files skipped: not DICOM, or DICOM without an image)")
    }
}

/// Result alias for `dicom`.
pub type Result<T> = std::result::Result<T, DicomError>;

impl DicomError {
    pub(crate) fn bad_element(
        path: &std::path::Path,
        element: &str,
        problem: impl Into<String>,
    ) -> Self {
        DicomError::BadElement {
            path: path.to_path_buf(),
            element: element.to_string(),
            problem: problem.into(),
        }
    }
}
