//! The grid a volume lives on: shape plus voxel→world affine. Immutable; every operation that
//! changes the grid builds a new `Geometry`.

use crate::affine::Affine;
use crate::error::{Result, VoxelError};
use crate::orientation::Orientation;
use serde::{Deserialize, Serialize};

/// Shape (i, j, k voxels) and voxel→world RAS+ affine (mm) of a 3-D grid. Voxel centres are at
/// integer indices; index `(i, j, k)` is stored at `i + nx·(j + ny·k)` (x fastest, as NIfTI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    shape: [usize; 3],
    affine: Affine,
}

/// Anatomical plane a slice stack is acquired in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plane {
    /// Slices stacked along S-I.
    Axial,
    /// Slices stacked along A-P.
    Coronal,
    /// Slices stacked along L-R.
    Sagittal,
}

impl Geometry {
    /// A grid of `shape` voxels mapped to world space by `affine`. Fails on a zero-size shape or
    /// a singular or non-finite affine.
    pub fn new(shape: [usize; 3], affine: Affine) -> Result<Geometry> {
        if shape.contains(&0) {
            return Err(VoxelError::InvalidGeometry(format!(
                "zero-size shape {shape:?}"
            )));
        }
        if shape
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
            .is_none()
        {
            return Err(VoxelError::InvalidGeometry(format!(
                "shape {shape:?} overflows"
            )));
        }
        if !affine.is_finite() {
            return Err(VoxelError::InvalidGeometry(
                "affine has non-finite entries".into(),
            ));
        }
        if affine.inverse().is_none() {
            return Err(VoxelError::InvalidGeometry("affine is singular".into()));
        }
        let bottom = affine.0[3];
        if bottom != [0.0, 0.0, 0.0, 1.0] {
            return Err(VoxelError::InvalidGeometry(format!(
                "affine bottom row is {bottom:?}, expected [0, 0, 0, 1]"
            )));
        }
        Ok(Geometry { shape, affine })
    }

    /// An axis-aligned RAS grid with the given spacing, whose voxel 0 sits at `origin_mm`.
    pub fn from_spacing(
        shape: [usize; 3],
        spacing_mm: [f64; 3],
        origin_mm: [f64; 3],
    ) -> Result<Geometry> {
        if spacing_mm.iter().any(|&s| !s.is_finite() || s <= 0.0) {
            return Err(VoxelError::InvalidGeometry(format!(
                "spacing {spacing_mm:?} mm must be positive and finite"
            )));
        }
        Geometry::new(shape, Affine::from_spacing_origin(spacing_mm, origin_mm))
    }

    /// Number of voxels along i, j, k.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Voxel→world affine (RAS+, mm).
    pub fn affine(&self) -> &Affine {
        &self.affine
    }

    /// Total voxel count.
    pub fn num_voxels(&self) -> usize {
        self.shape[0] * self.shape[1] * self.shape[2]
    }

    /// Voxel size along each voxel axis in mm (column norms of the affine).
    pub fn spacing_mm(&self) -> [f64; 3] {
        self.affine.column_norms()
    }

    /// Volume of one voxel in mm³ (|det| of the linear part; exact for sheared grids too).
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.affine.determinant().abs()
    }

    /// Volume of one voxel in mL (1 mL = 1 000 mm³): the one conversion every volume in mL
    /// goes through.
    pub fn voxel_volume_ml(&self) -> f64 {
        self.voxel_volume_mm3() / 1000.0
    }

    /// Orientation code of the grid, e.g. `"RAS"`, `"LIA"`.
    pub fn orientation(&self) -> Orientation {
        Orientation::from_affine(&self.affine)
    }

    /// The voxel axis slices are stacked along: the axis of largest spacing when it is at least
    /// 10% larger than the others, otherwise the axis closest to world S-I.
    pub fn slice_axis(&self) -> usize {
        let s = self.spacing_mm();
        let (imax, &smax) =
            s.iter().enumerate().fold(
                (0, &s[0]),
                |best, cur| if cur.1 > best.1 { cur } else { best },
            );
        let others_max = (0..3)
            .filter(|&a| a != imax)
            .map(|a| s[a])
            .fold(0.0, f64::max);
        if smax > 1.1 * others_max {
            imax
        } else {
            self.orientation().voxel_axis_of(2)
        }
    }

    /// The anatomical plane of the slices (see [`Geometry::slice_axis`]).
    pub fn slice_plane(&self) -> Plane {
        match self.orientation().axes[self.slice_axis()].0 {
            0 => Plane::Sagittal,
            1 => Plane::Coronal,
            _ => Plane::Axial,
        }
    }

    /// Linear index of voxel `(i, j, k)`.
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.shape[0] * (j + self.shape[1] * k)
    }

    /// Voxel `(i, j, k)` of a linear index.
    #[inline]
    pub fn coords(&self, index: usize) -> [usize; 3] {
        let i = index % self.shape[0];
        let r = index / self.shape[0];
        [i, r % self.shape[1], r / self.shape[1]]
    }

    /// World position (mm) of a voxel coordinate (may be fractional).
    pub fn voxel_to_world(&self, ijk: [f64; 3]) -> [f64; 3] {
        self.affine.apply(ijk)
    }

    /// Voxel coordinate of a world position (mm).
    pub fn world_to_voxel(&self, xyz: [f64; 3]) -> [f64; 3] {
        // `new` guarantees invertibility.
        match self.affine.inverse() {
            Some(inv) => inv.apply(xyz),
            None => [f64::NAN; 3],
        }
    }

    /// World position of the centre of the grid.
    pub fn center_world(&self) -> [f64; 3] {
        self.voxel_to_world([
            (self.shape[0] as f64 - 1.0) / 2.0,
            (self.shape[1] as f64 - 1.0) / 2.0,
            (self.shape[2] as f64 - 1.0) / 2.0,
        ])
    }

    /// Field of view along each voxel axis in mm.
    pub fn fov_mm(&self) -> [f64; 3] {
        let s = self.spacing_mm();
        [
            s[0] * self.shape[0] as f64,
            s[1] * self.shape[1] as f64,
            s[2] * self.shape[2] as f64,
        ]
    }

    /// True when both grids have the same shape and affines equal within `tol_mm`.
    pub fn same_grid(&self, other: &Geometry, tol_mm: f64) -> bool {
        self.shape == other.shape && self.affine.max_abs_diff(&other.affine) <= tol_mm
    }

    /// Fails with a [`VoxelError::GridMismatch`] naming both grids unless they match within
    /// 1e-3 mm.
    pub fn require_same_grid(&self, other: &Geometry, what: &str) -> Result<()> {
        if self.same_grid(other, 1e-3) {
            Ok(())
        } else {
            Err(VoxelError::GridMismatch(format!(
                "{what}: shape {:?} vs {:?}, spacing {:?} vs {:?} mm, or affines differ",
                self.shape,
                other.shape,
                self.spacing_mm(),
                other.spacing_mm()
            )))
        }
    }

    /// The sub-grid starting at voxel `start` with `shape` voxels. `start` may be negative
    /// (padding); the affine is shifted so that world positions are unchanged.
    pub fn subgrid(&self, start: [i64; 3], shape: [usize; 3]) -> Result<Geometry> {
        let mut a = self.affine;
        let origin = self
            .affine
            .apply([start[0] as f64, start[1] as f64, start[2] as f64]);
        for (r, &o) in origin.iter().enumerate() {
            a.0[r][3] = o;
        }
        Geometry::new(shape, a)
    }

    /// The same grid with another affine (used by readers and by reorientation).
    pub fn with_affine(&self, affine: Affine) -> Result<Geometry> {
        Geometry::new(self.shape, affine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_volume_and_index() {
        let g = Geometry::from_spacing([4, 5, 6], [0.7, 0.9, 3.0], [0.0; 3]).unwrap();
        assert_eq!(g.num_voxels(), 120);
        assert!((g.voxel_volume_mm3() - 0.7 * 0.9 * 3.0).abs() < 1e-12);
        assert_eq!(g.coords(g.index(3, 2, 5)), [3, 2, 5]);
        assert_eq!(g.slice_axis(), 2);
        assert_eq!(g.slice_plane(), Plane::Axial);
    }

    #[test]
    fn rejects_degenerate_grids() {
        assert!(Geometry::from_spacing([0, 5, 6], [1.0; 3], [0.0; 3]).is_err());
        assert!(Geometry::from_spacing([2, 5, 6], [1.0, 0.0, 1.0], [0.0; 3]).is_err());
        assert!(Geometry::from_spacing([2, 5, 6], [1.0, -1.0, 1.0], [0.0; 3]).is_err());
    }

    #[test]
    fn subgrid_keeps_world_positions() {
        let g = Geometry::from_spacing([10, 10, 10], [2.0, 1.0, 3.0], [5.0, 6.0, 7.0]).unwrap();
        let s = g.subgrid([2, -1, 3], [4, 4, 4]).unwrap();
        let w0 = g.voxel_to_world([3.0, 1.0, 4.0]);
        let w1 = s.voxel_to_world([1.0, 2.0, 1.0]);
        assert_eq!(w0, w1);
    }
}
