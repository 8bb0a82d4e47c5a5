//! What one DICOM file says about its frames: series identity, in-plane geometry, position and
//! rescale of every frame (classic one-frame images and enhanced multi-frame ones with
//! functional groups alike). Patient-identifying elements are never read here; a SEG's copy of
//! the patient and study modules is taken by [`crate::reference`], kept opaque.

use crate::error::{DicomError, Result};
use crate::source::{is_dicom, Entry};
use crate::stack::Plane;
use dicom_core::header::HasLength;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemDicomObject;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use std::path::Path;

/// Tag and keyword of an element, for messages.
type Named = (dicom_core::Tag, &'static str);

const IMAGE_POSITION: Named = (tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient");
const IMAGE_ORIENTATION: Named = (tags::IMAGE_ORIENTATION_PATIENT, "ImageOrientationPatient");
const PIXEL_SPACING: Named = (tags::PIXEL_SPACING, "PixelSpacing");
const RESCALE_SLOPE: Named = (tags::RESCALE_SLOPE, "RescaleSlope");
const RESCALE_INTERCEPT: Named = (tags::RESCALE_INTERCEPT, "RescaleIntercept");
const SLICE_THICKNESS: Named = (tags::SLICE_THICKNESS, "SliceThickness");
const SPACING_BETWEEN: Named = (tags::SPACING_BETWEEN_SLICES, "SpacingBetweenSlices");

/// Geometry and scaling of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameHeader {
    /// Frame index inside its file (0 for classic images).
    pub frame: usize,
    /// ImagePositionPatient (LPS mm), when given.
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient, when given.
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing (row, column mm); 1 mm when absent, as dcm2niix.
    pub pixel_spacing: [f64; 2],
    /// RescaleSlope, RescaleIntercept (1, 0 when absent).
    pub rescale: (f64, f64),
}

/// The header of one image file.
#[derive(Clone, Debug)]
pub struct FileHeader {
    /// Index of the file in the scanned entries.
    pub entry: usize,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// SeriesNumber, when given.
    pub series_number: Option<i64>,
    /// SeriesDescription (may be empty).
    pub description: String,
    /// Modality, e.g. `CT`, `MR`.
    pub modality: String,
    /// Rows and Columns.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
    /// InstanceNumber, for a stable order of ties.
    pub instance_number: i64,
    /// Transfer syntax UID.
    pub transfer_syntax: String,
    /// SpacingBetweenSlices, else SliceThickness: the slice size of single-slice images.
    pub slice_mm: Option<f64>,
    /// Every frame of the file.
    pub frames: Vec<FrameHeader>,
    /// SOPInstanceUID (what a derived object such as a SEG references).
    pub sop_instance_uid: String,
    /// SOPClassUID.
    pub sop_class_uid: String,
    /// StudyInstanceUID.
    pub study_uid: String,
    /// FrameOfReferenceUID, when given.
    pub frame_of_reference_uid: Option<String>,
}

/// The elements of `bytes` (the file `entry`) before PixelData.
pub(crate) fn parse_header(entry: &Entry, bytes: &[u8]) -> Result<DefaultDicomObject> {
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|e| DicomError::Parse {
            path: entry.name.clone(),
            problem: e.to_string(),
        })
}

/// Reads the header of `entry` (everything before PixelData). `Ok(None)` for files that are not
/// DICOM or hold no image (DICOMDIR, structured reports, presentation states).
pub fn read_header(index: usize, entry: &Entry) -> Result<Option<FileHeader>> {
    let bytes = entry.bytes()?;
    if !is_dicom(&bytes) {
        return Ok(None);
    }
    let obj = parse_header(entry, &bytes)?;
    let path = entry.name.as_path();
    let (Some(rows), Some(columns)) = (
        int(&obj, tags::ROWS, "Rows", path)?,
        int(&obj, tags::COLUMNS, "Columns", path)?,
    ) else {
        return Ok(None);
    };
    if rows <= 0 || columns <= 0 {
        return Err(DicomError::bad_element(
            path,
            "Rows/Columns",
            format!("are {rows}×{columns}; an image needs at least one pixel"),
        ));
    }
    let series_uid = string(&obj, tags::SERIES_INSTANCE_UID).unwrap_or_default();
    let frames_count = int(&obj, tags::NUMBER_OF_FRAMES, "NumberOfFrames", path)?
        .unwrap_or(1)
        .max(1) as usize;
    let shared = first_item(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    if let Some(items) = per_frame {
        if items.len() != frames_count {
            return Err(DicomError::bad_element(
                path,
                "PerFrameFunctionalGroupsSequence (5200,9230)",
                format!("has {} items for {frames_count} frames", items.len()),
            ));
        }
    }
    let mut frames = Vec::with_capacity(frames_count);
    for frame in 0..frames_count {
        let per = per_frame.map(|items| &items[frame]);
        // Functional groups first (per frame, then shared), then the top level, as the
        // enhanced IODs define it; classic images only have the top level.
        let lookup = |seq: dicom_core::Tag, named: Named, n: usize| -> Result<Option<Vec<f64>>> {
            for group in [per, shared].into_iter().flatten() {
                if let Some(item) = first_item(group, seq) {
                    if let Some(v) = floats(item, named, n, path)? {
                        return Ok(Some(v));
                    }
                }
            }
            floats(&obj, named, n, path)
        };
        let position =
            lookup(tags::PLANE_POSITION_SEQUENCE, IMAGE_POSITION, 3)?.map(|v| [v[0], v[1], v[2]]);
        let orientation = lookup(tags::PLANE_ORIENTATION_SEQUENCE, IMAGE_ORIENTATION, 6)?
            .map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]);
        let pixel_spacing = lookup(tags::PIXEL_MEASURES_SEQUENCE, PIXEL_SPACING, 2)?
            .map_or([1.0, 1.0], |v| [v[0], v[1]]);
        let slope = lookup(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, RESCALE_SLOPE, 1)?;
        let intercept = lookup(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            RESCALE_INTERCEPT,
            1,
        )?;
        let slope = slope.map_or(1.0, |v| v[0]);
        if slope == 0.0 {
            return Err(DicomError::bad_element(
                path,
                "RescaleSlope (0028,1053)",
                "is 0, which would erase every value",
            ));
        }
        frames.push(FrameHeader {
            frame,
            position,
            orientation,
            pixel_spacing,
            rescale: (slope, intercept.map_or(0.0, |v| v[0])),
        });
    }
    let slice_mm = match floats(&obj, SPACING_BETWEEN, 1, path)? {
        Some(v) if v[0] > 0.0 => Some(v[0]),
        _ => floats(&obj, SLICE_THICKNESS, 1, path)?.map(|v| v[0]),
    };
    Ok(Some(FileHeader {
        entry: index,
        series_uid,
        series_number: int(&obj, tags::SERIES_NUMBER, "SeriesNumber", path)?,
        description: string(&obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        modality: string(&obj, tags::MODALITY).unwrap_or_default(),
        rows: rows as usize,
        columns: columns as usize,
        instance_number: int(&obj, tags::INSTANCE_NUMBER, "InstanceNumber", path)?.unwrap_or(0),
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_string(),
        slice_mm,
        frames,
        sop_instance_uid: string(&obj, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        sop_class_uid: string(&obj, tags::SOP_CLASS_UID).unwrap_or_default(),
        study_uid: string(&obj, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        frame_of_reference_uid: string(&obj, tags::FRAME_OF_REFERENCE_UID)
            .filter(|s| !s.is_empty()),
    }))
}

impl FileHeader {
    /// The in-plane geometry of frame `f`, when the file gives an orientation.
    pub fn plane(&self, f: usize) -> Option<Plane> {
        let frame = &self.frames[f];
        frame.orientation.map(|orientation| Plane {
            orientation,
            pixel_spacing: frame.pixel_spacing,
        })
    }
}

fn first_item(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<&InMemDicomObject> {
    obj.get(tag).and_then(|e| e.items()).and_then(|i| i.first())
}

fn string(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
}

fn tag_name(tag: dicom_core::Tag, keyword: &str) -> String {
    format!("{keyword} ({:04X},{:04X})", tag.group(), tag.element())
}

/// An integer element; an element that is present but not an integer is an error.
fn int(
    obj: &InMemDicomObject,
    tag: dicom_core::Tag,
    keyword: &str,
    path: &Path,
) -> Result<Option<i64>> {
    let Some(e) = obj.get(tag) else {
        return Ok(None);
    };
    if e.is_empty() {
        return Ok(None);
    }
    e.to_int::<i64>().map(Some).map_err(|err| {
        DicomError::bad_element(
            path,
            &tag_name(tag, keyword),
            format!("is not an integer: {err}"),
        )
    })
}

/// A numeric element with exactly `n` values; present but unreadable is an error (a wrong VR).
fn floats(
    obj: &InMemDicomObject,
    (tag, keyword): Named,
    n: usize,
    path: &Path,
) -> Result<Option<Vec<f64>>> {
    let Some(e) = obj.get(tag) else {
        return Ok(None);
    };
    if e.is_empty() {
        return Ok(None);
    }
    let values = e.to_multi_float64().map_err(|err| {
        DicomError::bad_element(
            path,
            &tag_name(tag, keyword),
            format!("is not {n} number(s) (VR {}): {err}", e.vr()),
        )
    })?;
    if values.len() != n || values.iter().any(|v| !v.is_finite()) {
        return Err(DicomError::bad_element(
            path,
            &tag_name(tag, keyword),
            format!("has values {values:?}; expected {n} finite number(s)"),
        ));
    }
    Ok(Some(values))
}
