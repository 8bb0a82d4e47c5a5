//! `voxelprompt example --out DIR`: writes the built-in demo head so every command can be tried
//! without data of one's own.

use anyhow::{Context, Result};
use std::path::PathBuf;
use voxel::io::{self, WriteOptions};
use voxel::phantom;

/// Arguments of `example`.
#[derive(clap::Args)]
pub struct ExampleArgs {
    /// Directory to write t1.nii.gz, labels.nii.gz and labels_lut.txt into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Voxel size in mm (three values for anisotropic voxels, e.g. `--spacing 1 1 3`).
    #[arg(long, num_args = 1..=3, default_values_t = vec![2.0])]
    spacing: Vec<f64>,
}

/// Writes the demo head and prints what it wrote (`--json`: `{"written": [...]}`).
pub fn run(args: &ExampleArgs) -> Result<()> {
    let spacing_mm = match args.spacing.as_slice() {
        [s] => [*s; 3],
        [a, b, c] => [*a, *b, *c],
        other => anyhow::bail!("--spacing takes one or three values, got {}", other.len()),
    };
    if spacing_mm.iter().any(|&s| !(0.25..=10.0).contains(&s)) {
        anyhow::bail!("--spacing must be between 0.25 and 10 mm, got {spacing_mm:?}");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let head = phantom::demo_head(spacing_mm)?;
    let t1 = args.out.join("t1.nii.gz");
    let labels = args.out.join("labels.nii.gz");
    let lut = args.out.join("labels_lut.txt");
    io::write_image(&t1, &head.image, &WriteOptions::default())?;
    io::write_labels(&labels, &head.labels)?;
    let mut text =
        String::from("# VoxelPrompt demo head labels (FreeSurfer colour table format)\n");
    for id in head.labels.labels() {
        let c = head.lut.color(id);
        text.push_str(&format!(
            "{id} {} {} {} {} 0\n",
            head.lut.name(id).unwrap_or("unnamed"),
            c[0],
            c[1],
            c[2]
        ));
    }
    io::atomic_write(&lut, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    let written = [&t1, &labels, &lut];
    for p in written {
        crate::cmd::say!("wrote {}", p.display());
    }
    if crate::cmd::json() {
        let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        crate::cmd::print_json(&serde_json::json!({ "written": written }))?;
    }
    Ok(())
}
