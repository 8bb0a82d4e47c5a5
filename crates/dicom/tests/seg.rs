//! DICOM SEG out, read back by independent readers. Masks are built on the image the reader
//! returns (a sphere in world coordinates, a box in voxel space), written with `write_seg`, and
//! the SEG is opened with pydicom and highdicom, which check it against the source files
//! themselves (their own slice order from ImagePositionPatient, their own voxel centres), not
//! against this crate's reading of them. python3 with pydicom, numpy and highdicom is required
//! (`.ci/run` installs them); without it these tests fail with the fix rather than skip.

mod common;

use common::{fixtures, require_python, PHI};
use dicom::{read_spec_with_ref, write_seg, Code, DicomError, Segment, SeriesRef};
use std::path::Path;
use voxel::{Image, Mask};

/// Checks a SEG against its source folder. Arguments: SEG path, source folder, expected masks
/// (u8, segment-major, x fastest, in the reader's slice order), a JSON spec (labels, codes,
/// shape, sphere). Exits non-zero with the reason on any mismatch; prints nothing that
/// identifies the patient.
const CHECK: &str = r#"
import json, sys
import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

seg_path, src_dir, expected_path, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
nx, ny, nz = spec["shape"]
labels = spec["labels"]
nseg = len(labels)
expected = np.fromfile(expected_path, dtype=np.uint8).reshape(nseg, nz, ny, nx).astype(bool)

def fail(msg):
    sys.exit("SEG check failed: " + msg)

# The source, ordered by this script: positions projected on the slice normal.
import pathlib
src = [pydicom.dcmread(p) for p in sorted(pathlib.Path(src_dir).rglob("*")) if p.is_file()]
iop = np.array(src[0].ImageOrientationPatient, float)
normal = np.cross(iop[:3], iop[3:])
src.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))
uids = [d.SOPInstanceUID for d in src]
by_uid = {d.SOPInstanceUID: k for k, d in enumerate(src)}

ds = pydicom.dcmread(seg_path)
if ds.file_meta.TransferSyntaxUID != ExplicitVRLittleEndian: fail("transfer syntax")
if ds.SOPClassUID != "1.2.840.10008.5.1.4.1.1.66.4": fail("SOP class " + ds.SOPClassUID)
if ds.Modality != "SEG" or ds.SegmentationType != "BINARY": fail("modality / segmentation type")
if (ds.BitsAllocated, ds.BitsStored, ds.Rows, ds.Columns) != (1, 1, ny, nx): fail("pixel module")
if ds.SeriesInstanceUID == src[0].SeriesInstanceUID: fail("SEG reuses the source series UID")
for kw in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientName", "PatientID", "PatientBirthDate"):
    if str(ds[kw].value) != str(src[0][kw].value): fail(kw + " not copied from the source")
got_labels = [s.SegmentLabel for s in ds.SegmentSequence]
if got_labels != labels: fail(f"labels {got_labels} != {labels}")
for n, s in enumerate(ds.SegmentSequence):
    if s.SegmentNumber != n + 1 or s.SegmentAlgorithmType != "AUTOMATIC" or s.SegmentAlgorithmName != "VoxelPrompt":
        fail(f"segment {n + 1} description")
    for seq, want in (("SegmentedPropertyCategoryCodeSequence", spec["categories"][n]),
                      ("SegmentedPropertyTypeCodeSequence", spec["types"][n])):
        c = s[seq][0]
        if [c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning] != want: fail(f"segment {n + 1} {seq}")
refs = ds.ReferencedSeriesSequence[0]
if refs.SeriesInstanceUID != src[0].SeriesInstanceUID: fail("referenced series")
if sorted(i.ReferencedSOPInstanceUID for i in refs.ReferencedInstanceSequence) != sorted(uids):
    fail("referenced instances are not the source instances")

want_frames = sum(max(1, int(expected[s].reshape(nz, -1).any(axis=1).sum())) for s in range(nseg))
if ds.NumberOfFrames != want_frames or len(ds.PerFrameFunctionalGroupsSequence) != want_frames:
    fail(f"{ds.NumberOfFrames} frames, expected {want_frames}")
pixels = ds.pixel_array.reshape(want_frames, ny, nx).astype(bool)
got = np.zeros_like(expected)
shared = ds.SharedFunctionalGroupsSequence[0]
if not np.allclose(np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float), iop, atol=1e-6):
    fail("orientation")
if not np.allclose(np.array(shared.PixelMeasuresSequence[0].PixelSpacing, float), np.array(src[0].PixelSpacing, float)):
    fail("pixel spacing")
for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
    s = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
    ref = item.DerivationImageSequence[0].SourceImageSequence[0]
    k = by_uid[ref.ReferencedSOPInstanceUID]
    if ref.ReferencedSOPClassUID != src[k].SOPClassUID: fail(f"frame {f + 1}: SOP class of the source")
    pos = np.array(item.PlanePositionSequence[0].ImagePositionPatient, float)
    if np.abs(pos - np.array(src[k].ImagePositionPatient, float)).max() > 1e-4:
        fail(f"frame {f + 1}: position is not that of the slice it references")
    if list(item.FrameContentSequence[0].DimensionIndexValues) != [s, k + 1]:
        fail(f"frame {f + 1}: dimension index values")
    got[s - 1, k] |= pixels[f]
if not np.array_equal(got, expected):
    fail(f"unpacked frames differ from the mask in {int((got != expected).sum())} voxels")

# The sphere, recomputed from each source file's own geometry (LPS voxel centres).
if spec.get("sphere"):
    s, centre, radius = spec["sphere"]["segment"], np.array(spec["sphere"]["centre_lps"]), spec["sphere"]["radius"]
    ps = np.array(src[0].PixelSpacing, float)
    rows, cols = np.mgrid[0:ny, 0:nx]
    for k, d in enumerate(src):
        p = np.array(d.ImagePositionPatient, float)
        world = p + cols[..., None] * ps[1] * iop[:3] + rows[..., None] * ps[0] * iop[3:]
        inside = ((world - centre) ** 2).sum(axis=-1) <= radius ** 2
        if not np.array_equal(inside, got[s, k]):
            fail(f"sphere differs on source slice {k + 1} in {int((inside != got[s, k]).sum())} pixels")

if spec.get("highdicom"):
    import highdicom as hd
    hseg = hd.seg.Segmentation.from_dataset(ds)
    if hseg.number_of_segments != nseg: fail("highdicom: number of segments")
    arr = hseg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=list(range(1, nseg + 1)),
        assert_missing_frames_are_empty=True)
    # (instances, rows, columns, segments) -> (segments, slices, rows, columns)
    arr = np.moveaxis(np.asarray(arr), -1, 0).astype(bool)
    if not np.array_equal(arr, expected): fail(f"highdicom: pixels differ in {int((arr != expected).sum())} voxels")
print("ok", ds.NumberOfFrames)
"#;

/// A sphere in world coordinates on `image`'s grid: centre near the middle (off the voxel
/// centres), radius 0.35 of the smallest extent, so some slices are empty.
fn sphere(image: &Image) -> (Mask, [f64; 3], f64) {
    let [nx, ny, nz] = image.shape();
    let affine = image.geometry().affine();
    let centre = affine.apply([
        nx as f64 / 2.0 - 0.31,
        ny as f64 / 2.0 + 0.17,
        nz as f64 / 2.0 - 0.23,
    ]);
    let spacing = affine.column_norms();
    let radius = 0.35
        * (0..3)
            .map(|a| image.shape()[a] as f64 * spacing[a])
            .fold(f64::INFINITY, f64::min);
    let mask = image.map(|_| false);
    let mut data = mask.data().to_vec();
    for (n, v) in data.iter_mut().enumerate() {
        let [i, j, k] = image.geometry().coords(n);
        let p = affine.apply([i as f64, j as f64, k as f64]);
        let d2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
        *v = d2 <= radius * radius;
    }
    let lps = [-centre[0], -centre[1], centre[2]];
    (mask.with_data(data).unwrap(), lps, radius)
}

/// A box in voxel space: i in 1..4, j in 2..6, k in 1..3.
fn voxel_box(image: &Image) -> Mask {
    let mut data = vec![false; image.data().len()];
    for k in 1..3 {
        for j in 2..6 {
            for i in 1..4 {
                data[image.geometry().index(i, j, k)] = true;
            }
        }
    }
    image.with_data(data).unwrap()
}

fn assert_no_phi(text: &str) {
    for word in PHI {
        assert!(!text.contains(word), "shows patient data {word:?}: {text}");
    }
}

/// Runs [`CHECK`] on `seg` written from `case`'s folder, the expected masks on the reader's
/// grid (in `source` slice order), and `sphere` (segment index, LPS centre, radius) if any.
fn check(
    case: &str,
    seg: &Path,
    source: &SeriesRef,
    segments: &[(&str, &Mask, Code, Code)],
    sphere: Option<(usize, [f64; 3], f64)>,
) {
    require_python(&["pydicom", "numpy", "highdicom"]);
    let dir = seg.parent().unwrap();
    let expected: Vec<u8> = segments
        .iter()
        .flat_map(|(_, m, _, _)| m.data().iter().map(|&v| v as u8))
        .collect();
    let expected_path = dir.join(format!("{case}.expected.bin"));
    std::fs::write(&expected_path, expected).unwrap();
    let code = |c: &Code| serde_json::json!([c.value, c.scheme, c.meaning]);
    let spec = serde_json::json!({
        "shape": source.geometry.shape(),
        "labels": segments.iter().map(|s| s.0).collect::<Vec<_>>(),
        "categories": segments.iter().map(|s| code(&s.2)).collect::<Vec<_>>(),
        "types": segments.iter().map(|s| code(&s.3)).collect::<Vec<_>>(),
        "sphere": sphere.map(|(s, c, r)| serde_json::json!({"segment": s, "centre_lps": c, "radius": r})),
        "highdicom": true,
    });
    let out = std::process::Command::new("python3")
        .args(["-c", CHECK])
        .arg(seg)
        .arg(fixtures().path(case))
        .arg(&expected_path)
        .arg(spec.to_string())
        .output()
        .expect("running python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_phi(&text);
    assert!(out.status.success(), "{case}: {text}");
}

/// One sphere segment on `case`, the mask handed over as `prepare` makes it (e.g. reoriented).
fn sphere_case(case: &str, prepare: impl Fn(&Mask) -> Mask) {
    let (image, source) = read_spec_with_ref(&fixtures().path(case)).unwrap();
    let (mask, centre, radius) = sphere(&image);
    assert!(mask.count() > 0, "{case}: empty sphere");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("{case}.seg.dcm"));
    let given = prepare(&mask);
    let written = write_seg(&source, &[Segment::new("brain", &given)], &out).unwrap();
    let nonempty = (0..image.shape()[2])
        .filter(|&k| {
            let n = image.shape()[0] * image.shape()[1];
            mask.data()[k * n..(k + 1) * n].iter().any(|&v| v)
        })
        .count();
    assert_eq!(
        written.frames, nonempty,
        "{case}: one frame per non-empty slice"
    );
    assert!(nonempty < image.shape()[2], "{case}: some slices are empty");
    check(
        case,
        &out,
        &source,
        &[(
            "brain",
            &mask,
            Code::anatomical_structure(),
            Code::body_structure(),
        )],
        Some((0, centre, radius)),
    );
}

#[test]
fn axial_sphere_reads_back_in_pydicom_and_highdicom() {
    sphere_case("axial", Mask::clone);
}

#[test]
fn sagittal_sphere_given_in_ras_is_put_back_on_the_source_grid() {
    sphere_case("sagittal", |m| {
        let ras = m.to_ras();
        assert_ne!(ras.geometry(), m.geometry(), "sagittal is not stored RAS");
        ras
    });
}

#[test]
fn oblique_sphere_reads_back() {
    sphere_case("oblique", Mask::clone);
}

#[test]
fn coronal_frames_of_140_pixels_pack_across_byte_boundaries() {
    // 14 × 10 pixels: every other frame starts in the middle of a byte.
    sphere_case("coronal", Mask::clone);
}

#[test]
fn two_overlapping_segments_with_their_own_codes() {
    let case = "axial";
    let (image, source) = read_spec_with_ref(&fixtures().path(case)).unwrap();
    let (ball, centre, radius) = sphere(&image);
    let cube = voxel_box(&image);
    let liver = (Code::anatomical_structure(), Code::sct("10200004", "Liver"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two.seg.dcm");
    let written = write_seg(
        &source,
        &[
            Segment::new("brain", &ball),
            Segment::new("liver", &cube).with_codes(liver.0.clone(), liver.1.clone()),
        ],
        &out,
    )
    .unwrap();
    assert_eq!(
        written.frames_per_segment[1], 2,
        "the box spans slices 1 and 2"
    );
    check(
        case,
        &out,
        &source,
        &[
            (
                "brain",
                &ball,
                Code::anatomical_structure(),
                Code::body_structure(),
            ),
            ("liver", &cube, liver.0, liver.1),
        ],
        Some((0, centre, radius)),
    );
}

#[test]
fn an_empty_segment_keeps_one_empty_frame() {
    let case = "oblique";
    let (image, source) = read_spec_with_ref(&fixtures().path(case)).unwrap();
    let empty = image.map(|_| false);
    let cube = voxel_box(&image);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty.seg.dcm");
    let written = write_seg(
        &source,
        &[Segment::new("nothing", &empty), Segment::new("box", &cube)],
        &out,
    )
    .unwrap();
    assert_eq!(written.frames_per_segment, vec![1, 2]);
    let codes = (Code::anatomical_structure(), Code::body_structure());
    check(
        case,
        &out,
        &source,
        &[
            ("nothing", &empty, codes.0.clone(), codes.1.clone()),
            ("box", &cube, codes.0, codes.1),
        ],
        None,
    );
}

#[test]
fn the_reference_lists_source_slices_in_voxel_order_without_showing_patient_data() {
    for case in ["axial", "sagittal", "oblique", "multiframe"] {
        let (image, source) = read_spec_with_ref(&fixtures().path(case)).unwrap();
        assert_eq!(source.geometry, *image.geometry(), "{case}");
        assert_eq!(source.slices.len(), image.shape()[2], "{case}");
        // Voxel slice k sits where the image's affine puts slice k (RAS → LPS).
        for (k, slice) in source.slices.iter().enumerate() {
            let [x, y, z] = image.geometry().affine().apply([0.0, 0.0, k as f64]);
            let lps = [-x, -y, z];
            let off = (0..3)
                .map(|a| (slice.position[a] - lps[a]).abs())
                .fold(0.0, f64::max);
            assert!(off < 1e-3, "{case}: slice {k} is {off} mm away");
        }
        assert_eq!(
            source.slices[0].frame_number.is_some(),
            case == "multiframe",
            "{case}"
        );
        assert_eq!(source.series_uid, fixtures().case(case)["uid"], "{case}");
        assert_no_phi(&format!("{source:?}"));
    }
}

#[test]
fn a_mask_on_another_grid_is_refused_with_both_grids() {
    let fx = fixtures();
    let (_, axial) = read_spec_with_ref(&fx.path("axial")).unwrap();
    let (sagittal_image, _) = read_spec_with_ref(&fx.path("sagittal")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.seg.dcm");
    let other = sagittal_image.map(|_| true);
    let err = write_seg(&axial, &[Segment::new("liver", &other)], &out).unwrap_err();
    assert!(matches!(err, DicomError::MaskGrid { .. }), "{err}");
    let text = err.to_string();
    for want in [
        "segment \"liver\"",
        "not on the grid of series 3",
        "12×14×8",
        "16×12×10",
        "resample",
    ] {
        assert!(text.contains(want), "lacks {want:?}: {text}");
    }
    assert_no_phi(&text);
    assert!(!out.exists(), "nothing written on error");

    // Same shape, shifted by 2 mm: still refused.
    let (image, source) = read_spec_with_ref(&fx.path("axial")).unwrap();
    let mut affine = *image.geometry().affine();
    affine.0[2][3] += 2.0;
    let shifted = Mask::new(
        voxel::Geometry::new(image.shape(), affine).unwrap(),
        vec![true; image.data().len()],
    )
    .unwrap();
    let err = write_seg(&source, &[Segment::new("liver", &shifted)], &out).unwrap_err();
    assert!(matches!(err, DicomError::MaskGrid { .. }), "{err}");
    let err = write_seg(&source, &[], &out).unwrap_err();
    assert!(err.to_string().contains("no segments"), "{err}");
}
