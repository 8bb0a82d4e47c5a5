//! Binary morphology with a ball structuring element whose radius is in millimetres, so the same
//! radius means the same anatomy on 0.7 mm and 3 mm grids; plus hole filling.
//!
//! Dilation and erosion are thresholds of the exact Euclidean distance transform
//! ([`crate::distance`]) rather than repeated neighbourhood passes, which makes the cost
//! independent of the radius. The ball contains the voxel offsets whose centre distance is at
//! most the radius; a relative tolerance of 1e-5 keeps voxels at exactly the radius inside
//! despite f32 rounding.
//!
//! Border convention: the mask is embedded in an infinite background, and every operation is
//! the exact one on that infinite lattice, restricted to the grid. So dilation cannot grow
//! beyond the grid, erosion removes voxels within the radius of the grid border (as
//! `scipy.ndimage.binary_erosion` with `border_value=0`), and closing is computed on a padded
//! grid (see [`close`]).
//!
//! Each operation works on a window around the mask's bounding box (exactly, see the
//! comments), so small structures in large volumes cost little.

use crate::distance::{squared_distance_mm2, Window};
use crate::error::{Result, VoxelError};
use crate::volume::Mask;
use rayon::prelude::*;

use crate::neighbourhood::RADIUS_TOLERANCE;

/// Voxels within `radius_mm` of the mask (the mask grown by a ball of that radius).
pub fn dilate(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    let r2 = squared_radius(radius_mm)?;
    let g = mask.geometry();
    let (grid, spacing) = (g.shape(), g.spacing_mm());
    // Every dilated voxel lies within the radius of the mask's bounding box, and the distance
    // to the mask only needs the mask's own voxels, so the window around it is exact.
    let margin = std::array::from_fn(|a| {
        let m = (radius_mm / spacing[a]).ceil();
        if m >= grid[a] as f64 {
            grid[a]
        } else {
            m as usize
        }
    });
    let Some(w) = Window::around(mask.data(), grid, margin, true, usize::MAX)? else {
        return Ok(mask.clone());
    };
    let d2 = squared_distance_mm2(&w.extract(mask.data(), grid), w.shape, spacing, false);
    let dilated: Vec<bool> = d2.par_iter().map(|&d| (d as f64) <= r2).collect();
    mask.with_data(w.paste(&dilated, grid, false))
}

/// Voxels whose whole ball of `radius_mm` lies inside the mask, the outside of the grid counting
/// as background (so a mask that fills the grid still erodes from the border).
pub fn erode(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    let r2 = squared_radius(radius_mm)?;
    let g = mask.geometry();
    let (grid, spacing) = (g.shape(), g.spacing_mm());
    // Only mask voxels can survive, and the layer one voxel around the mask's bounding box is
    // background (or outside the grid), so treating everything beyond that window as
    // background gives the exact distance to the nearest background voxel.
    let Some(w) = Window::around(mask.data(), grid, [1; 3], true, usize::MAX)? else {
        return Ok(mask.clone());
    };
    let background: Vec<bool> = w
        .extract(mask.data(), grid)
        .par_iter()
        .map(|&m| !m)
        .collect();
    let d2 = squared_distance_mm2(&background, w.shape, spacing, true);
    let eroded: Vec<bool> = background
        .par_iter()
        .zip(d2.par_iter())
        .map(|(&b, &d)| !b && (d as f64) > r2)
        .collect();
    mask.with_data(w.paste(&eroded, grid, false))
}

/// Erosion followed by dilation: removes parts thinner than the ball (and, by the border
/// convention, parts within `radius_mm` of the grid border that are not wider than the ball
/// inside the grid). Never adds voxels.
pub fn open(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    dilate(&erode(mask, radius_mm)?, radius_mm)
}

/// Dilation followed by erosion: bridges gaps and fills concavities narrower than the ball.
/// Never removes voxels. Computed on a working grid that extends the radius past the mask's
/// bounding box, also past the grid border, so the dilation may grow beyond the border before
/// the erosion: this is the exact closing of the mask embedded in an infinite background
/// (without it a mask touching the border would be stripped, or, with the outside as
/// foreground, gaps between the mask and the border would be filled). Fails with
/// [`VoxelError::TooLarge`] when that working grid would exceed 8 times the input (and 2²⁴
/// voxels).
pub fn close(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    let r2 = squared_radius(radius_mm)?;
    let g = mask.geometry();
    let (grid, spacing) = (g.shape(), g.spacing_mm());
    // Lattice points more than `pad` voxels beyond the mask's bounding box are farther than the
    // radius from every mask voxel, so they are background after the dilation: the padded
    // window with its outside as background is exact.
    let mut pad = [0usize; 3];
    for a in 0..3 {
        let p = (radius_mm / spacing[a]).ceil();
        if p >= (1u64 << 40) as f64 {
            return Err(VoxelError::TooLarge(format!(
                "closing radius {radius_mm} mm is {p} voxels"
            )));
        }
        pad[a] = p as usize;
    }
    let max_voxels = g.num_voxels().saturating_mul(8).max(1 << 24);
    let Some(w) = Window::around(mask.data(), grid, pad, false, max_voxels)? else {
        return Ok(mask.clone());
    };
    let d2 = squared_distance_mm2(&w.extract(mask.data(), grid), w.shape, spacing, false);
    let not_dilated: Vec<bool> = d2.par_iter().map(|&d| (d as f64) > r2).collect();
    let d2 = squared_distance_mm2(&not_dilated, w.shape, spacing, true);
    let closed: Vec<bool> = d2.par_iter().map(|&d| (d as f64) > r2).collect();
    mask.with_data(w.paste(&closed, grid, false))
}

/// The mask with every enclosed background region set: background voxels that cannot reach the
/// grid border through 6-connected background (as `scipy.ndimage.binary_fill_holes`). Returns a
/// `Result` only for uniformity with the other operations; it does not fail on a valid mask.
pub fn fill_holes(mask: &Mask) -> Result<Mask> {
    let grid = mask.shape();
    // Holes lie inside the mask's bounding box, and all background outside the box reaches the
    // grid border (walk straight out along an axis on which the voxel is outside the box), so
    // flooding from the border of the box grown by one voxel finds the same holes.
    let Some(w) = Window::around(mask.data(), grid, [1; 3], true, usize::MAX)? else {
        return Ok(mask.clone());
    };
    let data = w.extract(mask.data(), grid);
    let [nx, ny, nz] = w.shape;
    // Flood the background from every window border voxel; whatever background is not reached
    // is a hole. `reached` doubles as the visited set.
    let mut reached = vec![false; data.len()];
    let mut stack: Vec<usize> = Vec::new();
    for k in 0..nz {
        for j in 0..ny {
            let on_border_plane = k == 0 || k + 1 == nz || j == 0 || j + 1 == ny;
            let row = nx * (j + ny * k);
            for i in 0..nx {
                if on_border_plane || i == 0 || i + 1 == nx {
                    let idx = row + i;
                    if !data[idx] && !reached[idx] {
                        reached[idx] = true;
                        stack.push(idx);
                    }
                }
            }
        }
    }
    let (sy, sz) = (nx, nx * ny);
    while let Some(idx) = stack.pop() {
        let (i, j, k) = (idx % nx, (idx / nx) % ny, idx / sz);
        let mut visit = |n: usize| {
            if !data[n] && !reached[n] {
                reached[n] = true;
                stack.push(n);
            }
        };
        if i > 0 {
            visit(idx - 1);
        }
        if i + 1 < nx {
            visit(idx + 1);
        }
        if j > 0 {
            visit(idx - sy);
        }
        if j + 1 < ny {
            visit(idx + sy);
        }
        if k > 0 {
            visit(idx - sz);
        }
        if k + 1 < nz {
            visit(idx + sz);
        }
    }
    let filled: Vec<bool> = data
        .par_iter()
        .zip(reached.par_iter())
        .map(|(&m, &r)| m || !r)
        .collect();
    mask.with_data(w.paste(&filled, grid, false))
}

fn squared_radius(radius_mm: f64) -> Result<f64> {
    if !radius_mm.is_finite() || radius_mm < 0.0 {
        return Err(VoxelError::InvalidArgument(format!(
            "radius {radius_mm} mm must be finite and non-negative"
        )));
    }
    Ok(radius_mm * radius_mm * (1.0 + RADIUS_TOLERANCE))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::distance::tests::{fixture, fixture_mask};
    use crate::geometry::Geometry;
    use crate::volume::Volume;

    fn assert_same(got: &Mask, want: &Mask, what: &str) {
        let diff = got
            .data()
            .iter()
            .zip(want.data())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(diff, 0, "{what}: {diff} voxels differ from scipy");
    }

    #[test]
    fn matches_scipy_with_a_ball_in_mm() {
        let fx = fixture();
        let r = fx["radius_mm"].as_f64().unwrap();
        let blob = fixture_mask(&fx, "blob");
        assert_same(
            &dilate(&blob, r).unwrap(),
            &fixture_mask(&fx, "dilate_blob"),
            "dilate",
        );
        assert_same(
            &erode(&blob, r).unwrap(),
            &fixture_mask(&fx, "erode_blob"),
            "erode",
        );
        assert_same(
            &open(&blob, r).unwrap(),
            &fixture_mask(&fx, "open_blob"),
            "open",
        );
        assert_same(
            &close(&blob, r).unwrap(),
            &fixture_mask(&fx, "close_blob"),
            "close",
        );
        let dense = fixture_mask(&fx, "dense");
        assert_same(
            &fill_holes(&dense).unwrap(),
            &fixture_mask(&fx, "fill_holes_dense"),
            "fill_holes",
        );
    }

    /// `m` placed at voxel `offset` of a larger background grid with the same spacing.
    pub(crate) fn embed(m: &Mask, offset: [usize; 3], extra: [usize; 3]) -> Mask {
        let s = m.shape();
        let shape = [s[0] + extra[0], s[1] + extra[1], s[2] + extra[2]];
        let g = Geometry::from_spacing(shape, m.geometry().spacing_mm(), [0.0; 3]).unwrap();
        let mut data = vec![false; g.num_voxels()];
        for idx in 0..m.data().len() {
            let [i, j, k] = m.geometry().coords(idx);
            data[g.index(i + offset[0], j + offset[1], k + offset[2])] = m.data()[idx];
        }
        Volume::new(g, data).unwrap()
    }

    /// The part of `big` at `offset` with the shape of `small`, and whether anything is set
    /// outside that part.
    fn crop_like(big: &Mask, small: &Mask, offset: [usize; 3]) -> (Mask, bool) {
        let mut inside = vec![false; big.data().len()];
        let data = (0..small.data().len())
            .map(|idx| {
                let [i, j, k] = small.geometry().coords(idx);
                let b = big
                    .geometry()
                    .index(i + offset[0], j + offset[1], k + offset[2]);
                inside[b] = true;
                big.data()[b]
            })
            .collect();
        let outside = big.data().iter().zip(&inside).any(|(&v, &ins)| v && !ins);
        (
            Volume::new(small.geometry().clone(), data).unwrap(),
            outside,
        )
    }

    #[test]
    fn small_masks_in_large_grids_give_the_same_answers() {
        // The operations work on a window around the mask; embedding the fixture in a larger
        // empty grid moves that window off the grid's corner and must not change anything.
        let fx = fixture();
        let r = fx["radius_mm"].as_f64().unwrap();
        let (offset, extra) = ([5, 3, 2], [9, 7, 5]);
        let blob = fixture_mask(&fx, "blob");
        let big = embed(&blob, offset, extra);
        let cases: [(&str, Mask, bool); 4] = [
            ("erode_blob", erode(&big, r).unwrap(), false),
            ("open_blob", open(&big, r).unwrap(), false),
            ("close_blob", close(&big, r).unwrap(), false),
            ("dilate_blob", dilate(&big, r).unwrap(), true),
        ];
        for (key, got, spills) in cases {
            let (crop, outside) = crop_like(&got, &blob, offset);
            assert_same(&crop, &fixture_mask(&fx, key), key);
            assert_eq!(outside, spills, "{key}");
        }
        let dense = fixture_mask(&fx, "dense");
        let filled = fill_holes(&embed(&dense, offset, extra)).unwrap();
        let (crop, outside) = crop_like(&filled, &dense, offset);
        assert_same(&crop, &fixture_mask(&fx, "fill_holes_dense"), "fill_holes");
        assert!(!outside);
    }

    #[test]
    fn radius_is_in_mm_not_voxels() {
        // One voxel in the middle of a 0.5 × 1 × 2 mm grid dilated by 1 mm reaches two voxels
        // along x, one along y and none along z.
        let g = Geometry::from_spacing([9, 9, 9], [0.5, 1.0, 2.0], [0.0; 3]).unwrap();
        let mut m = Volume::filled(g.clone(), false).into_data();
        m[g.index(4, 4, 4)] = true;
        let m = Volume::new(g, m).unwrap();
        let d = dilate(&m, 1.0).unwrap();
        assert!(d.at(6, 4, 4) && !d.at(7, 4, 4));
        assert!(d.at(4, 5, 4) && !d.at(4, 6, 4));
        assert!(!d.at(4, 4, 5));
        // Offset (1, 1, 0) is 1.118 mm away: outside.
        assert!(!d.at(5, 5, 4));
        assert_eq!(d.count(), 1 + 4 + 2);
        assert_eq!(dilate(&m, 0.0).unwrap(), m);
    }

    #[test]
    fn border_conventions_and_closing_is_extensive() {
        let g = Geometry::from_spacing([6, 6, 6], [1.0; 3], [0.0; 3]).unwrap();
        let full = Volume::filled(g.clone(), true);
        // Erosion by 1 mm strips the outer layer: the outside is background.
        assert_eq!(erode(&full, 1.0).unwrap().count(), 4 * 4 * 4);
        // Closing keeps every voxel, even on the border, and bridges a one-voxel gap.
        let mut bars = vec![false; g.num_voxels()];
        for k in 0..6 {
            for j in 0..6 {
                for i in [0, 1, 3, 4] {
                    bars[g.index(i, j, k)] = true;
                }
            }
        }
        let bars = Volume::new(g, bars).unwrap();
        let closed = close(&bars, 1.0).unwrap();
        assert!(bars
            .data()
            .iter()
            .zip(closed.data())
            .all(|(&b, &c)| !b || c));
        assert!(closed.at(2, 3, 3) && !closed.at(5, 3, 3));
        assert!(dilate(&bars, -1.0).is_err());
        assert!(erode(&bars, f64::NAN).is_err());
    }
}
