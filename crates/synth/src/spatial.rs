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
    let vox_to_vox = inv.compose(&to_template_world);
    let inv_lin = inv.linear();
    let m = transform.deformation_points;
    if transform.deformation_mm.len() != 3 * m * m * m {
        return Err(SynthError::InvalidArgument(
            "deformation grid has the wrong size".into(),
        ));
    }
    let grid = ControlGrid {
        points: [m; 3],
        values: transform.deformation_mm.clone(),
        channels: 3,
    };
    let swap = LabelSwap::freesurfer();
    let shape = target.shape();
    let [nx, ny, _] = shape;
    let src = template.data();
    let sshape = tg.shape();
    let flip = transform.flip;
    let mut out = vec![0i32; target.num_voxels()];
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slab)| {
            let mut line = vec![0f32; 3 * nx];
            let mut column = Vec::new();
            for y in 0..ny {
                grid.sample_line(shape, y, z, &mut line, &mut column);
                for x in 0..nx {
                    let xi = if flip { nx - 1 - x } else { x };
                    let p = [xi as f64, y as f64, z as f64];
                    let mut v = vox_to_vox.apply(p);
                    let d = &line[3 * xi..3 * xi + 3];
                    for (r, vr) in v.iter_mut().enumerate() {
                        *vr += inv_lin[r][0] * d[0] as f64
                            + inv_lin[r][1] * d[1] as f64
                            + inv_lin[r][2] * d[2] as f64;
                    }
                    let i = v[0].round();
                    let j = v[1].round();
                    let k = v[2].round();
                    let label = if i >= 0.0
                        && j >= 0.0
                        && k >= 0.0
                        && (i as usize) < sshape[0]
                        && (j as usize) < sshape[1]
                        && (k as usize) < sshape[2]
                    {
                        src[i as usize
                            + j as usize * sshape[0]
                            + k as usize * sshape[0] * sshape[1]]
                    } else {
                        0
                    };
                    slab[x + y * nx] = if flip { swap.apply(label) } else { label };
                }
            }
        });
    Ok(LabelMap::new(target.clone(), out)?)
}
