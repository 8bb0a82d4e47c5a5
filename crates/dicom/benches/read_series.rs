//! Reading a 256-slice 256×256 CT series (written by scripts/make_dicom_fixtures.py --bench)
//! against dcm2niix converting the same folder, in the same run. Both write an uncompressed
//! NIfTI so the work compared is the same; our read alone is printed too.
//!
//! `cargo bench -p dicom --bench read_series` (python3 with pydicom, and dcm2niix, required).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SLICES: usize = 256;
const RUNS: usize = 3;

fn best(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make_dicom_fixtures.py");
    let made = Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .args(["--bench", &SLICES.to_string()])
        .status()
        .expect("python3 runs");
    assert!(
        made.success(),
        "make_dicom_fixtures.py --bench failed (pip install pydicom)"
    );
    let series = dir.path().join("bench");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("output folder");

    let mut shape = [0; 3];
    let read = best(|| {
        shape = dicom::read_series(&series, None).expect("read").shape();
    });
    let nifti = out.join("ours.nii");
    let read_write = best(|| {
        let image = dicom::read_series(&series, None).expect("read");
        voxel::io::write_image(&nifti, &image, &voxel::io::WriteOptions::default()).expect("write");
    });
    let reference = best(|| {
        let status = Command::new("dcm2niix")
            .args(["-z", "n", "-b", "n", "-f", "ref", "-w", "1", "-o"])
            .arg(&out)
            .arg(&series)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("dcm2niix is required: apt-get install -y dcm2niix");
        assert!(status.success(), "dcm2niix failed");
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "series: {}×{}×{} int16 CT, {SLICES} files, best of {RUNS}",
        shape[0], shape[1], shape[2]
    );
    println!("dicom::read_series                {:8.1} ms", ms(read));
    println!(
        "dicom::read_series + write .nii   {:8.1} ms",
        ms(read_write)
    );
    println!("dcm2niix (same folder → .nii)     {:8.1} ms", ms(reference));
    println!(
        "ratio ours/dcm2niix: read {:.2}, read+write {:.2} (below 1 = faster than dcm2niix)",
        ms(read) / ms(reference),
        ms(read_write) / ms(reference)
    );
}
