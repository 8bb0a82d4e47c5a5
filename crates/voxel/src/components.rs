//! Connected components of a mask, by run-length union-find.
//!
//! Each row (fixed j, k) is run-length encoded in parallel; runs in the current row are merged
//! with overlapping runs of the already-visited neighbouring rows through a union-find whose
//! root is always the smallest run index, so a component's root is its first run in storage
//! order. Work is proportional to the number of runs, not voxels, which keeps 256³ masks well
//! under a second.

use crate::error::{Result, VoxelError};
use crate::volume::{LabelMap, Mask};
use rayon::prelude::*;

/// Which neighbours touch: faces only, or faces, edges and corners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Connectivity {
    /// 6-connectivity: voxels sharing a face.
    Six,
    /// 26-connectivity: voxels sharing a face, an edge or a corner.
    TwentySix,
}

/// A minimum component size, in voxels or in millilitres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinSize {
    /// At least this many voxels.
    Voxels(usize),
    /// At least this volume in mL (voxel count × voxel volume).
    Ml(f64),
}

/// A labelling of a mask's connected components.
#[derive(Clone, Debug)]
pub struct Components {
    /// 0 for background, 1..=n for the components, numbered by decreasing size, ties broken by
    /// the first voxel in storage order (x fastest).
    pub labels: LabelMap,
    /// Voxel count of each component: `sizes_voxels[c - 1]` for label `c`, so non-increasing.
    pub sizes_voxels: Vec<usize>,
}

impl Components {
    /// Number of components.
    pub fn count(&self) -> usize {
        self.sizes_voxels.len()
    }
}

/// Labels the connected components of `mask`. Fails with [`VoxelError::TooLarge`] only if
/// there are more components than an `i32` label can number.
pub fn label_components(mask: &Mask, connectivity: Connectivity) -> Result<Components> {
    let cc = RunComponents::new(mask, connectivity);
    if cc.sizes.len() > i32::MAX as usize {
        return Err(VoxelError::TooLarge(format!(
            "{} components do not fit an i32 label map",
            cc.sizes.len()
        )));
    }
    // Rank components by decreasing size; the sort is stable and components are numbered in
    // order of first voxel, so ties keep that order.
    let mut order: Vec<usize> = (0..cc.sizes.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(cc.sizes[c]));
    let mut rank = vec![0i32; order.len()];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r as i32 + 1;
    }
    let sizes_voxels = order.iter().map(|&c| cc.sizes[c]).collect();
    let labels = cc.paint(mask, |c| rank[c], 0i32)?;
    Ok(Components {
        labels,
        sizes_voxels,
    })
}

/// The largest connected component of `mask` (ties: the one whose first voxel comes first in
/// storage order). An empty mask gives an empty mask, since there is nothing to keep.
pub fn largest_component(mask: &Mask, connectivity: Connectivity) -> Result<Mask> {
    let cc = RunComponents::new(mask, connectivity);
    // `max_by_key` returns the last maximum; search in reverse so ties go to the first.
    let best = (0..cc.sizes.len()).rev().max_by_key(|&c| cc.sizes[c]);
    match best {
        Some(best) => cc.paint(mask, |c| c == best, false),
        None => Ok(mask.clone()),
    }
}

/// Number of connected components of `mask`, counting only those of at least `min_size` when
/// given. Fails on a negative or non-finite size in mL.
pub fn count_components(
    mask: &Mask,
    connectivity: Connectivity,
    min_size: Option<MinSize>,
) -> Result<usize> {
    let cc = RunComponents::new(mask, connectivity);
    let voxel_ml = mask.geometry().voxel_volume_ml();
    let keep = |size: usize| -> Result<bool> {
        Ok(match min_size {
            None => true,
            Some(MinSize::Voxels(n)) => size >= n,
            Some(MinSize::Ml(ml)) => {
                if !ml.is_finite() || ml < 0.0 {
                    return Err(VoxelError::InvalidArgument(format!(
                        "minimum component size {ml} mL must be finite and non-negative"
                    )));
                }
                size as f64 * voxel_ml >= ml
            }
        })
    };
    keep(0)?;
    let mut n = 0;
    for &s in &cc.sizes {
        if keep(s)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Run-length encoding of a mask plus the component of every run.
struct RunComponents {
    /// Half-open `[start, end)` voxel ranges along x.
    runs: Vec<(u32, u32)>,
    /// Runs of row `r = j + ny·k` are `runs[row_start[r]..row_start[r + 1]]`.
    row_start: Vec<usize>,
    /// Component of each run, numbered 0.. in order of first voxel.
    run_component: Vec<usize>,
    /// Voxel count per component.
    sizes: Vec<usize>,
}

impl RunComponents {
    fn new(mask: &Mask, connectivity: Connectivity) -> RunComponents {
        let [nx, ny, _] = mask.shape();
        let (runs, row_start) = encode_runs(mask.data(), nx);
        let n_rows = row_start.len() - 1;

        // Union-find over runs; the root of a set is its smallest run index, which also makes
        // `parent[r] <= r` an invariant used to resolve roots in one forward pass below.
        let mut parent: Vec<usize> = (0..runs.len()).collect();
        // Already-visited neighbour rows as (dj, dk) offsets.
        let neighbours: &[(isize, isize)] = match connectivity {
            Connectivity::Six => &[(-1, 0), (0, -1)],
            Connectivity::TwentySix => &[(-1, 0), (-1, -1), (0, -1), (1, -1)],
        };
        // Runs touch when they overlap (6) or overlap after growing by one voxel (26).
        let reach = u32::from(connectivity == Connectivity::TwentySix);
        for r in 0..n_rows {
            let (cur_lo, cur_hi) = (row_start[r], row_start[r + 1]);
            if cur_lo == cur_hi {
                continue;
            }
            let (j, k) = ((r % ny) as isize, (r / ny) as isize);
            for &(dj, dk) in neighbours {
                let (nj, nk) = (j + dj, k + dk);
                if nj < 0 || nk < 0 || nj >= ny as isize {
                    continue;
                }
                let nr = nj as usize + ny * nk as usize;
                let (mut a, a_end) = (cur_lo, cur_hi);
                let (mut b, b_end) = (row_start[nr], row_start[nr + 1]);
                while a < a_end && b < b_end {
                    let (s1, e1) = runs[a];
                    let (s2, e2) = runs[b];
                    if s1 < e2 + reach && s2 < e1 + reach {
                        union(&mut parent, a, b);
                    }
                    // Advance whichever run ends first; it cannot touch later runs of the other.
                    if e1 < e2 {
                        a += 1;
                    } else {
                        b += 1;
                    }
                }
            }
        }

        let mut run_component = vec![0usize; runs.len()];
        let mut sizes = Vec::new();
        for r in 0..runs.len() {
            let p = parent[r];
            let c = if p == r {
                sizes.push(0);
                sizes.len() - 1
            } else {
                // `p < r`, so its component is already resolved (its root is our root).
                run_component[p]
            };
            run_component[r] = c;
            sizes[c] += (runs[r].1 - runs[r].0) as usize;
        }
        RunComponents {
            runs,
            row_start,
            run_component,
            sizes,
        }
    }

    /// A volume on the mask's grid with `value(component)` on every run and `background`
    /// elsewhere.
    fn paint<T: Copy + Send + Sync>(
        &self,
        mask: &Mask,
        value: impl Fn(usize) -> T + Sync,
        background: T,
    ) -> Result<crate::volume::Volume<T>> {
        let nx = mask.shape()[0];
        let mut out = vec![background; mask.data().len()];
        out.par_chunks_mut(nx).enumerate().for_each(|(r, row)| {
            for run in self.row_start[r]..self.row_start[r + 1] {
                let (s, e) = self.runs[run];
                row[s as usize..e as usize].fill(value(self.run_component[run]));
            }
        });
        mask.with_data(out)
    }
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        // Path halving keeps trees shallow without recursion.
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra < rb {
        parent[rb] = ra;
    } else if rb < ra {
        parent[ra] = rb;
    }
}

/// Run-length encodes every row (in parallel over rows), returning the runs in storage order
/// and the index of each row's first run (with a final sentinel).
fn encode_runs(data: &[bool], nx: usize) -> (Vec<(u32, u32)>, Vec<usize>) {
    let per_row: Vec<Vec<(u32, u32)>> = data
        .par_chunks(nx)
        .map(|row| {
            let mut runs = Vec::new();
            let mut i = 0;
            while i < nx {
                if row[i] {
                    let s = i;
                    while i < nx && row[i] {
                        i += 1;
                    }
                    runs.push((s as u32, i as u32));
                } else {
                    i += 1;
                }
            }
            runs
        })
        .collect();
    let mut row_start = Vec::with_capacity(per_row.len() + 1);
    let mut total = 0;
    for r in &per_row {
        row_start.push(total);
        total += r.len();
    }
    row_start.push(total);
    let mut runs = Vec::with_capacity(total);
    for r in per_row {
        runs.extend(r);
    }
    (runs, row_start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::tests::{fixture, fixture_mask};
    use crate::geometry::Geometry;
    use crate::volume::Volume;
    use std::collections::HashMap;

    fn usizes(fx: &serde_json::Value, key: &str) -> Vec<usize> {
        serde_json::from_value(fx[key].clone()).unwrap()
    }

    /// Our labels and scipy's describe the same partition when the label pairs are a
    /// one-to-one correspondence.
    fn same_partition(ours: &[i32], theirs: &[usize]) -> bool {
        let mut fwd = HashMap::new();
        let mut back = HashMap::new();
        ours.iter().zip(theirs).all(|(&a, &b)| {
            (a == 0) == (b == 0)
                && *fwd.entry(a).or_insert(b) == b
                && *back.entry(b).or_insert(a) == a
        })
    }

    #[test]
    fn matches_scipy_label() {
        let fx = fixture();
        let speckle = fixture_mask(&fx, "speckle");
        for (conn, suffix) in [(Connectivity::Six, "6"), (Connectivity::TwentySix, "26")] {
            let cc = label_components(&speckle, conn).unwrap();
            assert_eq!(
                cc.count(),
                fx[format!("speckle_count{suffix}")].as_u64().unwrap() as usize
            );
            assert_eq!(
                cc.sizes_voxels,
                usizes(&fx, &format!("speckle_sizes{suffix}"))
            );
            let theirs = usizes(&fx, &format!("speckle_labels{suffix}"));
            assert!(same_partition(cc.labels.data(), &theirs), "{conn:?}");
            assert_eq!(count_components(&speckle, conn, None).unwrap(), cc.count());
        }
        let blob = fixture_mask(&fx, "blob");
        let cc = label_components(&blob, Connectivity::TwentySix).unwrap();
        assert_eq!(cc.sizes_voxels, usizes(&fx, "blob_sizes26"));
    }

    #[test]
    fn labels_are_ordered_by_size_then_first_voxel_and_sizes_add_up() {
        let g = Geometry::from_spacing([8, 3, 3], [1.0; 3], [0.0; 3]).unwrap();
        let mut m = vec![false; g.num_voxels()];
        // Three 6-components: sizes 1 (first), 3, 1, in storage order; the last touches the
        // second at a corner.
        m[g.index(0, 0, 0)] = true;
        for i in 2..5 {
            m[g.index(i, 1, 1)] = true;
        }
        m[g.index(5, 2, 2)] = true;
        let m = Volume::new(g, m).unwrap();
        let cc = label_components(&m, Connectivity::Six).unwrap();
        assert_eq!(cc.sizes_voxels, vec![3, 1, 1]);
        assert_eq!(cc.labels.at(3, 1, 1), 1);
        assert_eq!(cc.labels.at(0, 0, 0), 2);
        assert_eq!(cc.labels.at(5, 2, 2), 3);
        assert_eq!(cc.labels.at(1, 0, 0), 0);
        // The corner contact joins under 26-connectivity only; (0,0,0) is two voxels from
        // (2,1,1) along x and stays apart.
        assert_eq!(
            count_components(&m, Connectivity::TwentySix, None).unwrap(),
            2
        );
        let largest = largest_component(&m, Connectivity::Six).unwrap();
        assert_eq!(largest.count(), 3);
        // Minimum sizes in voxels and in mL (1 mm³ voxels: 0.002 mL is two voxels).
        let six = Connectivity::Six;
        assert_eq!(
            count_components(&m, six, Some(MinSize::Voxels(2))).unwrap(),
            1
        );
        assert_eq!(
            count_components(&m, six, Some(MinSize::Ml(0.002))).unwrap(),
            1
        );
        assert_eq!(
            count_components(&m, six, Some(MinSize::Ml(0.001))).unwrap(),
            3
        );
        assert!(count_components(&m, six, Some(MinSize::Ml(-1.0))).is_err());
    }

    #[test]
    fn ties_go_to_the_first_voxel_and_empty_masks_are_empty() {
        let g = Geometry::from_spacing([5, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
        let m = Volume::new(g.clone(), vec![false, true, false, true, false]).unwrap();
        let largest = largest_component(&m, Connectivity::TwentySix).unwrap();
        assert_eq!(largest.data(), &[false, true, false, false, false]);
        let empty = Volume::filled(g, false);
        assert!(largest_component(&empty, Connectivity::Six)
            .unwrap()
            .is_empty());
        assert_eq!(
            label_components(&empty, Connectivity::Six).unwrap().count(),
            0
        );
    }
}
