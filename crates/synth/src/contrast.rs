//! Intensity synthesis: tissue classes, the nine contrasts, per-subject tissue means with
//! realistic ordering (or fully random SynthSeg-style means), then partial-volume blur,
//! thick-slice resolution loss, bias field, normalisation, gamma and noise.

use crate::config::SynthConfig;
use crate::error::{Result, SynthError};
use crate::field::ControlGrid;
use crate::labels::{
    is_random_head_class, tissue_of_label, tissue_of_lesion, Tissue, LABEL_LUT_LEN, LESION_ID_BASE,
    LESION_LUT_LEN,
};
use crate::rng::{hash_normal, hash_unit, mix, normal, uniform};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use voxel::resample::gaussian_blur;
use voxel::{Image, LabelMap};

/// An imaging contrast the engine synthesises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Contrast {
    /// T1-weighted MRI.
    T1,
    /// T2-weighted MRI.
    T2,
    /// T2 FLAIR (fluid suppressed).
    Flair,
    /// Proton-density MRI.
    Pd,
    /// Gradient echo / T2*-weighted MRI (blood and iron dark).
    Gre,
    /// Diffusion-weighted MRI at b ≈ 1000 s/mm², computed from T2 and ADC.
    Dwi,
    /// Apparent diffusion coefficient map.
    Adc,
    /// Post-contrast (gadolinium) T1-weighted MRI.
    T1c,
    /// Computed tomography, Hounsfield-like units (bone bright).
    Ct,
}

impl Contrast {
    /// Every contrast, in a fixed order.
    pub const ALL: [Contrast; 9] = [
        Contrast::T1,
        Contrast::T2,
        Contrast::Flair,
        Contrast::Pd,
        Contrast::Gre,
        Contrast::Dwi,
        Contrast::Adc,
        Contrast::T1c,
        Contrast::Ct,
    ];

    /// Lower-case name used in configs, file names and the CLI (`t1`, `flair`, …).
    pub fn name(self) -> &'static str {
        match self {
            Contrast::T1 => "t1",
            Contrast::T2 => "t2",
            Contrast::Flair => "flair",
            Contrast::Pd => "pd",
            Contrast::Gre => "gre",
            Contrast::Dwi => "dwi",
            Contrast::Adc => "adc",
            Contrast::T1c => "t1c",
            Contrast::Ct => "ct",
        }
    }

    /// Parses a name or common alias (`t1w`, `t2*`, `swi`, `t1ce`, `gad`).
    pub fn parse(name: &str) -> Result<Contrast> {
        let n = name.trim().to_lowercase();
        Ok(match n.as_str() {
            "t1" | "t1w" | "mprage" => Contrast::T1,
            "t2" | "t2w" => Contrast::T2,
            "flair" | "t2flair" => Contrast::Flair,
            "pd" | "pdw" => Contrast::Pd,
            "gre" | "t2*" | "t2star" | "swi" => Contrast::Gre,
            "dwi" | "dwi1000" | "trace" => Contrast::Dwi,
            "adc" => Contrast::Adc,
            "t1c" | "t1ce" | "t1gd" | "gad" | "t1post" => Contrast::T1c,
            "ct" => Contrast::Ct,
            _ => {
                return Err(SynthError::InvalidArgument(format!(
                    "unknown contrast {name:?}; expected one of t1 t2 flair pd gre dwi adc t1c ct"
                )))
            }
        })
    }
}

/// How tissue means are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntensityMode {
    /// Each contrast's tissue means follow the configured table with random variation.
    Realistic,
    /// Every label gets a uniform random mean (SynthSeg): contrast-agnostic training.
    Randomised,
}

/// The per-subject mean intensity of every label for one contrast, before blur, bias,
/// normalisation and noise (CT in HU, ADC in 1e-3 mm²/s). Lesion attributes are read from it.
#[derive(Clone, Debug)]
pub struct LabelMeans {
    /// Which contrast.
    pub contrast: Contrast,
    /// Mean of anatomy label `l` at index `l` (clamped to the table).
    pub anatomy: Vec<f32>,
    /// Mean of lesion id `LESION_ID_BASE + k` at index `k`.
    pub lesion: Vec<f32>,
}

impl LabelMeans {
    /// Mean of an anatomy label.
    #[inline]
    pub fn of_label(&self, label: i32) -> f32 {
        self.anatomy[(label.max(0) as usize).min(LABEL_LUT_LEN - 1)]
    }

    /// Mean of a lesion id (0 = no lesion gives 0).
    #[inline]
    pub fn of_lesion(&self, id: i32) -> f32 {
        let k = (id - LESION_ID_BASE).clamp(0, LESION_LUT_LEN as i32 - 1) as usize;
        self.lesion[k]
    }

    /// Sets the mean of lesion id `id` (ids outside the table are ignored).
    pub fn set_lesion(&mut self, id: i32, mean: f32) {
        let k = id - LESION_ID_BASE;
        if (0..LESION_LUT_LEN as i32).contains(&k) {
            self.lesion[k as usize] = mean;
        }
    }

    /// Mean at a voxel: the lesion's where there is one, else the anatomy's.
    #[inline]
    pub fn at(&self, label: i32, lesion: i32) -> f32 {
        if lesion != 0 {
            self.of_lesion(lesion)
        } else {
            self.of_label(label)
        }
    }
}

/// Draws per-tissue factors once per subject so that, e.g., DWI and T2 share the subject's S0.
#[derive(Clone, Debug)]
pub struct SubjectTissues {
    /// Multiplicative variation per (tissue, contrast index in `Contrast::ALL`).
    factors: Vec<[f32; 9]>,
    /// Random means per anatomy label and contrast for [`IntensityMode::Randomised`].
    random_anatomy: Vec<[f32; 9]>,
    random_lesion: Vec<[f32; 9]>,
    /// Key of the random means of the SynthStrip-style head classes (realistic mode too).
    random_head_key: u64,
    /// The mode.
    pub mode: IntensityMode,
}

impl SubjectTissues {
    /// Draws this subject's tissue variation.
    pub fn sample(config: &SynthConfig, mode: IntensityMode, rng: &mut impl Rng) -> SubjectTissues {
        let sd = config.intensity.tissue_sd;
        let factors = (0..Tissue::ALL.len())
            .map(|_| std::array::from_fn(|_| (1.0 + sd * normal(rng)).max(0.3) as f32))
            .collect();
        let (random_anatomy, random_lesion) = if mode == IntensityMode::Randomised {
            (
                (0..LABEL_LUT_LEN)
                    .map(|_| std::array::from_fn(|_| rng.random::<f32>()))
                    .collect(),
                (0..LESION_LUT_LEN)
                    .map(|_| std::array::from_fn(|_| rng.random::<f32>()))
                    .collect(),
            )
        } else {
            (vec![], vec![])
        };
        // Drawn last so the draws above are those of subjects made before the head classes.
        let random_head_key = rng.random();
        SubjectTissues {
            factors,
            random_anatomy,
            random_lesion,
            random_head_key,
            mode,
        }
    }

    fn tissue_mean(&self, config: &SynthConfig, tissue: Tissue, contrast: Contrast) -> f32 {
        let ti = Tissue::ALL.iter().position(|&t| t == tissue).unwrap_or(0);
        let f =
            |c: Contrast| self.factors[ti][Contrast::ALL.iter().position(|&x| x == c).unwrap_or(0)];
        let base =
            |c: Contrast| config.tissue_means[&tissue].get(&c).copied().unwrap_or(0.0) as f32;
        let adc = config.tissue_adc[&tissue] as f32 * f(Contrast::Adc);
        match contrast {
            Contrast::Adc => adc,
            Contrast::Dwi => {
                let s0 = base(Contrast::T2) * f(Contrast::T2);
                s0 * (-(config.intensity.dwi_b as f32) * adc * 1e-3).exp()
            }
            // HU: air and bone keep their level, soft tissue varies by a few HU.
            Contrast::Ct => {
                let hu = base(Contrast::Ct);
                if hu <= -500.0 {
                    hu
                } else {
                    hu + (f(Contrast::Ct) - 1.0) * 50.0
                }
            }
            c => base(c) * f(c),
        }
    }

    /// A random mean of a SynthStrip-style head class: anything from air to bone.
    fn random_head_mean(&self, label: i32, contrast: Contrast) -> f32 {
        let ci = Contrast::ALL
            .iter()
            .position(|&x| x == contrast)
            .unwrap_or(0);
        let u = hash_unit(self.random_head_key, (label as u64) * 16 + ci as u64);
        match contrast {
            Contrast::Ct => -1000.0 + 2500.0 * u,
            Contrast::Adc => 3.0 * u,
            _ => u,
        }
    }

    /// The label means of `contrast` for this subject.
    pub fn means(&self, config: &SynthConfig, contrast: Contrast) -> LabelMeans {
        let ci = Contrast::ALL
            .iter()
            .position(|&x| x == contrast)
            .unwrap_or(0);
        let (anatomy, lesion) = match self.mode {
            IntensityMode::Randomised => (
                (0..LABEL_LUT_LEN)
                    .map(|l| {
                        if l == 0 {
                            0.0
                        } else {
                            self.random_anatomy[l][ci]
                        }
                    })
                    .collect(),
                self.random_lesion.iter().map(|r| r[ci]).collect(),
            ),
            IntensityMode::Realistic => {
                // Once per tissue, then a lookup per label: the tables have thousands of rows.
                let per_tissue: Vec<f32> = Tissue::ALL
                    .iter()
                    .map(|&t| self.tissue_mean(config, t, contrast))
                    .collect();
                let mean_of = |t: Tissue| {
                    Tissue::ALL
                        .iter()
                        .position(|&x| x == t)
                        .map_or(0.0, |i| per_tissue[i])
                };
                (
                    (0..LABEL_LUT_LEN as i32)
                        .map(|l| {
                            if is_random_head_class(l) {
                                self.random_head_mean(l, contrast)
                            } else {
                                tissue_of_label(l).map_or(0.0, mean_of)
                            }
                        })
                        .collect(),
                    (0..LESION_LUT_LEN as i32)
                        .map(|k| mean_of(tissue_of_lesion(LESION_ID_BASE + k)))
                        .collect(),
                )
            }
        };
        LabelMeans {
            contrast,
            anatomy,
            lesion,
        }
    }
}

/// A thick-slice acquisition: slices along `axis` (0 = x) every `slice_spacing_mm`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceAcquisition {
    /// Voxel axis across the slices.
    pub axis: usize,
    /// Distance between slice centres (and slice thickness).
    pub slice_spacing_mm: f64,
}

/// The random acquisition parameters of one image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Acquisition {
    /// Partial-volume blur, voxels.
    pub blur_sigma_vox: f64,
    /// Within-tissue noise sd (relative).
    pub texture_sd: f64,
    /// Thick-slice acquisition, if any.
    pub thick_slices: Option<SliceAcquisition>,
    /// Sd of the log bias field.
    pub bias_sd: f64,
    /// Gamma exponent applied after normalisation.
    pub gamma: f64,
    /// Acquisition noise sd after normalisation.
    pub noise_sd: f64,
    /// Intensity mapped to 1 (before gamma): a percentile for MR, the window top for CT.
    pub normalisation_scale: f64,
    /// Seed of the per-voxel noise and fields.
    pub noise_seed: u64,
}

impl Acquisition {
    /// Draws acquisition parameters for `contrast`; CT and ADC get no bias field or gamma, and
    /// CT's thick slices are axial.
    pub fn sample(
        config: &SynthConfig,
        contrast: Contrast,
        spacing_mm: [f64; 3],
        rng: &mut impl Rng,
    ) -> Acquisition {
        let i = &config.intensity;
        let s = &config.spatial;
        let thick = if rng.random::<f64>() < s.thick_slice_probability {
            let drawn = rng.random_range(0..3usize);
            // Head CT is acquired (or reformatted) in thick axial slices; MR in any plane.
            let axis = if contrast == Contrast::Ct { 2 } else { drawn };
            let t = uniform(
                rng,
                s.slice_spacing_mm[0].max(spacing_mm[axis]),
                s.slice_spacing_mm[1],
            );
            (t > 1.2 * spacing_mm[axis]).then_some(SliceAcquisition {
                axis,
                slice_spacing_mm: t,
            })
        } else {
            None
        };
        let is_ct = contrast == Contrast::Ct;
        // CT and ADC are quantitative maps (HU, 10⁻³ mm²/s): no coil bias, no display gamma, so
        // a value read from them is a physical value. ADC still draws both, to keep the random
        // stream of the other contrasts unchanged.
        let is_quantitative = is_ct || contrast == Contrast::Adc;
        let mut blur_sigma_vox = uniform(rng, i.blur_sigma_vox[0], i.blur_sigma_vox[1]);
        if is_ct {
            // CT is reconstructed with a point spread of well under a millimetre in plane: an
            // MR-sized blur of a voxel or more would smear bone (≈1000 HU) into thin subdural
            // collections. The same draw, mapped onto the CT range, keeps the stream unchanged.
            let [lo, hi] = i.blur_sigma_vox;
            let t = if hi > lo {
                (blur_sigma_vox - lo) / (hi - lo)
            } else {
                0.5
            };
            let [ct_lo, ct_hi] = i.ct_blur_sigma_mm;
            let finest = spacing_mm.iter().copied().fold(f64::INFINITY, f64::min);
            blur_sigma_vox = (ct_lo + t * (ct_hi - ct_lo)) / finest.max(1e-6);
        }
        let texture_sd = uniform(rng, i.texture_sd[0], i.texture_sd[1]);
        let bias_sd = if is_ct {
            0.0
        } else {
            uniform(rng, i.bias_sd[0], i.bias_sd[1])
        };
        let gamma = if is_ct {
            1.0
        } else {
            (i.gamma_sd * normal(rng)).exp()
        };
        Acquisition {
            blur_sigma_vox,
            texture_sd,
            thick_slices: thick,
            bias_sd: if is_quantitative { 0.0 } else { bias_sd },
            gamma: if is_quantitative { 1.0 } else { gamma },
            noise_sd: uniform(rng, i.noise_sd[0], i.noise_sd[1]),
            normalisation_scale: 1.0,
            noise_seed: rng.random(),
        }
    }
}

/// One synthesised image.
#[derive(Clone, Debug)]
pub struct SynthImage {
    /// Intensities in [0, 1].
    pub image: Image,
    /// For CT: the image in Hounsfield units (before windowing).
    pub hu: Option<Image>,
    /// The parameters used (with the normalisation scale filled in).
    pub acquisition: Acquisition,
}

/// Renders `labels` (+ `lesions`, same grid) with `means` and the acquisition `acq`.
pub fn render(
    labels: &LabelMap,
    lesions: &LabelMap,
    means: &LabelMeans,
    acq: &Acquisition,
    config: &SynthConfig,
) -> Result<SynthImage> {
    labels
        .geometry()
        .require_same_grid(lesions.geometry(), "lesion map")?;
    let shape = labels.shape();
    let key = acq.noise_seed;
    let texture = acq.texture_sd as f32;
    let is_ct = means.contrast == Contrast::Ct;
    // Texture: multiplicative for MR (air stays black), additive HU for CT.
    let plane = shape[0] * shape[1];
    let mut textured = vec![0f32; labels.data().len()];
    textured
        .par_chunks_mut(plane.max(1))
        .zip(labels.data().par_chunks(plane.max(1)))
        .zip(lesions.data().par_chunks(plane.max(1)))
        .enumerate()
        .for_each(|(z, ((out, l), les))| {
            let first = (z * plane) as u64;
            for (i, ((o, &l), &les)) in (first..).zip(out.iter_mut().zip(l).zip(les)) {
                let m = means.at(l, les);
                let n = hash_normal(key, i);
                *o = if !is_ct {
                    m * (1.0 + texture * n)
                } else if m > -500.0 {
                    m + 40.0 * texture * n
                } else {
                    m
                };
            }
        });
    let s = acq.blur_sigma_vox;
    let mut data = gaussian_blur(&textured, shape, [s, s, s]);
    drop(textured);
    if let Some(t) = acq.thick_slices {
        let sp = labels.geometry().spacing_mm()[t.axis];
        thick_slice(&mut data, shape, t.axis, t.slice_spacing_mm / sp);
    }
    if acq.bias_sd > 0.0 {
        apply_bias(
            &mut data,
            shape,
            acq.bias_sd,
            config.intensity.bias_control_points,
            mix(key, 1),
        );
    }
    let mut acq = acq.clone();
    let hu = if is_ct {
        let hu_noise = 200.0 * acq.noise_sd as f32;
        data.par_iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += hu_noise * hash_normal(mix(key, 2), i as u64));
        let hu = labels.with_data(data.clone())?;
        let [lo, hi] = config.intensity.ct_window_hu.map(|x| x as f32);
        data.par_iter_mut()
            .for_each(|v| *v = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0));
        acq.normalisation_scale = hi as f64;
        Some(hu)
    } else {
        if means.contrast == Contrast::Adc {
            acq.normalisation_scale = config.intensity.adc_max;
        } else {
            acq.normalisation_scale =
                percentile_of_positive(&data, config.intensity.normalise_percentile).max(1e-6)
                    as f64;
        }
        let inv_scale = 1.0 / acq.normalisation_scale as f32;
        let gamma_lut: Vec<f32> = (0..=1024)
            .map(|i| (i as f32 / 1024.0).powf(acq.gamma as f32))
            .collect();
        let noise = acq.noise_sd as f32;
        let nkey = mix(key, 3);
        data.par_iter_mut().enumerate().for_each(|(i, v)| {
            let x = (*v * inv_scale).clamp(0.0, 1.0) * 1024.0;
            // x ∈ [0, 1024]: through i32 the conversion is one instruction.
            let j = (x as i32 as usize).min(1023);
            let f = x - j as f32;
            let g = gamma_lut[j] * (1.0 - f) + gamma_lut[j + 1] * f;
            // |·| keeps magnitude images non-negative (a Rician-like floor in the air).
            *v = (g + noise * hash_normal(nkey, i as u64)).abs().min(1.0);
        });
        None
    };
    Ok(SynthImage {
        image: labels.with_data(data)?,
        hu,
        acquisition: acq,
    })
}

/// The `pct` percentile of the positive values (256-bin histogram up to the maximum).
fn percentile_of_positive(data: &[f32], pct: f64) -> f32 {
    let max = data.iter().copied().fold(0f32, f32::max);
    if max <= 0.0 {
        return 1.0;
    }
    const BINS: usize = 1024;
    let mut hist = vec![0usize; BINS];
    let mut n = 0usize;
    let to_bin = (BINS - 1) as f32 / max;
    for &v in data {
        if v > 0.0 {
            hist[((v * to_bin) as i32 as usize).min(BINS - 1)] += 1;
            n += 1;
        }
    }
    let target = (pct / 100.0 * n as f64) as usize;
    let mut acc = 0;
    for (b, &h) in hist.iter().enumerate() {
        acc += h;
        if acc >= target {
            return (b + 1) as f32 / BINS as f32 * max;
        }
    }
    max
}

/// Simulates slices `factor` voxels apart along `axis`: blur to the slice profile (Gaussian of
/// FWHM = slice spacing, minus the voxel's own), sample at the slice centres, interpolate back
/// linearly, so the image keeps its grid but loses resolution across slices.
pub fn thick_slice(data: &mut [f32], shape: [usize; 3], axis: usize, factor: f64) {
    if factor <= 1.0 || axis > 2 || shape.contains(&0) {
        return;
    }
    let sigma = (factor * factor - 1.0).sqrt() / 2.355;
    let mut sig = [0.0; 3];
    sig[axis] = sigma;
    let src = gaussian_blur(data, shape, sig);
    let n = shape[axis];
    let m = ((n - 1) as f64 / factor).floor() as usize + 1;
    // Slice k sits at voxel k·factor and samples the voxel nearest to it; voxel i is read from
    // the two slices around it: (first slice voxel, second slice voxel, weight of the second).
    let slice = |k: usize| ((k as f64 * factor).round() as usize).min(n - 1);
    let taps: Vec<(usize, usize, f32)> = (0..n)
        .map(|i| {
            let x = i as f64;
            let k = ((x / factor).floor() as usize).min(m - 1);
            if k + 1 < m {
                let f = ((x - k as f64 * factor) / factor) as f32;
                (slice(k), slice(k + 1), f)
            } else {
                (slice(k), slice(k), 0.0)
            }
        })
        .collect();
    if axis == 0 {
        data.par_chunks_mut(n)
            .zip(src.par_chunks(n))
            .for_each(|(out, line)| {
                for (v, &(a, b, f)) in out.iter_mut().zip(&taps) {
                    *v = line[a] * (1.0 - f) + line[b] * f;
                }
            });
    } else {
        // Whole rows (y) or slices (z) share one position along the axis and are interpolated
        // at once.
        let inner = shape[0] * if axis == 1 { 1 } else { shape[1] };
        data.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(block, out)| {
                let (a, b, f) = taps[block % n];
                let base = (block / n) * n * inner;
                let a = &src[base + a * inner..base + (a + 1) * inner];
                let b = &src[base + b * inner..base + (b + 1) * inner];
                for ((v, &a), &b) in out.iter_mut().zip(a).zip(b) {
                    *v = a * (1.0 - f) + b * f;
                }
            });
    }
}

/// Multiplies by a smooth positive bias field: `exp` of normal control values of sd `sd` on a
/// `points³` grid, interpolated linearly (interpolating the exponentiated values keeps the field
/// positive and smooth and avoids an `exp` per voxel).
fn apply_bias(data: &mut [f32], shape: [usize; 3], sd: f64, points: usize, key: u64) {
    let np = points * points * points;
    let values: Vec<f32> = (0..np)
        .map(|i| (sd as f32 * hash_normal(key, i as u64)).exp())
        .collect();
    let grid = ControlGrid {
        points: [points; 3],
        values,
        channels: 1,
    };
    let [nx, ny, _] = shape;
    data.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slab)| {
            let mut line = vec![0f32; nx];
            let mut column = Vec::new();
            for y in 0..ny {
                grid.sample_line(shape, y, z, &mut line, &mut column);
                for (v, b) in slab[y * nx..(y + 1) * nx].iter_mut().zip(&line) {
                    *v *= b;
                }
            }
        });
}
