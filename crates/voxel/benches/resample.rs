//! Resampling benchmark: a 256³ 1 mm f32 image to 2 mm (anti-aliased trilinear), against
//! `scipy.ndimage` on the same size in the same run when python3 with scipy is installed.
//! Prints seconds and ratios.
//!
//! Run: `cargo bench -p voxel --bench resample`

use std::process::Command;
use std::time::Instant;
use voxel::resample::{resample_to_spacing, ResampleOptions};
use voxel::{Geometry, Image};

const N: usize = 256;
const REPEATS: usize = 5;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("n > 0"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let g = Geometry::from_spacing([N; 3], [1.0; 3], [-128.0, -128.0, -128.0])?;
    // Smooth structure plus fine stripes, so the blur and interpolation do real work.
    let data: Vec<f32> = (0..g.num_voxels())
        .map(|n| {
            let [i, j, k] = g.coords(n);
            let r2 = [i, j, k]
                .iter()
                .map(|&c| (c as f32 - 128.0).powi(2))
                .sum::<f32>();
            (1000.0 - r2 * 0.01).max(0.0) + ((i + 2 * j + 3 * k) % 7) as f32
        })
        .collect();
    let img = Image::new(g, data)?;
    let threads = rayon::current_num_threads();
    println!(
        "volume {:?} f32 1 mm → 2 mm, {threads} rayon threads",
        img.shape()
    );

    let aa = ResampleOptions::default();
    let plain = ResampleOptions {
        anti_alias: false,
        ..Default::default()
    };
    let (t_aa, out) = best_of(REPEATS, || resample_to_spacing(&img, [2.0; 3], &aa));
    let out = out?;
    let (t_plain, _) = best_of(REPEATS, || resample_to_spacing(&img, [2.0; 3], &plain));
    println!(
        "voxel  trilinear + anti-alias (σ 0.5 vox)  {t_aa:.3} s  → {:?}",
        out.shape()
    );
    println!("voxel  trilinear, no anti-alias            {t_plain:.3} s");

    match scipy_times() {
        Some((s_plain, s_aa)) => {
            println!(
                "scipy  gaussian_filter + affine_transform   {s_aa:.3} s  → voxel is {:.1}× faster",
                s_aa / t_aa
            );
            println!(
                "scipy  affine_transform(order=1)            {s_plain:.3} s  → voxel is {:.1}× faster",
                s_plain / t_plain
            );
        }
        None => {
            println!("scipy  not available (python3 with numpy and scipy); no reference timing")
        }
    }
    Ok(())
}

/// Best-of-N seconds for scipy on a 256³ float32 array: `affine_transform(order=1)` onto the
/// same 2 mm grid (scale 2, offset 0.5), and `gaussian_filter(σ 0.5, truncate 4)` followed by it.
fn scipy_times() -> Option<(f64, f64)> {
    let script = format!(
        r#"
import time, numpy as np
from scipy import ndimage
a = np.random.default_rng(0).random(({N}, {N}, {N}), dtype=np.float32)
m, off, shape = np.diag([2.0, 2.0, 2.0]), [0.5, 0.5, 0.5], ({h}, {h}, {h})
def best(f):
    ts = []
    for _ in range({REPEATS}):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)
plain = best(lambda: ndimage.affine_transform(a, m, off, output_shape=shape, order=1, mode='nearest'))
aa = best(lambda: ndimage.affine_transform(ndimage.gaussian_filter(a, 0.5, mode='reflect', truncate=4.0),
                                           m, off, output_shape=shape, order=1, mode='nearest'))
print(plain, aa)
"#,
        h = N / 2
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some((it.next()??, it.next()??))
}
