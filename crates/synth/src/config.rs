//! Typed parameters of the data engine, read from `configs/synth/synth.toml` (compiled in).

use crate::contrast::Contrast;
use crate::error::{Result, SynthError};
use crate::labels::Tissue;
use crate::lesion::{LesionClass, SdhStage};
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
    /// Gap between the back of the head and the scanner's head support (CT table, headrest).
    pub support_gap_mm: f64,
    /// Thickness of the head support.
    pub support_mm: f64,
    /// Probability per subject that the head support is in the image.
    pub support_probability: f64,
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
    /// Probability that the grid is tilted (oblique slices: CT gantry tilt along the
    /// orbitomeatal line, MR slices along AC–PC).
    pub tilt_probability: f64,
    /// Largest tilt about the left–right axis (pitch), degrees.
    pub tilt_max_deg: f64,
    /// Largest rotation about the other two axes of a tilted grid, degrees.
    pub tilt_other_max_deg: f64,
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

/// Per-class priors of the lesion samplers ([`crate::lesion::sample_lesion`]) and the change of
/// a lesion's size between sessions. Ranges are `[low, high]`, drawn uniformly; counts are
/// inclusive. A *level* is a value of a lesion's level field: 1 on its outline and proportional
/// to the distance from the centre along each ray. Wavelengths in `_radii` are multiples of the
/// lesion's drawn radius.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LesionsConfig {
    /// At each follow-up a lesion's linear scale is multiplied by `exp(drift + sd · N(0, 1))`;
    /// this is `sd`, the drift is the class's `scale_log_drift_per_followup`.
    pub scale_log_sd_per_followup: f64,
    /// Glioma.
    pub glioma: GliomaPrior,
    /// Metastasis.
    pub metastasis: MetastasisPrior,
    /// Acute and chronic infarcts.
    pub infarct: InfarctPrior,
    /// White-matter hyperintensities.
    pub wmh: WmhPrior,
    /// Meningioma.
    pub meningioma: MeningiomaPrior,
    /// Arachnoid cyst.
    pub arachnoid_cyst: ArachnoidCystPrior,
    /// Intraparenchymal haemorrhage.
    pub haemorrhage: HaemorrhagePrior,
    /// Subdural haematoma.
    pub subdural_haematoma: SubduralPrior,
    /// Pyogenic abscess.
    pub abscess: AbscessPrior,
}

/// Priors of a glioma.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GliomaPrior {
    /// Radius of the sphere its ellipsoids fill.
    pub radius_mm: [f64; 2],
    /// Number of ellipsoids.
    pub ellipsoids: [usize; 2],
    /// Probability of an enhancing rim around a necrotic core (else solid, non-enhancing).
    pub enhancing_probability: f64,
    /// Level of the second geometry that is necrotic core (enhancing gliomas).
    pub necrosis_level: [f64; 2],
    /// Level up to which white matter is edema.
    pub edema_level: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Priors of a metastasis.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetastasisPrior {
    /// Radius.
    pub radius_mm: [f64; 2],
    /// Metastases larger than this have a necrotic core.
    pub necrosis_above_radius_mm: f64,
    /// Level of the second geometry that is necrotic core.
    pub necrosis_level: [f64; 2],
    /// Level up to which white matter is edema.
    pub edema_level: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// The smooth deformation of a lesion's level field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deformation {
    /// Wavelengths, in radii of the lesion.
    pub wavelength_radii: [f64; 2],
    /// The deformation scales the level field within `1 ±` this.
    pub amplitude: f64,
}

/// [`Deformation`] with wavelengths in mm (white-matter hyperintensities).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeformationMm {
    /// Wavelengths, mm.
    pub wavelength_mm: [f64; 2],
    /// The deformation scales the level field within `1 ±` this.
    pub amplitude: f64,
}

/// Relative weights of the arterial territories an infarct is drawn in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerritoryWeights {
    /// Anterior cerebral artery.
    pub aca: u32,
    /// Posterior cerebral artery.
    pub pca: u32,
    /// Middle cerebral artery.
    pub mca: u32,
}

/// Priors of acute and chronic infarcts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfarctPrior {
    /// Weights of the territory.
    pub territory_weights: TerritoryWeights,
    /// Radius of the sphere its ellipsoids fill.
    pub radius_mm: [f64; 2],
    /// Number of ellipsoids.
    pub ellipsoids: [usize; 2],
    /// Level of the second geometry that is encephalomalacia (chronic infarcts; the rest is
    /// gliosis).
    pub encephalomalacia_level: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Priors of white-matter hyperintensities.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WmhPrior {
    /// Periventricular foci at burden 0 and at burden 1 (the burden is drawn per subject in
    /// `[0, 1]`; counts and radii are interpolated, then jittered).
    pub periventricular_foci: [usize; 2],
    /// Radius of a periventricular focus at burden 0 and 1 (each focus 0.6–1 of it).
    pub periventricular_radius_mm: [f64; 2],
    /// Share of the periventricular foci on the caps (the anterior and posterior quarter of the
    /// ventricular lining).
    pub cap_fraction: f64,
    /// Deep white-matter foci at burden 0 and 1.
    pub deep_foci: [usize; 2],
    /// Radius of a deep focus at burden 0 and 1 (each focus 0.6–1 of it).
    pub deep_radius_mm: [f64; 2],
    /// The smooth deformation of its level field, wavelengths in mm (the foci are small, the
    /// spread is not).
    pub deformation: DeformationMm,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Priors of a meningioma.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeningiomaPrior {
    /// Probability that it sits on the falx (else on the convexity).
    pub falx_probability: f64,
    /// Radius.
    pub radius_mm: [f64; 2],
    /// Probability of edema in the white matter beneath.
    pub edema_probability: f64,
    /// Level up to which white matter is edema, when there is edema.
    pub edema_level: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Priors of an arachnoid cyst.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArachnoidCystPrior {
    /// Probability of the middle cranial fossa.
    pub middle_fossa_probability: f64,
    /// Probability of the cerebellopontine angle when not in the middle fossa (else the
    /// posterior fossa).
    pub cerebellopontine_angle_probability: f64,
    /// Radius (middle and posterior fossa).
    pub radius_mm: [f64; 2],
    /// Radius in the cerebellopontine angle, a small cistern.
    pub cerebellopontine_angle_radius_mm: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Priors of an intraparenchymal haemorrhage.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaemorrhagePrior {
    /// Probability of a deep (putamen or thalamus) haemorrhage, else lobar.
    pub deep_probability: f64,
    /// Radius of a deep haemorrhage.
    pub deep_radius_mm: [f64; 2],
    /// Radius of a lobar haemorrhage.
    pub lobar_radius_mm: [f64; 2],
    /// Number of ellipsoids.
    pub ellipsoids: [usize; 2],
    /// Width of the rim of edema, whatever the size.
    pub edema_rim_mm: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Relative weights of the stages of a subdural haematoma.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageWeights {
    /// Acute (hyperdense blood).
    pub acute: u32,
    /// Chronic (CSF-like collection).
    pub chronic: u32,
    /// Acute-on-chronic.
    pub mixed: u32,
}

/// Priors of a subdural haematoma.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubduralPrior {
    /// Radius of its extent along the skull.
    pub radius_mm: [f64; 2],
    /// Largest thickness.
    pub thickness_mm: [f64; 2],
    /// Weights of the stage.
    pub stage_weights: StageWeights,
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up while acute.
    pub scale_log_drift_per_followup_acute: f64,
    /// Mean log change of the linear scale per follow-up when chronic or mixed.
    pub scale_log_drift_per_followup: f64,
}

/// Priors of a pyogenic abscess.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbscessPrior {
    /// Radius.
    pub radius_mm: [f64; 2],
    /// Probability of a daughter loculus.
    pub daughter_probability: f64,
    /// Thickness of the enhancing capsule.
    pub capsule_mm: [f64; 2],
    /// Level up to which white matter is edema.
    pub edema_level: [f64; 2],
    /// The smooth deformation of its level field.
    pub deformation: Deformation,
    /// Mean log change of the linear scale per follow-up.
    pub scale_log_drift_per_followup: f64,
}

/// Checks of one `[lesions.*]` table; each error names the key as `lesions.<table>.<key>`.
struct Checker<'a> {
    table: &'a str,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &str, want: &str, got: impl std::fmt::Debug) {
        self.problems
            .push(format!("{}.{key} must be {want} (got {got:?})", self.table));
    }

    /// `[low, high]` with `min ≤ low ≤ high`, finite.
    fn range(&mut self, key: &str, r: [f64; 2], min: f64) {
        if !(r.iter().all(|x| x.is_finite()) && min <= r[0] && r[0] <= r[1]) {
            self.fail(key, &format!("[low, high] with {min} <= low <= high"), r);
        }
    }

    /// A positive length range.
    fn mm(&mut self, key: &str, r: [f64; 2]) {
        if r[0] <= 0.0 {
            self.fail(key, "a range of positive lengths", r);
        } else {
            self.range(key, r, 0.0);
        }
    }

    fn count(&mut self, key: &str, r: [usize; 2]) {
        if !(1 <= r[0] && r[0] <= r[1]) {
            self.fail(key, "[low, high] with 1 <= low <= high", r);
        }
    }

    fn probability(&mut self, key: &str, p: f64) {
        if !(0.0..=1.0).contains(&p) {
            self.fail(key, "a probability in [0, 1]", p);
        }
    }

    fn finite(&mut self, key: &str, x: f64) {
        if !x.is_finite() {
            self.fail(key, "a finite number", x);
        }
    }

    /// A deformation: positive wavelengths, an amplitude in `[0, 0.8)` (the level field must
    /// stay positive for the extent bound).
    fn deformation(&mut self, key: &str, wavelength: [f64; 2], amplitude: f64) {
        self.mm(key, wavelength);
        if !(0.0..0.8).contains(&amplitude) {
            self.fail("deformation.amplitude", "in [0, 0.8)", amplitude);
        }
    }

    fn weights(&mut self, key: &str, w: &[u32]) {
        if w.iter().map(|&x| x as u64).sum::<u64>() == 0 || w.iter().any(|&x| x > 1_000_000) {
            self.fail(key, "weights with a positive sum, each at most 10⁶", w);
        }
    }
}

impl LesionsConfig {
    /// Every problem with the priors, each naming its key.
    fn problems(&self) -> Vec<String> {
        let mut all = Vec::new();
        let mut check = |table: &str, f: &dyn Fn(&mut Checker)| {
            let mut c = Checker {
                table,
                problems: Vec::new(),
            };
            f(&mut c);
            all.extend(c.problems);
        };
        check("lesions", &|c| {
            if !(self.scale_log_sd_per_followup >= 0.0
                && self.scale_log_sd_per_followup.is_finite())
            {
                c.fail(
                    "scale_log_sd_per_followup",
                    "finite and >= 0",
                    self.scale_log_sd_per_followup,
                );
            }
        });
        let p = &self.glioma;
        check("lesions.glioma", &|c| {
            c.mm("radius_mm", p.radius_mm);
            c.count("ellipsoids", p.ellipsoids);
            c.probability("enhancing_probability", p.enhancing_probability);
            c.range("necrosis_level", p.necrosis_level, 0.0);
            c.range("edema_level", p.edema_level, 1.0);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.metastasis;
        check("lesions.metastasis", &|c| {
            c.mm("radius_mm", p.radius_mm);
            c.finite("necrosis_above_radius_mm", p.necrosis_above_radius_mm);
            c.range("necrosis_level", p.necrosis_level, 0.0);
            c.range("edema_level", p.edema_level, 1.0);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.infarct;
        check("lesions.infarct", &|c| {
            let w = &p.territory_weights;
            c.weights("territory_weights", &[w.aca, w.pca, w.mca]);
            c.mm("radius_mm", p.radius_mm);
            c.count("ellipsoids", p.ellipsoids);
            c.range("encephalomalacia_level", p.encephalomalacia_level, 0.0);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.wmh;
        check("lesions.wmh", &|c| {
            c.count("periventricular_foci", p.periventricular_foci);
            c.mm("periventricular_radius_mm", p.periventricular_radius_mm);
            c.probability("cap_fraction", p.cap_fraction);
            c.count("deep_foci", p.deep_foci);
            c.mm("deep_radius_mm", p.deep_radius_mm);
            c.deformation(
                "deformation.wavelength_mm",
                p.deformation.wavelength_mm,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.meningioma;
        check("lesions.meningioma", &|c| {
            c.probability("falx_probability", p.falx_probability);
            c.mm("radius_mm", p.radius_mm);
            c.probability("edema_probability", p.edema_probability);
            c.range("edema_level", p.edema_level, 1.0);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.arachnoid_cyst;
        check("lesions.arachnoid_cyst", &|c| {
            c.probability("middle_fossa_probability", p.middle_fossa_probability);
            c.probability(
                "cerebellopontine_angle_probability",
                p.cerebellopontine_angle_probability,
            );
            c.mm("radius_mm", p.radius_mm);
            c.mm(
                "cerebellopontine_angle_radius_mm",
                p.cerebellopontine_angle_radius_mm,
            );
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.haemorrhage;
        check("lesions.haemorrhage", &|c| {
            c.probability("deep_probability", p.deep_probability);
            c.mm("deep_radius_mm", p.deep_radius_mm);
            c.mm("lobar_radius_mm", p.lobar_radius_mm);
            c.count("ellipsoids", p.ellipsoids);
            c.mm("edema_rim_mm", p.edema_rim_mm);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.subdural_haematoma;
        check("lesions.subdural_haematoma", &|c| {
            c.mm("radius_mm", p.radius_mm);
            c.mm("thickness_mm", p.thickness_mm);
            let w = &p.stage_weights;
            c.weights("stage_weights", &[w.acute, w.chronic, w.mixed]);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup_acute",
                p.scale_log_drift_per_followup_acute,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        let p = &self.abscess;
        check("lesions.abscess", &|c| {
            c.mm("radius_mm", p.radius_mm);
            c.probability("daughter_probability", p.daughter_probability);
            c.mm("capsule_mm", p.capsule_mm);
            c.range("edema_level", p.edema_level, 1.0);
            c.deformation(
                "deformation.wavelength_radii",
                p.deformation.wavelength_radii,
                p.deformation.amplitude,
            );
            c.finite(
                "scale_log_drift_per_followup",
                p.scale_log_drift_per_followup,
            );
        });
        all
    }

    /// Mean log change of the linear scale per follow-up of a lesion of `class` (a subdural
    /// haematoma's by its current `stage`).
    pub fn scale_log_drift_per_followup(&self, class: LesionClass, stage: Option<SdhStage>) -> f64 {
        match class {
            LesionClass::Glioma => self.glioma.scale_log_drift_per_followup,
            LesionClass::Metastasis => self.metastasis.scale_log_drift_per_followup,
            LesionClass::AcuteInfarct | LesionClass::ChronicInfarct => {
                self.infarct.scale_log_drift_per_followup
            }
            LesionClass::Wmh => self.wmh.scale_log_drift_per_followup,
            LesionClass::Meningioma => self.meningioma.scale_log_drift_per_followup,
            LesionClass::ArachnoidCyst => self.arachnoid_cyst.scale_log_drift_per_followup,
            LesionClass::Haemorrhage => self.haemorrhage.scale_log_drift_per_followup,
            LesionClass::SubduralHaematoma => match stage {
                Some(SdhStage::Acute) => self.subdural_haematoma.scale_log_drift_per_followup_acute,
                _ => self.subdural_haematoma.scale_log_drift_per_followup,
            },
            LesionClass::Abscess => self.abscess.scale_log_drift_per_followup,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    head: HeadConfig,
    spatial: SpatialConfig,
    intensity: IntensityConfig,
    lesions: LesionsConfig,
    skull_stripped: SkullStrippedConfig,
    atrophy: AtrophyConfig,
    tissues: BTreeMap<Tissue, BTreeMap<String, f64>>,
}

/// How much each subject's ventricles and sulci differ from the anatomy's own
/// ([`crate::atrophy`]); each drawn uniformly per subject.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtrophyConfig {
    /// Wall thickness added to the lateral ventricles (negative: removed), mm.
    pub ventricle_wall_mm: [f64; 2],
    /// Share of the cortex touching the CSF over the brain that becomes CSF (wider sulci).
    pub sulcal_widening: [f64; 2],
}

/// Scans that arrive skull-stripped (BET, SynthStrip, HD-BET output, or a stripped template
/// such as MNI152): the task engine zeroes a subject's MR inputs outside a random brain or
/// intracranial mask, when every mask its question asks for lies inside.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkullStrippedConfig {
    /// Probability that a question's scans are skull-stripped.
    pub probability: f64,
    /// Probability that the kept region is the intracranial volume rather than the brain mask.
    pub intracranial_probability: f64,
    /// The kept region is dilated by a radius drawn uniformly in this range (a stripping tool's
    /// margin).
    pub dilation_mm: [f64; 2],
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
    /// Lesion priors and their change between sessions.
    pub lesions: LesionsConfig,
    /// Skull-stripped inputs.
    pub skull_stripped: SkullStrippedConfig,
    /// Ventricle and sulcal size per subject.
    pub atrophy: AtrophyConfig,
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
        let sp = &file.spatial;
        if !(0.0..=1.0).contains(&sp.tilt_probability)
            || !(0.0..=45.0).contains(&sp.tilt_max_deg)
            || !(0.0..=45.0).contains(&sp.tilt_other_max_deg)
        {
            return Err(err(
                "tilt_probability must be in [0, 1] and tilt_max_deg, tilt_other_max_deg in \
                 [0, 45] degrees"
                    .into(),
            ));
        }
        let st = &file.skull_stripped;
        let stripping_valid = (0.0..=1.0).contains(&st.probability)
            && (0.0..=1.0).contains(&st.intracranial_probability)
            && 0.0 <= st.dilation_mm[0]
            && st.dilation_mm[0] <= st.dilation_mm[1];
        if !stripping_valid {
            return Err(err(
                "skull_stripped: probability and intracranial_probability must be in [0, 1] and \
                 dilation_mm a range 0 <= low <= high"
                    .into(),
            ));
        }
        let at = &file.atrophy;
        let atrophy_valid = at.ventricle_wall_mm[0] <= at.ventricle_wall_mm[1]
            && (-5.0..=10.0).contains(&at.ventricle_wall_mm[0])
            && (-5.0..=10.0).contains(&at.ventricle_wall_mm[1])
            && 0.0 <= at.sulcal_widening[0]
            && at.sulcal_widening[0] <= at.sulcal_widening[1]
            && at.sulcal_widening[1] <= 1.0;
        if !atrophy_valid {
            return Err(err(
                "atrophy: ventricle_wall_mm must be a range within [-5, 10] mm and \
                 sulcal_widening a range within [0, 1]"
                    .into(),
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
        if !(0.0..=1.0).contains(&h.support_probability)
            || !(0.0..=50.0).contains(&h.support_gap_mm)
            || !(0.0..=30.0).contains(&h.support_mm)
        {
            return Err(err(
                "support_probability must be in [0, 1], support_gap_mm in [0, 50] mm and \
                 support_mm in [0, 30] mm"
                    .into(),
            ));
        }
        if file.spatial.deformation_control_points < 2 || file.intensity.bias_control_points < 2 {
            return Err(err(
                "control-point grids need at least 2 points per axis".into()
            ));
        }
        let problems = file.lesions.problems();
        if !problems.is_empty() {
            return Err(err(problems.join("; ")));
        }
        Ok(SynthConfig {
            head: file.head,
            spatial: file.spatial,
            intensity: file.intensity,
            lesions: file.lesions,
            skull_stripped: file.skull_stripped,
            atrophy: file.atrophy,
            tissue_means,
            tissue_adc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped file with `old` replaced by `new` (which must occur once).
    fn edited(old: &str, new: &str) -> String {
        assert_eq!(SYNTH_TOML.matches(old).count(), 1, "{old:?}");
        SYNTH_TOML.replace(old, new)
    }

    fn problem(text: &str) -> String {
        match SynthConfig::parse(text, "test.toml") {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lesion_priors_parse() {
        let c = SynthConfig::builtin().unwrap();
        assert_eq!(c.lesions.glioma.radius_mm, [15.0, 35.0]);
        assert_eq!(c.lesions.subdural_haematoma.stage_weights.acute, 9);
        assert_eq!(
            c.lesions.scale_log_drift_per_followup(
                LesionClass::SubduralHaematoma,
                Some(SdhStage::Acute)
            ),
            -0.25
        );
        assert_eq!(
            c.lesions.scale_log_drift_per_followup(
                LesionClass::SubduralHaematoma,
                Some(SdhStage::Mixed)
            ),
            0.05
        );
    }

    #[test]
    fn invalid_lesion_priors_are_named() {
        let cases = [
            (
                "radius_mm = [15.0, 35.0]",
                "radius_mm = [35.0, 15.0]",
                "lesions.glioma.radius_mm",
            ),
            (
                "falx_probability = 0.3",
                "falx_probability = 1.5",
                "lesions.meningioma.falx_probability",
            ),
            (
                "territory_weights = { aca = 2, pca = 2, mca = 6 }",
                "territory_weights = { aca = 0, pca = 0, mca = 0 }",
                "lesions.infarct.territory_weights",
            ),
            (
                "deep_foci = [2, 14]",
                "deep_foci = [0, 14]",
                "lesions.wmh.deep_foci",
            ),
            (
                "capsule_mm = [2.5, 4.0]                    # enhancing",
                "capsule_mm = [-1.0, 4.0]                    # enhancing",
                "lesions.abscess.capsule_mm",
            ),
            (
                "deformation = { wavelength_radii = [1.0, 2.0], amplitude = 0.06 }",
                "deformation = { wavelength_radii = [1.0, 2.0], amplitude = 0.9 }",
                "lesions.abscess.deformation.amplitude",
            ),
            (
                "scale_log_sd_per_followup = 0.08",
                "scale_log_sd_per_followup = -0.08",
                "lesions.scale_log_sd_per_followup",
            ),
            (
                "dilation_mm = [0.0, 3.0]",
                "dilation_mm = [3.0, 0.0]",
                "skull_stripped",
            ),
            (
                "ventricle_wall_mm = [-1.5, 4.0]",
                "ventricle_wall_mm = [4.0, -1.5]",
                "atrophy",
            ),
        ];
        for (old, new, key) in cases {
            let e = problem(&edited(old, new));
            assert!(e.contains(key) && e.contains("test.toml"), "{key}: {e}");
        }
        // A missing or unknown key is named by the parser.
        let e = problem(&edited("deep_foci = [2, 14]", ""));
        assert!(e.contains("deep_foci"), "{e}");
        let e = problem(&edited(
            "deep_foci = [2, 14]",
            "deep_foci = [2, 14]\nfoci_mm = 2.0",
        ));
        assert!(e.contains("foci_mm"), "{e}");
    }
}
