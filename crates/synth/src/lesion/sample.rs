//! The per-class samplers: a random site, radius and geometry for each lesion class, redrawn
//! until several lesions of a subject lie apart.

use super::class::{LesionClass, SdhStage};
use super::paint::paints_on;
use super::shape::{
    centred_ellipsoid, fill_sphere, frame_along, random_axes, random_waves, unit, Ellipsoid,
    LesionShape,
};
use super::site::{
    convexity_voxel, hemisphere_of, inward_normal, midline_of, near, random_voxel,
    random_voxel_where, random_white_matter, touches, world,
};
use crate::config::{ArachnoidCystPrior, LesionsConfig, MeningiomaPrior, SubduralPrior, WmhPrior};
use crate::error::Result;
use crate::labels::{
    is_cavity_wall, is_cerebellar_cortex, is_cerebral_cortex, is_cerebral_white_matter,
    is_cortical_parcel, is_lateral_ventricle, BRAINSTEM, EXTRACEREBRAL_CSF, FALX, LEFT_PUTAMEN,
    LEFT_THALAMUS, RIGHT_PUTAMEN, RIGHT_THALAMUS,
};
use crate::rng::{normal, uniform};
use crate::vocabulary::{Hemisphere, Territory, Vocabulary};
use rand::Rng;
use voxel::LabelMap;

/// Draws a lesion of `class` with the priors of `priors` in the subject whose session-0 labels
/// are `labels` (subject world = that grid's world).
pub fn sample_lesion(
    class: LesionClass,
    labels: &LabelMap,
    vocab: &Vocabulary,
    priors: &LesionsConfig,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let at = |i: usize| world(g, i);
    let s = match class {
        LesionClass::Glioma => {
            let p = &priors.glioma;
            let i = random_white_matter(labels, rng)?;
            let r = uniform(rng, p.radius_mm[0], p.radius_mm[1]);
            let n = rng.random_range(p.ellipsoids[0]..=p.ellipsoids[1]);
            let enh = rng.random::<f64>() < p.enhancing_probability;
            let mut s = LesionShape::empty(class, at(i), r);
            s.core_level = if enh {
                uniform(rng, p.necrosis_level[0], p.necrosis_level[1])
            } else {
                0.0
            };
            s.ellipsoids = fill_sphere(rng, r, n);
            s.second = fill_sphere(rng, r * 0.6, 2);
            s.edema_level = uniform(rng, p.edema_level[0], p.edema_level[1]);
            s.enhancing = enh;
            s.deformation = random_waves(
                rng,
                radii(p.deformation.wavelength_radii, r),
                p.deformation.amplitude,
            );
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Metastasis => {
            let p = &priors.metastasis;
            let i = random_voxel(labels, rng, "cortex", is_cerebral_cortex)?;
            let r = uniform(rng, p.radius_mm[0], p.radius_mm[1]);
            let mut s = LesionShape::empty(class, at(i), r);
            s.core_level = if r > p.necrosis_above_radius_mm {
                uniform(rng, p.necrosis_level[0], p.necrosis_level[1])
            } else {
                0.0
            };
            s.ellipsoids = fill_sphere(rng, r, 1);
            s.second = fill_sphere(rng, r * 0.5, 1);
            s.edema_level = uniform(rng, p.edema_level[0], p.edema_level[1]);
            s.enhancing = true;
            s.deformation = random_waves(
                rng,
                radii(p.deformation.wavelength_radii, r),
                p.deformation.amplitude,
            );
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::AcuteInfarct | LesionClass::ChronicInfarct => {
            let p = &priors.infarct;
            let w = &p.territory_weights;
            let t = match rng.random_range(0..w.aca + w.pca + w.mca) {
                d if d < w.aca => Territory::ACA,
                d if d < w.aca + w.pca => Territory::PCA,
                _ => Territory::MCA,
            };
            let i = random_voxel(labels, rng, "territory cortex", |l| {
                is_cortical_parcel(l)
                    && vocab.structure_of_label(l).and_then(|s| s.territory) == Some(t)
            })?;
            let r = uniform(rng, p.radius_mm[0], p.radius_mm[1]);
            let mut s = LesionShape::empty(class, at(i), r);
            s.core_level = if class == LesionClass::ChronicInfarct {
                uniform(
                    rng,
                    p.encephalomalacia_level[0],
                    p.encephalomalacia_level[1],
                )
            } else {
                0.0
            };
            let count = rng.random_range(p.ellipsoids[0]..=p.ellipsoids[1]);
            s.ellipsoids = fill_sphere(rng, r, count);
            s.second = fill_sphere(rng, r * 0.8, 2);
            s.territory = Some(t);
            s.deformation = random_waves(
                rng,
                radii(p.deformation.wavelength_radii, r),
                p.deformation.amplitude,
            );
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Wmh => sample_wmh(labels, &priors.wmh, rng)?,
        LesionClass::Meningioma => sample_meningioma(labels, vocab, &priors.meningioma, rng)?,
        LesionClass::ArachnoidCyst => {
            sample_arachnoid_cyst(labels, vocab, &priors.arachnoid_cyst, rng)?
        }
        LesionClass::SubduralHaematoma => {
            sample_subdural(labels, vocab, &priors.subdural_haematoma, rng)?
        }
        LesionClass::Haemorrhage => {
            let p = &priors.haemorrhage;
            let deep = rng.random::<f64>() < p.deep_probability;
            let (i, r) = if deep {
                let i = random_voxel(labels, rng, "putamen or thalamus", |l| {
                    matches!(
                        l,
                        LEFT_THALAMUS | LEFT_PUTAMEN | RIGHT_THALAMUS | RIGHT_PUTAMEN
                    )
                })?;
                (i, uniform(rng, p.deep_radius_mm[0], p.deep_radius_mm[1]))
            } else {
                let i = random_white_matter(labels, rng)?;
                (i, uniform(rng, p.lobar_radius_mm[0], p.lobar_radius_mm[1]))
            };
            let mut s = LesionShape::empty(class, at(i), r);
            let n = rng.random_range(p.ellipsoids[0]..=p.ellipsoids[1]);
            s.ellipsoids = fill_sphere(rng, r, n);
            // A thin rim: a few millimetres whatever the size.
            s.edema_level = 1.0 + uniform(rng, p.edema_rim_mm[0], p.edema_rim_mm[1]) / (0.6 * r);
            s.deformation = random_waves(
                rng,
                radii(p.deformation.wavelength_radii, r),
                p.deformation.amplitude,
            );
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
        LesionClass::Abscess => {
            let p = &priors.abscess;
            // At the grey-white junction, where haematogenous abscesses seed.
            let i = random_voxel_where(
                labels,
                rng,
                "juxtacortical white matter",
                is_cerebral_white_matter,
                |i| near(labels, i, 12.0, is_cerebral_cortex),
            )?;
            let r = uniform(rng, p.radius_mm[0], p.radius_mm[1]);
            let mut s = LesionShape::empty(class, at(i), r);
            let main = Ellipsoid {
                offset_mm: [0.0; 3],
                radii_mm: std::array::from_fn(|_| uniform(rng, 0.85, 1.0) * r),
                axes: random_axes(rng),
            };
            s.ellipsoids = vec![main];
            if rng.random::<f64>() < p.daughter_probability {
                // A daughter loculus.
                let dir = unit(std::array::from_fn(|_| normal(rng)));
                let rd = uniform(rng, 0.4, 0.6) * r;
                s.ellipsoids.push(Ellipsoid {
                    offset_mm: dir.map(|d| d * 0.8 * r),
                    radii_mm: [rd; 3],
                    axes: random_axes(rng),
                });
            }
            // Capsule `capsule_mm` thick: the cavity is the inner level set of the same geometry.
            s.core_level = 1.0 - uniform(rng, p.capsule_mm[0], p.capsule_mm[1]) / (0.9 * r);
            s.edema_level = uniform(rng, p.edema_level[0], p.edema_level[1]);
            s.enhancing = true;
            s.deformation = random_waves(
                rng,
                radii(p.deformation.wavelength_radii, r),
                p.deformation.amplitude,
            );
            s.side = hemisphere_of(vocab, labels.data()[i]);
            s
        }
    };
    Ok(s)
}

fn sample_meningioma(
    labels: &LabelMap,
    vocab: &Vocabulary,
    p: &MeningiomaPrior,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let midline = midline_of(labels, vocab)?;
    let sp = g.spacing_mm().iter().copied().fold(0.0, f64::max);
    let falx = if rng.random::<f64>() < p.falx_probability {
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
    let r = uniform(rng, p.radius_mm[0], p.radius_mm[1]);
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
    s.edema_level = if rng.random::<f64>() < p.edema_probability {
        uniform(rng, p.edema_level[0], p.edema_level[1])
    } else {
        0.0
    };
    s.enhancing = true;
    s.deformation = random_waves(
        rng,
        radii(p.deformation.wavelength_radii, r),
        p.deformation.amplitude,
    );
    s.side = side;
    s.midline = Some(midline);
    Ok(s)
}

fn sample_arachnoid_cyst(
    labels: &LabelMap,
    vocab: &Vocabulary,
    p: &ArachnoidCystPrior,
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
    let middle_fossa = rng.random::<f64>() < p.middle_fossa_probability;
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
    if pick.is_none() && rng.random::<f64>() < p.cerebellopontine_angle_probability {
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
        let [lo, hi] = p.cerebellopontine_angle_radius_mm;
        uniform(rng, lo, hi)
    } else {
        uniform(rng, p.radius_mm[0], p.radius_mm[1])
    };
    let mut s = LesionShape::empty(LesionClass::ArachnoidCyst, world(g, i), r);
    s.ellipsoids = vec![centred_ellipsoid(rng, r)];
    s.deformation = random_waves(
        rng,
        radii(p.deformation.wavelength_radii, r),
        p.deformation.amplitude,
    );
    s.side = side;
    s.midline = Some(midline);
    Ok(s)
}

fn sample_subdural(
    labels: &LabelMap,
    vocab: &Vocabulary,
    p: &SubduralPrior,
    rng: &mut impl Rng,
) -> Result<LesionShape> {
    let g = labels.geometry();
    let midline = midline_of(labels, vocab)?;
    let i = convexity_voxel(labels, &midline, 25.0, rng)?;
    let c = world(g, i);
    let r = uniform(rng, p.radius_mm[0], p.radius_mm[1]);
    let mut s = LesionShape::empty(LesionClass::SubduralHaematoma, c, r);
    // Extent along the skull; the depth below the inner table is set by the thickness.
    s.ellipsoids = vec![centred_ellipsoid(rng, r)];
    s.deformation = random_waves(
        rng,
        radii(p.deformation.wavelength_radii, r),
        p.deformation.amplitude,
    );
    s.thickness_mm = uniform(rng, p.thickness_mm[0], p.thickness_mm[1]);
    let w = &p.stage_weights;
    let stage = match rng.random_range(0..w.acute + w.chronic + w.mixed) {
        d if d < w.acute => SdhStage::Acute,
        d if d < w.acute + w.chronic => SdhStage::Chronic,
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

/// White-matter hyperintensities of small vessel disease: a burden drawn per subject (0: a few
/// punctate foci, Fazekas 1; 1: a confluent periventricular halo reaching into the deep white
/// matter, Fazekas 3) sets how many foci there are and how large. Periventricular foci sit on
/// the white matter lining the lateral ventricles, a share of them on the caps at the frontal and
/// occipital horns, where the disease starts; deep foci anywhere in the cerebral white matter.
/// Both hemispheres (the disease is bilateral). A subject without lateral ventricles (the
/// phantom) gets deep foci only.
fn sample_wmh(labels: &LabelMap, p: &WmhPrior, rng: &mut impl Rng) -> Result<LesionShape> {
    let g = labels.geometry();
    let burden: f64 = rng.random();
    let at_burden = |r: [f64; 2]| r[0] + burden * (r[1] - r[0]);
    let foci = |r: [usize; 2], rng: &mut _| {
        let n = at_burden([r[0] as f64, r[1] as f64]) * uniform(rng, 0.75, 1.25);
        (n.round() as usize).max(1)
    };
    let lining: Vec<usize> = labels
        .data()
        .iter()
        .enumerate()
        .filter(|&(i, &l)| is_cerebral_white_matter(l) && touches(labels, i, is_lateral_ventricle))
        .map(|(i, _)| i)
        .collect();
    // Caps: the anterior and posterior quarter of the lining along the world y (anterior) axis.
    let ys: Vec<f64> = lining.iter().map(|&i| world(g, i)[1]).collect();
    let (y_lo, y_hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| {
            (lo.min(y), hi.max(y))
        });
    let quarter = 0.25 * (y_hi - y_lo);
    let caps: Vec<usize> = lining
        .iter()
        .zip(&ys)
        .filter(|&(_, &y)| y <= y_lo + quarter || y >= y_hi - quarter)
        .map(|(&i, _)| i)
        .collect();

    let mut centres: Vec<([f64; 3], f64, bool)> = Vec::new();
    if !lining.is_empty() {
        for _ in 0..foci(p.periventricular_foci, rng) {
            let pool = if !caps.is_empty() && rng.random::<f64>() < p.cap_fraction {
                &caps
            } else {
                &lining
            };
            let i = pool[rng.random_range(0..pool.len())];
            let r = at_burden(p.periventricular_radius_mm) * uniform(rng, 0.6, 1.0);
            centres.push((world(g, i), r, true));
        }
    }
    for _ in 0..foci(p.deep_foci, rng) {
        let i = random_white_matter(labels, rng)?;
        let r = at_burden(p.deep_radius_mm) * uniform(rng, 0.6, 1.0);
        centres.push((world(g, i), r, false));
    }
    let n = centres.len() as f64;
    let c: [f64; 3] =
        std::array::from_fn(|a| centres.iter().map(|(x, _, _)| x[a]).sum::<f64>() / n);
    let ellipsoids = centres
        .into_iter()
        .map(|(x, r, periventricular)| Ellipsoid {
            offset_mm: [0, 1, 2].map(|a| x[a] - c[a]),
            // A periventricular focus spreads along the wall: flat across it (the part inside
            // the ventricle is not white matter and is never painted).
            radii_mm: if periventricular {
                [r, uniform(rng, 0.7, 1.0) * r, uniform(rng, 0.5, 0.8) * r]
            } else {
                std::array::from_fn(|_| uniform(rng, 0.6, 1.0) * r)
            },
            axes: random_axes(rng),
        })
        .collect();
    let mut s = LesionShape::empty(LesionClass::Wmh, c, at_burden(p.periventricular_radius_mm));
    s.ellipsoids = ellipsoids;
    s.deformation = random_waves(rng, p.deformation.wavelength_mm, p.deformation.amplitude);
    s.side = Hemisphere::Both;
    Ok(s)
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
    priors: &LesionsConfig,
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
        let s = sample_lesion(class, labels, vocab, priors, rng)?;
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

/// A wavelength range given in radii, in mm for a lesion of radius `r`.
fn radii(wavelength_radii: [f64; 2], r: f64) -> [f64; 2] {
    [wavelength_radii[0] * r, wavelength_radii[1] * r]
}
