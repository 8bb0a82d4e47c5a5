//! The one preprocessing path of the joint model, shared by training and inference (DESIGN.md
//! §7): every scan is *conformed* (reoriented to RAS, resampled with anti-aliasing to the
//! model's working spacing, intensities normalised by modality) before the vision network sees
//! it, and every probability map the network returns is *restored* onto its scan's own grid.
//!
//! - The conformed grid keeps the scan's field of view and centre. Its axes are the scan's
//!   axes permuted and flipped to the nearest RAS order (no rotation, so an oblique scan stays
//!   oblique and nothing is interpolated twice); an axis finer than the working spacing is
//!   resampled to it, a coarser one (a thick-slice axis) keeps its own spacing, which the
//!   network's native-space convolutions handle.
//! - Normalisation, one fixed rule per modality: MR maps its low/high percentiles of non-zero
//!   voxels to 0/1; CT maps a fixed Hounsfield window linearly to [0, 1] (clipped); ADC maps
//!   `[0, adc_max]` (10⁻³ mm²/s) to [0, 1] (clipped). Quantitative images keep their meaning
//!   across scanners, so they are not percentile-stretched.

use serde::{Deserialize, Serialize};
use synth::Contrast;
use voxel::intensity::{normalize_percentile, NormalizeOptions};
use voxel::orientation::AxisTransform;
use voxel::resample::{geometry_with_spacing, Interpolation, Resample, ResampleOptions};
use voxel::{Geometry, Image, Orientation};

use crate::error::{Result, TrainError};

/// What kind of intensities a scan holds, which decides its normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Any MR contrast with arbitrary units (T1, T2, FLAIR, PD, GRE, DWI, post-contrast T1).
    Mr,
    /// Computed tomography in Hounsfield units.
    Ct,
    /// An apparent-diffusion-coefficient map in 10⁻³ mm²/s.
    Adc,
}

impl Modality {
    /// The modality of a synthesised contrast.
    pub fn of_contrast(contrast: Contrast) -> Modality {
        match contrast {
            Contrast::Ct => Modality::Ct,
            Contrast::Adc => Modality::Adc,
            _ => Modality::Mr,
        }
    }

    /// The modality a metadata word names (`CT`, `ADC`, `T1w`, `FLAIR`, …); anything that is
    /// not CT or ADC is MR.
    pub fn from_name(name: &str) -> Modality {
        let n = name.trim().to_ascii_lowercase();
        if n == "ct" || n.starts_with("ct ") {
            Modality::Ct
        } else if n == "adc" || n.starts_with("adc ") {
            Modality::Adc
        } else {
            Modality::Mr
        }
    }

    /// A guess from the intensities alone, for volumes of unknown origin: a scan with a
    /// sizeable share of voxels at or below −500 is CT in Hounsfield units (air); anything
    /// else is treated as MR.
    pub fn guess(image: &Image) -> Modality {
        let n = image.data().len().max(1);
        let air = image.data().iter().filter(|&&v| v <= -500.0).count();
        if air * 20 >= n {
            Modality::Ct
        } else {
            Modality::Mr
        }
    }
}

/// The preprocessing settings a model was trained with (stored in its directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Working voxel size, mm: finer axes are resampled to it, coarser ones kept.
    pub spacing_mm: f64,
    /// MR: percentiles (0–100, of non-zero voxels) mapped to 0 and 1.
    pub mr_percentiles: [f64; 2],
    /// CT: Hounsfield window mapped to [0, 1].
    pub ct_window_hu: [f64; 2],
    /// ADC: the value (10⁻³ mm²/s) mapped to 1; 0 maps to 0.
    pub adc_max: f64,
}

impl Preprocessing {
    /// The defaults at a working spacing: MR 0.5/99.5th percentiles, CT window −100…200 HU
    /// (brain tissue mid-range, air 0, bone 1), ADC 0…3.5 × 10⁻³ mm²/s (free water near 1).
    pub fn at_spacing(spacing_mm: f64) -> Preprocessing {
        Preprocessing {
            spacing_mm,
            mr_percentiles: [0.5, 99.5],
            ct_window_hu: [-100.0, 200.0],
            adc_max: 3.5,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |problem: String| {
            Err(TrainError::Settings {
                what: "preprocessing".into(),
                problem,
            })
        };
        if !(self.spacing_mm > 0.0 && self.spacing_mm.is_finite()) {
            return bad(format!("spacing_mm {} must be positive", self.spacing_mm));
        }
        let [lo, hi] = self.mr_percentiles;
        if !((0.0..100.0).contains(&lo) && lo < hi && hi <= 100.0) {
            return bad(format!(
                "mr_percentiles {lo}, {hi} must satisfy 0 ≤ low < high ≤ 100"
            ));
        }
        let [a, b] = self.ct_window_hu;
        if !(a < b && a.is_finite() && b.is_finite()) {
            return bad(format!("ct_window_hu {a}, {b} must be increasing"));
        }
        if !(self.adc_max > 0.0 && self.adc_max.is_finite()) {
            return bad(format!("adc_max {} must be positive", self.adc_max));
        }
        Ok(())
    }

    /// The conformed grid of a scan on `source` (see the module docs).
    pub fn grid(&self, source: &Geometry) -> Result<Geometry> {
        let transform = AxisTransform::between(source.orientation(), Orientation::RAS);
        let shape = transform.output_shape(source.shape());
        let affine = source
            .affine()
            .compose(&transform.output_to_input(source.shape()));
        let ras = Geometry::new(shape, affine)?;
        let spacing = ras.spacing_mm().map(|s| {
            if s < self.spacing_mm * (1.0 - 1e-3) {
                self.spacing_mm
            } else {
                s
            }
        });
        Ok(geometry_with_spacing(&ras, spacing)?)
    }

    /// `image` on its conformed grid with normalised intensities.
    pub fn conform(&self, image: &Image, modality: Modality) -> Result<Image> {
        let grid = self.grid(image.geometry())?;
        self.conform_onto(image, modality, &grid)
    }

    /// `image` resampled onto `grid` (e.g. the conformed grid of another stream of the same
    /// subject) with normalised intensities.
    pub fn conform_onto(
        &self,
        image: &Image,
        modality: Modality,
        grid: &Geometry,
    ) -> Result<Image> {
        let resampled = if grid.same_grid(image.geometry(), 1e-4) {
            image.clone()
        } else {
            image.resample(grid, &ResampleOptions::linear())?
        };
        self.normalise(&resampled, modality)
    }

    /// Intensities mapped to the network's range by the rule of `modality`.
    pub fn normalise(&self, image: &Image, modality: Modality) -> Result<Image> {
        let window = |lo: f64, hi: f64| {
            let scale = 1.0 / (hi - lo);
            image.map(move |v| {
                let x = ((f64::from(v) - lo) * scale).clamp(0.0, 1.0);
                if x.is_nan() {
                    0.0
                } else {
                    x as f32
                }
            })
        };
        Ok(match modality {
            Modality::Mr => normalize_percentile(
                image,
                &NormalizeOptions {
                    low_percentile: self.mr_percentiles[0],
                    high_percentile: self.mr_percentiles[1],
                    nonzero_only: true,
                },
            )?,
            Modality::Ct => window(self.ct_window_hu[0], self.ct_window_hu[1]),
            Modality::Adc => window(0.0, self.adc_max),
        })
    }

    /// A map on a conformed grid (probabilities, a soft mask) put back onto `source`, the grid
    /// of the scan it came from, by linear interpolation.
    pub fn restore(&self, map: &Image, source: &Geometry) -> Result<Image> {
        if map.geometry().same_grid(source, 1e-4) {
            return Ok(map.clone());
        }
        Ok(map.resample(
            source,
            &ResampleOptions {
                interpolation: Interpolation::Linear,
                fill: 0.0,
                anti_alias: false,
            },
        )?)
    }

    /// A 0/1 map on `source` (a true mask) carried onto a conformed `grid`, as fractions, for
    /// the soft Dice of training.
    pub fn carry_mask(&self, mask: &Image, grid: &Geometry) -> Result<Image> {
        if grid.same_grid(mask.geometry(), 1e-4) {
            return Ok(mask.clone());
        }
        Ok(mask.resample(grid, &ResampleOptions::linear())?)
    }
}
