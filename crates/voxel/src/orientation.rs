//! Anatomical orientation codes ("RAS", "LIA", …) and the lossless axis permutations and flips
//! between them (6 permutations × 8 flips = 48 codes).

use crate::affine::Affine;
use crate::error::{Result, VoxelError};
use std::fmt;

/// For each voxel axis, the world axis (0 = L→R, 1 = P→A, 2 = I→S) it runs along most closely
/// and whether it runs in the positive direction. Display gives the familiar code, e.g. `"LIA"`:
/// the direction each voxel axis *increases towards*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Orientation {
    /// `axes[voxel_axis] = (world_axis, increases_towards_positive_world)`.
    pub axes: [(usize, bool); 3],
}

const LETTERS: [[char; 2]; 3] = [['L', 'R'], ['P', 'A'], ['I', 'S']];

impl Orientation {
    /// Canonical RAS+ orientation.
    pub const RAS: Orientation = Orientation {
        axes: [(0, true), (1, true), (2, true)],
    };

    /// Parses a three-letter code such as `"RAS"` or `"lia"`.
    pub fn parse(code: &str) -> Result<Orientation> {
        let chars: Vec<char> = code
            .trim()
            .chars()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bad = || {
            VoxelError::InvalidArgument(format!(
                "orientation code {code:?} must be three letters, one from each of L/R, P/A, I/S"
            ))
        };
        if chars.len() != 3 {
            return Err(bad());
        }
        let mut axes = [(0usize, true); 3];
        let mut seen = [false; 3];
        for (v, ch) in chars.iter().enumerate() {
            let (w, pos) = LETTERS
                .iter()
                .enumerate()
                .find_map(|(w, pair)| pair.iter().position(|c| c == ch).map(|p| (w, p == 1)))
                .ok_or_else(bad)?;
            if seen[w] {
                return Err(bad());
            }
            seen[w] = true;
            axes[v] = (w, pos);
        }
        Ok(Orientation { axes })
    }

    /// All 48 orientation codes.
    pub fn all() -> Vec<Orientation> {
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let mut out = Vec::with_capacity(48);
        for p in perms {
            for flips in 0..8u8 {
                let mut axes = [(0, true); 3];
                for v in 0..3 {
                    axes[v] = (p[v], flips & (1 << v) == 0);
                }
                out.push(Orientation { axes });
            }
        }
        out
    }

    /// The orientation of an affine, computed as nibabel's `io_orientation`/`aff2axcodes`: the
    /// closest orthogonal matrix to the normalised linear part, then for each voxel axis in turn
    /// the world axis of largest component not yet taken.
    pub fn from_affine(affine: &Affine) -> Orientation {
        let mut rs = affine.linear();
        let zooms = affine.column_norms();
        for row in rs.iter_mut() {
            for (c, v) in row.iter_mut().enumerate() {
                if zooms[c] > 0.0 {
                    *v /= zooms[c];
                }
            }
        }
        let mut r = polar_orthogonal(rs);
        let mut axes = [(0usize, true); 3];
        for (v, axis) in axes.iter_mut().enumerate() {
            let mut best = 0;
            for w in 1..3 {
                if r[w][v].abs() > r[best][v].abs() {
                    best = w;
                }
            }
            *axis = (best, r[best][v] >= 0.0);
            r[best] = [0.0; 3];
        }
        Orientation { axes }
    }

    /// The voxel axis that runs along world axis `world`.
    pub fn voxel_axis_of(&self, world: usize) -> usize {
        self.axes
            .iter()
            .position(|&(w, _)| w == world)
            .unwrap_or(world)
    }
}

impl fmt::Display for Orientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &(w, pos) in &self.axes {
            write!(f, "{}", LETTERS[w][pos as usize])?;
        }
        Ok(())
    }
}

/// Orthogonal polar factor of a 3×3 matrix by Newton iteration `X ← (X + X⁻ᵀ)/2`; equal to
/// `U·Vᵀ` of its SVD, which is what nibabel uses. A singular input is returned unchanged.
pub(crate) fn polar_orthogonal(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut x = m;
    for _ in 0..100 {
        let a = Affine::from_linear_translation(x, [0.0; 3]);
        let Some(inv) = a.inverse() else { return m };
        let il = inv.linear();
        let mut next = [[0.0; 3]; 3];
        let mut change: f64 = 0.0;
        for r in 0..3 {
            for c in 0..3 {
                next[r][c] = 0.5 * (x[r][c] + il[c][r]);
                change = change.max((next[r][c] - x[r][c]).abs());
            }
        }
        x = next;
        if change < 1e-15 {
            break;
        }
    }
    x
}

/// How to turn data of one orientation into another by permuting and flipping axes: output
/// axis `t` reads input axis `source_axis[t]`, reversed when `flip[t]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisTransform {
    /// Input voxel axis read by each output axis.
    pub source_axis: [usize; 3],
    /// Whether each output axis runs opposite to its input axis.
    pub flip: [bool; 3],
}

impl AxisTransform {
    /// The transform taking data in orientation `from` to orientation `to`.
    pub fn between(from: Orientation, to: Orientation) -> AxisTransform {
        let mut source_axis = [0; 3];
        let mut flip = [false; 3];
        for t in 0..3 {
            let (w, pos) = to.axes[t];
            let s = from.voxel_axis_of(w);
            source_axis[t] = s;
            flip[t] = from.axes[s].1 != pos;
        }
        AxisTransform { source_axis, flip }
    }

    /// Output shape for an input shape.
    pub fn output_shape(&self, shape: [usize; 3]) -> [usize; 3] {
        [
            shape[self.source_axis[0]],
            shape[self.source_axis[1]],
            shape[self.source_axis[2]],
        ]
    }

    /// The affine taking output voxel indices to input voxel indices (integer entries, so the
    /// composed voxel→world affine is exact).
    pub fn output_to_input(&self, input_shape: [usize; 3]) -> Affine {
        let mut m = [[0.0; 4]; 4];
        m[3][3] = 1.0;
        for t in 0..3 {
            let s = self.source_axis[t];
            if self.flip[t] {
                m[s][t] = -1.0;
                m[s][3] = input_shape[s] as f64 - 1.0;
            } else {
                m[s][t] = 1.0;
            }
        }
        Affine(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip_all_48() {
        let all = Orientation::all();
        assert_eq!(all.len(), 48);
        let mut codes: Vec<String> = all.iter().map(|o| o.to_string()).collect();
        for (o, c) in all.iter().zip(&codes) {
            assert_eq!(Orientation::parse(c).unwrap(), *o);
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 48);
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in ["RA", "RRS", "XYZ", "RASP", "LRA"] {
            assert!(Orientation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn freesurfer_conformed_is_lia() {
        // FreeSurfer's conformed space: x→L, y→I, z→A.
        let a = Affine([
            [-1.0, 0.0, 0.0, 128.0],
            [0.0, 0.0, 1.0, -128.0],
            [0.0, -1.0, 0.0, 128.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        assert_eq!(Orientation::from_affine(&a).to_string(), "LIA");
    }

    #[test]
    fn oblique_affine_picks_closest_axes() {
        let t: f64 = 30f64.to_radians();
        let a = Affine([
            [t.cos(), -t.sin(), 0.0, 0.0],
            [t.sin(), t.cos(), 0.0, 0.0],
            [0.0, 0.0, 2.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        assert_eq!(Orientation::from_affine(&a).to_string(), "RAS");
    }
}
