//! Smooth random fields on contiguous `[x fastest]` f32 buffers, interpolated from a coarse
//! control grid (the Gaussian blur lives in `voxel::resample`).

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
            (i0[a], f[a]) = segment(p[a], shape[a], self.points[a]);
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
        if mx * my * mz == 0 || self.values.len() < mx * my * mz * ch {
            line.fill(0.0);
            return;
        }
        let (jy, fy) = segment(y as f64, shape[1], my);
        let (jz, fz) = segment(z as f64, shape[2], mz);
        // The four control rows (x runs along each) around (y, z), blended bilinearly.
        let row = mx * ch;
        let (ky, kz) = ((jy + 1).min(my - 1), (jz + 1).min(mz - 1));
        let corners = [
            (jy + jz * my, (1.0 - fy) * (1.0 - fz)),
            (ky + jz * my, fy * (1.0 - fz)),
            (jy + kz * my, (1.0 - fy) * fz),
            (ky + kz * my, fy * fz),
        ];
        column.clear();
        column.resize(row, 0.0);
        for (r, w) in corners {
            for (c, &v) in column.iter_mut().zip(&self.values[r * row..(r + 1) * row]) {
                *c += w * v;
            }
        }
        match ch {
            1 => fill_line::<1>(column, mx, shape[0], line),
            3 => fill_line::<3>(column, mx, shape[0], line),
            _ => fill_line_channels(column, ch, mx, shape[0], line),
        }
    }
}

/// Interpolates `column` (`mx` control points of `C` channels) linearly onto the `nx` voxels of
/// `line`. Within a control segment the field is affine in x, so each voxel costs one
/// multiply-add per channel.
fn fill_line<const C: usize>(column: &[f32], mx: usize, nx: usize, line: &mut [f32]) {
    let line = &mut line[..nx * C];
    if mx < 2 || nx < 2 {
        for out in line.chunks_exact_mut(C) {
            out.copy_from_slice(&column[..C]);
        }
        return;
    }
    // Voxel x sits at control coordinate x (mx - 1) / (nx - 1); segment `i` holds the voxels
    // with i ≤ x (mx - 1) / (nx - 1) < i + 1 (the last one also its end point), found in
    // integers so that segment boundaries are exact.
    let (step, den) = (mx - 1, nx - 1);
    if i32::try_from(nx * step).is_err() {
        return fill_line_channels(column, C, mx, nx, line);
    }
    let inv_den = 1.0 / den as f32;
    let mut x0 = 0;
    for i in 0..mx - 1 {
        let x1 = if i + 2 == mx {
            nx
        } else {
            ((i + 1) * den).div_ceil(step)
        };
        let a: [f32; C] = std::array::from_fn(|c| column[i * C + c]);
        // Change per unit of the numerator x (mx - 1) - i (nx - 1).
        let slope: [f32; C] = std::array::from_fn(|c| (column[(i + 1) * C + c] - a[c]) * inv_den);
        // The numerator in i32 (it fits, checked above): its conversion to f32 is one
        // instruction and vectorises, unlike usize's on baseline x86-64.
        let mut t = (x0 * step - i * den) as i32;
        for out in line[x0 * C..x1 * C].chunks_exact_mut(C) {
            let tf = t as f32;
            for c in 0..C {
                out[c] = a[c] + slope[c] * tf;
            }
            t += step as i32;
        }
        x0 = x1;
    }
}

/// [`fill_line`] for any number of channels.
fn fill_line_channels(column: &[f32], ch: usize, mx: usize, nx: usize, line: &mut [f32]) {
    for x in 0..nx {
        let (i, f) = segment(x as f64, nx, mx);
        for c in 0..ch {
            let a = column[i * ch + c];
            let b = column[((i + 1).min(mx - 1)) * ch + c];
            line[x * ch + c] = a + (b - a) * f;
        }
    }
}

/// The control segment `i` (`0..m - 1`) and fraction within it of fine coordinate `p` of `n`.
fn segment(p: f64, n: usize, m: usize) -> (usize, f32) {
    let t = if n > 1 {
        p * (m - 1) as f64 / (n - 1) as f64
    } else {
        0.0
    };
    let t = t.clamp(0.0, (m - 1) as f64);
    let i = (t.floor() as usize).min(m.saturating_sub(2));
    (i, (t - i as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line sampler against the pointwise trilinear lookup, for the specialised channel
    /// counts, the generic one, and lines of one voxel.
    #[test]
    fn sample_line_matches_trilinear_lookup() {
        for (channels, points, shape) in [
            (1, [4, 4, 4], [37, 11, 6]),
            (3, [5, 5, 5], [80, 9, 13]),
            (2, [3, 4, 5], [7, 5, 4]),
            (3, [5, 3, 2], [1, 4, 3]),
            (1, [6, 2, 3], [4, 3, 2]),
        ] {
            let n: usize = points.iter().product::<usize>() * channels;
            let grid = ControlGrid {
                points,
                values: (0..n)
                    .map(|i| crate::rng::hash_normal(7, i as u64))
                    .collect(),
                channels,
            };
            let mut line = vec![0f32; shape[0] * channels];
            let mut column = Vec::new();
            let mut want = vec![0f32; channels];
            for z in 0..shape[2] {
                for y in 0..shape[1] {
                    grid.sample_line(shape, y, z, &mut line, &mut column);
                    for x in 0..shape[0] {
                        grid.sample(shape, x as f64, y as f64, z as f64, &mut want);
                        for c in 0..channels {
                            let got = line[x * channels + c];
                            assert!(
                                (got - want[c]).abs() < 1e-5,
                                "{channels} ch {points:?} {shape:?} at ({x}, {y}, {z}): {got} vs {}",
                                want[c]
                            );
                        }
                    }
                }
            }
        }
    }
}
