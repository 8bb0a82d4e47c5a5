//! Anatomical site queries: where in a subject's anatomy a voxel is (hemisphere, lobe,
//! arterial territory, cerebellopontine angle, depth below the skull), and random voxels of a
//! site for placing a lesion.
//!
//! Vascular territories: each cortical parcel and deep structure carries an ACA/MCA/PCA (or
//! vertebrobasilar) territory in `configs/synth/vocabulary.toml`, following standard territory
//! maps (ACA: medial frontal and parietal cortex; PCA: occipital lobe, inferomedial temporal
//! lobe, thalamus, hippocampus; MCA: the lateral convexity, insula and basal ganglia). A voxel
//! in cerebral white matter takes the territory of the nearest cortical parcel; a lesion's
//! territory and lobe are those at its centroid.

use super::shape::{unit, Midline};
use crate::anatomy::SKULL;
use crate::error::{Result, SynthError};
use crate::labels::{
    is_cavity_wall, is_cerebellar_cortex, is_cerebral_cortex, is_cerebral_white_matter,
    is_cortical_parcel, is_parenchyma_label, tissue_of_label, BRAINSTEM, EXTRACEREBRAL_CSF,
    LABEL_LUT_LEN,
};
use crate::vocabulary::{Hemisphere, Territory, Vocabulary};
use rand::Rng;
use voxel::neighbourhood::{ball_offsets, face_neighbours, offset_index};
use voxel::{Affine, Geometry, LabelMap};

/// World position of voxel `idx`.
pub(super) fn world(g: &Geometry, idx: usize) -> [f64; 3] {
    let c = g.coords(idx);
    g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])
}

pub(super) fn hemisphere_of(vocab: &Vocabulary, label: i32) -> Hemisphere {
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
pub(super) fn random_voxel(
    labels: &LabelMap,
    rng: &mut impl Rng,
    what: &str,
    ok: impl Fn(i32) -> bool,
) -> Result<usize> {
    random_voxel_where(labels, rng, what, ok, |_| true)
}

/// A random voxel of cerebral white matter.
pub(super) fn random_white_matter(labels: &LabelMap, rng: &mut impl Rng) -> Result<usize> {
    random_voxel(
        labels,
        rng,
        "cerebral white matter",
        is_cerebral_white_matter,
    )
}

/// A random voxel whose label satisfies the cheap test `ok` and whose index satisfies the
/// costlier test `fine` (tried on random candidates first, then on all of them).
pub(super) fn random_voxel_where(
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
pub(super) fn near(
    labels: &LabelMap,
    idx: usize,
    radius_mm: f64,
    ok: impl Fn(i32) -> bool,
) -> bool {
    let g = labels.geometry();
    let c = g.coords(idx);
    ball_offsets(g.spacing_mm(), radius_mm)
        .into_iter()
        .filter_map(|o| offset_index(g, c, o))
        .any(|q| ok(labels.data()[q]))
}

/// Whether one of the six face neighbours of voxel `idx` has a label satisfying `ok`.
pub(super) fn touches(labels: &LabelMap, idx: usize, ok: impl Fn(i32) -> bool) -> bool {
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
pub(super) fn inward_normal(labels: &LabelMap, idx: usize) -> [f64; 3] {
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

/// A point of extracerebral CSF touching the skull over the cerebral convexity (at least 15 mm
/// from the cerebellum), at least `min_from_midline_mm` from the midline.
pub(super) fn convexity_voxel(
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

pub(super) fn midline_of(labels: &LabelMap, vocab: &Vocabulary) -> Result<Midline> {
    midline_plane(labels, vocab).ok_or_else(|| {
        SynthError::Placement("no left and right hemisphere labels for the midline".into())
    })
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
pub(super) fn is_cerebellopontine_angle(
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

/// Distance below the inner surface of the skull in a box of a grid (Euclidean distance
/// transform of the skull voxels, less half a voxel).
pub(crate) struct SkullDepth {
    lo: [usize; 3],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    distance_mm: Option<Vec<f32>>,
}

impl SkullDepth {
    /// The depth map of the box `[lo, hi)` of `labels`, padded by `pad_mm` so skull just
    /// outside the box counts.
    pub(crate) fn new(
        labels: &LabelMap,
        lo: [usize; 3],
        hi: [usize; 3],
        pad_mm: f64,
    ) -> Result<SkullDepth> {
        let g = labels.geometry();
        let sp = g.spacing_mm();
        let n = g.shape();
        let plo: [usize; 3] =
            std::array::from_fn(|a| lo[a].saturating_sub((pad_mm / sp[a]).ceil() as usize));
        let phi: [usize; 3] =
            std::array::from_fn(|a| (hi[a] + (pad_mm / sp[a]).ceil() as usize).min(n[a]));
        let shape: [usize; 3] = std::array::from_fn(|a| phi[a].saturating_sub(plo[a]).max(1));
        let crop = voxel::crop::crop(labels, plo, shape)?;
        let skull = crop.map(|l| l == SKULL);
        let distance_mm = if skull.is_empty() {
            None
        } else {
            Some(voxel::distance::distance_to_mask_mm(&skull)?.into_data())
        };
        Ok(SkullDepth {
            lo: plo,
            shape,
            spacing_mm: sp,
            distance_mm,
        })
    }

    fn raw(&self, ijk: [i64; 3]) -> Option<f64> {
        let d = self.distance_mm.as_ref()?;
        let w: [i64; 3] = std::array::from_fn(|a| ijk[a] - self.lo[a] as i64);
        if (0..3).any(|a| w[a] < 0 || w[a] >= self.shape[a] as i64) {
            return None;
        }
        let [nx, ny, _] = self.shape;
        Some(d[w[0] as usize + nx * (w[1] as usize + ny * w[2] as usize)] as f64)
    }

    /// Depth of voxel `ijk` below the skull's inner surface (∞ without skull in the box).
    pub(crate) fn depth_mm(&self, ijk: [usize; 3]) -> f64 {
        let half = self.spacing_mm.iter().sum::<f64>() / 6.0;
        self.raw(ijk.map(|x| x as i64))
            .map_or(f64::INFINITY, |d| (d - half).max(0.0))
    }

    /// Gradient of the depth at voxel `ijk` along the voxel axes, per mm.
    pub(crate) fn gradient(&self, ijk: [usize; 3]) -> Option<[f64; 3]> {
        let c = ijk.map(|x| x as i64);
        let mut g = [0.0; 3];
        for a in 0..3 {
            let mut lo = c;
            let mut hi = c;
            lo[a] -= 1;
            hi[a] += 1;
            let (dl, dh, steps) = match (self.raw(lo), self.raw(hi)) {
                (Some(l), Some(h)) => (l, h, 2.0),
                (None, Some(h)) => (self.raw(c)?, h, 1.0),
                (Some(l), None) => (l, self.raw(c)?, 1.0),
                (None, None) => return None,
            };
            g[a] = (dh - dl) / (steps * self.spacing_mm[a]);
        }
        Some(g)
    }
}
