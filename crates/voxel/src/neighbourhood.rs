//! Voxel neighbourhoods on a grid: the six face neighbours and balls of a radius in mm, as
//! offsets in voxels, for code that visits the voxels around one voxel (morphology works on
//! whole masks through distance transforms instead).

use crate::geometry::Geometry;

/// Relative slack on a squared radius, so that voxels at exactly the radius count as inside
/// despite rounding (the one tolerance of balls in mm, here and in [`crate::morphology`]).
pub const RADIUS_TOLERANCE: f64 = 1e-5;

/// The six face-neighbour offsets, axis by axis, the minus side first.
pub const FACE_OFFSETS: [[i64; 3]; 6] = [
    [-1, 0, 0],
    [1, 0, 0],
    [0, -1, 0],
    [0, 1, 0],
    [0, 0, -1],
    [0, 0, 1],
];

/// The offsets (voxels) of the ball of `radius_mm` around a voxel of a grid of `spacing_mm`,
/// the last axis outermost; with [`RADIUS_TOLERANCE`]. An empty list for a negative or
/// non-finite radius.
///
/// ```
/// let ball = voxel::neighbourhood::ball_offsets([1.0, 1.0, 2.0], 2.0);
/// // 13 offsets in the centre slice (i² + j² ≤ 4) and one in each 2 mm neighbour slice.
/// assert_eq!(ball.len(), 13 + 2);
/// ```
pub fn ball_offsets(spacing_mm: [f64; 3], radius_mm: f64) -> Vec<[i64; 3]> {
    if !radius_mm.is_finite() || radius_mm < 0.0 {
        return Vec::new();
    }
    let r2 = radius_mm * radius_mm * (1.0 + RADIUS_TOLERANCE);
    let r: [i64; 3] = std::array::from_fn(|a| (radius_mm / spacing_mm[a]).ceil() as i64);
    let mut out = Vec::new();
    for dk in -r[2]..=r[2] {
        for dj in -r[1]..=r[1] {
            for di in -r[0]..=r[0] {
                let d2 = (di as f64 * spacing_mm[0]).powi(2)
                    + (dj as f64 * spacing_mm[1]).powi(2)
                    + (dk as f64 * spacing_mm[2]).powi(2);
                if d2 <= r2 {
                    out.push([di, dj, dk]);
                }
            }
        }
    }
    out
}

/// The index of the voxel at `offset` from the voxel at `coords` in grid `g`, or `None` when it
/// is outside the grid.
pub fn offset_index(g: &Geometry, coords: [usize; 3], offset: [i64; 3]) -> Option<usize> {
    let n = g.shape();
    let q: [usize; 3] = std::array::from_fn(|a| {
        let v = coords[a] as i64 + offset[a];
        if v >= 0 && v < n[a] as i64 {
            v as usize
        } else {
            usize::MAX
        }
    });
    q.iter()
        .all(|&v| v != usize::MAX)
        .then(|| g.index(q[0], q[1], q[2]))
}

/// The indices of the face neighbours of voxel `idx` inside the grid, in [`FACE_OFFSETS`]
/// order.
pub fn face_neighbours(g: &Geometry, idx: usize) -> impl Iterator<Item = usize> + '_ {
    let c = g.coords(idx);
    FACE_OFFSETS
        .iter()
        .filter_map(move |&o| offset_index(g, c, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balls_are_in_mm_and_keep_voxels_on_the_sphere() {
        // 3 mm radius on 1 mm voxels: the lattice points with i²+j²+k² ≤ 9 (123 of them).
        let b = ball_offsets([1.0; 3], 3.0);
        assert_eq!(b.len(), 123);
        assert!(b.contains(&[3, 0, 0]) && b.contains(&[2, 2, 1]) && !b.contains(&[2, 2, 2]));
        // Anisotropic: 4 mm slices reach only the centre slice at a 3 mm radius.
        assert!(ball_offsets([1.0, 1.0, 4.0], 3.0).iter().all(|o| o[2] == 0));
        assert!(ball_offsets([1.0; 3], -1.0).is_empty());
        assert_eq!(ball_offsets([1.0; 3], 0.0), vec![[0, 0, 0]]);
    }

    #[test]
    fn neighbours_stay_inside_the_grid() {
        let g = Geometry::from_spacing([3, 3, 3], [1.0; 3], [0.0; 3]).unwrap();
        assert_eq!(face_neighbours(&g, g.index(1, 1, 1)).count(), 6);
        let corner: Vec<usize> = face_neighbours(&g, 0).collect();
        assert_eq!(
            corner,
            vec![g.index(1, 0, 0), g.index(0, 1, 0), g.index(0, 0, 1)]
        );
        assert_eq!(offset_index(&g, [2, 2, 2], [1, 0, 0]), None);
        assert_eq!(
            offset_index(&g, [2, 2, 2], [-2, 0, 0]),
            Some(g.index(0, 2, 2))
        );
    }
}
