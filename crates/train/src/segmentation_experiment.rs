//! Experiment 1 of the evaluation (the paper's §5.2): segmentation Dice per target, the model
//! against single-task baselines on the same held-out subjects. For each target of
//! [`ANATOMY_TARGETS`] and [`LESION_TARGETS`], K samples of `segment_anatomy` /
//! `segment_lesion` asking for that target (evaluation seeds, templates seen in training); the
//! model answers freely, and a baseline trained for the target (`BASELINES/<target>/`, written
//! by `voxelprompt baseline train`) segments the sample's first input. Paired statistics
//! ([`crate::stats::paired`]) compare the two on the same subjects.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Serialize;
use tasks::TaskSample;

use crate::checkpoint::TrainedBaseline;
use crate::error::{Result, TrainError};
use crate::eval::{EvalOptions, SampleResult};
use crate::model::Model;
use crate::stats::{paired, PairedComparison};
use crate::trainer::{sample_asking_for, SeedPurpose};

/// Anatomical targets of the experiment (vocabulary names; both sides where bilateral).
pub const ANATOMY_TARGETS: [&str; 6] = [
    "brain",
    "white matter",
    "lateral ventricle",
    "hippocampus",
    "thalamus",
    "caudate nucleus",
];

/// Lesion classes of the experiment (the lesion proper, edema excluded).
pub const LESION_TARGETS: [&str; 3] = ["glioma", "acute_infarct", "wmh"];

/// Evaluation-seed indices of this experiment start here, clear of the per-family samples.
const SEED_OFFSET: u64 = 1 << 40;
/// Seeds tried for one sample slot before it is left empty (no subject fitted the target).
const TRIES_PER_SAMPLE: usize = 8;

/// One target's results.
#[derive(Clone, Debug, Serialize)]
pub struct TargetResult {
    /// The target (vocabulary name or lesion class).
    pub target: String,
    /// The family its samples come from.
    pub family: String,
    /// The model's Dice on each sample (0 when it showed no mask of the expected name).
    pub model_dice: Vec<f64>,
    /// Mean of `model_dice`.
    pub model_mean_dice: f64,
    /// Samples whose program ran to `stop()` without an error.
    pub ran: usize,
    /// The baseline checkpoint used, if one exists for the target.
    pub baseline: Option<PathBuf>,
    /// The baseline's Dice on the same samples, in the same order.
    pub baseline_dice: Vec<f64>,
    /// Model minus baseline, paired by sample (when a baseline exists).
    pub comparison: Option<PairedComparison>,
    /// Every sample as the per-family evaluation records it.
    pub samples: Vec<SampleResult>,
}

/// The baseline checkpoint directory of `target` under `root`: spaces become underscores.
pub fn baseline_dir(root: &Path, target: &str) -> PathBuf {
    root.join(target.replace(' ', "_"))
}

fn baseline_dice(baseline: &TrainedBaseline, sample: &TaskSample) -> Result<f64> {
    let o = sample.expected.outputs.first().ok_or_else(|| {
        TrainError::Backend(format!("sample {} has no expected output", sample.seed))
    })?;
    let (input, truth) = crate::eval::input_and_truth(sample, o)?;
    let mask = crate::evaluation::segment(baseline, &input.image)?;
    Ok(voxel::metrics::dice(&mask, &truth)?)
}

/// The experiment's (family, target) pairs, anatomy first, in the order of the report.
fn experiment_targets() -> Vec<(&'static str, &'static str)> {
    ANATOMY_TARGETS
        .iter()
        .map(|t| ("segment_anatomy", *t))
        .chain(LESION_TARGETS.iter().map(|t| ("segment_lesion", *t)))
        .collect()
}

/// Runs the experiment with `per_target` samples per target and real anatomy (the options'
/// anatomy choice, spacing and answer limits apply); `baselines` is the folder of baseline
/// checkpoints and the device they run on. Calls `progress(done, total, target)` after each
/// sample.
pub fn run(
    model: &Model,
    options: &EvalOptions,
    per_target: usize,
    baselines: Option<(&Path, &Device)>,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<TargetResult>> {
    let sampler = options.experiment_sampler(model)?;
    let cats = sampler.catalogues();
    let targets = experiment_targets();
    let total = targets.len() * per_target;
    let mut baselines_by_target = Vec::with_capacity(targets.len());
    for (_, target) in &targets {
        baselines_by_target.push(match baselines {
            Some((root, device)) => {
                let dir = baseline_dir(root, target);
                if dir.join("training.json").is_file() {
                    Some((TrainedBaseline::load(&dir, device)?, dir))
                } else {
                    None
                }
            }
            None => None,
        });
    }
    // One job per (target, sample slot), each with seeds of its own, so slots run side by
    // side and the set does not depend on the thread count.
    let jobs = targets.len() * per_target;
    let mut done = 0;
    let slots = crate::parallel::ordered_jobs(
        jobs,
        options.threads(),
        |j, emit| {
            let (family, target) = targets[j / per_target];
            for attempt in 0..TRIES_PER_SAMPLE {
                let index = SEED_OFFSET + (j * TRIES_PER_SAMPLE + attempt) as u64 + 1;
                let Some((sample, cat)) =
                    held_out_asking_for(cats, options, index, family, target)?
                else {
                    continue;
                };
                let r = options.evaluate(model, &sample, cat)?;
                let baseline = match &baselines_by_target[j / per_target] {
                    Some((b, _)) => Some(baseline_dice(b, &sample)?),
                    None => None,
                };
                emit((r, baseline));
                break;
            }
            Ok(())
        },
        |j, _| {
            done += 1;
            progress(done, total, targets[j / per_target].1);
        },
    )?;
    let mut slots = slots.into_iter();
    let mut out = Vec::with_capacity(targets.len());
    for ((family, target), baseline) in targets.iter().zip(baselines_by_target) {
        let mut result = TargetResult {
            target: target.to_string(),
            family: family.to_string(),
            model_dice: Vec::new(),
            model_mean_dice: 0.0,
            ran: 0,
            baseline: baseline.as_ref().map(|b| b.1.clone()),
            baseline_dice: Vec::new(),
            comparison: None,
            samples: Vec::new(),
        };
        for (r, baseline_dice) in slots.by_ref().take(per_target).flatten() {
            result
                .model_dice
                .push(r.outputs.first().map_or(0.0, |o| o.dice));
            result.ran += usize::from(r.ran);
            result.baseline_dice.extend(baseline_dice);
            result.samples.push(r);
        }
        let n = result.model_dice.len().max(1) as f64;
        result.model_mean_dice = result.model_dice.iter().sum::<f64>() / n;
        if baseline.is_some() {
            result.comparison = paired(&result.model_dice, &result.baseline_dice);
        }
        out.push(result);
    }
    Ok(out)
}

/// How alike the ϕ vectors of the experiment's targets are: what tells the vision network
/// which target to segment. Targets whose ϕ are nearly the same cannot be told apart.
#[derive(Clone, Debug, Serialize)]
pub struct PhiSimilarity {
    /// The targets, in experiment order (those with at least one sample).
    pub targets: Vec<String>,
    /// Samples whose ϕ was averaged, per target.
    pub samples: Vec<usize>,
    /// Cosine similarity of the targets' mean ϕ, `[i][j]`.
    pub cosine: Vec<Vec<f64>>,
    /// Euclidean distance between the targets' mean ϕ over the mean of their lengths,
    /// `[i][j]`. A component every target shares (the common part of a ϕ) raises the cosine
    /// towards 1 without making targets alike; this says how far apart they are in ϕ's scale.
    pub relative_distance: Vec<Vec<f64>>,
}

/// Evaluation-seed indices of the ϕ comparison start here, clear of the other experiments.
const PHI_SEED_OFFSET: u64 = 3 << 40;

/// The ϕ the agent emits for each target of the experiment, read from up to `per_target`
/// held-out samples' ground-truth programs (as in program pretraining: the oracle answers the
/// vision calls), averaged per target and compared by cosine similarity.
pub fn phi_similarity(
    model: &Model,
    options: &EvalOptions,
    per_target: usize,
) -> Result<PhiSimilarity> {
    let sampler = options.experiment_sampler(model)?;
    let cats = sampler.catalogues();
    let targets = experiment_targets();
    let mut names = Vec::new();
    let mut samples = Vec::new();
    let mut means: Vec<Vec<f64>> = Vec::new();
    for (j, &(family, target)) in targets.iter().enumerate() {
        let mut sum: Vec<f64> = Vec::new();
        let mut n = 0usize;
        for attempt in 0..per_target * TRIES_PER_SAMPLE {
            if n == per_target {
                break;
            }
            let index = PHI_SEED_OFFSET + (j * per_target * TRIES_PER_SAMPLE + attempt) as u64;
            let Some((sample, _)) = held_out_asking_for(cats, options, index, family, target)?
            else {
                continue;
            };
            let phis = crate::joint::generator_phis(&model.net, &model.tokenizer, &sample)?;
            // The first generator of these families' programs asks for the target.
            let Some(phi) = phis.first() else { continue };
            if sum.is_empty() {
                sum = vec![0.0; phi.len()];
            }
            for (s, &x) in sum.iter_mut().zip(phi) {
                *s += f64::from(x);
            }
            n += 1;
        }
        if n > 0 {
            names.push(target.to_string());
            samples.push(n);
            means.push(sum.iter().map(|s| s / n as f64).collect());
        }
    }
    let cosine = means
        .iter()
        .map(|a| means.iter().map(|b| crate::stats::cosine(a, b)).collect())
        .collect();
    let relative_distance = crate::stats::relative_distances(&means);
    Ok(PhiSimilarity {
        targets: names,
        samples,
        cosine,
        relative_distance,
    })
}

impl PhiSimilarity {
    /// The comparison as a Markdown section: the cosine matrix.
    pub fn markdown(&self) -> String {
        let mut md = String::from(
            "\n## ϕ of the experiment's targets\n\nCosine similarity of the mean ϕ the agent \
             emits for each target (held-out samples' ground-truth programs, read with the true \
             masks as feedback). ϕ is all the vision network is told of the target: near 1 \
             between two targets, it cannot segment them differently.\n\n| target (samples) |",
        );
        for t in &self.targets {
            md.push_str(&format!(" {} |", target_words(t)));
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.targets.len()));
        md.push('\n');
        for ((t, n), row) in self.targets.iter().zip(&self.samples).zip(&self.cosine) {
            md.push_str(&format!("| {} ({n}) |", target_words(t)));
            for c in row {
                md.push_str(&format!(" {c:.2} |"));
            }
            md.push('\n');
        }
        md.push_str(
            "\nDistance between the mean ϕ of two targets over the mean length of a target's ϕ \
             (a part all targets share raises the cosine without making them alike; 0: the \
             same ϕ).\n\n| target |",
        );
        for t in &self.targets {
            md.push_str(&format!(" {} |", target_words(t)));
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.targets.len()));
        md.push('\n');
        for (t, row) in self.targets.iter().zip(&self.relative_distance) {
            md.push_str(&format!("| {} |", target_words(t)));
            for d in row {
                md.push_str(&format!(" {d:.2} |"));
            }
            md.push('\n');
        }
        md
    }
}

/// The held-out sample of evaluation index `index` that asks for `target` through `family`
/// ([`sample_asking_for`] with the options' evaluation seeds), with its catalogue.
fn held_out_asking_for<'c>(
    cats: &'c [tasks::Catalogue],
    options: &EvalOptions,
    index: u64,
    family: &str,
    target: &str,
) -> Result<Option<(TaskSample, &'c tasks::Catalogue)>> {
    sample_asking_for(
        cats,
        SeedPurpose::Evaluation,
        options.seed,
        index,
        family,
        target,
    )
}

/// A target as the reports write it: a lesion class by its canonical name (`acute infarct`
/// for `acute_infarct`), an anatomy target as it is.
fn target_words(target: &str) -> &str {
    tasks::classes::CLASSES
        .iter()
        .find(|c| c.name == target)
        .map_or(target, |c| c.canonical)
}

/// The experiment as a Markdown section: one row per target.
pub fn markdown(results: &[TargetResult]) -> String {
    let mut md = String::from(
        "\n## Segmentation against single-task baselines\n\nDice per target on the same \
         held-out subjects; difference = model − baseline with its 95 % t confidence interval; \
         p from the Wilcoxon signed-rank test.\n\n| target | samples | model Dice | ran | \
         baseline Dice | difference [95 % CI] | Wilcoxon p |\n|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let (b, d, p) = match &r.comparison {
            Some(c) => (
                format!("{:.3}", c.mean_b),
                match c.ci95 {
                    Some([lo, hi]) => format!("{:+.3} [{lo:+.3}, {hi:+.3}]", c.mean_difference),
                    None => format!("{:+.3}", c.mean_difference),
                },
                format!("{:.3} ({:?})", c.wilcoxon.p_value, c.wilcoxon.method).to_lowercase(),
            ),
            None => ("no baseline".into(), "—".into(), "—".into()),
        };
        md.push_str(&format!(
            "| {} | {} | {:.3} | {} | {b} | {d} | {p} |\n",
            target_words(&r.target),
            r.model_dice.len(),
            r.model_mean_dice,
            r.ran
        ));
    }
    md
}
