//! The native-space schedule: voxel spacing tracked through the levels, and from it which
//! kernel axes collapse to their central slice and which axes are pooled (DESIGN.md §5).
//!
//! At each level let m be the finest spacing. An axis whose spacing exceeds `ratio · m` (ω > 2
//! in the paper) is *coarse*: convolutions use only the central slice of the 3×3×3 kernel along
//! it (a per-slice 2-D convolution for one coarse axis) and pooling leaves it alone, so its
//! spacing stays while the fine axes double, until ω ≤ ratio and the level turns fully 3-D.
//! The generator's upsampling mirrors the same factors on the way up.

use crate::error::{Result, VisionError};

/// Geometry of one resolution level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelGeometry {
    /// Voxel spacing at this level, in mm (x, y, z).
    pub spacing_mm: [f64; 3],
    /// Axes whose kernel extent collapses to the central slice (coarse axes).
    pub collapsed: [bool; 3],
    /// Pooling factor (1 or 2) per axis from this level to the next; unused at the deepest.
    pub pool: [usize; 3],
}

/// Per-level geometry for one input spacing and network depth.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeSchedule {
    levels: Vec<LevelGeometry>,
}

impl NativeSchedule {
    /// Builds the schedule for `levels` levels of an input with voxel spacing `spacing_mm`.
    ///
    /// ```
    /// let s = vision::NativeSchedule::new([1.0, 1.0, 5.0], 4, 2.0).unwrap();
    /// assert_eq!(s.level(0).collapsed, [false, false, true]); // 2-D per slice
    /// assert_eq!(s.level(2).collapsed, [false, false, false]); // 4×4×5 mm: ω ≤ 2
    /// assert_eq!(s.size_multiple(), [8, 8, 2]);
    /// ```
    pub fn new(spacing_mm: [f64; 3], levels: usize, ratio: f64) -> Result<Self> {
        if spacing_mm.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(VisionError::Spacing(spacing_mm));
        }
        let mut spacing = spacing_mm;
        let mut out = Vec::with_capacity(levels);
        for _ in 0..levels {
            let finest = spacing.iter().copied().fold(f64::INFINITY, f64::min);
            // A small tolerance keeps ω = 2.0000001 from rounding noise on the 3-D side.
            let collapsed = spacing.map(|s| s > ratio * finest * (1.0 + 1e-9));
            let pool = collapsed.map(|c| if c { 1 } else { 2 });
            out.push(LevelGeometry {
                spacing_mm: spacing,
                collapsed,
                pool,
            });
            for axis in 0..3 {
                spacing[axis] *= pool[axis] as f64;
            }
        }
        Ok(Self { levels: out })
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the schedule has no levels (never true for a validated configuration).
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Geometry of `level` (0 = full resolution). Panics past the deepest level.
    pub fn level(&self, level: usize) -> &LevelGeometry {
        &self.levels[level]
    }

    /// The multiple each spatial size is padded to so that every pooling step divides evenly.
    pub fn size_multiple(&self) -> [usize; 3] {
        let mut multiple = [1usize; 3];
        // The deepest level is never pooled.
        for geometry in self.levels.iter().take(self.levels.len().saturating_sub(1)) {
            for (m, pool) in multiple.iter_mut().zip(geometry.pool) {
                *m *= pool;
            }
        }
        multiple
    }

    /// Spatial size at `level` for a (padded) full-resolution size `shape`.
    pub fn level_shape(&self, shape: [usize; 3], level: usize) -> [usize; 3] {
        let mut size = shape;
        for geometry in self.levels.iter().take(level) {
            for (s, pool) in size.iter_mut().zip(geometry.pool) {
                *s /= pool;
            }
        }
        size
    }

    /// `shape` rounded up to [`Self::size_multiple`] on every axis.
    pub fn padded_shape(&self, shape: [usize; 3]) -> [usize; 3] {
        let multiple = self.size_multiple();
        [0, 1, 2].map(|axis| shape[axis].div_ceil(multiple[axis]) * multiple[axis])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotropic_input_is_fully_3d_and_pools_every_axis() {
        let s = NativeSchedule::new([1.0; 3], 6, 2.0).unwrap();
        for level in 0..6 {
            assert_eq!(s.level(level).collapsed, [false; 3]);
            assert_eq!(s.level(level).spacing_mm[0], (1 << level) as f64);
        }
        assert_eq!(s.size_multiple(), [32; 3]);
        assert_eq!(s.padded_shape([182, 218, 182]), [192, 224, 192]);
    }

    #[test]
    fn thick_slices_stay_until_the_ratio_drops_to_two() {
        let s = NativeSchedule::new([1.0, 1.0, 5.0], 5, 2.0).unwrap();
        let collapsed: Vec<bool> = (0..5).map(|l| s.level(l).collapsed[2]).collect();
        assert_eq!(collapsed, [true, true, false, false, false]);
        assert_eq!(s.level(2).spacing_mm, [4.0, 4.0, 5.0]);
        assert_eq!(s.level(3).spacing_mm, [8.0, 8.0, 10.0]);
        assert_eq!(s.size_multiple(), [16, 16, 4]);
        assert_eq!(s.level_shape([32, 32, 8], 3), [4, 4, 4]);
        // ω exactly 2 is 3-D, as in the paper.
        assert_eq!(
            NativeSchedule::new([1.0, 1.0, 2.0], 2, 2.0)
                .unwrap()
                .level(0)
                .collapsed,
            [false; 3]
        );
    }

    #[test]
    fn bad_spacing_is_an_error() {
        assert!(NativeSchedule::new([1.0, 0.0, 1.0], 3, 2.0).is_err());
        assert!(NativeSchedule::new([1.0, f64::NAN, 1.0], 3, 2.0).is_err());
    }
}
