//! How well the side gate's plane ([`vision::midplane`]) splits a synthetic head's left and
//! right structures, against the intensity centroid along x (the gate's first estimate). Each
//! scan of a `voxelprompt synth` folder is conformed and normalised as the model does it; every
//! voxel of the paired structures below (FreeSurfer ids; left and right) counts as right when
//! it lies on the right of the plane; printed: each scan's share of voxels on the wrong side for
//! its worst structure, and the means over scans.
//!
//! ```text
//! voxelprompt synth --out /tmp/heads --n 16 --contrasts t1,flair,ct --spacing 3 --anatomy all
//! cargo run --release -p train --example midplane_sides -- /tmp/heads
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use train::preprocess::{Modality, Preprocessing};
use vision::midplane::MidPlane;
use voxel::resample::{Interpolation, Resample, ResampleOptions};

/// (name, left id, right id): structures whose side the evaluation asks for.
const PAIRS: [(&str, i32, i32); 6] = [
    ("white matter", 2, 41),
    ("lateral ventricle", 4, 43),
    ("thalamus", 10, 49),
    ("caudate", 11, 50),
    ("putamen", 12, 51),
    ("hippocampus", 17, 53),
];

/// Share of each pair's voxels on the wrong side of `plane` (x grows to the right).
fn wrong_side(labels: &[f32], shape: [usize; 3], spacing: [f64; 3], plane: MidPlane) -> Vec<f64> {
    let centre = MidPlane::grid_centre_mm(shape, spacing);
    PAIRS
        .iter()
        .map(|&(_, left, right)| {
            let (mut wrong, mut all) = (0usize, 0usize);
            for (i, &l) in labels.iter().enumerate() {
                let id = l.round() as i32;
                if id != left && id != right {
                    continue;
                }
                let (x, y, z) = (
                    i % shape[0],
                    i / shape[0] % shape[1],
                    i / (shape[0] * shape[1]),
                );
                let p = [
                    x as f64 * spacing[0],
                    y as f64 * spacing[1],
                    z as f64 * spacing[2],
                ];
                let on_right = plane.signed_distance_mm(p, centre) > 0.0;
                all += 1;
                wrong += usize::from(on_right != (id == right));
            }
            if all == 0 {
                0.0
            } else {
                wrong as f64 / all as f64
            }
        })
        .collect()
}

fn main() -> Result<()> {
    let Some(root) = std::env::args().nth(1).map(PathBuf::from) else {
        bail!("usage: midplane_sides SYNTH_FOLDER");
    };
    let preprocessing = Preprocessing::at_spacing(3.0);
    let mut subjects: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("ses-0/labels.nii.gz").exists())
        .collect();
    subjects.sort();
    let (mut worst_centroid, mut worst_plane) = (Vec::new(), Vec::new());
    let read =
        |p: &Path| voxel::io::read_image(p).with_context(|| format!("reading {}", p.display()));
    for subject in &subjects {
        let labels = read(&subject.join("ses-0/labels.nii.gz"))?;
        for (file, modality) in [
            ("t1.nii.gz", Modality::Mr),
            ("flair.nii.gz", Modality::Mr),
            ("ct_hu.nii.gz", Modality::Ct),
        ] {
            let path = subject.join("ses-0").join(file);
            if !path.exists() {
                continue;
            }
            let image = preprocessing.conform(&read(&path)?, modality)?;
            let grid = image.geometry().clone();
            let labels_on_grid = labels.resample(
                &grid,
                &ResampleOptions {
                    interpolation: Interpolation::Nearest,
                    anti_alias: false, // ids are not intensities
                    ..ResampleOptions::default()
                },
            )?;
            if let Some(dump) = std::env::var_os("MIDPLANE_DUMP") {
                let options = voxel::io::WriteOptions::default();
                voxel::io::write_image(&Path::new(&dump).join("image.nii.gz"), &image, &options)?;
                voxel::io::write_image(
                    &Path::new(&dump).join("labels.nii.gz"),
                    &labels_on_grid,
                    &options,
                )?;
            }
            let (shape, spacing) = (grid.shape(), grid.spacing_mm());
            let plane = MidPlane::estimate(image.data(), shape, spacing);
            let centroid = MidPlane::intensity_centroid(image.data(), shape, spacing);
            let by_plane = wrong_side(labels_on_grid.data(), shape, spacing, plane);
            let by_centroid = wrong_side(labels_on_grid.data(), shape, spacing, centroid);
            let worst = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            worst_centroid.push(worst(&by_centroid));
            worst_plane.push(worst(&by_plane));
            let shares: Vec<String> = PAIRS
                .iter()
                .zip(&by_plane)
                .map(|((name, _, _), w)| format!("{name} {:.1}", 100.0 * w))
                .collect();
            println!(
                "{} {file}: worst structure wrong side: centroid {:.1} %, plane {:.1} % \
                 (plane x {:.1} mm, slopes {:.2} {:.2}; centroid x {:.1} mm; by plane, %: {})",
                subject.file_name().unwrap_or_default().to_string_lossy(),
                100.0 * worst(&by_centroid),
                100.0 * worst(&by_plane),
                plane.x_at_centre_mm,
                plane.slope_y,
                plane.slope_z,
                centroid.x_at_centre_mm,
                shares.join(", ")
            );
        }
    }
    let mean = |v: &[f64]| 100.0 * v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| 100.0 * v.iter().copied().fold(0.0, f64::max);
    println!(
        "{} scans; worst structure's share on the wrong side, mean (max): centroid {:.1} % ({:.1} %), \
         plane {:.1} % ({:.1} %)",
        worst_plane.len(),
        mean(&worst_centroid),
        max(&worst_centroid),
        mean(&worst_plane),
        max(&worst_plane)
    );
    Ok(())
}
