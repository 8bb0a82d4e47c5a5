//! 4×4 homogeneous voxel→world transforms in millimetres (RAS+ world, as NIfTI and nibabel).

use serde::{Deserialize, Serialize};

/// A 4×4 affine matrix, row-major, mapping voxel indices `(i, j, k, 1)` to world RAS+ mm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine(pub [[f64; 4]; 4]);

impl Affine {
    /// The identity transform (1 mm voxels, origin at voxel 0, RAS).
    pub const IDENTITY: Affine = Affine([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);

    /// An axis-aligned RAS affine with the given spacing (mm) and the world position of voxel 0.
    pub fn from_spacing_origin(spacing_mm: [f64; 3], origin_mm: [f64; 3]) -> Affine {
        let mut m = Self::IDENTITY.0;
        for a in 0..3 {
            m[a][a] = spacing_mm[a];
            m[a][3] = origin_mm[a];
        }
        Affine(m)
    }

    /// Builds an affine from a 3×3 linear part and a translation.
    pub fn from_linear_translation(linear: [[f64; 3]; 3], translation: [f64; 3]) -> Affine {
        let mut m = Self::IDENTITY.0;
        for r in 0..3 {
            m[r][..3].copy_from_slice(&linear[r]);
            m[r][3] = translation[r];
        }
        Affine(m)
    }

    /// The 3×3 linear (rotation · zoom · shear) part.
    pub fn linear(&self) -> [[f64; 3]; 3] {
        let m = &self.0;
        [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ]
    }

    /// The translation column: world position of voxel (0, 0, 0).
    pub fn translation(&self) -> [f64; 3] {
        [self.0[0][3], self.0[1][3], self.0[2][3]]
    }

    /// Matrix product `self · other` (apply `other` first).
    pub fn compose(&self, other: &Affine) -> Affine {
        let mut out = [[0.0; 4]; 4];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..4).map(|k| self.0[r][k] * other.0[k][c]).sum();
            }
        }
        Affine(out)
    }

    /// Maps a point (voxel coordinates for a voxel→world affine).
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.0;
        [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2] * p[2] + m[0][3],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2] * p[2] + m[1][3],
            m[2][0] * p[0] + m[2][1] * p[1] + m[2][2] * p[2] + m[2][3],
        ]
    }

    /// Determinant of the linear part (signed voxel volume in mm³).
    pub fn determinant(&self) -> f64 {
        det3(&self.linear())
    }

    /// The inverse transform, or `None` when the linear part is singular or not finite.
    pub fn inverse(&self) -> Option<Affine> {
        let l = self.linear();
        let det = det3(&l);
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        let mut inv = [[0.0; 3]; 3];
        for (r, row) in inv.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                // Adjugate: cofactor of (c, r).
                let (r1, r2) = others(c);
                let (c1, c2) = others(r);
                let minor = l[r1][c1] * l[r2][c2] - l[r1][c2] * l[r2][c1];
                let sign = if (r + c) % 2 == 0 { 1.0 } else { -1.0 };
                *v = sign * minor / det;
            }
        }
        let t = self.translation();
        let mut nt = [0.0; 3];
        for r in 0..3 {
            nt[r] = -(inv[r][0] * t[0] + inv[r][1] * t[1] + inv[r][2] * t[2]);
        }
        Some(Affine::from_linear_translation(inv, nt))
    }

    /// Length of each voxel axis in mm (the column norms of the linear part).
    pub fn column_norms(&self) -> [f64; 3] {
        let m = &self.0;
        let mut out = [0.0; 3];
        for (c, v) in out.iter_mut().enumerate() {
            *v = (m[0][c] * m[0][c] + m[1][c] * m[1][c] + m[2][c] * m[2][c]).sqrt();
        }
        out
    }

    /// True when every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.0.iter().flatten().all(|v| v.is_finite())
    }

    /// Largest absolute difference between two affines' entries.
    pub fn max_abs_diff(&self, other: &Affine) -> f64 {
        self.0
            .iter()
            .flatten()
            .zip(other.0.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }
}

fn others(i: usize) -> (usize, usize) {
    match i {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

pub(crate) fn det3(l: &[[f64; 3]; 3]) -> f64 {
    l[0][0] * (l[1][1] * l[2][2] - l[1][2] * l[2][1])
        - l[0][1] * (l[1][0] * l[2][2] - l[1][2] * l[2][0])
        + l[0][2] * (l[1][0] * l[2][1] - l[1][1] * l[2][0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_round_trips() {
        let a = Affine([
            [-0.9, 0.1, 0.05, 90.0],
            [0.02, 0.0, 1.1, -126.0],
            [0.1, -0.95, 0.0, 72.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let inv = a.inverse().unwrap();
        let id = a.compose(&inv);
        assert!(id.max_abs_diff(&Affine::IDENTITY) < 1e-12);
        let p = [3.0, -7.5, 11.0];
        let q = inv.apply(a.apply(p));
        for k in 0..3 {
            assert!((p[k] - q[k]).abs() < 1e-10);
        }
    }

    #[test]
    fn singular_has_no_inverse() {
        let mut a = Affine::IDENTITY;
        a.0[2][2] = 0.0;
        assert!(a.inverse().is_none());
    }
}
