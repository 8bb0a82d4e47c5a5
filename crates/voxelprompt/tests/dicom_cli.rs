//! DICOM inputs through the binary: `info DIR` lists every series (no patient data), a command
//! reads `DIR#SERIES`, and an ambiguous folder is refused with the list. Fixtures come from
//! `scripts/make_dicom_fixtures.py` (python3 with pydicom is required, as in `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::voxelprompt;

fn fixtures(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make_dicom_fixtures.py");
    let root = dir.join("fx");
    let out = Command::new("python3")
        .arg(script)
        .arg(&root)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "make_dicom_fixtures.py needs python3 with pydicom, nibabel, pillow and pylibjpeg \
         (python3 -m pip install pydicom nibabel pillow pylibjpeg pylibjpeg-libjpeg \
         pylibjpeg-openjpeg): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

#[test]
fn info_lists_series_and_commands_read_a_chosen_one() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let mixed = fx.join("mixed");
    let o = voxelprompt(&["info", mixed.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for s in [
        "5 series",
        "#1:1",
        "#3 ",
        "#5 ",
        "16×16×12 voxels",
        "\"axial test series\"",
    ] {
        assert!(out.contains(s), "info lacks {s}: {out}");
    }
    for phi in ["Doe", "PHI-12345", "19700101"] {
        assert!(!out.contains(phi), "info shows patient data: {out}");
    }
    let o = voxelprompt(&["info", "--json", mixed.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v[0]["format"], "DICOM");
    assert_eq!(v[0]["series"][4]["modality"], "CT");
    assert_eq!(v[0]["series"][4]["shape"], serde_json::json!([16, 16, 12]));

    // render reads DIR#5 and writes the picture.
    let png = dir.path().join("ct.png");
    let spec = format!("{}#5", mixed.display());
    let o = voxelprompt(&["render", &spec, "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(png.is_file());

    // Without a selector the folder is ambiguous: a non-zero exit listing the series.
    let o = voxelprompt(&[
        "render",
        mixed.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("#SERIES_NUMBER") && err.contains("#5 "),
        "{err}"
    );
}
