//! `voxelprompt eval --model DIR --out DIR [--per-family K] [--seed S]`: the held-out synthetic
//! evaluation of a trained model (report.md and report.json in DIR). With `--json`, stdout
//! gets the summary: overall and per-family numbers and the paths of the report files.

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use train::eval::{evaluate, EvalOptions, FamilySummary, Rate};
use train::stats::PairedComparison;

use crate::cmd::args::ModelArgs;

/// Arguments of `eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Directory for report.md and report.json.
    #[arg(long)]
    out: PathBuf,
    /// Samples per family and anatomy.
    #[arg(long, default_value_t = 10)]
    per_family: usize,
    /// Evaluate only this family (repeatable, or comma-separated; default: every family). Its
    /// samples are those of the whole evaluation with the same seed.
    #[arg(long = "family", value_delimiter = ',')]
    families: Vec<String>,
    /// Seed of the evaluation set.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Anatomy: all (every real anatomy in the cache), phantom, fsaverage, neuromorphometrics.
    #[arg(long, default_value = "all")]
    anatomy: String,
    /// Voxel sizes to synthesise the evaluation subjects at, mm, comma-separated (one set each;
    /// default: the model's working spacing), e.g. `1,2,3,1x1x5` for robustness to resolution
    /// and to thick slices (`AxBxC`: per axis, the third one thick).
    #[arg(long, value_delimiter = ',')]
    spacing: Vec<String>,
    /// Samples per target of the segmentation experiment (6 anatomical targets, 3 lesion
    /// classes; 0 skips it). The report also compares the targets' ϕ vectors.
    #[arg(long, default_value_t = 0)]
    segmentation: usize,
    /// Folder of single-task baselines for the segmentation experiment, one `baseline train`
    /// checkpoint per target named like `white_matter/` (scripts/train_baselines.sh).
    #[arg(long, requires = "segmentation")]
    baselines: Option<PathBuf>,
    /// Held-out samples per characterisation question (signal, location, territory,
    /// diffusion, enhancement) for experiment 2 against single-task classifiers (0 skips it).
    #[arg(long, default_value_t = 0)]
    characterisation: usize,
    /// Folder of single-task classifiers for experiment 2, one `baseline classify` checkpoint
    /// per question named by its family id (`signal_intensity/`; scripts/train_baselines.sh).
    #[arg(long, requires = "characterisation")]
    classifiers: Option<PathBuf>,
    /// Answer every vision call with the true mask: the agent's own success, as if its vision
    /// network were perfect (the report's model name says so).
    #[arg(long)]
    oracle_vision: bool,
}

/// `eval --json`: report.json without its samples, with the files written.
#[derive(Serialize)]
struct EvalSummary<'a> {
    /// Model name and weights id.
    model: &'a str,
    /// Samples evaluated.
    samples: usize,
    /// Of which passed the checker.
    passed: usize,
    /// `passed / samples`.
    success: f64,
    families: &'a BTreeMap<String, FamilySummary>,
    dice_by_target: &'a BTreeMap<String, f64>,
    breakdown: &'a BTreeMap<String, Rate>,
    /// Why programs did not run to stop(): samples by cause.
    not_ran: &'a BTreeMap<String, usize>,
    /// "Is there a …?" answers against the truth (none without such samples).
    presence: Option<train::eval::PresenceCounts>,
    /// The segmentation experiment per target (empty without `--segmentation`).
    segmentation: Vec<TargetSummary<'a>>,
    /// The characterisation experiment per question (empty without `--characterisation`).
    characterisation: Vec<QuestionSummary<'a>>,
    report_json: String,
    report_md: String,
    pictures: String,
}

/// One target of the segmentation experiment, without its per-sample lists.
#[derive(Serialize)]
struct TargetSummary<'a> {
    target: &'a str,
    family: &'a str,
    samples: usize,
    ran: usize,
    model_mean_dice: f64,
    baseline: Option<String>,
    comparison: Option<PairedComparison>,
}

/// One question of the characterisation experiment, without its per-sample lists.
#[derive(Serialize)]
struct QuestionSummary<'a> {
    family: &'a str,
    samples: usize,
    model_accuracy: f64,
    classifier: Option<String>,
    classifier_accuracy: Option<f64>,
    comparison: Option<PairedComparison>,
}

/// `2` (isotropic) or `1x1x5` (per axis; a thick third axis), mm.
fn parse_spacing(text: &str) -> Result<[f64; 3]> {
    let parts: Vec<&str> = text.trim().split(['x', '×']).collect();
    let values = parts
        .iter()
        .map(|p| p.trim().parse::<f64>())
        .collect::<std::result::Result<Vec<f64>, _>>()
        .ok();
    match values.as_deref() {
        Some(&[s]) => Ok([s; 3]),
        Some(&[a, b, c]) => Ok([a, b, c]),
        _ => {
            anyhow::bail!("--spacing {text:?}: give a voxel size in mm (2) or one per axis (1x1x5)")
        }
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let loaded = args.model.load()?;
    let (model, manifest, dir) = (&loaded.model, &loaded.manifest, &loaded.path);
    let options = EvalOptions {
        per_family: args.per_family,
        seed: args.seed,
        anatomy: args.anatomy.clone(),
        spacings_mm: args
            .spacing
            .iter()
            .map(|s| parse_spacing(s))
            .collect::<Result<_>>()?,
        pictures: Some(args.out.join("pictures")),
        answer: args.model.answer_options(),
        oracle_vision: args.oracle_vision,
        // As many samples side by side as the global `--threads` (every core by default).
        threads: 0,
        families: args.families.clone(),
    };
    let mut id = format!("{} {}", manifest.model, manifest.weights_id());
    if args.oracle_vision {
        id.push_str(train::eval::ORACLE_VISION_SUFFIX);
    }
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
        let device = vision::compute_device(&args.model.device)?;
        if let Some(b) = &args.baselines {
            anyhow::ensure!(b.is_dir(), "--baselines {} is not a folder", b.display());
        }
        let baselines = args.baselines.as_deref().map(|b| (b, &device));
        report.segmentation =
            train::segmentation_experiment::run(model, &options, args.segmentation, baselines, {
                |done, total, target| crate::cmd::note!("[{done}/{total}] segmentation: {target}")
            })
            .context("running the segmentation experiment")?;
        report.phi_similarity = Some(
            train::segmentation_experiment::phi_similarity(model, &options, args.segmentation)
                .context("comparing the targets' ϕ")?,
        );
    }
    if args.characterisation > 0 {
        let device = vision::compute_device(&args.model.device)?;
        if let Some(c) = &args.classifiers {
            anyhow::ensure!(c.is_dir(), "--classifiers {} is not a folder", c.display());
        }
        let classifiers = args.classifiers.as_deref().map(|c| (c, &device));
        report.characterisation = train::characterisation_experiment::run(
            model,
            &options,
            args.characterisation,
            classifiers,
            |done, total, family| crate::cmd::note!("[{done}/{total}] characterisation: {family}"),
        )
        .context("running the characterisation experiment")?;
    }
    // The learning curve: a shipped model carries its run's train.csv; a checkpoint's model
    // (RUN/checkpoint/model) has it two folders up.
    let train_csv = [dir.join("train.csv"), dir.join("../../train.csv")]
        .into_iter()
        .find(|p| p.is_file());
    report.write(&args.out, train_csv.as_deref())?;
    let md = args.out.join("report.md");
    crate::cmd::say!(
        "end-to-end success {:.1} % over {} samples; report in {}",
        100.0 * report.success,
        report.samples.len(),
        md.display()
    );
    if crate::cmd::json() {
        crate::cmd::print_json(&EvalSummary {
            model: &report.model,
            samples: report.samples.len(),
            passed: report.samples.iter().filter(|s| s.passed).count(),
            success: report.success,
            families: &report.families,
            dice_by_target: &report.dice_by_target,
            breakdown: &report.breakdown,
            not_ran: &report.not_ran,
            presence: report.presence,
            segmentation: report
                .segmentation
                .iter()
                .map(|t| TargetSummary {
                    target: &t.target,
                    family: &t.family,
                    samples: t.samples.len(),
                    ran: t.ran,
                    model_mean_dice: t.model_mean_dice,
                    baseline: t.baseline.as_ref().map(|b| b.display().to_string()),
                    comparison: t.comparison,
                })
                .collect(),
            characterisation: report
                .characterisation
                .iter()
                .map(|f| QuestionSummary {
                    family: &f.family,
                    samples: f.model_correct.len(),
                    model_accuracy: f.model_accuracy,
                    classifier: f.classifier.as_ref().map(|c| c.display().to_string()),
                    classifier_accuracy: f.classifier_accuracy,
                    comparison: f.comparison,
                })
                .collect(),
            report_json: args.out.join("report.json").display().to_string(),
            report_md: md.display().to_string(),
            pictures: args.out.join("pictures").display().to_string(),
        })?;
    }
    Ok(())
}
