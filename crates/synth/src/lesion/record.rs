//! Attribute recording: every attribute of a painted lesion a question may ask about (volume,
//! centroid, side, site, lobe, territory, intensity per contrast, enhancement, restricted
//! diffusion), measured on the session's maps.

use super::class::{LesionClass, ENHANCING_IDS};
use super::ids;
use super::shape::LesionShape;
use super::site::{
    hemisphere_of, in_cavity, is_cerebellopontine_angle, lobe_and_territory, nearest_lobe, world,
    CEREBELLOPONTINE_ANGLE,
};
use crate::contrast::{Contrast, LabelMeans};
use crate::labels::{is_parenchyma_label, tissue_of_lesion, Tissue};
use crate::vocabulary::{Hemisphere, Territory, Vocabulary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use voxel::neighbourhood::{ball_offsets, offset_index, FACE_OFFSETS};
use voxel::{Affine, LabelMap};

/// Hyper-, hypo- or isointense relative to the surrounding normal tissue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntensityClass {
    /// Brighter than its surroundings.
    Hyper,
    /// Darker than its surroundings.
    Hypo,
    /// Within the iso tolerance of its surroundings.
    Iso,
}

impl IntensityClass {
    /// The class of a lesion of mean intensity `lesion` against surroundings of mean `around`:
    /// isointense within a relative difference of `tolerance` (the configured
    /// `iso_tolerance`).
    pub fn of_means(lesion: f64, around: f64, tolerance: f64) -> IntensityClass {
        let rel = (lesion - around) / around.abs().max(1e-3);
        if rel > tolerance {
            IntensityClass::Hyper
        } else if rel < -tolerance {
            IntensityClass::Hypo
        } else {
            IntensityClass::Iso
        }
    }
}

/// One component of a lesion.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// Vocabulary name, e.g. `peritumoural edema`.
    pub name: String,
    /// Lesion-map id.
    pub id: i32,
    /// Measured volume.
    pub volume_ml: f64,
    /// Intensity relative to the normal tissue around the lesion, per contrast.
    pub intensity: BTreeMap<Contrast, IntensityClass>,
}

/// Everything recorded about one lesion in one session; all of it measured on the maps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LesionRecord {
    /// Class.
    pub class: LesionClass,
    /// Components present in this session.
    pub components: Vec<ComponentRecord>,
    /// Volume of the lesion proper (all components except edema).
    pub volume_ml: f64,
    /// Volume of the edema component (0 when none).
    pub edema_ml: f64,
    /// Centroid of the lesion proper, session world mm.
    pub centroid_mm: [f64; 3],
    /// Side, from the anatomy under the lesion (`both` when neither side has 80 %); for
    /// extra-axial lesions, voxels over midline labels count by their side of the midline.
    pub hemisphere: Hemisphere,
    /// Vocabulary structure at the centroid (e.g. `left cerebral white matter`); under the lesion
    /// voxel nearest the centroid when the centroid is not in the brain, and always for
    /// extra-axial lesions (`extracerebral CSF`).
    pub site: String,
    /// Lobe or compartment at the centroid (nearest cortex for white matter); for extra-axial
    /// lesions, that of the nearest brain (e.g. `temporal lobe`, `cerebellum`).
    pub lobe: String,
    /// Arterial territory at the centroid (nearest cortex for white matter); none for
    /// extra-axial lesions.
    pub territory: Option<Territory>,
    /// Intensity of the lesion proper relative to the surrounding normal tissue, per contrast.
    pub intensity: BTreeMap<Contrast, IntensityClass>,
    /// Whether part of it enhances on post-contrast T1 (enhancing tumour, meningioma, abscess
    /// capsule).
    pub enhancement: bool,
    /// Whether it restricts diffusion: some component other than edema has a mean ADC below
    /// 0.8 × and a DWI above that of the normal parenchyma around the lesion (an acute infarct, an abscess cavity; not a necrotic core or a cyst).
    pub restricted_diffusion: bool,
    /// The geometry scale of this session relative to baseline.
    pub scale: f64,
}

/// Width of the band around a lesion (edema included in the lesion) whose normal-appearing
/// parenchyma (cerebral and cerebellar white and grey matter, brainstem; or all non-lesion head
/// tissue if it has none) its intensity classes and diffusion restriction compare against.
pub const SURROUNDINGS_MM: f64 = 5.0;

/// Voxels within `radius_mm` of `voxels` that carry no lesion and are inside the head's brain
/// or CSF (the "surroundings" the intensity classes refer to).
pub fn surroundings(
    labels: &LabelMap,
    lesions: &LabelMap,
    voxels: &[usize],
    radius_mm: f64,
) -> Vec<usize> {
    let g = labels.geometry();
    // Ball offsets once; only the lesion's boundary voxels need to be dilated.
    let ball = ball_offsets(g.spacing_mm(), radius_mm);
    let mut in_lesion = vec![false; g.num_voxels()];
    for &v in voxels {
        in_lesion[v] = true;
    }
    let mut mark = vec![false; g.num_voxels()];
    let mut out = Vec::new();
    for &v in voxels {
        let c = g.coords(v);
        let boundary = FACE_OFFSETS
            .iter()
            .any(|&o| offset_index(g, c, o).is_none_or(|q| !in_lesion[q]));
        if !boundary {
            continue;
        }
        for &o in &ball {
            let Some(idx) = offset_index(g, c, o) else {
                continue;
            };
            if mark[idx] {
                continue;
            }
            mark[idx] = true;
            if lesions.data()[idx] == 0 && in_cavity(labels.data()[idx]) {
                out.push(idx);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The normal-appearing tissue the intensity classes and the diffusion restriction of a lesion
/// painted at `voxels` are measured against: its [`surroundings`] within [`SURROUNDINGS_MM`]
/// that are brain parenchyma ([`Tissue::is_parenchyma`]: cerebral, cerebellar, brainstem), or
/// all of them when none is. CSF in the band would make almost any lesion look bright on T1
/// and restricted on ADC, so classes are relative to brain tissue; a posterior-fossa lesion is
/// compared with cerebellum and brainstem. Task truths ask for this region too.
pub fn reference_tissue(labels: &LabelMap, lesions: &LabelMap, voxels: &[usize]) -> Vec<usize> {
    let around = surroundings(labels, lesions, voxels, SURROUNDINGS_MM);
    let parenchyma: Vec<usize> = around
        .iter()
        .copied()
        .filter(|&v| is_parenchyma_label(labels.data()[v]))
        .collect();
    if parenchyma.is_empty() {
        around
    } else {
        parenchyma
    }
}

/// Measures the record of a lesion painted at `voxels` (indices into the session grid) of a
/// session aligned with subject world (the first session); see [`record_session`].
pub fn record(
    shape: &LesionShape,
    voxels: &[usize],
    labels: &LabelMap,
    lesions: &LabelMap,
    means: &[LabelMeans],
    vocab: &Vocabulary,
    iso_tolerance: f64,
) -> LesionRecord {
    record_session(
        shape,
        voxels,
        labels,
        lesions,
        means,
        vocab,
        iso_tolerance,
        &Affine::IDENTITY,
    )
}

/// Measures the record of a lesion painted at `voxels` (indices into the session grid) of a
/// session whose world maps to subject world by `to_subject`.
#[allow(clippy::too_many_arguments)]
pub fn record_session(
    shape: &LesionShape,
    voxels: &[usize],
    labels: &LabelMap,
    lesions: &LabelMap,
    means: &[LabelMeans],
    vocab: &Vocabulary,
    iso_tolerance: f64,
    to_subject: &Affine,
) -> LesionRecord {
    let g = labels.geometry();
    let vml = g.voxel_volume_ml();
    let mut by_id: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for &v in voxels {
        by_id.entry(lesions.data()[v]).or_default().push(v);
    }
    let proper: Vec<usize> = voxels
        .iter()
        .copied()
        .filter(|&v| lesions.data()[v] != ids::EDEMA)
        .collect();
    let around = reference_tissue(labels, lesions, voxels);
    let mean_over = |m: &LabelMeans, vs: &[usize], lesion: bool| -> f64 {
        if vs.is_empty() {
            return 0.0;
        }
        vs.iter()
            .map(|&v| if lesion { m.of_lesion(lesions.data()[v]) } else { m.of_label(labels.data()[v]) } as f64)
            .sum::<f64>()
            / vs.len() as f64
    };
    let intensity_of = |vs: &[usize]| -> BTreeMap<Contrast, IntensityClass> {
        means
            .iter()
            .map(|m| {
                (
                    m.contrast,
                    IntensityClass::of_means(
                        mean_over(m, vs, true),
                        mean_over(m, &around, false),
                        iso_tolerance,
                    ),
                )
            })
            .collect()
    };
    let components = by_id
        .iter()
        .map(|(&id, vs)| ComponentRecord {
            name: vocab
                .targets()
                .iter()
                .find(|t| !t.is_group && t.ids_in(crate::vocabulary::Source::LesionMap) == [id])
                .map(|t| t.name.clone())
                .unwrap_or_else(|| format!("lesion {id}")),
            id,
            volume_ml: vs.len() as f64 * vml,
            intensity: intensity_of(vs),
        })
        .collect();
    let centroid_mm = if proper.is_empty() {
        shape.centre_mm
    } else {
        let mut s = [0.0; 3];
        for &v in &proper {
            let p = world(g, v);
            for a in 0..3 {
                s[a] += p[a];
            }
        }
        s.map(|x| x / proper.len() as f64)
    };
    let extra_axial = shape.class.is_extra_axial();
    let at_centroid = {
        let cv = g.world_to_voxel(centroid_mm);
        let n = g.shape();
        g.index(
            (cv[0].round().max(0.0) as usize).min(n[0] - 1),
            (cv[1].round().max(0.0) as usize).min(n[1] - 1),
            (cv[2].round().max(0.0) as usize).min(n[2] - 1),
        )
    };
    // A crescent's or dome's centroid may lie in the brain it hugs, and that of a multifocal or
    // cortical lesion in CSF: report the lesion voxel nearest to it instead.
    let cidx = if (extra_axial || !is_parenchyma_label(labels.data()[at_centroid]))
        && !proper.is_empty()
    {
        *proper
            .iter()
            .min_by(|&&a, &&b| {
                let d = |v: usize| {
                    let p = world(g, v);
                    (0..3).map(|k| (p[k] - centroid_mm[k]).powi(2)).sum::<f64>()
                };
                d(a).total_cmp(&d(b))
            })
            .expect("non-empty")
    } else {
        at_centroid
    };
    let (mut left, mut right) = (0usize, 0usize);
    for &v in &proper {
        let side = match hemisphere_of(vocab, labels.data()[v]) {
            Hemisphere::Both if extra_axial => match shape.midline {
                Some(m) => m.side(to_subject.apply(world(g, v))),
                None => Hemisphere::Both,
            },
            s => s,
        };
        match side {
            Hemisphere::Left => left += 1,
            Hemisphere::Right => right += 1,
            Hemisphere::Both => {}
        }
    }
    let hemisphere = if left as f64 >= 0.8 * (left + right) as f64 && left > 0 {
        Hemisphere::Left
    } else if right as f64 >= 0.8 * (left + right) as f64 && right > 0 {
        Hemisphere::Right
    } else {
        Hemisphere::Both
    };
    let site = if extra_axial && is_cerebellopontine_angle(labels, cidx, shape.midline, to_subject)
    {
        CEREBELLOPONTINE_ANGLE.to_string()
    } else {
        vocab
            .structure_of_label(labels.data()[cidx])
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "outside the brain".into())
    };
    let (lobe, territory) = if extra_axial {
        (nearest_lobe(labels, cidx, vocab), None)
    } else {
        lobe_and_territory(labels, cidx, vocab)
    };
    let find = |c: Contrast| means.iter().find(|m| m.contrast == c);
    let restricted = match (find(Contrast::Adc), find(Contrast::Dwi)) {
        (Some(adc), Some(dwi)) => {
            let adc_around = mean_over(adc, &around, false);
            let dwi_around = mean_over(dwi, &around, false);
            by_id.iter().any(|(&id, vs)| {
                id != ids::EDEMA
                    && mean_over(adc, vs, true) < 0.8 * adc_around
                    && mean_over(dwi, vs, true) > dwi_around
            })
        }
        // Without DWI/ADC rendered, decide from the tissue ADCs alone.
        _ => by_id.keys().any(|&id| {
            matches!(
                tissue_of_lesion(id),
                Tissue::AcuteInfarct | Tissue::AbscessPus
            )
        }),
    };
    LesionRecord {
        class: shape.class,
        components,
        volume_ml: proper.len() as f64 * vml,
        edema_ml: by_id.get(&ids::EDEMA).map_or(0, |v| v.len()) as f64 * vml,
        centroid_mm,
        hemisphere,
        site,
        lobe,
        territory,
        intensity: intensity_of(&proper),
        enhancement: by_id.keys().any(|id| ENHANCING_IDS.contains(id)),
        restricted_diffusion: restricted,
        scale: shape.scale,
    }
}
