//! `voxelprompt info FILE...`

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use voxel::io;

/// Arguments of `info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// NIfTI (.nii, .nii.gz) or FreeSurfer (.mgh, .mgz) files, or DICOM folders, files or zips
    /// (every series found is listed).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    header: io::FileInfo,
    spacing_mm: [f64; 3],
    orientation: String,
    slice_axis: usize,
    voxel_volume_mm3: f64,
    fov_mm: [f64; 3],
    intensity_min: Option<f32>,
    intensity_max: Option<f32>,
    non_finite_voxels: usize,
}

/// Prints one report per file (`--json`: a JSON array); fails on the first file that cannot
/// be read.
pub fn run(args: &InfoArgs) -> Result<()> {
    let json = crate::cmd::json();
    let mut reports = Vec::new();
    let mut dicom_json = Vec::new();
    for path in &args.files {
        if let Some(listing) = super::scan_input::dicom_listing(path)? {
            match json {
                true => dicom_json.push(listing.json),
                false => println!("{}", listing.text),
            }
            continue;
        }
        let raw = io::read_raw(path).with_context(|| format!("reading {}", path.display()))?;
        let geometry = raw.info.geometry()?;
        let values = raw.data.to_f32(raw.info.scaling);
        let non_finite = values.iter().filter(|v| !v.is_finite()).count();
        let (lo, hi) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let finite = lo <= hi;
        reports.push(Report {
            spacing_mm: geometry.spacing_mm(),
            orientation: geometry.orientation().to_string(),
            slice_axis: geometry.slice_axis(),
            voxel_volume_mm3: geometry.voxel_volume_mm3(),
            fov_mm: geometry.fov_mm(),
            intensity_min: finite.then_some(lo),
            intensity_max: finite.then_some(hi),
            non_finite_voxels: non_finite,
            header: raw.info,
        });
    }
    if json {
        // NIfTI/MGH reports first, then one object per DICOM input with its series.
        let mut all = serde_json::to_value(&reports)?;
        if let Some(items) = all.as_array_mut() {
            items.extend(dicom_json);
        }
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    for r in &reports {
        let h = &r.header;
        println!("{}", h.path.display());
        println!(
            "  format       {}{}",
            h.format,
            if h.gzip { " (gzip)" } else { "" }
        );
        println!("  datatype     {:?}", h.datatype);
        let frames = if h.frames > 1 {
            format!(" × {} frames", h.frames)
        } else {
            String::new()
        };
        println!(
            "  shape        {} × {} × {}{frames}",
            h.shape[0], h.shape[1], h.shape[2]
        );
        println!(
            "  spacing      {:.4} × {:.4} × {:.4} mm (voxel {:.4} mm³)",
            r.spacing_mm[0], r.spacing_mm[1], r.spacing_mm[2], r.voxel_volume_mm3
        );
        println!(
            "  field of view {:.1} × {:.1} × {:.1} mm",
            r.fov_mm[0], r.fov_mm[1], r.fov_mm[2]
        );
        println!(
            "  orientation  {} (slices along voxel axis {})",
            r.orientation, r.slice_axis
        );
        println!("  affine       (from {})", h.affine_source);
        for row in &h.affine.0[..3] {
            println!(
                "    [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
                row[0], row[1], row[2], row[3]
            );
        }
        if let Some((slope, inter)) = h.scaling {
            println!("  scaling      value = raw × {slope} + {inter}");
        }
        match (r.intensity_min, r.intensity_max) {
            (Some(lo), Some(hi)) => println!("  intensity    {lo} … {hi}"),
            _ => println!("  intensity    no finite voxels"),
        }
        if r.non_finite_voxels > 0 {
            println!(
                "  warning      {} voxels are NaN or infinite",
                r.non_finite_voxels
            );
        }
        if !h.description.is_empty() {
            println!("  description  {}", h.description);
        }
        println!("  units        {}", h.spatial_unit);
    }
    Ok(())
}
