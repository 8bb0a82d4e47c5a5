//! Every readable fixture against the volume and affine it was written from (nibabel NIfTI):
//! affine within 1e-3 mm, voxel values equal.

mod common;

use common::{affine_error, fixtures, value_mismatches};
use dicom::{read_series, read_spec, Selector};

fn check(case: &str, image: &voxel::Image) {
    let truth = fixtures().truth(case);
    assert_eq!(image.shape(), truth.shape(), "{case}: shape");
    let err = affine_error(image, &truth);
    assert!(
        err < 1e-3,
        "{case}: affine off by {err} mm\nread  {:?}\ntruth {:?}",
        image.geometry().affine(),
        truth.geometry().affine()
    );
    assert_eq!(
        value_mismatches(image, &truth, 0.0),
        0,
        "{case}: values differ"
    );
}

fn read_case(case: &str) {
    let image = read_series(&fixtures().path(case), None).unwrap_or_else(|e| panic!("{case}: {e}"));
    check(case, &image);
}

#[test]
fn axial_sagittal_coronal_and_oblique_match_their_affines() {
    for case in ["axial", "sagittal", "coronal", "oblique"] {
        read_case(case);
    }
}

#[test]
fn ct_is_rescaled_to_hounsfield_units() {
    read_case("ct");
    let image = read_series(&fixtures().path("ct"), None).unwrap();
    let (lo, _) = image.min_max().unwrap();
    assert!(
        lo < -1000.0,
        "slope 0.5, intercept -1024 gives values below -1000 HU, got {lo}"
    );
}

#[test]
fn implicit_deflate_rle_and_jpeg2000_series_decode_exactly() {
    for case in ["implicit", "deflate", "rle", "j2k"] {
        read_case(case);
    }
}

#[test]
fn enhanced_multiframe_uses_per_frame_positions_and_shared_rescale() {
    read_case("multiframe");
}

#[test]
fn a_zip_of_a_folder_reads_like_the_folder() {
    read_case("axial_zip");
}

#[test]
fn a_mixed_folder_reads_each_series_by_number_and_uid() {
    let fx = fixtures();
    let mixed = fx.path("mixed");
    let axial = read_spec(format!("{}#3", mixed.display()).as_ref()).unwrap();
    check("axial", &axial);
    let ct = read_series(&mixed, Some(&Selector::Number(5, None))).unwrap();
    check("ct", &ct);
    let uid = fx.case("ct")["uid"].as_str().unwrap();
    let by_uid = read_spec(format!("{}#{uid}", mixed.display()).as_ref()).unwrap();
    check("ct", &by_uid);
}
