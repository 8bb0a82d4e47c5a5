//! `voxelprompt exec --program FILE.rhai [--labels L] [--lut LUT] [--out DIR] SCAN...`: runs a
//! hand-written program in the sandbox, with vision calls answered from a label map. With
//! `--json`, stdout gets the response, the error and the files written as one JSON object
//! (printed also when the program fails, before the non-zero exit).

use anyhow::{Context, Result};
use runtime::{run_program, GroundTruth, Limits, OutputData, StructureTable};
use serde::Serialize;
use std::path::{Path, PathBuf};
use voxel::io::{self, WriteOptions};
use voxel::lut::ColorLut;

/// Arguments of `exec`.
#[derive(clap::Args)]
pub struct ExecArgs {
    /// The program (Rhai; one step, or `<step> … <endstep>` blocks).
    #[arg(long)]
    program: PathBuf,
    /// Scans, bound to `scan_1`, `scan_2`, … in this order.
    #[arg(required = true)]
    scans: Vec<PathBuf>,
    /// Label map that answers `generate(enc, "structure")` (no trained network in `exec`).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Colour table naming the labels (default: FreeSurfer aseg names).
    #[arg(long)]
    lut: Option<PathBuf>,
    /// Directory for `show` outputs (`<name>.nii.gz`) and `trace.json`.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `exec --json`.
#[derive(Serialize)]
struct Executed {
    /// The `respond` lines, joined by newlines.
    response: String,
    /// Whether the program called `stop()`.
    stopped: bool,
    /// The error that ended it, if any.
    error: Option<String>,
    /// Every `show`n volume, with its file under `--out` (null without `--out`).
    outputs: Vec<Shown>,
    /// Files written under `--out` (trace.json last).
    written: Vec<String>,
}

/// One `show`n volume.
#[derive(Serialize)]
struct Shown {
    name: String,
    /// The scan whose grid it is on.
    grid_of: String,
    /// `mask` or `image`.
    kind: &'static str,
    path: Option<String>,
}

/// Runs the program, prints its response, and writes its outputs.
pub fn run(args: &ExecArgs) -> Result<()> {
    let program = std::fs::read_to_string(&args.program)
        .with_context(|| format!("reading program {}", args.program.display()))?;
    let mut inputs = Vec::with_capacity(args.scans.len());
    for (i, path) in args.scans.iter().enumerate() {
        let image = super::scan_input::read_scan(path)
            .with_context(|| format!("reading scan {}", path.display()))?;
        inputs.push((format!("scan_{}", i + 1), image));
    }
    let ground_truth = match &args.labels {
        Some(p) => {
            let labels =
                io::read_labels(p).with_context(|| format!("reading label map {}", p.display()))?;
            let lut = match &args.lut {
                Some(l) => ColorLut::read(l)
                    .with_context(|| format!("reading colour table {}", l.display()))?,
                None => ColorLut::freesurfer_aseg(),
            };
            Some(GroundTruth {
                labels,
                structures: StructureTable::from_lut(lut),
            })
        }
        None => None,
    };
    let output = run_program(&program, inputs, ground_truth, &Limits::default())
        .with_context(|| format!("running {}", args.program.display()))?;
    if !output.response.is_empty() {
        crate::cmd::say!("{}", output.response);
    }
    let mut shown: Vec<Shown> = output
        .outputs
        .iter()
        .map(|o| Shown {
            name: o.name.clone(),
            grid_of: o.grid_of.clone(),
            kind: match o.data {
                OutputData::Image(_) => "image",
                OutputData::Mask(_) => "mask",
            },
            path: None,
        })
        .collect();
    let mut written = Vec::new();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut given: Vec<&Path> = args.scans.iter().map(PathBuf::as_path).collect();
        given.extend(args.labels.as_deref());
        given.push(args.program.as_path());
        for (out, s) in output.outputs.iter().zip(&mut shown) {
            let path = dir.join(format!("{}.nii.gz", out.name));
            io::ensure_not_input(&path, &given)?;
            match &out.data {
                OutputData::Image(img) => io::write_image(&path, img, &WriteOptions::default())?,
                OutputData::Mask(mask) => io::write_mask(&path, mask)?,
            }
            crate::cmd::say!("wrote {} (grid of {})", path.display(), out.grid_of);
            s.path = Some(path.display().to_string());
            written.push(path.display().to_string());
        }
        let trace = dir.join("trace.json");
        io::ensure_not_input(&trace, &given)?;
        let json = serde_json::to_string_pretty(&output.report())?;
        io::atomic_write(&trace, |w| std::io::Write::write_all(w, json.as_bytes()))?;
        crate::cmd::say!("wrote {}", trace.display());
        written.push(trace.display().to_string());
    }
    if crate::cmd::json() {
        crate::cmd::print_json(&Executed {
            response: output.response.clone(),
            stopped: output.stopped,
            error: output.error.as_ref().map(|e| e.to_string()),
            outputs: shown,
            written,
        })?;
    }
    if let Some(err) = &output.error {
        anyhow::bail!("{}: the program failed: {err}", args.program.display());
    }
    Ok(())
}
