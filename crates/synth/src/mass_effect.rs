//! Mass effect of extra-axial lesions: before a meningioma, arachnoid cyst or subdural
//! haematoma is painted, the anatomy under it is pushed away, so the lesion occupies the space
//! between skull and brain and the brain beside it is compressed (sulci effaced), never
//! overwritten. The skull, scalp and the far side of the midline do not move.
//!
//! - Star-shaped lesions (meningioma, cyst) inflate radially about their dural centre: with a
//!   level field `ℓ` proportional to the distance along each ray, the tissue at level `ℓ > 1`
//!   comes from level `(ℓ³ − 1)^⅓` of the same ray (volume-preserving per solid angle), blended
//!   back to no displacement by level [`INFLATION_LEVEL`].
//! - A subdural haematoma of local thickness `τ` pushes the brain inward along the skull's
//!   normal: depth `d ∈ [τ, τ + D]` below the inner table takes the tissue from depth
//!   `(d − τ)(τ + D)/D`, with `D` = [`COMPRESSION_MM`].

use crate::anatomy::EXTRACEREBRAL_CSF;
use crate::error::{Result, SynthError};
use crate::lesion::class::LesionClass;
use crate::lesion::shape::{window, LesionShape};
use crate::lesion::site::{in_cavity, SkullDepth};
use voxel::{Affine, Geometry, LabelMap};

/// Level of a star-shaped lesion's field beyond which the brain is not displaced.
pub const INFLATION_LEVEL: f64 = 3.0;
/// Depth below a subdural haematoma over which the brain is compressed.
pub const COMPRESSION_MM: f64 = 25.0;

/// `labels` with the mass effect of `shape` applied (a copy for classes without one);
/// `to_subject` maps the session's world to subject world.
pub fn displace(shape: &LesionShape, labels: &LabelMap, to_subject: &Affine) -> Result<LabelMap> {
    match shape.class {
        LesionClass::Meningioma | LesionClass::ArachnoidCyst => inflate(shape, labels, to_subject),
        LesionClass::SubduralHaematoma => compress(shape, labels, to_subject),
        _ => Ok(labels.clone()),
    }
}

fn smoothstep(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The label a displaced voxel takes from `src` (on grid `g`) at the rounded voxel position
/// `v`: that label when it lies in the skull cavity, else extracerebral CSF (the outside of the
/// grid counting as air), so a displaced voxel never turns into skull.
fn pulled_label(src: &[i32], g: &Geometry, v: [f64; 3]) -> i32 {
    let n = g.shape();
    let from = if (0..3).all(|a| v[a] >= 0.0 && (v[a] as usize) < n[a]) {
        src[g.index(v[0] as usize, v[1] as usize, v[2] as usize)]
    } else {
        0
    };
    if in_cavity(from) {
        from
    } else {
        EXTRACEREBRAL_CSF
    }
}

fn inflate(shape: &LesionShape, labels: &LabelMap, to_subject: &Affine) -> Result<LabelMap> {
    let g = labels.geometry();
    let from_subject = to_subject
        .inverse()
        .ok_or_else(|| SynthError::InvalidArgument("session transform is singular".into()))?;
    let c = shape.centre_mm;
    let centre = g.world_to_voxel(from_subject.apply(c));
    let (lo, hi) = window(g, centre, shape.extent_mm(INFLATION_LEVEL));
    let src = labels.data();
    let mut out = src.to_vec();
    for k in lo[2]..hi[2] {
        for j in lo[1]..hi[1] {
            for i in lo[0]..hi[0] {
                let idx = g.index(i, j, k);
                if !in_cavity(src[idx]) {
                    continue;
                }
                let p = to_subject.apply(g.voxel_to_world([i as f64, j as f64, k as f64]));
                if !shape.on_side(p) {
                    continue;
                }
                let l = shape.level_within(p, INFLATION_LEVEL);
                if l >= INFLATION_LEVEL {
                    continue;
                }
                if l <= 1.0 {
                    out[idx] = EXTRACEREBRAL_CSF;
                    continue;
                }
                let sigma = (l * l * l - 1.0).cbrt();
                let t = smoothstep((l - 2.0) / (INFLATION_LEVEL - 2.0));
                let f = (sigma + (l - sigma) * t) / l;
                let q = [0, 1, 2].map(|a| c[a] + (p[a] - c[a]) * f);
                let v = g.world_to_voxel(from_subject.apply(q)).map(|x| x.round());
                out[idx] = pulled_label(src, g, v);
            }
        }
    }
    Ok(labels.with_data(out)?)
}

fn compress(shape: &LesionShape, labels: &LabelMap, to_subject: &Affine) -> Result<LabelMap> {
    let g = labels.geometry();
    let from_subject = to_subject
        .inverse()
        .ok_or_else(|| SynthError::InvalidArgument("session transform is singular".into()))?;
    let centre = g.world_to_voxel(from_subject.apply(shape.centre_mm));
    let (lo, hi) = window(g, centre, shape.extent_mm(1.0));
    let thickest = shape.thickness_mm * shape.scale;
    let depth = SkullDepth::new(labels, lo, hi, thickest + COMPRESSION_MM + 5.0)?;
    let sp = g.spacing_mm();
    let src = labels.data();
    let mut out = src.to_vec();
    for k in lo[2]..hi[2] {
        for j in lo[1]..hi[1] {
            for i in lo[0]..hi[0] {
                let idx = g.index(i, j, k);
                if !in_cavity(src[idx]) {
                    continue;
                }
                let d = depth.depth_mm([i, j, k]);
                if d >= thickest + COMPRESSION_MM {
                    continue;
                }
                let p = to_subject.apply(g.voxel_to_world([i as f64, j as f64, k as f64]));
                if !shape.on_side(p) {
                    continue;
                }
                let tau = shape.sdh_thickness_at(p);
                if tau <= 0.0 || d >= tau + COMPRESSION_MM {
                    continue;
                }
                if d < tau {
                    out[idx] = EXTRACEREBRAL_CSF;
                    continue;
                }
                // Move outward (towards the skull, down the depth gradient) to the source depth.
                let Some(grad) = depth.gradient([i, j, k]) else {
                    continue;
                };
                let norm = grad.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm < 0.5 {
                    continue;
                }
                let shift = tau * (tau + COMPRESSION_MM - d) / COMPRESSION_MM;
                let v = [0, 1, 2]
                    .map(|a| ([i, j, k][a] as f64 - grad[a] / norm * shift / sp[a]).round());
                out[idx] = pulled_label(src, g, v);
            }
        }
    }
    Ok(labels.with_data(out)?)
}
