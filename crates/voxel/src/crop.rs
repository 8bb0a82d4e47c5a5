//! Cropping, padding and left-right flipping. Crops and pads return new volumes on
//! [`Geometry::subgrid`] grids, so every kept voxel stays at the same world position; a flip
//! keeps the grid and mirrors the anatomy instead.

use crate::error::{Result, VoxelError};
use crate::geometry::Geometry;
use crate::volume::{LabelMap, Mask, Volume};
use rayon::prelude::*;

/// Largest volume a crop or pad may create (2³⁰ voxels); larger requests fail with
/// [`VoxelError::TooLarge`] rather than aborting on allocation.
const MAX_OUTPUT_VOXELS: usize = 1 << 30;

/// FreeSurfer `aseg` left/right structure pairs (`Left-*` id, `Right-*` id): cerebral white
/// matter and cortex, lateral and inferior lateral ventricles, cerebellum white matter and cortex,
/// thalamus, caudate, putamen, pallidum, hippocampus, amygdala, accumbens, ventral DC, vessel and
/// choroid plexus. Cortical parcels (`aparc`) are swapped by a rule; see [`LabelSwap::freesurfer`].
pub const FREESURFER_LR_PAIRS: &[(i32, i32)] = &[
    (2, 41),
    (3, 42),
    (4, 43),
    (5, 44),
    (7, 46),
    (8, 47),
    (10, 49),
    (11, 50),
    (12, 51),
    (13, 52),
    (17, 53),
    (18, 54),
    (26, 58),
    (28, 60),
    (30, 62),
    (31, 63),
    (19, 55), // insula
    (20, 56), // operculum
    (25, 57), // lesion
    (27, 59), // substantia nigra
    (29, 61), // undetermined
    (73, 74), // interior
    (78, 79), // white-matter hypointensities
    (81, 82), // non-WM hypointensities
];

/// The voxels from `start` with `shape` voxels per axis; the region must lie inside the volume
/// (use [`crop_or_pad`] to reach outside).
pub fn crop<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    start: [usize; 3],
    shape: [usize; 3],
) -> Result<Volume<T>> {
    let n = volume.shape();
    for a in 0..3 {
        if start[a].checked_add(shape[a]).is_none_or(|end| end > n[a]) || shape[a] == 0 {
            return Err(VoxelError::InvalidArgument(format!(
                "crop from voxel {start:?} with shape {shape:?} does not fit in a {n:?} volume"
            )));
        }
    }
    let start_i = [start[0] as i64, start[1] as i64, start[2] as i64];
    extract(volume, start_i, shape, None)
}

/// The region from `start` (may be negative) with `shape` voxels per axis; voxels outside the
/// volume get `fill`.
pub fn crop_or_pad<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    start: [i64; 3],
    shape: [usize; 3],
    fill: T,
) -> Result<Volume<T>> {
    extract(volume, start, shape, Some(fill))
}

/// Adds `before[a]` voxels before and `after[a]` after the volume along each voxel axis `a`,
/// set to `value`; world positions of the original voxels are unchanged.
pub fn pad<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    before: [usize; 3],
    after: [usize; 3],
    value: T,
) -> Result<Volume<T>> {
    let n = volume.shape();
    let mut start = [0i64; 3];
    let mut shape = [0usize; 3];
    for a in 0..3 {
        let total = n[a]
            .checked_add(before[a])
            .and_then(|s| s.checked_add(after[a]));
        match (total, i64::try_from(before[a])) {
            (Some(t), Ok(b)) if t <= MAX_OUTPUT_VOXELS => {
                shape[a] = t;
                start[a] = -b;
            }
            _ => {
                return Err(VoxelError::TooLarge(format!(
                    "padding {before:?} + {after:?} voxels"
                )))
            }
        }
    }
    extract(volume, start, shape, Some(value))
}

/// Crops to the bounding box of the voxels that are not `T::default()` (0, 0.0, `false`) plus
/// at least `margin_mm` on every side (rounded up to whole voxels per axis using the spacing,
/// clipped to the grid). Fails when every voxel is zero.
pub fn crop_to_nonzero<T>(volume: &Volume<T>, margin_mm: f64) -> Result<Volume<T>>
where
    T: Copy + Send + Sync + PartialEq + Default,
{
    let zero = T::default();
    let bbox = bounding_box(volume.data(), volume.shape(), |v| v != zero).ok_or_else(|| {
        VoxelError::InvalidArgument(
            "cannot crop to the non-zero voxels: every voxel is zero".into(),
        )
    })?;
    crop_bbox(volume, bbox, margin_mm)
}

/// Crops `volume` to the bounding box of `mask` plus at least `margin_mm` on every side (see
/// [`crop_to_nonzero`]). The mask must be on the volume's grid and not empty.
pub fn crop_to_mask<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    mask: &Mask,
    margin_mm: f64,
) -> Result<Volume<T>> {
    volume
        .geometry()
        .require_same_grid(mask.geometry(), "cropping to a mask")?;
    let bbox = bounding_box(mask.data(), mask.shape(), |v| v)
        .ok_or_else(|| VoxelError::InvalidArgument("cannot crop to an empty mask".into()))?;
    crop_bbox(volume, bbox, margin_mm)
}

/// Mirrors the volume across the voxel axis closest to world left-right (from the grid's
/// orientation) while keeping the same geometry, so the anatomy is mirrored in world space about
/// the grid's mid-plane along that axis. Label maps also need their left/right ids swapped; use
/// [`flip_left_right_labels`].
pub fn flip_left_right<T: Copy + Send + Sync>(volume: &Volume<T>) -> Volume<T> {
    flip_axis(volume, left_right_axis(volume.geometry()), |v| v)
}

/// [`flip_left_right`] for a label map, swapping left and right structure ids with `swap` so
/// that, e.g., a left hippocampus that lands on the right side is labelled right hippocampus.
pub fn flip_left_right_labels(labels: &LabelMap, swap: &LabelSwap) -> LabelMap {
    flip_axis(labels, left_right_axis(labels.geometry()), |v| {
        swap.apply(v)
    })
}

/// A symmetric table of label ids to exchange when the left and right sides are mirrored.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSwap {
    /// Sorted `(from, to)` entries, both directions of every pair.
    table: Vec<(i32, i32)>,
    /// Apply FreeSurfer's cortical parcel rule (1000+x ↔ 2000+x, 3000+x ↔ 4000+x).
    freesurfer_cortex: bool,
}

impl LabelSwap {
    /// Swaps each `(a, b)` pair both ways. Fails when a label would map to two different ids,
    /// e.g. `[(17, 53), (17, 60)]`.
    pub fn from_pairs(pairs: &[(i32, i32)]) -> Result<LabelSwap> {
        let mut table: Vec<(i32, i32)> = Vec::with_capacity(2 * pairs.len());
        for &(a, b) in pairs {
            for (from, to) in [(a, b), (b, a)] {
                match table.iter().find(|e| e.0 == from) {
                    Some(&(_, prev)) if prev != to => {
                        return Err(VoxelError::InvalidArgument(format!(
                            "label {from} is swapped with both {prev} and {to}"
                        )))
                    }
                    Some(_) => {}
                    None => table.push((from, to)),
                }
            }
        }
        table.sort_unstable();
        Ok(LabelSwap {
            table,
            freesurfer_cortex: false,
        })
    }

    /// FreeSurfer's left/right ids: the `aseg` pairs of [`FREESURFER_LR_PAIRS`] plus the
    /// `aparc` rule, cortical parcels `1000 + x ↔ 2000 + x` and white-matter parcels
    /// `3000 + x ↔ 4000 + x` for `0 ≤ x < 1000`.
    pub fn freesurfer() -> LabelSwap {
        let mut table: Vec<(i32, i32)> = FREESURFER_LR_PAIRS
            .iter()
            .flat_map(|&(a, b)| [(a, b), (b, a)])
            .collect();
        table.sort_unstable();
        LabelSwap {
            table,
            freesurfer_cortex: true,
        }
    }

    /// The id `label` becomes after a left-right mirror (itself when it has no partner).
    #[inline]
    pub fn apply(&self, label: i32) -> i32 {
        if let Ok(i) = self.table.binary_search_by_key(&label, |e| e.0) {
            return self.table[i].1;
        }
        if self.freesurfer_cortex {
            match label {
                1000..=1999 | 3000..=3999 => return label + 1000,
                2000..=2999 | 4000..=4999 => return label - 1000,
                _ => {}
            }
        }
        label
    }
}

/// The voxel axis that runs closest to world left-right.
fn left_right_axis(geometry: &Geometry) -> usize {
    geometry.orientation().voxel_axis_of(0)
}

fn flip_axis<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    axis: usize,
    f: impl Fn(T) -> T + Sync,
) -> Volume<T> {
    let [nx, ny, nz] = volume.shape();
    let src = volume.data();
    let mut out = src.to_vec();
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slice)| {
            let sk = if axis == 2 { nz - 1 - k } else { k };
            for j in 0..ny {
                let sj = if axis == 1 { ny - 1 - j } else { j };
                let row = &src[(sk * ny + sj) * nx..(sk * ny + sj + 1) * nx];
                let dst = &mut slice[j * nx..(j + 1) * nx];
                if axis == 0 {
                    for (d, &s) in dst.iter_mut().zip(row.iter().rev()) {
                        *d = f(s);
                    }
                } else {
                    for (d, &s) in dst.iter_mut().zip(row) {
                        *d = f(s);
                    }
                }
            }
        });
    // Same grid, new data: the length is unchanged, so this cannot fail.
    Volume::new(volume.geometry().clone(), out).unwrap_or_else(|_| volume.clone())
}

/// Inclusive voxel bounding box `(min, max)` of the voxels where `pred` holds, or `None`.
fn bounding_box<T: Copy + Sync>(
    data: &[T],
    shape: [usize; 3],
    pred: impl Fn(T) -> bool + Sync,
) -> Option<([usize; 3], [usize; 3])> {
    let [nx, ny, _] = shape;
    data.par_chunks(nx * ny)
        .enumerate()
        .filter_map(|(k, slice)| {
            let mut bb: Option<([usize; 3], [usize; 3])> = None;
            for (j, row) in slice.chunks(nx).enumerate() {
                let Some(first) = row.iter().position(|&v| pred(v)) else {
                    continue;
                };
                let last = row.iter().rposition(|&v| pred(v)).unwrap_or(first);
                bb = Some(match bb {
                    None => ([first, j, k], [last, j, k]),
                    Some((lo, hi)) => ([lo[0].min(first), lo[1], k], [hi[0].max(last), j, k]),
                });
            }
            bb
        })
        .reduce_with(|(alo, ahi), (blo, bhi)| {
            (
                [alo[0].min(blo[0]), alo[1].min(blo[1]), alo[2].min(blo[2])],
                [ahi[0].max(bhi[0]), ahi[1].max(bhi[1]), ahi[2].max(bhi[2])],
            )
        })
}

fn crop_bbox<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    bbox: ([usize; 3], [usize; 3]),
    margin_mm: f64,
) -> Result<Volume<T>> {
    if !(margin_mm >= 0.0 && margin_mm.is_finite()) {
        return Err(VoxelError::InvalidArgument(format!(
            "margin {margin_mm} mm must be non-negative and finite"
        )));
    }
    let n = volume.shape();
    let spacing = volume.geometry().spacing_mm();
    let (lo, hi) = bbox;
    let mut start = [0usize; 3];
    let mut shape = [0usize; 3];
    for a in 0..3 {
        // The small slack keeps an exact multiple (2 mm at 1 mm) from rounding up a voxel.
        let m = (margin_mm / spacing[a] - 1e-9).ceil().max(0.0);
        let m = if m >= n[a] as f64 { n[a] } else { m as usize };
        start[a] = lo[a].saturating_sub(m);
        let end = (hi[a] + 1).saturating_add(m).min(n[a]);
        shape[a] = end - start[a];
    }
    crop(volume, start, shape)
}

/// Copies the region `start..start+shape` into a new volume on the matching sub-grid; voxels
/// outside the source get `fill` (the caller has checked bounds when `fill` is `None`).
fn extract<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    start: [i64; 3],
    shape: [usize; 3],
    fill: Option<T>,
) -> Result<Volume<T>> {
    let total = shape.iter().try_fold(1usize, |acc, &s| acc.checked_mul(s));
    if total.is_none_or(|t| t > MAX_OUTPUT_VOXELS) {
        return Err(VoxelError::TooLarge(format!(
            "a {shape:?} crop or pad exceeds {MAX_OUTPUT_VOXELS} voxels"
        )));
    }
    let geometry = volume.geometry().subgrid(start, shape)?;
    let n = volume.shape();
    let src = volume.data();
    // Output voxel index ranges that overlap the source, per axis.
    let mut lo = [0usize; 3];
    let mut hi = [0usize; 3];
    for a in 0..3 {
        // Saturating: `start` comes from the caller and may be anywhere in i64.
        let first = start[a].saturating_neg().clamp(0, shape[a] as i64);
        let last = (n[a] as i64)
            .saturating_sub(start[a])
            .clamp(0, shape[a] as i64);
        lo[a] = first as usize;
        hi[a] = (last.max(first)) as usize;
    }
    let [nx, ny, _] = shape;
    let init = match fill {
        Some(v) => v,
        // Fully inside: every voxel is overwritten, any source value initialises.
        None => src[0],
    };
    let mut out = vec![init; geometry.num_voxels()];
    if lo.iter().zip(&hi).all(|(l, h)| l < h) {
        out.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slice)| {
                if k < lo[2] || k >= hi[2] {
                    return;
                }
                let sk = (k as i64 + start[2]) as usize;
                for j in lo[1]..hi[1] {
                    let sj = (j as i64 + start[1]) as usize;
                    let si = (lo[0] as i64 + start[0]) as usize;
                    let from = si + n[0] * (sj + n[1] * sk);
                    slice[j * nx + lo[0]..j * nx + hi[0]]
                        .copy_from_slice(&src[from..from + hi[0] - lo[0]]);
                }
            });
    }
    Volume::new(geometry, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affine::Affine;
    use crate::orientation::Orientation;
    use crate::volume::Image;

    fn ramp(shape: [usize; 3], affine: Affine) -> Volume<i32> {
        let g = Geometry::new(shape, affine).unwrap();
        let n = g.num_voxels() as i32;
        Volume::new(g, (1..=n).collect()).unwrap()
    }

    fn oblique() -> Affine {
        Affine([
            [0.0, 0.1, -1.2, 50.0],
            [0.9, 0.0, 0.0, -20.0],
            [0.0, -3.0, 0.05, 12.0],
            [0.0, 0.0, 0.0, 1.0],
        ])
    }

    /// Every voxel of `part` holds the value the source has at the same world position (or
    /// `fill` where the source has none).
    fn assert_same_world_values(src: &Volume<i32>, part: &Volume<i32>, fill: i32) {
        for n in 0..part.geometry().num_voxels() {
            let c = part.geometry().coords(n);
            let w = part
                .geometry()
                .voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
            let s = src.geometry().world_to_voxel(w);
            let r = [s[0].round(), s[1].round(), s[2].round()];
            for a in 0..3 {
                assert!(
                    (s[a] - r[a]).abs() < 1e-9,
                    "voxel {c:?} maps off-grid to {s:?}"
                );
            }
            let want = src
                .get(r[0] as i64, r[1] as i64, r[2] as i64)
                .unwrap_or(fill);
            assert_eq!(part.data()[n], want, "voxel {c:?}");
        }
    }

    #[test]
    fn crop_keeps_world_positions_and_rejects_outside_regions() {
        let v = ramp([6, 5, 4], oblique());
        let c = crop(&v, [1, 2, 0], [4, 3, 2]).unwrap();
        assert_eq!(c.shape(), [4, 3, 2]);
        assert_same_world_values(&v, &c, -1);
        assert_eq!(c.at(0, 0, 0), v.at(1, 2, 0));
        assert!(crop(&v, [3, 0, 0], [4, 1, 1]).is_err());
        assert!(crop(&v, [0, 0, 0], [1, 0, 1]).is_err());
        assert!(crop(&v, [usize::MAX, 0, 0], [2, 1, 1]).is_err());
        assert_eq!(crop(&v, [0; 3], v.shape()).unwrap(), v);
    }

    #[test]
    fn pad_then_crop_round_trips() {
        let v = ramp([3, 4, 2], oblique());
        let p = pad(&v, [1, 0, 2], [2, 3, 0], -5).unwrap();
        assert_eq!(p.shape(), [6, 7, 4]);
        assert_same_world_values(&v, &p, -5);
        assert_eq!(
            p.data().iter().filter(|&&x| x == -5).count(),
            6 * 7 * 4 - 24
        );
        assert_eq!(crop(&p, [1, 0, 2], [3, 4, 2]).unwrap(), v);
        assert!(matches!(
            pad(&v, [usize::MAX, 0, 0], [1, 0, 0], 0),
            Err(VoxelError::TooLarge(_))
        ));
    }

    #[test]
    fn crop_or_pad_reaches_outside_on_every_side() {
        let v = ramp(
            [4, 4, 4],
            Affine::from_spacing_origin([1.0, 2.0, 0.5], [3.0, 0.0, -1.0]),
        );
        let c = crop_or_pad(&v, [-2, 1, 3], [5, 5, 3], 0).unwrap();
        assert_same_world_values(&v, &c, 0);
        // Entirely outside: all fill, still a valid grid.
        let far = crop_or_pad(&v, [10, 10, 10], [2, 2, 2], 7).unwrap();
        assert!(far.data().iter().all(|&x| x == 7));
        assert_same_world_values(&v, &far, 7);
        for start in [[i64::MIN, 0, 0], [i64::MAX, 0, 0]] {
            let far = crop_or_pad(&v, start, [2, 2, 2], 7).unwrap();
            assert!(far.data().iter().all(|&x| x == 7));
        }
    }

    #[test]
    fn crop_to_nonzero_adds_margin_in_mm_per_axis_and_clips() {
        let g = Geometry::from_spacing([20, 20, 10], [1.0, 0.5, 3.0], [0.0; 3]).unwrap();
        let mut data = vec![0.0f32; g.num_voxels()];
        for (i, j, k) in [(5, 6, 1), (9, 12, 4), (7, 8, 2)] {
            data[g.index(i, j, k)] = 1.5;
        }
        let img = Image::new(g, data).unwrap();
        // 2 mm = 2 voxels in x, 4 in y, 1 in z (rounded up from 2/3); z clips at 0.
        let c = crop_to_nonzero(&img, 2.0).unwrap();
        assert_eq!(c.shape(), [5 + 4, 7 + 8, 4 + 2]);
        let origin = c.geometry().voxel_to_world([0.0; 3]);
        assert_eq!(origin, [3.0, 1.0, 0.0]);
        let exact = crop_to_nonzero(&img, 0.0).unwrap();
        assert_eq!(exact.shape(), [5, 7, 4]);
        assert_eq!(exact.at(0, 0, 0), 1.5);
        // A huge margin keeps the whole grid.
        assert_eq!(crop_to_nonzero(&img, 1e9).unwrap(), img);
        assert!(crop_to_nonzero(&img, -1.0).is_err());
        assert!(crop_to_nonzero(&img, f64::NAN).is_err());
        assert!(crop_to_nonzero(&img.map(|_| 0.0f32), 1.0).is_err());
    }

    #[test]
    fn crop_to_mask_uses_the_masks_box_on_the_same_grid() {
        let v = ramp([8, 7, 6], oblique());
        let mask = v.map(|x| x == v.at(3, 2, 4) || x == v.at(5, 5, 5));
        let c = crop_to_mask(&v, &mask, 0.0).unwrap();
        assert_eq!(c.shape(), [3, 4, 2]);
        assert_same_world_values(&v, &c, -1);
        let other = crop(&mask, [0; 3], [7, 7, 6]).unwrap();
        assert!(matches!(
            crop_to_mask(&v, &other, 0.0),
            Err(VoxelError::GridMismatch(_))
        ));
        assert!(crop_to_mask(&v, &v.map(|_| false), 0.0).is_err());
    }

    #[test]
    fn flip_mirrors_anatomy_in_world_space_for_any_storage_order() {
        // A point 10 mm right of the grid centre must end up 10 mm left of it.
        let g = Geometry::from_spacing([21, 9, 7], [1.0, 1.0, 2.0], [-10.0, 0.0, 0.0]).unwrap();
        let mut data = vec![0i32; g.num_voxels()];
        data[g.index(20, 3, 2)] = 9; // world x = +10
        let ras = LabelMap::new(g, data).unwrap();
        for code in ["RAS", "LIA", "PSR", "ILP"] {
            let v = ras.reorient(Orientation::parse(code).unwrap());
            let f = flip_left_right(&v);
            assert_eq!(f.geometry(), v.geometry(), "{code}: geometry kept");
            let idx = f.data().iter().position(|&x| x == 9).unwrap();
            let c = f.geometry().coords(idx);
            let w = f
                .geometry()
                .voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
            assert!((w[0] + 10.0).abs() < 1e-9, "{code}: {w:?}");
            assert_eq!((w[1], w[2]), (3.0, 4.0), "{code}");
            assert_eq!(flip_left_right(&f), v, "{code}: twice is identity");
        }
    }

    #[test]
    fn label_flip_swaps_left_and_right_ids() {
        let g = Geometry::from_spacing([4, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
        let v = LabelMap::new(g, vec![17, 0, 1035, 4002]).unwrap();
        let f = flip_left_right_labels(&v, &LabelSwap::freesurfer());
        assert_eq!(f.data(), &[3002, 2035, 0, 53]);
        let custom = LabelSwap::from_pairs(&[(17, 53), (1, 2)]).unwrap();
        let f = flip_left_right_labels(&v, &custom);
        assert_eq!(f.data(), &[4002, 1035, 0, 53]);
        assert_eq!(flip_left_right_labels(&f, &custom), v);
    }

    #[test]
    fn freesurfer_swap_table_is_an_involution() {
        let s = LabelSwap::freesurfer();
        for (l, r) in FREESURFER_LR_PAIRS.iter().copied() {
            assert_eq!((s.apply(l), s.apply(r)), (r, l));
        }
        for l in [
            -3, 0, 14, 15, 16, 24, 77, 999, 1000, 1035, 2000, 2035, 3001, 4035, 5001, 11101,
        ] {
            assert_eq!(s.apply(s.apply(l)), l, "{l}");
        }
        assert_eq!(s.apply(16), 16, "brain stem is midline");
        assert_eq!(s.apply(1024), 2024);
        assert_eq!(s.apply(4024), 3024);
    }

    #[test]
    fn conflicting_swap_pairs_are_rejected() {
        assert!(LabelSwap::from_pairs(&[(17, 53), (17, 60)]).is_err());
        assert!(LabelSwap::from_pairs(&[(17, 53), (60, 53)]).is_err());
        assert!(LabelSwap::from_pairs(&[(17, 53), (53, 17), (5, 5)]).is_ok());
    }
}
