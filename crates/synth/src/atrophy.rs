//! Brains differ in how large their ventricles and sulci are (age, atrophy, hydrocephalus): the
//! anatomy sources are each one point of that range (fsaverage's lateral ventricles hold
//! ~40 mL, a young adult's ~10, an old one's 60–100). Each subject draws a ventricle wall
//! thickness to add (or remove) and a width of cortex to give to the CSF over the convexity,
//! applied to the template labels before they are warped, at the template's own resolution.
//!
//! The distances are measured once per anatomy ([`AtrophyMaps`]) and kept in 0.1 mm steps,
//! so a subject's atrophy is one pass over the template.

use crate::config::AtrophyConfig;
use crate::error::{Result, SynthError};
use crate::labels::{
    is_cerebral_cortex, is_lateral_ventricle, EXTRACEREBRAL_CSF, LEFT_CAUDATE,
    LEFT_CEREBRAL_WHITE_MATTER, LEFT_LATERAL_VENTRICLE, LEFT_THALAMUS, RIGHT_CAUDATE,
    RIGHT_CEREBRAL_WHITE_MATTER, RIGHT_LATERAL_VENTRICLE, RIGHT_THALAMUS,
};
use crate::rng::{normal, uniform};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;
use voxel::distance::distance_to_mask_mm;
use voxel::LabelMap;

/// Distances are stored in steps of this many mm, saturating at 255 steps.
const STEP_MM: f32 = 0.1;
/// Wavelengths of the field that picks where sulci widen: lobes' worth of cortex at a time.
const SULCAL_WAVELENGTH_MM: [f64; 2] = [30.0, 80.0];

/// Per-voxel distances of a template, in [`STEP_MM`] steps (255 = that far or farther).
#[derive(Clone, Debug)]
pub struct AtrophyMaps {
    /// From each voxel to the nearest lateral-ventricle voxel (0 inside).
    to_ventricle: Vec<u8>,
    /// From each lateral-ventricle voxel to the nearest voxel that is not (0 outside).
    to_ventricle_wall: Vec<u8>,
    /// From each voxel to the nearest CSF over the brain ([`EXTRACEREBRAL_CSF`]).
    to_outer_csf: Vec<u8>,
    /// Distance (steps) within which cortex touches that CSF: the template's largest spacing.
    outer_layer: u8,
}

fn steps(distance_mm: &[f32]) -> Vec<u8> {
    distance_mm
        .par_iter()
        .map(|&d| (d / STEP_MM).round().clamp(0.0, 255.0) as u8)
        .collect()
}

fn to_steps(mm: f64) -> u8 {
    (mm as f32 / STEP_MM).round().clamp(0.0, 255.0) as u8
}

impl AtrophyMaps {
    /// The maps of `labels`; `None` when it has no lateral ventricle or no CSF over the brain
    /// (nothing to grow from).
    pub fn new(labels: &LabelMap) -> Result<Option<AtrophyMaps>> {
        let ventricles = labels.map(is_lateral_ventricle);
        let outer_csf = labels.map(|l| l == EXTRACEREBRAL_CSF);
        if ventricles.is_empty()
            || outer_csf.is_empty()
            || ventricles.count() == ventricles.data().len()
        {
            return Ok(None);
        }
        let not_ventricles = ventricles.map(|v| !v);
        Ok(Some(AtrophyMaps {
            to_ventricle: steps(distance_to_mask_mm(&ventricles)?.data()),
            to_ventricle_wall: steps(distance_to_mask_mm(&not_ventricles)?.data()),
            to_outer_csf: steps(distance_to_mask_mm(&outer_csf)?.data()),
            outer_layer: to_steps(
                labels
                    .geometry()
                    .spacing_mm()
                    .iter()
                    .copied()
                    .fold(0.0, f64::max),
            ),
        }))
    }
}

/// One subject's draw: mm of wall added to the lateral ventricles (negative: taken from them)
/// and the share of the outer cortical layer that becomes CSF, in patches.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Atrophy {
    /// Thickness added to (or, negative, removed from) the lateral ventricles' walls.
    pub ventricle_wall_mm: f64,
    /// Share of the cortex touching the CSF over the brain (one template voxel deep) that
    /// becomes CSF: where a smooth random field is lowest, so whole stretches of sulci widen.
    pub sulcal_widening: f64,
    /// The field: plane waves (wave vector in radians per mm, phase).
    pub sulcal_waves: [([f64; 3], f64); 4],
}

impl Atrophy {
    /// A subject's draw from `config`.
    pub fn sample(config: &AtrophyConfig, rng: &mut impl Rng) -> Atrophy {
        let ventricle_wall_mm = uniform(
            rng,
            config.ventricle_wall_mm[0],
            config.ventricle_wall_mm[1],
        );
        let sulcal_widening = uniform(rng, config.sulcal_widening[0], config.sulcal_widening[1]);
        let sulcal_waves = std::array::from_fn(|_| {
            let direction: [f64; 3] = std::array::from_fn(|_| normal(rng));
            let norm = direction
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(1e-9);
            let k = std::f64::consts::TAU
                / uniform(rng, SULCAL_WAVELENGTH_MM[0], SULCAL_WAVELENGTH_MM[1]);
            (
                direction.map(|d| d / norm * k),
                uniform(rng, 0.0, std::f64::consts::TAU),
            )
        });
        Atrophy {
            ventricle_wall_mm,
            sulcal_widening,
            sulcal_waves,
        }
    }

    fn field(&self, p: [f64; 3]) -> f64 {
        self.sulcal_waves
            .iter()
            .map(|(k, phase)| (k[0] * p[0] + k[1] * p[1] + k[2] * p[2] + phase).sin())
            .sum()
    }

    /// `labels` (whose distances `maps` holds) with this atrophy: white matter, caudate and
    /// thalamus within the added wall join the lateral ventricle of their side; ventricle within
    /// a removed wall becomes white matter of its side; the chosen share of the outer cortex
    /// becomes CSF. Borrowed unchanged when nothing changes.
    pub fn apply<'a>(&self, labels: &'a LabelMap, maps: &AtrophyMaps) -> Result<Cow<'a, LabelMap>> {
        let grow = to_steps(self.ventricle_wall_mm.max(0.0));
        let shrink = to_steps((-self.ventricle_wall_mm).max(0.0));
        if grow == 0 && shrink == 0 && self.sulcal_widening <= 0.0 {
            return Ok(Cow::Borrowed(labels));
        }
        if maps.to_ventricle.len() != labels.data().len() {
            return Err(SynthError::InvalidArgument(format!(
                "atrophy maps of {} voxels for a label map of {}",
                maps.to_ventricle.len(),
                labels.data().len()
            )));
        }
        let g = labels.geometry();
        let outer_cortex =
            |i: usize, l: i32| is_cerebral_cortex(l) && maps.to_outer_csf[i] <= maps.outer_layer;
        let position = |i: usize| {
            let c = g.coords(i);
            g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])
        };
        // The field's value below which outer cortex becomes CSF: its `sulcal_widening` quantile
        // over the outer cortex.
        let threshold = if self.sulcal_widening > 0.0 {
            let mut values: Vec<f64> = labels
                .data()
                .par_iter()
                .enumerate()
                .filter(|&(i, &l)| outer_cortex(i, l))
                .map(|(i, _)| self.field(position(i)))
                .collect();
            values.par_sort_unstable_by(f64::total_cmp);
            let n =
                ((self.sulcal_widening.min(1.0) * values.len() as f64) as usize).min(values.len());
            if n == 0 {
                f64::NEG_INFINITY
            } else {
                values[n - 1]
            }
        } else {
            f64::NEG_INFINITY
        };
        let data: Vec<i32> = labels
            .data()
            .par_iter()
            .enumerate()
            .map(|(i, &l)| {
                let into_ventricle = match l {
                    LEFT_CEREBRAL_WHITE_MATTER | LEFT_CAUDATE | LEFT_THALAMUS => {
                        Some(LEFT_LATERAL_VENTRICLE)
                    }
                    RIGHT_CEREBRAL_WHITE_MATTER | RIGHT_CAUDATE | RIGHT_THALAMUS => {
                        Some(RIGHT_LATERAL_VENTRICLE)
                    }
                    _ => None,
                };
                match (l, into_ventricle) {
                    (_, Some(v)) if maps.to_ventricle[i] <= grow => v,
                    (LEFT_LATERAL_VENTRICLE, _) if maps.to_ventricle_wall[i] <= shrink => {
                        LEFT_CEREBRAL_WHITE_MATTER
                    }
                    (RIGHT_LATERAL_VENTRICLE, _) if maps.to_ventricle_wall[i] <= shrink => {
                        RIGHT_CEREBRAL_WHITE_MATTER
                    }
                    _ if outer_cortex(i, l) && self.field(position(i)) <= threshold => {
                        EXTRACEREBRAL_CSF
                    }
                    _ => l,
                }
            })
            .collect();
        Ok(Cow::Owned(labels.with_data(data)?))
    }
}
