//! DICOM SEG out: binary masks on the grid of a series read by this crate, written as one
//! DICOM Segmentation object (SOP Class 1.2.840.10008.5.1.4.1.1.66.4, explicit VR little
//! endian) that references the source series slice by slice.
//!
//! What the file holds:
//! - Patient, General Study and Patient Study modules copied from the source (so the SEG files
//!   with it), the source's FrameOfReferenceUID; a new SeriesInstanceUID and SOPInstanceUID
//!   (`2.25.<random UUID as an integer>`), Modality `SEG`, SeriesNumber and SeriesDescription
//!   from [`SegOptions`]; equipment: VoxelPrompt and the crate version.
//! - Segmentation Image module: SegmentationType `BINARY`, 1 bit allocated and stored, frames
//!   packed bit after bit (least significant bit first, no padding between frames).
//! - One Segment Sequence item per [`Segment`], numbered from 1 in the order given:
//!   SegmentLabel (the caller's vocabulary name), SegmentAlgorithmType `AUTOMATIC`,
//!   SegmentAlgorithmName `VoxelPrompt` with an algorithm identification (family: DCM 123110
//!   "Artificial Intelligence"), and the caller's category and type codes (by default SCT
//!   91723000 "Anatomical Structure" / SCT 123037004 "Body structure").
//! - Frames only for source slices where a segment is non-empty (a segment that is empty
//!   everywhere gets one empty frame on the first slice, so every segment has a frame), ordered
//!   by segment, then by slice along the slice normal.
//! - Shared functional groups: PixelMeasures (PixelSpacing; SliceThickness and
//!   SpacingBetweenSlices = the slice step) and PlaneOrientation (the source's
//!   ImageOrientationPatient). Per frame: FrameContent with DimensionIndexValues (segment
//!   number, 1-based slice index along the normal), PlanePosition (the source slice's
//!   ImagePositionPatient), DerivationImage / SourceImage (the source slice's SOP class and
//!   instance UIDs, ReferencedFrameNumber for a multi-frame source, SpatialLocationsPreserved
//!   `YES`), SegmentIdentification.
//! - Dimension Organization (segment number, then ImagePositionPatient; type `3D`) and a
//!   ReferencedSeriesSequence listing every source instance.

use crate::error::{DicomError, Result};
use crate::reference::SeriesRef;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::mem::InMemElement;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use std::borrow::Cow;
use std::path::Path;
use voxel::{Affine, Geometry, Mask, Orientation};

/// SOP Class UID of Segmentation Storage.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// Largest affine difference (mm) between a mask's grid and the source's that still counts as
/// the same grid (the reader's own precision).
pub const GRID_TOL_MM: f64 = 1e-3;

/// A coded concept (code value, coding scheme designator, code meaning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// CodeValue, e.g. `10200004`.
    pub value: String,
    /// CodingSchemeDesignator, e.g. `SCT`, `DCM`.
    pub scheme: String,
    /// CodeMeaning, e.g. `Liver`.
    pub meaning: String,
}

impl Code {
    /// Any code.
    pub fn new(
        value: impl Into<String>,
        scheme: impl Into<String>,
        meaning: impl Into<String>,
    ) -> Code {
        Code {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }

    /// A SNOMED CT code.
    pub fn sct(value: impl Into<String>, meaning: impl Into<String>) -> Code {
        Code::new(value, "SCT", meaning)
    }

    /// SCT 91723000 "Anatomical Structure": the default segmented property category.
    pub fn anatomical_structure() -> Code {
        Code::sct("91723000", "Anatomical Structure")
    }

    /// SCT 123037004 "Body structure": the default segmented property type, when nothing more
    /// specific is known.
    pub fn body_structure() -> Code {
        Code::sct("123037004", "Body structure")
    }
}

/// One segment: a label from the vocabulary, its mask, and its property codes.
#[derive(Clone, Debug)]
pub struct Segment<'a> {
    /// SegmentLabel (LO: at most 64 characters, no backslash).
    pub label: String,
    /// The mask, on the grid of the image read from the source series (or an axis permutation
    /// or flip of it, e.g. after `to_ras`, which is undone).
    pub mask: &'a Mask,
    /// SegmentedPropertyCategoryCodeSequence.
    pub category: Code,
    /// SegmentedPropertyTypeCodeSequence.
    pub property_type: Code,
}

impl<'a> Segment<'a> {
    /// A segment with the generic codes ([`Code::anatomical_structure`],
    /// [`Code::body_structure`]).
    pub fn new(label: impl Into<String>, mask: &'a Mask) -> Segment<'a> {
        Segment {
            label: label.into(),
            mask,
            category: Code::anatomical_structure(),
            property_type: Code::body_structure(),
        }
    }

    /// The same segment with the given category and type codes.
    pub fn with_codes(mut self, category: Code, property_type: Code) -> Segment<'a> {
        self.category = category;
        self.property_type = property_type;
        self
    }
}

/// Series-level choices of the written SEG.
#[derive(Clone, Debug, PartialEq)]
pub struct SegOptions {
    /// SeriesNumber of the SEG series.
    pub series_number: i64,
    /// SeriesDescription.
    pub series_description: String,
    /// ContentLabel (CS: upper case letters, digits, space, underscore; at most 16).
    pub content_label: String,
}

impl Default for SegOptions {
    fn default() -> SegOptions {
        SegOptions {
            series_number: 300,
            series_description: "VoxelPrompt segmentation".into(),
            content_label: "VOXELPROMPT".into(),
        }
    }
}

/// What [`write_seg`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct SegWritten {
    /// SOPInstanceUID of the SEG.
    pub sop_instance_uid: String,
    /// SeriesInstanceUID of the SEG (new).
    pub series_uid: String,
    /// NumberOfFrames.
    pub frames: usize,
    /// Frames of each segment, in segment order.
    pub frames_per_segment: Vec<usize>,
}

/// Writes `segments` (binary masks on the grid of the image read from `source`) as one DICOM
/// SEG at `out`, with [`SegOptions::default`]. See the module docs for what it holds.
pub fn write_seg(source: &SeriesRef, segments: &[Segment], out: &Path) -> Result<SegWritten> {
    write_seg_with(source, segments, &SegOptions::default(), out)
}

/// [`write_seg`] with series-level choices.
pub fn write_seg_with(
    source: &SeriesRef,
    segments: &[Segment],
    options: &SegOptions,
    out: &Path,
) -> Result<SegWritten> {
    let write_err = |problem: String| DicomError::Write {
        path: out.to_path_buf(),
        problem,
    };
    if segments.is_empty() {
        return Err(write_err("no segments to write".into()));
    }
    for s in segments {
        if s.label.trim().is_empty() || s.label.chars().count() > 64 || s.label.contains('\\') {
            return Err(write_err(format!(
                "segment label {:?} must be 1 to 64 characters without a backslash",
                s.label
            )));
        }
    }
    let label_ok = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '_';
    if options.content_label.is_empty()
        || options.content_label.len() > 16
        || !options.content_label.chars().all(label_ok)
    {
        return Err(write_err(format!(
            "content label {:?} must be 1 to 16 upper-case letters, digits, spaces or underscores",
            options.content_label
        )));
    }
    let masks: Vec<Cow<Mask>> = segments
        .iter()
        .map(|s| on_source_grid(source, s))
        .collect::<Result<_>>()?;
    let [nx, ny, nz] = source.geometry.shape();
    let frame_len = nx * ny;
    if source.slices.len() != nz {
        return Err(write_err(format!(
            "the series reference lists {} slices for a grid of {nz}",
            source.slices.len()
        )));
    }

    // Frames: (segment index, slice k), segment-major, slices along the normal.
    let mut frames: Vec<(usize, usize)> = Vec::new();
    let mut frames_per_segment = Vec::with_capacity(segments.len());
    for (s, mask) in masks.iter().enumerate() {
        let before = frames.len();
        for k in 0..nz {
            if mask.data()[k * frame_len..(k + 1) * frame_len]
                .iter()
                .any(|&v| v)
            {
                frames.push((s, k));
            }
        }
        if frames.len() == before {
            frames.push((s, 0));
        }
        frames_per_segment.push(frames.len() - before);
    }
    let pixel_data = pack_bits(
        frames
            .iter()
            .map(|&(s, k)| &masks[s].data()[k * frame_len..(k + 1) * frame_len]),
    );

    let sop_instance_uid = new_uid();
    let series_uid = new_uid();
    let (date, time) = now_da_tm();
    let mut obj = InMemDicomObject::new_empty();

    // Patient, General Study, Patient Study: copied; type 2 elements present even if empty.
    for e in &source.copied.0 {
        obj.put(e.clone());
    }
    for (tag, vr) in [
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::STUDY_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::STUDY_ID, VR::SH),
        (tags::ACCESSION_NUMBER, VR::SH),
        (tags::POSITION_REFERENCE_INDICATOR, VR::LO),
    ] {
        if obj.get(tag).is_none() {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        }
    }
    let copied_study_uid = obj
        .get(tags::STUDY_INSTANCE_UID)
        .and_then(|e| e.to_str().ok())
        .is_some_and(|s| !s.trim_end_matches(['\0', ' ']).is_empty());
    if !copied_study_uid {
        let uid = if source.study_uid.is_empty() {
            new_uid()
        } else {
            source.study_uid.clone()
        };
        obj.put(text(tags::STUDY_INSTANCE_UID, VR::UI, &uid));
    }

    // SOP Common, General Series, Segmentation Series, Frame of Reference, Equipment.
    obj.put(text(tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE));
    obj.put(text(tags::SOP_INSTANCE_UID, VR::UI, &sop_instance_uid));
    obj.put(text(tags::INSTANCE_CREATION_DATE, VR::DA, &date));
    obj.put(text(tags::INSTANCE_CREATION_TIME, VR::TM, &time));
    obj.put(text(tags::MODALITY, VR::CS, "SEG"));
    obj.put(text(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid));
    obj.put(text(
        tags::SERIES_NUMBER,
        VR::IS,
        &options.series_number.to_string(),
    ));
    obj.put(text(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &options.series_description,
    ));
    obj.put(text(tags::SERIES_DATE, VR::DA, &date));
    obj.put(text(tags::SERIES_TIME, VR::TM, &time));
    let frame_of_reference = source
        .frame_of_reference_uid
        .clone()
        .unwrap_or_else(new_uid);
    obj.put(text(
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &frame_of_reference,
    ));
    obj.put(text(tags::MANUFACTURER, VR::LO, "VoxelPrompt"));
    obj.put(text(tags::MANUFACTURER_MODEL_NAME, VR::LO, "voxelprompt"));
    obj.put(text(tags::DEVICE_SERIAL_NUMBER, VR::LO, "0"));
    obj.put(text(
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    ));

    // General Image, Image Pixel, Segmentation Image.
    obj.put(text(tags::INSTANCE_NUMBER, VR::IS, "1"));
    obj.put(text(tags::CONTENT_DATE, VR::DA, &date));
    obj.put(text(tags::CONTENT_TIME, VR::TM, &time));
    obj.put(strs(tags::IMAGE_TYPE, VR::CS, &["DERIVED", "PRIMARY"]));
    obj.put(us(tags::SAMPLES_PER_PIXEL, 1));
    obj.put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    obj.put(us(tags::ROWS, ny as u16));
    obj.put(us(tags::COLUMNS, nx as u16));
    obj.put(us(tags::BITS_ALLOCATED, 1));
    obj.put(us(tags::BITS_STORED, 1));
    obj.put(us(tags::HIGH_BIT, 0));
    obj.put(us(tags::PIXEL_REPRESENTATION, 0));
    obj.put(text(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"));
    obj.put(text(tags::CONTENT_LABEL, VR::CS, &options.content_label));
    obj.put(text(
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        "Segmentation by VoxelPrompt",
    ));
    obj.put(DataElement::new(
        tags::CONTENT_CREATOR_NAME,
        VR::PN,
        PrimitiveValue::Empty,
    ));
    obj.put(text(tags::SEGMENTATION_TYPE, VR::CS, "BINARY"));
    obj.put(seq(
        tags::SEGMENT_SEQUENCE,
        segments
            .iter()
            .enumerate()
            .map(|(s, seg)| segment_item(s + 1, seg))
            .collect(),
    ));

    // Multi-frame Dimension.
    let dimension_uid = new_uid();
    obj.put(seq(
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![item(vec![text(
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            &dimension_uid,
        )])],
    ));
    obj.put(text(tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "3D"));
    let dimension = |pointer: Tag, group: Tag, label: &str| {
        item(vec![
            text(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_uid),
            DataElement::new(
                tags::DIMENSION_INDEX_POINTER,
                VR::AT,
                PrimitiveValue::Tags(vec![pointer].into()),
            ),
            DataElement::new(
                tags::FUNCTIONAL_GROUP_POINTER,
                VR::AT,
                PrimitiveValue::Tags(vec![group].into()),
            ),
            text(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label),
        ])
    };
    obj.put(seq(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dimension(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            dimension(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "ImagePositionPatient",
            ),
        ],
    ));

    // Multi-frame Functional Groups.
    obj.put(text(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &frames.len().to_string(),
    ));
    let measures = item(vec![
        strs(tags::PIXEL_SPACING, VR::DS, &source.pixel_spacing.map(ds)),
        text(tags::SLICE_THICKNESS, VR::DS, &ds(source.slice_spacing_mm)),
        text(
            tags::SPACING_BETWEEN_SLICES,
            VR::DS,
            &ds(source.slice_spacing_mm),
        ),
    ]);
    let orientation = item(vec![strs(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        &source.orientation.map(ds),
    )]);
    obj.put(seq(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![item(vec![
            seq(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]),
            seq(tags::PLANE_ORIENTATION_SEQUENCE, vec![orientation]),
        ])],
    ));
    let per_frame = frames
        .iter()
        .map(|&(s, k)| {
            let slice = &source.slices[k];
            let mut source_image = vec![
                text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &slice.sop_class_uid),
                text(
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    &slice.sop_instance_uid,
                ),
            ];
            if let Some(f) = slice.frame_number {
                source_image.push(text(tags::REFERENCED_FRAME_NUMBER, VR::IS, &f.to_string()));
            }
            // The frame is on the source slice's pixel grid.
            source_image.push(text(tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES"));
            source_image.push(seq(
                tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                vec![code_item(&Code::new(
                    "121322",
                    "DCM",
                    "Source image for image processing operation",
                ))],
            ));
            item(vec![
                seq(
                    tags::DERIVATION_IMAGE_SEQUENCE,
                    vec![item(vec![
                        seq(tags::SOURCE_IMAGE_SEQUENCE, vec![item(source_image)]),
                        seq(
                            tags::DERIVATION_CODE_SEQUENCE,
                            vec![code_item(&Code::new("113076", "DCM", "Segmentation"))],
                        ),
                    ])],
                ),
                seq(
                    tags::FRAME_CONTENT_SEQUENCE,
                    vec![item(vec![DataElement::new(
                        tags::DIMENSION_INDEX_VALUES,
                        VR::UL,
                        PrimitiveValue::U32(vec![s as u32 + 1, k as u32 + 1].into()),
                    )])],
                ),
                seq(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![strs(
                        tags::IMAGE_POSITION_PATIENT,
                        VR::DS,
                        &slice.position.map(ds),
                    )])],
                ),
                seq(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![item(vec![us(
                        tags::REFERENCED_SEGMENT_NUMBER,
                        s as u16 + 1,
                    )])],
                ),
            ])
        })
        .collect();
    obj.put(seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));

    // Common Instance Reference: every source instance, once.
    let mut instances: Vec<(&str, &str)> = Vec::new();
    for slice in &source.slices {
        let pair = (
            slice.sop_class_uid.as_str(),
            slice.sop_instance_uid.as_str(),
        );
        if !instances.contains(&pair) {
            instances.push(pair);
        }
    }
    obj.put(seq(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![item(vec![
            text(tags::SERIES_INSTANCE_UID, VR::UI, &source.series_uid),
            seq(
                tags::REFERENCED_INSTANCE_SEQUENCE,
                instances
                    .iter()
                    .map(|&(class, instance)| {
                        item(vec![
                            text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class),
                            text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance),
                        ])
                    })
                    .collect(),
            ),
        ])],
    ));

    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(pixel_data.into()),
    ));

    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_version_name("VOXELPROMPT"),
        )
        .map_err(|e| write_err(e.to_string()))?;
    file.write_to_file(out)
        .map_err(|e| write_err(e.to_string()))?;
    Ok(SegWritten {
        sop_instance_uid,
        series_uid,
        frames: frames.len(),
        frames_per_segment,
    })
}

/// The mask on the source grid: as given, or with a reorientation (axis permutation/flip)
/// undone; anything else is refused with both grids.
fn on_source_grid<'m>(source: &SeriesRef, segment: &Segment<'m>) -> Result<Cow<'m, Mask>> {
    let same = |g: &Geometry| {
        g.shape() == source.geometry.shape()
            && g.affine().max_abs_diff(source.geometry.affine()) <= GRID_TOL_MM
    };
    if same(segment.mask.geometry()) {
        return Ok(Cow::Borrowed(segment.mask));
    }
    let back = segment
        .mask
        .reorient(Orientation::from_affine(source.geometry.affine()));
    if same(back.geometry()) {
        return Ok(Cow::Owned(back));
    }
    let [a, b, c] = segment.mask.shape();
    let [x, y, z] = source.geometry.shape();
    Err(DicomError::MaskGrid {
        segment: segment.label.clone(),
        problem: format!(
            "the mask is not on the grid of series {} in {}: mask {a}×{b}×{c} voxels, affine {}; \
             series {x}×{y}×{z} voxels, affine {} (RAS mm, tolerance {GRID_TOL_MM} mm); resample \
             the mask onto the image read from the series",
            source.selector,
            source.path.display(),
            affine_text(segment.mask.geometry().affine()),
            affine_text(source.geometry.affine()),
        ),
    })
}

fn affine_text(a: &Affine) -> String {
    let rows: Vec<String> = a.0[..3]
        .iter()
        .map(|r| format!("[{:.3} {:.3} {:.3} {:.3}]", r[0], r[1], r[2], r[3]))
        .collect();
    rows.join(" ")
}

fn segment_item(number: usize, segment: &Segment) -> InMemDicomObject {
    item(vec![
        us(tags::SEGMENT_NUMBER, number as u16),
        text(tags::SEGMENT_LABEL, VR::LO, &segment.label),
        text(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC"),
        text(tags::SEGMENT_ALGORITHM_NAME, VR::LO, "VoxelPrompt"),
        seq(
            tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
            vec![item(vec![
                seq(
                    tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                    vec![code_item(&Code::new(
                        "123110",
                        "DCM",
                        "Artificial Intelligence",
                    ))],
                ),
                text(tags::ALGORITHM_NAME, VR::LO, "VoxelPrompt"),
                text(tags::ALGORITHM_VERSION, VR::LO, env!("CARGO_PKG_VERSION")),
            ])],
        ),
        seq(
            tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
            vec![code_item(&segment.category)],
        ),
        seq(
            tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
            vec![code_item(&segment.property_type)],
        ),
    ])
}

fn code_item(code: &Code) -> InMemDicomObject {
    item(vec![
        text(tags::CODE_VALUE, VR::SH, &code.value),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, &code.scheme),
        text(tags::CODE_MEANING, VR::LO, &code.meaning),
    ])
}

fn item(elements: Vec<InMemElement>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn text(tag: Tag, vr: VR, value: &str) -> InMemElement {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn strs<S: AsRef<str>>(tag: Tag, vr: VR, values: &[S]) -> InMemElement {
    let values: Vec<String> = values.iter().map(|s| s.as_ref().to_string()).collect();
    DataElement::new(tag, vr, PrimitiveValue::Strs(values.into()))
}

fn us(tag: Tag, value: u16) -> InMemElement {
    DataElement::new(tag, VR::US, PrimitiveValue::from(value))
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// Packs frames of booleans one bit per pixel, least significant bit first, frames following
/// each other without padding; the whole padded to an even length (PS3.5 8.1.1, 8.2).
pub fn pack_bits<'a>(frames: impl IntoIterator<Item = &'a [bool]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for frame in frames {
        for &v in frame {
            if n.is_multiple_of(8) {
                out.push(0);
            }
            if v {
                *out.last_mut().expect("pushed above") |= 1 << (n % 8);
            }
            n += 1;
        }
    }
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// A new UID under the `2.25` root: a random (version 4) UUID as a decimal integer.
pub fn new_uid() -> String {
    let mut u: u128 = rand::random();
    u = (u & !(0xF << 76)) | (0x4 << 76); // version 4
    u = (u & !(0x3 << 62)) | (0x2 << 62); // variant 10
    format!("2.25.{u}")
}

/// A decimal string (DS) of at most 16 characters: as many decimals as fit.
pub fn ds(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x }; // no "-0"
    let shortest = format!("{x}");
    if shortest.len() <= 16 {
        return shortest;
    }
    for decimals in (0..=15).rev() {
        let s = format!("{x:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return if s == "-0" { "0".into() } else { s };
        }
    }
    format!("{x:.6e}")
}

/// Today's date (DA) and the time (TM), UTC.
fn now_da_tm() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = voxel::calendar::civil_from_days(days);
    (
        format!("{year:04}{month:02}{day:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_pack_lsb_first_across_frame_boundaries() {
        // Two frames of 5 pixels: the second frame starts mid-byte.
        let a = [true, false, false, false, true];
        let b = [false, true, true, false, false];
        let packed = pack_bits([&a[..], &b[..]]);
        // Bits 0 and 4 from the first frame, 6 and 7 (its pixels 1 and 2) from the second.
        assert_eq!(packed, vec![0b1101_0001, 0]);
        assert_eq!(pack_bits([&[true; 8][..]]), vec![0xFF, 0x00], "even length");
    }

    #[test]
    fn uids_are_2_25_uuids_that_fit() {
        let a = new_uid();
        assert!(a.starts_with("2.25.") && a.len() <= 64, "{a}");
        assert!(a[5..].chars().all(|c| c.is_ascii_digit()) && !a[5..].starts_with('0'));
        assert_ne!(a, new_uid());
    }

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(1.25), "1.25");
        assert_eq!(ds(-0.0), "0");
        let s = ds(-123.456_789_012_345_67);
        assert!(
            s.len() <= 16 && (s.parse::<f64>().unwrap() + 123.456_789_012_345_67).abs() < 1e-9,
            "{s}"
        );
        let s = ds(0.965_925_826_289_068_3);
        assert!(
            s.len() <= 16 && (s.parse::<f64>().unwrap() - 0.965_925_826_289_068_3).abs() < 1e-14,
            "{s}"
        );
    }

    #[test]
    fn today_is_a_plausible_date() {
        let (d, t) = now_da_tm();
        assert_eq!((d.len(), t.len()), (8, 6));
        assert!(d.as_str() >= "20240101", "{d}");
    }
}
