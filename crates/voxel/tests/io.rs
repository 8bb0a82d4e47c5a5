//! Readers and writers against nibabel (fixtures from scripts/make_io_fixtures.py), round trips,
//! and every kind of bad input the issue lists.

use serde_json::Value;
use std::path::{Path, PathBuf};
use voxel::io::{self, DataType, NonFinite, ReadOptions, WriteOptions};
use voxel::{Affine, Geometry, Image, Orientation, Volume, VoxelError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn affine_of(v: &Value) -> Affine {
    let mut m = [[0.0; 4]; 4];
    for r in 0..4 {
        for c in 0..4 {
            m[r][c] = v[r][c].as_f64().unwrap();
        }
    }
    Affine(m)
}

#[test]
fn values_and_affines_match_nibabel() {
    let cases = expected();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let path = fixtures().join(file);
        let frames = io::read_image_frames(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(frames.len(), shape.get(3).copied().unwrap_or(1), "{file}");
        let g = frames[0].geometry();
        assert_eq!(g.shape().to_vec(), shape[..3].to_vec(), "{file}");
        let want = affine_of(&case["affine"]);
        let diff = g.affine().max_abs_diff(&want);
        assert!(
            diff < 1e-6,
            "{file}: affine differs by {diff}: {:?} vs {:?}",
            g.affine(),
            want
        );
        assert_eq!(
            g.orientation().to_string(),
            case["axcodes"].as_str().unwrap(),
            "{file}"
        );
        let values: Vec<f32> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let ours: Vec<f32> = frames
            .iter()
            .flat_map(|f| f.data().iter().copied())
            .collect();
        assert_eq!(ours.len(), values.len(), "{file}");
        assert!(ours == values, "{file}: voxel values differ from nibabel");
        let info = io::read_info(&path).unwrap();
        assert_eq!(info.shape.to_vec(), shape[..3].to_vec());
        assert!(info.affine.max_abs_diff(&want) < 1e-6);
    }
}

#[test]
fn integer_files_read_as_exact_labels() {
    let labels = io::read_labels(&fixtures().join("i32_labels.nii.gz")).unwrap();
    let img = io::read_image(&fixtures().join("i32_labels.nii.gz")).unwrap();
    assert!(labels
        .data()
        .iter()
        .zip(img.data())
        .all(|(&l, &v)| l as f32 == v));
    // Scaled int16 with slope 0.5 gives half-integers: not a label map.
    let err = io::read_labels(&fixtures().join("i16_qform_scaled.nii.gz")).unwrap_err();
    assert!(err.to_string().contains("not a label map"), "{err}");
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn round_trips_are_exact() {
    let dir = tmp();
    for case in expected() {
        let file = case["file"].as_str().unwrap();
        if file.contains("4d") {
            continue;
        }
        let src = io::read_image(&fixtures().join(file)).unwrap();
        for ext in ["nii", "nii.gz", "mgz", "mgh"] {
            let out = dir.path().join(format!("rt.{ext}"));
            io::write_image(&out, &src, &WriteOptions::default()).unwrap();
            let back = io::read_image(&out).unwrap();
            assert_eq!(back.data(), src.data(), "{file} -> {ext}");
            let d = back
                .geometry()
                .affine()
                .max_abs_diff(src.geometry().affine());
            // NIfTI stores the sform as float32; MGH stores direction cosines, spacing and
            // centre as float32 and rebuilds the affine.
            let tol = if ext.starts_with("nii") { 2e-5 } else { 1e-4 };
            assert!(d < tol, "{file} -> {ext}: affine moved {d} mm");
            // Writing what we read again is bit-exact for NIfTI.
            if ext.starts_with("nii") {
                io::write_image(&out, &back, &WriteOptions::default()).unwrap();
                let again = io::read_image(&out).unwrap();
                assert_eq!(again.geometry(), back.geometry(), "{file} -> {ext} twice");
            }
        }
    }
}

#[test]
fn all_48_orientations_round_trip_through_files() {
    let dir = tmp();
    let g = Geometry::new(
        [4, 5, 6],
        Affine::from_spacing_origin([0.75, 1.25, 3.0], [-10.0, 20.5, 7.0]),
    )
    .unwrap();
    let labels = Volume::new(g, (0..120).collect::<Vec<i32>>()).unwrap();
    for o in Orientation::all() {
        let r = labels.reorient(o);
        for ext in ["nii.gz", "mgz"] {
            let out = dir.path().join(format!("o.{ext}"));
            io::write_labels(&out, &r).unwrap();
            let back = io::read_labels(&out).unwrap();
            assert_eq!(back.data(), r.data());
            assert_eq!(back.geometry().orientation(), o, "{o} via {ext}");
            assert!(back.geometry().affine().max_abs_diff(r.geometry().affine()) < 1e-5);
            let to_ras = back.to_ras();
            assert_eq!(to_ras.data(), labels.data(), "{o} via {ext} back to RAS");
        }
    }
}

#[test]
fn labels_are_written_as_integers() {
    let dir = tmp();
    let g = Geometry::from_spacing([3, 3, 3], [1.0; 3], [0.0; 3]).unwrap();
    for (max, want) in [
        (200, DataType::U8),
        (2035, DataType::I16),
        (70000, DataType::I32),
    ] {
        let mut d = vec![0i32; 27];
        d[5] = max;
        let l = Volume::new(g.clone(), d).unwrap();
        let out = dir.path().join("l.nii.gz");
        io::write_labels(&out, &l).unwrap();
        assert_eq!(io::read_info(&out).unwrap().datatype, want);
        assert_eq!(io::read_labels(&out).unwrap().data(), l.data());
    }
}

#[test]
fn integer_image_storage_is_within_one_step() {
    let dir = tmp();
    let src = io::read_image(&fixtures().join("f32_sform.nii")).unwrap();
    let out = dir.path().join("i16.nii.gz");
    io::write_image(
        &out,
        &src,
        &WriteOptions {
            datatype: DataType::I16,
            gzip_level: 6,
        },
    )
    .unwrap();
    let info = io::read_info(&out).unwrap();
    let (slope, _) = info.scaling.unwrap();
    let back = io::read_image(&out).unwrap();
    for (a, b) in src.data().iter().zip(back.data()) {
        assert!(((a - b).abs() as f64) <= slope * 0.5 + 1e-4);
    }
    // MGH cannot store scaling: a clear error instead of silently wrong values.
    let err = io::write_image(
        &dir.path().join("x.mgz"),
        &src,
        &WriteOptions {
            datatype: DataType::I16,
            gzip_level: 1,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("slope"), "{err}");
}

#[test]
fn nifti_dimensions_beyond_i16_are_an_error_not_a_corrupt_file() {
    // NIfTI-1 keeps each dimension in an i16: 40000 would wrap to a negative size.
    let dir = tmp();
    let g = Geometry::from_spacing([40_000, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
    let labels = Volume::new(g, vec![1i32; 40_000]).unwrap();
    for name in ["long.nii", "long.nii.gz"] {
        let p = dir.path().join(name);
        let err = io::write_labels(&p, &labels).unwrap_err();
        assert!(matches!(err, VoxelError::InvalidArgument(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("32767") && msg.contains("40000"),
            "{msg}"
        );
        assert!(!p.exists(), "no file is left behind");
    }
    // The largest size NIfTI-1 can hold still writes and reads back.
    let g = Geometry::from_spacing([32_767, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
    let labels = Volume::new(g, vec![2i32; 32_767]).unwrap();
    let p = dir.path().join("max.nii");
    io::write_labels(&p, &labels).unwrap();
    assert_eq!(
        io::read_labels(&p).unwrap().geometry().shape(),
        [32_767, 1, 1]
    );
}

fn small_image() -> Image {
    let g = Geometry::from_spacing([4, 4, 4], [1.0, 1.0, 2.0], [0.0; 3]).unwrap();
    Volume::new(g, (0..64).map(|v| v as f32).collect()).unwrap()
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn nifti_bytes(img: &Image) -> Vec<u8> {
    let dir = tmp();
    let p = dir.path().join("a.nii");
    io::write_image(&p, img, &WriteOptions::default()).unwrap();
    std::fs::read(p).unwrap()
}

fn format_error(path: &Path, expect: &str) {
    let err = io::read_image(path).unwrap_err();
    assert!(
        matches!(
            err,
            VoxelError::Format { .. } | VoxelError::UnknownFormat { .. }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error must name the file: {msg}"
    );
    assert!(
        msg.to_lowercase().contains(expect),
        "error {msg:?} should mention {expect:?}"
    );
}

#[test]
fn bad_input_gets_typed_errors_naming_the_file() {
    let dir = tmp();
    let good = nifti_bytes(&small_image());

    // Truncated data.
    format_error(
        &write_bytes(dir.path(), "trunc.nii", &good[..good.len() - 10]),
        "truncated",
    );
    // Truncated and corrupt gzip.
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
        e.write_all(&good).unwrap();
        e.finish().unwrap();
    }
    format_error(
        &write_bytes(dir.path(), "trunc.nii.gz", &gz[..gz.len() / 2]),
        "gzip",
    );
    let mut corrupt = gz.clone();
    for b in corrupt[20..60].iter_mut() {
        *b ^= 0x5a;
    }
    format_error(&write_bytes(dir.path(), "corrupt.nii.gz", &corrupt), "gzip");
    format_error(&write_bytes(dir.path(), "plain.nii.gz", &good), "gzip");
    // Wrong magic and wrong header size.
    let mut bad = good.clone();
    bad[344..348].copy_from_slice(b"xyz\0");
    format_error(&write_bytes(dir.path(), "magic.nii", &bad), "magic");
    let mut bad = good.clone();
    bad[0..4].copy_from_slice(&999i32.to_le_bytes());
    format_error(&write_bytes(dir.path(), "size.nii", &bad), "not a nifti");
    // Zero and negative voxel size.
    for (v, name) in [(0.0f32, "zero"), (-1.0, "negative")] {
        let mut bad = good.clone();
        bad[80..84].copy_from_slice(&v.to_le_bytes());
        format_error(
            &write_bytes(dir.path(), &format!("pixdim_{name}.nii"), &bad),
            "pixdim",
        );
    }
    // Zero-size and 5-D data.
    let mut bad = good.clone();
    bad[42..44].copy_from_slice(&0i16.to_le_bytes());
    format_error(&write_bytes(dir.path(), "empty.nii", &bad), "zero-size");
    let mut bad = good.clone();
    bad[40..42].copy_from_slice(&5i16.to_le_bytes());
    bad[50..52].copy_from_slice(&2i16.to_le_bytes());
    format_error(&write_bytes(dir.path(), "fived.nii", &bad), "at most 4-d");
    // NaN voxels: refused by default, replaced on request.
    let mut img = small_image().into_data();
    img[3] = f32::NAN;
    img[9] = f32::INFINITY;
    let mut bytes = good.clone();
    for (i, v) in img.iter().enumerate() {
        bytes[352 + 4 * i..356 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let p = write_bytes(dir.path(), "nan.nii", &bytes);
    format_error(&p, "nan");
    let z = io::read_image_with(
        &p,
        ReadOptions {
            non_finite: NonFinite::Zero,
        },
    )
    .unwrap();
    assert_eq!(z.data()[3], 0.0);
    // Unknown extension, missing file, empty file, wrong MGH version.
    format_error(
        &write_bytes(dir.path(), "a.png", &good),
        "unknown file format",
    );
    let missing = dir.path().join("missing.nii");
    let err = io::read_image(&missing).unwrap_err();
    assert!(matches!(err, VoxelError::Io { .. }) && err.to_string().contains("missing.nii"));
    format_error(&write_bytes(dir.path(), "empty2.nii", &[]), "too short");
    format_error(&write_bytes(dir.path(), "v.mgh", &[0u8; 400]), "not an mgh");
}

#[test]
fn writes_are_atomic_and_never_touch_inputs() {
    let dir = tmp();
    let p = dir.path().join("in.nii");
    io::write_image(&p, &small_image(), &WriteOptions::default()).unwrap();
    let err = io::ensure_not_input(&p, &[p.as_path()]).unwrap_err();
    assert!(matches!(err, VoxelError::WouldOverwriteInput { .. }));
    // Through a different spelling of the same path.
    let alias = dir.path().join(".").join("in.nii");
    assert!(io::ensure_not_input(&alias, &[p.as_path()]).is_err());
    assert!(io::ensure_not_input(&dir.path().join("out.nii"), &[p.as_path()]).is_ok());
    // No temp files left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["in.nii".to_string()]);
    // Writing into a missing directory fails with the path named.
    let err = io::write_image(
        &dir.path().join("no/such/dir/x.nii"),
        &small_image(),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("x.nii"));
}

/// nibabel reads what we write (skipped when python3 + nibabel are not installed, unless
/// `VOXELPROMPT_REQUIRE_DATA=1`).
#[test]
fn nibabel_reads_our_files() {
    if !voxel::test_support::python_has(&["nibabel", "numpy"]) {
        return voxel::test_support::skip_missing(
            "python3 with nibabel",
            "python3 -m pip install numpy nibabel",
        );
    }
    let dir = tmp();
    let src = io::read_image(&fixtures().join("f32_sform.nii")).unwrap();
    let lbl = io::read_labels(&fixtures().join("u8_odd.mgz")).unwrap();
    let mut script = String::from("import nibabel as nib, numpy as np, json, sys\nout = {}\n");
    for ext in ["nii", "nii.gz", "mgz"] {
        let p = dir.path().join(format!("img.{ext}"));
        io::write_image(&p, &src, &WriteOptions::default()).unwrap();
        let q = dir.path().join(format!("lbl.{ext}"));
        io::write_labels(&q, &lbl).unwrap();
        script.push_str(&format!(
            "i = nib.load({p:?}); l = nib.load({q:?})\nout[{ext:?}] = [i.get_fdata().ravel(order='F').tolist(), i.affine.tolist(), np.asarray(l.dataobj).ravel(order='F').tolist(), l.affine.tolist()]\n",
            p = p.display().to_string(),
            q = q.display().to_string()
        ));
    }
    script.push_str("json.dump(out, sys.stdout)\n");
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for ext in ["nii", "nii.gz", "mgz"] {
        let r = &v[ext];
        let vals: Vec<f32> = r[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(vals, src.data(), "{ext}");
        assert!(
            affine_of(&r[1]).max_abs_diff(src.geometry().affine()) < 1e-4,
            "{ext}"
        );
        let labels: Vec<i32> = r[2]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() as i32)
            .collect();
        assert_eq!(labels, lbl.data(), "{ext}");
        assert!(
            affine_of(&r[3]).max_abs_diff(lbl.geometry().affine()) < 1e-4,
            "{ext}"
        );
    }
}
