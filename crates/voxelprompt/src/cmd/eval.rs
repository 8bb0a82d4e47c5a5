//! `voxelprompt eval --model DIR --out DIR [--per-family K] [--seed S]`: the held-out synthetic
//! evaluation of a trained model (report.md and report.json in DIR).

use anyhow::{Context, Result};
use std::path::PathBuf;
use train::eval::{evaluate, EvalOptions};
use train::inference::AnswerOptions;

use crate::cmd::run::load_model;

/// Arguments of `eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Model directory (default: $VOXELPROMPT_MODEL, else the shipped models/voxelprompt-small).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Directory for report.md and report.json.
    #[arg(long)]
    out: PathBuf,
    /// Samples per family and anatomy.
    #[arg(long, default_value_t = 10)]
    per_family: usize,
    /// Seed of the evaluation set.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Anatomy: all (every real anatomy in the cache), phantom, fsaverage, neuromorphometrics.
    #[arg(long, default_value = "all")]
    anatomy: String,
    /// Voxel sizes to synthesise the evaluation subjects at, mm, comma-separated (one set each;
    /// default: the model's working spacing), e.g. `1,2,3` for robustness to resolution.
    #[arg(long, value_delimiter = ',')]
    spacing: Vec<f64>,
    /// Most program steps per answer.
    #[arg(long, default_value_t = 8)]
    max_steps: usize,
    /// Most tokens per step.
    #[arg(long, default_value_t = 400)]
    max_new_tokens: usize,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Samples per target of the segmentation experiment (6 anatomical targets, 3 lesion
    /// classes; 0 skips it).
    #[arg(long, default_value_t = 0)]
    segmentation: usize,
    /// Folder of single-task baselines for the segmentation experiment, one `baseline train`
    /// checkpoint per target named like `white_matter/` (scripts/train_baselines.sh).
    #[arg(long, requires = "segmentation")]
    baselines: Option<PathBuf>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let loaded = load_model(args.model.as_deref(), &args.device)?;
    let (model, manifest, dir) = (&loaded.model, &loaded.manifest, &loaded.path);
    let options = EvalOptions {
        per_family: args.per_family,
        seed: args.seed,
        anatomy: args.anatomy.clone(),
        spacings_mm: args.spacing.clone(),
        pictures: Some(args.out.join("pictures")),
        answer: AnswerOptions {
            max_steps: args.max_steps,
            max_new_tokens: args.max_new_tokens,
            ..AnswerOptions::default()
        },
    };
    let id = format!("{} {}", manifest.model, manifest.weights_id());
    let mut report = evaluate(model, &id, &options, |done, total, r| {
        crate::cmd::note!(
            "[{done}/{total}] {} {}: {} ({:.1} s)",
            r.family,
            r.anatomy,
            if r.passed { "passed" } else { "failed" },
            r.seconds
        );
    })
    .with_context(|| format!("evaluating {}", dir.display()))?;
    if args.segmentation > 0 {
        let device = vision::compute_device(&args.device)?;
        if let Some(b) = &args.baselines {
            anyhow::ensure!(b.is_dir(), "--baselines {} is not a folder", b.display());
        }
        let baselines = args.baselines.as_deref().map(|b| (b, &device));
        report.segmentation =
            train::segmentation_experiment::run(model, &options, args.segmentation, baselines, {
                |done, total, target| crate::cmd::note!("[{done}/{total}] segmentation: {target}")
            })
            .context("running the segmentation experiment")?;
    }
    report.write(&args.out)?;
    println!(
        "end-to-end success {:.1} % over {} samples; report in {}",
        100.0 * report.success,
        report.samples.len(),
        args.out.join("report.md").display()
    );
    Ok(())
}
