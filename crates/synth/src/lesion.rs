//! Lesion synthesis (paper A.3): pick a site in the subject's anatomy and a radius, fill a
//! sphere there with random ellipsoids (the lesion is a level set of the distance to the
//! nearest ellipsoid, so growth is a scale of that field), use a second random geometry for
//! heterogeneity (necrotic core, encephalomalacia), restrict each component to the tissue it
//! may occupy, and paint the components into a lesion map. Every attribute a question may ask
//! about is measured on the painted maps and recorded in a [`LesionRecord`].
//!
//! Vascular territories: each cortical parcel and deep structure carries an ACA/MCA/PCA (or
//! vertebrobasilar) territory in `configs/synth/vocabulary.toml`, following standard territory
//! maps (ACA: medial frontal and parietal cortex; PCA: occipital lobe, inferomedial temporal
//! lobe, thalamus, hippocampus; MCA: the lateral convexity, insula and basal ganglia). A voxel
//! in cerebral white matter takes the territory of the nearest cortical parcel; a lesion's
//! territory and lobe are those at its centroid.

use crate::contrast::{tissue_of_label, tissue_of_lesion, Contrast, LabelMeans, Tissue};
use crate::error::{Result, SynthError};
use crate::rng::uniform;
use crate::vocabulary::{Hemisphere, Territory, Vocabulary};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use voxel::{Affine, Geometry, LabelMap};

/// Lesion-map ids of the components.
pub mod ids {
    /// Necrotic tumour core.
    pub const NECROSIS: i32 = 901;
    /// Enhancing tumour (rim).
    pub const ENHANCING: i32 = 902;
    /// Peritumoural edema.
    pub const EDEMA: i32 = 903;
    /// Non-enhancing solid tumour.
    pub const SOLID: i32 = 904;
    /// Acute infarct.
    pub const ACUTE_INFARCT: i32 = 905;
    /// Chronic infarct (encephalomalacia).
    pub const CHRONIC_INFARCT: i32 = 906;
    /// White-matter hyperintensity.
    pub const WMH: i32 = 907;
    /// Gliosis around a chronic infarct.
    pub const GLIOSIS: i32 = 915;
}

/// A pathology class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionClass {
    /// Glioma: necrotic core, enhancing rim (or non-enhancing tumour), edema.
    Glioma,
    /// Metastasis at the grey-white junction: enhancing, small necrotic core, edema.
    Metastasis,
    /// Acute infarct in an arterial territory: DWI bright, ADC dark.
    AcuteInfarct,
    /// Chronic infarct: encephalomalacia with a gliotic rim.
    ChronicInfarct,
    /// Multifocal white-matter hyperintensities.
    Wmh,
}

impl LesionClass {
    /// Lower-case name used by the CLI (`glioma`, `metastasis`, `acute_infarct`, …).
    pub fn name(self) -> &'static str {
        match self {
            LesionClass::Glioma => "glioma",
            LesionClass::Metastasis => "metastasis",
            LesionClass::AcuteInfarct => "acute_infarct",
            LesionClass::ChronicInfarct => "chronic_infarct",
            LesionClass::Wmh => "wmh",
        }
    }

    /// Parses a class name or alias.
    pub fn parse(name: &str) -> Result<LesionClass> {
        Ok(match name.trim().to_lowercase().replace('-', "_").as_str() {
            "glioma" | "tumour" | "tumor" => LesionClass::Glioma,
            "metastasis" | "metastases" | "met" => LesionClass::Metastasis,
            "acute_infarct" | "infarct" | "stroke" => LesionClass::AcuteInfarct,
            "chronic_infarct" => LesionClass::ChronicInfarct,
            "wmh" | "white_matter_hyperintensities" => LesionClass::Wmh,
            other => {
                return Err(SynthError::InvalidArgument(format!(
                    "unknown lesion class {other:?}; implemented: glioma metastasis acute_infarct chronic_infarct wmh"
                )))
            }
        })
    }
}

/// One ellipsoid of a lesion geometry, relative to the lesion centre.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ellipsoid {
    /// Centre offset from the lesion centre.
    pub offset_mm: [f64; 3],
    /// Semi-axes.
    pub radii_mm: [f64; 3],
    /// Rotation (rows: the ellipsoid's axes in world coordinates).
    pub axes: [[f64; 3]; 3],
}

/// The random geometry of one lesion, in subject world mm; `scale` grows or shrinks it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LesionShape {
    /// Class.
    pub class: LesionClass,
    /// Centre.
    pub centre_mm: [f64; 3],
    /// Ellipsoids whose union (level 1) is the lesion.
    pub ellipsoids: Vec<Ellipsoid>,
    /// Second geometry: its level `core_level` set (inside the lesion) is the core.
    pub second: Vec<Ellipsoid>,
    /// Level of the second geometry that is core (0 = no core).
    pub core_level: f64,
    /// Level of the first geometry up to which white matter is edema (≤ 1 = none).
    pub edema_level: f64,
    /// Whether the solid part enhances.
    pub enhancing: bool,
    /// Linear scale about the centre (1 at baseline).
    pub scale: f64,
    /// Hemisphere of the site the centre was drawn in (restricts infarcts).
    pub side: Hemisphere,
    /// Territory an infarct is confined to.
    pub territory: Option<Territory>,
}

fn level(ells: &[Ellipsoid], c: [f64; 3], scale: f64, p: [f64; 3]) -> f64 {
    let mut best = f64::INFINITY;
    for e in ells {
        let d = [0, 1, 2].map(|a| (p[a] - c[a]) / scale - e.offset_mm[a]);
        let mut s = 0.0;
        for (ax, r) in e.axes.iter().zip(e.radii_mm) {
            let u = (ax[0] * d[0] + ax[1] * d[1] + ax[2] * d[2]) / r;
            s += u * u;
        }
        best = best.min(s.sqrt());
    }
    best
}

fn random_axes(rng: &mut impl Rng) -> [[f64; 3]; 3] {
    // Gram–Schmidt on random vectors: a uniformly oriented orthonormal frame.
    let mut v: [[f64; 3]; 3] =
        std::array::from_fn(|_| std::array::from_fn(|_| crate::rng::normal(rng)));
    for i in 0..3 {
        for j in 0..i {
            let vj = v[j];
            let d: f64 = (0..3).map(|k| v[i][k] * vj[k]).sum();
            v[i].iter_mut().zip(vj).for_each(|(x, y)| *x -= d * y);
        }
        let n = v[i].iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
        v[i].iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// `count` ellipsoids inside a sphere of `radius_mm` (each 0.4–0.8 of the radius per axis,
/// centred within 0.4 of it) — the paper's "fill a sphere with random ellipsoids".
fn fill_sphere(rng: &mut impl Rng, radius_mm: f64, count: usize) -> Vec<Ellipsoid> {
    (0..count.max(1))
        .map(|_| {
            let offset_mm = std::array::from_fn(|_| uniform(rng, -0.4, 0.4) * radius_mm);
            let radii_mm = std::array::from_fn(|_| uniform(rng, 0.4, 0.8) * radius_mm);
            Ellipsoid {
                offset_mm,
                radii_mm,
                axes: random_axes(rng),
            }
        })
        .collect()
}

/// World position of voxel `idx`.
fn world(g: &Geometry, idx: usize) -> [f64; 3] {
    let c = g.coords(idx);
    g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])
}

fn hemisphere_of(vocab: &Vocabulary, label: i32) -> Hemisphere {
    vocab
        .structure_of_label(label)
        .map(|t| t.hemisphere)
        .unwrap_or(Hemisphere::Both)
}

/// A random voxel index whose label satisfies `ok`, or an error naming `what`.
fn random_voxel(
    labels: &LabelMap,
    rng: &mut impl Rng,
    what: &str,
    ok: impl Fn(i32) -> bool,
) -> Result<usize> {
    let candidates: Vec<usize> = labels
        .data()
        .iter()
        .enumerate()
        .filter(|(_, &l)| ok(l))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Err(SynthError::Placement(format!(
            "no {what} voxels in this subject"
        )));
    }
    Ok(candidates[rng.random_range(0..candidates.len())])
}

/// Draws a lesion of `class` in the subject whose session-0 labels are `labels` (subject world
/// = that grid's world).
pub fn sample_lesion(
    class: LesionClass,
    labels: &LabelMap,
    vocab: &Vocabulary,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let is_cwm = |l: i32| l == 2 || l == 41;
    let is_parcel = |l: i32| (1000..3000).contains(&l) || l == 3 || l == 42;
    let (centre_idx, radius, ells, second, core_level, edema_level, enhancing, territory) =
        match class {
            LesionClass::Glioma => {
                let i = random_voxel(labels, rng, "cerebral white matter", is_cwm)?;
                let r = uniform(rng, 15.0, 35.0);
                let n = rng.random_range(2..6);
                let enh = rng.random::<f64>() < 0.7;
                let core = if enh { uniform(rng, 0.4, 0.7) } else { 0.0 };
                (
                    i,
                    r,
                    fill_sphere(rng, r, n),
                    fill_sphere(rng, r * 0.6, 2),
                    core,
                    uniform(rng, 1.4, 2.0),
                    enh,
                    None,
                )
            }
            LesionClass::Metastasis => {
                let i = random_voxel(labels, rng, "cortex", is_parcel)?;
                let r = uniform(rng, 4.0, 12.0);
                let core = if r > 7.0 { uniform(rng, 0.3, 0.6) } else { 0.0 };
                (
                    i,
                    r,
                    fill_sphere(rng, r, 1),
                    fill_sphere(rng, r * 0.5, 1),
                    core,
                    uniform(rng, 1.6, 3.0),
                    true,
                    None,
                )
            }
            LesionClass::AcuteInfarct | LesionClass::ChronicInfarct => {
                let t = match rng.random_range(0..10) {
                    0 | 1 => Territory::ACA,
                    2 | 3 => Territory::PCA,
                    _ => Territory::MCA,
                };
                let i = random_voxel(labels, rng, "territory cortex", |l| {
                    (1000..3000).contains(&l)
                        && vocab.structure_of_label(l).and_then(|s| s.territory) == Some(t)
                })?;
                let r = uniform(rng, 12.0, 35.0);
                let core = if class == LesionClass::ChronicInfarct {
                    uniform(rng, 0.6, 0.9)
                } else {
                    0.0
                };
                let count = rng.random_range(2..5);
                (
                    i,
                    r,
                    fill_sphere(rng, r, count),
                    fill_sphere(rng, r * 0.8, 2),
                    core,
                    0.0,
                    false,
                    Some(t),
                )
            }
            LesionClass::Wmh => {
                let i = random_voxel(labels, rng, "cerebral white matter", is_cwm)?;
                let c = world(g, i);
                let n = rng.random_range(3..12);
                let mut ells = Vec::with_capacity(n);
                for _ in 0..n {
                    let j = random_voxel(labels, rng, "cerebral white matter", is_cwm)?;
                    let p = world(g, j);
                    let r = uniform(rng, 2.5, 6.0);
                    ells.push(Ellipsoid {
                        offset_mm: [0, 1, 2].map(|a| p[a] - c[a]),
                        radii_mm: std::array::from_fn(|_| uniform(rng, 0.6, 1.0) * r),
                        axes: random_axes(rng),
                    });
                }
                (i, 6.0, ells, vec![], 0.0, 0.0, false, None)
            }
        };
    let _ = radius;
    let side = hemisphere_of(vocab, labels.data()[centre_idx]);
    Ok(LesionShape {
        class,
        centre_mm: world(g, centre_idx),
        ellipsoids: ells,
        second,
        core_level,
        edema_level,
        enhancing,
        scale: 1.0,
        side,
        territory,
    })
}

impl LesionShape {
    /// Largest distance from the centre at which any component may lie.
    fn reach_mm(&self) -> f64 {
        let lv = self.edema_level.max(1.0);
        self.ellipsoids
            .iter()
            .map(|e| {
                let o = e.offset_mm.iter().map(|x| x * x).sum::<f64>().sqrt();
                o + e.radii_mm.iter().copied().fold(0.0, f64::max) * lv
            })
            .fold(0.0, f64::max)
            * self.scale
            + 1.0
    }

    /// The component id this lesion puts at subject-world point `p` over anatomy `label`.
    fn component_at(&self, p: [f64; 3], label: i32, vocab: &Vocabulary) -> i32 {
        let f = level(&self.ellipsoids, self.centre_mm, self.scale, p);
        let tissue = tissue_of_label(label);
        let parenchyma = matches!(
            tissue,
            Tissue::WhiteMatter | Tissue::CorticalGm | Tissue::DeepGm
        );
        let core = || {
            self.core_level > 0.0
                && level(&self.second, self.centre_mm, self.scale, p) <= self.core_level
        };
        match self.class {
            LesionClass::Glioma | LesionClass::Metastasis => {
                if f <= 1.0 && parenchyma {
                    if core() {
                        ids::NECROSIS
                    } else if self.enhancing {
                        ids::ENHANCING
                    } else {
                        ids::SOLID
                    }
                } else if f <= self.edema_level && (label == 2 || label == 41) {
                    ids::EDEMA
                } else {
                    0
                }
            }
            LesionClass::AcuteInfarct | LesionClass::ChronicInfarct => {
                if f > 1.0 || !parenchyma {
                    return 0;
                }
                let s = vocab.structure_of_label(label);
                if s.map(|s| s.hemisphere) != Some(self.side) {
                    return 0;
                }
                // Cortex and deep nuclei must belong to the territory; white matter may not be
                // attributed here (it takes its territory from the nearest cortex).
                if tissue != Tissue::WhiteMatter && s.and_then(|s| s.territory) != self.territory {
                    return 0;
                }
                match self.class {
                    LesionClass::AcuteInfarct => ids::ACUTE_INFARCT,
                    _ if core() => ids::CHRONIC_INFARCT,
                    _ => ids::GLIOSIS,
                }
            }
            LesionClass::Wmh => {
                if f <= 1.0 && (label == 2 || label == 41) {
                    ids::WMH
                } else {
                    0
                }
            }
        }
    }
}

/// Paints `shape` into `lesions` (only where it is still 0) over the anatomy `labels` of one
/// session; `to_subject` maps that session's world to subject world. Returns the indices of the
/// voxels painted.
pub fn paint(
    shape: &LesionShape,
    labels: &LabelMap,
    lesions: &mut LabelMap,
    to_subject: &Affine,
    vocab: &Vocabulary,
) -> Result<Vec<usize>> {
    let g = labels.geometry().clone();
    g.require_same_grid(lesions.geometry(), "lesion map")?;
    let from_subject = to_subject
        .inverse()
        .ok_or_else(|| SynthError::InvalidArgument("session transform is singular".into()))?;
    let centre = g.world_to_voxel(from_subject.apply(shape.centre_mm));
    let reach = shape.reach_mm();
    let sp = g.spacing_mm();
    let n = g.shape();
    let lo: [usize; 3] =
        std::array::from_fn(|a| (centre[a] - reach / sp[a]).floor().max(0.0) as usize);
    let hi: [usize; 3] =
        std::array::from_fn(|a| ((centre[a] + reach / sp[a]).ceil().max(0.0) as usize).min(n[a]));
    let mut data = lesions.data().to_vec();
    let anat = labels.data();
    let mut painted = Vec::new();
    for k in lo[2]..hi[2] {
        for j in lo[1]..hi[1] {
            for i in lo[0]..hi[0] {
                let idx = g.index(i, j, k);
                if data[idx] != 0 {
                    continue;
                }
                let p = to_subject.apply(g.voxel_to_world([i as f64, j as f64, k as f64]));
                let c = shape.component_at(p, anat[idx], vocab);
                if c != 0 {
                    data[idx] = c;
                    painted.push(idx);
                }
            }
        }
    }
    *lesions = lesions.with_data(data)?;
    Ok(painted)
}

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
    /// Side, from the anatomy under the lesion (`both` when neither side has 80 %).
    pub hemisphere: Hemisphere,
    /// Vocabulary structure at the centroid (e.g. `left cerebral white matter`).
    pub site: String,
    /// Lobe or compartment at the centroid (nearest cortex for white matter).
    pub lobe: String,
    /// Arterial territory at the centroid (nearest cortex for white matter).
    pub territory: Option<Territory>,
    /// Intensity of the lesion proper relative to the surrounding normal tissue, per contrast.
    pub intensity: BTreeMap<Contrast, IntensityClass>,
    /// Whether part of it enhances on post-contrast T1.
    pub enhancement: bool,
    /// Whether it restricts diffusion: mean ADC below 0.8 × and DWI above that of the normal
    /// parenchyma (white and grey matter) around it.
    pub restricted_diffusion: bool,
    /// The geometry scale of this session relative to baseline.
    pub scale: f64,
}

/// Width of the band around a lesion (edema included in the lesion) whose normal-appearing
/// parenchyma (white and grey matter, or all non-lesion head tissue if it has none) its intensity
/// classes and diffusion restriction compare against.
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
    let n = g.shape();
    let sp = g.spacing_mm();
    let r: [i64; 3] = std::array::from_fn(|a| (radius_mm / sp[a]).ceil() as i64);
    // Ball offsets once; only the lesion's boundary voxels need to be dilated.
    let mut ball: Vec<[i64; 3]> = Vec::new();
    for dk in -r[2]..=r[2] {
        for dj in -r[1]..=r[1] {
            for di in -r[0]..=r[0] {
                let d2 = (di as f64 * sp[0]).powi(2)
                    + (dj as f64 * sp[1]).powi(2)
                    + (dk as f64 * sp[2]).powi(2);
                if d2 <= radius_mm * radius_mm * (1.0 + 1e-9) {
                    ball.push([di, dj, dk]);
                }
            }
        }
    }
    let mut in_lesion = vec![false; g.num_voxels()];
    for &v in voxels {
        in_lesion[v] = true;
    }
    let inside = |i: i64, j: i64, k: i64| {
        i >= 0 && j >= 0 && k >= 0 && i < n[0] as i64 && j < n[1] as i64 && k < n[2] as i64
    };
    let mut mark = vec![false; g.num_voxels()];
    let mut out = Vec::new();
    for &v in voxels {
        let c = g.coords(v).map(|x| x as i64);
        let boundary = [
            [1i64, 0, 0],
            [-1, 0, 0],
            [0, 1, 0],
            [0, -1, 0],
            [0, 0, 1],
            [0, 0, -1],
        ]
        .iter()
        .any(|o| {
            let (i, j, k) = (c[0] + o[0], c[1] + o[1], c[2] + o[2]);
            !inside(i, j, k) || !in_lesion[g.index(i as usize, j as usize, k as usize)]
        });
        if !boundary {
            continue;
        }
        for o in &ball {
            let (i, j, k) = (c[0] + o[0], c[1] + o[1], c[2] + o[2]);
            if !inside(i, j, k) {
                continue;
            }
            let idx = g.index(i as usize, j as usize, k as usize);
            if mark[idx] {
                continue;
            }
            mark[idx] = true;
            let t = tissue_of_label(labels.data()[idx]);
            if lesions.data()[idx] == 0
                && !matches!(t, Tissue::Background | Tissue::Skull | Tissue::Scalp)
            {
                out.push(idx);
            }
        }
    }
    out.sort_unstable();
    out
}

fn classify(lesion: f64, around: f64, tol: f64) -> IntensityClass {
    let rel = (lesion - around) / around.abs().max(1e-3);
    if rel > tol {
        IntensityClass::Hyper
    } else if rel < -tol {
        IntensityClass::Hypo
    } else {
        IntensityClass::Iso
    }
}

/// The lobe/compartment and territory at voxel `idx`: its structure's, or for cerebral white
/// matter and unlabelled voxels, those of the nearest cortical parcel (within 40 mm).
pub fn lobe_and_territory(
    labels: &LabelMap,
    idx: usize,
    vocab: &Vocabulary,
) -> (String, Option<Territory>) {
    let l = labels.data()[idx];
    let s = vocab.structure_of_label(l);
    let needs_cortex = s
        .and_then(|s| s.site.as_deref())
        .is_none_or(|site| site == "cerebral white matter" || site == "cerebral cortex");
    if !needs_cortex {
        let s = s.expect("checked above");
        return (s.site.clone().unwrap_or_default(), s.territory);
    }
    let g = labels.geometry();
    let c = g.coords(idx);
    let sp = g.spacing_mm();
    let n = g.shape();
    let mut best: Option<(f64, i32)> = None;
    let max_r = (40.0 / sp.iter().copied().fold(f64::INFINITY, f64::min)).ceil() as i64;
    for r in 0..=max_r {
        // Shell of Chebyshev radius r; stop once a hit is closer than the shell can be.
        if let Some((d, _)) = best {
            if d < (r as f64 - 1.0) * sp.iter().copied().fold(f64::INFINITY, f64::min) {
                break;
            }
        }
        for dk in -r..=r {
            for dj in -r..=r {
                for di in -r..=r {
                    if di.abs().max(dj.abs()).max(dk.abs()) != r {
                        continue;
                    }
                    let (i, j, k) = (c[0] as i64 + di, c[1] as i64 + dj, c[2] as i64 + dk);
                    if i < 0
                        || j < 0
                        || k < 0
                        || i >= n[0] as i64
                        || j >= n[1] as i64
                        || k >= n[2] as i64
                    {
                        continue;
                    }
                    let lab = labels.data()[g.index(i as usize, j as usize, k as usize)];
                    if (1000..3000).contains(&lab) {
                        let d = ((di as f64 * sp[0]).powi(2)
                            + (dj as f64 * sp[1]).powi(2)
                            + (dk as f64 * sp[2]).powi(2))
                        .sqrt();
                        if best.is_none_or(|(bd, _)| d < bd) {
                            best = Some((d, lab));
                        }
                    }
                }
            }
        }
    }
    match best.and_then(|(_, lab)| vocab.structure_of_label(lab)) {
        Some(p) => (p.site.clone().unwrap_or_default(), p.territory),
        None => (
            s.and_then(|s| s.site.clone())
                .unwrap_or_else(|| "unknown".into()),
            s.and_then(|s| s.territory),
        ),
    }
}

/// Measures the record of a lesion painted at `voxels` (indices into the session grid).
pub fn record(
    shape: &LesionShape,
    voxels: &[usize],
    labels: &LabelMap,
    lesions: &LabelMap,
    means: &[LabelMeans],
    vocab: &Vocabulary,
    iso_tolerance: f64,
) -> LesionRecord {
    let g = labels.geometry();
    let vml = g.voxel_volume_mm3() / 1000.0;
    let mut by_id: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for &v in voxels {
        by_id.entry(lesions.data()[v]).or_default().push(v);
    }
    let proper: Vec<usize> = voxels
        .iter()
        .copied()
        .filter(|&v| lesions.data()[v] != ids::EDEMA)
        .collect();
    let around = surroundings(labels, lesions, voxels, SURROUNDINGS_MM);
    // Normal-appearing parenchyma in the band: CSF in it would make almost any lesion look
    // bright on T1 and restricted on ADC, so classes are relative to brain tissue.
    let parenchyma: Vec<usize> = around
        .iter()
        .copied()
        .filter(|&v| {
            matches!(
                tissue_of_label(labels.data()[v]),
                Tissue::WhiteMatter | Tissue::CorticalGm | Tissue::DeepGm
            )
        })
        .collect();
    let around = if parenchyma.is_empty() {
        around
    } else {
        parenchyma
    };
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
                    classify(
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
    let cv = g.world_to_voxel(centroid_mm);
    let n = g.shape();
    let cidx = g.index(
        (cv[0].round().max(0.0) as usize).min(n[0] - 1),
        (cv[1].round().max(0.0) as usize).min(n[1] - 1),
        (cv[2].round().max(0.0) as usize).min(n[2] - 1),
    );
    let (mut left, mut right) = (0usize, 0usize);
    for &v in &proper {
        match hemisphere_of(vocab, labels.data()[v]) {
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
    let site = vocab
        .structure_of_label(labels.data()[cidx])
        .map(|t| t.name.clone())
        .unwrap_or_else(|| "outside the brain".into());
    let (lobe, territory) = lobe_and_territory(labels, cidx, vocab);
    let find = |c: Contrast| means.iter().find(|m| m.contrast == c);
    let restricted = match (find(Contrast::Adc), find(Contrast::Dwi)) {
        (Some(adc), Some(dwi)) => {
            mean_over(adc, &proper, true) < 0.8 * mean_over(adc, &around, false)
                && mean_over(dwi, &proper, true) > mean_over(dwi, &around, false)
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
        enhancement: by_id.keys().any(|&id| id == ids::ENHANCING),
        restricted_diffusion: restricted,
        scale: shape.scale,
    }
}
