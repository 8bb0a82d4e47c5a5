//! `Volume<T>`: voxel data on a [`Geometry`]. Images are `Volume<f32>`, label maps
//! `Volume<i32>`, masks `Volume<bool>`.

use crate::error::{Result, VoxelError};
use crate::geometry::Geometry;
use crate::orientation::{AxisTransform, Orientation};
use rayon::prelude::*;

/// Voxel data (x fastest) together with the grid it lives on. The geometry is fixed at
/// construction; operations return new volumes.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume<T> {
    geometry: Geometry,
    data: Vec<T>,
}

/// An intensity image.
pub type Image = Volume<f32>;
/// An integer label map (0 = background).
pub type LabelMap = Volume<i32>;
/// A binary region of interest.
pub type Mask = Volume<bool>;

impl<T: Copy + Send + Sync> Volume<T> {
    /// Wraps `data` (length = voxel count, x fastest) on `geometry`.
    pub fn new(geometry: Geometry, data: Vec<T>) -> Result<Volume<T>> {
        if data.len() != geometry.num_voxels() {
            return Err(VoxelError::InvalidArgument(format!(
                "data has {} voxels but shape {:?} needs {}",
                data.len(),
                geometry.shape(),
                geometry.num_voxels()
            )));
        }
        Ok(Volume { geometry, data })
    }

    /// A volume with every voxel set to `value`.
    pub fn filled(geometry: Geometry, value: T) -> Volume<T> {
        let n = geometry.num_voxels();
        Volume {
            geometry,
            data: vec![value; n],
        }
    }

    /// The grid.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Shape in voxels.
    pub fn shape(&self) -> [usize; 3] {
        self.geometry.shape()
    }

    /// The voxel values, x fastest.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Takes the voxel values out.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// Value at voxel `(i, j, k)`; panics when out of bounds like slice indexing.
    #[inline]
    pub fn at(&self, i: usize, j: usize, k: usize) -> T {
        self.data[self.geometry.index(i, j, k)]
    }

    /// Value at voxel `(i, j, k)` or `None` outside the grid.
    pub fn get(&self, i: i64, j: i64, k: i64) -> Option<T> {
        let s = self.shape();
        if i < 0 || j < 0 || k < 0 || i as usize >= s[0] || j as usize >= s[1] || k as usize >= s[2]
        {
            return None;
        }
        Some(self.at(i as usize, j as usize, k as usize))
    }

    /// A new volume on the same grid with `f` applied to every voxel (in parallel).
    pub fn map<U: Copy + Send + Sync>(&self, f: impl Fn(T) -> U + Sync + Send) -> Volume<U> {
        Volume {
            geometry: self.geometry.clone(),
            data: self.data.par_iter().map(|&v| f(v)).collect(),
        }
    }

    /// New data on the same grid.
    pub fn with_data<U: Copy + Send + Sync>(&self, data: Vec<U>) -> Result<Volume<U>> {
        Volume::new(self.geometry.clone(), data)
    }

    /// Combines two volumes voxel by voxel; fails unless they share a grid.
    pub fn zip_map<U: Copy + Send + Sync, R: Copy + Send + Sync>(
        &self,
        other: &Volume<U>,
        f: impl Fn(T, U) -> R + Sync + Send,
    ) -> Result<Volume<R>> {
        self.geometry
            .require_same_grid(&other.geometry, "combining two volumes")?;
        Ok(Volume {
            geometry: self.geometry.clone(),
            data: self
                .data
                .par_iter()
                .zip(other.data.par_iter())
                .map(|(&a, &b)| f(a, b))
                .collect(),
        })
    }

    /// The same voxels reordered into orientation `to` by permuting and flipping axes. Lossless:
    /// every voxel keeps its value and its world position exactly.
    pub fn reorient(&self, to: Orientation) -> Volume<T> {
        let from = self.geometry.orientation();
        let t = AxisTransform::between(from, to);
        let in_shape = self.shape();
        let out_shape = t.output_shape(in_shape);
        let affine = self.geometry.affine().compose(&t.output_to_input(in_shape));
        // Strides of the input along each output axis, and the start offset.
        let in_strides = [1usize, in_shape[0], in_shape[0] * in_shape[1]];
        let mut start: isize = 0;
        let mut step = [0isize; 3];
        for (a, step_a) in step.iter_mut().enumerate() {
            let s = t.source_axis[a];
            if t.flip[a] {
                start += ((in_shape[s] - 1) * in_strides[s]) as isize;
                *step_a = -(in_strides[s] as isize);
            } else {
                *step_a = in_strides[s] as isize;
            }
        }
        let [nx, ny, _] = out_shape;
        let data: Vec<T> = (0..out_shape[2])
            .into_par_iter()
            .flat_map_iter(|k| {
                let src = &self.data;
                (0..ny).flat_map(move |j| {
                    let base = start + k as isize * step[2] + j as isize * step[1];
                    (0..nx).map(move |i| src[(base + i as isize * step[0]) as usize])
                })
            })
            .collect();
        // The composed affine is the input affine times an integer matrix, so it stays valid.
        let geometry = Geometry::new(out_shape, affine).unwrap_or_else(|_| self.geometry.clone());
        Volume { geometry, data }
    }

    /// Reoriented to RAS+ (voxel axes increase towards Right, Anterior, Superior).
    pub fn to_ras(&self) -> Volume<T> {
        self.reorient(Orientation::RAS)
    }
}

impl Volume<i32> {
    /// Sorted distinct label values, including 0 if present.
    pub fn labels(&self) -> Vec<i32> {
        let mut seen = std::collections::BTreeSet::new();
        for &v in &self.data {
            seen.insert(v);
        }
        seen.into_iter().collect()
    }

    /// Mask of voxels equal to `label`.
    pub fn mask_of(&self, label: i32) -> Mask {
        self.map(move |v| v == label)
    }

    /// Mask of voxels whose label is any of `labels`.
    pub fn mask_of_any(&self, labels: &[i32]) -> Mask {
        // A table for the usual label range (FreeSurfer ids are below 4096): hashing every
        // voxel would cost more than the rest of most uses.
        const TABLE_LEN: usize = 4096;
        let mut table = vec![false; TABLE_LEN];
        let mut others = Vec::new();
        for &l in labels {
            match usize::try_from(l).ok().filter(|&i| i < TABLE_LEN) {
                Some(i) => table[i] = true,
                None => others.push(l),
            }
        }
        self.map(
            move |v| match usize::try_from(v).ok().and_then(|i| table.get(i)) {
                Some(&t) => t,
                None => others.contains(&v),
            },
        )
    }
}

impl Volume<bool> {
    /// Number of voxels inside the mask.
    pub fn count(&self) -> usize {
        self.data.par_iter().filter(|&&v| v).count()
    }

    /// True when no voxel is set.
    pub fn is_empty(&self) -> bool {
        !self.data.par_iter().any(|&v| v)
    }

    /// The mask as a 0/1 image.
    pub fn to_image(&self) -> Image {
        self.map(|v| if v { 1.0 } else { 0.0 })
    }
}

impl Volume<f32> {
    /// Smallest and largest finite value, or `None` when there is none.
    pub fn min_max(&self) -> Option<(f32, f32)> {
        self.data
            .par_iter()
            .filter(|v| v.is_finite())
            .fold(
                || None,
                |acc: Option<(f32, f32)>, &v| match acc {
                    None => Some((v, v)),
                    Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
                },
            )
            .reduce(
                || None,
                |a, b| match (a, b) {
                    (None, x) | (x, None) => x,
                    (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
                },
            )
    }

    /// Mask of voxels above `threshold`.
    pub fn threshold(&self, threshold: f32) -> Mask {
        self.map(move |v| v > threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affine::Affine;

    fn ramp(shape: [usize; 3], affine: Affine) -> Volume<i32> {
        let g = Geometry::new(shape, affine).unwrap();
        let n = g.num_voxels();
        Volume::new(g, (0..n as i32).collect()).unwrap()
    }

    #[test]
    fn reorient_all_48_round_trips_and_keeps_world_positions() {
        let a = Affine([
            [0.0, 0.0, -1.2, 50.0],
            [0.9, 0.0, 0.0, -20.0],
            [0.0, -3.0, 0.0, 12.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let v = ramp([3, 4, 5], a);
        let orig = v.geometry().orientation();
        for o in Orientation::all() {
            let r = v.reorient(o);
            assert_eq!(r.geometry().orientation(), o);
            // Each voxel keeps its value at the same world position.
            for idx in [0usize, 7, 33, 59] {
                let c = r.geometry().coords(idx);
                let w = r
                    .geometry()
                    .voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
                let back = v.geometry().world_to_voxel(w);
                let b = [
                    back[0].round() as usize,
                    back[1].round() as usize,
                    back[2].round() as usize,
                ];
                assert_eq!(r.data()[idx], v.at(b[0], b[1], b[2]));
            }
            let back = r.reorient(orig);
            assert_eq!(back.data(), v.data());
            assert_eq!(back.geometry().affine(), v.geometry().affine());
        }
    }
}
