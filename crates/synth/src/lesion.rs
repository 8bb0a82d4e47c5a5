//! Lesion synthesis (paper A.3): pick a site in the subject's anatomy and a radius, fill a
//! sphere there with random ellipsoids (the lesion is a level set of the distance to the
//! nearest ellipsoid, so growth is a scale of that field), deform that field with smooth random
//! noise (the paper's dilate/erode/deform step), use a second random geometry for
//! heterogeneity (necrotic core, encephalomalacia, acute-on-chronic blood), restrict each
//! component to the tissue it may occupy, and paint the components into a lesion map. Every
//! attribute a question may ask about is measured on the painted maps and recorded in a
//! [`LesionRecord`].
//!
//! Extra-axial lesions (meningioma, arachnoid cyst, subdural haematoma) sit on the inner surface
//! of the skull and push the brain away: [`crate::mass_effect`] displaces the anatomy before
//! they are painted, so they occupy the space between skull and brain and never the skull. They
//! stay on one side of the midline plane fitted between the hemispheres (the falx).
//!
//! Vascular territories: each cortical parcel and deep structure carries an ACA/MCA/PCA (or
//! vertebrobasilar) territory in `configs/synth/vocabulary.toml`, following standard territory
//! maps (ACA: medial frontal and parietal cortex; PCA: occipital lobe, inferomedial temporal
//! lobe, thalamus, hippocampus; MCA: the lateral convexity, insula and basal ganglia). A voxel
//! in cerebral white matter takes the territory of the nearest cortical parcel; a lesion's
//! territory and lobe are those at its centroid.

use crate::contrast::{Contrast, LabelMeans};
use crate::error::{Result, SynthError};
use crate::labels::{
    is_cavity_wall, is_cerebellar_cortex, is_cerebral_cortex, is_cerebral_white_matter,
    is_cortical_parcel, is_parenchyma_label, tissue_of_label, tissue_of_lesion, Tissue, BRAINSTEM,
    EXTRACEREBRAL_CSF, FALX, LABEL_LUT_LEN, LEFT_PUTAMEN, LEFT_THALAMUS, RIGHT_PUTAMEN,
    RIGHT_THALAMUS,
};
use crate::rng::{normal, uniform};
use crate::vocabulary::{Hemisphere, Territory, Vocabulary};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use voxel::neighbourhood::{ball_offsets, face_neighbours, offset_index, FACE_OFFSETS};
use voxel::{Affine, Geometry, LabelMap};

/// Lesion-map ids of the components (defined with the other label semantics in
/// [`crate::labels`]; this is their public path).
pub use crate::labels::lesion_ids as ids;

/// A pathology class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionClass {
    /// Glioma: necrotic core, enhancing rim (or non-enhancing tumour), edema.
    Glioma,
    /// Metastasis at the grey-white junction: enhancing, small necrotic core, edema. A subject
    /// may have several, each at its own site.
    Metastasis,
    /// Acute infarct in an arterial territory: DWI bright, ADC dark.
    AcuteInfarct,
    /// Chronic infarct: encephalomalacia with a gliotic rim.
    ChronicInfarct,
    /// Multifocal white-matter hyperintensities.
    Wmh,
    /// Convexity or falx meningioma: dural-based, homogeneous, avidly enhancing, displaces the
    /// brain; sometimes edema in the white matter beneath.
    Meningioma,
    /// Arachnoid cyst of the middle cranial or posterior fossa: CSF on every contrast.
    ArachnoidCyst,
    /// Acute intraparenchymal haemorrhage (deep grey or lobar): hyperdense on CT, dark on T2
    /// and GRE, thin rim of edema.
    Haemorrhage,
    /// Subdural haematoma over a convexity: acute, chronic or acute-on-chronic crescent.
    SubduralHaematoma,
    /// Pyogenic abscess: restricting cavity, thin enhancing capsule, edema.
    Abscess,
}

impl LesionClass {
    /// Every class, in declaration order.
    pub const ALL: [LesionClass; 10] = [
        LesionClass::Glioma,
        LesionClass::Metastasis,
        LesionClass::AcuteInfarct,
        LesionClass::ChronicInfarct,
        LesionClass::Wmh,
        LesionClass::Meningioma,
        LesionClass::ArachnoidCyst,
        LesionClass::Haemorrhage,
        LesionClass::SubduralHaematoma,
        LesionClass::Abscess,
    ];

    /// Lower-case name used by the CLI (`glioma`, `metastasis`, `acute_infarct`, …).
    pub fn name(self) -> &'static str {
        match self {
            LesionClass::Glioma => "glioma",
            LesionClass::Metastasis => "metastasis",
            LesionClass::AcuteInfarct => "acute_infarct",
            LesionClass::ChronicInfarct => "chronic_infarct",
            LesionClass::Wmh => "wmh",
            LesionClass::Meningioma => "meningioma",
            LesionClass::ArachnoidCyst => "arachnoid_cyst",
            LesionClass::Haemorrhage => "haemorrhage",
            LesionClass::SubduralHaematoma => "subdural_haematoma",
            LesionClass::Abscess => "abscess",
        }
    }

    /// Parses a class name or alias (`tumour`, `stroke`, `ich`, `sdh`, `subdural_hematoma`, …).
    pub fn parse(name: &str) -> Result<LesionClass> {
        Ok(
            match name.trim().to_lowercase().replace(['-', ' '], "_").as_str() {
                "glioma" | "tumour" | "tumor" => LesionClass::Glioma,
                "metastasis" | "metastases" | "met" => LesionClass::Metastasis,
                "acute_infarct" | "infarct" | "stroke" => LesionClass::AcuteInfarct,
                "chronic_infarct" => LesionClass::ChronicInfarct,
                "wmh" | "white_matter_hyperintensities" => LesionClass::Wmh,
                "meningioma" => LesionClass::Meningioma,
                "arachnoid_cyst" => LesionClass::ArachnoidCyst,
                "haemorrhage"
                | "hemorrhage"
                | "ich"
                | "intraparenchymal_haemorrhage"
                | "intraparenchymal_hemorrhage" => LesionClass::Haemorrhage,
                "subdural_haematoma" | "sdh" | "subdural_hematoma" => {
                    LesionClass::SubduralHaematoma
                }
                "abscess" => LesionClass::Abscess,
                other => {
                    let names: Vec<&str> = LesionClass::ALL.iter().map(|c| c.name()).collect();
                    return Err(SynthError::InvalidArgument(format!(
                        "unknown lesion class {other:?}; implemented: {}",
                        names.join(" ")
                    )));
                }
            },
        )
    }

    /// Every lesion-map id this class can paint (see [`ids`]); optional components included.
    pub fn component_ids(self) -> &'static [i32] {
        use ids::*;
        match self {
            LesionClass::Glioma => &[NECROSIS, ENHANCING, EDEMA, SOLID],
            LesionClass::Metastasis => &[NECROSIS, ENHANCING, EDEMA],
            LesionClass::AcuteInfarct => &[ACUTE_INFARCT],
            LesionClass::ChronicInfarct => &[CHRONIC_INFARCT, GLIOSIS],
            LesionClass::Wmh => &[WMH],
            LesionClass::Meningioma => &[MENINGIOMA, EDEMA],
            LesionClass::ArachnoidCyst => &[ARACHNOID_CYST],
            LesionClass::Haemorrhage => &[HAEMORRHAGE, EDEMA],
            LesionClass::SubduralHaematoma => &[SDH_ACUTE, SDH_CHRONIC],
            LesionClass::Abscess => &[ABSCESS_CAVITY, ABSCESS_CAPSULE, EDEMA],
        }
    }

    /// Whether the class lies between skull and brain (and displaces the brain).
    pub fn is_extra_axial(self) -> bool {
        matches!(
            self,
            LesionClass::Meningioma | LesionClass::ArachnoidCyst | LesionClass::SubduralHaematoma
        )
    }

    /// Whether the lesion is star-shaped about its centre (one centred ellipsoid; its noise
    /// depends on direction only), which the radial mass effect relies on.
    pub(crate) fn is_star_shaped(self) -> bool {
        matches!(self, LesionClass::Meningioma | LesionClass::ArachnoidCyst)
    }
}

/// Ids of the components that enhance on post-contrast T1.
const ENHANCING_IDS: [i32; 3] = [ids::ENHANCING, ids::MENINGIOMA, ids::ABSCESS_CAPSULE];

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

/// One plane wave of a lesion's smooth random deformation: the level field is multiplied by
/// `1 + Σ amplitude · sin(k · x + phase)`, with `x` in baseline lesion coordinates (mm from the
/// centre before scaling), so the deformation grows and shrinks with the lesion.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Wave {
    /// Wave vector, radians per mm.
    pub k_per_mm: [f64; 3],
    /// Phase, radians.
    pub phase: f64,
    /// Relative amplitude.
    pub amplitude: f64,
}

/// The plane between the hemispheres, in subject world: the perpendicular bisector of the
/// centroids of the left- and right-sided labels.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Midline {
    /// A point on the plane.
    pub point_mm: [f64; 3],
    /// Unit normal, pointing to the subject's right.
    pub normal: [f64; 3],
}

impl Midline {
    /// Signed distance of `p` from the plane, positive on the subject's right.
    pub fn signed_mm(&self, p: [f64; 3]) -> f64 {
        (0..3)
            .map(|a| (p[a] - self.point_mm[a]) * self.normal[a])
            .sum()
    }

    /// The side of `p`.
    pub fn side(&self, p: [f64; 3]) -> Hemisphere {
        if self.signed_mm(p) >= 0.0 {
            Hemisphere::Right
        } else {
            Hemisphere::Left
        }
    }
}

/// Composition of a subdural haematoma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdhStage {
    /// Hyperdense blood only.
    Acute,
    /// Hypodense, CSF-like collection only.
    Chronic,
    /// Acute-on-chronic: hyperdense blood layering dependently in a chronic collection.
    Mixed,
}

/// The random geometry of one lesion, in subject world mm; `scale` grows or shrinks it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LesionShape {
    /// Class.
    pub class: LesionClass,
    /// Centre (for extra-axial lesions a point on the inner surface of the skull or the falx).
    pub centre_mm: [f64; 3],
    /// Radius of the sphere the ellipsoids were drawn in (baseline).
    pub radius_mm: f64,
    /// Ellipsoids whose union (level 1) is the lesion; for a subdural haematoma, its extent
    /// along the skull.
    pub ellipsoids: Vec<Ellipsoid>,
    /// Smooth random deformation of the first geometry's level field.
    pub deformation: Vec<Wave>,
    /// Second geometry: its level `core_level` set (inside the lesion) is the core (abscess: the
    /// cavity is the first geometry's level `core_level` set, inside a capsule).
    pub second: Vec<Ellipsoid>,
    /// Level of the second geometry that is core (0 = no core).
    pub core_level: f64,
    /// Level of the first geometry up to which white matter is edema (≤ 1 = none).
    pub edema_level: f64,
    /// Whether the solid part enhances.
    pub enhancing: bool,
    /// Linear scale about the centre (1 at baseline).
    pub scale: f64,
    /// Hemisphere of the site the centre was drawn in (restricts infarcts); for extra-axial
    /// lesions the side of the midline they are confined to (`both`: not confined).
    pub side: Hemisphere,
    /// Territory an infarct is confined to.
    pub territory: Option<Territory>,
    /// The midline plane at baseline (extra-axial lesions only).
    pub midline: Option<Midline>,
    /// Largest thickness of a subdural haematoma at baseline (0 for other classes).
    pub thickness_mm: f64,
    /// Composition of a subdural haematoma.
    pub sdh_stage: Option<SdhStage>,
}

/// Level of `q` (mm from the lesion centre, unscaled) in the union of `ells`.
fn level_rel(ells: &[Ellipsoid], q: [f64; 3]) -> f64 {
    let mut best = f64::INFINITY;
    for e in ells {
        let d = [0, 1, 2].map(|a| q[a] - e.offset_mm[a]);
        let mut s = 0.0;
        for (ax, r) in e.axes.iter().zip(e.radii_mm) {
            let u = (ax[0] * d[0] + ax[1] * d[1] + ax[2] * d[2]) / r;
            s += u * u;
        }
        best = best.min(s.sqrt());
    }
    best
}

fn level(ells: &[Ellipsoid], c: [f64; 3], scale: f64, p: [f64; 3]) -> f64 {
    level_rel(ells, [0, 1, 2].map(|a| (p[a] - c[a]) / scale))
}

fn unit(v: [f64; 3]) -> [f64; 3] {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.map(|x| x / n)
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn random_axes(rng: &mut impl Rng) -> [[f64; 3]; 3] {
    // Gram–Schmidt on random vectors: a uniformly oriented orthonormal frame.
    let v: [[f64; 3]; 3] = std::array::from_fn(|_| std::array::from_fn(|_| normal(rng)));
    orthonormal(v)
}

/// Gram–Schmidt on the rows of `v` (the first row keeps its direction).
fn orthonormal(mut v: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    for i in 0..3 {
        for j in 0..i {
            let vj = v[j];
            let d = dot(v[i], vj);
            v[i].iter_mut().zip(vj).for_each(|(x, y)| *x -= d * y);
        }
        v[i] = unit(v[i]);
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

/// Four plane waves of wavelengths in `wavelength_mm` and random directions whose amplitudes
/// sum to at most `amplitude` (so the level field is scaled by a factor in `1 ± amplitude`).
fn random_waves(rng: &mut impl Rng, wavelength_mm: [f64; 2], amplitude: f64) -> Vec<Wave> {
    const N: usize = 4;
    (0..N)
        .map(|_| {
            let dir = unit(std::array::from_fn(|_| normal(rng)));
            let k = std::f64::consts::TAU / uniform(rng, wavelength_mm[0], wavelength_mm[1]);
            Wave {
                k_per_mm: dir.map(|d| d * k),
                phase: uniform(rng, 0.0, std::f64::consts::TAU),
                amplitude: amplitude / N as f64 * uniform(rng, 0.5, 1.0),
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

/// Whether a label is inside the skull cavity (brain, CSF, vessels), i.e. not air, skull or
/// scalp: the space an extra-axial lesion may take.
pub(crate) fn in_cavity(label: i32) -> bool {
    tissue_of_label(label).is_some_and(|t| !t.is_outside_cavity())
}

/// A random voxel index whose label satisfies `ok`, or an error naming `what`.
fn random_voxel(
    labels: &LabelMap,
    rng: &mut impl Rng,
    what: &str,
    ok: impl Fn(i32) -> bool,
) -> Result<usize> {
    random_voxel_where(labels, rng, what, ok, |_| true)
}

/// A random voxel of cerebral white matter.
fn random_white_matter(labels: &LabelMap, rng: &mut impl Rng) -> Result<usize> {
    random_voxel(
        labels,
        rng,
        "cerebral white matter",
        is_cerebral_white_matter,
    )
}

/// A random voxel whose label satisfies the cheap test `ok` and whose index satisfies the
/// costlier test `fine` (tried on random candidates first, then on all of them).
fn random_voxel_where(
    labels: &LabelMap,
    rng: &mut impl Rng,
    what: &str,
    ok: impl Fn(i32) -> bool,
    fine: impl Fn(usize) -> bool,
) -> Result<usize> {
    let candidates: Vec<usize> = labels
        .data()
        .iter()
        .enumerate()
        .filter(|(_, &l)| ok(l))
        .map(|(i, _)| i)
        .collect();
    if !candidates.is_empty() {
        for _ in 0..64 {
            let i = candidates[rng.random_range(0..candidates.len())];
            if fine(i) {
                return Ok(i);
            }
        }
        let passing: Vec<usize> = candidates.into_iter().filter(|&i| fine(i)).collect();
        if !passing.is_empty() {
            return Ok(passing[rng.random_range(0..passing.len())]);
        }
    }
    Err(SynthError::Placement(format!(
        "no {what} voxels in this subject"
    )))
}

/// Whether a voxel within `radius_mm` of voxel `idx` has a label satisfying `ok`.
fn near(labels: &LabelMap, idx: usize, radius_mm: f64, ok: impl Fn(i32) -> bool) -> bool {
    let g = labels.geometry();
    let c = g.coords(idx);
    ball_offsets(g.spacing_mm(), radius_mm)
        .into_iter()
        .filter_map(|o| offset_index(g, c, o))
        .any(|q| ok(labels.data()[q]))
}

/// Whether one of the six face neighbours of voxel `idx` has a label satisfying `ok`.
fn touches(labels: &LabelMap, idx: usize, ok: impl Fn(i32) -> bool) -> bool {
    face_neighbours(labels.geometry(), idx).any(|q| ok(labels.data()[q]))
}

/// The midline plane of `labels` (world of its grid): the perpendicular bisector of the
/// centroids of the left-sided and right-sided labels; `None` without both sides.
pub fn midline_plane(labels: &LabelMap, vocab: &Vocabulary) -> Option<Midline> {
    let lut: Vec<Hemisphere> = (0..LABEL_LUT_LEN as i32)
        .map(|l| hemisphere_of(vocab, l))
        .collect();
    let g = labels.geometry();
    let n = g.shape();
    let (mut sl, mut sr) = ([0.0f64; 3], [0.0f64; 3]);
    let (mut nl, mut nr) = (0usize, 0usize);
    for (idx, &l) in labels.data().iter().enumerate() {
        let side = lut[(l.max(0) as usize).min(lut.len() - 1)];
        if side == Hemisphere::Both {
            continue;
        }
        let i = idx % n[0];
        let j = (idx / n[0]) % n[1];
        let k = idx / (n[0] * n[1]);
        let (s, c) = if side == Hemisphere::Left {
            (&mut sl, &mut nl)
        } else {
            (&mut sr, &mut nr)
        };
        s[0] += i as f64;
        s[1] += j as f64;
        s[2] += k as f64;
        *c += 1;
    }
    if nl == 0 || nr == 0 {
        return None;
    }
    let cl = g.voxel_to_world(sl.map(|x| x / nl as f64));
    let cr = g.voxel_to_world(sr.map(|x| x / nr as f64));
    let d = [0, 1, 2].map(|a| cr[a] - cl[a]);
    if d.iter().map(|x| x * x).sum::<f64>() < 1e-6 {
        return None;
    }
    Some(Midline {
        point_mm: [0, 1, 2].map(|a| (cl[a] + cr[a]) / 2.0),
        normal: unit(d),
    })
}

/// Unit vector from voxel `idx` into the skull cavity: the mean direction to the cavity voxels
/// within 12 mm (the inward normal of the skull's inner surface there).
fn inward_normal(labels: &LabelMap, idx: usize) -> [f64; 3] {
    let g = labels.geometry();
    let sp = g.spacing_mm();
    let c = g.coords(idx);
    let mut s = [0.0; 3];
    for o in ball_offsets(sp, 12.0) {
        if offset_index(g, c, o).is_some_and(|q| in_cavity(labels.data()[q])) {
            (0..3).for_each(|a| s[a] += o[a] as f64 * sp[a]);
        }
    }
    // Grid axes are world axes up to sign and scale (RAS-aligned synthetic grids).
    let a = g.affine().linear();
    unit([0, 1, 2].map(|i| (0..3).map(|k| a[i][k] / sp[k] * s[k]).sum::<f64>()))
}

/// A frame whose first axis is `n` and the other two random in the plane across it.
fn frame_along(rng: &mut impl Rng, n: [f64; 3]) -> [[f64; 3]; 3] {
    let r = random_axes(rng);
    orthonormal([n, r[0], r[1]])
}

impl LesionShape {
    /// A shape of `class` at `centre_mm` with no geometry yet.
    fn empty(class: LesionClass, centre_mm: [f64; 3], radius_mm: f64) -> LesionShape {
        LesionShape {
            class,
            centre_mm,
            radius_mm,
            ellipsoids: vec![],
            deformation: vec![],
            second: vec![],
            core_level: 0.0,
            edema_level: 0.0,
            enhancing: false,
            scale: 1.0,
            side: Hemisphere::Both,
            territory: None,
            midline: None,
            thickness_mm: 0.0,
            sdh_stage: None,
        }
    }
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
    let at = |i: usize| world(g, i);
    let s = match class {
        LesionClass::Glioma => {
            let i = random_white_matter(labels, rng)?;
            let r = uniform(rng, 15.0, 35.0);
            let n = rng.random_range(2..6);
            let enh = rng.random::<f64>() < 0.7;
            let mut s = LesionShape::empty(class, at(i), r);
            s.core_level = if enh { uniform(rng, 0.4, 0.7) } else { 0.0 };
            s.ellipsoids = fill_sphere(rng, r, n);
            s.second = fill_sphere(rng, r * 0.6, 2);
            s.edema_level = uniform(rng, 1.4, 2.0);
            s.enhancing = enh;
            s.deformation = random_waves(rng, [0.6 * r, 1.5 * r], 0.2);
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Metastasis => {
            let i = random_voxel(labels, rng, "cortex", is_cerebral_cortex)?;
            let r = uniform(rng, 4.0, 12.0);
            let mut s = LesionShape::empty(class, at(i), r);
            s.core_level = if r > 7.0 { uniform(rng, 0.3, 0.6) } else { 0.0 };
            s.ellipsoids = fill_sphere(rng, r, 1);
            s.second = fill_sphere(rng, r * 0.5, 1);
            s.edema_level = uniform(rng, 1.6, 3.0);
            s.enhancing = true;
            s.deformation = random_waves(rng, [0.8 * r, 2.0 * r], 0.12);
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::AcuteInfarct | LesionClass::ChronicInfarct => {
            let t = match rng.random_range(0..10) {
                0 | 1 => Territory::ACA,
                2 | 3 => Territory::PCA,
                _ => Territory::MCA,
            };
            let i = random_voxel(labels, rng, "territory cortex", |l| {
                is_cortical_parcel(l)
                    && vocab.structure_of_label(l).and_then(|s| s.territory) == Some(t)
            })?;
            let r = uniform(rng, 12.0, 35.0);
            let mut s = LesionShape::empty(class, at(i), r);
            s.core_level = if class == LesionClass::ChronicInfarct {
                uniform(rng, 0.6, 0.9)
            } else {
                0.0
            };
            let count = rng.random_range(2..5);
            s.ellipsoids = fill_sphere(rng, r, count);
            s.second = fill_sphere(rng, r * 0.8, 2);
            s.territory = Some(t);
            s.deformation = random_waves(rng, [0.6 * r, 1.5 * r], 0.2);
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Wmh => {
            let i = random_white_matter(labels, rng)?;
            let c = at(i);
            let n = rng.random_range(3..12);
            let mut ells = Vec::with_capacity(n);
            for _ in 0..n {
                let j = random_white_matter(labels, rng)?;
                let p = at(j);
                let r = uniform(rng, 2.5, 6.0);
                ells.push(Ellipsoid {
                    offset_mm: [0, 1, 2].map(|a| p[a] - c[a]),
                    radii_mm: std::array::from_fn(|_| uniform(rng, 0.6, 1.0) * r),
                    axes: random_axes(rng),
                });
            }
            let mut s = LesionShape::empty(class, c, 6.0);
            s.ellipsoids = ells;
            s.deformation = random_waves(rng, [6.0, 14.0], 0.15);
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Meningioma => sample_meningioma(labels, vocab, rng)?,
        LesionClass::ArachnoidCyst => sample_arachnoid_cyst(labels, vocab, rng)?,
        LesionClass::SubduralHaematoma => sample_subdural(labels, vocab, rng)?,
        LesionClass::Haemorrhage => {
            let deep = rng.random::<f64>() < 0.55;
            let (i, r) = if deep {
                let i = random_voxel(labels, rng, "putamen or thalamus", |l| {
                    matches!(
                        l,
                        LEFT_THALAMUS | LEFT_PUTAMEN | RIGHT_THALAMUS | RIGHT_PUTAMEN
                    )
                })?;
                (i, uniform(rng, 12.0, 25.0))
            } else {
                let i = random_white_matter(labels, rng)?;
                (i, uniform(rng, 15.0, 32.0))
            };
            let mut s = LesionShape::empty(class, at(i), r);
            let n = rng.random_range(1..4);
            s.ellipsoids = fill_sphere(rng, r, n);
            // A thin rim: a few millimetres whatever the size.
            s.edema_level = 1.0 + uniform(rng, 2.0, 5.0) / (0.6 * r);
            s.deformation = random_waves(rng, [0.6 * r, 1.5 * r], 0.15);
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Abscess => {
            // At the grey-white junction, where haematogenous abscesses seed.
            let i = random_voxel_where(
                labels,
                rng,
                "juxtacortical white matter",
                is_cerebral_white_matter,
                |i| near(labels, i, 12.0, is_cerebral_cortex),
            )?;
            let r = uniform(rng, 10.0, 22.0);
            let mut s = LesionShape::empty(class, at(i), r);
            let main = Ellipsoid {
                offset_mm: [0.0; 3],
                radii_mm: std::array::from_fn(|_| uniform(rng, 0.85, 1.0) * r),
                axes: random_axes(rng),
            };
            s.ellipsoids = vec![main];
            if rng.random::<f64>() < 0.3 {
                // A daughter loculus.
                let dir = unit(std::array::from_fn(|_| normal(rng)));
                let rd = uniform(rng, 0.4, 0.6) * r;
                s.ellipsoids.push(Ellipsoid {
                    offset_mm: dir.map(|d| d * 0.8 * r),
                    radii_mm: [rd; 3],
                    axes: random_axes(rng),
                });
            }
            // Capsule 2.5–4 mm thick: the cavity is the inner level set of the same geometry.
            s.core_level = 1.0 - uniform(rng, 2.5, 4.0) / (0.9 * r);
            s.edema_level = uniform(rng, 1.6, 2.6);
            s.enhancing = true;
            s.deformation = random_waves(rng, [1.0 * r, 2.0 * r], 0.06);
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
    };
    Ok(s)
}

/// A point of extracerebral CSF touching the skull over the cerebral convexity (at least 15 mm
/// from the cerebellum), at least `min_from_midline_mm` from the midline.
fn convexity_voxel(
    labels: &LabelMap,
    midline: &Midline,
    min_from_midline_mm: f64,
    rng: &mut impl Rng,
) -> Result<usize> {
    let g = labels.geometry();
    random_voxel_where(
        labels,
        rng,
        "convexity extracerebral CSF",
        |l| l == EXTRACEREBRAL_CSF,
        |i| {
            midline.signed_mm(world(g, i)).abs() >= min_from_midline_mm
                && touches(labels, i, is_cavity_wall)
                && near(labels, i, 8.0, is_cerebral_cortex)
                // Supratentorial: clear of the cerebellum, so above the tentorium.
                && !near(labels, i, 15.0, is_cerebellar_cortex)
        },
    )
}

fn midline_of(labels: &LabelMap, vocab: &Vocabulary) -> Result<Midline> {
    midline_plane(labels, vocab).ok_or_else(|| {
        SynthError::Placement("no left and right hemisphere labels for the midline".into())
    })
}

fn sample_meningioma(
    labels: &LabelMap,
    vocab: &Vocabulary,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let midline = midline_of(labels, vocab)?;
    let sp = g.spacing_mm().iter().copied().fold(0.0, f64::max);
    let falx = if rng.random::<f64>() < 0.3 {
        // Along the falx: CSF on the midline above the corpus callosum.
        let up = 15.0;
        random_voxel_where(
            labels,
            rng,
            "falcine CSF",
            |l| l == EXTRACEREBRAL_CSF || l == FALX,
            |i| {
                let p = world(g, i);
                midline.signed_mm(p).abs() <= sp
                    && p[2] - midline.point_mm[2] > up
                    && near(labels, i, 8.0, is_cerebral_cortex)
            },
        )
        .ok()
    } else {
        None
    };
    let (i, side, n) = match falx {
        Some(i) => {
            let side = if rng.random::<bool>() {
                Hemisphere::Right
            } else {
                Hemisphere::Left
            };
            let sign = if side == Hemisphere::Right { 1.0 } else { -1.0 };
            (i, side, midline.normal.map(|x| x * sign))
        }
        None => {
            let i = convexity_voxel(labels, &midline, 10.0, rng)?;
            (i, midline.side(world(g, i)), inward_normal(labels, i))
        }
    };
    let r = uniform(rng, 12.0, 28.0);
    let mut s = LesionShape::empty(LesionClass::Meningioma, world(g, i), r);
    // A dome on the dura: one axis along the inward normal, the other two across it.
    s.ellipsoids = vec![Ellipsoid {
        offset_mm: [0.0; 3],
        radii_mm: [
            uniform(rng, 0.6, 1.0) * r,
            uniform(rng, 0.8, 1.2) * r,
            uniform(rng, 0.8, 1.2) * r,
        ],
        axes: frame_along(rng, n),
    }];
    s.edema_level = if rng.random::<f64>() < 0.4 {
        uniform(rng, 1.3, 1.8)
    } else {
        0.0
    };
    s.enhancing = true;
    s.deformation = random_waves(rng, [0.8 * r, 1.6 * r], 0.12);
    s.side = side;
    s.midline = Some(midline);
    Ok(s)
}

/// One randomly oriented ellipsoid at the centre with semi-axes of 0.7–1 × `r`.
fn centred_ellipsoid(rng: &mut impl Rng, r: f64) -> Ellipsoid {
    Ellipsoid {
        offset_mm: [0.0; 3],
        radii_mm: std::array::from_fn(|_| uniform(rng, 0.7, 1.0) * r),
        axes: random_axes(rng),
    }
}

fn sample_arachnoid_cyst(
    labels: &LabelMap,
    vocab: &Vocabulary,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let midline = midline_of(labels, vocab)?;
    let temporal_pole = vocab
        .get("temporal pole")
        .map(|t| t.anatomy_ids())
        .unwrap_or_default();
    let is_temporal_pole = |l: i32| temporal_pole.contains(&l);
    let is_temporal = |l: i32| {
        vocab
            .structure_of_label(l)
            .and_then(|s| s.site.as_deref())
            .is_some_and(|site| site == "temporal lobe")
    };
    let skull_csf = |i: usize| touches(labels, i, is_cavity_wall);
    let csf = |l: i32| l == EXTRACEREBRAL_CSF;
    let middle_fossa = rng.random::<f64>() < 0.65;
    let mut pick = None;
    if middle_fossa {
        // Lateral to the sella and the medial temporal lobe: the anterior temporal fossa.
        let lateral = |i: usize| midline.signed_mm(world(g, i)).abs() >= 28.0;
        pick = random_voxel_where(labels, rng, "middle cranial fossa CSF", csf, |i| {
            lateral(i) && skull_csf(i) && near(labels, i, 10.0, is_temporal_pole)
        })
        .or_else(|_| {
            random_voxel_where(labels, rng, "temporal CSF", csf, |i| {
                lateral(i) && skull_csf(i) && near(labels, i, 8.0, is_temporal)
            })
        })
        .ok();
    }
    if pick.is_none() && rng.random::<f64>() < 0.4 {
        // Cerebellopontine angle: the cistern between the cerebellum and the pons, off the
        // midline (falls through to the retrocerebellar site when the anatomy has none).
        pick = random_voxel_where(labels, rng, "cerebellopontine angle CSF", csf, |i| {
            midline.signed_mm(world(g, i)).abs() >= 8.0
                && near(labels, i, 8.0, |l| l == BRAINSTEM)
                && near(labels, i, 8.0, is_cerebellar_cortex)
        })
        .ok();
    }
    let in_cpa = pick.is_some() && !middle_fossa;
    let (i, side) = match pick {
        Some(i) => (i, midline.side(world(g, i))),
        None => {
            // Posterior fossa: behind or beside the cerebellum; may straddle the midline.
            let i = random_voxel_where(labels, rng, "posterior fossa CSF", csf, |i| {
                skull_csf(i) && near(labels, i, 8.0, is_cerebellar_cortex)
            })?;
            (i, Hemisphere::Both)
        }
    };
    // The angle is a small cistern: a cyst there stays small enough to remain in it.
    let r = if in_cpa {
        uniform(rng, 8.0, 15.0)
    } else {
        uniform(rng, 12.0, 30.0)
    };
    let mut s = LesionShape::empty(LesionClass::ArachnoidCyst, world(g, i), r);
    s.ellipsoids = vec![centred_ellipsoid(rng, r)];
    s.deformation = random_waves(rng, [1.0 * r, 2.0 * r], 0.08);
    s.side = side;
    s.midline = Some(midline);
    Ok(s)
}

fn sample_subdural(
    labels: &LabelMap,
    vocab: &Vocabulary,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let midline = midline_of(labels, vocab)?;
    let i = convexity_voxel(labels, &midline, 25.0, rng)?;
    let c = world(g, i);
    let r = uniform(rng, 35.0, 65.0);
    let mut s = LesionShape::empty(LesionClass::SubduralHaematoma, c, r);
    // Extent along the skull; the depth below the inner table is set by the thickness.
    s.ellipsoids = vec![centred_ellipsoid(rng, r)];
    s.deformation = random_waves(rng, [0.5 * r, 1.0 * r], 0.2);
    s.thickness_mm = uniform(rng, 3.0, 20.0);
    let stage = match rng.random_range(0..20) {
        0..=8 => SdhStage::Acute,
        9..=14 => SdhStage::Chronic,
        _ => SdhStage::Mixed,
    };
    if stage == SdhStage::Mixed {
        // Fresh blood settles dependently: pockets shifted posteriorly (supine patient).
        let mut pockets = fill_sphere(rng, 0.5 * r, 2);
        for e in &mut pockets {
            e.offset_mm[1] -= 0.4 * r;
        }
        s.second = pockets;
        s.core_level = 1.0;
    }
    s.sdh_stage = Some(stage);
    s.side = midline.side(c);
    s.midline = Some(midline);
    Ok(s)
}

/// What [`LesionShape::component_at`] knows about a voxel besides its position.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VoxelContext {
    /// Anatomy label.
    pub label: i32,
    /// Depth below the inner surface of the skull, mm (subdural haematoma only; else ∞).
    pub depth_mm: f64,
}

impl LesionShape {
    /// Sum of the deformation amplitudes (the level field is scaled within `1 ±` this).
    fn deformation_amplitude(&self) -> f64 {
        self.deformation.iter().map(|w| w.amplitude.abs()).sum()
    }

    /// The deformed level of the first geometry at subject-world point `p` (the lesion is its
    /// level-1 set), or any level above `cutoff` when the point is certainly beyond it, which
    /// skips the deformation for most of a lesion's bounding box. Star-shaped classes deform by
    /// direction only, so the level stays proportional to the distance from the centre along
    /// each ray.
    pub(crate) fn level_within(&self, p: [f64; 3], cutoff: f64) -> f64 {
        let q = [0, 1, 2].map(|a| (p[a] - self.centre_mm[a]) / self.scale);
        let f = level_rel(&self.ellipsoids, q);
        if self.deformation.is_empty() {
            return f;
        }
        let low = f * (1.0 - self.deformation_amplitude());
        if low > cutoff {
            return low;
        }
        let x = if self.class.is_star_shaped() {
            unit(q).map(|u| u * self.radius_mm)
        } else {
            q
        };
        let noise: f64 = self
            .deformation
            .iter()
            .map(|w| w.amplitude * (dot(w.k_per_mm, x) + w.phase).sin())
            .sum();
        f * (1.0 + noise)
    }

    /// Largest distance from the centre of the first geometry's level-`level` set (at least
    /// level 1), deformation and scale included, plus a millimetre of slack.
    pub(crate) fn extent_mm(&self, level: f64) -> f64 {
        let lv = level.max(1.0) / (1.0 - self.deformation_amplitude()).max(0.2);
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

    /// Largest distance from the centre at which any component may lie.
    pub(crate) fn reach_mm(&self) -> f64 {
        self.extent_mm(self.edema_level)
    }

    /// Whether subject-world point `p` is on the side of the midline this lesion keeps to.
    pub(crate) fn on_side(&self, p: [f64; 3]) -> bool {
        match (self.midline, self.side) {
            (Some(m), Hemisphere::Right) => m.signed_mm(p) > 0.0,
            (Some(m), Hemisphere::Left) => m.signed_mm(p) < 0.0,
            _ => true,
        }
    }

    /// Thickness of a subdural haematoma under subject-world point `p` (0 outside its extent):
    /// largest at the centre of the collection, tapering to its edges (a crescent).
    pub(crate) fn sdh_thickness_at(&self, p: [f64; 3]) -> f64 {
        let u = self.level_within(p, 1.0);
        if u >= 1.0 {
            0.0
        } else {
            self.thickness_mm * self.scale * (1.0 - u * u).sqrt()
        }
    }

    /// Whether this lesion's class can take a voxel of anatomy `label` at all (a voxel it
    /// cannot take needs no geometry).
    pub(crate) fn may_take(&self, label: i32) -> bool {
        match self.class {
            LesionClass::Glioma
            | LesionClass::Metastasis
            | LesionClass::AcuteInfarct
            | LesionClass::ChronicInfarct
            | LesionClass::Haemorrhage
            | LesionClass::Abscess => tissue_of_label(label).is_some_and(Tissue::is_cerebral),
            LesionClass::Wmh => is_cerebral_white_matter(label),
            LesionClass::Meningioma
            | LesionClass::ArachnoidCyst
            | LesionClass::SubduralHaematoma => in_cavity(label),
        }
    }

    /// The component id this lesion puts at subject-world point `p` over the voxel `v`.
    pub(crate) fn component_at(&self, p: [f64; 3], v: VoxelContext, vocab: &Vocabulary) -> i32 {
        let label = v.label;
        // Tissue the class can never take: no need to evaluate the geometry.
        if !self.may_take(label) {
            return 0;
        }
        // Known by `may_take` above.
        let Some(tissue) = tissue_of_label(label) else {
            return 0;
        };
        // Intra-axial lesions take cerebral parenchyma only.
        let cerebral = tissue.is_cerebral();
        let is_wm = is_cerebral_white_matter(label);
        if self.class == LesionClass::SubduralHaematoma {
            if v.depth_mm >= self.thickness_mm * self.scale
                || !self.on_side(p)
                || v.depth_mm >= self.sdh_thickness_at(p)
            {
                return 0;
            }
            let pocket = || {
                self.core_level > 0.0
                    && level(&self.second, self.centre_mm, self.scale, p) <= self.core_level
            };
            return match self.sdh_stage {
                Some(SdhStage::Chronic) => ids::SDH_CHRONIC,
                Some(SdhStage::Mixed) if !pocket() => ids::SDH_CHRONIC,
                _ => ids::SDH_ACUTE,
            };
        }
        let f = self.level_within(p, self.edema_level.max(1.0));
        let core = || {
            self.core_level > 0.0
                && level(&self.second, self.centre_mm, self.scale, p) <= self.core_level
        };
        match self.class {
            LesionClass::Glioma | LesionClass::Metastasis => {
                if f <= 1.0 && cerebral {
                    if core() {
                        ids::NECROSIS
                    } else if self.enhancing {
                        ids::ENHANCING
                    } else {
                        ids::SOLID
                    }
                } else if f <= self.edema_level && is_wm {
                    ids::EDEMA
                } else {
                    0
                }
            }
            LesionClass::AcuteInfarct | LesionClass::ChronicInfarct => {
                if f > 1.0 || !cerebral {
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
                if f <= 1.0 && is_wm {
                    ids::WMH
                } else {
                    0
                }
            }
            LesionClass::Meningioma | LesionClass::ArachnoidCyst => {
                if !in_cavity(label) || !self.on_side(p) {
                    0
                } else if f <= 1.0 {
                    if self.class == LesionClass::Meningioma {
                        ids::MENINGIOMA
                    } else {
                        ids::ARACHNOID_CYST
                    }
                } else if f <= self.edema_level && is_wm {
                    ids::EDEMA
                } else {
                    0
                }
            }
            LesionClass::Haemorrhage => {
                if f <= 1.0 && cerebral {
                    ids::HAEMORRHAGE
                } else if f <= self.edema_level && (is_wm || tissue == Tissue::DeepGm) {
                    ids::EDEMA
                } else {
                    0
                }
            }
            LesionClass::Abscess => {
                if f <= 1.0 && cerebral {
                    if f <= self.core_level {
                        ids::ABSCESS_CAVITY
                    } else {
                        ids::ABSCESS_CAPSULE
                    }
                } else if f <= self.edema_level && is_wm {
                    ids::EDEMA
                } else {
                    0
                }
            }
            LesionClass::SubduralHaematoma => 0,
        }
    }

    /// Whether the bounding spheres of two lesions (edema included) intersect. Diffuse white
    /// matter disease is allowed to overlap anything.
    pub fn overlaps(&self, other: &LesionShape) -> bool {
        if self.class == LesionClass::Wmh || other.class == LesionClass::Wmh {
            return false;
        }
        let d = (0..3)
            .map(|a| (self.centre_mm[a] - other.centre_mm[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        d < self.reach_mm() + other.reach_mm()
    }
}

/// [`sample_lesion`], redrawn (up to 32 times) until it does not overlap any of `others`, so
/// that several lesions (e.g. metastases) lie at distinct, separate sites, and until it puts at
/// least one voxel of lesion proper on this grid (a small metastasis can fall between the
/// voxels of the cortex); when no draw qualifies, the one farthest from overlapping among
/// those that paint (or among all) is kept.
pub fn sample_lesion_apart(
    class: LesionClass,
    labels: &LabelMap,
    vocab: &Vocabulary,
    rng: &mut impl Rng,
    others: &[LesionShape],
) -> Result<LesionShape> {
    let clearance = |s: &LesionShape| {
        others
            .iter()
            .filter(|o| o.class != LesionClass::Wmh && s.class != LesionClass::Wmh)
            .map(|o| {
                let d = (0..3)
                    .map(|a| (s.centre_mm[a] - o.centre_mm[a]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                d - s.reach_mm() - o.reach_mm()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let mut best: Option<(bool, f64, LesionShape)> = None;
    for _ in 0..32 {
        let s = sample_lesion(class, labels, vocab, rng)?;
        let c = clearance(&s);
        let paints = paints_on(&s, labels, vocab);
        if c >= 0.0 && paints {
            return Ok(s);
        }
        if best
            .as_ref()
            .is_none_or(|(bp, bc, _)| (paints, c) > (*bp, *bc))
        {
            best = Some((paints, c, s));
        }
    }
    Ok(best.expect("at least one draw").2)
}

/// Whether `shape` puts a voxel of lesion proper (not edema) on the grid of `labels` (subject
/// world). Extra-axial lesions always do: their mass effect makes room for them.
fn paints_on(shape: &LesionShape, labels: &LabelMap, vocab: &Vocabulary) -> bool {
    if shape.class.is_extra_axial() {
        return true;
    }
    let g = labels.geometry();
    let (lo, hi) = window(g, g.world_to_voxel(shape.centre_mm), shape.extent_mm(1.0));
    for k in lo[2]..hi[2] {
        for j in lo[1]..hi[1] {
            for i in lo[0]..hi[0] {
                let v = VoxelContext {
                    label: labels.data()[g.index(i, j, k)],
                    depth_mm: f64::INFINITY,
                };
                let p = g.voxel_to_world([i as f64, j as f64, k as f64]);
                let c = shape.component_at(p, v, vocab);
                if c != 0 && c != ids::EDEMA {
                    return true;
                }
            }
        }
    }
    false
}

/// The voxel box `[lo, hi)` of grid `g` within `reach_mm` of session-world point `centre`
/// (voxel coordinates, one voxel of slack).
pub(crate) fn window(g: &Geometry, centre: [f64; 3], reach_mm: f64) -> ([usize; 3], [usize; 3]) {
    let sp = g.spacing_mm();
    let n = g.shape();
    let lo = std::array::from_fn(|a| (centre[a] - reach_mm / sp[a]).floor().max(0.0) as usize);
    let hi = std::array::from_fn(|a| {
        ((centre[a] + reach_mm / sp[a]).ceil().max(0.0) as usize + 1).min(n[a])
    });
    (lo, hi)
}

/// Paints `shape` into `lesions` (only where it is still 0) over the anatomy `labels` of one
/// session; `to_subject` maps that session's world to subject world. Returns the indices of the
/// voxels painted. Extra-axial lesions expect `labels` to carry their mass effect already
/// ([`crate::mass_effect::displace`]).
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
    let (lo, hi) = window(&g, centre, shape.reach_mm());
    let depth = if shape.class == LesionClass::SubduralHaematoma {
        Some(crate::mass_effect::SkullDepth::new(
            labels,
            lo,
            hi,
            shape.thickness_mm * shape.scale + 5.0,
        )?)
    } else {
        None
    };
    let mut data = lesions.data().to_vec();
    let anat = labels.data();
    let voxel_to_subject = to_subject.compose(g.affine());
    let mut painted = Vec::new();
    for k in lo[2]..hi[2] {
        for j in lo[1]..hi[1] {
            for i in lo[0]..hi[0] {
                let idx = g.index(i, j, k);
                // Most of the window is tissue the class cannot take: skip it before any
                // geometry.
                if data[idx] != 0 || !shape.may_take(anat[idx]) {
                    continue;
                }
                let p = voxel_to_subject.apply([i as f64, j as f64, k as f64]);
                let v = VoxelContext {
                    label: anat[idx],
                    depth_mm: depth
                        .as_ref()
                        .map_or(f64::INFINITY, |d| d.depth_mm([i, j, k])),
                };
                let c = shape.component_at(p, v, vocab);
                if c != 0 {
                    data[idx] = c;
                    painted.push(idx);
                }
            }
        }
    }
    if shape.class == LesionClass::Abscess {
        close_capsule(&g, &mut data, &painted);
    }
    *lesions = lesions.with_data(data)?;
    Ok(painted)
}

/// Makes the abscess capsule a closed wall on this grid: cavity voxels with a face neighbour
/// that is neither cavity nor capsule become capsule, so pus never touches brain or edema
/// (a thin rim can otherwise alias into gaps on coarse grids).
fn close_capsule(g: &Geometry, data: &mut [i32], painted: &[usize]) {
    let n = g.shape();
    let snapshot: Vec<(usize, bool)> = painted
        .iter()
        .filter(|&&v| data[v] == ids::ABSCESS_CAVITY)
        .map(|&v| {
            let c = g.coords(v);
            let open = (0..3).any(|a| {
                [-1i64, 1].iter().any(|&d| {
                    let mut q = [c[0] as i64, c[1] as i64, c[2] as i64];
                    q[a] += d;
                    if q[a] < 0 || q[a] >= n[a] as i64 {
                        return true;
                    }
                    let l = data[g.index(q[0] as usize, q[1] as usize, q[2] as usize)];
                    l != ids::ABSCESS_CAVITY && l != ids::ABSCESS_CAPSULE
                })
            });
            (v, open)
        })
        .collect();
    for (v, open) in snapshot {
        if open {
            data[v] = ids::ABSCESS_CAPSULE;
        }
    }
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

/// The nearest voxel to `idx` (within `max_mm`, nearest first by Chebyshev shells) whose label
/// satisfies `ok`, as its label.
fn nearest_label(
    labels: &LabelMap,
    idx: usize,
    max_mm: f64,
    ok: impl Fn(i32) -> bool,
) -> Option<i32> {
    let g = labels.geometry();
    let c = g.coords(idx);
    let sp = g.spacing_mm();
    let n = g.shape();
    let min_sp = sp.iter().copied().fold(f64::INFINITY, f64::min);
    let mut best: Option<(f64, i32)> = None;
    let max_r = (max_mm / min_sp).ceil() as i64;
    for r in 0..=max_r {
        // Shell of Chebyshev radius r; stop once a hit is closer than the shell can be.
        if let Some((d, _)) = best {
            if d < (r as f64 - 1.0) * min_sp {
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
                    if ok(lab) {
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
    best.map(|(_, l)| l)
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
    // Parcels the vocabulary knows (FreeSurfer's "unknown" cortex, 1000/2000, has no lobe).
    let parcel = nearest_label(labels, idx, 40.0, |lab| {
        is_cortical_parcel(lab) && vocab.structure_of_label(lab).is_some()
    });
    match parcel.and_then(|lab| vocab.structure_of_label(lab)) {
        Some(p) => (p.site.clone().unwrap_or_default(), p.territory),
        None => (
            s.and_then(|s| s.site.clone())
                .unwrap_or_else(|| "unknown".into()),
            s.and_then(|s| s.territory),
        ),
    }
}

/// The `site` recorded for an extra-axial lesion centred in the cerebellopontine angle.
pub const CEREBELLOPONTINE_ANGLE: &str = "cerebellopontine angle";

/// Whether voxel `idx` lies in the cerebellopontine angle: off the midline (≥ 8 mm) and within
/// 12 mm of both the brainstem and the cerebellar cortex.
fn is_cerebellopontine_angle(
    labels: &LabelMap,
    idx: usize,
    midline: Option<Midline>,
    to_subject: &Affine,
) -> bool {
    let off_midline = midline.is_some_and(|m| {
        m.signed_mm(to_subject.apply(world(labels.geometry(), idx)))
            .abs()
            >= 8.0
    });
    off_midline
        && near(labels, idx, 12.0, |l| l == BRAINSTEM)
        && near(labels, idx, 12.0, is_cerebellar_cortex)
}

/// The lobe or compartment of the brain nearest voxel `idx` (within 40 mm): a cerebral lobe,
/// `cerebellum` or `infratentorial` — where an extra-axial lesion is reported.
pub fn nearest_lobe(labels: &LabelMap, idx: usize, vocab: &Vocabulary) -> String {
    let site_of = |l: i32| vocab.structure_of_label(l).and_then(|s| s.site.clone());
    // Brain labels with a site (FreeSurfer's "unknown" cortex has none).
    let brain: Vec<bool> = (0..LABEL_LUT_LEN as i32)
        .map(|l| is_parenchyma_label(l) && site_of(l).is_some())
        .collect();
    let is = |lut: &[bool], l: i32| l >= 0 && (l as usize) < lut.len() && lut[l as usize];
    let site = nearest_label(labels, idx, 40.0, |l| is(&brain, l)).and_then(site_of);
    match site.as_deref() {
        // Unparcellated brain: the lobe of the nearest cortical parcel, if there is one.
        Some("cerebral white matter") | Some("cerebral cortex") => {
            let parcel: Vec<bool> = (0..LABEL_LUT_LEN as i32)
                .map(|l| is_cortical_parcel(l) && site_of(l).is_some())
                .collect();
            nearest_label(labels, idx, 40.0, |l| is(&parcel, l))
                .and_then(site_of)
                .or(site)
                .unwrap_or_default()
        }
        Some(other) => other.to_string(),
        None => "extra-axial".into(),
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
