//! Anatomy sources: real label maps from the anatomy cache (FreeSurfer fsaverage, the CAT12
//! neuromorphometrics atlas), an analytic parcellated phantom for tests, and the head model that
//! adds the skull cavity's CSF and everything outside it around a brain-only label map
//! ([`crate::head`]).

use crate::atrophy::AtrophyMaps;
use crate::config::{HeadConfig, SynthConfig};
use crate::error::{Result, SynthError};
use crate::head::build_head;
use crate::spatial::BrainBox;
use crate::vocabulary::Source;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use voxel::phantom::ellipsoid_mask;
use voxel::{Geometry, LabelMap, Volume};

pub use crate::labels::{EXTRACEREBRAL_CSF, SCALP, SKULL};

/// A label map with its head model, ready to be deformed into subjects.
#[derive(Clone, Debug)]
pub struct Anatomy {
    /// Brain labels plus [`EXTRACEREBRAL_CSF`], [`SKULL`], [`SCALP`] and the other head labels
    /// of [`crate::labels`]; 0 is air.
    pub labels: LabelMap,
    /// Where the brain lies in the template (fields of view are framed on it).
    pub brain_box: BrainBox,
    /// Which id space the brain labels use.
    pub source: Source,
    /// Human-readable origin, recorded in every subject's attributes.
    pub name: String,
    /// Distances subjects' atrophy is drawn against ([`crate::atrophy`]), measured on `labels`
    /// when the anatomy was built (`None` without lateral ventricles or CSF over the brain).
    pub atrophy_maps: Option<Arc<AtrophyMaps>>,
}

/// Names [`Anatomy::load`] accepts, real anatomies first in preference order.
pub const ANATOMY_NAMES: [&str; 3] = ["fsaverage", "neuromorphometrics", "phantom"];

/// The real anatomies (not the phantom) whose files are in `cache_dir`, in the order of
/// [`ANATOMY_NAMES`].
pub fn available_anatomies(cache_dir: &Path) -> Vec<&'static str> {
    let mut out = Vec::new();
    if cache_dir.join("fsaverage/aparc+aseg.mgz").exists() {
        out.push("fsaverage");
    }
    if let Ok(remap) = crate::neuromorphometrics::Remap::builtin() {
        if cache_dir.join(&remap.atlas.labels_file).exists()
            && cache_dir.join(&remap.atlas.tissue_file).exists()
        {
            out.push("neuromorphometrics");
        }
    }
    out
}

/// The default anatomy cache: `$VOXELPROMPT_ANATOMY`, else `~/.cache/voxelprompt/anatomy`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VOXELPROMPT_ANATOMY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/voxelprompt/anatomy"))
}

impl Anatomy {
    /// FreeSurfer fsaverage `aparc+aseg.mgz` (or `aseg.mgz` when `source` is
    /// [`Source::FsAseg`]) from the anatomy cache, reoriented to RAS, cropped to the head and
    /// given a head model.
    pub fn fsaverage(cache_dir: &Path, source: Source, head: &HeadConfig) -> Result<Anatomy> {
        let file = match source {
            Source::FsAseg => "aseg.mgz",
            Source::FsAparcAseg => "aparc+aseg.mgz",
            other => {
                return Err(SynthError::InvalidArgument(format!(
                    "{other:?} is not a FreeSurfer source"
                )))
            }
        };
        let path = cache_dir.join("fsaverage").join(file);
        if !path.exists() {
            return Err(SynthError::MissingSource { path });
        }
        let brain = voxel::io::read_labels(&path)?.to_ras();
        // The head model pads the grid for its layers; 256³ is mostly air.
        let brain = voxel::crop::crop_to_nonzero(&brain, 0.0)?;
        let h = build_head(&brain, head)?;
        Ok(Anatomy {
            atrophy_maps: AtrophyMaps::new(&h.labels)?.map(Arc::new),
            labels: h.labels,
            brain_box: h.brain_box,
            source,
            name: format!("fsaverage/{file}"),
        })
    }

    /// The CAT12 neuromorphometrics maximum-probability atlas from the PyPI package
    /// `deepmriprep`, as [`crate::neuromorphometrics::load_brain`] prepares it (ids remapped to
    /// FreeSurfer's, sulcal CSF carved out, scaled to adult size), given a head model (which
    /// pads the grid for it).
    pub fn neuromorphometrics(cache_dir: &Path, head: &HeadConfig) -> Result<Anatomy> {
        let remap = crate::neuromorphometrics::Remap::builtin()?;
        let brain = crate::neuromorphometrics::load_brain(cache_dir, &remap)?;
        let brain = voxel::crop::crop_to_nonzero(&brain, 0.0)?;
        let h = build_head(&brain, head)?;
        Ok(Anatomy {
            atrophy_maps: AtrophyMaps::new(&h.labels)?.map(Arc::new),
            labels: h.labels,
            brain_box: h.brain_box,
            source: Source::Neuromorphometrics,
            name: "deepmriprep/neuromorphometrics".into(),
        })
    }

    /// The anatomy called `name` (one of [`ANATOMY_NAMES`]; `fsaverage` is `aparc+aseg`, the
    /// phantom is built on 2 mm voxels), real ones read from `cache_dir`.
    pub fn load(name: &str, cache_dir: &Path, config: &SynthConfig) -> Result<Anatomy> {
        match name {
            "fsaverage" => Anatomy::fsaverage(cache_dir, Source::FsAparcAseg, &config.head),
            "neuromorphometrics" => Anatomy::neuromorphometrics(cache_dir, &config.head),
            "phantom" => Anatomy::phantom(2.0, &config.head),
            other => Err(SynthError::InvalidArgument(format!(
                "unknown anatomy {other:?}; expected one of {}",
                ANATOMY_NAMES.join(", ")
            ))),
        }
    }

    /// The analytic phantom of [`phantom_brain`] with a head model, on voxels of `spacing_mm`.
    pub fn phantom(spacing_mm: f64, head: &HeadConfig) -> Result<Anatomy> {
        let h = build_head(&phantom_brain(spacing_mm)?, head)?;
        Ok(Anatomy {
            atrophy_maps: AtrophyMaps::new(&h.labels)?.map(Arc::new),
            labels: h.labels,
            brain_box: h.brain_box,
            source: Source::FsAparcAseg,
            name: "phantom".into(),
        })
    }
}

/// Adds the head model of [`crate::head`] to a brain-only label map (RAS grid): the grid is
/// padded for the face and neck, the skull cavity filled with [`EXTRACEREBRAL_CSF`], and every
/// extracranial layer and structure added around it.
pub fn add_head(brain: &LabelMap, head: &HeadConfig) -> Result<LabelMap> {
    Ok(build_head(brain, head)?.labels)
}

/// Desikan–Killiany parcel seeds of the phantom, `(parcel x, [|x|, y, z] mm)`: each cortical
/// voxel gets the parcel of the nearest seed on its side (a Voronoi parcellation).
const PHANTOM_PARCEL_SEEDS: &[(i32, [f64; 3])] = &[
    (28, [10.0, 35.0, 45.0]),
    (27, [35.0, 45.0, 20.0]),
    (3, [38.0, 15.0, 40.0]),
    (18, [50.0, 15.0, 10.0]),
    (12, [25.0, 40.0, -15.0]),
    (14, [5.0, 50.0, -10.0]),
    (24, [40.0, -5.0, 45.0]),
    (22, [40.0, -25.0, 45.0]),
    (17, [5.0, -15.0, 55.0]),
    (29, [25.0, -55.0, 50.0]),
    (8, [45.0, -55.0, 25.0]),
    (31, [55.0, -35.0, 30.0]),
    (25, [5.0, -55.0, 35.0]),
    (30, [58.0, -15.0, 0.0]),
    (15, [62.0, -30.0, -12.0]),
    (9, [50.0, -30.0, -28.0]),
    (7, [35.0, -45.0, -22.0]),
    (16, [25.0, -30.0, -18.0]),
    (11, [35.0, -80.0, 5.0]),
    (13, [12.0, -70.0, -5.0]),
    (5, [8.0, -80.0, 20.0]),
    (21, [8.0, -85.0, 5.0]),
    (35, [36.0, 0.0, 5.0]),
    (23, [5.0, -20.0, 35.0]),
    (2, [5.0, 15.0, 30.0]),
    (10, [8.0, -45.0, 15.0]),
    (33, [40.0, 15.0, -30.0]),
];

/// An analytic brain with FreeSurfer `aparc+aseg` ids: ellipsoidal hemispheres whose cortex is
/// split into 27 Desikan–Killiany parcels per side, cerebral white matter, lateral and third
/// ventricles, thalamus, caudate, putamen, pallidum, hippocampus, amygdala, corpus callosum,
/// brainstem, cerebellum and fourth ventricle. RAS grid of `spacing_mm` voxels, 184 × 220 ×
/// 184 mm, origin at the centre. Used wherever the real anatomy cache may be absent.
pub fn phantom_brain(spacing_mm: f64) -> Result<LabelMap> {
    if !(spacing_mm > 0.3 && spacing_mm <= 8.0) {
        return Err(SynthError::InvalidArgument(format!(
            "phantom spacing {spacing_mm} mm outside (0.3, 8]"
        )));
    }
    let fov = [184.0, 220.0, 184.0];
    let shape = fov.map(|f: f64| (f / spacing_mm).round() as usize);
    let origin = [0, 1, 2].map(|a| -(shape[a] as f64 - 1.0) * spacing_mm / 2.0);
    let g = Geometry::from_spacing(shape, [spacing_mm; 3], origin)?;
    let mut labels = vec![0i32; g.num_voxels()];
    let paint = |labels: &mut Vec<i32>,
                 centre: [f64; 3],
                 radii: [f64; 3],
                 label: i32,
                 only_side: Option<f64>| {
        let m = ellipsoid_mask(&g, centre, radii);
        for (idx, (l, &inside)) in labels.iter_mut().zip(m.data()).enumerate() {
            if inside {
                if let Some(side) = only_side {
                    let c = g.coords(idx);
                    let x = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])[0];
                    if x * side < 0.0 {
                        continue;
                    }
                }
                *l = label;
            }
        }
    };
    for side in [-1.0f64, 1.0] {
        let left = side < 0.0;
        let id = |l: i32, r: i32| if left { l } else { r };
        // Cortex then white matter: the cortex is the outer 5 mm of each hemisphere.
        paint(
            &mut labels,
            [side * 34.0, -8.0, 6.0],
            [34.0, 78.0, 56.0],
            id(3, 42),
            Some(side),
        );
        paint(
            &mut labels,
            [side * 32.0, -8.0, 6.0],
            [28.0, 72.0, 50.0],
            id(2, 41),
            Some(side),
        );
        // Cerebellum below the occipital lobes.
        paint(
            &mut labels,
            [side * 24.0, -62.0, -42.0],
            [24.0, 22.0, 16.0],
            id(8, 47),
            Some(side),
        );
        paint(
            &mut labels,
            [side * 20.0, -58.0, -40.0],
            [12.0, 11.0, 8.0],
            id(7, 46),
            Some(side),
        );
        paint(
            &mut labels,
            [side * 24.0, -6.0, 0.0],
            [5.0, 12.0, 8.0],
            id(12, 51),
            None,
        );
        paint(
            &mut labels,
            [side * 18.0, -6.0, -1.0],
            [3.0, 6.0, 4.0],
            id(13, 52),
            None,
        );
        paint(
            &mut labels,
            [side * 14.0, 8.0, 10.0],
            [4.0, 10.0, 6.0],
            id(11, 50),
            None,
        );
        paint(
            &mut labels,
            [side * 10.0, -20.0, 4.0],
            [7.0, 10.0, 7.0],
            id(10, 49),
            None,
        );
        paint(
            &mut labels,
            [side * 9.0, -6.0, 14.0],
            [5.0, 26.0, 8.0],
            id(4, 43),
            None,
        );
        paint(
            &mut labels,
            [side * 28.0, -26.0, -16.0],
            [6.0, 16.0, 6.0],
            id(17, 53),
            None,
        );
        paint(
            &mut labels,
            [side * 25.0, -4.0, -20.0],
            [5.0, 5.0, 5.0],
            id(18, 54),
            None,
        );
    }
    paint(&mut labels, [0.0, -20.0, 2.0], [1.5, 9.0, 6.0], 14, None);
    paint(
        &mut labels,
        [0.0, -30.0, -40.0],
        [10.0, 12.0, 24.0],
        16,
        None,
    );
    paint(&mut labels, [0.0, -46.0, -36.0], [2.0, 4.0, 5.0], 15, None);
    paint(&mut labels, [0.0, -8.0, 26.0], [6.0, 30.0, 2.5], 253, None);
    // Parcellate the cortex (3/42) by nearest seed on the voxel's own side.
    for (idx, l) in labels.iter_mut().enumerate() {
        if *l != 3 && *l != 42 {
            continue;
        }
        let c = g.coords(idx);
        let p = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
        let q = [p[0].abs(), p[1], p[2]];
        let mut best = (f64::INFINITY, 0);
        for &(parcel, s) in PHANTOM_PARCEL_SEEDS {
            let d = (0..3).map(|a| (q[a] - s[a]).powi(2)).sum::<f64>();
            if d < best.0 {
                best = (d, parcel);
            }
        }
        *l = if *l == 3 {
            1000 + best.1
        } else {
            2000 + best.1
        };
    }
    Ok(Volume::new(g, labels)?)
}
