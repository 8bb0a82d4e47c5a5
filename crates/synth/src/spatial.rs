//! Random spatial variation: the output grid (voxel size, random field of view), a random
//! affine (rotation, scale, shear, shift), a smooth nonlinear deformation from a coarse grid of
//! random displacements, and a left-right flip with label swap, all composed into one mapping
//! from output voxels to template voxels so a label map is resampled once.

use crate::config::SpatialConfig;
use crate::error::{Result, SynthError};
use crate::field::ControlGrid;
use crate::rng::{normal, uniform};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use voxel::crop::LabelSwap;
use voxel::{Affine, Geometry, LabelMap};

/// A sampled spatial transform from subject (output) world mm to template world mm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpatialTransform {
    /// Subject world → template world, before the deformation.
    pub affine: [[f64; 4]; 4],
    /// Mirror the subject across its grid's mid-sagittal plane (labels swap sides).
    pub flip: bool,
    /// Control points per axis of the deformation (over the output grid).
    pub deformation_points: usize,
    /// Displacements (mm, template world axes), 3 per control point, x fastest.
    pub deformation_mm: Vec<f32>,
    /// Sd the displacements were drawn with.
    pub deformation_sd_mm: f64,
}

fn rotation(rx: f64, ry: f64, rz: f64) -> [[f64; 3]; 3] {
    let (sx, cx) = rx.sin_cos();
    let (sy, cy) = ry.sin_cos();
    let (sz, cz) = rz.sin_cos();
    let x = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
    let y = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
    let z = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
    matmul(&matmul(&z, &y), &x)
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut c = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

/// A rigid transform about `centre_mm` with rotations up to `max_deg` and shifts up to
/// `max_mm` per axis (used for the residual misalignment between sessions).
pub fn random_rigid(rng: &mut impl Rng, centre_mm: [f64; 3], max_deg: f64, max_mm: f64) -> Affine {
    let r = max_deg.to_radians();
    let rot = rotation(
        uniform(rng, -r, r),
        uniform(rng, -r, r),
        uniform(rng, -r, r),
    );
    let t: [f64; 3] = std::array::from_fn(|_| uniform(rng, -max_mm, max_mm));
    about(rot, centre_mm, t)
}

/// `p ↦ L (p - c) + c + t`.
fn about(linear: [[f64; 3]; 3], c: [f64; 3], t: [f64; 3]) -> Affine {
    let mut tr = [0.0; 3];
    for i in 0..3 {
        tr[i] = c[i] + t[i] - (0..3).map(|k| linear[i][k] * c[k]).sum::<f64>();
    }
    Affine::from_linear_translation(linear, tr)
}

impl SpatialTransform {
    /// The identity (no deformation, no flip).
    pub fn identity() -> SpatialTransform {
        SpatialTransform {
            affine: Affine::IDENTITY.0,
            flip: false,
            deformation_points: 2,
            deformation_mm: vec![0.0; 24],
            deformation_sd_mm: 0.0,
        }
    }

    /// Draws a transform; rotations and scaling act about `centre_mm` (the template's head
    /// centre), so the head stays in the field of view.
    pub fn sample(
        config: &SpatialConfig,
        centre_mm: [f64; 3],
        rng: &mut impl Rng,
    ) -> SpatialTransform {
        let r = config.rotation_deg.to_radians();
        let rot = rotation(
            uniform(rng, -r, r),
            uniform(rng, -r, r),
            uniform(rng, -r, r),
        );
        let mut shear_scale = [[0.0; 3]; 3];
        for (i, row) in shear_scale.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if i == j {
                    uniform(rng, 1.0 - config.scale, 1.0 + config.scale)
                } else {
                    uniform(rng, -config.shear, config.shear)
                };
            }
        }
        let t: [f64; 3] =
            std::array::from_fn(|_| uniform(rng, -config.translation_mm, config.translation_mm));
        let affine = about(matmul(&rot, &shear_scale), centre_mm, t);
        let m = config.deformation_control_points;
        let sd = uniform(rng, 0.0, config.deformation_max_sd_mm);
        let deformation_mm = (0..3 * m * m * m)
            .map(|_| (sd * normal(rng)) as f32)
            .collect();
        SpatialTransform {
            affine: affine.0,
            flip: rng.random::<f64>() < config.flip_probability,
            deformation_points: m,
            deformation_mm,
            deformation_sd_mm: sd,
        }
    }
}

/// A random output grid: RAS-aligned voxels of `spacing_mm`, a random fraction of `fov_mm` per
/// axis (a random field of view), centred near `centre_mm`.
pub fn sample_grid(
    config: &SpatialConfig,
    spacing_mm: [f64; 3],
    centre_mm: [f64; 3],
    rng: &mut impl Rng,
) -> Result<Geometry> {
    if spacing_mm.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
        return Err(SynthError::InvalidArgument(format!(
            "spacing {spacing_mm:?} mm must be positive"
        )));
    }
    let mut shape = [0usize; 3];
    let mut origin = [0.0; 3];
    for a in 0..3 {
        let frac = uniform(rng, config.fov_min_fraction, 1.0);
        let fov = config.fov_mm[a] * frac;
        shape[a] = (fov / spacing_mm[a]).round().max(1.0) as usize;
        // A cropped field of view is shifted so that it cuts one side more than the other.
        let shift = (config.fov_mm[a] - fov) / 2.0 * uniform(rng, -1.0, 1.0);
        origin[a] = centre_mm[a] + shift - (shape[a] as f64 - 1.0) * spacing_mm[a] / 2.0;
    }
    Ok(Geometry::from_spacing(shape, spacing_mm, origin)?)
}

/// How the field of view frames the head, as scans are acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FovMode {
    /// The head, from above the vertex to the skull base ([`sample_grid`] around the brain).
    Head,
    /// Head and neck: the grid reaches further down, below the skull base.
    HeadAndNeck,
    /// The lower edge cuts through the cerebellum.
    CutCerebellum,
    /// The upper edge cuts through the top of the brain.
    CutVertex,
}

/// Where the brain lies in the template (world mm), for framing fields of view.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrainBox {
    /// Lowest corner of the brain labels' bounding box.
    pub min_mm: [f64; 3],
    /// Highest corner.
    pub max_mm: [f64; 3],
    /// Lowest and highest z of the cerebellum (the brain's z range when it has none).
    pub cerebellum_z_mm: [f64; 2],
}

impl BrainBox {
    /// The centre of the bounding box.
    pub fn centre_mm(&self) -> [f64; 3] {
        std::array::from_fn(|a| (self.min_mm[a] + self.max_mm[a]) / 2.0)
    }
}

/// A random output grid framed as a scan would be: a field-of-view mode drawn with
/// `fov_mode_weights`, then [`sample_grid`] around the brain, with the z range moved (and for
/// head and neck, lengthened) so that the mode's edge falls where it should. The brain box is
/// in template mm; the random affine moves it by at most a few mm at the edges that matter.
/// `rng` draws what [`sample_grid`] draws, `fov_rng` the mode and its edges (so a head-mode
/// grid is the one [`sample_grid`] alone would give).
pub fn sample_head_grid(
    config: &SpatialConfig,
    spacing_mm: [f64; 3],
    brain: &BrainBox,
    rng: &mut impl Rng,
    fov_rng: &mut impl Rng,
) -> Result<(Geometry, FovMode)> {
    let total: f64 = config.fov_mode_weights.values().sum();
    let mut u = fov_rng.random::<f64>() * total;
    let mut mode = FovMode::Head;
    for (&m, &w) in &config.fov_mode_weights {
        if u < w {
            mode = m;
            break;
        }
        u -= w;
    }
    let grid = sample_grid(config, spacing_mm, brain.centre_mm(), rng)?;
    let grid = if mode == FovMode::Head {
        grid
    } else {
        frame_z(config, spacing_mm, brain, mode, grid, fov_rng)?
    };
    Ok((tilt(config, brain, grid, fov_rng)?, mode))
}

/// With `tilt_probability`, `grid` rotated about the brain's centre: pitch up to
/// `tilt_max_deg`, roll and yaw up to `tilt_other_max_deg` (drawn last from `fov_rng`, so an
/// untilted grid is the one drawn without tilts).
fn tilt(
    config: &SpatialConfig,
    brain: &BrainBox,
    grid: Geometry,
    fov_rng: &mut impl Rng,
) -> Result<Geometry> {
    if fov_rng.random::<f64>() >= config.tilt_probability {
        return Ok(grid);
    }
    let pitch = config.tilt_max_deg.to_radians();
    let other = config.tilt_other_max_deg.to_radians();
    let rot = rotation(
        uniform(fov_rng, -pitch, pitch),
        uniform(fov_rng, -other, other),
        uniform(fov_rng, -other, other),
    );
    let turn = about(rot, brain.centre_mm(), [0.0; 3]);
    Ok(grid.with_affine(turn.compose(grid.affine()))?)
}

/// The grid of a non-`Head` mode: its z range moved (and for head and neck, lengthened) so
/// that the mode's edge falls where it should.
fn frame_z(
    config: &SpatialConfig,
    spacing_mm: [f64; 3],
    brain: &BrainBox,
    mode: FovMode,
    grid: Geometry,
    fov_rng: &mut impl Rng,
) -> Result<Geometry> {
    let sz = spacing_mm[2];
    let [lo_cb, hi_cb] = brain.cerebellum_z_mm;
    // (top, bottom) of the new z range in world mm.
    let (top, bottom) = match mode {
        FovMode::HeadAndNeck => {
            let top = brain.max_mm[2] + uniform(fov_rng, 8.0, 25.0);
            (top, top - config.fov_mm[2] * uniform(fov_rng, 1.15, 1.4))
        }
        FovMode::CutCerebellum => (
            brain.max_mm[2] + uniform(fov_rng, 8.0, 25.0),
            lo_cb + (hi_cb - lo_cb).max(0.0) * uniform(fov_rng, 0.2, 0.6),
        ),
        _ => {
            let top = brain.max_mm[2] - uniform(fov_rng, 5.0, 25.0);
            let fraction = uniform(fov_rng, config.fov_min_fraction, 1.0);
            (top, top - config.fov_mm[2] * fraction)
        }
    };
    let mut shape = grid.shape();
    shape[2] = ((top - bottom) / sz).round().max(1.0) as usize;
    let mut origin = grid.voxel_to_world([0.0; 3]);
    origin[2] = bottom;
    Ok(Geometry::from_spacing(shape, spacing_mm, origin)?)
}

/// Resamples `template` onto `target` through `transform` (and the extra subject-space
/// transform `pre`, applied first: session misalignment), nearest neighbour, swapping
/// left/right labels when the transform flips. Voxels that map outside the template are 0.
pub fn warp_labels(
    template: &LabelMap,
    target: &Geometry,
    transform: &SpatialTransform,
    pre: &Affine,
) -> Result<LabelMap> {
    let tg = template.geometry();
    let inv = tg
        .affine()
        .inverse()
        .ok_or_else(|| SynthError::InvalidArgument("template affine is singular".into()))?;
    let affine = Affine(transform.affine);
    // Output voxel → subject world → (misalignment) → template world.
    let to_template_world = affine.compose(pre).compose(target.affine());
    let m = inv.compose(&to_template_world).0;
    let inv_lin = inv.linear();
    let points = transform.deformation_points;
    if transform.deformation_mm.len() != 3 * points * points * points {
        return Err(SynthError::InvalidArgument(
            "deformation grid has the wrong size".into(),
        ));
    }
    // The field is interpolated linearly, so mapping the control displacements to template
    // voxels once equals mapping every interpolated displacement.
    let values = transform
        .deformation_mm
        .chunks_exact(3)
        .flat_map(|d| {
            let d: [f64; 3] = std::array::from_fn(|c| f64::from(d[c]));
            inv_lin.map(|r| (r[0] * d[0] + r[1] * d[1] + r[2] * d[2]) as f32)
        })
        .collect();
    let grid = ControlGrid {
        points: [points; 3],
        values,
        channels: 3,
    };
    let flip = transform.flip;
    let swap = SwapTable::new(flip.then(LabelSwap::freesurfer));
    let shape = target.shape();
    let [nx, ny, _] = shape;
    let src = template.data();
    let [sx, sy, sz] = tg.shape();
    let mut out = vec![0i32; target.num_voxels()];
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slab)| {
            let mut line = vec![0f32; 3 * nx];
            let mut column = Vec::new();
            let mut at = vec![0usize; nx];
            for (y, row) in slab.chunks_exact_mut(nx).enumerate() {
                grid.sample_line(shape, y, z, &mut line, &mut column);
                let (yf, zf) = (y as f64, z as f64);
                // Template voxel of (0, y, z) before the deformation; x adds column 0.
                let base: [f64; 3] = std::array::from_fn(|r| m[r][1] * yf + m[r][2] * zf + m[r][3]);
                // Indices (and prefetches) first, then the reads: the template is far larger
                // than the cache, and this keeps many misses in flight instead of one or two.
                for ((xi, d), a) in line.chunks_exact(3).enumerate().zip(at.iter_mut()) {
                    let xf = xi as f64;
                    let i = nearest(base[0] + m[0][0] * xf + d[0] as f64);
                    let j = nearest(base[1] + m[1][0] * xf + d[1] as f64);
                    let k = nearest(base[2] + m[2][0] * xf + d[2] as f64);
                    // Negative indices wrap to huge ones, so one unsigned compare per axis.
                    *a = if i < sx && j < sy && k < sz {
                        i + sx * (j + sy * k)
                    } else {
                        usize::MAX
                    };
                    prefetch(src, *a);
                }
                for (xi, &a) in at.iter().enumerate() {
                    let label = src.get(a).copied().unwrap_or(0);
                    // The flipped subject's voxel x shows the template at voxel nx - 1 - x.
                    let x = if flip { nx - 1 - xi } else { xi };
                    row[x] = swap.apply(label);
                }
            }
        });
    Ok(LabelMap::new(target.clone(), out)?)
}

/// The nearest integer to `v` (halves round up) as an index, or a huge value (out of any
/// grid) when `v < -0.5`. Truncation replaces `round`, a libm call on baseline x86-64.
#[inline]
fn nearest(v: f64) -> usize {
    // `t + 1` truncates to `floor(t) + 1` for t ≥ -1 and to ≤ 0 below, so the result is
    // negative exactly when `t < 0` (NaN gives -1 too).
    let t = v + 0.5;
    ((t + 1.0) as i64 - 1) as usize
}

/// Asks the CPU to start fetching `slice[index]` into the cache. Only a hint: nothing is read,
/// and an index out of range (even `usize::MAX`) is harmless.
#[inline]
fn prefetch<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline, and a prefetch neither faults nor reads
    // memory into the program for any address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(slice.as_ptr().wrapping_add(index).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}

/// A left-right label swap with a table for the common labels (a binary search per voxel would
/// cost as much as the rest of the warp); `None` swaps nothing.
struct SwapTable {
    swap: Option<LabelSwap>,
    table: Vec<i32>,
}

impl SwapTable {
    /// Labels below this (every FreeSurfer aseg/aparc id) are looked up in the table.
    const LEN: usize = 4096;

    fn new(swap: Option<LabelSwap>) -> SwapTable {
        let table = match &swap {
            Some(s) => (0..Self::LEN as i32).map(|l| s.apply(l)).collect(),
            None => Vec::new(),
        };
        SwapTable { swap, table }
    }

    #[inline]
    fn apply(&self, label: i32) -> i32 {
        match &self.swap {
            None => label,
            Some(s) => self
                .table
                .get(label as usize)
                .copied()
                .unwrap_or_else(|| s.apply(label)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> LabelMap {
        let shape = [6, 5, 4];
        let g = Geometry::from_spacing(shape, [1.0; 3], [0.0; 3]).expect("grid");
        // Left/right pairs (2 ↔ 41, 17 ↔ 53), a cortical parcel (1005 ↔ 2005) and 0.
        let ids = [0, 2, 41, 17, 53, 1005, 16];
        let data = (0..120).map(|i| ids[(i * 7 + i / 6) % ids.len()]).collect();
        LabelMap::new(g, data).expect("labels")
    }

    #[test]
    fn identity_warp_reproduces_the_template_and_flip_mirrors_with_swap() {
        let t = template();
        let same = warp_labels(
            &t,
            t.geometry(),
            &SpatialTransform::identity(),
            &Affine::IDENTITY,
        )
        .expect("warp");
        assert_eq!(same.data(), t.data());

        let mut flip = SpatialTransform::identity();
        flip.flip = true;
        let mirrored = warp_labels(&t, t.geometry(), &flip, &Affine::IDENTITY).expect("warp");
        let swap = LabelSwap::freesurfer();
        let [nx, ny, nz] = t.shape();
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let want = swap.apply(t.data()[(nx - 1 - x) + nx * (y + ny * z)]);
                    assert_eq!(mirrored.data()[x + nx * (y + ny * z)], want);
                }
            }
        }
    }

    #[test]
    fn voxels_mapping_outside_the_template_are_background() {
        let t = template();
        // The target grid starts 2.4 voxels before the template in x and 0.6 after it in z:
        // x = 0, 1 round to -2, -1 (outside); z = 3 rounds to 4 (outside).
        let target = Geometry::from_spacing(t.shape(), [1.0; 3], [-2.4, 0.0, 0.6]).expect("grid");
        let out = warp_labels(
            &t,
            &target,
            &SpatialTransform::identity(),
            &Affine::IDENTITY,
        )
        .expect("warp");
        let [nx, ny, nz] = t.shape();
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let got = out.data()[x + nx * (y + ny * z)];
                    let (sx, sz) = (x as i64 - 2, z + 1);
                    let want = if sx < 0 || sz >= nz {
                        0
                    } else {
                        t.data()[sx as usize + nx * (y + ny * sz)]
                    };
                    assert_eq!(got, want, "voxel ({x}, {y}, {z})");
                }
            }
        }
    }
}
