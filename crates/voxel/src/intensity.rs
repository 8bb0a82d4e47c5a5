//! Intensity statistics and normalisation: percentiles (numpy's default linear rule),
//! histograms (numpy's binning), clamping, and robust rescaling to [0, 1] between percentiles.
//!
//! The numeric kernels take `&[f32]` so they work on any voxel subset; images pass
//! `image.data()`. Non-finite values (NaN, ±∞) are ignored by the statistics.

use crate::error::{Result, VoxelError};
use crate::volume::Image;
use rayon::prelude::*;

/// The `q`-th percentile (0–100) of the finite values, interpolated linearly between the two
/// nearest ranks like `numpy.percentile`'s default. Fails when there is no finite value.
pub fn percentile(values: &[f32], q: f64) -> Result<f32> {
    Ok(percentiles(values, &[q])?[0])
}

/// Several percentiles (each 0–100) of the finite values at once, in the order asked; see
/// [`percentile`]. Uses selection, so it costs O(n) per percentile rather than a full sort.
pub fn percentiles(values: &[f32], qs: &[f64]) -> Result<Vec<f32>> {
    if let Some(q) = qs.iter().find(|q| !(0.0..=100.0).contains(*q)) {
        return Err(VoxelError::InvalidArgument(format!(
            "percentile {q} is outside 0–100"
        )));
    }
    let mut v: Vec<f32> = values
        .par_iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return Err(VoxelError::InvalidArgument(
            "percentile of no finite values is undefined".into(),
        ));
    }
    let n = v.len();
    Ok(qs
        .iter()
        .map(|&q| {
            let h = q / 100.0 * (n - 1) as f64;
            let k = (h.floor() as usize).min(n - 1);
            let t = h - k as f64;
            let (_, &mut lower, rest) = v.select_nth_unstable_by(k, f32::total_cmp);
            if t == 0.0 || rest.is_empty() {
                return lower;
            }
            let upper = rest.iter().copied().fold(f32::INFINITY, f32::min);
            numpy_lerp(lower as f64, upper as f64, t) as f32
        })
        .collect())
}

/// numpy's linear interpolation between neighbouring order statistics `a` and `b`: from the
/// nearer end, so `t = 1` returns `b` exactly.
fn numpy_lerp(a: f64, b: f64, t: f64) -> f64 {
    if t < 0.5 {
        a + (b - a) * t
    } else {
        b - (b - a) * (1.0 - t)
    }
}

/// The `q`-th percentile (0–100) of non-empty ascending `sorted` values by the rule of
/// [`percentiles`], for callers that sorted once for several statistics.
pub(crate) fn percentile_of_sorted(sorted: &[f32], q: f64) -> f64 {
    let h = q / 100.0 * (sorted.len() - 1) as f64;
    let k = (h.floor() as usize).min(sorted.len() - 1);
    let hi = (k + 1).min(sorted.len() - 1);
    numpy_lerp(sorted[k] as f64, sorted[hi] as f64, h - k as f64)
}

/// Which voxels the normalisation percentiles are computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalizeOptions {
    /// Percentile (0–100) mapped to 0.
    pub low_percentile: f64,
    /// Percentile (0–100) mapped to 1; must exceed `low_percentile`.
    pub high_percentile: f64,
    /// Compute the percentiles over non-zero voxels only (background excluded), not all voxels.
    pub nonzero_only: bool,
}

impl Default for NormalizeOptions {
    /// 0.5th and 99.5th percentiles of the non-zero voxels.
    fn default() -> Self {
        NormalizeOptions {
            low_percentile: 0.5,
            high_percentile: 99.5,
            nonzero_only: true,
        }
    }
}

/// Rescales an image to [0, 1]: the low percentile maps to 0, the high to 1, values beyond are
/// clipped. An image with no spread between the percentiles (constant, or nothing non-zero) maps
/// to all zeros; NaN voxels become 0. The geometry is unchanged.
pub fn normalize_percentile(image: &Image, options: &NormalizeOptions) -> Result<Image> {
    let (lo_q, hi_q) = (options.low_percentile, options.high_percentile);
    if !(0.0..=100.0).contains(&lo_q) || !(0.0..=100.0).contains(&hi_q) || lo_q >= hi_q {
        return Err(VoxelError::InvalidArgument(format!(
            "normalisation percentiles {lo_q} and {hi_q} must satisfy 0 ≤ low < high ≤ 100"
        )));
    }
    let sample: Vec<f32>;
    let values: &[f32] = if options.nonzero_only {
        sample = image
            .data()
            .par_iter()
            .copied()
            .filter(|&v| v != 0.0)
            .collect();
        &sample
    } else {
        image.data()
    };
    let bounds = match percentiles(values, &[lo_q, hi_q]) {
        Ok(p) if p[1] > p[0] => Some((p[0] as f64, p[1] as f64)),
        // Nothing finite (or nothing non-zero) to measure, or no spread: no contrast to keep.
        _ => None,
    };
    Ok(match bounds {
        None => image.map(|_| 0.0),
        Some((lo, hi)) => {
            let scale = 1.0 / (hi - lo);
            image.map(move |v| {
                let x = ((v as f64 - lo) * scale).clamp(0.0, 1.0);
                if x.is_nan() {
                    0.0
                } else {
                    x as f32
                }
            })
        }
    })
}

/// Limits every voxel to `[low, high]` (NaN voxels stay NaN).
pub fn clamp(image: &Image, low: f32, high: f32) -> Result<Image> {
    if low.is_nan() || high.is_nan() || low > high {
        return Err(VoxelError::InvalidArgument(format!(
            "clamp range [{low}, {high}] is empty or not a number"
        )));
    }
    Ok(image.map(move |v| v.clamp(low, high)))
}

/// Counts of values in equal-width bins over `[low, high]`; the last bin includes `high`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub low: f64,
    /// Right edge of the last bin.
    pub high: f64,
    /// Number of values in each bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// The `bins + 1` bin edges, as `numpy.linspace(low, high, bins + 1)`.
    pub fn edges(&self) -> Vec<f64> {
        edges(self.low, self.high, self.counts.len())
    }

    /// Width of each bin.
    pub fn bin_width(&self) -> f64 {
        (self.high - self.low) / self.counts.len() as f64
    }

    /// Number of values counted (those inside the range).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

fn edges(low: f64, high: f64, bins: usize) -> Vec<f64> {
    let step = (high - low) / bins as f64;
    let mut e: Vec<f64> = (0..=bins).map(|i| low + i as f64 * step).collect();
    e[bins] = high;
    e
}

/// Histogram of the finite values in `bins` equal bins, binned exactly as `numpy.histogram`:
/// over `range` when given (values outside are not counted), else from the smallest to the
/// largest value; an empty range `[a, a]` widens to `[a - 0.5, a + 0.5]`.
pub fn histogram(values: &[f32], bins: usize, range: Option<(f64, f64)>) -> Result<Histogram> {
    if bins == 0 {
        return Err(VoxelError::InvalidArgument(
            "a histogram needs at least one bin".into(),
        ));
    }
    let (mut low, mut high) = match range {
        Some(r) => r,
        None => values
            .par_iter()
            .filter(|v| v.is_finite())
            .map(|&v| (v as f64, v as f64))
            .reduce_with(|a, b| (a.0.min(b.0), a.1.max(b.1)))
            .unwrap_or((0.0, 1.0)),
    };
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(VoxelError::InvalidArgument(format!(
            "histogram range [{low}, {high}] must be finite and ordered"
        )));
    }
    if low == high {
        low -= 0.5;
        high += 0.5;
    }
    let e = edges(low, high, bins);
    let norm = bins as f64 / (high - low);
    let counts = values
        .par_chunks(1 << 16)
        .fold(
            || vec![0u64; bins],
            |mut c, chunk| {
                for &v in chunk {
                    let x = v as f64;
                    // Also skips NaN.
                    if !(x >= low && x <= high) {
                        continue;
                    }
                    // numpy's rule: estimate from the scaled offset, then fix rounding against the
                    // actual edges.
                    let mut i = (((x - low) * norm) as usize).min(bins - 1);
                    if x < e[i] {
                        i -= 1;
                    } else if i + 1 < bins && x >= e[i + 1] {
                        i += 1;
                    }
                    c[i] += 1;
                }
                c
            },
        )
        .reduce_with(|mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
            a
        })
        .unwrap_or_else(|| vec![0; bins]);
    Ok(Histogram { low, high, counts })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geometry::Geometry;
    use serde_json::Value;

    /// The numpy/scipy reference values shared by the intensity and resampling tests.
    pub(crate) const FIXTURE: &str = include_str!("../tests/fixtures/numeric_reference.json");

    /// A JSON array of numbers.
    pub(crate) fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn image(data: Vec<f32>) -> Image {
        let g = Geometry::from_spacing([data.len(), 1, 1], [1.0; 3], [0.0; 3]).unwrap();
        Image::new(g, data).unwrap()
    }

    #[test]
    fn percentiles_match_numpy() {
        let fx: Value = serde_json::from_str(FIXTURE).unwrap();
        let p = &fx["percentile"];
        let values: Vec<f32> = floats(&p["values"]).iter().map(|&v| v as f32).collect();
        let qs = floats(&p["q"]);
        let got = percentiles(&values, &qs).unwrap();
        for ((q, g), w) in qs.iter().zip(&got).zip(floats(&p["expected"])) {
            assert!((*g as f64 - w).abs() < 1e-4, "q {q}: {g} vs numpy {w}");
            assert!((percentile(&values, *q).unwrap() as f64 - w).abs() < 1e-4);
        }
    }

    #[test]
    fn percentile_edge_cases() {
        assert_eq!(percentile(&[3.0], 42.0).unwrap(), 3.0);
        assert_eq!(percentile(&[4.0, 1.0, 2.0, 3.0], 50.0).unwrap(), 2.5);
        assert_eq!(
            percentile(&[f32::NAN, 1.0, 3.0, f32::INFINITY], 100.0).unwrap(),
            3.0
        );
        assert!(percentile(&[], 50.0).is_err());
        assert!(percentile(&[f32::NAN], 50.0).is_err());
        assert!(percentile(&[1.0], 100.5).is_err());
        assert!(percentile(&[1.0], f64::NAN).is_err());
    }

    #[test]
    fn histograms_match_numpy() {
        let fx: Value = serde_json::from_str(FIXTURE).unwrap();
        let h = &fx["histogram"];
        let values: Vec<f32> = floats(&h["values"]).iter().map(|&v| v as f32).collect();
        let counts = |v: &Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect()
        };
        let ranged = histogram(&values, 7, Some((10.0, 90.0))).unwrap();
        assert_eq!(ranged.counts, counts(&h["counts"]));
        assert_eq!(ranged.edges(), floats(&h["edges"]));
        let auto = histogram(&values, 5, None).unwrap();
        assert_eq!(auto.counts, counts(&h["auto_counts"]));
        for (a, b) in auto.edges().iter().zip(floats(&h["auto_edges"])) {
            assert!((a - b).abs() < 1e-9);
        }
        assert_eq!(auto.total(), values.len() as u64);
    }

    #[test]
    fn histogram_edges_nan_and_degenerate_ranges() {
        let h = histogram(
            &[0.0, 0.5, 1.0, 1.0, 2.0, f32::NAN, -0.1],
            2,
            Some((0.0, 1.0)),
        )
        .unwrap();
        // The right edge belongs to the last bin; 2.0, -0.1 and NaN are not counted.
        assert_eq!(h.counts, vec![1, 3]);
        assert_eq!(h.bin_width(), 0.5);
        let c = histogram(&[5.0, 5.0], 4, None).unwrap();
        assert_eq!((c.low, c.high), (4.5, 5.5));
        assert_eq!(c.counts, vec![0, 0, 2, 0]);
        assert!(histogram(&[1.0], 0, None).is_err());
        assert!(histogram(&[1.0], 3, Some((2.0, 1.0))).is_err());
        assert!(histogram(&[1.0], 3, Some((0.0, f64::INFINITY))).is_err());
    }

    #[test]
    fn normalisation_maps_percentiles_to_zero_and_one() {
        // 0, 1, …, 1000: the 0th/100th percentiles of all voxels give exactly v / 1000.
        let img = image((0..=1000).map(|v| v as f32).collect());
        let all = NormalizeOptions {
            low_percentile: 0.0,
            high_percentile: 100.0,
            nonzero_only: false,
        };
        let n = normalize_percentile(&img, &all).unwrap();
        for (i, &v) in n.data().iter().enumerate() {
            assert!((v - i as f32 / 1000.0).abs() < 1e-6);
        }
        assert_eq!(n.geometry(), img.geometry());
        // Non-zero voxels only: 1..=1000, percentiles 10 and 90 are 100.9 and 900.1.
        let robust = NormalizeOptions {
            low_percentile: 10.0,
            high_percentile: 90.0,
            nonzero_only: true,
        };
        let r = normalize_percentile(&img, &robust).unwrap();
        assert_eq!(r.data()[0], 0.0);
        assert_eq!(r.data()[100], 0.0);
        assert!(
            (r.data()[500] - (500.0 - 100.9) / 799.2).abs() < 1e-6,
            "{}",
            r.data()[500]
        );
        assert_eq!(r.data()[1000], 1.0);
        assert!(r.data().iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn normalisation_of_degenerate_images_is_all_zeros() {
        let opts = NormalizeOptions::default();
        for data in [
            vec![7.0f32; 10],
            vec![0.0; 10],
            vec![f32::NAN; 3],
            vec![0.0, 0.0, 4.0],
        ] {
            let n = normalize_percentile(&image(data.clone()), &opts).unwrap();
            assert!(
                n.data().iter().all(|&v| v == 0.0),
                "{data:?} → {:?}",
                n.data()
            );
        }
        let with_nan = normalize_percentile(&image(vec![1.0, f32::NAN, 3.0]), &opts).unwrap();
        assert_eq!(with_nan.data()[1], 0.0);
        let bad = NormalizeOptions {
            low_percentile: 60.0,
            high_percentile: 40.0,
            nonzero_only: false,
        };
        assert!(normalize_percentile(&image(vec![1.0]), &bad).is_err());
    }

    #[test]
    fn clamp_limits_values() {
        let c = clamp(&image(vec![-2.0, 0.5, 9.0, f32::NAN]), 0.0, 1.0).unwrap();
        assert_eq!(&c.data()[..3], &[0.0, 0.5, 1.0]);
        assert!(c.data()[3].is_nan());
        assert!(clamp(&image(vec![1.0]), 1.0, 0.0).is_err());
        assert!(clamp(&image(vec![1.0]), f32::NAN, 0.0).is_err());
    }
}
