//! Training settings of the single-task baseline, read from `configs/train/baseline.toml` and
//! recorded in every checkpoint so inference repeats the training-time preprocessing.

use serde::{Deserialize, Serialize};
use synth::Contrast;
use voxel::intensity::NormalizeOptions;

use crate::error::{Result, TrainError};

/// The shipped defaults (`configs/train/baseline.toml`).
pub const BASELINE_TOML: &str = include_str!("../../../configs/train/baseline.toml");

/// How training subjects are synthesised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthesisSettings {
    /// Range of the isotropic voxel size subjects are synthesised at, mm.
    pub spacing_mm: [f64; 2],
    /// Contrast names (`t1`, `t2`, `flair`, `pd`, …), drawn uniformly.
    pub contrasts: Vec<String>,
    /// Probability of SynthSeg-style random tissue intensities.
    pub randomised_probability: f64,
    /// Random shift of the patch centre, as a fraction of the patch edge.
    pub jitter_fraction: f64,
}

/// Anatomical masking: zero the image outside a (dilated) brain or intracranial mask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingSettings {
    /// Probability that a sample is masked.
    pub probability: f64,
    /// Probability that the mask is the intracranial volume rather than the brain.
    pub intracranial_probability: f64,
    /// Range of the dilation radius, mm.
    pub dilation_mm: [f64; 2],
}

/// Percentile intensity normalisation (over non-zero voxels) to [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisationSettings {
    /// Percentile mapped to 0.
    pub low_percentile: f64,
    /// Percentile mapped to 1.
    pub high_percentile: f64,
}

impl NormalisationSettings {
    /// The `voxel` options implementing these settings.
    pub fn options(&self) -> NormalizeOptions {
        NormalizeOptions {
            low_percentile: self.low_percentile,
            high_percentile: self.high_percentile,
            nonzero_only: true,
        }
    }
}

/// Everything that defines a baseline training run apart from the network size and seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSettings {
    /// Vocabulary target segmented, e.g. `brain`.
    pub target: String,
    /// Isotropic voxel size the network sees, mm.
    pub spacing_mm: f64,
    /// Training patch, voxels.
    pub patch_shape: [usize; 3],
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Steps between progress lines.
    pub log_every: usize,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Subject synthesis.
    pub synthesis: SynthesisSettings,
    /// Anatomical masking augmentation.
    pub masking: MaskingSettings,
    /// Intensity normalisation.
    pub normalisation: NormalisationSettings,
}

impl BaselineSettings {
    /// The shipped defaults.
    pub fn builtin() -> Result<BaselineSettings> {
        Self::parse(BASELINE_TOML, "configs/train/baseline.toml")
    }

    /// Parses and checks settings from TOML text; `what` names the source in errors.
    pub fn parse(text: &str, what: &str) -> Result<BaselineSettings> {
        let settings: BaselineSettings =
            toml::from_str(text).map_err(|e| TrainError::Settings {
                what: what.to_string(),
                problem: e.to_string(),
            })?;
        settings.validate(what)?;
        Ok(settings)
    }

    /// The contrasts to draw from.
    pub fn contrasts(&self) -> Result<Vec<Contrast>> {
        self.synthesis
            .contrasts
            .iter()
            .map(|c| Contrast::parse(c).map_err(TrainError::from))
            .collect()
    }

    /// Checks ranges; `what` names the source in errors.
    pub fn validate(&self, what: &str) -> Result<()> {
        let bad = |problem: String| {
            Err(TrainError::Settings {
                what: what.to_string(),
                problem,
            })
        };
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        let [s0, s1] = self.synthesis.spacing_mm;
        let [d0, d1] = self.masking.dilation_mm;
        if !(self.spacing_mm > 0.0 && self.spacing_mm.is_finite()) {
            return bad(format!("spacing_mm {} must be positive", self.spacing_mm));
        }
        if self.patch_shape.contains(&0) {
            return bad(format!(
                "patch_shape {:?} has an empty axis",
                self.patch_shape
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "learning_rate {} must be positive",
                self.learning_rate
            ));
        }
        if self.log_every == 0 || self.checkpoint_every == 0 {
            return bad("log_every and checkpoint_every must be at least 1".into());
        }
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return bad(format!(
                "synthesis.spacing_mm {:?} must be 0 < lo ≤ hi",
                [s0, s1]
            ));
        }
        if self.synthesis.contrasts.is_empty() {
            return bad("synthesis.contrasts is empty".into());
        }
        self.contrasts().map_err(|e| TrainError::Settings {
            what: what.to_string(),
            problem: e.to_string(),
        })?;
        if !probability(self.synthesis.randomised_probability)
            || !probability(self.masking.probability)
            || !probability(self.masking.intracranial_probability)
        {
            return bad("probabilities must lie in [0, 1]".into());
        }
        if !(0.0..=0.5).contains(&self.synthesis.jitter_fraction) {
            return bad("synthesis.jitter_fraction must lie in [0, 0.5]".into());
        }
        if !(d0 >= 0.0 && d0 <= d1 && d1.is_finite()) {
            return bad(format!(
                "masking.dilation_mm {:?} must be 0 ≤ lo ≤ hi",
                [d0, d1]
            ));
        }
        let n = &self.normalisation;
        if !(0.0 <= n.low_percentile && n.low_percentile < n.high_percentile)
            || n.high_percentile > 100.0
        {
            return bad("normalisation percentiles must satisfy 0 ≤ low < high ≤ 100".into());
        }
        Ok(())
    }

    /// Checks that the patch suits a network of `levels` levels (each axis a multiple of
    /// `2^(levels-1)`, so pooling never pads a training patch).
    pub fn check_patch_for(&self, levels: usize) -> Result<()> {
        let multiple = 1usize << levels.saturating_sub(1);
        if self.patch_shape.iter().any(|&n| n % multiple != 0) {
            return Err(TrainError::Settings {
                what: "patch_shape".into(),
                problem: format!(
                    "{:?} is not a multiple of {multiple} on every axis, as a {levels}-level \
                     network needs",
                    self.patch_shape
                ),
            });
        }
        Ok(())
    }
}
