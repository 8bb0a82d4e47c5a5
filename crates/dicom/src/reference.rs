//! What an object derived from a series (a DICOM SEG) needs to know about it: its identity, the
//! image of every voxel slice, the grid, and the patient and study modules to copy so the
//! derived object files with its source. Obtained with [`crate::Scan::series_ref`],
//! [`crate::read_series_with_ref`] or [`crate::read_spec_with_ref`].
//!
//! The copied patient and study elements are kept in [`CopiedAttributes`], which has no
//! accessor and whose `Debug` shows only their count, so nothing here can log them.

use crate::error::Result;
use crate::source::Entry;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use std::path::PathBuf;
use voxel::Geometry;

/// The image one voxel slice was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSlice {
    /// SOPClassUID of the file.
    pub sop_class_uid: String,
    /// SOPInstanceUID of the file.
    pub sop_instance_uid: String,
    /// Frame within a multi-frame file (1-based, as ReferencedFrameNumber); `None` for a
    /// single-frame image.
    pub frame_number: Option<usize>,
    /// ImagePositionPatient of the slice (LPS mm).
    pub position: [f64; 3],
}

/// Patient and study elements copied verbatim from the source into a derived object. Opaque:
/// no accessor, and `Debug` prints only how many there are.
#[derive(Clone, Default)]
pub struct CopiedAttributes(pub(crate) Vec<InMemElement>);

impl std::fmt::Debug for CopiedAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CopiedAttributes({} elements, not shown)", self.0.len())
    }
}

/// A series as a derived object references it. `slices[k]` is the source image of voxel
/// slice `k` of the image [`crate::Scan::read`] returns for the same series, so a mask on that
/// image's grid maps back to the source slice by slice.
#[derive(Clone, Debug)]
pub struct SeriesRef {
    /// The folder, file or zip the series was found in (for messages).
    pub path: PathBuf,
    /// The series' selector (`3`, `3:2`, or its UID), for messages.
    pub selector: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// SeriesNumber, when given.
    pub series_number: Option<i64>,
    /// StudyInstanceUID (empty when the source has none).
    pub study_uid: String,
    /// FrameOfReferenceUID, when given.
    pub frame_of_reference_uid: Option<String>,
    /// Modality of the source (CT, MR, …).
    pub modality: String,
    /// The grid of the image read from the series (shape and RAS affine).
    pub geometry: Geometry,
    /// ImageOrientationPatient of the source (LPS direction cosines, as stored).
    pub orientation: [f64; 6],
    /// PixelSpacing of the source: between rows, then between columns (mm).
    pub pixel_spacing: [f64; 2],
    /// Distance between slices along the normal (mm), from the positions.
    pub slice_spacing_mm: f64,
    /// The source image of every voxel slice, in voxel slice order.
    pub slices: Vec<SourceSlice>,
    pub(crate) copied: CopiedAttributes,
}

impl SeriesRef {
    /// SOPClassUID of the source images (of the first slice; a series has one class).
    pub fn sop_class_uid(&self) -> &str {
        &self.slices[0].sop_class_uid
    }

    /// Rows and Columns of the source images.
    pub fn rows_columns(&self) -> (usize, usize) {
        let [columns, rows, _] = self.geometry.shape();
        (rows, columns)
    }
}

/// Patient, general study and patient study elements (PS3.3 C.7.1.1, C.7.2.1, C.7.2.2) plus
/// the character set they are encoded in. Copied when present; the writer adds the type 2
/// ones a source lacked as empty.
pub(crate) const COPIED_TAGS: [dicom_core::Tag; 19] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::ISSUER_OF_PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::PATIENT_AGE,
    tags::PATIENT_SIZE,
    tags::PATIENT_WEIGHT,
    tags::PATIENT_IDENTITY_REMOVED,
    tags::DEIDENTIFICATION_METHOD,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
    tags::STUDY_DESCRIPTION,
    tags::POSITION_REFERENCE_INDICATOR,
];

/// Reads the elements of [`COPIED_TAGS`] from one file of the series.
pub(crate) fn copied_attributes(entry: &Entry) -> Result<CopiedAttributes> {
    let bytes = entry.bytes()?;
    let obj = crate::header::parse_header(entry, &bytes)?;
    Ok(CopiedAttributes(
        COPIED_TAGS
            .iter()
            .filter_map(|&tag| obj.get(tag).cloned())
            .collect(),
    ))
}
