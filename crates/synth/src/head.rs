//! The head model: everything a scan shows outside the brain, built once per anatomy around a
//! brain-only label map. Layers follow the distance from the skull cavity (dura, inner table,
//! diploë, outer table, temporalis, subcutaneous fat, skin) with a skull thickness that varies
//! smoothly over the head; the falx and tentorium are dural sheets on the Voronoi boundaries
//! between the hemispheres and between cerebrum and cerebellum; orbits, sinuses, nasal cavity,
//! masseters, neck, vertebrae and spinal cord are analytic shapes placed relative to landmarks
//! of the brain (frontal pole, orbital surface of the frontal lobes, lower end of the
//! brainstem). Per subject the head is deformed with the brain (it is part of the label map)
//! and, with some probability, replaced by SynthStrip-style random classes
//! ([`randomise_extracerebral`]).

use crate::config::{HeadConfig, HeadModel};
use crate::error::{Result, SynthError};
use crate::field::ControlGrid;
use crate::labels::*;
use crate::rng::{hash_normal, mix, stream, uniform};
use crate::spatial::BrainBox;
use rand::Rng;
use rayon::prelude::*;
use voxel::{Geometry, LabelMap};

/// A head model: the label map and where its brain lies.
#[derive(Clone, Debug)]
pub struct Head {
    /// Brain labels plus every head label; 0 is air.
    pub labels: LabelMap,
    /// The brain's bounding box and cerebellum range, template mm.
    pub brain_box: BrainBox,
}

/// Landmarks of a brain label map (world mm), from which the head's parts are placed.
#[derive(Clone, Copy, Debug)]
struct Landmarks {
    min: [f64; 3],
    max: [f64; 3],
    /// x of the midline (between the hemispheres' centroids).
    midline_x: f64,
    /// Lowest z of the frontal lobes over the orbits.
    orbit_roof_z: f64,
    /// Centre of the lower end of the brainstem.
    brainstem_end: [f64; 3],
    /// Mean y of the brainstem.
    brainstem_y: f64,
    cerebellum_z: [f64; 2],
}

fn world(g: &Geometry, idx: usize) -> [f64; 3] {
    let c = g.coords(idx);
    g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])
}

fn landmarks(brain: &LabelMap) -> Result<Landmarks> {
    let g = brain.geometry();
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    let (mut lx, mut ln, mut rx, mut rn) = (0.0, 0.0, 0.0, 0.0);
    let mut bs_min_z = f64::INFINITY;
    let mut bs_y = (0.0, 0.0);
    let mut cb = [f64::INFINITY, f64::NEG_INFINITY];
    for (idx, &l) in brain.data().iter().enumerate() {
        if l == 0 {
            continue;
        }
        let p = world(g, idx);
        for a in 0..3 {
            min[a] = min[a].min(p[a]);
            max[a] = max[a].max(p[a]);
        }
        match cerebral_side(l) {
            Some(true) => (lx, ln) = (lx + p[0], ln + 1.0),
            Some(false) => (rx, rn) = (rx + p[0], rn + 1.0),
            None => {}
        }
        if l == BRAINSTEM {
            bs_min_z = bs_min_z.min(p[2]);
            bs_y = (bs_y.0 + p[1], bs_y.1 + 1.0);
        }
        if is_cerebellum(l) {
            cb = [cb[0].min(p[2]), cb[1].max(p[2])];
        }
    }
    if !min[0].is_finite() {
        return Err(SynthError::InvalidArgument(
            "the label map has no brain labels".into(),
        ));
    }
    let midline_x = if ln > 0.0 && rn > 0.0 {
        (lx / ln + rx / rn) / 2.0
    } else {
        (min[0] + max[0]) / 2.0
    };
    let height = max[2] - min[2];
    // The orbital roofs: the lowest frontal voxels in front, beside the midline.
    let mut orbit_roof_z = f64::INFINITY;
    let mut bs_end = ([0.0; 3], 0.0);
    for (idx, &l) in brain.data().iter().enumerate() {
        if l == 0 {
            continue;
        }
        let p = world(g, idx);
        let dx = (p[0] - midline_x).abs();
        if cerebral_side(l).is_some() && p[1] > max[1] - 30.0 && (15.0..45.0).contains(&dx) {
            orbit_roof_z = orbit_roof_z.min(p[2]);
        }
        if l == BRAINSTEM && p[2] <= bs_min_z + 5.0 {
            for (s, v) in bs_end.0.iter_mut().zip(p) {
                *s += v;
            }
            bs_end.1 += 1.0;
        }
    }
    if !orbit_roof_z.is_finite() {
        orbit_roof_z = min[2] + 0.3 * height;
    }
    let brainstem_end = if bs_end.1 > 0.0 {
        bs_end.0.map(|v| v / bs_end.1)
    } else {
        [
            midline_x,
            (min[1] + max[1]) / 2.0 - 20.0,
            min[2] + 0.1 * height,
        ]
    };
    let brainstem_y = if bs_y.1 > 0.0 {
        bs_y.0 / bs_y.1
    } else {
        brainstem_end[1]
    };
    if !cb[0].is_finite() {
        cb = [min[2], max[2]];
    }
    Ok(Landmarks {
        min,
        max,
        midline_x,
        orbit_roof_z,
        brainstem_end,
        brainstem_y,
        cerebellum_z: cb,
    })
}

/// A smooth deterministic field in about [-1, 1] from a few plane waves (wavelengths 50–140 mm).
struct Waves(Vec<([f64; 3], f64, f64)>);

impl Waves {
    fn new(key: u64, n: usize, wavelength_mm: [f64; 2]) -> Waves {
        let mut rng = stream(key, 0);
        Waves(
            (0..n)
                .map(|_| {
                    let z = uniform(&mut rng, -1.0, 1.0);
                    let t = uniform(&mut rng, 0.0, std::f64::consts::TAU);
                    let r = (1.0 - z * z).sqrt();
                    let k = std::f64::consts::TAU
                        / uniform(&mut rng, wavelength_mm[0], wavelength_mm[1]);
                    (
                        [r * t.cos() * k, r * t.sin() * k, z * k],
                        uniform(&mut rng, 0.0, std::f64::consts::TAU),
                        rng.random::<f64>() + 0.5,
                    )
                })
                .collect(),
        )
    }

    fn at(&self, p: [f64; 3]) -> f64 {
        let norm: f64 = self.0.iter().map(|w| w.2).sum::<f64>().max(1e-9);
        let v: f64 = self
            .0
            .iter()
            .map(|(k, ph, a)| a * (k[0] * p[0] + k[1] * p[1] + k[2] * p[2] + ph).sin())
            .sum();
        (1.6 * v / norm).clamp(-1.0, 1.0)
    }
}

/// `((p - c) / r)²` summed over the axes: < 1 inside the ellipsoid.
fn ell(p: [f64; 3], c: [f64; 3], r: [f64; 3]) -> f64 {
    (0..3).map(|a| ((p[a] - c[a]) / r[a]).powi(2)).sum()
}

/// Distance from `p` to the segment `a`–`b`.
fn to_segment(p: [f64; 3], a: [f64; 3], b: [f64; 3]) -> f64 {
    let ab: [f64; 3] = std::array::from_fn(|i| b[i] - a[i]);
    let ap: [f64; 3] = std::array::from_fn(|i| p[i] - a[i]);
    let len2 = ab.iter().map(|x| x * x).sum::<f64>().max(1e-12);
    let t = (ap.iter().zip(&ab).map(|(x, y)| x * y).sum::<f64>() / len2).clamp(0.0, 1.0);
    (0..3)
        .map(|i| (ap[i] - t * ab[i]).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Builds the head around a brain-only label map (RAS grid, 0 = not brain): pads the grid for
/// the face and neck, adds [`EXTRACEREBRAL_CSF`] in the skull cavity (the brain closed by
/// `closing_radius_mm`, plus `csf_shell_mm`, holes filled), the falx and tentorium in it, and
/// every extracranial layer and structure of the module docs outside it.
pub fn build_head(brain: &LabelMap, head: &HeadConfig) -> Result<Head> {
    let lm = landmarks(brain)?;
    if head.model == HeadModel::Shells {
        return build_shells(brain, head, &lm);
    }
    let g0 = brain.geometry();
    let sp = g0.spacing_mm();
    let voxel_mm = sp.iter().copied().fold(0.0, f64::max);
    // Room for every layer around the brain, and for the face and neck.
    let skull_max = head.skull_mm * (1.0 + head.skull_thickness_variation);
    let layers = head.csf_shell_mm + head.dura_mm + skull_max + head.scalp_mm + 2.0 * voxel_mm;
    let side = layers + head.temporalis_mm;
    // Behind the head: room for the scanner's head support.
    let behind = layers + head.support_gap_mm + head.support_mm + voxel_mm;
    let lo_mm = [
        lm.min[0] - side,
        lm.min[1] - behind,
        lm.min[2].min(lm.brainstem_end[2]) - head.neck_length_mm,
    ];
    let hi_mm = [
        lm.max[0] + side,
        lm.max[1] + layers + head.face_depth_mm,
        lm.max[2] + layers,
    ];
    let v_lo = g0.world_to_voxel(lo_mm);
    let v_hi = g0.world_to_voxel(hi_mm);
    let start: [i64; 3] = std::array::from_fn(|a| v_lo[a].min(v_hi[a]).floor() as i64);
    let end: [i64; 3] = std::array::from_fn(|a| v_lo[a].max(v_hi[a]).ceil() as i64);
    let shape: [usize; 3] = std::array::from_fn(|a| (end[a] - start[a]).max(1) as usize + 1);
    let brain = voxel::crop::crop_or_pad(brain, start, shape, 0)?;
    let g = brain.geometry().clone();

    let (cavity, d_cavity) = skull_cavity(&brain, head, voxel_mm)?;

    let mut labels: Vec<i32> = brain
        .data()
        .iter()
        .zip(cavity.data())
        .map(|(&l, &c)| if l == 0 && c { EXTRACEREBRAL_CSF } else { l })
        .collect();
    dural_folds(&brain, &mut labels, head)?;

    // Extracranial layers by depth from the cavity, within the head envelope.
    let x0 = lm.midline_x;
    let globe_y = lm.max[1] - 10.0;
    let globe_z = lm.orbit_roof_z - 17.0;
    let bs = lm.brainstem_end;
    let thickness = Waves::new(0x5ca1, 5, [50.0, 140.0]);
    let dura = dura_of(head, voxel_mm);
    let skin = head.skin_mm.max(voxel_mm).min(head.scalp_mm);
    let scalp = head.scalp_mm.max(skin + voxel_mm);
    // Temporalis: over the temporal squama, thickest above the ear, only on the sides.
    let temporal_centre = [0.0, globe_y - 55.0, globe_z + 42.0];
    let temporalis = |p: [f64; 3]| -> f64 {
        let dx = (p[0] - x0).abs();
        if dx < 35.0 {
            return 0.0;
        }
        let e = ((p[1] - temporal_centre[1]) / 45.0).powi(2)
            + ((p[2] - temporal_centre[2]) / 42.0).powi(2);
        head.temporalis_mm * (1.0 - e).max(0.0).sqrt()
    };
    let skull_at = |p: [f64; 3]| -> f64 {
        (head.skull_mm * (1.0 + head.skull_thickness_variation * thickness.at(p))).max(voxel_mm)
    };
    // The frontal sinus sits in the frontal bone in front of the cavity, above the nasion: find
    // the cavity's front on the midline at its height.
    let fs_z = lm.orbit_roof_z + 10.0;
    let fs_y = {
        let v = g.world_to_voxel([x0, lm.max[1], fs_z]);
        let (i, k) = (v[0].round(), v[2].round());
        let n = g.shape();
        let mut front = lm.max[1];
        if i >= 0.0 && k >= 0.0 && (i as usize) < n[0] && (k as usize) < n[2] {
            if let Some(j) = (0..n[1])
                .rev()
                .find(|&j| cavity.at(i as usize, j, k as usize))
            {
                front = g.voxel_to_world([i, j as f64, k])[1];
            }
        }
        front + dura_of(head, voxel_mm) + 5.0
    };
    let fs_c = [x0, fs_y, fs_z];
    let fs_r = [16.0, 5.0, 11.0];
    // The face, nose and neck beyond the shell of layers over the cranium.
    let face_c = [x0, globe_y - 15.0, globe_z - 28.0];
    let face_r = [68.0, 48.0, 58.0];
    let nose_c = [x0, globe_y + 20.0, globe_z - 22.0];
    let nose_r = [13.0, 15.0, 22.0];
    let neck_c = [x0, lm.brainstem_y + 2.0];
    let neck_r = [52.0, 54.0];
    let neck_top = bs[2] + 15.0;
    let in_envelope = |p: [f64; 3], d_cav: f64| -> bool {
        d_cav <= dura + skull_at(p) + temporalis(p) + scalp
            || ell(p, face_c, face_r) < 1.0
            || ell(p, nose_c, nose_r) < 1.0
            || ell(p, fs_c, fs_r.map(|r| r + 2.5 + scalp)) < 1.0
            || (p[2] <= neck_top
                && ((p[0] - neck_c[0]) / neck_r[0]).powi(2)
                    + ((p[1] - neck_c[1]) / neck_r[1]).powi(2)
                    < 1.0)
    };
    let envelope: Vec<bool> = d_cavity
        .data()
        .par_iter()
        .enumerate()
        .map(|(idx, &d)| in_envelope(world(&g, idx), d as f64))
        .collect();
    let envelope = voxel::Mask::new(g.clone(), envelope)?;
    let outside = envelope.map(|e| !e);
    let d_out = if outside.is_empty() {
        // The grid is all head: measure from its border instead.
        voxel::Image::filled(g.clone(), f32::INFINITY)
    } else {
        voxel::distance::distance_to_mask_mm(&outside)?
    };
    let table = head.skull_table_fraction;
    labels.par_iter_mut().enumerate().for_each(|(idx, l)| {
        if *l != 0 || !envelope.data()[idx] {
            return;
        }
        let p = world(&g, idx);
        let d = d_cavity.data()[idx] as f64;
        let d_skin = d_out.data()[idx] as f64;
        let t = skull_at(p);
        *l = if d_skin <= skin {
            SCALP
        } else if d <= dura {
            DURA
        } else if d <= dura + t {
            // Each table is at least a voxel thick, so the marrow never touches the dura.
            let s = d - dura;
            let tab = (table * t).max(voxel_mm);
            if s > tab && s < t - tab {
                DIPLOE
            } else {
                SKULL
            }
        } else if d_skin <= scalp {
            SUBCUTANEOUS_FAT
        } else if d - dura - t <= temporalis(p) {
            TEMPORALIS
        } else {
            NECK_MUSCLE
        };
    });
    drop(envelope);

    // Structures carved into the layers, never into the cavity, the dura or the thin bone
    // against it, and always under the skin.
    let wall = dura + voxel_mm.max(1.5);
    let free = |idx: usize, l: i32| -> bool {
        l != 0
            && l != SCALP
            && d_cavity.data()[idx] as f64 > wall
            && d_out.data()[idx] as f64 > skin
    };
    let mastoid = Waves::new(0x3a57, 6, [5.0, 9.0]);
    let globe_r = 12.0;
    let bone = 2.5;
    let vert_c = [bs[0], bs[1] + 20.0];
    let airway_c = [x0, bs[1] + 38.0];
    let airway_top = globe_z - 28.0;
    labels.par_iter_mut().enumerate().for_each(|(idx, l)| {
        let p = world(&g, idx);
        let cord_axis = ((p[0] - bs[0]).powi(2) + (p[1] - bs[1]).powi(2)).sqrt();
        // The spinal canal continues the brainstem through the foramen magnum: it may cross the
        // dura and bone, never the cavity.
        if p[2] < bs[2] + 2.0 && *l != 0 && !cavity.data()[idx] && *l != SCALP {
            if cord_axis <= 5.0 {
                *l = SPINAL_CORD;
                return;
            }
            if cord_axis <= 8.0 {
                *l = SPINAL_CSF;
                return;
            }
            // The rim of the foramen magnum is cortical bone.
            if cord_axis <= 8.0 + 2.0 * voxel_mm && *l == DIPLOE {
                *l = SKULL;
                return;
            }
        }
        if !free(idx, *l) {
            return;
        }
        let mut out = *l;
        // Bone walls replace only the layers and the deep soft tissue, never a structure
        // painted before them.
        let filler = |o: i32| {
            matches!(
                o,
                NECK_MUSCLE | TEMPORALIS | SUBCUTANEOUS_FAT | DIPLOE | SKULL
            )
        };
        let dx = (p[0] - x0).abs();
        let side = if p[0] >= x0 { 1.0 } else { -1.0 };
        // Neck: vertebral arches around the canal, bodies in front, discs between them.
        if p[2] < bs[2] - 4.0 {
            let body = ((p[0] - vert_c[0]) / 11.0).powi(2) + ((p[1] - vert_c[1]) / 9.0).powi(2);
            if body < 1.0 {
                out = if (bs[2] - p[2]).rem_euclid(19.0) < 15.0 {
                    VERTEBRA
                } else {
                    NECK_MUSCLE
                };
            } else if cord_axis <= 14.0 && p[1] < bs[1] + 6.0 {
                out = VERTEBRA;
            }
        }
        if p[2] <= airway_top
            && ((p[0] - airway_c[0]) / 9.0).powi(2) + ((p[1] - airway_c[1]) / 6.0).powi(2) < 1.0
        {
            out = NASAL_CAVITY;
        }
        // The large vessels of the neck, vertical tubes below the skull base: the internal
        // carotid arteries beside the airway, the jugular veins lateral to them, the vertebral
        // arteries through the transverse foramina beside the vertebral bodies.
        if p[2] < bs[2] - 2.0 && filler(out) {
            let tube =
                |cx: f64, cy: f64, r: f64| (p[0] - cx).powi(2) + (p[1] - cy).powi(2) <= r * r;
            if tube(x0 + side * 22.0, bs[1] + 30.0, 3.5)
                || tube(x0 + side * 29.0, bs[1] + 25.0, 5.5)
                || tube(bs[0] + side * 16.0, bs[1] + 18.0, 2.5)
            {
                out = NECK_VESSELS;
            }
        }
        // Orbits: bony walls, fat, optic nerve, globe, lens.
        let orbit_c = [x0 + side * 30.0, globe_y - 10.0, globe_z];
        let globe_c = [x0 + side * 31.0, globe_y, globe_z];
        let orbit_r = [17.0, 24.0, 17.0];
        let e_orbit = ell(p, orbit_c, orbit_r);
        if e_orbit < 1.0 {
            out = ORBITAL_FAT;
        } else if ell(p, orbit_c, orbit_r.map(|r| r + bone)) < 1.0 && out != TEMPORALIS {
            out = if filler(out) { SKULL } else { out };
        }
        let apex = [x0 + side * 12.0, globe_y - 40.0, globe_z + 5.0];
        let back = [globe_c[0], globe_y - globe_r + 1.0, globe_z];
        if e_orbit < 1.3 && to_segment(p, back, apex) <= 2.3 {
            out = OPTIC_NERVE;
        }
        if ell(p, globe_c, [globe_r; 3]) < 1.0 {
            out = GLOBE;
        }
        if ell(p, [globe_c[0], globe_y + 8.5, globe_z], [4.5, 2.0, 4.5]) < 1.0 {
            out = LENS;
        }
        // Frontal sinus in the frontal bone above the nasion (it thickens the bone forwards).
        if ell(p, fs_c, fs_r) < 1.0 {
            out = FRONTAL_SINUS;
        } else if ell(p, fs_c, fs_r.map(|r| r + bone)) < 1.0 && filler(out) {
            out = SKULL;
        }
        // Nasal cavity with its septum, and the airway of the nose.
        let nc = [x0, globe_y - 12.0, globe_z - 24.0];
        let nr = [11.0, 30.0, 20.0];
        if ell(p, nc, nr) < 1.0
            || ell(p, [x0, globe_y + 16.0, globe_z - 30.0], [6.0, 10.0, 7.0]) < 1.0
        {
            out = if dx < 1.2 { SKULL } else { NASAL_CAVITY };
        } else if ell(p, nc, nr.map(|r| r + bone)) < 1.0 && filler(out) {
            out = SKULL;
        }
        // Maxillary sinuses below the orbits.
        let mc = [x0 + side * 25.0, globe_y - 6.0, globe_z - 28.0];
        if ell(p, mc, [11.0, 15.0, 14.0]) < 1.0 {
            out = MAXILLARY_SINUS;
        } else if ell(p, mc, [11.0 + bone, 15.0 + bone, 14.0 + bone]) < 1.0 && filler(out) {
            out = SKULL;
        }
        // Sphenoid sinus under the sella.
        let sc = [x0, globe_y - 42.0, globe_z + 6.0];
        if ell(p, sc, [12.0, 11.0, 10.0]) < 1.0 {
            out = SPHENOID_SINUS;
        } else if ell(p, sc, [14.5, 13.5, 12.5]) < 1.0 && filler(out) {
            out = SKULL;
        }
        // Mastoid air cells: a honeycomb of air in bone behind the ears.
        let mastoid_c = [x0 + side * 52.0, lm.brainstem_y - 10.0, bs[2] + 18.0];
        if ell(p, mastoid_c, [10.0, 13.0, 14.0]) < 1.0 && filler(out) {
            out = if mastoid.at(p) > 0.1 {
                MASTOID_AIR
            } else {
                SKULL
            };
        }
        // Masseters over the jaw.
        if ell(
            p,
            [x0 + side * 47.0, globe_y - 36.0, globe_z - 50.0],
            [9.0, 17.0, 24.0],
        ) < 1.0
        {
            out = MASSETER;
        }
        *l = out;
    });
    // The superior sagittal sinus: dura on the midline over the upper convexity.
    labels.par_iter_mut().enumerate().for_each(|(idx, l)| {
        if *l == DURA {
            let p = world(&g, idx);
            if (p[0] - x0).abs() <= 5.0
                && p[2] > lm.min[2] + 0.6 * (lm.max[2] - lm.min[2])
                && p[1] < lm.max[1] - 15.0
                && p[1] > lm.min[1] + 10.0
            {
                *l = VENOUS_SINUS;
            }
        }
    });
    head_support(&g, &mut labels, head, &lm)?;
    let labels = brain.with_data(labels)?;
    let brain_box = BrainBox {
        min_mm: lm.min,
        max_mm: lm.max,
        cerebellum_z_mm: lm.cerebellum_z,
    };
    Ok(Head { labels, brain_box })
}

/// The skull cavity of a brain label map (the brain closed by `closing_radius_mm`, plus
/// `csf_shell_mm`, holes filled) and the distance from it, mm.
fn skull_cavity(
    brain: &LabelMap,
    head: &HeadConfig,
    voxel_mm: f64,
) -> Result<(voxel::Mask, voxel::Image)> {
    let brain_mask = brain.map(|l| l != 0);
    let closed = voxel::morphology::close(&brain_mask, head.closing_radius_mm)?;
    let d_brain = voxel::distance::distance_to_mask_mm(&brain_mask)?;
    let shell = head.csf_shell_mm.max(voxel_mm);
    let cavity = closed.zip_map(&d_brain, |c, d| c || (d as f64) <= shell)?;
    drop(d_brain);
    // Unlabelled pockets enclosed by the cavity (wide fissures, the space between cerebrum and
    // cerebellum) are CSF, never skull.
    let cavity = voxel::morphology::fill_holes(&cavity)?;
    let d_cavity = voxel::distance::distance_to_mask_mm(&cavity)?;
    Ok((cavity, d_cavity))
}

/// The [`HeadModel::Shells`] head: the skull cavity as in [`build_head`] filled with
/// [`EXTRACEREBRAL_CSF`], then `skull_mm` of [`SKULL`] and `scalp_mm` of [`SCALP`] by distance
/// from it, air beyond; the grid is padded for the shells only (no face, no neck).
fn build_shells(brain: &LabelMap, head: &HeadConfig, lm: &Landmarks) -> Result<Head> {
    let voxel_mm = brain
        .geometry()
        .spacing_mm()
        .iter()
        .copied()
        .fold(0.0, f64::max);
    let skull = head.skull_mm.max(voxel_mm);
    let scalp = skull + head.scalp_mm.max(voxel_mm);
    let margin = head.csf_shell_mm.max(voxel_mm) + scalp + 2.0 * voxel_mm;
    let g0 = brain.geometry();
    let v_lo = g0.world_to_voxel(lm.min.map(|v| v - margin));
    let v_hi = g0.world_to_voxel(lm.max.map(|v| v + margin));
    let start: [i64; 3] = std::array::from_fn(|a| v_lo[a].min(v_hi[a]).floor() as i64);
    let end: [i64; 3] = std::array::from_fn(|a| v_lo[a].max(v_hi[a]).ceil() as i64);
    let shape: [usize; 3] = std::array::from_fn(|a| (end[a] - start[a]).max(1) as usize + 1);
    let brain = voxel::crop::crop_or_pad(brain, start, shape, 0)?;
    let (cavity, d_cavity) = skull_cavity(&brain, head, voxel_mm)?;
    let data: Vec<i32> = brain
        .data()
        .iter()
        .zip(cavity.data())
        .zip(d_cavity.data())
        .map(|((&l, &c), &d)| match (l, c) {
            (l, _) if l != 0 => l,
            (_, true) => EXTRACEREBRAL_CSF,
            _ if (d as f64) <= skull => SKULL,
            _ if (d as f64) <= scalp => SCALP,
            _ => 0,
        })
        .collect();
    Ok(Head {
        labels: brain.with_data(data)?,
        brain_box: BrainBox {
            min_mm: lm.min,
            max_mm: lm.max,
            cerebellum_z_mm: lm.cerebellum_z,
        },
    })
}

/// Paints [`HEAD_SUPPORT`] into the air behind the head: a plate curved around the long axis
/// of the head (a cylinder about the z line through the midline at the brain's mid y), from
/// `support_gap_mm` beyond the back of the head on the midline for `support_mm`, over the
/// posterior 120° of the cylinder and the grid's whole height, as a supine patient's head lies
/// in the headrest on the CT table.
fn head_support(g: &Geometry, labels: &mut [i32], head: &HeadConfig, lm: &Landmarks) -> Result<()> {
    if head.support_mm <= 0.0 {
        return Ok(());
    }
    let axis = [lm.midline_x, (lm.min[1] + lm.max[1]) / 2.0];
    // The back of the head on the midline: the lowest y of any head voxel near the midline.
    let back_y = labels
        .par_iter()
        .enumerate()
        .filter(|(_, &l)| l != 0)
        .filter_map(|(idx, _)| {
            let p = world(g, idx);
            ((p[0] - axis[0]).abs() <= 10.0).then_some(p[1])
        })
        .reduce(|| f64::INFINITY, f64::min);
    if !back_y.is_finite() {
        return Ok(());
    }
    let inner = axis[1] - back_y + head.support_gap_mm;
    let outer = inner + head.support_mm;
    let cos_limit = (60f64).to_radians().cos();
    // Where the head bulges past the cylinder (neck, wide occiput), the plate keeps half the
    // pad's gap from the skin: it never touches the head.
    let head_mask = voxel::Mask::new(g.clone(), labels.iter().map(|&l| l != 0).collect())?;
    let d_head = voxel::distance::distance_to_mask_mm(&head_mask)?;
    let clearance = (head.support_gap_mm / 2.0).max(1.5 * g.spacing_mm()[0]);
    labels.par_iter_mut().enumerate().for_each(|(idx, l)| {
        if *l != 0 || (d_head.data()[idx] as f64) < clearance {
            return;
        }
        let p = world(g, idx);
        let (dx, dy) = (p[0] - axis[0], p[1] - axis[1]);
        let r = (dx * dx + dy * dy).sqrt();
        if r >= inner && r <= outer && -dy >= r * cos_limit {
            *l = HEAD_SUPPORT;
        }
    });
    Ok(())
}

/// The dura's thickness on a grid of `voxel_mm` voxels: at least one voxel, so it is a layer.
fn dura_of(head: &HeadConfig, voxel_mm: f64) -> f64 {
    head.dura_mm.max(voxel_mm)
}

/// Paints the falx and the tentorium into the extracerebral CSF of `labels`: CSF voxels whose
/// distances to the two sides differ by at most the dura thickness, within
/// `dural_fold_reach_mm` of both (so only in the fissures). The falx keeps
/// `falx_clearance_mm` above the corpus callosum and ventricles; the tentorium leaves the
/// notch around the brainstem open.
fn dural_folds(brain: &LabelMap, labels: &mut [i32], head: &HeadConfig) -> Result<()> {
    let voxel_mm = brain
        .geometry()
        .spacing_mm()
        .iter()
        .copied()
        .fold(0.0, f64::max);
    let half = (head.dura_mm.max(voxel_mm) / 2.0) as f32 + 0.01;
    let reach = head.dural_fold_reach_mm as f32;
    let dist = |want: &(dyn Fn(i32) -> bool + Sync)| -> Result<Option<voxel::Image>> {
        let m = brain.map(want);
        Ok(if m.is_empty() {
            None
        } else {
            Some(voxel::distance::distance_to_mask_mm(&m)?)
        })
    };
    let left = dist(&|l| cerebral_side(l) == Some(true))?;
    let right = dist(&|l| cerebral_side(l) == Some(false))?;
    if let (Some(left), Some(right)) = (&left, &right) {
        let deep = dist(&|l| (251..=255).contains(&l) || is_lateral_ventricle(l) || l == 14)?;
        let clear = head.falx_clearance_mm as f32;
        for (idx, l) in labels.iter_mut().enumerate() {
            if *l != EXTRACEREBRAL_CSF {
                continue;
            }
            let (a, b) = (left.data()[idx], right.data()[idx]);
            let away = deep.as_ref().is_none_or(|d| d.data()[idx] >= clear);
            if (a - b).abs() <= half && a <= reach && b <= reach && away {
                *l = FALX;
            }
        }
    }
    let cerebrum = dist(&|l| cerebral_side(l).is_some())?;
    let cerebellum = dist(&is_cerebellum)?;
    if let (Some(cr), Some(cb)) = (&cerebrum, &cerebellum) {
        let stem = dist(&|l| l == BRAINSTEM)?;
        let notch = head.incisura_mm as f32;
        for (idx, l) in labels.iter_mut().enumerate() {
            if *l != EXTRACEREBRAL_CSF {
                continue;
            }
            let (a, b) = (cr.data()[idx], cb.data()[idx]);
            let open = stem.as_ref().is_none_or(|d| d.data()[idx] >= notch);
            if (a - b).abs() <= half && a <= reach && b <= reach && open {
                *l = TENTORIUM;
            }
        }
    }
    Ok(())
}

/// SynthStrip-style randomisation of one subject's warped label map: with probability
/// `random_fields_probability`, every voxel outside the skull cavity that is not air and does
/// not touch the cavity (the inner table stays, so extra-axial lesions still meet bone) takes
/// one of `random_fields_classes` random classes from a smooth random field, whose intensities
/// are drawn per subject. Returns whether it did.
pub fn randomise_extracerebral(labels: &mut LabelMap, head: &HeadConfig, key: u64) -> Result<bool> {
    let mut rng = stream(key, 0);
    // The shells ablation is the data engine before SynthStrip-style randomisation too.
    if head.model == HeadModel::Shells || rng.random::<f64>() >= head.random_fields_probability {
        return Ok(false);
    }
    let shape = labels.shape();
    let pts = head.random_fields_control_points;
    // Blobs a centimetre or more across: a class changes where the field crosses an integer,
    // and neighbouring control points differ by a few units.
    let classes = head.random_fields_classes as i32;
    let amp = uniform(&mut rng, 1.5, 4.0) as f32;
    let fkey = mix(key, 7);
    let grid = ControlGrid {
        points: [pts; 3],
        values: (0..pts * pts * pts)
            .map(|i| amp * hash_normal(fkey, i as u64))
            .collect(),
        channels: 1,
    };
    // Per voxel: 0 air (or unknown), 1 outside the cavity, 2 inside it; from a table per label.
    let kind_of: Vec<u8> = (0..LABEL_LUT_LEN as i32)
        .map(|l| match tissue_of_label(l) {
            _ if l == 0 => 0,
            Some(t) if t.is_outside_cavity() => 1,
            Some(_) => 2,
            None => 0,
        })
        .collect();
    let kind: Vec<u8> = labels
        .data()
        .par_iter()
        .map(|&l| {
            usize::try_from(l)
                .ok()
                .and_then(|i| kind_of.get(i))
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let [nx, ny, nz] = shape;
    let plane = nx * ny;
    let mut out = labels.data().to_vec();
    out.par_chunks_mut(plane.max(1))
        .enumerate()
        .for_each(|(z, slab)| {
            let mut line = vec![0f32; nx];
            let mut column = Vec::new();
            for y in 0..ny {
                let row = z * plane + y * nx;
                if !kind[row..row + nx].contains(&1) {
                    continue;
                }
                grid.sample_line(shape, y, z, &mut line, &mut column);
                for x in 0..nx {
                    let idx = row + x;
                    if kind[idx] != 1 {
                        continue;
                    }
                    // The layer touching the cavity keeps its label.
                    let touches_cavity = (x > 0 && kind[idx - 1] == 2)
                        || (x + 1 < nx && kind[idx + 1] == 2)
                        || (y > 0 && kind[idx - nx] == 2)
                        || (y + 1 < ny && kind[idx + nx] == 2)
                        || (z > 0 && kind[idx - plane] == 2)
                        || (z + 1 < nz && kind[idx + plane] == 2);
                    if !touches_cavity {
                        let c = (line[x].floor() as i32).rem_euclid(classes);
                        slab[y * nx + x] = RANDOM_HEAD_BASE + c;
                    }
                }
            }
        });
    *labels = labels.with_data(out)?;
    Ok(true)
}

/// Per-subject variation of the head's layers by relabelling (cheap: one pass, no geometry):
/// with `no_diploe_probability` the diploë becomes cortical bone (a thin or sclerotic skull),
/// with `thin_fat_probability` the subcutaneous fat becomes skin (a lean scalp), and the head
/// support stays in the image with `support_probability` (else it becomes air).
pub fn vary_layers(labels: &mut LabelMap, head: &HeadConfig, key: u64) -> Result<()> {
    let mut rng = stream(key, 0);
    let no_diploe = rng.random::<f64>() < head.no_diploe_probability;
    let thin_fat = rng.random::<f64>() < head.thin_fat_probability;
    let no_support = rng.random::<f64>() >= head.support_probability;
    if !no_diploe && !thin_fat && !no_support {
        return Ok(());
    }
    let data: Vec<i32> = labels
        .data()
        .par_iter()
        .map(|&l| match l {
            DIPLOE if no_diploe => SKULL,
            SUBCUTANEOUS_FAT if thin_fat => SCALP,
            HEAD_SUPPORT if no_support => 0,
            l => l,
        })
        .collect();
    *labels = labels.with_data(data)?;
    Ok(())
}
