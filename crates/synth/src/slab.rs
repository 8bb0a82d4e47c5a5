//! Through-slice partial volume for native anisotropic grids (e.g. 1×1×5 mm). Sampling labels
//! at slice centres would make a structure thinner than the slice spacing vanish or appear at
//! full contrast depending on where it falls; a real thick slice integrates everything within
//! its slab. A session on such a grid is therefore synthesised on a finer grid that splits each
//! thick voxel into an odd number of sub-slices, and reduced afterwards: images average their
//! sub-slices (a box slice profile), label maps keep the centre sub-slice (the structure at the
//! slice centre, as before).

use crate::error::{Result, SynthError};
use voxel::{Geometry, Volume};

/// Most sub-slices per thick voxel along one axis.
pub const MAX_SUBSLICES: usize = 7;

/// Sub-slices per voxel along each axis of a grid with `spacing_mm`: 1 on the finest axis and on
/// axes less than 1.5× coarser than it, otherwise the odd count nearest to the ratio (at least
/// 3, at most [`MAX_SUBSLICES`]), so sub-slices are about as thin as the in-plane voxels and one
/// of them sits exactly at the slice centre.
pub fn subslices(spacing_mm: [f64; 3]) -> [usize; 3] {
    let finest = spacing_mm.iter().copied().fold(f64::INFINITY, f64::min);
    spacing_mm.map(|s| {
        let ratio = s / finest;
        // NaN (a zero or non-finite spacing) also gives 1; the grid constructor rejects it.
        if ratio.is_nan() || ratio < 1.5 {
            return 1;
        }
        let odd = 2.0 * ((ratio - 1.0) / 2.0).round() + 1.0;
        (odd.max(3.0) as usize).min(MAX_SUBSLICES)
    })
}

/// The fine grid of `coarse` with `k[a]` sub-slices per voxel along axis `a`: same extent, the
/// sub-slices of coarse voxel `i` are fine voxels `k·i .. k·i + k`, and the middle one is centred
/// on the coarse voxel.
pub fn fine_grid(coarse: &Geometry, k: [usize; 3]) -> Result<Geometry> {
    let affine = coarse.affine();
    let mut fine = affine.0;
    for a in 0..3 {
        let half = (k[a] as f64 - 1.0) / 2.0;
        for (r, row) in fine.iter_mut().enumerate().take(3) {
            row[a] = affine.0[r][a] / k[a] as f64;
            // Fine voxel 0 sits `half` fine steps before coarse voxel 0.
            row[3] -= half * row[a];
        }
    }
    let shape = [0, 1, 2].map(|a| coarse.shape()[a] * k[a]);
    Ok(Geometry::new(shape, voxel::Affine(fine))?)
}

fn check(fine: &Geometry, coarse: &Geometry, k: [usize; 3]) -> Result<()> {
    let want = [0, 1, 2].map(|a| coarse.shape()[a] * k[a]);
    if fine.shape() != want {
        return Err(SynthError::InvalidArgument(format!(
            "fine grid {:?} is not {:?} sub-slices of {:?}",
            fine.shape(),
            k,
            coarse.shape()
        )));
    }
    Ok(())
}

/// The centre sub-slice of every coarse voxel (for label maps).
pub fn centre<T: Copy + Send + Sync>(
    fine: &Volume<T>,
    coarse: &Geometry,
    k: [usize; 3],
) -> Result<Volume<T>> {
    let fg = fine.geometry();
    check(fg, coarse, k)?;
    let [nx, ny, nz] = coarse.shape();
    let [fx, fy, _] = fg.shape();
    let h = k.map(|k| k / 2);
    let src = fine.data();
    let mut out = Vec::with_capacity(coarse.num_voxels());
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let (i, j, l) = (k[0] * x + h[0], k[1] * y + h[1], k[2] * z + h[2]);
                out.push(src[i + fx * (j + fy * l)]);
            }
        }
    }
    Ok(Volume::new(coarse.clone(), out)?)
}

/// The coarse index of every fine voxel that is the centre sub-slice of its coarse voxel.
pub fn centre_index(fine_index: usize, fine: &Geometry, k: [usize; 3]) -> Option<usize> {
    let [fx, fy, _] = fine.shape();
    let c = [
        fine_index % fx,
        (fine_index / fx) % fy,
        fine_index / (fx * fy),
    ];
    if (0..3).any(|a| c[a] % k[a] != k[a] / 2) {
        return None;
    }
    let [nx, ny] = [fx / k[0], fy / k[1]];
    Some(c[0] / k[0] + nx * (c[1] / k[1] + ny * (c[2] / k[2])))
}

/// The mean of the sub-slices of every coarse voxel (for images: a box slice profile).
pub fn average(fine: &Volume<f32>, coarse: &Geometry, k: [usize; 3]) -> Result<Volume<f32>> {
    let fg = fine.geometry();
    check(fg, coarse, k)?;
    let [nx, ny, _] = coarse.shape();
    let [fx, fy, _] = fg.shape();
    let src = fine.data();
    let mut sum = vec![0f64; coarse.num_voxels()];
    for (f, &v) in src.iter().enumerate() {
        let (i, j, l) = (f % fx, (f / fx) % fy, f / (fx * fy));
        sum[i / k[0] + nx * (j / k[1] + ny * (l / k[2]))] += v as f64;
    }
    let n = (k[0] * k[1] * k[2]) as f64;
    let out = sum.into_iter().map(|s| (s / n) as f32).collect();
    Ok(Volume::new(coarse.clone(), out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subslice_counts_are_odd_and_only_on_thick_axes() {
        assert_eq!(subslices([2.0; 3]), [1, 1, 1]);
        assert_eq!(subslices([1.0, 1.0, 5.0]), [1, 1, 5]);
        assert_eq!(subslices([3.0, 3.0, 6.0]), [1, 1, 3]);
        assert_eq!(subslices([1.0, 1.0, 1.4]), [1, 1, 1]);
        assert_eq!(subslices([0.5, 0.5, 7.0]), [1, 1, 7]);
        assert_eq!(subslices([4.0, 1.0, 1.0]), [5, 1, 1]);
    }

    #[test]
    fn fine_grid_centres_the_middle_subslice_on_the_coarse_voxel() {
        let coarse = Geometry::from_spacing([4, 5, 6], [1.0, 1.0, 5.0], [-3.0, 2.0, 10.0]).unwrap();
        let k = [1, 1, 5];
        let fine = fine_grid(&coarse, k).unwrap();
        assert_eq!(fine.shape(), [4, 5, 30]);
        assert!((fine.spacing_mm()[2] - 1.0).abs() < 1e-12);
        for z in 0..6 {
            let c = coarse.affine().apply([1.0, 2.0, z as f64]);
            let f = fine.affine().apply([1.0, 2.0, (5 * z + 2) as f64]);
            for a in 0..3 {
                assert!((c[a] - f[a]).abs() < 1e-9, "{c:?} vs {f:?}");
            }
        }
        // The slab of coarse voxel 0 spans exactly its 5 mm.
        let first = fine.affine().apply([0.0, 0.0, 0.0])[2];
        assert!((first - (10.0 - 2.0)).abs() < 1e-9);
    }

    #[test]
    fn average_and_centre_reduce_a_known_pattern() {
        let coarse = Geometry::from_spacing([2, 1, 2], [1.0, 1.0, 3.0], [0.0; 3]).unwrap();
        let k = [1, 1, 3];
        let fine = fine_grid(&coarse, k).unwrap();
        // Fine z index as value.
        let data: Vec<f32> = (0..fine.num_voxels()).map(|i| (i / 2) as f32).collect();
        let v = Volume::new(fine.clone(), data).unwrap();
        let avg = average(&v, &coarse, k).unwrap();
        assert_eq!(avg.data(), &[1.0, 1.0, 4.0, 4.0]);
        let mid = centre(&v, &coarse, k).unwrap();
        assert_eq!(mid.data(), &[1.0, 1.0, 4.0, 4.0]);
        let thin: Vec<f32> = (0..fine.num_voxels())
            .map(|i| if i / 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let thin = Volume::new(fine.clone(), thin).unwrap();
        // A structure one sub-slice thick shows at a third of its contrast, and not at the centre.
        assert_eq!(average(&thin, &coarse, k).unwrap().data()[0], 1.0 / 3.0);
        assert_eq!(centre(&thin, &coarse, k).unwrap().data()[0], 0.0);
        assert_eq!(centre_index(3, &fine, k), Some(1));
        assert_eq!(centre_index(8, &fine, k), Some(2));
        assert_eq!(centre_index(0, &fine, k), None);
    }
}
