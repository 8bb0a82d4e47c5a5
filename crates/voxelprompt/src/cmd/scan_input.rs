//! One reader for every scan argument: NIfTI/MGH files through `voxel::io`, DICOM (a folder, a
//! file, a zip, each optionally `#SERIES_NUMBER` or `#UID`) through the `dicom` crate.

use anyhow::{bail, Result};
use std::path::Path;

/// Reads the scan `spec` names, e.g. `t1.nii.gz`, `study/`, `study.zip#3`, `ct/IM0001`.
pub fn read_scan(spec: &Path) -> Result<voxel::Image> {
    if voxel::io::format_of(spec).is_ok() {
        return Ok(voxel::io::read_image(spec)?);
    }
    if dicom::is_dicom_input(spec) {
        return Ok(dicom::read_spec(spec)?);
    }
    if !spec.exists() {
        bail!("{}: no such file or folder", spec.display());
    }
    bail!(
        "{}: not a scan (expected NIfTI .nii/.nii.gz, MGH .mgh/.mgz, or DICOM: a folder, a \
         DICOM file or a .zip, optionally with #SERIES_NUMBER)",
        spec.display()
    )
}

/// What `info` shows for a DICOM input: every series, as text and as JSON.
pub struct Listing {
    /// Lines for a person.
    pub text: String,
    /// `{"path", "format": "DICOM", "series": [...], "skipped_files"}`.
    pub json: serde_json::Value,
}

/// The series of a DICOM input as `info` shows them, or `None` when `path` is not DICOM.
/// Never includes patient name, ID or birth date (the reader does not read them).
pub fn dicom_listing(path: &Path) -> Result<Option<Listing>> {
    if voxel::io::format_of(path).is_ok() || !dicom::is_dicom_input(path) {
        return Ok(None);
    }
    let (path, _) = dicom::split_spec(path)?;
    let scan = dicom::scan(&path)?;
    let series = scan.series();
    let json = serde_json::json!({ "path": path, "format": "DICOM", "series": series,
                                   "skipped_files": scan.skipped() });
    let mut out = format!(
        "{}\n  format       DICOM, {} series{}\n",
        path.display(),
        series.len(),
        match scan.skipped() {
            0 => String::new(),
            n => format!(" ({n} other files skipped)"),
        }
    );
    for s in &series {
        out.push_str(&format!("  {}\n", s.line()));
    }
    out.push_str(&format!(
        "  choose one as {}#SERIES_NUMBER (or #UID)",
        path.display()
    ));
    Ok(Some(Listing { text: out, json }))
}
