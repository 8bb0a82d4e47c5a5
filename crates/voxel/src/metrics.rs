//! Overlap and distance metrics between two masks on the same grid: Dice, Jaccard, 95th
//! percentile Hausdorff distance (mm), and volume differences (mL, %).
//!
//! Every function fails with [`VoxelError::GridMismatch`] unless both masks share a grid;
//! nothing is resampled implicitly.
//!
//! Empty masks: Dice and Jaccard are 1 when both are empty (identical, nothing to miss) and 0
//! when exactly one is. HD95 is 0 when both are empty and fails with
//! [`VoxelError::EmptyMask`] when exactly one is (the distance would be infinite). The relative
//! volume difference fails with [`VoxelError::EmptyMask`] for an empty reference.

use crate::distance::{squared_distance_mm2, Window};
use crate::error::{Result, VoxelError};
use crate::volume::Mask;
use rayon::prelude::*;

/// Dice coefficient `2|A ∩ B| / (|A| + |B|)`; 1 when both are empty.
pub fn dice(a: &Mask, b: &Mask) -> Result<f64> {
    let c = counts(a, b)?;
    if c.a + c.b == 0 {
        return Ok(1.0);
    }
    Ok(2.0 * c.both as f64 / (c.a + c.b) as f64)
}

/// Jaccard index `|A ∩ B| / |A ∪ B|`; 1 when both are empty.
pub fn jaccard(a: &Mask, b: &Mask) -> Result<f64> {
    let c = counts(a, b)?;
    let union = c.a + c.b - c.both;
    if union == 0 {
        return Ok(1.0);
    }
    Ok(c.both as f64 / union as f64)
}

/// 95th percentile symmetric Hausdorff distance in mm, as MONAI and medpy compute it: surface
/// voxels are mask voxels with a 6-neighbour outside the mask (the outside of the grid counts as
/// outside); the directed distances from each surface voxel of one mask to the nearest surface
/// voxel of the other are taken both ways, and the result is the larger of the two directed
/// 95th percentiles (numpy's linear interpolation). 0 when both masks are empty; fails with
/// [`VoxelError::EmptyMask`] when only one is.
pub fn hausdorff95_mm(a: &Mask, b: &Mask) -> Result<f64> {
    a.geometry()
        .require_same_grid(b.geometry(), "Hausdorff distance")?;
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ok(0.0),
        (true, false) | (false, true) => {
            return Err(VoxelError::EmptyMask(
                "Hausdorff distance between an empty and a non-empty mask is infinite".into(),
            ))
        }
        (false, false) => {}
    }
    // Both surfaces lie inside the bounding box of A ∪ B, so distance transforms restricted to
    // that window are exact.
    let grid = a.shape();
    let union: Vec<bool> = a
        .data()
        .par_iter()
        .zip(b.data().par_iter())
        .map(|(&x, &y)| x || y)
        .collect();
    let Some(w) = Window::around(&union, grid, [0; 3], true, usize::MAX)? else {
        return Ok(0.0);
    };
    let sa = w.extract(&surface(a), grid);
    let sb = w.extract(&surface(b), grid);
    let spacing = a.geometry().spacing_mm();
    let ab = directed_percentile(&sa, &sb, w.shape, spacing, 95.0);
    let ba = directed_percentile(&sb, &sa, w.shape, spacing, 95.0);
    Ok(ab.max(ba))
}

/// Absolute volume difference `|V(prediction) − V(reference)|` in mL.
pub fn volume_difference_ml(prediction: &Mask, reference: &Mask) -> Result<f64> {
    let c = counts(prediction, reference)?;
    let voxel_ml = prediction.geometry().voxel_volume_ml();
    Ok((c.a as f64 - c.b as f64).abs() * voxel_ml)
}

/// Signed relative volume difference `100 · (V(prediction) − V(reference)) / V(reference)` in
/// percent (positive when the prediction is larger). Fails on an empty reference.
pub fn relative_volume_difference_percent(prediction: &Mask, reference: &Mask) -> Result<f64> {
    let c = counts(prediction, reference)?;
    if c.b == 0 {
        return Err(VoxelError::EmptyMask(
            "relative volume difference against an empty reference is undefined".into(),
        ));
    }
    Ok(100.0 * (c.a as f64 - c.b as f64) / c.b as f64)
}

struct Counts {
    a: usize,
    b: usize,
    both: usize,
}

fn counts(a: &Mask, b: &Mask) -> Result<Counts> {
    a.geometry()
        .require_same_grid(b.geometry(), "comparing two masks")?;
    let (ca, cb, both) = a
        .data()
        .par_iter()
        .zip(b.data().par_iter())
        .map(|(&x, &y)| (usize::from(x), usize::from(y), usize::from(x && y)))
        .reduce(|| (0, 0, 0), |p, q| (p.0 + q.0, p.1 + q.1, p.2 + q.2));
    Ok(Counts { a: ca, b: cb, both })
}

/// Mask voxels with at least one 6-neighbour outside the mask or outside the grid.
fn surface(mask: &Mask) -> Vec<bool> {
    let g = mask.geometry();
    let [nx, ny, nz] = g.shape();
    let d = mask.data();
    let (sy, sz) = (nx, nx * ny);
    (0..d.len())
        .into_par_iter()
        .map(|idx| {
            if !d[idx] {
                return false;
            }
            let [i, j, k] = g.coords(idx);
            i == 0
                || j == 0
                || k == 0
                || i + 1 == nx
                || j + 1 == ny
                || k + 1 == nz
                || !d[idx - 1]
                || !d[idx + 1]
                || !d[idx - sy]
                || !d[idx + sy]
                || !d[idx - sz]
                || !d[idx + sz]
        })
        .collect()
}

/// The `p`-th percentile of the distances (mm) from the `from` voxels to the nearest `to` voxel.
/// Both sets are non-empty (surfaces of non-empty masks).
fn directed_percentile(
    from: &[bool],
    to: &[bool],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    p: f64,
) -> f64 {
    let d2 = squared_distance_mm2(to, shape, spacing_mm, false);
    let mut d: Vec<f64> = d2
        .par_iter()
        .zip(from.par_iter())
        .filter(|(_, &f)| f)
        .map(|(&v, _)| (v as f64).sqrt())
        .collect();
    d.par_sort_unstable_by(f64::total_cmp);
    let pos = p / 100.0 * (d.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(d.len() - 1);
    d[lo] + (pos - lo as f64) * (d[hi] - d[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::tests::{fixture, fixture_mask};
    use crate::geometry::Geometry;
    use crate::morphology::tests::embed;
    use crate::volume::Volume;

    use crate::phantom::sphere_mask as sphere;

    #[test]
    fn match_scipy_reference() {
        let fx = fixture();
        let a = fixture_mask(&fx, "blob");
        let b = fixture_mask(&fx, "blob2");
        let close = |x: f64, key: &str| {
            let want = fx[key].as_f64().unwrap();
            assert!((x - want).abs() < 1e-6, "{key}: {x} vs {want}");
        };
        close(dice(&a, &b).unwrap(), "dice_blob_blob2");
        close(jaccard(&a, &b).unwrap(), "jaccard_blob_blob2");
        close(hausdorff95_mm(&a, &b).unwrap(), "hd95_blob_blob2_mm");
        assert_eq!(hausdorff95_mm(&a, &a).unwrap(), 0.0);
        // Embedded in a larger empty grid (so the distance transforms run on a window), the
        // surfaces and hence the distances are unchanged.
        let big_a = embed(&a, [4, 6, 1], [7, 9, 4]);
        let big_b = embed(&b, [4, 6, 1], [7, 9, 4]);
        close(
            hausdorff95_mm(&big_a, &big_b).unwrap(),
            "hd95_blob_blob2_mm",
        );
        assert_eq!(dice(&a, &a).unwrap(), 1.0);
    }

    #[test]
    fn hd95_of_concentric_spheres_is_the_radius_difference() {
        let spacing = [0.8, 1.0, 1.5];
        let g = Geometry::from_spacing([64, 52, 36], spacing, [-25.0, -26.0, -27.0]).unwrap();
        let centre = [0.3, -0.4, 0.6];
        for (r1, r2) in [(10.0, 14.0), (18.0, 12.5)] {
            let a = sphere(&g, centre, r1);
            let b = sphere(&g, centre, r2);
            let hd = hausdorff95_mm(&a, &b).unwrap();
            let want: f64 = (r1 - r2).abs();
            eprintln!("HD95 of spheres r = {r1}, {r2} mm: {hd:.3} mm (truth {want})");
            assert!((hd - want).abs() <= 1.5, "{hd} vs {want}");
            assert_eq!(hausdorff95_mm(&b, &a).unwrap(), hd);
        }
    }

    #[test]
    fn overlap_and_volume_differences() {
        let g = Geometry::from_spacing([10, 1, 1], [2.0, 1.0, 1.0], [0.0; 3]).unwrap();
        let mk = |r: std::ops::Range<usize>| {
            Volume::new(g.clone(), (0..10).map(|i| r.contains(&i)).collect()).unwrap()
        };
        let a = mk(0..6);
        let b = mk(2..10);
        // |A| = 6, |B| = 8, |A ∩ B| = 4, |A ∪ B| = 10; voxels are 2 mm³.
        assert!((dice(&a, &b).unwrap() - 8.0 / 14.0).abs() < 1e-12);
        assert!((jaccard(&a, &b).unwrap() - 0.4).abs() < 1e-12);
        assert!((volume_difference_ml(&a, &b).unwrap() - 0.004).abs() < 1e-12);
        assert!((relative_volume_difference_percent(&a, &b).unwrap() + 25.0).abs() < 1e-12);
        // The grid is one voxel thick, so every mask voxel is a surface voxel. Directed
        // distances A→B are [4, 2, 0, 0, 0, 0] mm (95th percentile 3.5) and B→A are
        // [0, 0, 0, 0, 2, 4, 6, 8] mm (95th percentile 7.3, numpy's interpolation).
        assert!((hausdorff95_mm(&a, &b).unwrap() - 7.3).abs() < 1e-6);
    }

    #[test]
    fn empty_cases_and_grid_mismatch() {
        let g = Geometry::from_spacing([5, 5, 5], [1.0; 3], [0.0; 3]).unwrap();
        let empty = Volume::filled(g.clone(), false);
        let full = Volume::filled(g.clone(), true);
        assert_eq!(dice(&empty, &empty).unwrap(), 1.0);
        assert_eq!(jaccard(&empty, &empty).unwrap(), 1.0);
        assert_eq!(dice(&empty, &full).unwrap(), 0.0);
        assert_eq!(jaccard(&full, &empty).unwrap(), 0.0);
        assert_eq!(hausdorff95_mm(&empty, &empty).unwrap(), 0.0);
        assert!(matches!(
            hausdorff95_mm(&empty, &full),
            Err(VoxelError::EmptyMask(_))
        ));
        assert!(matches!(
            relative_volume_difference_percent(&full, &empty),
            Err(VoxelError::EmptyMask(_))
        ));
        let other = Geometry::from_spacing([5, 5, 5], [1.0; 3], [0.5, 0.0, 0.0]).unwrap();
        let moved = Volume::filled(other, true);
        for r in [
            dice(&full, &moved),
            jaccard(&full, &moved),
            hausdorff95_mm(&full, &moved),
            volume_difference_ml(&full, &moved),
            relative_volume_difference_percent(&full, &moved),
        ] {
            assert!(matches!(r, Err(VoxelError::GridMismatch(_))));
        }
    }
}
