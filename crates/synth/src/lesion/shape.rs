//! Lesion geometry: the ellipsoids a lesion is the union of, the plane waves that deform its
//! level field, the midline plane extra-axial lesions keep to, and the level, extent and reach
//! of a [`LesionShape`] at a given scale.

use super::class::{LesionClass, SdhStage};
use crate::rng::{normal, uniform};
use crate::vocabulary::{Hemisphere, Territory};
use rand::Rng;
use serde::{Deserialize, Serialize};
use voxel::Geometry;

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

pub(super) fn level(ells: &[Ellipsoid], c: [f64; 3], scale: f64, p: [f64; 3]) -> f64 {
    level_rel(ells, [0, 1, 2].map(|a| (p[a] - c[a]) / scale))
}

pub(super) fn unit(v: [f64; 3]) -> [f64; 3] {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.map(|x| x / n)
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(super) fn random_axes(rng: &mut impl Rng) -> [[f64; 3]; 3] {
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
pub(super) fn fill_sphere(rng: &mut impl Rng, radius_mm: f64, count: usize) -> Vec<Ellipsoid> {
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
pub(super) fn random_waves(
    rng: &mut impl Rng,
    wavelength_mm: [f64; 2],
    amplitude: f64,
) -> Vec<Wave> {
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

/// A frame whose first axis is `n` and the other two random in the plane across it.
pub(super) fn frame_along(rng: &mut impl Rng, n: [f64; 3]) -> [[f64; 3]; 3] {
    let r = random_axes(rng);
    orthonormal([n, r[0], r[1]])
}

impl LesionShape {
    /// A shape of `class` at `centre_mm` with no geometry yet.
    pub(super) fn empty(class: LesionClass, centre_mm: [f64; 3], radius_mm: f64) -> LesionShape {
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

/// One randomly oriented ellipsoid at the centre with semi-axes of 0.7–1 × `r`.
pub(super) fn centred_ellipsoid(rng: &mut impl Rng, r: f64) -> Ellipsoid {
    Ellipsoid {
        offset_mm: [0.0; 3],
        radii_mm: std::array::from_fn(|_| uniform(rng, 0.7, 1.0) * r),
        axes: random_axes(rng),
    }
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
