//! Pure numeric kernels on contiguous `[x fastest]` f32 buffers: separable Gaussian blur, and
//! smooth random fields interpolated from a coarse control grid.

use rayon::prelude::*;

/// A normalised Gaussian kernel of `sigma` voxels, truncated at 3 sigma.
fn kernel(sigma: f64) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as i64;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Blurs `data` (shape `[nx, ny, nz]`) in place with a Gaussian of `sigma_vox` per axis;
/// axes with sigma ≤ 0.05 are left alone. Borders are clamped (edge voxels repeat).
pub fn gaussian_blur(data: &mut [f32], shape: [usize; 3], sigma_vox: [f64; 3]) {
    let [nx, ny, nz] = shape;
    let mut tmp = vec![0f32; data.len()];
    for axis in 0..3 {
        if sigma_vox[axis] <= 0.05 || shape[axis] < 2 {
            continue;
        }
        let k = kernel(sigma_vox[axis]);
        let r = (k.len() / 2) as i64;
        let n = shape[axis] as i64;
        let stride = [1, nx, nx * ny][axis];
        // One z-slab per task; each output voxel reads its line through the input.
        let src: &[f32] = data;
        tmp.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(z, slab)| {
                for y in 0..ny {
                    for x in 0..nx {
                        let pos = [x as i64, y as i64, z as i64][axis];
                        let base = x + y * nx + z * nx * ny;
                        let base0 = base as i64 - pos * stride as i64;
                        let mut acc = 0f32;
                        for (t, &w) in k.iter().enumerate() {
                            let p = (pos + t as i64 - r).clamp(0, n - 1);
                            acc += w * src[(base0 + p * stride as i64) as usize];
                        }
                        slab[x + y * nx] = acc;
                    }
                }
            });
        let _ = nz;
        data.copy_from_slice(&tmp);
    }
}

/// A coarse grid of values spanning a fine grid of `shape` voxels, evaluated by trilinear
/// interpolation (control point `c` of `m` sits at fine coordinate `c (n - 1) / (m - 1)`).
#[derive(Clone, Debug)]
pub struct ControlGrid {
    /// Control points per axis.
    pub points: [usize; 3],
    /// Values, x fastest; `channels` values per point.
    pub values: Vec<f32>,
    /// Values per control point (1 for a bias field, 3 for a displacement field).
    pub channels: usize,
}

impl ControlGrid {
    /// Value(s) at fine voxel `(x, y, z)` of a grid of `shape`, written to `out`.
    #[inline]
    pub fn sample(&self, shape: [usize; 3], x: f64, y: f64, z: f64, out: &mut [f32]) {
        let p = [x, y, z];
        let mut i0 = [0usize; 3];
        let mut f = [0f32; 3];
        for a in 0..3 {
            let m = self.points[a];
            let t = if shape[a] > 1 {
                p[a] * (m - 1) as f64 / (shape[a] - 1) as f64
            } else {
                0.0
            };
            let t = t.clamp(0.0, (m - 1) as f64);
            let i = (t.floor() as usize).min(m.saturating_sub(2));
            i0[a] = i;
            f[a] = (t - i as f64) as f32;
        }
        let [mx, my, _] = self.points;
        for o in out.iter_mut() {
            *o = 0.0;
        }
        for dz in 0..2 {
            for dy in 0..2 {
                for dx in 0..2 {
                    let w = (if dx == 1 { f[0] } else { 1.0 - f[0] })
                        * (if dy == 1 { f[1] } else { 1.0 - f[1] })
                        * (if dz == 1 { f[2] } else { 1.0 - f[2] });
                    let idx =
                        ((i0[0] + dx) + (i0[1] + dy) * mx + (i0[2] + dz) * mx * my) * self.channels;
                    for (c, o) in out.iter_mut().enumerate() {
                        *o += w * self.values[idx + c];
                    }
                }
            }
        }
    }

    /// Fills `line` (`shape[0] * channels` values) with the field along the x line at `(y, z)`;
    /// bilinear in y, z once per control column, then linear in x: about two operations per
    /// voxel and channel instead of a full trilinear lookup.
    pub fn sample_line(
        &self,
        shape: [usize; 3],
        y: usize,
        z: usize,
        line: &mut [f32],
        column: &mut Vec<f32>,
    ) {
        let ch = self.channels;
        let [mx, my, mz] = self.points;
        let pos = |p: usize, n: usize, m: usize| -> (usize, f32) {
            let t = if n > 1 {
                p as f64 * (m - 1) as f64 / (n - 1) as f64
            } else {
                0.0
            };
            let t = t.clamp(0.0, (m - 1) as f64);
            let i = (t.floor() as usize).min(m.saturating_sub(2));
            (i, (t - i as f64) as f32)
        };
        let (jy, fy) = pos(y, shape[1], my);
        let (jz, fz) = pos(z, shape[2], mz);
        column.clear();
        column.resize(mx * ch, 0.0);
        for ix in 0..mx {
            for c in 0..ch {
                let at = |iy: usize, iz: usize| self.values[(ix + iy * mx + iz * mx * my) * ch + c];
                column[ix * ch + c] = (at(jy, jz) * (1.0 - fy) + at(jy + 1, jz) * fy) * (1.0 - fz)
                    + (at(jy, jz + 1) * (1.0 - fy) + at(jy + 1, jz + 1) * fy) * fz;
            }
        }
        for x in 0..shape[0] {
            let (ix, fx) = pos(x, shape[0], mx);
            for c in 0..ch {
                line[x * ch + c] =
                    column[ix * ch + c] * (1.0 - fx) + column[(ix + 1) * ch + c] * fx;
            }
        }
    }
}
