//! Paired statistics against scipy: the Wilcoxon signed-rank statistic and p-value (exact and
//! asymptotic, with ties and zeros) and the t confidence interval of the mean difference, on
//! data sets where the answer is computed by scipy 1.x in a subprocess.

use serde_json::Value;
use train::stats::{paired, wilcoxon, WilcoxonMethod};

/// Pairs of score lists; the comment says which branch each exercises.
fn cases() -> Vec<(Vec<f64>, Vec<f64>)> {
    vec![
        // Exact: 10 distinct non-zero differences.
        (
            vec![0.81, 0.77, 0.92, 0.64, 0.88, 0.71, 0.90, 0.69, 0.83, 0.75],
            vec![0.79, 0.80, 0.85, 0.70, 0.81, 0.62, 0.93, 0.61, 0.80, 0.66],
        ),
        // Exact, small: 6 pairs, all differences positive.
        (
            vec![0.9, 0.8, 0.85, 0.7, 0.95, 0.6],
            vec![0.5, 0.45, 0.6, 0.2, 0.65, 0.4],
        ),
        // Asymptotic: ties in |d| and zeros (dropped).
        (
            vec![0.5, 0.6, 0.7, 0.8, 0.5, 0.3, 0.9, 0.4, 0.6, 0.7, 0.2, 0.5],
            vec![0.4, 0.7, 0.5, 0.8, 0.6, 0.1, 0.8, 0.4, 0.7, 0.5, 0.3, 0.3],
        ),
        // Asymptotic: 60 distinct differences.
        (
            (0..60).map(|i| ((i * 37) % 61) as f64 / 61.0).collect(),
            (0..60)
                .map(|i| ((i * 53) % 67) as f64 / 67.0 + 0.001 * i as f64)
                .collect(),
        ),
    ]
}

#[test]
fn paired_statistics_match_scipy() {
    if !voxel::test_support::python_has(&["scipy", "numpy"]) {
        return voxel::test_support::skip_missing(
            "python3 with scipy",
            "python3 -m pip install numpy scipy",
        );
    }
    let cases = cases();
    let input = serde_json::to_string(&cases).unwrap();
    // scipy's method is named explicitly so the comparison does not depend on its "auto" rule.
    let script = r#"
import json, sys
import numpy as np
from scipy import stats
out = []
for a, b in json.loads(sys.argv[1]):
    a, b = np.array(a), np.array(b)
    d = a - b
    nz = d[d != 0]
    ties = len(np.unique(np.abs(nz))) < len(nz)
    method = "exact" if len(nz) <= 50 and not ties else "asymptotic"
    r = stats.wilcoxon(d, zero_method="wilcox", correction=False, method=method)
    n = len(d)
    lo, hi = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
    out.append({"w": float(r.statistic), "p": float(r.pvalue), "method": method,
                "mean": float(d.mean()), "lo": float(lo), "hi": float(hi)})
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &input])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    for ((a, b), w) in cases.iter().zip(&want) {
        let got = paired(a, b).unwrap();
        let f = |k: &str| w[k].as_f64().unwrap();
        assert_eq!(got.n, a.len());
        assert!(
            (got.wilcoxon.statistic - f("w")).abs() < 1e-9,
            "{got:?} vs {w}"
        );
        assert!(
            (got.wilcoxon.p_value - f("p")).abs() < 1e-9,
            "{got:?} vs {w}"
        );
        let method = match got.wilcoxon.method {
            WilcoxonMethod::Exact => "exact",
            WilcoxonMethod::Asymptotic => "asymptotic",
        };
        assert_eq!(method, w["method"].as_str().unwrap());
        assert!((got.mean_difference - f("mean")).abs() < 1e-12);
        let ci = got.ci95.unwrap();
        assert!(
            (ci[0] - f("lo")).abs() < 1e-9 && (ci[1] - f("hi")).abs() < 1e-9,
            "{ci:?} vs {w}"
        );
    }
}

#[test]
fn degenerate_inputs_are_refused_or_neutral() {
    assert!(paired(&[], &[]).is_none());
    assert!(paired(&[0.5], &[0.5, 0.6]).is_none());
    assert!(paired(&[f64::NAN], &[0.5]).is_none());
    // Every difference zero: no evidence either way.
    let w = wilcoxon(&[0.0, 0.0, 0.0]);
    assert_eq!((w.nonzero, w.p_value), (0, 1.0));
    // One pair: no interval.
    assert!(paired(&[0.7], &[0.5]).unwrap().ci95.is_none());
}

#[test]
fn bar_charts_are_pngs_and_refuse_ragged_series() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bars.png");
    let cats: Vec<String> = ["brain", "white matter", "hippocampus"]
        .map(String::from)
        .to_vec();
    let bars = [train::plot::Bars {
        name: "a",
        values: &[0.9, f64::NAN, 0.3],
        colour: plotters::style::RGBColor(31, 119, 180),
    }];
    match train::plot::bar_chart_png(&out, "t", "x", &cats, &bars, 1.0) {
        Ok(()) => {
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            if let Ok(keep) = std::env::var("VOXELPROMPT_KEEP_CHART") {
                std::fs::copy(&out, keep).unwrap();
            }
        }
        // Only a missing font may stop it, and the error says so.
        Err(e) => assert!(e.to_string().contains("font"), "{e}"),
    }
    let ragged = [train::plot::Bars {
        name: "a",
        values: &[0.9],
        colour: plotters::style::RGBColor(0, 0, 0),
    }];
    assert!(train::plot::bar_chart_png(&out, "t", "x", &cats, &ragged, 1.0).is_err());
}
