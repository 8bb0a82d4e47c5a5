//! Painting: which component a lesion puts at each voxel, and writing a lesion into a
//! session's lesion map.

use super::class::{LesionClass, SdhStage};
use super::ids;
use super::shape::{level, window, LesionShape};
use super::site::{in_cavity, SkullDepth};
use crate::error::{Result, SynthError};
use crate::labels::{is_cerebral_white_matter, tissue_of_label, Tissue};
use crate::vocabulary::Vocabulary;
use voxel::{Affine, Geometry, LabelMap};

/// What [`LesionShape::component_at`] knows about a voxel besides its position.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VoxelContext {
    /// Anatomy label.
    pub label: i32,
    /// Depth below the inner surface of the skull, mm (subdural haematoma only; else ∞).
    pub depth_mm: f64,
}

impl LesionShape {
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
}

/// Whether `shape` puts a voxel of lesion proper (not edema) on the grid of `labels` (subject
/// world). Extra-axial lesions always do: their mass effect makes room for them.
pub(super) fn paints_on(shape: &LesionShape, labels: &LabelMap, vocab: &Vocabulary) -> bool {
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
        Some(SkullDepth::new(
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
