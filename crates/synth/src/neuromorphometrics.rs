//! The CAT12 neuromorphometrics maximum-probability atlas (MNI152 space, shipped in the PyPI
//! package `deepmriprep`) as a brain label map in synth's FreeSurfer-compatible id space: the
//! remap table (`configs/synth/neuromorphometrics.toml`, compiled in), sulcal CSF carved out of
//! the grey-matter labels with the CAT12 tissue template, and the MNI → adult size scaling.
//! [`crate::Anatomy::neuromorphometrics`] adds the head model.

use crate::error::{Result, SynthError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use voxel::resample::{Resample, ResampleOptions};
use voxel::{Affine, Image, LabelMap};

/// The remap table shipped with the crate.
pub const NEUROMORPHOMETRICS_TOML: &str =
    include_str!("../../../configs/synth/neuromorphometrics.toml");

const WHAT: &str = "configs/synth/neuromorphometrics.toml";

/// Files and parameters of the atlas (the `[atlas]` table).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtlasConfig {
    /// Label map, relative to the anatomy cache.
    pub labels_file: String,
    /// CAT12 tissue template (frames: grey matter, white matter, rest), relative to the cache.
    pub tissue_file: String,
    /// Grey + white matter probability below which a `carve` voxel becomes sulcal CSF.
    pub min_tissue_probability: f64,
    /// Isotropic scale applied to the atlas grid about the MNI origin (MNI → adult size).
    pub scale: f64,
}

/// One atlas label and the synth id it becomes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtlasLabel {
    /// Id in the atlas file.
    pub nmm: i32,
    /// FreeSurfer-compatible id in the anatomy label map.
    pub id: i32,
    /// Name in the atlas' label table.
    pub name: String,
    /// Whether the label's voxels outside the template's brain tissue are sulcal CSF.
    #[serde(default)]
    pub carve: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    atlas: AtlasConfig,
    label: Vec<AtlasLabel>,
}

/// The parsed remap table.
#[derive(Clone, Debug)]
pub struct Remap {
    /// Files and parameters.
    pub atlas: AtlasConfig,
    /// Every atlas label, in file order.
    pub labels: Vec<AtlasLabel>,
    by_nmm: BTreeMap<i32, usize>,
}

impl Remap {
    /// The table compiled into the crate.
    pub fn builtin() -> Result<Remap> {
        Remap::parse(NEUROMORPHOMETRICS_TOML, WHAT)
    }

    /// Parses a remap table; `what` names it in errors. Atlas ids must be unique and positive,
    /// synth ids positive and used by one atlas id each.
    pub fn parse(text: &str, what: &str) -> Result<Remap> {
        let err = |problem: String| SynthError::Config {
            what: what.to_string(),
            problem,
        };
        let file: File = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let a = &file.atlas;
        if !(a.scale > 0.5 && a.scale <= 1.5) {
            return Err(err(format!("atlas.scale {} outside (0.5, 1.5]", a.scale)));
        }
        if !(0.0..=1.0).contains(&a.min_tissue_probability) {
            return Err(err(format!(
                "atlas.min_tissue_probability {} outside [0, 1]",
                a.min_tissue_probability
            )));
        }
        let mut by_nmm = BTreeMap::new();
        let mut by_id: BTreeMap<i32, i32> = BTreeMap::new();
        for (i, l) in file.label.iter().enumerate() {
            if l.nmm <= 0 || l.id <= 0 {
                return Err(err(format!(
                    "{:?}: ids must be positive (0 is background)",
                    l.name
                )));
            }
            if by_nmm.insert(l.nmm, i).is_some() {
                return Err(err(format!("atlas id {} is listed twice", l.nmm)));
            }
            if let Some(other) = by_id.insert(l.id, l.nmm) {
                return Err(err(format!(
                    "atlas ids {other} and {} both become {}",
                    l.nmm, l.id
                )));
            }
        }
        Ok(Remap {
            atlas: file.atlas,
            labels: file.label,
            by_nmm,
        })
    }

    /// The entry of atlas id `nmm`.
    pub fn get(&self, nmm: i32) -> Option<&AtlasLabel> {
        self.by_nmm.get(&nmm).map(|&i| &self.labels[i])
    }

    /// Remaps an atlas label map (read from `path`, named in errors); where `tissue` (grey +
    /// white matter probability on the same grid) is given, `carve` labels below
    /// `min_tissue_probability` become 0. Fails on an atlas id the table lacks.
    pub fn apply(&self, atlas: &LabelMap, tissue: Option<&Image>, path: &Path) -> Result<LabelMap> {
        if let Some(t) = tissue {
            atlas
                .geometry()
                .require_same_grid(t.geometry(), "carving sulcal CSF")?;
        }
        let min_p = self.atlas.min_tissue_probability as f32;
        let mut out = Vec::with_capacity(atlas.data().len());
        for (i, &l) in atlas.data().iter().enumerate() {
            if l == 0 {
                out.push(0);
                continue;
            }
            let e = self.get(l).ok_or_else(|| SynthError::Config {
                what: WHAT.into(),
                problem: format!(
                    "{} has label {l}, which the table does not list; add it",
                    path.display()
                ),
            })?;
            let sulcal = e.carve && tissue.is_some_and(|t| t.data()[i] < min_p);
            out.push(if sulcal { 0 } else { e.id });
        }
        Ok(atlas.with_data(out)?)
    }
}

/// The neuromorphometrics brain from the anatomy cache: remapped, sulcal CSF carved, reoriented
/// to RAS and scaled by `atlas.scale` about the world origin. No head model, no cropping.
pub fn load_brain(cache_dir: &Path, remap: &Remap) -> Result<LabelMap> {
    let labels_path = cache_dir.join(&remap.atlas.labels_file);
    let tissue_path = cache_dir.join(&remap.atlas.tissue_file);
    for p in [&labels_path, &tissue_path] {
        if !p.exists() {
            return Err(SynthError::MissingSource { path: p.clone() });
        }
    }
    let atlas = voxel::io::read_labels(&labels_path)?;
    let frames = voxel::io::read_image_frames(&tissue_path)?;
    let [gm, wm] = match frames.as_slice() {
        [gm, wm, ..] => [gm, wm],
        _ => {
            return Err(SynthError::Config {
                what: WHAT.into(),
                problem: format!(
                    "{} has {} frame(s); the tissue template needs grey and white matter",
                    tissue_path.display(),
                    frames.len()
                ),
            })
        }
    };
    let brain_p = gm.zip_map(wm, |g, w| g + w)?;
    // Trilinear, no anti-aliasing: the 1.5 mm template is upsampled onto the 1 mm atlas grid.
    let options = ResampleOptions {
        anti_alias: false,
        ..ResampleOptions::linear()
    };
    let brain_p = brain_p.resample(atlas.geometry(), &options)?;
    let brain = remap.apply(&atlas, Some(&brain_p), &labels_path)?.to_ras();
    scale_about_origin(&brain, remap.atlas.scale)
}

/// The same voxels on a grid scaled by `s` about world (0, 0, 0).
fn scale_about_origin(labels: &LabelMap, s: f64) -> Result<LabelMap> {
    let m = Affine::from_spacing_origin([s; 3], [0.0; 3]);
    let g = labels
        .geometry()
        .with_affine(m.compose(labels.geometry().affine()))?;
    Ok(LabelMap::new(g, labels.data().to_vec())?)
}
