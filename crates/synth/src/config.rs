//! Typed parameters of the data engine, read from `configs/synth/synth.toml` (compiled in).

use crate::contrast::Contrast;
use crate::error::{Result, SynthError};
use crate::labels::Tissue;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The parameter file shipped with the crate.
pub const SYNTH_TOML: &str = include_str!("../../../configs/synth/synth.toml");

/// Which head model surrounds the brain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadModel {
    /// Dura, falx, tentorium, skull tables and diploë, muscles, fat, skin, orbits, sinuses,
    /// face and neck ([`crate::head`]).
    #[default]
    Layers,
    /// Three distance shells only (CSF, skull, scalp) and air beyond: the data engine before
    /// the head model, kept as the ablation that measures what the head buys.
    Shells,
}

/// Thicknesses of the head-model layers around the brain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Head model: `layers` (default) or `shells`.
    #[serde(default)]
    pub model: HeadModel,
    /// CSF shell around the brain (and sulcal CSF up to twice this width).
    pub csf_shell_mm: f64,
    /// Radius of the closing that turns the brain into the skull cavity.
    pub closing_radius_mm: f64,
    /// Mean skull thickness (both tables and the diploë).
    pub skull_mm: f64,
    /// Largest relative deviation of the local skull thickness from `skull_mm`.
    pub skull_thickness_variation: f64,
    /// Fraction of the local skull thickness taken by each table.
    pub skull_table_fraction: f64,
    /// Dura thickness (also of the falx and tentorium).
    pub dura_mm: f64,
    /// Soft tissue over the skull (skin and subcutaneous fat).
    pub scalp_mm: f64,
    /// Skin thickness, the outer part of the soft tissue.
    pub skin_mm: f64,
    /// Largest thickness of the temporalis muscles.
    pub temporalis_mm: f64,
    /// Reach of the anatomy grid below the brain (the neck).
    pub neck_length_mm: f64,
    /// Reach of the anatomy grid in front of the brain beyond skull and scalp (the face).
    pub face_depth_mm: f64,
    /// Largest distance of a falx or tentorium voxel from the brain on either side.
    pub dural_fold_reach_mm: f64,
    /// Gap between the falx's free edge and the corpus callosum and ventricles.
    pub falx_clearance_mm: f64,
    /// Radius of the tentorial notch around the brainstem.
    pub incisura_mm: f64,
    /// Probability per subject of SynthStrip-style random classes outside the cavity.
    pub random_fields_probability: f64,
    /// Control points per axis of the random class field.
    pub random_fields_control_points: usize,
    /// Number of random classes (at most [`crate::labels::RANDOM_HEAD_CLASSES`]).
    pub random_fields_classes: usize,
    /// Probability per subject that the diploë is drawn as cortical bone.
    pub no_diploe_probability: f64,
    /// Probability per subject that the subcutaneous fat is drawn as skin.
    pub thin_fat_probability: f64,
}

/// Ranges of the random spatial variation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialConfig {
    /// Largest rotation about each axis, degrees.
    pub rotation_deg: f64,
    /// Scale is drawn in `[1 - scale, 1 + scale]` per axis.
    pub scale: f64,
    /// Largest absolute shear term.
    pub shear: f64,
    /// Largest shift per axis.
    pub translation_mm: f64,
    /// Control points per axis of the smooth deformation.
    pub deformation_control_points: usize,
    /// The displacement sd is drawn in `[0, deformation_max_sd_mm]`.
    pub deformation_max_sd_mm: f64,
    /// Probability of a left-right flip (with label swap).
    pub flip_probability: f64,
    /// Full field of view of the output grid.
    pub fov_mm: [f64; 3],
    /// Each axis keeps a random fraction in `[fov_min_fraction, 1]` of `fov_mm`.
    pub fov_min_fraction: f64,
    /// Relative weights of the fields of view as acquired.
    pub fov_mode_weights: BTreeMap<crate::spatial::FovMode, f64>,
    /// Probability that a contrast is acquired with thick slices.
    pub thick_slice_probability: f64,
    /// Range of the slice spacing of thick-slice acquisitions.
    pub slice_spacing_mm: [f64; 2],
    /// Residual rotation between sessions, degrees.
    pub session_rotation_deg: f64,
    /// Residual shift between sessions.
    pub session_translation_mm: f64,
}

/// Ranges of the intensity synthesis.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntensityConfig {
    /// Relative spread of tissue means between subjects.
    pub tissue_sd: f64,
    /// Within-tissue noise range.
    pub texture_sd: [f64; 2],
    /// Partial-volume blur range, voxels (MR).
    pub blur_sigma_vox: [f64; 2],
    /// Point-spread range of CT reconstructions, mm (sharper than MR).
    pub ct_blur_sigma_mm: [f64; 2],
    /// Range of the sd of the log bias field.
    pub bias_sd: [f64; 2],
    /// Control points per axis of the bias field.
    pub bias_control_points: usize,
    /// Gamma is `exp(N(0, gamma_sd))`.
    pub gamma_sd: f64,
    /// Acquisition noise range after normalisation.
    pub noise_sd: [f64; 2],
    /// Intensity percentile mapped to 1.
    pub normalise_percentile: f64,
    /// CT window mapped to [0, 1].
    pub ct_window_hu: [f64; 2],
    /// ADC value mapped to 1 (1e-3 mm²/s).
    pub adc_max: f64,
    /// Diffusion weighting of DWI, s/mm².
    pub dwi_b: f64,
    /// Relative lesion/surroundings difference below which a lesion is isointense.
    pub iso_tolerance: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    head: HeadConfig,
    spatial: SpatialConfig,
    intensity: IntensityConfig,
    tissues: BTreeMap<Tissue, BTreeMap<String, f64>>,
}

/// All parameters of the data engine.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Head model.
    pub head: HeadConfig,
    /// Spatial variation.
    pub spatial: SpatialConfig,
    /// Intensity synthesis.
    pub intensity: IntensityConfig,
    /// Mean intensity of each tissue per contrast (`[tissue][contrast]`, DWI derived).
    pub tissue_means: BTreeMap<Tissue, BTreeMap<Contrast, f64>>,
    /// ADC of each tissue, 1e-3 mm²/s.
    pub tissue_adc: BTreeMap<Tissue, f64>,
}

impl SynthConfig {
    /// The configuration compiled into the crate.
    pub fn builtin() -> Result<SynthConfig> {
        SynthConfig::parse(SYNTH_TOML, "configs/synth/synth.toml")
    }

    /// Parses a configuration; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<SynthConfig> {
        let err = |problem: String| SynthError::Config {
            what: what.to_string(),
            problem,
        };
        let file: File = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut tissue_means = BTreeMap::new();
        let mut tissue_adc = BTreeMap::new();
        for t in Tissue::ALL {
            let row = file
                .tissues
                .get(&t)
                .ok_or_else(|| err(format!("tissue {t:?} has no row in [tissues]")))?;
            let mut means = BTreeMap::new();
            for c in Contrast::ALL {
                if matches!(c, Contrast::Dwi | Contrast::Adc) {
                    continue;
                }
                let v = row
                    .get(c.name())
                    .ok_or_else(|| err(format!("tissue {t:?} has no {} value", c.name())))?;
                means.insert(c, *v);
            }
            let adc = *row
                .get("adc")
                .ok_or_else(|| err(format!("tissue {t:?} has no adc value")))?;
            tissue_adc.insert(t, adc);
            tissue_means.insert(t, means);
        }
        if file
            .spatial
            .fov_mode_weights
            .values()
            .any(|&w| w.is_nan() || w < 0.0)
            || file.spatial.fov_mode_weights.values().sum::<f64>() <= 0.0
        {
            return Err(err(
                "fov_mode_weights must be non-negative with a positive sum".into(),
            ));
        }
        let h = &file.head;
        if h.random_fields_classes == 0
            || h.random_fields_classes > crate::labels::RANDOM_HEAD_CLASSES as usize
            || h.random_fields_control_points < 2
        {
            return Err(err(format!(
                "random_fields_classes must be in 1..={} and random_fields_control_points >= 2",
                crate::labels::RANDOM_HEAD_CLASSES
            )));
        }
        if !(0.0..0.5).contains(&h.skull_table_fraction)
            || !(0.0..1.0).contains(&h.skull_thickness_variation)
        {
            return Err(err(
                "skull_table_fraction must be in [0, 0.5) and skull_thickness_variation in [0, 1)"
                    .into(),
            ));
        }
        if file.spatial.deformation_control_points < 2 || file.intensity.bias_control_points < 2 {
            return Err(err(
                "control-point grids need at least 2 points per axis".into()
            ));
        }
        Ok(SynthConfig {
            head: file.head,
            spatial: file.spatial,
            intensity: file.intensity,
            tissue_means,
            tissue_adc,
        })
    }
}
