//! The same fixtures converted by dcm2niix (the reference converter; Debian package `dcm2niix`),
//! its NIfTI read with voxel::io: both reoriented to RAS, affines within 1e-3 mm, values equal.

mod common;

use common::{affine_error, fixtures, value_mismatches};
use std::process::Command;

fn dcm2niix(case: &str) -> voxel::Image {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("dcm2niix")
        .args(["-z", "n", "-b", "n", "-f", "converted", "-o"])
        .arg(out.path())
        .arg(fixtures().path(case))
        .output()
        .unwrap_or_else(|e| panic!("dcm2niix is required (apt-get install -y dcm2niix): {e}"));
    assert!(status.status.success(), "dcm2niix failed on {case}");
    voxel::io::read_image(&out.path().join("converted.nii")).expect("dcm2niix output")
}

#[test]
fn affines_and_values_match_dcm2niix() {
    let mut worst = 0.0f64;
    for case in [
        "axial",
        "sagittal",
        "coronal",
        "oblique",
        "ct",
        "rle",
        "j2k",
        "jpeg",
        "multiframe",
    ] {
        // dcm2niix wants a folder; the multi-frame case is a file inside one.
        let ours = dicom::read_series(&fixtures().path(case), None)
            .unwrap()
            .to_ras();
        let theirs = dcm2niix(case).to_ras();
        assert_eq!(ours.shape(), theirs.shape(), "{case}");
        let err = affine_error(&ours, &theirs);
        assert!(
            err < 1e-3,
            "{case}: affine differs from dcm2niix by {err} mm"
        );
        worst = worst.max(err);
        // dcm2niix keeps the stored integers with scl_slope/scl_inter; voxel::io scales in f32.
        // JPEG: dcm2niix's built-in decoder is up to 5 grey levels from libjpeg (measured on
        // this fixture), while we are within 1 of libjpeg (tests/codecs.rs).
        let tol = if case == "jpeg" { 5.0 } else { 1e-3 };
        assert_eq!(
            value_mismatches(&ours, &theirs, tol),
            0,
            "{case}: values differ"
        );
    }
    println!("largest affine difference from dcm2niix: {worst:.2e} mm");
}
