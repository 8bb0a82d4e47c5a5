//! Measurements with units: volume (mL), extents and bounding boxes (mm, world RAS+ axes),
//! centroid (mm), intensity statistics inside a mask, SNR, asymmetry, and a per-label table.
//!
//! Conventions, shared by every function here:
//! - A mask voxel is a box around its centre: the parallelepiped spanned by the affine's columns.
//!   Extents are those of the union of these boxes, measured along world axes, so a single voxel
//!   of a 0.7 × 0.9 × 3 mm axis-aligned grid has extents 0.7, 0.9 and 3 mm.
//! - World axes are RAS+: index 0 is L-R (x), 1 is A-P (y), 2 is S-I (z), in mm.
//! - An empty mask has a volume of 0 mL, but every other measurement of it fails with
//!   [`VoxelError::EmptyMask`] instead of returning NaN.
//! - Intensity statistics leave out non-finite image values (NaN, ±inf) and count only the
//!   voxels used; a mask with no finite value inside is an [`VoxelError::EmptyMask`].

use crate::error::{Result, VoxelError};
use crate::intensity::percentile_of_sorted;
use crate::volume::{Image, LabelMap, Mask};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// Volume of the mask in mL (voxel count × voxel volume); 0 for an empty mask.
pub fn volume_ml(mask: &Mask) -> f64 {
    // (count × mm³) / 1000, in this order: the recorded volumes (and the expected answers of
    // evaluations made before) depend on its last bit.
    mask.count() as f64 * mask.geometry().voxel_volume_mm3() / 1000.0
}

/// An axis-aligned box in world RAS+ coordinates (mm).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WorldBox {
    /// Corner with the smallest x, y, z (mm).
    pub min_mm: [f64; 3],
    /// Corner with the largest x, y, z (mm).
    pub max_mm: [f64; 3],
}

impl WorldBox {
    /// Side lengths along L-R, A-P, S-I in mm.
    pub fn size_mm(&self) -> [f64; 3] {
        [
            self.max_mm[0] - self.min_mm[0],
            self.max_mm[1] - self.min_mm[1],
            self.max_mm[2] - self.min_mm[2],
        ]
    }
}

/// A box aligned with the principal axes of a mask.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OrientedBox {
    /// Centre of the box (world mm); the midpoint of the extents, not the centroid.
    pub centre_mm: [f64; 3],
    /// Unit axes in world coordinates, by decreasing variance of the voxel centres; each is
    /// signed so that its largest component is positive.
    pub axes: [[f64; 3]; 3],
    /// Side lengths along `axes` in mm.
    pub extents_mm: [f64; 3],
}

/// Smallest world-axis-aligned box containing every voxel of the mask, voxel boxes included:
/// along each world axis, the range of voxel-centre coordinates widened by half the voxel's
/// projected width (`½·Σ_c |A[axis][c]|` over the affine's linear part `A`) on each side.
pub fn bounding_box_mm(mask: &Mask) -> Result<WorldBox> {
    let g = mask.geometry();
    let lin = g.affine().linear();
    let t = g.affine().translation();
    let (lo, hi) = extremes(mask, lin).ok_or_else(|| empty("bounding box"))?;
    let mut b = WorldBox {
        min_mm: [0.0; 3],
        max_mm: [0.0; 3],
    };
    for a in 0..3 {
        let half = 0.5 * lin[a].iter().map(|v| v.abs()).sum::<f64>();
        b.min_mm[a] = lo[a] + t[a] - half;
        b.max_mm[a] = hi[a] + t[a] + half;
    }
    Ok(b)
}

/// Extents of the mask along L-R, A-P and S-I in mm: the size of [`bounding_box_mm`], i.e.
/// max − min of voxel-centre world coordinates plus the voxel's projected width along that axis
/// (exactly the spacing on an axis-aligned grid).
pub fn extents_mm(mask: &Mask) -> Result<[f64; 3]> {
    Ok(bounding_box_mm(mask)?.size_mm())
}

/// Centroid of the mask's voxel centres in world mm.
pub fn centroid_mm(mask: &Mask) -> Result<[f64; 3]> {
    let m = moments(mask).ok_or_else(|| empty("centroid"))?;
    Ok(mask.geometry().voxel_to_world(m.mean()))
}

/// Oriented bounding box from a principal component analysis of the voxel-centre world
/// coordinates; extents include each voxel's projected width along the axis (`Σ_c |u·A_c|`).
/// Axes of equal variance (a sphere) are an arbitrary orthonormal set.
pub fn oriented_bounding_box(mask: &Mask) -> Result<OrientedBox> {
    let g = mask.geometry();
    let m = moments(mask).ok_or_else(|| empty("oriented bounding box"))?;
    let lin = g.affine().linear();
    let t = g.affine().translation();
    // World covariance = A · (index covariance) · Aᵀ.
    let c = m.covariance();
    let mut cov = [[0.0; 3]; 3];
    for r in 0..3 {
        for s in 0..3 {
            cov[r][s] = (0..3)
                .flat_map(|p| (0..3).map(move |q| (p, q)))
                .map(|(p, q)| lin[r][p] * c[p][q] * lin[s][q])
                .sum();
        }
    }
    let axes = principal_axes(cov);
    // Each axis u as a functional of voxel indices: u·x = (Aᵀu)·ijk + u·t.
    let mut functionals = [[0.0; 3]; 3];
    for (f, u) in functionals.iter_mut().zip(&axes) {
        for (col, v) in f.iter_mut().enumerate() {
            *v = (0..3).map(|r| u[r] * lin[r][col]).sum();
        }
    }
    let (lo, hi) = extremes(mask, functionals).ok_or_else(|| empty("oriented bounding box"))?;
    let mut out = OrientedBox {
        centre_mm: [0.0; 3],
        axes,
        extents_mm: [0.0; 3],
    };
    for a in 0..3 {
        let offset: f64 = (0..3).map(|r| axes[a][r] * t[r]).sum();
        let width: f64 = functionals[a].iter().map(|v| v.abs()).sum();
        out.extents_mm[a] = hi[a] - lo[a] + width;
        let mid = 0.5 * (lo[a] + hi[a]) + offset;
        for (c, u) in out.centre_mm.iter_mut().zip(&axes[a]) {
            *c += mid * u;
        }
    }
    Ok(out)
}

/// Summary statistics of the finite image values inside a mask.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct IntensityStats {
    /// Voxels used (inside the mask, finite value).
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation (divides by `count`, numpy's `ddof=0`).
    pub std: f64,
    /// Median (50th percentile, linear interpolation as numpy's default).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Count, mean, population std, median, min and max of `image` inside `mask`. Fails when the
/// grids differ or no finite value lies inside the mask.
pub fn intensity_stats(image: &Image, mask: &Mask) -> Result<IntensityStats> {
    let values = sorted_values(image, mask)?;
    let (mean, std) = mean_std_of(&values);
    Ok(IntensityStats {
        count: values.len(),
        mean,
        std,
        median: percentile_of_sorted(&values, 50.0),
        min: values[0] as f64,
        max: values[values.len() - 1] as f64,
    })
}

/// Mean and population standard deviation (`ddof=0`) of `image` inside `mask`, without the
/// sort that [`intensity_stats`] needs.
pub fn mean_std(image: &Image, mask: &Mask) -> Result<(f64, f64)> {
    image
        .geometry()
        .require_same_grid(mask.geometry(), "image and mask")?;
    let inside = || {
        image
            .data()
            .par_iter()
            .zip(mask.data().par_iter())
            .filter(|(v, &m)| m && v.is_finite())
            .map(|(&v, _)| v as f64)
    };
    let (n, sum) = inside()
        .map(|v| (1usize, v))
        .reduce(|| (0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    if n == 0 {
        return Err(empty("mean and std"));
    }
    let mean = sum / n as f64;
    // Second pass over deviations: no cancellation for images with a large mean.
    let ss: f64 = inside().map(|v| (v - mean) * (v - mean)).sum();
    Ok((mean, (ss / n as f64).sqrt()))
}

/// Percentiles (each in [0, 100]) of `image` inside `mask`, with numpy's default linear
/// interpolation between order statistics.
pub fn percentiles(image: &Image, mask: &Mask, percentiles: &[f64]) -> Result<Vec<f64>> {
    if let Some(p) = percentiles.iter().find(|p| !(0.0..=100.0).contains(*p)) {
        return Err(VoxelError::InvalidArgument(format!(
            "percentile {p} is outside [0, 100]"
        )));
    }
    let values = sorted_values(image, mask)?;
    Ok(percentiles
        .iter()
        .map(|&p| percentile_of_sorted(&values, p))
        .collect())
}

/// Signal-to-noise ratio. With a background mask: `mean(image in roi) / std(image in
/// background)`, the usual two-region definition with noise measured in air. Without one:
/// `mean(roi) / std(roi)`, the inverse coefficient of variation of the region itself. Standard
/// deviations are population (`ddof=0`); no Rayleigh correction is applied to magnitude
/// background noise. Fails on empty regions or a zero standard deviation.
pub fn snr(image: &Image, roi: &Mask, background: Option<&Mask>) -> Result<f64> {
    let (signal, roi_std) = mean_std(image, roi)?;
    let noise = match background {
        Some(bg) => mean_std(image, bg)?.1,
        None => roi_std,
    };
    if noise <= 0.0 || !noise.is_finite() {
        return Err(VoxelError::InvalidArgument(
            "SNR undefined: the noise region has zero standard deviation".into(),
        ));
    }
    Ok(signal / noise)
}

/// Asymmetry index `(left − right) / ((left + right) / 2)`, as a fraction (×100 for percent);
/// positive when left is larger. Fails on non-finite inputs or when `left + right` is 0.
pub fn asymmetry_index(left: f64, right: f64) -> Result<f64> {
    let mean = (left + right) / 2.0;
    if !left.is_finite() || !right.is_finite() || mean == 0.0 {
        return Err(VoxelError::InvalidArgument(format!(
            "asymmetry index undefined for left = {left}, right = {right}"
        )));
    }
    Ok((left - right) / mean)
}

/// Measurements of one label of a label map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelStats {
    /// The label value.
    pub label: i32,
    /// Number of voxels with this label.
    pub voxel_count: usize,
    /// Volume in mL.
    pub volume_ml: f64,
    /// Extents along L-R, A-P, S-I in mm (as [`extents_mm`]).
    pub extents_mm: [f64; 3],
    /// Centroid of the voxel centres, world mm.
    pub centroid_mm: [f64; 3],
    /// Mean image value inside the label; absent without an image or finite values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Population standard deviation of the image inside the label; absent like `mean`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
}

/// One row per non-zero label, sorted by label value, in a single parallel pass. With an image
/// (which must share the grid) each row also has the mean and std of its finite values.
pub fn measure_labels(labels: &LabelMap, image: Option<&Image>) -> Result<Vec<LabelStats>> {
    let g = labels.geometry();
    if let Some(img) = image {
        g.require_same_grid(img.geometry(), "label map and image")?;
    }
    let [nx, ny, _] = g.shape();
    let lin = g.affine().linear();
    let slab = nx * ny;
    let accs = labels
        .data()
        .par_chunks(slab)
        .enumerate()
        .fold(LabelAccs::default, |mut accs, (k, slab_labels)| {
            let values = image.map(|img| &img.data()[k * slab..k * slab + slab_labels.len()]);
            // Runs of one label are the norm; remember the last slot to skip most lookups.
            let mut last: Option<(i32, usize)> = None;
            for (r, &label) in slab_labels.iter().enumerate() {
                if label == 0 {
                    continue;
                }
                let slot = match last {
                    Some((l, s)) if l == label => s,
                    _ => {
                        let s = accs.slot(label);
                        last = Some((label, s));
                        s
                    }
                };
                let (i, j) = (r % nx, r / nx);
                accs.accs[slot].add_voxel([i, j, k], &lin);
                if let Some(v) = values.map(|v| v[r]).filter(|v| v.is_finite()) {
                    accs.accs[slot].intensity.add(v as f64);
                }
            }
            accs
        })
        .reduce(LabelAccs::default, LabelAccs::merge);

    let voxel_ml = g.voxel_volume_ml();
    let widths: Vec<f64> = lin
        .iter()
        .map(|row| row.iter().map(|v| v.abs()).sum())
        .collect();
    let mut rows: Vec<LabelStats> = accs
        .labels
        .iter()
        .zip(&accs.accs)
        .map(|(&label, a)| {
            let n = a.count as f64;
            let mean_index = [
                a.sum[0] as f64 / n,
                a.sum[1] as f64 / n,
                a.sum[2] as f64 / n,
            ];
            let mut extents = [0.0; 3];
            for ax in 0..3 {
                extents[ax] = a.max[ax] - a.min[ax] + widths[ax];
            }
            let has_values = image.is_some() && a.intensity.n > 0;
            LabelStats {
                label,
                voxel_count: a.count,
                volume_ml: n * voxel_ml,
                extents_mm: extents,
                centroid_mm: g.voxel_to_world(mean_index),
                mean: has_values.then_some(a.intensity.mean),
                std: has_values.then(|| (a.intensity.m2 / a.intensity.n as f64).sqrt()),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.label);
    Ok(rows)
}

fn empty(what: &str) -> VoxelError {
    VoxelError::EmptyMask(format!("{what} of an empty mask is undefined"))
}

/// Sorted finite image values inside the mask; fails on a grid mismatch or when there is none.
fn sorted_values(image: &Image, mask: &Mask) -> Result<Vec<f32>> {
    image
        .geometry()
        .require_same_grid(mask.geometry(), "image and mask")?;
    let mut values: Vec<f32> = image
        .data()
        .par_iter()
        .zip(mask.data().par_iter())
        .filter(|(v, &m)| m && v.is_finite())
        .map(|(&v, _)| v)
        .collect();
    if values.is_empty() {
        return Err(empty("intensity statistics"));
    }
    values.par_sort_unstable_by(f32::total_cmp);
    Ok(values)
}

fn mean_std_of(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let ss: f64 = values
        .iter()
        .map(|&v| (v as f64 - mean) * (v as f64 - mean))
        .sum();
    (mean, (ss / n).sqrt())
}

/// Minimum and maximum over mask voxels of three linear functionals of the voxel index
/// (`f·(i, j, k)`), or `None` for an empty mask. A linear function of `i` on a row is extreme
/// at the row's first or last mask voxel, so only those two are evaluated.
fn extremes(mask: &Mask, functionals: [[f64; 3]; 3]) -> Option<([f64; 3], [f64; 3])> {
    let [nx, ny, _] = mask.shape();
    let init = || ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    let (lo, hi) = mask
        .data()
        .par_chunks(nx)
        .enumerate()
        .fold(init, |(mut lo, mut hi), (r, row)| {
            let first = row.iter().position(|&v| v);
            let last = row.iter().rposition(|&v| v);
            if let (Some(a), Some(b)) = (first, last) {
                let (j, k) = ((r % ny) as f64, (r / ny) as f64);
                for i in [a as f64, b as f64] {
                    for (f, (l, h)) in functionals.iter().zip(lo.iter_mut().zip(hi.iter_mut())) {
                        let v = f[0] * i + f[1] * j + f[2] * k;
                        *l = l.min(v);
                        *h = h.max(v);
                    }
                }
            }
            (lo, hi)
        })
        .reduce(init, |a, b| {
            (
                [a.0[0].min(b.0[0]), a.0[1].min(b.0[1]), a.0[2].min(b.0[2])],
                [a.1[0].max(b.1[0]), a.1[1].max(b.1[1]), a.1[2].max(b.1[2])],
            )
        });
    lo[0].is_finite().then_some((lo, hi))
}

/// Zeroth, first and second moments of the voxel indices of a mask, exact in integers.
#[derive(Clone, Copy, Default)]
struct Moments {
    n: u64,
    s: [u64; 3],
    /// ii, ij, ik, jj, jk, kk
    ss: [u64; 6],
}

impl Moments {
    fn add(mut self, o: Moments) -> Moments {
        self.n += o.n;
        for a in 0..3 {
            self.s[a] += o.s[a];
        }
        for a in 0..6 {
            self.ss[a] += o.ss[a];
        }
        self
    }

    fn mean(&self) -> [f64; 3] {
        let n = self.n as f64;
        [
            self.s[0] as f64 / n,
            self.s[1] as f64 / n,
            self.s[2] as f64 / n,
        ]
    }

    /// Population covariance of the indices.
    fn covariance(&self) -> [[f64; 3]; 3] {
        let n = self.n as f64;
        let m = self.mean();
        let e = |x: u64| x as f64 / n;
        let (ii, ij, ik, jj, jk, kk) = (
            e(self.ss[0]),
            e(self.ss[1]),
            e(self.ss[2]),
            e(self.ss[3]),
            e(self.ss[4]),
            e(self.ss[5]),
        );
        let xy = ij - m[0] * m[1];
        let xz = ik - m[0] * m[2];
        let yz = jk - m[1] * m[2];
        [
            [ii - m[0] * m[0], xy, xz],
            [xy, jj - m[1] * m[1], yz],
            [xz, yz, kk - m[2] * m[2]],
        ]
    }
}

fn moments(mask: &Mask) -> Option<Moments> {
    let [nx, ny, _] = mask.shape();
    let m = mask
        .data()
        .par_chunks(nx)
        .enumerate()
        .map(|(r, row)| {
            // Per row, j and k are constant: only Σ1, Σi and Σi² need a loop.
            let (mut n, mut si, mut sii) = (0u64, 0u64, 0u64);
            for (i, _) in row.iter().enumerate().filter(|(_, &v)| v) {
                let i = i as u64;
                n += 1;
                si += i;
                sii += i * i;
            }
            let (j, k) = ((r % ny) as u64, (r / ny) as u64);
            Moments {
                n,
                s: [si, j * n, k * n],
                ss: [sii, j * si, k * si, j * j * n, j * k * n, k * k * n],
            }
        })
        .reduce(Moments::default, Moments::add);
    (m.n > 0).then_some(m)
}

/// Eigenvectors of a symmetric 3×3 matrix by cyclic Jacobi rotations, sorted by decreasing
/// eigenvalue, each signed so that its largest-magnitude component is positive.
fn principal_axes(mut a: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..50 {
        let off = a[0][1].abs() + a[0][2].abs() + a[1][2].abs();
        let scale = a[0][0].abs() + a[1][1].abs() + a[2][2].abs();
        if off <= 1e-15 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            // Rotation angle that zeroes a[p][q] (Numerical Recipes' stable form).
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            for row in a.iter_mut() {
                let (x, y) = (row[p], row[q]);
                row[p] = c * x - s * y;
                row[q] = s * x + c * y;
            }
            let (rp, rq) = (a[p], a[q]);
            a[p] = std::array::from_fn(|col| c * rp[col] - s * rq[col]);
            a[q] = std::array::from_fn(|col| s * rp[col] + c * rq[col]);
            for row in v.iter_mut() {
                let (x, y) = (row[p], row[q]);
                row[p] = c * x - s * y;
                row[q] = s * x + c * y;
            }
        }
    }
    // Columns of `v` are eigenvectors; eigenvalues on the diagonal of `a`.
    let mut order = [0usize, 1, 2];
    order.sort_by(|&x, &y| a[y][y].total_cmp(&a[x][x]));
    let mut axes = [[0.0; 3]; 3];
    for (axis, &c) in axes.iter_mut().zip(&order) {
        *axis = [v[0][c], v[1][c], v[2][c]];
        let big = axis
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            for x in axis.iter_mut() {
                *x = -*x;
            }
        }
    }
    axes
}

/// Running statistics per label, with Chan et al.'s pairwise merge for the intensities.
#[derive(Default)]
struct LabelAccs {
    index: HashMap<i32, usize>,
    labels: Vec<i32>,
    accs: Vec<LabelAcc>,
}

#[derive(Clone, Copy)]
struct LabelAcc {
    count: usize,
    sum: [u64; 3],
    /// Min and max of the voxel-centre world coordinates, without the translation.
    min: [f64; 3],
    max: [f64; 3],
    intensity: Welford,
}

#[derive(Clone, Copy, Default)]
struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn merge(self, o: Welford) -> Welford {
        if self.n == 0 {
            return o;
        }
        if o.n == 0 {
            return self;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        Welford {
            n,
            mean: self.mean + d * o.n as f64 / n as f64,
            m2: self.m2 + o.m2 + d * d * (self.n as f64 * o.n as f64 / n as f64),
        }
    }
}

impl LabelAcc {
    fn new() -> LabelAcc {
        LabelAcc {
            count: 0,
            sum: [0; 3],
            min: [f64::INFINITY; 3],
            max: [f64::NEG_INFINITY; 3],
            intensity: Welford::default(),
        }
    }

    fn add_voxel(&mut self, ijk: [usize; 3], lin: &[[f64; 3]; 3]) {
        self.count += 1;
        let f = [ijk[0] as f64, ijk[1] as f64, ijk[2] as f64];
        for a in 0..3 {
            self.sum[a] += ijk[a] as u64;
            let w = lin[a][0] * f[0] + lin[a][1] * f[1] + lin[a][2] * f[2];
            self.min[a] = self.min[a].min(w);
            self.max[a] = self.max[a].max(w);
        }
    }

    fn merge(mut self, o: &LabelAcc) -> LabelAcc {
        self.count += o.count;
        for a in 0..3 {
            self.sum[a] += o.sum[a];
            self.min[a] = self.min[a].min(o.min[a]);
            self.max[a] = self.max[a].max(o.max[a]);
        }
        self.intensity = self.intensity.merge(o.intensity);
        self
    }
}

impl LabelAccs {
    fn slot(&mut self, label: i32) -> usize {
        *self.index.entry(label).or_insert_with(|| {
            self.labels.push(label);
            self.accs.push(LabelAcc::new());
            self.accs.len() - 1
        })
    }

    fn merge(mut self, other: LabelAccs) -> LabelAccs {
        for (label, acc) in other.labels.iter().zip(&other.accs) {
            let s = self.slot(*label);
            self.accs[s] = self.accs[s].merge(acc);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affine::Affine;
    use crate::geometry::Geometry;
    use crate::volume::Volume;

    use crate::phantom::sphere_mask as sphere;

    fn rotation(ax: f64, ay: f64, az: f64) -> [[f64; 3]; 3] {
        let (sa, ca) = ax.sin_cos();
        let (sb, cb) = ay.sin_cos();
        let (sc, cc) = az.sin_cos();
        let rx = [[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]];
        let ry = [[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]];
        let rz = [[cc, -sc, 0.0], [sc, cc, 0.0], [0.0, 0.0, 1.0]];
        matmul(rz, matmul(ry, rx))
    }

    fn matmul(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
        let mut out = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                out[r][c] = (0..3).map(|k| a[r][k] * b[k][c]).sum();
            }
        }
        out
    }

    fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
        (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
    }

    const SPHERE_ML: f64 = 4.0 / 3.0 * std::f64::consts::PI * 8000.0 / 1000.0;

    #[test]
    fn sphere_phantom_volume_extents_centroid() {
        // Radius 20 mm at 0.7 × 0.9 × 3 mm, centre at a non-integer voxel position.
        let spacing = [0.7, 0.9, 3.0];
        let centre = [1.23, -4.56, 7.89];
        let centre_voxel = [34.6, 27.3, 8.45];
        let origin: Vec<f64> = (0..3)
            .map(|a| centre[a] - centre_voxel[a] * spacing[a])
            .collect();
        let g = Geometry::from_spacing([70, 56, 18], spacing, [origin[0], origin[1], origin[2]])
            .unwrap();
        let m = sphere(&g, centre, 20.0);
        let v = volume_ml(&m);
        let e = extents_mm(&m).unwrap();
        let c = centroid_mm(&m).unwrap();
        eprintln!("sphere phantom: {v:.4} mL (truth {SPHERE_ML:.4}), extents {e:?} mm, centroid {c:?} mm (truth {centre:?})");
        assert!((v / SPHERE_ML - 1.0).abs() < 0.01, "{v} mL");
        for a in 0..3 {
            assert!((e[a] - 40.0).abs() <= spacing[a], "extent {a}: {}", e[a]);
        }
        assert!(dist(c, centre) < 0.1, "{c:?}");
        // The oriented box of a sphere is a cube of about the same size, centred on it.
        let obb = oriented_bounding_box(&m).unwrap();
        assert!(dist(obb.centre_mm, centre) < 1.5, "{obb:?}");
        for e in obb.extents_mm {
            assert!((e - 40.0).abs() < 4.0, "{obb:?}");
        }
    }

    #[test]
    fn oblique_affine_keeps_volume_and_centroid() {
        let spacing = [0.7, 0.9, 3.0];
        let g = Geometry::from_spacing([70, 56, 18], spacing, [-24.0, -25.0, -26.0]).unwrap();
        let centre = [0.37, 0.52, -0.61];
        let m = sphere(&g, centre, 20.0);
        let c0 = centroid_mm(&m).unwrap();
        // Same voxels, grid rotated and shifted in the world: the volume is identical and the
        // centroid moves with the grid.
        let rot = rotation(0.3, -0.5, 1.1);
        let shift = [10.0, -3.0, 5.5];
        let lin = matmul(rot, g.affine().linear());
        let t0 = g.affine().translation();
        let mut t = [0.0; 3];
        for r in 0..3 {
            t[r] = (0..3).map(|k| rot[r][k] * t0[k]).sum::<f64>() + shift[r];
        }
        let og = Geometry::new(g.shape(), Affine::from_linear_translation(lin, t)).unwrap();
        let om = Volume::new(og.clone(), m.data().to_vec()).unwrap();
        assert!((volume_ml(&om) - volume_ml(&m)).abs() < 1e-9);
        let c1 = centroid_mm(&om).unwrap();
        let mut want = [0.0; 3];
        for r in 0..3 {
            want[r] = (0..3).map(|k| rot[r][k] * c0[k]).sum::<f64>() + shift[r];
        }
        assert!(dist(c1, want) < 1e-9);
        // A sphere sampled directly on the oblique grid measures the same within tolerance, and
        // its extents are 40 mm within the voxel's projected width.
        let world_centre = og.voxel_to_world([34.6, 27.3, 8.45]);
        let s = sphere(&og, world_centre, 20.0);
        assert!((volume_ml(&s) / SPHERE_ML - 1.0).abs() < 0.01);
        assert!(dist(centroid_mm(&s).unwrap(), world_centre) < 0.1);
        let e = extents_mm(&s).unwrap();
        for a in 0..3 {
            let width: f64 = lin[a].iter().map(|v| v.abs()).sum();
            assert!((e[a] - 40.0).abs() <= width, "{e:?}");
        }
    }

    #[test]
    fn bounding_box_of_a_cuboid_is_exact() {
        let g = Geometry::from_spacing([10, 10, 10], [0.5, 2.0, 1.5], [1.0, 2.0, 3.0]).unwrap();
        let data = (0..g.num_voxels())
            .map(|idx| {
                let [i, j, k] = g.coords(idx);
                (2..=5).contains(&i) && (3..=3).contains(&j) && (1..=8).contains(&k)
            })
            .collect();
        let m = Volume::new(g, data).unwrap();
        let b = bounding_box_mm(&m).unwrap();
        let want_min = [
            1.0 + 2.0 * 0.5 - 0.25,
            2.0 + 3.0 * 2.0 - 1.0,
            3.0 + 1.5 - 0.75,
        ];
        let want_max = [
            1.0 + 5.0 * 0.5 + 0.25,
            2.0 + 3.0 * 2.0 + 1.0,
            3.0 + 8.0 * 1.5 + 0.75,
        ];
        for a in 0..3 {
            assert!((b.min_mm[a] - want_min[a]).abs() < 1e-12);
            assert!((b.max_mm[a] - want_max[a]).abs() < 1e-12);
        }
        let e = extents_mm(&m).unwrap();
        assert!((e[0] - 2.0).abs() < 1e-12 && (e[1] - 2.0).abs() < 1e-12);
        assert!((e[2] - 12.0).abs() < 1e-12);
    }

    #[test]
    fn oriented_box_follows_a_rotated_ellipsoid() {
        let g = Geometry::from_spacing([64, 64, 64], [1.0; 3], [-32.0; 3]).unwrap();
        let rot = rotation(0.4, 0.2, -0.7);
        let semi = [24.0, 12.0, 6.0];
        let data = (0..g.num_voxels())
            .map(|idx| {
                let c = g.coords(idx);
                let w = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
                // Coordinates along the rotated axes (the columns of `rot`).
                (0..3)
                    .map(|a| ((0..3).map(|r| rot[r][a] * w[r]).sum::<f64>() / semi[a]).powi(2))
                    .sum::<f64>()
                    <= 1.0
            })
            .collect();
        let m = Volume::new(g, data).unwrap();
        let obb = oriented_bounding_box(&m).unwrap();
        for a in 0..3 {
            let col = [rot[0][a], rot[1][a], rot[2][a]];
            let dot: f64 = (0..3).map(|r| col[r] * obb.axes[a][r]).sum();
            assert!(dot.abs() > 0.99, "axis {a}: {obb:?}");
            assert!((obb.extents_mm[a] - 2.0 * semi[a]).abs() < 2.0, "{obb:?}");
        }
        assert!(dist(obb.centre_mm, [0.0; 3]) < 0.5, "{obb:?}");
    }

    #[test]
    fn principal_axes_of_a_known_matrix() {
        let r = rotation(0.7, -0.2, 0.4);
        let d = [1.0, 5.0, 2.0];
        let mut a = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] = (0..3).map(|k| r[i][k] * d[k] * r[j][k]).sum();
            }
        }
        let axes = principal_axes(a);
        // Decreasing eigenvalue: 5, 2, 1 are the columns 1, 2, 0 of `r`.
        for (axis, col) in axes.iter().zip([1, 2, 0]) {
            let dot: f64 = (0..3).map(|i| axis[i] * r[i][col]).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-12, "{axes:?}");
            let big = axis
                .iter()
                .copied()
                .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            assert!(big > 0.0);
        }
    }

    #[test]
    fn intensity_statistics_match_numpy() {
        let g = Geometry::from_spacing([4, 3, 1], [1.0; 3], [0.0; 3]).unwrap();
        // Values 1..=10 inside the mask, NaN inside (left out), 100 outside.
        let mut img = vec![100.0f32; 12];
        let mut mask = vec![false; 12];
        for (v, idx) in (1..=10).zip([3usize, 0, 7, 1, 9, 2, 11, 4, 6, 8]) {
            img[idx] = v as f32;
            mask[idx] = true;
        }
        img[5] = f32::NAN;
        mask[5] = true;
        let img = Volume::new(g.clone(), img).unwrap();
        let mask = Volume::new(g.clone(), mask).unwrap();
        let s = intensity_stats(&img, &mask).unwrap();
        assert_eq!(s.count, 10);
        assert!((s.mean - 5.5).abs() < 1e-12);
        assert!((s.std - 8.25f64.sqrt()).abs() < 1e-12);
        assert_eq!((s.median, s.min, s.max), (5.5, 1.0, 10.0));
        // np.percentile(np.arange(1, 11), [0, 25, 95, 100]) = [1, 3.25, 9.55, 10]
        let p = percentiles(&img, &mask, &[0.0, 25.0, 95.0, 100.0]).unwrap();
        for (a, b) in p.iter().zip([1.0, 3.25, 9.55, 10.0]) {
            assert!((a - b).abs() < 1e-9, "{p:?}");
        }
        let (mean, std) = mean_std(&img, &mask).unwrap();
        assert!((mean - 5.5).abs() < 1e-12 && (std - s.std).abs() < 1e-12);
        assert!(percentiles(&img, &mask, &[101.0]).is_err());
        let none = Volume::filled(g.clone(), false);
        assert!(matches!(
            intensity_stats(&img, &none),
            Err(VoxelError::EmptyMask(_))
        ));
        assert!(matches!(
            mean_std(&img, &none),
            Err(VoxelError::EmptyMask(_))
        ));
        let other = Geometry::from_spacing([4, 3, 1], [2.0; 3], [0.0; 3]).unwrap();
        let wrong = Volume::filled(other, true);
        assert!(matches!(
            mean_std(&img, &wrong),
            Err(VoxelError::GridMismatch(_))
        ));
    }

    #[test]
    fn snr_and_asymmetry() {
        let g = Geometry::from_spacing([4, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
        let img = Volume::new(g.clone(), vec![9.0, 11.0, -1.0, 1.0]).unwrap();
        let roi = Volume::new(g.clone(), vec![true, true, false, false]).unwrap();
        let bg = Volume::new(g.clone(), vec![false, false, true, true]).unwrap();
        // Background std is 1: SNR = 10 / 1. Without background: mean 10 / std 1.
        assert!((snr(&img, &roi, Some(&bg)).unwrap() - 10.0).abs() < 1e-12);
        assert!((snr(&img, &roi, None).unwrap() - 10.0).abs() < 1e-12);
        let flat = Volume::new(g.clone(), vec![true, false, false, false]).unwrap();
        assert!(snr(&img, &roi, Some(&flat)).is_err());
        assert!(matches!(
            snr(&img, &Volume::filled(g, false), None),
            Err(VoxelError::EmptyMask(_))
        ));
        assert!((asymmetry_index(3.0, 1.0).unwrap() - 1.0).abs() < 1e-12);
        assert!((asymmetry_index(4.0, 6.0).unwrap() + 0.4).abs() < 1e-12);
        assert!(asymmetry_index(0.0, 0.0).is_err());
        assert!(asymmetry_index(f64::NAN, 1.0).is_err());
    }

    #[test]
    fn empty_masks_are_typed_errors_and_zero_volume() {
        let g = Geometry::from_spacing([3, 3, 3], [1.0; 3], [0.0; 3]).unwrap();
        let e = Volume::filled(g, false);
        assert_eq!(volume_ml(&e), 0.0);
        assert!(matches!(extents_mm(&e), Err(VoxelError::EmptyMask(_))));
        assert!(matches!(centroid_mm(&e), Err(VoxelError::EmptyMask(_))));
        assert!(matches!(bounding_box_mm(&e), Err(VoxelError::EmptyMask(_))));
        assert!(matches!(
            oriented_bounding_box(&e),
            Err(VoxelError::EmptyMask(_))
        ));
    }

    #[test]
    fn label_table_agrees_with_single_mask_measurements() {
        let a = Affine::from_linear_translation(
            matmul(
                rotation(0.2, 0.1, -0.3),
                [[0.8, 0.0, 0.0], [0.0, 1.1, 0.0], [0.0, 0.0, 2.0]],
            ),
            [5.0, -7.0, 3.0],
        );
        let g = Geometry::new([20, 18, 9], a).unwrap();
        let labels: Vec<i32> = (0..g.num_voxels())
            .map(|idx| {
                let [i, j, k] = g.coords(idx);
                if i < 6 && j > 4 && k > 1 {
                    17
                } else if (i + j + k) % 7 == 0 {
                    3
                } else if i > 15 {
                    -2
                } else {
                    0
                }
            })
            .collect();
        let labels = Volume::new(g.clone(), labels).unwrap();
        let img: Vec<f32> = (0..g.num_voxels())
            .map(|i| ((i * 37) % 101) as f32 * 0.5 + 1000.0)
            .collect();
        let img = Volume::new(g.clone(), img).unwrap();
        let rows = measure_labels(&labels, Some(&img)).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.label).collect::<Vec<_>>(),
            vec![-2, 3, 17]
        );
        for r in &rows {
            let m = labels.mask_of(r.label);
            assert_eq!(r.voxel_count, m.count());
            assert!((r.volume_ml - volume_ml(&m)).abs() < 1e-12);
            let e = extents_mm(&m).unwrap();
            let c = centroid_mm(&m).unwrap();
            let (mean, std) = mean_std(&img, &m).unwrap();
            for a in 0..3 {
                assert!((r.extents_mm[a] - e[a]).abs() < 1e-9);
                assert!((r.centroid_mm[a] - c[a]).abs() < 1e-9);
            }
            assert!((r.mean.unwrap() - mean).abs() < 1e-9);
            assert!((r.std.unwrap() - std).abs() < 1e-9);
        }
        let rows = measure_labels(&labels, None).unwrap();
        assert!(rows.iter().all(|r| r.mean.is_none() && r.std.is_none()));
        let json = serde_json::to_string(&rows[0]).unwrap();
        assert!(json.contains("\"volume_ml\"") && !json.contains("\"mean\""));
    }
}
