//! The head's mid-sagittal plane, found by mirror symmetry: where the side gate
//! ([`crate::side_gate`]) puts left and right.
//!
//! The first estimate of session 21, the intensity centroid along the left-right axis, is
//! pulled by a bias field (MR), by the bright skull base (CT) and by a field of view that cuts
//! one side, and no single x follows a head turned by up to ±12° about each axis, as the
//! training heads are. A head is close to mirror symmetric about its mid-sagittal plane whatever
//! its intensities' scale, bias or field of view, so the plane here is the one across which the
//! scan best matches its own mirror image (normalised cross-correlation of voxels ~4 mm apart):
//! first the best plane normal to x near the centroid, then a coarse grid of slopes, then a
//! pattern search over its offset and both slopes. On 16 synthetic subjects (T1, FLAIR and CT,
//! conformed at 3 mm; `crates/train/examples/midplane_sides.rs`) the worst of six paired
//! structures had 1.0 % of its voxels on the wrong side of the plane on average (10.6 % at
//! most), against 5.3 % (18.0 %) for the centroid.

/// A plane `x = x_at_centre + slope_y·(y − y_centre) + slope_z·(z − z_centre)` of a grid, in mm
/// from the grid's first voxel along each axis (centre: the grid's centre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MidPlane {
    /// x of the plane at the grid's centre in y and z, mm.
    pub x_at_centre_mm: f64,
    /// dx/dy.
    pub slope_y: f64,
    /// dx/dz.
    pub slope_z: f64,
}

/// Values at or below this (of intensities clamped to [0, 1]) are air and left out of the
/// match: they cannot tell one plane from another.
const FOREGROUND: f32 = 0.05;

/// Spacing, mm, at least, between the voxels the match samples (every voxel of a 1 mm scan
/// would cost ~60 times more for the same plane).
const SAMPLE_MM: f64 = 4.0;

/// Largest slope searched: ±0.5 is ±27°, past any head the data engine turns (±12° of rotation
/// plus up to 5° of tilt about these axes).
const MAX_SLOPE: f64 = 0.5;

/// The coarse grid of slopes tried before the pattern search: `±COARSE_SLOPES` steps of
/// `COARSE_SLOPE_STEP` on each (±0.3, ±17°).
const COARSE_SLOPES: i32 = 3;
const COARSE_SLOPE_STEP: f64 = 0.1;

/// Steps of the pattern search, coarse to fine: (offset, mm; slope).
const SEARCH_STEPS: [(f64, f64); 4] = [(4.0, 0.08), (2.0, 0.04), (1.0, 0.02), (0.5, 0.01)];

/// Most moves at one step size.
const MOVES_PER_STEP: usize = 30;

impl MidPlane {
    /// The plane normal to x at `x_mm`.
    pub fn normal_to_x(x_mm: f64) -> MidPlane {
        MidPlane {
            x_at_centre_mm: x_mm,
            slope_y: 0.0,
            slope_z: 0.0,
        }
    }

    /// The centre in y and z, mm, of a grid of `shape` voxels of `spacing_mm` (`[x, y, z]`):
    /// where a plane's `x_at_centre_mm` is taken.
    pub fn grid_centre_mm(shape: [usize; 3], spacing_mm: [f64; 3]) -> [f64; 2] {
        [
            (shape[1].max(1) - 1) as f64 * spacing_mm[1] / 2.0,
            (shape[2].max(1) - 1) as f64 * spacing_mm[2] / 2.0,
        ]
    }

    /// x of the plane at `(y_mm, z_mm)` of a grid whose centre in y and z is `centre_mm`.
    pub fn x_at(&self, y_mm: f64, z_mm: f64, centre_mm: [f64; 2]) -> f64 {
        self.x_at_centre_mm
            + self.slope_y * (y_mm - centre_mm[0])
            + self.slope_z * (z_mm - centre_mm[1])
    }

    /// Length of the plane's normal `(1, −slope_y, −slope_z)`: an offset along x divided by it
    /// is a distance from the plane.
    pub fn normal_length(&self) -> f64 {
        (1.0 + self.slope_y.powi(2) + self.slope_z.powi(2)).sqrt()
    }

    /// Signed distance, mm, of the point `p_mm` (`[x, y, z]`) from the plane, positive where
    /// x is larger (the right on a RAS grid), on a grid whose centre in y and z is `centre_mm`.
    pub fn signed_distance_mm(&self, p_mm: [f64; 3], centre_mm: [f64; 2]) -> f64 {
        (p_mm[0] - self.x_at(p_mm[1], p_mm[2], centre_mm)) / self.normal_length()
    }

    /// The plane normal to x through the centroid along x of `values` (laid out as for
    /// [`MidPlane::estimate`], clamped to [0, 1]): session 21's midline, which the mirror match
    /// replaced; kept to measure against. A blank volume gets x = 0.
    pub fn intensity_centroid(values: &[f32], shape: [usize; 3], spacing_mm: [f64; 3]) -> MidPlane {
        let (mut mass, mut moment) = (0.0f64, 0.0f64);
        for (i, v) in values.iter().enumerate() {
            let v = f64::from(v.clamp(0.0, 1.0));
            mass += v;
            moment += v * (i % shape[0].max(1)) as f64 * spacing_mm[0];
        }
        MidPlane::normal_to_x(if mass > 0.0 { moment / mass } else { 0.0 })
    }

    /// The mid-sagittal plane of a head, `values` (`shape` = `[X, Y, Z]` with x the left-right
    /// axis, x fastest: index `(z·Y + y)·X + x`, as `voxel` images and the network's tensors
    /// `[.., Z, Y, X]` hold them; intensities normalised so that air is ~0, clamped here to
    /// [0, 1]) on voxels of `spacing_mm` (`[x, y, z]`). A blank volume gets the grid's centre.
    pub fn estimate(values: &[f32], shape: [usize; 3], spacing_mm: [f64; 3]) -> MidPlane {
        let volume = Volume {
            values,
            shape,
            spacing_mm,
        };
        let samples = volume.samples();
        let centre_x_mm = (shape[0].max(1) - 1) as f64 * spacing_mm[0] / 2.0;
        if samples.is_empty() {
            return MidPlane::normal_to_x(centre_x_mm);
        }
        // The centroid of the foreground along x starts the search for the plane normal to x
        // over a quarter of the field of view either side.
        let mass: f64 = samples.iter().map(|s| f64::from(s.value)).sum();
        let centroid = samples
            .iter()
            .map(|s| s.mm[0] * f64::from(s.value))
            .sum::<f64>()
            / mass;
        let width_mm = shape[0] as f64 * spacing_mm[0];
        let step = (spacing_mm[0] / 2.0).max(1.0);
        let reach = (width_mm / 4.0 / step).ceil() as i64;
        let mut best = (f64::NEG_INFINITY, MidPlane::normal_to_x(centroid));
        for k in -reach..=reach {
            let plane = MidPlane::normal_to_x(centroid + k as f64 * step);
            let score = volume.mirror_match(&samples, &plane);
            if score > best.0 {
                best = (score, plane);
            }
        }
        // Then the slopes on a coarse grid (the match of a turned head has local maxima near
        // slope 0 that a pattern search from there does not leave).
        let centre_plane = best.1;
        for i in -COARSE_SLOPES..=COARSE_SLOPES {
            for j in -COARSE_SLOPES..=COARSE_SLOPES {
                let plane = MidPlane {
                    slope_y: i as f64 * COARSE_SLOPE_STEP,
                    slope_z: j as f64 * COARSE_SLOPE_STEP,
                    ..centre_plane
                };
                let score = volume.mirror_match(&samples, &plane);
                if score > best.0 {
                    best = (score, plane);
                }
            }
        }
        let (mut score, mut plane) = best;
        for (offset_mm, slope) in SEARCH_STEPS {
            for _ in 0..MOVES_PER_STEP {
                let mut moved = false;
                for (d_offset, d_y, d_z) in [
                    (offset_mm, 0.0, 0.0),
                    (-offset_mm, 0.0, 0.0),
                    (0.0, slope, 0.0),
                    (0.0, -slope, 0.0),
                    (0.0, 0.0, slope),
                    (0.0, 0.0, -slope),
                ] {
                    let candidate = MidPlane {
                        x_at_centre_mm: plane.x_at_centre_mm + d_offset,
                        slope_y: (plane.slope_y + d_y).clamp(-MAX_SLOPE, MAX_SLOPE),
                        slope_z: (plane.slope_z + d_z).clamp(-MAX_SLOPE, MAX_SLOPE),
                    };
                    let s = volume.mirror_match(&samples, &candidate);
                    if s > score {
                        (score, plane, moved) = (s, candidate, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        plane
    }
}

/// A voxel the match samples: its position, mm, and value.
struct Sample {
    mm: [f64; 3],
    value: f32,
}

struct Volume<'a> {
    values: &'a [f32],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
}

impl Volume<'_> {
    fn value(&self, [x, y, z]: [usize; 3]) -> f32 {
        self.values[(z * self.shape[1] + y) * self.shape[0] + x].clamp(0.0, 1.0)
    }

    /// The foreground voxels on a lattice at least [`SAMPLE_MM`] apart.
    fn samples(&self) -> Vec<Sample> {
        let stride = self
            .spacing_mm
            .map(|s| ((SAMPLE_MM / s).ceil() as usize).max(1));
        let mut out = Vec::new();
        for x in (0..self.shape[0]).step_by(stride[0]) {
            for y in (0..self.shape[1]).step_by(stride[1]) {
                for z in (0..self.shape[2]).step_by(stride[2]) {
                    let value = self.value([x, y, z]);
                    if value > FOREGROUND {
                        out.push(Sample {
                            mm: [
                                x as f64 * self.spacing_mm[0],
                                y as f64 * self.spacing_mm[1],
                                z as f64 * self.spacing_mm[2],
                            ],
                            value,
                        });
                    }
                }
            }
        }
        out
    }

    /// Trilinear value at `mm` (0 outside the grid).
    fn at(&self, mm: [f64; 3]) -> f32 {
        let mut base = [0usize; 3];
        let mut frac = [0f64; 3];
        for a in 0..3 {
            let v = mm[a] / self.spacing_mm[a];
            let last = (self.shape[a] - 1) as f64;
            if !(v >= 0.0 && v <= last) {
                return 0.0;
            }
            let b = (v.floor() as usize).min(self.shape[a].saturating_sub(2));
            base[a] = b;
            frac[a] = v - b as f64;
        }
        let mut sum = 0.0f64;
        for corner in 0..8usize {
            let mut weight = 1.0;
            let mut index = [0usize; 3];
            for a in 0..3 {
                let upper = (corner >> a) & 1 == 1;
                weight *= if upper { frac[a] } else { 1.0 - frac[a] };
                index[a] = (base[a] + usize::from(upper)).min(self.shape[a] - 1);
            }
            if weight > 0.0 {
                sum += weight * f64::from(self.value(index));
            }
        }
        sum as f32
    }

    /// Normalised cross-correlation of the samples with the volume's values at their mirror
    /// images across `plane`.
    fn mirror_match(&self, samples: &[Sample], plane: &MidPlane) -> f64 {
        let centre = MidPlane::grid_centre_mm(self.shape, self.spacing_mm);
        // Unit normal of x − a·y − b·z = const.
        let norm = plane.normal_length();
        let n = [1.0 / norm, -plane.slope_y / norm, -plane.slope_z / norm];
        let (mut cross, mut own, mut mirrored) = (0.0f64, 0.0f64, 0.0f64);
        for s in samples {
            let distance = plane.signed_distance_mm(s.mm, centre);
            let image = [
                s.mm[0] - 2.0 * distance * n[0],
                s.mm[1] - 2.0 * distance * n[1],
                s.mm[2] - 2.0 * distance * n[2],
            ];
            let v = f64::from(s.value);
            let w = f64::from(self.at(image));
            cross += v * w;
            own += v * v;
            mirrored += w * w;
        }
        if own > 0.0 && mirrored > 0.0 {
            cross / (own * mirrored).sqrt()
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head phantom on `shape` at `spacing_mm`, mirror symmetric about `plane` and about
    /// nothing else: an ellipsoid (semi-axes 55, 75 and 62 mm) of value 0.6 in the head's own
    /// frame (across the plane, then front-back and up-down within it), two brighter "nuclei"
    /// (one each side, forward and up of the centre) and a dark "ventricle" on the plane, times
    /// `bias(x_mm)`, cut to `keep_x` voxels of x.
    fn phantom(
        shape: [usize; 3],
        spacing_mm: [f64; 3],
        plane: MidPlane,
        bias: impl Fn(f64) -> f64,
        keep_x: std::ops::Range<usize>,
    ) -> Vec<f32> {
        let centre = MidPlane::grid_centre_mm(shape, spacing_mm);
        let origin = [plane.x_at_centre_mm, centre[0], centre[1]];
        let unit = |v: [f64; 3]| {
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            v.map(|c| c / n)
        };
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        // The head's axes: the plane's normal, then y and z made orthogonal to it.
        let normal = unit([1.0, -plane.slope_y, -plane.slope_z]);
        let front = unit([
            -normal[1] * normal[0],
            1.0 - normal[1] * normal[1],
            -normal[1] * normal[2],
        ]);
        let up = [
            normal[1] * front[2] - normal[2] * front[1],
            normal[2] * front[0] - normal[0] * front[2],
            normal[0] * front[1] - normal[1] * front[0],
        ];
        let mut out = vec![0.0f32; shape[0] * shape[1] * shape[2]];
        for x in keep_x {
            for y in 0..shape[1] {
                for z in 0..shape[2] {
                    let p = [
                        x as f64 * spacing_mm[0],
                        y as f64 * spacing_mm[1],
                        z as f64 * spacing_mm[2],
                    ];
                    let d = [p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]];
                    let (across, forward, upward) = (dot(d, normal), dot(d, front), dot(d, up));
                    let r2 = (across / 55.0).powi(2)
                        + (forward / 75.0).powi(2)
                        + (upward / 62.0).powi(2);
                    let mut v = if r2 <= 1.0 { 0.6 } else { 0.0 };
                    let nucleus = ((across.abs() - 18.0) / 8.0).powi(2)
                        + ((forward - 10.0) / 12.0).powi(2)
                        + ((upward - 8.0) / 10.0).powi(2);
                    if nucleus <= 1.0 {
                        v = 0.95;
                    }
                    let ventricle = (across / 4.0).powi(2)
                        + (forward / 20.0).powi(2)
                        + ((upward - 15.0) / 12.0).powi(2);
                    if ventricle <= 1.0 {
                        v = 0.15;
                    }
                    out[(z * shape[1] + y) * shape[0] + x] = (v * bias(p[0])) as f32;
                }
            }
        }
        out
    }

    fn assert_near(got: MidPlane, want: MidPlane, mm: f64, slope: f64) {
        assert!(
            (got.x_at_centre_mm - want.x_at_centre_mm).abs() <= mm
                && (got.slope_y - want.slope_y).abs() <= slope
                && (got.slope_z - want.slope_z).abs() <= slope,
            "found {got:?}, the phantom's {want:?}"
        );
    }

    #[test]
    fn a_head_off_centre_is_found_where_it_lies() {
        let (shape, spacing) = ([64, 64, 56], [3.0; 3]);
        let plane = MidPlane::normal_to_x(82.0);
        let found = MidPlane::estimate(
            &phantom(shape, spacing, plane, |_| 1.0, 0..64),
            shape,
            spacing,
        );
        assert_near(found, plane, 1.0, 0.02);
    }

    /// A bias field rising from 0.45 to 1.55 across the head pulls the intensity centroid
    /// several mm to the right; the mirror match is not fooled by more than a voxel.
    #[test]
    fn a_bias_field_does_not_move_the_plane() {
        let (shape, spacing) = ([64, 64, 56], [3.0; 3]);
        let plane = MidPlane::normal_to_x(96.0);
        let bias = |x_mm: f64| 1.0 + 0.01 * (x_mm - 96.0);
        let values = phantom(shape, spacing, plane, bias, 0..64);
        let found = MidPlane::estimate(&values, shape, spacing);
        assert_near(found, plane, 3.0, 0.03);
        let centroid = MidPlane::intensity_centroid(&values, shape, spacing).x_at_centre_mm;
        assert!(
            (centroid - plane.x_at_centre_mm).abs() > 4.0,
            "the centroid {centroid} mm should be fooled (the test's premise)"
        );
    }

    /// A field of view that cuts 40 mm off one side of the head.
    #[test]
    fn a_head_cut_by_the_field_of_view_is_found() {
        let (shape, spacing) = ([64, 64, 56], [3.0; 3]);
        let plane = MidPlane::normal_to_x(80.0);
        let values = phantom(shape, spacing, plane, |_| 1.0, 10..64);
        let found = MidPlane::estimate(&values, shape, spacing);
        assert_near(found, plane, 1.5, 0.03);
    }

    /// A head turned 10° about the vertical axis and 8° about the front-back axis, on
    /// anisotropic voxels.
    #[test]
    fn a_turned_head_gets_a_slanted_plane() {
        let (shape, spacing) = ([80, 60, 40], [2.5, 3.0, 4.0]);
        let plane = MidPlane {
            x_at_centre_mm: 101.0,
            slope_y: 10f64.to_radians().tan(),
            slope_z: -(8f64.to_radians().tan()),
        };
        let found = MidPlane::estimate(
            &phantom(shape, spacing, plane, |_| 1.0, 0..80),
            shape,
            spacing,
        );
        assert_near(found, plane, 1.5, 0.03);
    }

    #[test]
    fn a_blank_volume_gets_the_grid_centre() {
        let found = MidPlane::estimate(&[0.0; 10 * 4 * 3], [10, 4, 3], [2.0; 3]);
        assert_eq!(found, MidPlane::normal_to_x(9.0));
    }
}
