//! Resampling a volume onto another grid: trilinear or nearest for images, nearest or per-label
//! linear for label maps and masks, with Gaussian anti-aliasing when an image is downsampled.
//!
//! Every target voxel is mapped to source voxel coordinates by one composed 4×4,
//! `source.affine()⁻¹ · target.affine()`, so oblique, permuted and flipped grids all take the
//! same path. A target point is *inside* the source when each coordinate lies within the source
//! voxels' extent, `[-0.5, n - 0.5]`; inside, neighbours beyond the last voxel centre are clamped
//! to the edge voxel (so a finer grid with the same field of view has no dark border), and
//! outside points get the fill value (images) or background (labels 0, masks `false`).

use crate::affine::Affine;
use crate::error::{Result, VoxelError};
use crate::geometry::Geometry;
use crate::volume::{Image, LabelMap, Mask, Volume};
use rayon::prelude::*;

/// Largest output we allocate (2³⁰ voxels, 4 GiB of f32); beyond it resampling fails with
/// [`VoxelError::TooLarge`] instead of aborting on allocation.
const MAX_OUTPUT_VOXELS: usize = 1 << 30;

/// Slack on the inside test so that grid points on the source's outer voxel faces, up to
/// rounding, still count as inside.
const INSIDE_EPS_VOX: f64 = 1e-6;

/// How values between voxel centres are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Value of the closest source voxel (ties round up).
    Nearest,
    /// Trilinear for images; for label maps and masks each label's indicator is interpolated
    /// trilinearly and the label of largest weight wins (ties go to the nearest voxel's label).
    #[default]
    Linear,
}

/// How to resample: interpolation, fill value for images, and whether to anti-alias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResampleOptions {
    /// Interpolation method.
    pub interpolation: Interpolation,
    /// Value of image voxels that fall outside the source (labels get 0, masks `false`).
    pub fill: f32,
    /// Blur an image before downsampling it (see [`anti_alias_sigma_vox`]); ignored for label
    /// maps and masks.
    pub anti_alias: bool,
}

impl Default for ResampleOptions {
    /// Linear interpolation, fill 0, anti-aliasing on.
    fn default() -> Self {
        ResampleOptions {
            interpolation: Interpolation::Linear,
            fill: 0.0,
            anti_alias: true,
        }
    }
}

impl ResampleOptions {
    /// Nearest-neighbour, fill 0, no anti-aliasing: values are copied, never mixed.
    pub fn nearest() -> Self {
        ResampleOptions {
            interpolation: Interpolation::Nearest,
            fill: 0.0,
            anti_alias: false,
        }
    }

    /// Linear interpolation, fill 0, anti-aliasing on (the default).
    pub fn linear() -> Self {
        Self::default()
    }
}

/// Volumes that can be resampled onto another grid.
pub trait Resample: Sized {
    /// This volume's values on `target`, interpolated as `options` says. The result's geometry
    /// is exactly `target`.
    fn resample(&self, target: &Geometry, options: &ResampleOptions) -> Result<Self>;
}

impl Resample for Image {
    fn resample(&self, target: &Geometry, options: &ResampleOptions) -> Result<Image> {
        let m = target_to_source(self.geometry(), target)?;
        let shape = self.shape();
        let fill = options.fill;
        let blurred;
        let src: &[f32] = if options.anti_alias {
            let sigma = sigma_from_matrix(&m);
            if sigma.iter().any(|&s| s > 0.0) {
                blurred = gaussian_blur(self.data(), shape, sigma);
                &blurred
            } else {
                self.data()
            }
        } else {
            self.data()
        };
        let data = match options.interpolation {
            Interpolation::Linear => {
                sample_onto(&m, target.shape(), fill, |p| trilinear(src, shape, p, fill))
            }
            Interpolation::Nearest => {
                sample_onto(&m, target.shape(), fill, |p| nearest(src, shape, p, fill))
            }
        };
        Volume::new(target.clone(), data)
    }
}

impl Resample for LabelMap {
    fn resample(&self, target: &Geometry, options: &ResampleOptions) -> Result<LabelMap> {
        resample_categorical(self, target, options.interpolation, 0)
    }
}

impl Resample for Mask {
    fn resample(&self, target: &Geometry, options: &ResampleOptions) -> Result<Mask> {
        resample_categorical(self, target, options.interpolation, false)
    }
}

/// Resamples `volume` to voxels of `spacing_mm`, keeping its orientation (axis directions),
/// its field of view (as closely as whole voxels allow) and its centre; see
/// [`geometry_with_spacing`].
pub fn resample_to_spacing<T>(
    volume: &Volume<T>,
    spacing_mm: [f64; 3],
    options: &ResampleOptions,
) -> Result<Volume<T>>
where
    T: Copy + Send + Sync,
    Volume<T>: Resample,
{
    let target = geometry_with_spacing(volume.geometry(), spacing_mm)?;
    volume.resample(&target, options)
}

/// The grid with the same axis directions and centre as `geometry` but voxels of
/// `spacing_mm`; each axis gets `max(1, round(n · old / new))` voxels so the field of view is
/// kept to within one new voxel.
pub fn geometry_with_spacing(geometry: &Geometry, spacing_mm: [f64; 3]) -> Result<Geometry> {
    if spacing_mm.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
        return Err(VoxelError::InvalidArgument(format!(
            "spacing {spacing_mm:?} mm must be positive and finite"
        )));
    }
    let old = geometry.spacing_mm();
    let shape_in = geometry.shape();
    let mut shape = [1usize; 3];
    for a in 0..3 {
        let n = (shape_in[a] as f64 * old[a] / spacing_mm[a])
            .round()
            .max(1.0);
        if n > MAX_OUTPUT_VOXELS as f64 {
            return Err(too_large(n));
        }
        shape[a] = n as usize;
    }
    let total = shape[0] as f64 * shape[1] as f64 * shape[2] as f64;
    if total > MAX_OUTPUT_VOXELS as f64 {
        return Err(too_large(total));
    }
    // Scale each column (axis direction × spacing) to the new spacing, then place voxel 0 so
    // that the grid centre stays where it was.
    let mut linear = geometry.affine().linear();
    for row in linear.iter_mut() {
        for a in 0..3 {
            row[a] *= spacing_mm[a] / old[a];
        }
    }
    let centre = geometry.center_world();
    let half = [
        (shape[0] as f64 - 1.0) / 2.0,
        (shape[1] as f64 - 1.0) / 2.0,
        (shape[2] as f64 - 1.0) / 2.0,
    ];
    let mut translation = [0.0; 3];
    for r in 0..3 {
        translation[r] =
            centre[r] - (linear[r][0] * half[0] + linear[r][1] * half[1] + linear[r][2] * half[2]);
    }
    Geometry::new(shape, Affine::from_linear_translation(linear, translation))
}

/// Gaussian pre-blur (in source voxels, per source axis) used when resampling an image from
/// `source` onto `target`: `sigma = max(0, (f - 1) / 2)` where `f` is how many source voxels one
/// target step spans along that source axis. `f` is the length of that axis's row of the
/// target→source voxel matrix, which is exact for axis-aligned (possibly permuted or flipped)
/// grids and the target spacing seen along the axis for oblique ones. Upsampling (`f ≤ 1`) does
/// not blur; halving the resolution gives σ = 0.5 voxel.
pub fn anti_alias_sigma_vox(source: &Geometry, target: &Geometry) -> Result<[f64; 3]> {
    Ok(sigma_from_matrix(&target_to_source(source, target)?))
}

fn too_large(voxels: f64) -> VoxelError {
    VoxelError::TooLarge(format!(
        "resampling would create {voxels:.0} voxels; the limit is {MAX_OUTPUT_VOXELS}"
    ))
}

/// The composed target-voxel → source-voxel transform.
fn target_to_source(source: &Geometry, target: &Geometry) -> Result<Affine> {
    if target.num_voxels() > MAX_OUTPUT_VOXELS {
        return Err(too_large(target.num_voxels() as f64));
    }
    let inv = source
        .affine()
        .inverse()
        .ok_or_else(|| VoxelError::InvalidGeometry("source affine is singular".into()))?;
    Ok(inv.compose(target.affine()))
}

fn sigma_from_matrix(m: &Affine) -> [f64; 3] {
    let mut sigma = [0.0; 3];
    for (a, s) in sigma.iter_mut().enumerate() {
        let f = (m.0[a][0].powi(2) + m.0[a][1].powi(2) + m.0[a][2].powi(2)).sqrt();
        // Same-resolution grids give f = 1 up to rounding; they must not pay for a no-op blur.
        *s = if f <= 1.0 + 1e-6 {
            0.0
        } else {
            (f - 1.0) / 2.0
        };
    }
    sigma
}

fn resample_categorical<T: Copy + PartialEq + Send + Sync>(
    volume: &Volume<T>,
    target: &Geometry,
    interpolation: Interpolation,
    background: T,
) -> Result<Volume<T>> {
    let m = target_to_source(volume.geometry(), target)?;
    let shape = volume.shape();
    let src = volume.data();
    let data = match interpolation {
        Interpolation::Nearest => sample_onto(&m, target.shape(), background, |p| {
            nearest(src, shape, p, background)
        }),
        Interpolation::Linear => sample_onto(&m, target.shape(), background, |p| {
            label_linear(src, shape, p, background)
        }),
    };
    Volume::new(target.clone(), data)
}

/// Evaluates `sample(p)` at the source coordinate `p` of every target voxel, in parallel over
/// target rows. Coordinates are computed from the row start each time (not accumulated), so
/// long rows do not drift.
fn sample_onto<T, F>(m: &Affine, target_shape: [usize; 3], init: T, sample: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn([f64; 3]) -> T + Sync,
{
    let [nx, ny, _] = target_shape;
    let n = target_shape[0] * target_shape[1] * target_shape[2];
    let mut out = vec![init; n];
    let m = m.0;
    let col0 = [m[0][0], m[1][0], m[2][0]];
    out.par_chunks_mut(nx).enumerate().for_each(|(row, line)| {
        let (j, k) = ((row % ny) as f64, (row / ny) as f64);
        let base = [
            m[0][1] * j + m[0][2] * k + m[0][3],
            m[1][1] * j + m[1][2] * k + m[1][3],
            m[2][1] * j + m[2][2] * k + m[2][3],
        ];
        for (i, v) in line.iter_mut().enumerate() {
            let i = i as f64;
            *v = sample([
                base[0] + col0[0] * i,
                base[1] + col0[1] * i,
                base[2] + col0[2] * i,
            ]);
        }
    });
    out
}

#[inline]
fn inside(shape: [usize; 3], p: [f64; 3]) -> bool {
    // Written so that NaN coordinates count as outside.
    (0..3).all(|a| p[a] >= -0.5 - INSIDE_EPS_VOX && p[a] <= shape[a] as f64 - 0.5 + INSIDE_EPS_VOX)
}

/// Lower neighbour index, upper neighbour index and fraction towards the upper one along one
/// axis, with the coordinate clamped to the voxel centres.
#[inline]
fn axis_neighbours(x: f64, n: usize) -> (usize, usize, f32) {
    let x = x.clamp(0.0, (n - 1) as f64);
    let i0 = x.floor() as usize;
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, (x - i0 as f64) as f32)
}

#[inline]
fn nearest<T: Copy>(src: &[T], shape: [usize; 3], p: [f64; 3], fill: T) -> T {
    if !inside(shape, p) {
        return fill;
    }
    let idx = |a: usize| ((p[a] + 0.5).floor().max(0.0) as usize).min(shape[a] - 1);
    src[idx(0) + shape[0] * (idx(1) + shape[1] * idx(2))]
}

/// The 8 neighbours' linear indices (x fastest: bit 0 = upper x, bit 1 = upper y, bit 2 =
/// upper z), their trilinear weights and which of them is nearest; `None` outside the source.
#[inline]
fn corners(shape: [usize; 3], p: [f64; 3]) -> Option<([usize; 8], [f32; 8], usize)> {
    if !inside(shape, p) {
        return None;
    }
    let (x0, x1, fx) = axis_neighbours(p[0], shape[0]);
    let (y0, y1, fy) = axis_neighbours(p[1], shape[1]);
    let (z0, z1, fz) = axis_neighbours(p[2], shape[2]);
    let sx = shape[0];
    let sxy = shape[0] * shape[1];
    let (r00, r10, r01, r11) = (
        y0 * sx + z0 * sxy,
        y1 * sx + z0 * sxy,
        y0 * sx + z1 * sxy,
        y1 * sx + z1 * sxy,
    );
    let idx = [
        r00 + x0,
        r00 + x1,
        r10 + x0,
        r10 + x1,
        r01 + x0,
        r01 + x1,
        r11 + x0,
        r11 + x1,
    ];
    let (gx, gy, gz) = (1.0 - fx, 1.0 - fy, 1.0 - fz);
    let w = [
        gx * gy * gz,
        fx * gy * gz,
        gx * fy * gz,
        fx * fy * gz,
        gx * gy * fz,
        fx * gy * fz,
        gx * fy * fz,
        fx * fy * fz,
    ];
    // Round half up, as `nearest` does.
    let nearest = (fx >= 0.5) as usize | ((fy >= 0.5) as usize) << 1 | ((fz >= 0.5) as usize) << 2;
    Some((idx, w, nearest))
}

#[inline]
fn trilinear(src: &[f32], shape: [usize; 3], p: [f64; 3], fill: f32) -> f32 {
    match corners(shape, p) {
        Some((idx, w, _)) => idx.iter().zip(&w).map(|(&i, &w)| src[i] * w).sum(),
        None => fill,
    }
}

/// Per-label linear interpolation: the weights of the (at most 8) distinct labels among the
/// neighbours are accumulated and the heaviest label wins. The nearest neighbour's label keeps
/// ties, so exact half-way points agree with nearest-neighbour resampling.
#[inline]
fn label_linear<T: Copy + PartialEq>(src: &[T], shape: [usize; 3], p: [f64; 3], fill: T) -> T {
    let Some((idx, w, nearest_corner)) = corners(shape, p) else {
        return fill;
    };
    let mut labels = [fill; 8];
    let mut acc = [0.0f32; 8];
    let mut count = 0;
    for c in 0..8 {
        let l = src[idx[c]];
        match labels[..count].iter().position(|&x| x == l) {
            Some(pos) => acc[pos] += w[c],
            None => {
                labels[count] = l;
                acc[count] = w[c];
                count += 1;
            }
        }
    }
    let nearest_label = src[idx[nearest_corner]];
    let mut best = nearest_label;
    let mut best_w = labels[..count]
        .iter()
        .zip(&acc)
        .find(|(&l, _)| l == nearest_label)
        .map_or(0.0, |(_, &w)| w);
    for (&l, &w) in labels[..count].iter().zip(&acc) {
        // The margin keeps rounding in the weight sums from deciding exact ties.
        if w > best_w + 1e-6 {
            best = l;
            best_w = w;
        }
    }
    best
}

/// Separable Gaussian blur with per-axis sigma (voxels) and mirror ("reflect", `d c b a | a b c
/// d`) boundaries, the kernel truncated at 4σ and normalised, as `scipy.ndimage.gaussian_filter`.
/// Axes with σ = 0 are skipped. The in-plane passes (x, y) run slice by slice through a
/// slice-sized scratch buffer that stays in cache; the z pass streams whole slices.
///
/// `data` is `[x fastest]` of `shape` (as [`Volume::data`](crate::Volume::data)); panics when
/// its length is not `nx·ny·nz`.
pub fn gaussian_blur(data: &[f32], shape: [usize; 3], sigma_vox: [f64; 3]) -> Vec<f32> {
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "gaussian_blur: data length does not match shape {shape:?}"
    );
    if data.is_empty() {
        return Vec::new();
    }
    let kernel = |a: usize| (sigma_vox[a] > 0.0).then(|| gaussian_kernel(sigma_vox[a]));
    let (kx, ky, kz) = (kernel(0), kernel(1), kernel(2));
    let [nx, ny, nz] = shape;
    let plane = nx * ny;
    let planar: Option<Vec<f32>> = if kx.is_some() || ky.is_some() {
        let mut out = vec![0.0f32; data.len()];
        out.par_chunks_mut(plane)
            .zip(data.par_chunks(plane))
            .for_each_init(Vec::new, |scratch: &mut Vec<f32>, (o, s)| {
                match (&kx, &ky) {
                    (Some(kx), Some(ky)) => {
                        scratch.resize(plane, 0.0);
                        for (src, dst) in s.chunks(nx).zip(scratch.chunks_mut(nx)) {
                            blur_line(src, dst, kx);
                        }
                        blur_planes(scratch, o, nx, ny, ky);
                    }
                    (Some(kx), None) => {
                        for (src, dst) in s.chunks(nx).zip(o.chunks_mut(nx)) {
                            blur_line(src, dst, kx);
                        }
                    }
                    (None, Some(ky)) => blur_planes(s, o, nx, ny, ky),
                    (None, None) => o.copy_from_slice(s),
                }
            });
        Some(out)
    } else {
        None
    };
    let input = planar.as_deref().unwrap_or(data);
    match &kz {
        Some(kz) => {
            let mut out = vec![0.0f32; data.len()];
            out.par_chunks_mut(plane).enumerate().for_each(|(k, o)| {
                o.fill(0.0);
                for (t, &w) in kz.iter().enumerate() {
                    let kk = reflect(k as i64 + t as i64 - (kz.len() / 2) as i64, nz);
                    for (v, &x) in o.iter_mut().zip(&input[kk * plane..(kk + 1) * plane]) {
                        *v += w * x;
                    }
                }
            });
            out
        }
        None => planar.unwrap_or_else(|| data.to_vec()),
    }
}

/// Normalised Gaussian weights for offsets `-r..=r`, `r = floor(4σ + 0.5)` (scipy's rule).
fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (4.0 * sigma + 0.5) as i64;
    let w: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| (v / sum) as f32).collect()
}

/// Mirror an index into `0..n` (period 2n, edge sample repeated).
#[inline]
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    // Inside or within one period of the edge (every kernel narrower than the line): no
    // division, which would cost more than the blur of the voxel.
    if (0..n).contains(&i) {
        return i as usize;
    }
    if (-n..0).contains(&i) {
        return (-1 - i) as usize;
    }
    if (n..2 * n).contains(&i) {
        return (2 * n - 1 - i) as usize;
    }
    let m = i.rem_euclid(2 * n);
    (if m >= n { 2 * n - 1 - m } else { m }) as usize
}

/// Blurs one contiguous line: the interior as shifted, vectorisable multiply-adds, the `r`
/// samples at each end with mirrored indices.
fn blur_line(line: &[f32], out: &mut [f32], kernel: &[f32]) {
    let n = line.len();
    let r = kernel.len() / 2;
    // Interior `a..b`; the edges `0..a` and `b..n` need mirrored indices.
    let (a, b) = if n > 2 * r { (r, n - r) } else { (n, n) };
    if a < b {
        let o = &mut out[a..b];
        o.fill(0.0);
        for (t, &w) in kernel.iter().enumerate() {
            for (v, &x) in o.iter_mut().zip(&line[t..t + (b - a)]) {
                *v += w * x;
            }
        }
    }
    for i in (0..a).chain(b..n) {
        out[i] = kernel
            .iter()
            .enumerate()
            .map(|(t, w)| w * line[reflect(i as i64 + t as i64 - r as i64, n)])
            .sum();
    }
}

/// Blurs an `nx × ny` slice along y by adding weighted whole rows.
fn blur_planes(slice: &[f32], out: &mut [f32], nx: usize, ny: usize, kernel: &[f32]) {
    let r = kernel.len() as i64 / 2;
    for (j, orow) in out.chunks_mut(nx).enumerate() {
        orow.fill(0.0);
        for (t, &w) in kernel.iter().enumerate() {
            let jj = reflect(j as i64 + t as i64 - r, ny);
            for (v, &x) in orow.iter_mut().zip(&slice[jj * nx..(jj + 1) * nx]) {
                *v += w * x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intensity::tests::{floats, FIXTURE};
    use crate::orientation::Orientation;
    use serde_json::Value;

    fn fixture() -> Value {
        serde_json::from_str(FIXTURE).unwrap()
    }

    fn shape_of(v: &Value) -> [usize; 3] {
        let s: Vec<usize> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        [s[0], s[1], s[2]]
    }

    fn affine_of(v: &Value) -> Affine {
        let rows = v.as_array().unwrap();
        let mut m = [[0.0; 4]; 4];
        for r in 0..4 {
            let row = floats(&rows[r]);
            m[r].copy_from_slice(&row);
        }
        Affine(m)
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (n, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{what}[{n}]: got {g}, want {w}"
            );
        }
    }

    /// Runs one scipy reference case from the fixture.
    fn check_reference_case(name: &str) {
        let fx = fixture();
        let case = &fx[name];
        let src_geom = Geometry::new(
            shape_of(&case["source_shape"]),
            affine_of(&case["source_affine"]),
        )
        .unwrap();
        let src_data: Vec<f32> = floats(&case["source"]).iter().map(|&v| v as f32).collect();
        let src = Image::new(src_geom.clone(), src_data).unwrap();
        let target = Geometry::new(
            shape_of(&case["target_shape"]),
            affine_of(&case["target_affine"]),
        )
        .unwrap();
        // The reference blurs with `sigma_vox` (all zero: no anti-aliasing in that case).
        let sigma = floats(&case["sigma_vox"]);
        let anti_alias = sigma.iter().any(|&s| s > 0.0);
        if anti_alias {
            let aa = anti_alias_sigma_vox(&src_geom, &target).unwrap();
            for a in 0..3 {
                assert!(
                    (aa[a] - sigma[a]).abs() < 1e-9,
                    "{name}: sigma {aa:?} vs {sigma:?}"
                );
            }
        }
        let opts = ResampleOptions {
            interpolation: Interpolation::Linear,
            fill: case["fill"].as_f64().unwrap() as f32,
            anti_alias,
        };
        let out = src.resample(&target, &opts).unwrap();
        assert_eq!(out.geometry(), &target);
        assert_close(out.data(), &floats(&case["expected"]), 2e-5, name);
    }

    #[test]
    fn trilinear_matches_scipy_map_coordinates_on_oblique_grid() {
        check_reference_case("trilinear");
    }

    #[test]
    fn anti_aliased_2x_downsampling_matches_scipy() {
        check_reference_case("downsample_2x");
    }

    #[test]
    fn anisotropic_permuted_downsampling_matches_scipy() {
        check_reference_case("anisotropic_permuted");
    }

    #[test]
    fn gaussian_blur_matches_scipy_gaussian_filter1d_on_every_axis() {
        let fx = fixture();
        let signal: Vec<f32> = floats(&fx["gaussian1d"]["signal"])
            .iter()
            .map(|&v| v as f32)
            .collect();
        let n = signal.len();
        for case in fx["gaussian1d"]["cases"].as_array().unwrap() {
            let sigma = case["sigma"].as_f64().unwrap();
            let want = floats(&case["expected"]);
            for axis in 0..3 {
                let mut shape = [1usize; 3];
                shape[axis] = n;
                let mut s = [0.0; 3];
                s[axis] = sigma;
                let got = gaussian_blur(&signal, shape, s);
                assert_close(&got, &want, 1e-5, &format!("sigma {sigma} axis {axis}"));
            }
        }
    }

    #[test]
    fn blur_keeps_constants_and_mass() {
        let shape = [7, 6, 5];
        let got = gaussian_blur(&vec![3.5; 210], shape, [0.8, 1.7, 0.5]);
        assert!(got.iter().all(|&v| (v - 3.5).abs() < 1e-5));
        // Mirror boundaries conserve the sum of an impulse anywhere.
        let mut delta = vec![0.0f32; 210];
        delta[1 + 7 * (2 + 6 * 4)] = 1.0;
        let sum: f32 = gaussian_blur(&delta, shape, [0.8, 1.7, 0.5]).iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }

    #[test]
    fn trilinear_reproduces_linear_functions_on_an_oblique_grid() {
        let src_g = Geometry::new(
            [10, 12, 9],
            Affine([
                [0.0, 0.0, -1.5, 20.0],
                [1.1, 0.0, 0.0, -5.0],
                [0.0, -0.9, 0.2, 8.0],
                [0.0, 0.0, 0.0, 1.0],
            ]),
        )
        .unwrap();
        let f = |w: [f64; 3]| 2.0 * w[0] - 0.5 * w[1] + 1.25 * w[2] + 3.0;
        let data: Vec<f32> = (0..src_g.num_voxels())
            .map(|n| {
                let c = src_g.coords(n);
                f(src_g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])) as f32
            })
            .collect();
        let src = Image::new(src_g.clone(), data).unwrap();
        // A rotated target well inside the source's voxel-centre box.
        let t = 0.3f64;
        let centre = src_g.center_world();
        let lin = [
            [t.cos(), -t.sin(), 0.0],
            [t.sin(), t.cos(), 0.0],
            [0.0, 0.0, 0.7],
        ];
        let target = Geometry::new(
            [5, 5, 5],
            Affine::from_linear_translation(
                lin,
                [centre[0] - 2.0, centre[1] - 2.5, centre[2] - 1.4],
            ),
        )
        .unwrap();
        let opts = ResampleOptions {
            anti_alias: false,
            fill: f32::NAN,
            ..Default::default()
        };
        let out = src.resample(&target, &opts).unwrap();
        for n in 0..target.num_voxels() {
            let c = target.coords(n);
            let want = f(target.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]));
            assert!(
                (out.data()[n] as f64 - want).abs() < 1e-3,
                "voxel {c:?}: {} vs {want}",
                out.data()[n]
            );
        }
    }

    fn ramp_labels(shape: [usize; 3], affine: Affine) -> LabelMap {
        let g = Geometry::new(shape, affine).unwrap();
        let n = g.num_voxels() as i32;
        LabelMap::new(g, (0..n).map(|v| v * 7 % 13).collect()).unwrap()
    }

    #[test]
    fn reorienting_by_resampling_is_lossless_for_every_interpolation() {
        let v = ramp_labels(
            [4, 5, 6],
            Affine::from_spacing_origin([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        );
        let img = v.map(|x| x as f32);
        for code in ["LPS", "AIL", "SRP"] {
            let r = v.reorient(Orientation::parse(code).unwrap());
            let g = r.geometry();
            assert_eq!(v.resample(g, &ResampleOptions::nearest()).unwrap(), r);
            assert_eq!(v.resample(g, &ResampleOptions::linear()).unwrap(), r);
            let ri = img.resample(g, &ResampleOptions::linear()).unwrap();
            assert_eq!(ri.data(), r.map(|x| x as f32).data(), "{code}");
        }
    }

    #[test]
    fn integer_shift_copies_and_fills_outside() {
        let v = ramp_labels([6, 4, 3], Affine::IDENTITY);
        let target = v.geometry().subgrid([2, -1, 0], [6, 4, 3]).unwrap();
        let out = v.resample(&target, &ResampleOptions::nearest()).unwrap();
        for (n, &got) in out.data().iter().enumerate() {
            let [i, j, k] = target.coords(n);
            let want = v.get(i as i64 + 2, j as i64 - 1, k as i64).unwrap_or(0);
            assert_eq!(got, want, "{:?}", [i, j, k]);
        }
        let img = v.map(|x| x as f32 + 1.0);
        let opts = ResampleOptions {
            fill: -1.0,
            ..Default::default()
        };
        let out = img.resample(&target, &opts).unwrap();
        assert_eq!(out.at(5, 0, 0), -1.0);
        assert_eq!(out.at(0, 1, 0), img.at(2, 0, 0));
    }

    #[test]
    fn finer_grid_over_the_same_field_of_view_has_no_fill_border() {
        let g = Geometry::from_spacing([4, 4, 4], [2.0; 3], [0.0; 3]).unwrap();
        let img = Image::filled(g, 5.0);
        let out = resample_to_spacing(
            &img,
            [0.5; 3],
            &ResampleOptions {
                fill: -1.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(out.shape(), [16, 16, 16]);
        assert!(out.data().iter().all(|&v| v == 5.0));
    }

    /// The obvious implementation: one trilinear pass per label, then argmax.
    fn per_label_reference(v: &LabelMap, target: &Geometry) -> Vec<i32> {
        let labels = v.labels();
        let m = target_to_source(v.geometry(), target).unwrap();
        let mut best = vec![(f32::NEG_INFINITY, 0); target.num_voxels()];
        for &l in &labels {
            let ind = v.map(|x| if x == l { 1.0f32 } else { 0.0 });
            let w = sample_onto(&m, target.shape(), -1.0, |p| {
                trilinear(ind.data(), v.shape(), p, -1.0)
            });
            for (b, &w) in best.iter_mut().zip(&w) {
                if w > b.0 {
                    *b = (w, l);
                }
            }
        }
        best.iter()
            .map(|&(w, l)| if w < 0.0 { 0 } else { l })
            .collect()
    }

    #[test]
    fn label_linear_matches_a_pass_per_label() {
        let g = Geometry::from_spacing([9, 8, 7], [1.0, 1.2, 2.0], [0.0; 3]).unwrap();
        // Blocky labels so that interpolation has real boundaries to move.
        let data: Vec<i32> = (0..g.num_voxels())
            .map(|n| {
                let c = g.coords(n);
                ((c[0] / 3) + 2 * (c[1] / 3) + 5 * (c[2] / 2)) as i32 % 6
            })
            .collect();
        let v = LabelMap::new(g.clone(), data).unwrap();
        let t = 0.41f64;
        let lin = [
            [0.7 * t.cos(), -0.6 * t.sin(), 0.1],
            [0.7 * t.sin(), 0.6 * t.cos(), 0.0],
            [0.05, 0.0, 0.9],
        ];
        let target = Geometry::new(
            [13, 14, 15],
            Affine::from_linear_translation(lin, [0.3137, -0.2291, 0.4371]),
        )
        .unwrap();
        let out = v.resample(&target, &ResampleOptions::linear()).unwrap();
        let want = per_label_reference(&v, &target);
        let m = target_to_source(v.geometry(), &target).unwrap();
        for (n, (&got, &w)) in out.data().iter().zip(&want).enumerate() {
            let c = target.coords(n);
            let p = m.apply([c[0] as f64, c[1] as f64, c[2] as f64]);
            assert_eq!(got, w, "target voxel {c:?} at source {p:?}");
        }
        assert!(out.data().contains(&5), "labels survive");
    }

    #[test]
    fn label_linear_weighs_a_thin_structure_by_overlap() {
        // A one-voxel-thick sheet at x = 3 (1 mm), sampled every 2 mm at x = 0.6, 2.6, 4.6, 6.6:
        // only x = 2.6 gives the sheet more weight (0.6) than the background.
        let g = Geometry::from_spacing([10, 3, 3], [1.0; 3], [0.0; 3]).unwrap();
        let v = LabelMap::new(
            g.clone(),
            (0..90).map(|n| if n % 10 == 3 { 8 } else { 0 }).collect(),
        )
        .unwrap();
        let target = Geometry::from_spacing([4, 3, 3], [2.0, 1.0, 1.0], [0.6, 0.0, 0.0]).unwrap();
        let lin = v.resample(&target, &ResampleOptions::linear()).unwrap();
        // x = 2.6: weights 0.4 (x=2, label 0) and 0.6 (x=3, label 8).
        assert_eq!(lin.at(1, 1, 1), 8);
        assert_eq!(lin.at(0, 1, 1), 0);
        assert_eq!(lin.at(2, 1, 1), 0);
        // Masks take the same path.
        let m = v
            .mask_of(8)
            .resample(&target, &ResampleOptions::linear())
            .unwrap();
        assert_eq!(m.count(), 9);
    }

    #[test]
    fn label_ties_go_to_the_nearest_voxel() {
        let g = Geometry::from_spacing([2, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
        let v = LabelMap::new(g, vec![4, 9]).unwrap();
        let target = Geometry::from_spacing([1, 1, 1], [1.0; 3], [0.5, 0.0, 0.0]).unwrap();
        let lin = v.resample(&target, &ResampleOptions::linear()).unwrap();
        let near = v.resample(&target, &ResampleOptions::nearest()).unwrap();
        assert_eq!(near.data(), &[9]);
        assert_eq!(lin.data(), &[9]);
    }

    #[test]
    fn sigma_rule_per_source_axis() {
        let src = Geometry::from_spacing([64, 64, 64], [1.0; 3], [0.0; 3]).unwrap();
        let s = |sp: [f64; 3]| {
            anti_alias_sigma_vox(&src, &geometry_with_spacing(&src, sp).unwrap()).unwrap()
        };
        assert_eq!(s([2.0; 3]), [0.5; 3]);
        assert_eq!(s([0.5; 3]), [0.0; 3]);
        assert_eq!(s([3.0, 1.0, 0.7]), [1.0, 0.0, 0.0]);
        // A permuted, flipped target: its k axis runs along source x with 4 mm steps.
        let lin = [[0.0, 0.0, -4.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let t = Geometry::new([8, 8, 8], Affine::from_linear_translation(lin, [0.0; 3])).unwrap();
        assert_eq!(anti_alias_sigma_vox(&src, &t).unwrap(), [1.5, 0.0, 0.0]);
    }

    #[test]
    fn anti_aliasing_suppresses_a_nyquist_pattern() {
        // Stripes with a 3-voxel period along x, downsampled 3×: without blur the samples land on
        // the same phase and alias to a constant 1; with the σ = 1 voxel blur they drop well
        // below it.
        let g = Geometry::from_spacing([30, 2, 2], [1.0; 3], [0.0; 3]).unwrap();
        let img = Image::new(
            g.clone(),
            (0..120)
                .map(|n| if n % 3 == 1 { 1.0 } else { 0.0 })
                .collect(),
        )
        .unwrap();
        let target = Geometry::from_spacing([10, 2, 2], [3.0, 1.0, 1.0], [1.0, 0.0, 0.0]).unwrap();
        let plain = img
            .resample(
                &target,
                &ResampleOptions {
                    anti_alias: false,
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(plain.data().iter().all(|&v| v == 1.0));
        let aa = img.resample(&target, &ResampleOptions::default()).unwrap();
        assert!(aa.data().iter().all(|&v| v < 0.5), "{:?}", aa.data());
    }

    #[test]
    fn resample_to_spacing_keeps_orientation_centre_and_field_of_view() {
        let a = Affine([
            [-1.0, 0.0, 0.0, 60.0],
            [0.0, 0.0, 1.2, -70.0],
            [0.0, -0.9, 0.0, 40.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let g = Geometry::new([20, 30, 25], a).unwrap();
        let t = geometry_with_spacing(&g, [2.0, 1.8, 0.6]).unwrap();
        assert_eq!(t.orientation(), g.orientation());
        assert_eq!(t.shape(), [10, 15, 50]);
        let sp = t.spacing_mm();
        for (s, w) in sp.iter().zip([2.0, 1.8, 0.6]) {
            assert!((s - w).abs() < 1e-12);
        }
        let (c0, c1) = (g.center_world(), t.center_world());
        for a in 0..3 {
            assert!((c0[a] - c1[a]).abs() < 1e-9);
        }
        let (f0, f1) = (g.fov_mm(), t.fov_mm());
        for a in 0..3 {
            assert!((f0[a] - f1[a]).abs() < 1e-9);
        }
        // A field of view that is not a multiple of the new spacing rounds to whole voxels.
        let odd = geometry_with_spacing(&g, [3.0, 3.0, 3.0]).unwrap();
        assert_eq!(odd.shape(), [7, 9, 10]);
        assert!(geometry_with_spacing(&g, [1.0, 0.0, 1.0]).is_err());
        assert!(geometry_with_spacing(&g, [1.0, f64::NAN, 1.0]).is_err());
        assert!(matches!(
            geometry_with_spacing(&g, [1e-6; 3]),
            Err(VoxelError::TooLarge(_))
        ));
    }

    #[test]
    fn mask_and_labels_resample_to_spacing() {
        let g = Geometry::from_spacing([8, 8, 8], [1.0; 3], [0.0; 3]).unwrap();
        let labels =
            LabelMap::new(g, (0..512).map(|n| if n % 8 < 4 { 3 } else { 0 }).collect()).unwrap();
        let down = resample_to_spacing(&labels, [2.0; 3], &ResampleOptions::nearest()).unwrap();
        assert_eq!(down.shape(), [4, 4, 4]);
        assert_eq!(down.labels(), vec![0, 3]);
        let mask = labels.mask_of(3);
        let m = resample_to_spacing(&mask, [2.0; 3], &ResampleOptions::linear()).unwrap();
        assert_eq!(m.count(), 32);
    }
}
