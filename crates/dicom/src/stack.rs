//! Slice stacking, as dcm2niix does it: pure numbers, no DICOM types. Slices are sorted by
//! ImagePositionPatient projected on the slice normal (row × column direction cosines), the
//! slice step comes from the positions (never SliceThickness), and the LPS grid becomes a RAS
//! affine. Irregular stacks (gantry tilt, missing slices, non-uniform spacing, duplicate
//! positions) are refused with the numbers, never resampled silently.

use voxel::Affine;

/// Largest angle between the slice normal and the direction the slices advance along before a
/// stack counts as gantry-tilted (degrees). Real untilted series agree to ~1e-3°.
pub const MAX_TILT_DEG: f64 = 0.05;

/// Positions may deviate from the regular grid by this much (mm) plus [`SPACING_REL_TOL`]
/// of the slice step: DICOM decimal strings carry about 1e-4 mm.
pub const POSITION_TOL_MM: f64 = 1e-3;

/// Relative tolerance on the slice step.
pub const SPACING_REL_TOL: f64 = 5e-3;

/// In-plane geometry shared by every slice of a stack (LPS, as DICOM stores it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plane {
    /// ImageOrientationPatient: direction of increasing column index, then of increasing row
    /// index (unit vectors, LPS).
    pub orientation: [f64; 6],
    /// PixelSpacing: distance between rows, then between columns (mm).
    pub pixel_spacing: [f64; 2],
}

impl Plane {
    /// Row direction (along a row: increasing column index).
    pub fn row_dir(&self) -> [f64; 3] {
        [
            self.orientation[0],
            self.orientation[1],
            self.orientation[2],
        ]
    }

    /// Column direction (down a column: increasing row index).
    pub fn col_dir(&self) -> [f64; 3] {
        [
            self.orientation[3],
            self.orientation[4],
            self.orientation[5],
        ]
    }

    /// Slice normal, row × column direction.
    pub fn normal(&self) -> [f64; 3] {
        cross(self.row_dir(), self.col_dir())
    }
}

/// A regular stack: the order to take slices in and the voxel→world RAS affine.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack {
    /// `order[k]` is the index (into the positions given) of output slice `k`.
    pub order: Vec<usize>,
    /// Voxel (column, row, slice) → RAS mm.
    pub affine: Affine,
    /// Distance between slices along the normal (mm).
    pub slice_spacing_mm: f64,
}

/// Sorts `positions` (ImagePositionPatient of each slice, LPS) along the normal of `plane` and
/// checks they form one regular grid. `single_slice_mm` is the slice size used when there is
/// one slice (SpacingBetweenSlices or SliceThickness). Errors are sentences with the numbers.
pub fn stack(plane: &Plane, positions: &[[f64; 3]], single_slice_mm: f64) -> Result<Stack, String> {
    let r = plane.row_dir();
    let c = plane.col_dir();
    if (norm(r) - 1.0).abs() > 1e-2 || (norm(c) - 1.0).abs() > 1e-2 || dot(r, c).abs() > 1e-2 {
        return Err(format!(
            "ImageOrientationPatient {:?} is not two orthogonal unit vectors",
            plane.orientation
        ));
    }
    let [dr, dc] = plane.pixel_spacing;
    if !(dr > 0.0 && dc > 0.0 && dr.is_finite() && dc.is_finite()) {
        return Err(format!(
            "PixelSpacing {:?} must be positive",
            plane.pixel_spacing
        ));
    }
    // Orthonormalise: scanners round cosines to ~6 digits.
    let r = scale(r, 1.0 / norm(r));
    let n = {
        let n = cross(r, c);
        scale(n, 1.0 / norm(n))
    };
    let c = cross(n, r);
    let mut order: Vec<usize> = (0..positions.len()).collect();
    let dist: Vec<f64> = positions.iter().map(|&p| dot(p, n)).collect();
    order.sort_by(|&a, &b| dist[a].total_cmp(&dist[b]));
    let first = positions[order[0]];
    let count = positions.len();
    let step = if count == 1 {
        if !(single_slice_mm > 0.0 && single_slice_mm.is_finite()) {
            return Err(format!(
                "slice thickness {single_slice_mm} mm must be positive"
            ));
        }
        scale(n, single_slice_mm)
    } else {
        let d: Vec<f64> = order.iter().map(|&i| dist[i]).collect();
        let gaps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
        let span = d[count - 1] - d[0];
        let mean = span / (count - 1) as f64;
        let tol = POSITION_TOL_MM + SPACING_REL_TOL * mean;
        let duplicates = gaps.iter().filter(|&&g| g <= tol).count();
        if duplicates > 0 {
            return Err(format!(
                "{duplicates} of {count} images repeat a slice position: a 4-D series (several \
                 echoes, phases or time points) or duplicated files; not one 3-D volume"
            ));
        }
        let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
        let max_gap = gaps.iter().copied().fold(0.0, f64::max);
        if max_gap - min_gap > POSITION_TOL_MM + SPACING_REL_TOL * min_gap {
            let tol_min = POSITION_TOL_MM + SPACING_REL_TOL * min_gap;
            let multiples: Vec<f64> = gaps.iter().map(|g| (g / min_gap).round()).collect();
            let on_grid = gaps
                .iter()
                .zip(&multiples)
                .all(|(g, m)| (g - m * min_gap).abs() <= tol_min * m);
            if on_grid {
                let missing: f64 = multiples.iter().map(|m| m - 1.0).sum();
                let at: Vec<String> = gaps
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| multiples[*i] > 1.0)
                    .map(|(i, g)| format!("{g:.3} mm after slice {} at {:.3} mm", i + 1, d[i]))
                    .collect();
                return Err(format!(
                    "{missing} missing slice(s): the step is {min_gap:.3} mm but there is a gap of {}",
                    at.join(", ")
                ));
            }
            return Err(format!(
                "non-uniform slice spacing: steps between {min_gap:.3} and {max_gap:.3} mm \
                 (positions along the normal {}); refusing rather than resampling",
                d.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let last = positions[order[count - 1]];
        let v = scale(sub(last, first), 1.0 / (count - 1) as f64);
        let cos = (dot(v, n) / norm(v)).clamp(-1.0, 1.0);
        let angle = cos.acos().to_degrees();
        if angle > MAX_TILT_DEG {
            return Err(format!(
                "gantry tilt: slices advance {angle:.2}° away from the slice normal (CT gantry \
                 tilt or sheared acquisition); refusing rather than writing a sheared grid"
            ));
        }
        for (k, &i) in order.iter().enumerate() {
            let expected = add(first, scale(v, k as f64));
            let off = norm(sub(positions[i], expected));
            if off > tol {
                return Err(format!(
                    "slice {} is {off:.3} mm off the line through the first and last slices",
                    k + 1
                ));
            }
        }
        v
    };
    let lps = [
        [r[0] * dc, c[0] * dr, step[0], first[0]],
        [r[1] * dc, c[1] * dr, step[1], first[1]],
        [r[2] * dc, c[2] * dr, step[2], first[2]],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let ras = Affine([lps[0].map(|x| -x), lps[1].map(|x| -x), lps[2], lps[3]]);
    // `-0.0` from the flip would print oddly; it is the same number.
    let ras = Affine(ras.0.map(|row| row.map(|x| if x == 0.0 { 0.0 } else { x })));
    Ok(Stack {
        order,
        affine: ras,
        slice_spacing_mm: norm(step),
    })
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    a.map(|x| x * s)
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: Plane = Plane {
        orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        pixel_spacing: [0.5, 0.8],
    };

    fn z_positions(zs: &[f64]) -> Vec<[f64; 3]> {
        zs.iter().map(|&z| [10.0, 20.0, z]).collect()
    }

    #[test]
    fn axial_stack_sorts_by_position_and_flips_lps_to_ras() {
        let s = stack(&AXIAL, &z_positions(&[4.0, 0.0, 2.0]), 1.0).unwrap();
        assert_eq!(s.order, vec![1, 2, 0]);
        assert_eq!(s.slice_spacing_mm, 2.0);
        // Column i runs along +x LPS (= -x RAS) at 0.8 mm; row j along +y LPS at 0.5 mm.
        assert_eq!(s.affine.0[0], [-0.8, 0.0, 0.0, -10.0]);
        assert_eq!(s.affine.0[1], [0.0, -0.5, 0.0, -20.0]);
        assert_eq!(s.affine.0[2], [0.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn missing_tilt_uneven_and_duplicates_are_refused() {
        let e = stack(&AXIAL, &z_positions(&[0.0, 2.0, 6.0, 8.0]), 1.0).unwrap_err();
        assert!(e.contains("1 missing slice"), "{e}");
        let e = stack(&AXIAL, &z_positions(&[0.0, 2.0, 4.5, 6.5]), 1.0).unwrap_err();
        assert!(e.contains("non-uniform"), "{e}");
        let e = stack(&AXIAL, &z_positions(&[0.0, 2.0, 2.0, 4.0]), 1.0).unwrap_err();
        assert!(e.contains("repeat a slice position"), "{e}");
        let tilted: Vec<[f64; 3]> = (0..4)
            .map(|k| [0.0, 0.5 * k as f64, 2.0 * k as f64])
            .collect();
        let e = stack(&AXIAL, &tilted, 1.0).unwrap_err();
        assert!(e.contains("gantry tilt"), "{e}");
    }

    #[test]
    fn single_slice_uses_the_given_thickness_along_the_normal() {
        let s = stack(&AXIAL, &z_positions(&[3.0]), 1.5).unwrap();
        assert_eq!(s.affine.0[2], [0.0, 0.0, 1.5, 3.0]);
    }
}
