//! DICOM series in, with geometry as dcm2niix computes it; DICOM SEG out.
//!
//! A path is a folder (scanned recursively), one file (classic or enhanced multi-frame), or a
//! zip archive of either. Image files are grouped into series by SeriesInstanceUID, split
//! further by orientation, size and pixel spacing when a scanner mixed them under one UID
//! (three-plane localizers). [`list_series`] describes each; [`read_series`] reads one into a
//! [`voxel::Image`]: voxel i = column, j = row, k = slices sorted by ImagePositionPatient
//! projected on the slice normal, slice step from the positions (never SliceThickness), LPS
//! turned into RAS, RescaleSlope/Intercept applied (CT in Hounsfield units). Gantry tilt,
//! missing slices, non-uniform spacing and 4-D series are refused with the numbers, never
//! resampled silently (see [`stack`]).
//!
//! On the command line a series is chosen as `DIR#SERIES_NUMBER`, `DIR#UID`, or `DIR#3:2` for
//! the second part of a split series ([`split_spec`]).
//!
//! # Transfer syntaxes
//!
//! Only pure-Rust codecs, so the binary builds anywhere without C libraries:
//! - uncompressed implicit VR little endian, explicit VR little and big endian;
//! - deflated explicit VR little endian (flate2);
//! - RLE lossless (dicom-rs);
//! - JPEG baseline 8-bit (process 1) and lossless (processes 14, 14 SV1) through
//!   `jpeg-decoder`; 12-bit lossy JPEG (extended, process 4) is not decoded by it and fails
//!   with [`DicomError::Decode`] naming the file;
//! - JPEG 2000 lossless and lossy (`openjp2`, the pure-Rust port of OpenJPEG).
//!
//! JPEG-LS and JPEG XL need C libraries (CharLS) or are rare in archives; they, and any other
//! syntax, fail with [`DicomError::UnsupportedTransferSyntax`] naming the syntax and the file.
//!
//! # DICOM SEG out
//!
//! [`read_spec_with_ref`] (or [`read_series_with_ref`], [`Scan::series_ref`]) gives, beside the
//! image, a [`SeriesRef`]: the source image (SOPInstanceUID, SOPClassUID, frame number,
//! position) of every voxel slice, the series, study and frame-of-reference UIDs, the grid, and
//! the patient and study elements to copy. [`write_seg`] writes masks on that image's grid as
//! one binary DICOM Segmentation object (SOP Class 1.2.840.10008.5.1.4.1.1.66.4, explicit VR
//! little endian) that files with the source study: a new series (Modality `SEG`), one segment
//! per mask (label from the caller, algorithm type `AUTOMATIC`, name `VoxelPrompt`, the
//! caller's SNOMED/DCM category and type codes or generic anatomical ones), 1-bit packed frames
//! for the slices where a segment is non-empty, each referencing its source slice (derivation
//! image, plane position, dimension index values), and the source series in
//! ReferencedSeriesSequence. A mask that was only reoriented (e.g. `to_ras`) is put back on the
//! source grid; any other grid is refused ([`DicomError::MaskGrid`]). Details in [`seg`]; read
//! back by pydicom and highdicom in `tests/seg.rs`.
//!
//! Patient name, ID and birth date are never read for an image or a listing, so nothing here
//! can log them; a [`SeriesRef`] holds them only to copy them into a SEG, in a field that has
//! no accessor and is not shown by `Debug`.

#![warn(missing_docs)]

pub mod error;
pub mod header;
pub mod pixels;
pub mod reference;
pub mod seg;
pub mod series;
pub mod source;
pub mod stack;

pub use error::{DicomError, Result};
pub use reference::{SeriesRef, SourceSlice};
pub use seg::{write_seg, write_seg_with, Code, SegOptions, SegWritten, Segment};
pub use series::{scan, Scan, Selector, SeriesInfo};

use std::path::{Path, PathBuf};
use voxel::Image;

/// Every series under `path` (folder, file or zip), ordered by series number.
pub fn list_series(path: &Path) -> Result<Vec<SeriesInfo>> {
    Ok(scan(path)?.series())
}

/// Reads one series of `path` as an image. Without a selector the path must hold exactly one
/// volume (series of several slices) or exactly one series; otherwise the error lists them.
pub fn read_series(path: &Path, selector: Option<&Selector>) -> Result<Image> {
    scan(path)?.read(selector)
}

/// [`read_series`] plus the [`SeriesRef`] a DICOM SEG of masks on the image's grid needs
/// ([`write_seg`]).
pub fn read_series_with_ref(
    path: &Path,
    selector: Option<&Selector>,
) -> Result<(Image, SeriesRef)> {
    scan(path)?.read_with_ref(selector)
}

/// Splits a command-line spec `PATH#SELECTOR` into the path and the selector. A path that
/// exists as given is taken whole, so file names containing `#` still work.
///
/// ```
/// let (path, sel) = dicom::split_spec(std::path::Path::new("/no/such/dir#7")).unwrap();
/// assert_eq!(path, std::path::PathBuf::from("/no/such/dir"));
/// assert_eq!(sel, Some(dicom::Selector::Number(7, None)));
/// ```
pub fn split_spec(spec: &Path) -> Result<(PathBuf, Option<Selector>)> {
    if spec.exists() {
        return Ok((spec.to_path_buf(), None));
    }
    let text = spec.to_string_lossy();
    match text.rsplit_once('#') {
        Some((path, selector)) => Ok((PathBuf::from(path), Some(selector.parse()?))),
        None => Ok((spec.to_path_buf(), None)),
    }
}

/// Reads `PATH` or `PATH#SELECTOR` (see [`split_spec`]).
pub fn read_spec(spec: &Path) -> Result<Image> {
    let (path, selector) = split_spec(spec)?;
    read_series(&path, selector.as_ref())
}

/// [`read_spec`] plus the [`SeriesRef`] a DICOM SEG of masks on the image's grid needs:
///
/// ```no_run
/// # fn main() -> dicom::Result<()> {
/// use std::path::Path;
/// let (image, source) = dicom::read_spec_with_ref(Path::new("study/#3"))?;
/// let mask = image.threshold(100.0); // any mask on the image's grid
/// dicom::write_seg(&source, &[dicom::Segment::new("liver", &mask)], Path::new("liver.seg.dcm"))?;
/// # Ok(())
/// # }
/// ```
pub fn read_spec_with_ref(spec: &Path) -> Result<(Image, SeriesRef)> {
    let (path, selector) = split_spec(spec)?;
    read_series_with_ref(&path, selector.as_ref())
}

/// Whether `path` is something this crate reads rather than a NIfTI/MGH file: a folder, a zip
/// archive, a DICOM Part 10 file, or any of them followed by `#SELECTOR`.
pub fn is_dicom_input(spec: &Path) -> bool {
    let Ok((path, selector)) = split_spec(spec) else {
        return false;
    };
    if selector.is_some() || path.is_dir() {
        return true;
    }
    use std::io::Read;
    let Ok(f) = std::fs::File::open(&path) else {
        return false;
    };
    let mut head = Vec::with_capacity(132);
    if f.take(132).read_to_end(&mut head).is_err() {
        return false;
    }
    head.starts_with(b"PK\x03\x04") || source::is_dicom(&head)
}
