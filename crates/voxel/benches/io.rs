//! I/O benchmark: write and read a 256³ f32 `.nii.gz` (and `.mgz`), against nibabel on the same
//! file in the same run when python3 with nibabel is installed. Prints seconds and ratios.
//!
//! Run: `cargo bench -p voxel --bench io`

use std::time::Instant;
use voxel::io::{self, WriteOptions};
use voxel::phantom;

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
    let dir = tempfile::tempdir()?;
    // 160×192×160 mm at 0.625×0.75×0.625 mm = 256³ voxels of head-like content.
    let head = phantom::demo_head([0.625, 0.75, 0.625])?;
    let img = head.image;
    println!(
        "volume {:?} f32 ({} MB)",
        img.shape(),
        img.data().len() * 4 / 1_000_000
    );
    for ext in ["nii.gz", "mgz", "nii"] {
        let path = dir.path().join(format!("bench.{ext}"));
        let (w, _) = best_of(3, || io::write_image(&path, &img, &WriteOptions::default()));
        let (r, back) = best_of(3, || io::read_image(&path));
        let back = back?;
        assert_eq!(back.data().len(), img.data().len());
        let size_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
        println!("voxel   {ext:7} write {w:.3} s  read {r:.3} s  ({size_mb:.1} MB on disk)");
        if let Some((nw, nr)) = nibabel_times(&path, ext) {
            println!(
                "nibabel {ext:7} write {nw:.3} s  read {nr:.3} s  → voxel is {:.2}× faster (read+write)",
                (nw + nr) / (w + r)
            );
        }
    }
    Ok(())
}

/// Best-of-3 seconds for nibabel to read (get_fdata float32) and write the same file.
fn nibabel_times(path: &std::path::Path, ext: &str) -> Option<(f64, f64)> {
    let script = format!(
        r#"
import time, nibabel as nib, numpy as np
p = {p:?}
rt = []
for _ in range(3):
    t = time.perf_counter(); img = nib.load(p); d = np.array(img.get_fdata(dtype=np.float32)); rt.append(time.perf_counter() - t)
wt = []
for _ in range(3):
    out = p.replace('bench.', 'nib.')
    t = time.perf_counter()
    cls = nib.MGHImage if out.endswith('.mgz') else nib.Nifti1Image
    nib.save(cls(d, img.affine), out); wt.append(time.perf_counter() - t)
print(min(wt), min(rt))
"#,
        p = path.display().to_string()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "nibabel comparison skipped for {ext}: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok());
    Some((it.next()?, it.next()?))
}
