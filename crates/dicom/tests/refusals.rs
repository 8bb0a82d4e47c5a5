//! Series that are not one regular volume, corrupt files and ambiguous folders: each gets an
//! error naming the file or series and the problem, and nothing identifying the patient is
//! ever printed.

mod common;

use common::{fixtures, PHI};
use dicom::{list_series, read_series, read_spec, DicomError, Selector};

fn assert_no_phi(text: &str) {
    for word in PHI {
        assert!(
            !text.contains(word),
            "output shows patient data {word:?}: {text}"
        );
    }
}

fn error_of(case: &str) -> String {
    let err = read_series(&fixtures().path(case), None).expect_err(case);
    let text = err.to_string();
    assert_no_phi(&text);
    text
}

#[test]
fn gantry_tilt_is_refused_with_its_angle() {
    let e = error_of("tilted");
    assert!(e.contains("gantry tilt") && e.contains("15.00°"), "{e}");
}

#[test]
fn a_missing_slice_is_reported() {
    let e = error_of("missing");
    assert!(e.contains("1 missing slice"), "{e}");
}

#[test]
fn non_uniform_spacing_is_reported() {
    let e = error_of("uneven");
    assert!(e.contains("non-uniform slice spacing"), "{e}");
}

#[test]
fn corrupt_files_are_named() {
    let fx = fixtures();
    for (case, words) in [
        ("truncated", &["not a readable DICOM file"][..]),
        ("nopixel", &["has no pixel data"][..]),
        (
            "wrongvr",
            &["ImagePositionPatient (0020,0032)", "VR LO"][..],
        ),
    ] {
        let e = error_of(case);
        let file = fx.case(case)["file"].as_str().unwrap();
        assert!(e.contains(file), "{case}: error does not name {file}: {e}");
        for w in words {
            assert!(e.contains(w), "{case}: {e}");
        }
    }
}

#[test]
fn a_mixed_folder_lists_every_series_without_patient_data() {
    let series = list_series(&fixtures().path("mixed")).unwrap();
    let selectors: Vec<&str> = series.iter().map(|s| s.selector.as_str()).collect();
    assert_eq!(selectors, ["1:1", "1:2", "1:3", "3", "5"]);
    let ct = &series[4];
    assert_eq!((ct.modality.as_str(), ct.shape), ("CT", [16, 16, 12]));
    assert!(
        (ct.spacing_mm[2] - 1.25).abs() < 1e-6,
        "slice spacing from positions, not SliceThickness"
    );
    assert_eq!(series[3].orientation, "LPS");
    assert!(!series[0].volume_like, "a localizer plane is one slice");
    assert_no_phi(&serde_json::to_string(&series).unwrap());
}

#[test]
fn an_ambiguous_folder_asks_for_a_selector() {
    let e = error_of("mixed");
    assert!(e.contains("holds 5 series"), "{e}");
    for s in ["#1:1", "#3 ", "#5 ", "CT", "\"axial test series\""] {
        assert!(e.contains(s), "listing lacks {s}: {e}");
    }
    let mixed = fixtures().path("mixed");
    let e = read_series(&mixed, Some(&Selector::Number(9, None))).unwrap_err();
    assert!(matches!(e, DicomError::NoMatch { .. }), "{e}");
    let e = read_series(&mixed, Some(&Selector::Number(1, None))).unwrap_err();
    assert!(e.to_string().contains("3 series match"), "{e}");
    let one_plane = read_spec(format!("{}#1:2", mixed.display()).as_ref()).unwrap();
    assert_eq!(one_plane.shape(), [8, 8, 1]);
    assert!("x1".parse::<Selector>().is_err());
}
