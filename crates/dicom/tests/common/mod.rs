//! Fixtures shared by the integration tests: `scripts/make_dicom_fixtures.py` run once per test
//! binary into a temporary folder. python3 with pydicom, numpy and nibabel is required (`.ci/run`
//! installs them); without it the tests fail with the fix rather than skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use voxel::Image;

/// The fixture folder and its manifest.
pub struct Fixtures {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub manifest: serde_json::Value,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Panics with the fix when python3 lacks one of `modules`.
pub fn require_python(modules: &[&str]) {
    assert!(
        voxel::test_support::python_has(modules),
        "python3 with {modules:?} is required for the DICOM tests: \
         python3 -m pip install pydicom numpy nibabel pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg highdicom"
    );
}

/// Runs the fixture script once for this test binary.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        require_python(&["pydicom", "numpy", "nibabel", "pylibjpeg", "openjpeg"]);
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path().join("fx");
        let out = std::process::Command::new("python3")
            .arg(repo_root().join("scripts/make_dicom_fixtures.py"))
            .arg(&root)
            .output()
            .expect("running python3");
        assert!(
            out.status.success(),
            "make_dicom_fixtures.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest = serde_json::from_str(
            &std::fs::read_to_string(root.join("manifest.json")).expect("manifest"),
        )
        .expect("manifest JSON");
        Fixtures {
            _dir: dir,
            root,
            manifest,
        }
    })
}

impl Fixtures {
    /// The manifest entry of `case`.
    pub fn case(&self, case: &str) -> &serde_json::Value {
        &self.manifest[case]
    }

    /// Where `case` lives (folder, file or zip).
    pub fn path(&self, case: &str) -> PathBuf {
        PathBuf::from(self.case(case)["path"].as_str().expect("path"))
    }

    /// The truth image of `case`, written by nibabel.
    pub fn truth(&self, case: &str) -> Image {
        let path = self.case(case)["truth"].as_str().expect("truth");
        voxel::io::read_image(Path::new(path)).expect("truth NIfTI")
    }
}

/// Largest absolute difference between two affines (mm).
pub fn affine_error(a: &Image, b: &Image) -> f64 {
    a.geometry().affine().max_abs_diff(b.geometry().affine())
}

/// Number of voxels whose values differ by more than `tol`.
pub fn value_mismatches(a: &Image, b: &Image, tol: f32) -> usize {
    a.data()
        .iter()
        .zip(b.data())
        .filter(|(x, y)| (**x - **y).abs() > tol)
        .count()
}

/// Made-up identifiers the fixtures carry; none may appear in any output.
pub const PHI: [&str; 4] = ["Doe", "Jane", "PHI-12345", "19700101"];
