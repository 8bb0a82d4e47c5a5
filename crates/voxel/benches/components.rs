//! Times connected components (26-connectivity) and the Euclidean distance transform on a 256³
//! random-blob mask and, when python3 with scipy is available, `scipy.ndimage.label` and
//! `scipy.ndimage.distance_transform_edt` on the same data, printing the ratios.
//!
//! Run with `cargo bench -p voxel --bench components`; `VP_BENCH_SIZE=128` shrinks the cube.

use std::io::Write;
use std::process::Command;
use std::time::Instant;
use voxel::components::{label_components, Connectivity};
use voxel::distance::distance_to_mask_mm;
use voxel::{Geometry, Mask, Volume};

const SPACING_MM: [f64; 3] = [0.9, 1.0, 1.2];
const REPEATS: usize = 3;

/// Deterministic xorshift64* so the blobs are the same on every run without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Union of random balls (radius 2–10 voxels) filling roughly a quarter of the cube.
fn random_blobs(n: usize) -> Mask {
    let g = Geometry::from_spacing([n; 3], SPACING_MM, [0.0; 3]).expect("valid grid");
    let mut data = vec![false; g.num_voxels()];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let balls = (n * n * n) / 6000;
    for _ in 0..balls {
        let c = [
            rng.next_f64() * n as f64,
            rng.next_f64() * n as f64,
            rng.next_f64() * n as f64,
        ];
        let r = 2.0 + 8.0 * rng.next_f64();
        let lo = |a: usize| (c[a] - r).floor().max(0.0) as usize;
        let hi = |a: usize| ((c[a] + r).ceil() as usize).min(n - 1);
        for k in lo(2)..=hi(2) {
            for j in lo(1)..=hi(1) {
                for i in lo(0)..=hi(0) {
                    let d2 = (i as f64 - c[0]).powi(2)
                        + (j as f64 - c[1]).powi(2)
                        + (k as f64 - c[2]).powi(2);
                    if d2 <= r * r {
                        data[g.index(i, j, k)] = true;
                    }
                }
            }
        }
    }
    Volume::new(g, data).expect("data matches grid")
}

fn best_of<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("REPEATS > 0"))
}

const SCIPY: &str = r#"
import json, sys, time
import numpy as np
from scipy import ndimage
path, n = sys.argv[1], int(sys.argv[2])
sx, sy, sz = (float(v) for v in sys.argv[3:6])
# The file is x-fastest; viewed in C order it is indexed [k, j, i] with no copy.
m = np.fromfile(path, dtype=np.uint8).reshape((n, n, n)).astype(bool)
inv = ~m
def best(f):
    times, out = [], None
    for _ in range(3):
        t = time.perf_counter(); out = f(); times.append(time.perf_counter() - t)
    return min(times), out
t_label, (_, count) = best(lambda: ndimage.label(m, structure=np.ones((3, 3, 3), bool)))
t_edt, d = best(lambda: ndimage.distance_transform_edt(inv, sampling=(sz, sy, sx)))
print(json.dumps({"label_s": t_label, "count": int(count), "edt_s": t_edt, "edt_max": float(d.max()),
                  "edt_sum": float(d.sum())}))
"#;

fn main() {
    let n: usize = std::env::var("VP_BENCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mask = random_blobs(n);
    println!(
        "{n}³ random-blob mask, spacing {SPACING_MM:?} mm, {:.1}% set, {} rayon threads, best of {REPEATS}",
        100.0 * mask.count() as f64 / mask.data().len() as f64,
        rayon::current_num_threads()
    );

    let (t_cc, cc) = best_of(|| label_components(&mask, Connectivity::TwentySix).expect("labels"));
    let (t_edt, edt) = best_of(|| distance_to_mask_mm(&mask).expect("non-empty mask"));
    let edt_max = edt.data().iter().fold(0.0f32, |m, &v| m.max(v));
    let edt_sum: f64 = edt.data().iter().map(|&v| v as f64).sum();
    println!(
        "voxel  components(26): {:8.1} ms  ({} components)",
        t_cc * 1e3,
        cc.count()
    );
    println!(
        "voxel  EDT (mm):        {:8.1} ms  (max {edt_max:.3} mm)",
        t_edt * 1e3
    );

    match run_scipy(&mask, n) {
        Ok(r) => {
            let get = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "scipy  label(26):       {:8.1} ms  ({} components)   voxel is {:.2}× faster",
                get("label_s") * 1e3,
                get("count"),
                get("label_s") / t_cc
            );
            println!(
                "scipy  EDT (mm):        {:8.1} ms  (max {:.3} mm)   voxel is {:.2}× faster",
                get("edt_s") * 1e3,
                get("edt_max"),
                get("edt_s") / t_edt
            );
            let rel = (edt_sum - get("edt_sum")).abs() / get("edt_sum").max(1.0);
            let same = get("count") as usize == cc.count() && rel < 1e-5;
            println!(
                "agreement: component counts {}, EDT sums differ by {rel:.1e} (relative){}",
                if get("count") as usize == cc.count() {
                    "equal"
                } else {
                    "DIFFER"
                },
                if same { "" } else { "  <-- MISMATCH" }
            );
        }
        Err(why) => println!("scipy reference skipped: {why}"),
    }
}

fn run_scipy(mask: &Mask, n: usize) -> Result<serde_json::Value, String> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = mask.data().iter().map(|&b| u8::from(b)).collect();
    file.write_all(&bytes).map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCIPY)
        .arg(file.path())
        .arg(n.to_string())
        .args(SPACING_MM.iter().map(|s| s.to_string()))
        .output()
        .map_err(|e| format!("python3 not runnable ({e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "python3/scipy failed: {}",
            err.lines().last().unwrap_or("")
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable scipy output ({e})"))
}
