//! Paired statistics for model-versus-baseline comparisons (issue 13, the paper's §5): the mean
//! difference with a Student-t 95 % confidence interval and the Wilcoxon signed-rank test, as
//! scipy computes them (`scipy.stats.wilcoxon` with `zero_method="wilcox"`, no continuity
//! correction: exact null distribution when at most [`EXACT_UP_TO`] non-zero differences and no
//! ties, the normal approximation with the tie correction otherwise).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Largest number of non-zero differences for which the exact null distribution is used.
pub const EXACT_UP_TO: usize = 50;

/// How the Wilcoxon p-value was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WilcoxonMethod {
    /// The exact distribution of the rank sum under the null.
    Exact,
    /// The normal approximation (with the tie correction of the variance).
    Asymptotic,
}

/// The Wilcoxon signed-rank test of paired differences.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Wilcoxon {
    /// The smaller of the positive and negative rank sums (scipy's two-sided statistic).
    pub statistic: f64,
    /// Two-sided p-value (1 when every difference is zero).
    pub p_value: f64,
    /// Differences that were not zero (zeros are dropped).
    pub nonzero: usize,
    /// How `p_value` was computed.
    pub method: WilcoxonMethod,
}

/// The comparison of paired scores `a` (e.g. the model's Dice) against `b` (the baseline's).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PairedComparison {
    /// Pairs.
    pub n: usize,
    /// Mean of `a`.
    pub mean_a: f64,
    /// Mean of `b`.
    pub mean_b: f64,
    /// Mean of `a - b`.
    pub mean_difference: f64,
    /// Student-t 95 % confidence interval of the mean difference (`None` with fewer than two
    /// pairs).
    pub ci95: Option<[f64; 2]>,
    /// The signed-rank test of `a - b`.
    pub wilcoxon: Wilcoxon,
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let n = norm(a) * norm(b);
    if n > 0.0 {
        dot / n
    } else {
        0.0
    }
}

/// Euclidean distance of every pair of `vectors` over the mean of their lengths, `[i][j]`
/// (all 0 when every vector is zero).
pub fn relative_distances(vectors: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let length = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = vectors.iter().map(|v| length(v)).sum::<f64>() / vectors.len().max(1) as f64;
    vectors
        .iter()
        .map(|a| {
            vectors
                .iter()
                .map(|b| {
                    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
                    if scale > 0.0 {
                        length(&d) / scale
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Compares paired samples; `None` when they are empty or differ in length, or hold a
/// non-finite value.
pub fn paired(a: &[f64], b: &[f64]) -> Option<PairedComparison> {
    if a.is_empty() || a.len() != b.len() || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let n = a.len();
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let md = mean(&d);
    let ci95 = (n >= 2).then(|| {
        let sd = (d.iter().map(|x| (x - md).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .map(|t| t.inverse_cdf(0.975))
            .unwrap_or(f64::NAN);
        let half = t * sd / (n as f64).sqrt();
        [md - half, md + half]
    });
    Some(PairedComparison {
        n,
        mean_a: mean(a),
        mean_b: mean(b),
        mean_difference: md,
        ci95,
        wilcoxon: wilcoxon(&d),
    })
}

/// The Wilcoxon signed-rank test of differences `d` (finite values).
pub fn wilcoxon(d: &[f64]) -> Wilcoxon {
    let mut nz: Vec<f64> = d.iter().copied().filter(|v| *v != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return Wilcoxon {
            statistic: 0.0,
            p_value: 1.0,
            nonzero: 0,
            method: WilcoxonMethod::Exact,
        };
    }
    nz.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    // Average ranks of |d|, ties sharing the mean of their positions.
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && nz[j].abs() == nz[i].abs() {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0;
        ranks[i..j].iter_mut().for_each(|x| *x = r);
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let plus: f64 = nz
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v > 0.0)
        .map(|x| x.1)
        .sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let statistic = plus.min(total - plus);
    if n <= EXACT_UP_TO && tie_term == 0.0 {
        // Number of subsets of {1..n} with each rank sum: the null distribution of W+.
        let max = n * (n + 1) / 2;
        let mut counts = vec![0.0f64; max + 1];
        counts[0] = 1.0;
        for k in 1..=n {
            for s in (k..=max).rev() {
                counts[s] += counts[s - k];
            }
        }
        let all = 2f64.powi(n as i32);
        let low: f64 = counts[..=statistic as usize].iter().sum::<f64>() / all;
        return Wilcoxon {
            statistic,
            p_value: (2.0 * low).min(1.0),
            nonzero: n,
            method: WilcoxonMethod::Exact,
        };
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    let p_value = if var > 0.0 {
        let z = (statistic - mean) / var.sqrt();
        2.0 * Normal::standard().cdf(-z.abs())
    } else {
        1.0
    };
    Wilcoxon {
        statistic,
        p_value: p_value.min(1.0),
        nonzero: n,
        method: WilcoxonMethod::Asymptotic,
    }
}
