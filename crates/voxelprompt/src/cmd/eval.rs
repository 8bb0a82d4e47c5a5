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
    let report = evaluate(model, &id, &options, |done, total, r| {
        crate::cmd::note!(
            "[{done}/{total}] {} {}: {} ({:.1} s)",
            r.family,
            r.anatomy,
            if r.passed { "passed" } else { "failed" },
            r.seconds
        );
    })
    .with_context(|| format!("evaluating {}", dir.display()))?;
    report.write(&args.out)?;
    println!(
        "end-to-end success {:.1} % over {} samples; report in {}",
        100.0 * report.success,
        report.samples.len(),
        args.out.join("report.md").display()
    );
    Ok(())
}
