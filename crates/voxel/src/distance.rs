//! Exact Euclidean distance transform in millimetres on anisotropic grids.
//!
//! Felzenszwalb & Huttenlocher's separable algorithm ("Distance Transforms of Sampled
//! Functions", 2012): a 1-D pass along x finds the squared distance to the nearest feature in
//! each row, then passes along y and z take the lower envelope of parabolas rooted at the
//! previous pass's values. Each pass is exact, so the result is the exact Euclidean distance
//! between voxel centres, with each axis scaled by its spacing. Lines are independent and run
//! in parallel with rayon.
//!
//! Spacing is the length of each voxel axis (the affine's column norms), which is exact for
//! grids whose voxel axes are orthogonal (any rotation of a scaled grid, i.e. every scanner
//! grid without gantry tilt); for sheared affines the distances ignore the shear.

use crate::error::{Result, VoxelError};
use crate::volume::{Image, Mask};
use rayon::prelude::*;

/// Distance in mm from every voxel centre to the nearest voxel centre of `mask` (0 inside the
/// mask). Fails with [`VoxelError::EmptyMask`] when the mask has no voxel, since every distance
/// would be infinite.
pub fn distance_to_mask_mm(mask: &Mask) -> Result<Image> {
    if mask.is_empty() {
        return Err(VoxelError::EmptyMask(
            "distance to an empty mask is undefined".into(),
        ));
    }
    let g = mask.geometry();
    let mut d = squared_distance_mm2(mask.data(), g.shape(), g.spacing_mm(), false);
    d.par_iter_mut().for_each(|v| *v = v.sqrt());
    mask.with_data(d)
}

/// Squared distance (mm²) from every voxel centre to the nearest voxel whose `feature` flag is
/// set, `f32::INFINITY` where there is none. With `outside_is_feature`, the grid is treated as
/// surrounded by a one-voxel shell of feature voxels (so the distance never exceeds the distance
/// to just past the border), which is how erosion treats the outside as background.
pub(crate) fn squared_distance_mm2(
    feature: &[bool],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    outside_is_feature: bool,
) -> Vec<f32> {
    let [nx, ny, nz] = shape;
    debug_assert_eq!(feature.len(), nx * ny * nz);
    let mut out = vec![0.0f32; feature.len()];

    // Pass 1 (x): rows are contiguous, one row per task.
    let sx2 = spacing_mm[0] * spacing_mm[0];
    out.par_chunks_mut(nx)
        .zip(feature.par_chunks(nx))
        .for_each(|(row, feat)| row_pass(feat, row, sx2, outside_is_feature));

    // Pass 2 (y): each z-slab's rows form an ny × nx block whose columns are the y-lines.
    let sy2 = spacing_mm[1] * spacing_mm[1];
    out.par_chunks_mut(nx * ny).for_each_init(
        || LineScratch::new(nx.max(ny).max(nz)),
        |scratch, slab| {
            let mut rows: Vec<&mut [f32]> = slab.chunks_mut(nx).collect();
            columns_pass(&mut rows, sy2, outside_is_feature, scratch);
        },
    );

    // Pass 3 (z): the rows with a given j, one per slab, form an nz × nx block whose columns
    // are the z-lines. Grouping mutable row slices by j keeps the parallel writes disjoint
    // without unsafe code.
    let sz2 = spacing_mm[2] * spacing_mm[2];
    let mut by_j: Vec<Vec<&mut [f32]>> = (0..ny).map(|_| Vec::with_capacity(nz)).collect();
    for (r, row) in out.chunks_mut(nx).enumerate() {
        by_j[r % ny].push(row);
    }
    by_j.into_par_iter().for_each_init(
        || LineScratch::new(nx.max(ny).max(nz)),
        |scratch, mut rows| columns_pass(&mut rows, sz2, outside_is_feature, scratch),
    );
    out
}

/// A box of voxels of a grid, which may reach past the grid's border: voxel `(i, j, k)` of the
/// window is voxel `lo + (i, j, k)` of the grid. Morphology and metrics run their distance
/// transforms on the window around the voxels that matter rather than on the whole grid, which
/// is exact (see the callers) and much cheaper for small structures in large volumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) lo: [i64; 3],
    pub(crate) shape: [usize; 3],
}

impl Window {
    /// The bounding box of the set voxels of `data` (on a grid of `grid` voxels), grown by
    /// `margin` voxels on every side, and clipped to the grid when `clip`; `None` when no voxel
    /// is set. Fails with [`VoxelError::TooLarge`] when the window would exceed `max_voxels`.
    pub(crate) fn around(
        data: &[bool],
        grid: [usize; 3],
        margin: [usize; 3],
        clip: bool,
        max_voxels: usize,
    ) -> Result<Option<Window>> {
        let [nx, ny, _] = grid;
        let none = ([usize::MAX; 3], [0usize; 3]);
        let (min, max) = data
            .par_chunks(nx)
            .enumerate()
            .fold(
                || none,
                |(mut min, mut max), (r, row)| {
                    if let (Some(a), Some(b)) =
                        (row.iter().position(|&v| v), row.iter().rposition(|&v| v))
                    {
                        let (j, k) = (r % ny, r / ny);
                        for (ax, (lo, hi)) in [(a, b), (j, j), (k, k)].into_iter().enumerate() {
                            min[ax] = min[ax].min(lo);
                            max[ax] = max[ax].max(hi);
                        }
                    }
                    (min, max)
                },
            )
            .reduce(
                || none,
                |a, b| {
                    (
                        std::array::from_fn(|ax| a.0[ax].min(b.0[ax])),
                        std::array::from_fn(|ax| a.1[ax].max(b.1[ax])),
                    )
                },
            );
        if min[0] == usize::MAX {
            return Ok(None);
        }
        let too_large =
            || VoxelError::TooLarge(format!("a working grid of more than {max_voxels} voxels"));
        let mut lo = [0i64; 3];
        let mut shape = [0usize; 3];
        for a in 0..3 {
            let m = i64::try_from(margin[a]).map_err(|_| too_large())?;
            let mut l = min[a] as i64 - m;
            let mut h = (max[a] as i64).checked_add(m).ok_or_else(too_large)?;
            if clip {
                l = l.max(0);
                h = h.min(grid[a] as i64 - 1);
            }
            lo[a] = l;
            shape[a] = usize::try_from(h - l + 1).map_err(|_| too_large())?;
        }
        match shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n)) {
            Some(n) if n <= max_voxels => Ok(Some(Window { lo, shape })),
            _ => Err(too_large()),
        }
    }

    /// The window's voxels of `data` (x fastest), `false` outside the grid.
    pub(crate) fn extract(&self, data: &[bool], grid: [usize; 3]) -> Vec<bool> {
        let [wx, wy, _] = self.shape;
        let mut out = vec![false; self.shape.iter().product()];
        out.par_chunks_mut(wx).enumerate().for_each(|(r, row)| {
            let (j, k) = (self.lo[1] + (r % wy) as i64, self.lo[2] + (r / wy) as i64);
            if let Some((dst, src, len)) = self.row_overlap(j, k, grid) {
                row[dst..dst + len].copy_from_slice(&data[src..src + len]);
            }
        });
        out
    }

    /// A grid-sized vector holding `values` (one per window voxel) where the window covers the
    /// grid and `fill` elsewhere.
    pub(crate) fn paste<T: Copy + Send + Sync>(
        &self,
        values: &[T],
        grid: [usize; 3],
        fill: T,
    ) -> Vec<T> {
        let [nx, ny, _] = grid;
        let [wx, wy, _] = self.shape;
        let mut out = vec![fill; grid.iter().product()];
        out.par_chunks_mut(nx).enumerate().for_each(|(r, row)| {
            let (j, k) = ((r % ny) as i64, (r / ny) as i64);
            let (wj, wk) = (j - self.lo[1], k - self.lo[2]);
            if wj < 0 || wk < 0 || wj >= wy as i64 || wk >= self.shape[2] as i64 {
                return;
            }
            let wrow = (wj as usize + wy * wk as usize) * wx;
            let i0 = self.lo[0].max(0);
            let i1 = (self.lo[0] + wx as i64).min(nx as i64);
            for i in i0..i1 {
                row[i as usize] = values[wrow + (i - self.lo[0]) as usize];
            }
        });
        out
    }

    /// For grid row `(j, k)`: where its overlap with the window starts in the window row, in
    /// the grid data, and its length; `None` when the row is outside the grid or misses the
    /// window.
    fn row_overlap(&self, j: i64, k: i64, grid: [usize; 3]) -> Option<(usize, usize, usize)> {
        let [nx, ny, nz] = grid;
        if j < 0 || k < 0 || j >= ny as i64 || k >= nz as i64 {
            return None;
        }
        let i0 = self.lo[0].max(0);
        let i1 = (self.lo[0] + self.shape[0] as i64).min(nx as i64);
        if i1 <= i0 {
            return None;
        }
        let src = i0 as usize + nx * (j as usize + ny * k as usize);
        Some(((i0 - self.lo[0]) as usize, src, (i1 - i0) as usize))
    }
}

/// Squared distance along one row to the nearest feature of the row, by a forward and a
/// backward scan (cheaper than the envelope for binary input).
fn row_pass(feature: &[bool], out: &mut [f32], s2: f64, outside_is_feature: bool) {
    let n = feature.len();
    // Forward scan: distance in voxels to the nearest feature at or before i (exact in f32 for
    // any realistic row length), then a backward scan for features after i.
    let mut last: Option<usize> = outside_is_feature.then_some(0);
    let shift = usize::from(outside_is_feature);
    for (i, (&f, o)) in feature.iter().zip(out.iter_mut()).enumerate() {
        // Positions are shifted by one so that the virtual feature at −1 sits at 0.
        if f {
            last = Some(i + shift);
        }
        *o = last.map_or(f32::INFINITY, |l| (i + shift - l) as f32);
    }
    let mut next: Option<usize> = outside_is_feature.then_some(n);
    for i in (0..n).rev() {
        if feature[i] {
            next = Some(i);
        }
        let d = next.map_or(out[i], |nx| out[i].min((nx - i) as f32));
        out[i] = if d.is_finite() {
            (d as f64 * d as f64 * s2) as f32
        } else {
            f32::INFINITY
        };
    }
}

/// Reusable per-thread buffers for the envelope pass.
struct LineScratch {
    /// The rows of the block being processed, copied contiguously (row-major).
    block: Vec<f32>,
    /// One line's input values (squared mm) and output.
    f: Vec<f64>,
    out: Vec<f64>,
    /// Lower envelope: site positions, `f/s²` and `f/s² + q²` of each site, and the position
    /// from which each parabola is the lowest.
    site_q: Vec<f64>,
    site_f: Vec<f64>,
    site_h: Vec<f64>,
    start: Vec<f64>,
}

impl LineScratch {
    fn new(n: usize) -> LineScratch {
        LineScratch {
            block: Vec::new(),
            f: vec![0.0; n],
            out: vec![0.0; n],
            site_q: vec![0.0; n + 2],
            site_f: vec![0.0; n + 2],
            site_h: vec![0.0; n + 2],
            start: vec![0.0; n + 2],
        }
    }
}

/// Runs the envelope transform down every column of a block of equal-length rows. The rows
/// may be far apart in memory (z-lines), so they are first copied into one contiguous block.
fn columns_pass(rows: &mut [&mut [f32]], s2: f64, outside_is_feature: bool, s: &mut LineScratch) {
    let n = rows.len();
    let width = rows.first().map_or(0, |r| r.len());
    s.block.clear();
    for r in rows.iter() {
        s.block.extend_from_slice(r);
    }
    for i in 0..width {
        for (f, &v) in s.f[..n].iter_mut().zip(s.block[i..].iter().step_by(width)) {
            *f = v as f64;
        }
        envelope_1d(s, n, s2, outside_is_feature);
        for (b, &v) in s.block[i..].iter_mut().step_by(width).zip(&s.out[..n]) {
            *b = v as f32;
        }
    }
    for (r, chunk) in rows.iter_mut().zip(s.block.chunks(width)) {
        r.copy_from_slice(chunk);
    }
}

/// `out[p] = min_q (s2·(p − q)² + f[q])` for the first `n` values of `s.f`, over the sites `q`
/// with finite `f`, plus virtual sites with `f = 0` at `q = −1` and `q = n` when
/// `outside_is_feature`. Infinite where there is no site. Works in units of `s2` so that the
/// parabolas are `(p − q)² + f/s2`.
fn envelope_1d(s: &mut LineScratch, n: usize, s2: f64, outside_is_feature: bool) {
    let mut k = 0usize;
    // Adds parabola (q, g = f/s2), first removing the ones it hides entirely.
    let mut add = |q: f64, g: f64| {
        let h = g + q * q;
        while k > 0 {
            // Where the new parabola drops below the last one on the envelope.
            let x = (h - s.site_h[k - 1]) / (2.0 * (q - s.site_q[k - 1]));
            if x <= s.start[k - 1] {
                k -= 1;
            } else {
                s.site_q[k] = q;
                s.site_f[k] = g;
                s.site_h[k] = h;
                s.start[k] = x;
                k += 1;
                return;
            }
        }
        s.site_q[0] = q;
        s.site_f[0] = g;
        s.site_h[0] = h;
        s.start[0] = f64::NEG_INFINITY;
        k = 1;
    };
    if outside_is_feature {
        add(-1.0, 0.0);
    }
    let inv_s2 = 1.0 / s2;
    for (q, &fq) in s.f[..n].iter().enumerate() {
        if fq.is_finite() {
            add(q as f64, fq * inv_s2);
        }
    }
    if outside_is_feature {
        add(n as f64, 0.0);
    }
    if k == 0 {
        s.out[..n].fill(f64::INFINITY);
        return;
    }
    let mut j = 0;
    for (p, o) in s.out[..n].iter_mut().enumerate() {
        let x = p as f64;
        while j + 1 < k && s.start[j + 1] < x {
            j += 1;
        }
        let dq = x - s.site_q[j];
        *o = s2 * (dq * dq + s.site_f[j]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geometry::Geometry;
    use crate::volume::Volume;

    /// The scipy reference fixture (see `scripts/make_scipy_morphology_fixture.py`).
    pub(crate) fn fixture() -> serde_json::Value {
        let text = include_str!("../tests/fixtures/scipy_morphology.json");
        serde_json::from_str(text).unwrap()
    }

    pub(crate) fn fixture_geometry(fx: &serde_json::Value) -> Geometry {
        let shape: Vec<usize> = serde_json::from_value(fx["shape"].clone()).unwrap();
        let spacing: Vec<f64> = serde_json::from_value(fx["spacing_mm"].clone()).unwrap();
        Geometry::from_spacing(
            [shape[0], shape[1], shape[2]],
            [spacing[0], spacing[1], spacing[2]],
            [3.0, -2.0, 7.5],
        )
        .unwrap()
    }

    pub(crate) fn fixture_mask(fx: &serde_json::Value, key: &str) -> Mask {
        let bits = fx[key].as_str().unwrap();
        Volume::new(
            fixture_geometry(fx),
            bits.bytes().map(|b| b == b'1').collect(),
        )
        .unwrap()
    }

    pub(crate) fn fixture_floats(fx: &serde_json::Value, key: &str) -> Vec<f64> {
        serde_json::from_value(fx[key].clone()).unwrap()
    }

    fn brute_force_mm2(feature: &[bool], g: &Geometry, outside: bool) -> Vec<f64> {
        let [nx, ny, nz] = g.shape();
        let s = g.spacing_mm();
        let (lo, hi) = if outside { (-1i64, 1i64) } else { (0, 0) };
        let mut out = vec![f64::INFINITY; feature.len()];
        for (idx, o) in out.iter_mut().enumerate() {
            let c = g.coords(idx);
            for z in lo..nz as i64 + hi {
                for y in lo..ny as i64 + hi {
                    for x in lo..nx as i64 + hi {
                        let inside = x >= 0
                            && y >= 0
                            && z >= 0
                            && (x as usize) < nx
                            && (y as usize) < ny
                            && (z as usize) < nz;
                        let is_feature = if inside {
                            feature[g.index(x as usize, y as usize, z as usize)]
                        } else {
                            true
                        };
                        if is_feature {
                            let d = [
                                (x - c[0] as i64) as f64 * s[0],
                                (y - c[1] as i64) as f64 * s[1],
                                (z - c[2] as i64) as f64 * s[2],
                            ];
                            *o = o.min(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_scipy_distance_transform_edt() {
        let fx = fixture();
        let blob = fixture_mask(&fx, "blob");
        let want = fixture_floats(&fx, "edt_to_blob_mm");
        let got = distance_to_mask_mm(&blob).unwrap();
        for (g, w) in got.data().iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w), "{g} vs {w}");
        }
        // With the outside of the grid as feature (the erosion convention), against scipy on a
        // padded grid.
        let want = fixture_floats(&fx, "edt_to_outside_blob_mm");
        let not_blob: Vec<bool> = blob.data().iter().map(|&b| !b).collect();
        let g = blob.geometry();
        let got = squared_distance_mm2(&not_blob, g.shape(), g.spacing_mm(), true);
        for (g, w) in got.iter().zip(&want) {
            assert!((g.sqrt() as f64 - w).abs() < 1e-5 * (1.0 + w), "{g} vs {w}");
        }
    }

    #[test]
    fn matches_brute_force_on_sparse_features() {
        // A few isolated features on a grid with very unequal spacing: the envelope must pick
        // far sites over near ones when the spacing says so.
        let g = Geometry::from_spacing([9, 7, 6], [0.3, 2.7, 1.1], [0.0; 3]).unwrap();
        let mut feat = vec![false; g.num_voxels()];
        for (i, j, k) in [(0, 0, 0), (8, 6, 5), (4, 3, 2), (1, 6, 0)] {
            feat[g.index(i, j, k)] = true;
        }
        for outside in [false, true] {
            let got = squared_distance_mm2(&feat, g.shape(), g.spacing_mm(), outside);
            let want = brute_force_mm2(&feat, &g, outside);
            for (a, b) in got.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn empty_mask_is_an_error_and_no_features_is_infinite() {
        let g = Geometry::from_spacing([4, 3, 2], [1.0; 3], [0.0; 3]).unwrap();
        let empty = Volume::filled(g.clone(), false);
        assert!(matches!(
            distance_to_mask_mm(&empty),
            Err(VoxelError::EmptyMask(_))
        ));
        let d = squared_distance_mm2(empty.data(), g.shape(), g.spacing_mm(), false);
        assert!(d.iter().all(|v| v.is_infinite()));
        // With the outside as feature, a 4×3×2 grid of 1 mm voxels is at most 1 mm from it.
        let d = squared_distance_mm2(empty.data(), g.shape(), g.spacing_mm(), true);
        assert!(d.iter().all(|&v| v == 1.0));
    }
}
