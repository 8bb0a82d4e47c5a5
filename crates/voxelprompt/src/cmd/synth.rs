//! `voxelprompt synth --out DIR --n N --contrasts t1,flair --lesions glioma --sessions 2
//! --spacing 2 --seed S --anatomy all`: synthesized training subjects (images, labels, lesion
//! attributes). With `--json`, stdout gets the anatomies used, the subject folders and every file
//! written in them.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use synth::{Contrast, IntensityMode, LesionClass, SubjectSpec};

/// Arguments of `synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output directory (one `sub-XXX/` folder per subject).
    #[arg(long)]
    out: PathBuf,
    /// Number of subjects.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Contrasts, comma-separated: t1, t2, flair, pd, gre, dwi, adc, t1c, ct.
    #[arg(long, value_delimiter = ',', default_value = "t1")]
    contrasts: Vec<String>,
    /// Lesion classes, comma-separated, repeatable (empty for healthy subjects): glioma,
    /// metastasis, acute_infarct, chronic_infarct, wmh, meningioma, arachnoid_cyst, haemorrhage,
    /// subdural_haematoma, abscess.
    #[arg(long, value_delimiter = ',')]
    lesions: Vec<String>,
    /// Sessions (visits) per subject.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Voxel size in mm: one value (isotropic) or three, comma-separated, for a native
    /// anisotropic grid such as thick axial slices (`1,1,5`).
    #[arg(long, value_delimiter = ',', default_value = "2")]
    spacing: Vec<f64>,
    /// Random seed; the same seed gives the same subjects.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Anatomy the subjects are built from: fsaverage, neuromorphometrics, phantom, all (every
    /// real anatomy in the cache, taken in turn by subject index), or default (fsaverage when
    /// the anatomy cache has it, else the phantom).
    #[arg(long, default_value = "default")]
    anatomy: String,
}

/// `synth --json`.
#[derive(Serialize)]
struct Synthesised {
    /// The anatomies the subjects were built from, in turn.
    anatomies: Vec<String>,
    /// The subject folders.
    subjects: Vec<String>,
    /// Every file written in them, sorted.
    written: Vec<String>,
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry
                .with_context(|| format!("listing {}", d.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.display().to_string());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Writes the subjects and lists what it wrote.
pub fn run(args: &SynthArgs) -> Result<()> {
    anyhow::ensure!(
        (1..=10_000).contains(&args.n),
        "--n must be between 1 and 10000"
    );
    anyhow::ensure!(
        (1..=10).contains(&args.sessions),
        "--sessions must be between 1 and 10"
    );
    let spacing_mm: [f64; 3] = match args.spacing.as_slice() {
        &[s] => [s; 3],
        &[x, y, z] => [x, y, z],
        other => anyhow::bail!(
            "--spacing takes one voxel size or three (x,y,z), got {} values",
            other.len()
        ),
    };
    anyhow::ensure!(
        spacing_mm.iter().all(|s| (0.5..=8.0).contains(s)),
        "--spacing must be between 0.5 and 8 mm on every axis, got {spacing_mm:?}"
    );
    let contrasts = args
        .contrasts
        .iter()
        .map(|c| Contrast::parse(c.trim()))
        .collect::<synth::Result<Vec<_>>>()?;
    let lesions = args
        .lesions
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| LesionClass::parse(l.trim()))
        .collect::<synth::Result<Vec<_>>>()?;
    let config = synth::SynthConfig::builtin()?;
    let vocab = synth::Vocabulary::builtin()?;
    let anatomies = synth::subject::load_anatomies(args.anatomy.trim(), &config)
        .with_context(|| format!("loading anatomy {:?}", args.anatomy))?;
    let names: Vec<String> = anatomies.iter().map(|a| a.name.clone()).collect();
    crate::cmd::say!("anatomy: {}", names.join(", "));
    let spec = SubjectSpec {
        contrasts,
        lesions,
        sessions: args.sessions,
        spacing_mm,
        mode: IntensityMode::Realistic,
    };
    let written = synth::subject::write_subjects_from_anatomies(
        &args.out, args.n, &anatomies, &spec, &config, &vocab, args.seed,
    )
    .with_context(|| format!("synthesizing into {}", args.out.display()))?;
    for p in &written {
        crate::cmd::say!("wrote {}", p.display());
    }
    if crate::cmd::json() {
        let mut files = Vec::new();
        for dir in &written {
            files.extend(files_under(dir)?);
        }
        crate::cmd::print_json(&Synthesised {
            anatomies: names,
            subjects: written.iter().map(|p| p.display().to_string()).collect(),
            written: files,
        })?;
    }
    Ok(())
}
