//! Relating a derived volume's grid to an input scan's grid.
//!
//! Library operations never resample: a crop lives on a sub-grid of its source, everything
//! else on the source grid itself. So "is this volume on (a crop of) that scan's grid?" is an
//! exact question with an integer answer, and putting a crop back into the scan's grid is a
//! pad, not an interpolation.

use voxel::crop::crop_or_pad;
use voxel::{Geometry, Volume};

/// Largest mismatch tolerated between world positions of voxel centres, in mm (matches
/// `Geometry::require_same_grid`).
const TOL_MM: f64 = 1e-3;

/// When `inner`'s voxels are `outer`'s voxels shifted by a whole number of voxels (same axes,
/// same spacing), the index in `outer` of `inner`'s voxel (0, 0, 0). The shift may put `inner`
/// partly or wholly outside `outer`.
pub fn integer_offset(outer: &Geometry, inner: &Geometry) -> Option<[i64; 3]> {
    let lo = outer.affine().linear();
    let li = inner.affine().linear();
    for r in 0..3 {
        for c in 0..3 {
            if (lo[r][c] - li[r][c]).abs() > TOL_MM {
                return None;
            }
        }
    }
    let p = outer.world_to_voxel(inner.voxel_to_world([0.0; 3]));
    let mut off = [0i64; 3];
    for a in 0..3 {
        let r = p[a].round();
        if !r.is_finite() || r.abs() > 1e9 {
            return None;
        }
        off[a] = r as i64;
    }
    // The rounding must land on a voxel centre within tolerance, measured in mm.
    let back = outer.voxel_to_world([off[0] as f64, off[1] as f64, off[2] as f64]);
    let want = inner.voxel_to_world([0.0; 3]);
    let err = (0..3)
        .map(|a| (back[a] - want[a]).abs())
        .fold(0.0, f64::max);
    (err <= TOL_MM).then_some(off)
}

/// True when every voxel of `inner` lies inside `outer` at an integer offset.
pub fn is_subgrid(outer: &Geometry, inner: &Geometry) -> bool {
    match integer_offset(outer, inner) {
        Some(off) => (0..3).all(|a| {
            off[a] >= 0 && off[a] as u64 + inner.shape()[a] as u64 <= outer.shape()[a] as u64
        }),
        None => false,
    }
}

/// `volume` re-expressed on `target`, which must be related by an integer offset: voxels of
/// `target` that `volume` does not cover get `fill`. `None` when the grids are unrelated.
pub fn place_on_grid<T: Copy + Send + Sync>(
    volume: &Volume<T>,
    target: &Geometry,
    fill: T,
) -> Option<voxel::Result<Volume<T>>> {
    if volume.geometry().same_grid(target, TOL_MM) {
        return Some(Ok(volume.clone()));
    }
    let off = integer_offset(volume.geometry(), target)?;
    Some(crop_or_pad(volume, off, target.shape(), fill))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_goes_back_to_its_source_grid() {
        let g = Geometry::from_spacing([6, 5, 4], [1.0, 2.0, 3.0], [10.0, -4.0, 7.0]).unwrap();
        let data: Vec<i32> = (0..g.num_voxels() as i32).collect();
        let v = Volume::new(g.clone(), data).unwrap();
        let c = voxel::crop::crop(&v, [1, 2, 1], [3, 2, 2]).unwrap();
        assert_eq!(integer_offset(&g, c.geometry()), Some([1, 2, 1]));
        assert!(is_subgrid(&g, c.geometry()));
        let back = place_on_grid(&c, &g, -1).unwrap().unwrap();
        assert_eq!(back.geometry().shape(), g.shape());
        assert_eq!(back.at(1, 2, 1), v.at(1, 2, 1));
        assert_eq!(back.at(3, 3, 2), v.at(3, 3, 2));
        assert_eq!(back.at(0, 0, 0), -1);
        let other = Geometry::from_spacing([6, 5, 4], [1.0, 2.0, 3.0], [10.5, -4.0, 7.0]).unwrap();
        assert_eq!(integer_offset(&g, &other), None);
    }
}
