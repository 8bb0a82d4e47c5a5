//! One file per transfer syntax (pydicom's own test files) against pydicom's decoding of the
//! same file (pylibjpeg for JPEG and JPEG 2000), modality LUT applied; an unsupported syntax
//! and a truncated file get errors naming them.

mod common;

use common::{fixtures, value_mismatches};
use dicom::{read_series, DicomError};
use std::path::PathBuf;

fn codec(name: &str) -> (PathBuf, Option<voxel::Image>) {
    let entry = &fixtures().manifest["codecs"][name];
    let path = PathBuf::from(entry["path"].as_str().expect("codec path"));
    let truth = entry["truth"]
        .as_str()
        .map(|t| voxel::io::read_image(std::path::Path::new(t)).expect("truth"));
    (path, truth)
}

/// Reads `name` and counts voxels further than `tol` from pydicom's values.
fn mismatches(name: &str, tol: f32) -> usize {
    let (path, truth) = codec(name);
    let truth = truth.expect("truth");
    let image = read_series(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(image.shape(), truth.shape(), "{name}: shape");
    value_mismatches(&image, &truth, tol)
}

#[test]
fn lossless_syntaxes_decode_exactly() {
    for name in [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "CT_small.dcm",
        "image_dfl.dcm",
    ] {
        assert_eq!(mismatches(name, 0.0), 0, "{name}");
    }
}

#[test]
fn every_little_and_big_endian_variant_holds_the_same_image() {
    let reference = read_series(&codec("MR_small.dcm").0, None).unwrap();
    for name in [
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
    ] {
        let image = read_series(&codec(name).0, None).unwrap();
        assert_eq!(image.data(), reference.data(), "{name}");
    }
}

#[test]
fn lossy_jpeg2000_agrees_with_openjpeg() {
    // openjp2 is a port of OpenJPEG, which pylibjpeg-openjpeg wraps: bit-exact.
    assert_eq!(mismatches("JPEG2000.dcm", 0.0), 0);
    assert_eq!(mismatches("693_J2KI.dcm", 0.0), 0);
}

#[test]
fn jpeg_baseline_agrees_with_libjpeg_within_one_grey_level() {
    // Written by Pillow, truth decoded by libjpeg; inverse DCTs may round differently by one.
    let fx = fixtures();
    let image = read_series(&fx.path("jpeg"), None).unwrap();
    let truth = fx.truth("jpeg");
    assert!(common::affine_error(&image, &truth) < 1e-3);
    assert_eq!(value_mismatches(&image, &truth, 1.0), 0);
}

#[test]
fn twelve_bit_jpeg_extended_is_a_clear_error() {
    // jpeg-decoder reads 8-bit lossy and 2–16-bit lossless JPEG, not 12-bit lossy (process 4).
    let (path, _) = codec("jpeg12");
    let text = read_series(&path, None).unwrap_err().to_string();
    assert!(
        text.contains("JPGExtended.dcm") && text.contains("cannot decode pixel data"),
        "{text}"
    );
}

#[test]
fn jpeg_ls_is_refused_by_name() {
    let (path, _) = codec("unsupported");
    let err = read_series(&path, None).unwrap_err();
    assert!(
        matches!(err, DicomError::UnsupportedTransferSyntax { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("JPEG-LS") && text.contains("MR_small_jpeg_ls_lossless.dcm"),
        "{text}"
    );
}

#[test]
fn a_truncated_file_is_named() {
    let (path, _) = codec("truncated");
    let text = read_series(&path, None).unwrap_err().to_string();
    assert!(text.contains("MR_truncated.dcm"), "{text}");
}
