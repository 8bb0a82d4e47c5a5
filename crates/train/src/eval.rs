//! Evaluation on held-out synthetic samples (DESIGN.md §7, the paper's §5): for every real
//! anatomy in the cache and every available task family, K samples drawn with evaluation seeds
//! (disjoint from training and validation by construction, [`SeedPurpose::Evaluation`]); the
//! agent writes each program freely (greedy decoding, no teacher forcing) and it runs with the
//! model's vision network. Each sample records whether every step ran, the response, the
//! model-level check, the Dice of every expected output and the time taken; the report
//! aggregates success per family and overall, and Dice per target.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tasks::checker::output_score;
use tasks::{Level, TaskSample, TemplateSplit};

use crate::error::{Result, TrainError};
use crate::inference::{answer, AnswerOptions, Conversation, Ending, Scan};
use crate::model::Model;
use crate::trainer::{JointSampler, JointSettings, SeedPurpose};

/// Appended to the report's model name when an oracle answered the vision calls
/// ([`EvalOptions::oracle_vision`]); `voxelprompt ship` refuses such a report.
pub const ORACLE_VISION_SUFFIX: &str = " with oracle vision";

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Samples per family and anatomy.
    pub per_family: usize,
    /// Seed of the evaluation set (its samples use evaluation seeds derived from it).
    pub seed: u64,
    /// Anatomy choice (`all` = every real anatomy in the cache, else the phantom).
    pub anatomy: String,
    /// Voxel sizes (mm) the subjects are synthesised at, one evaluation set each; empty: the
    /// model's working spacing. Robustness to resolution: the model conforms every scan to its
    /// own spacing, so finer or coarser inputs test the resampling path and partial volume.
    pub spacings_mm: Vec<[f64; 3]>,
    /// Limits of each answer.
    pub answer: AnswerOptions,
    /// Where to draw each generated mask against the truth (`FAMILY-SEED-OUTPUT.png`); none
    /// when `None`.
    pub pictures: Option<std::path::PathBuf>,
    /// Answer every vision call with the true mask ([`Conversation::with_oracle`]): the
    /// agent's own success, as if its vision network were perfect.
    pub oracle_vision: bool,
    /// Samples answered side by side ([`crate::parallel`]); 0: the global rayon pool's size.
    pub threads: usize,
    /// Family ids to evaluate; empty: every family. A family's samples are the same whichever
    /// others are evaluated with it.
    pub families: Vec<String>,
}

/// The Dice of one expected output.
#[derive(Clone, Debug, Serialize)]
pub struct OutputDice {
    /// Output name.
    pub name: String,
    /// The target in words (`left hippocampus`, `the larger metastasis`), else the output name.
    pub target: String,
    /// Dice against the truth (0 when the output was not shown).
    pub dice: f64,
    /// The picture of the model's mask over the truth, relative to the report (mask outputs
    /// only, when pictures were asked for).
    pub picture: Option<String>,
}

/// One evaluated sample.
#[derive(Clone, Debug, Serialize)]
pub struct SampleResult {
    /// Family id.
    pub family: String,
    /// Anatomy the subject came from.
    pub anatomy: String,
    /// Voxel size the subject was synthesised at, mm per axis.
    pub spacing_mm: [f64; 3],
    /// Sample seed.
    pub seed: u64,
    /// The prompt.
    pub prompt: String,
    /// Whether the prompt carries an injected typo.
    pub typo: bool,
    /// Whether the prompt comes from the family's template held out of training.
    pub held_out_template: bool,
    /// Modality of each input.
    pub modalities: Vec<String>,
    /// Number of input volumes.
    pub inputs: usize,
    /// The program the agent wrote, steps joined.
    pub program: String,
    /// The response.
    pub response: String,
    /// The expected answer (the ground-truth program's response).
    pub expected: String,
    /// Whether every step ran without error and the program called `stop()`.
    pub ran: bool,
    /// Whether the agent made no error of its own: the program ran to `stop()`, or its only
    /// error was the last step's refusal of an empty mask or an undefined value
    /// ([`Ending::is_dead_end`]), which the answer states in words.
    pub agent_ran: bool,
    /// Whether the model-level checker accepted the answer and outputs.
    pub passed: bool,
    /// The checker's failures, if any.
    pub failures: String,
    /// Why the program did not run to `stop()`: the first step error (`step N: …`), or the
    /// limit that ended it; `None` when it ran.
    pub error: Option<String>,
    /// Dice of each expected output.
    pub outputs: Vec<OutputDice>,
    /// Seconds to answer.
    pub seconds: f64,
}

impl EvalOptions {
    /// Worker threads: [`EvalOptions::threads`], else the global rayon pool's size.
    pub fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            crate::parallel::default_threads()
        }
    }

    /// Evaluates `sample` (drawn from `catalogue`) with these options' answer limits, pictures
    /// and vision.
    pub fn evaluate(
        &self,
        model: &Model,
        sample: &TaskSample,
        catalogue: &tasks::Catalogue,
    ) -> Result<SampleResult> {
        evaluate_sample(
            model,
            sample,
            &catalogue.anatomy().name,
            &self.answer,
            self.pictures.as_deref(),
            self.oracle_vision,
        )
    }

    /// Sampler settings of every evaluation: the options' anatomy, every family weighted alike.
    fn sampler_settings(&self) -> Result<JointSettings> {
        JointSettings::for_sampling(&self.anatomy, BTreeMap::new(), 1.0)
    }

    /// The sampler of an experiment on held-out samples: every family, the options' anatomy,
    /// the first of their voxel sizes (else the model's working spacing) and seed.
    pub(crate) fn experiment_sampler(&self, model: &Model) -> Result<JointSampler> {
        let settings = self.sampler_settings()?;
        let spacing = self
            .spacings_mm
            .first()
            .copied()
            .unwrap_or([model.config.preprocessing.spacing_mm; 3]);
        JointSampler::on_grid(&settings, spacing, self.seed)
    }
}

/// Success per family.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FamilySummary {
    /// Samples evaluated.
    pub samples: usize,
    /// Samples that passed the checker.
    pub passed: usize,
    /// Samples whose program ran to `stop()` without an error.
    pub ran: usize,
    /// Mean seconds per sample.
    pub mean_seconds: f64,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Model name and weights id.
    pub model: String,
    /// Samples per family and anatomy.
    pub per_family: usize,
    /// Evaluation seed.
    pub seed: u64,
    /// Every sample.
    pub samples: Vec<SampleResult>,
    /// Success by family.
    pub families: BTreeMap<String, FamilySummary>,
    /// Mean Dice by expected-output target (in words).
    pub dice_by_target: BTreeMap<String, f64>,
    /// Fraction of samples that passed.
    pub success: f64,
    /// Why programs did not run to `stop()`: samples by cause ([`error_cause`]).
    pub not_ran: BTreeMap<String, usize>,
    /// The presence questions' yes/no answers against the truth ([`PresenceCounts`]); `None`
    /// without such samples.
    pub presence: Option<PresenceCounts>,
    /// Success by condition: `template: seen|held out`, `typo: yes|no`, `inputs: N`,
    /// `contrast: M` (of the first input), `anatomy: A`.
    pub breakdown: BTreeMap<String, Rate>,
    /// Experiment 1, Dice per target against baselines ([`crate::segmentation_experiment`]);
    /// empty when it was not run.
    pub segmentation: Vec<crate::segmentation_experiment::TargetResult>,
    /// Experiment 2, characterisation accuracy against single-task classifiers
    /// ([`crate::characterisation_experiment`]); empty when it was not run.
    pub characterisation: Vec<crate::characterisation_experiment::FamilyResult>,
    /// How alike the ϕ of experiment 1's targets are
    /// ([`crate::segmentation_experiment::phi_similarity`]); run with experiment 1.
    pub phi_similarity: Option<crate::segmentation_experiment::PhiSimilarity>,
}

/// How the answers to "is there a …?" (`lesion_presence`) split, whatever class they name:
/// sensitivity `found / present`, specificity `cleared / absent`. A model that finds a lesion in
/// every healthy head passes half these samples and is useless for the first question of a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PresenceCounts {
    /// Samples whose subject has the lesion asked about.
    pub present: usize,
    /// Of those, answered "Yes".
    pub found: usize,
    /// Samples whose subject has none.
    pub absent: usize,
    /// Of those, answered "No".
    pub cleared: usize,
}

impl PresenceCounts {
    /// The counts of the presence samples among `samples`; `None` when there is none.
    pub fn of(samples: &[SampleResult]) -> Option<PresenceCounts> {
        let mut c = PresenceCounts::default();
        for s in samples
            .iter()
            .filter(|s| s.family == tasks::families::presence::FAMILY_ID)
        {
            let said = tasks::families::presence::answer_says_present(&s.response);
            match tasks::families::presence::answer_says_present(&s.expected) {
                Some(true) => {
                    c.present += 1;
                    c.found += usize::from(said == Some(true));
                }
                Some(false) => {
                    c.absent += 1;
                    c.cleared += usize::from(said == Some(false));
                }
                None => {}
            }
        }
        (c.present + c.absent > 0).then_some(c)
    }
}

/// A success rate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Rate {
    /// Samples.
    pub samples: usize,
    /// Of which passed.
    pub passed: usize,
}

fn scans_of(sample: &TaskSample) -> Vec<Scan> {
    sample
        .inputs
        .iter()
        .map(|i| Scan {
            name: i.name.clone(),
            image: i.image.clone(),
            modality: Some(i.modality.clone()),
            date: Some(i.date.clone()),
        })
        .collect()
}

/// A voxel size as people write it: `2` when isotropic, `1×1×5` otherwise (rounded to 0.01 mm).
pub fn spacing_label(mm: [f64; 3]) -> String {
    let r = mm.map(|v| (v * 100.0).round() / 100.0);
    if r[0] == r[1] && r[1] == r[2] {
        format!("{}", r[0])
    } else {
        format!("{}×{}×{}", r[0], r[1], r[2])
    }
}

/// The input an expected output is drawn on and its true mask.
pub(crate) fn input_and_truth<'s>(
    sample: &'s TaskSample,
    o: &tasks::checker::ExpectedOutput,
) -> Result<(&'s tasks::InputVolume, voxel::Mask)> {
    let input = sample.input(&o.input).ok_or_else(|| {
        TrainError::Backend(format!(
            "expected output {} has no input {}",
            o.name, o.input
        ))
    })?;
    Ok((input, sample.truth.mask(&o.target, o.session)?))
}

/// Evaluates one sample.
pub fn evaluate_sample(
    model: &Model,
    sample: &TaskSample,
    anatomy: &str,
    options: &AnswerOptions,
    pictures: Option<&Path>,
    oracle_vision: bool,
) -> Result<SampleResult> {
    let started = Instant::now();
    let scans = scans_of(sample);
    let result = if oracle_vision {
        let oracle = Arc::new(tasks::oracle::OracleBackend::new(sample));
        Conversation::with_oracle(model, &scans, options.clone(), oracle)?
            .ask(&sample.prompt.text)?
    } else {
        answer(model, &scans, &sample.prompt.text, options)?
    };
    let check = sample.check(
        &result.output.response,
        &result.output.outputs,
        Level::Model,
    )?;
    let mut outputs = Vec::new();
    for o in &sample.expected.outputs {
        let mut picture = None;
        let dice = match result.output.outputs.iter().find(|x| x.name == o.name) {
            None => 0.0,
            Some(found) => {
                let (input, truth) = input_and_truth(sample, o)?;
                if let (Some(dir), runtime::OutputData::Mask(predicted)) = (pictures, &found.data) {
                    let name = format!("{}-{}-{}.png", sample.family, sample.seed, o.name);
                    comparison_png(&dir.join(&name), &input.image, &truth, predicted)?;
                    picture = Some(format!("pictures/{name}"));
                }
                output_score(o.kind, &input.image, &truth, found)?
            }
        };
        let target = sample
            .mods()
            .find_map(|m| match m {
                tasks::program::ModMeaning::Generate { target } if target.mask == o.target => {
                    Some(target.description.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| o.name.clone());
        outputs.push(OutputDice {
            name: o.name.clone(),
            target,
            dice,
            picture,
        });
    }
    let first_error_step = result.steps.iter().position(|s| s.error.is_some());
    let first_error = first_error_step.and_then(|i| {
        result.steps[i]
            .error
            .as_ref()
            .map(|e| format!("step {}: {e}", i + 1))
    });
    let agent_ran = agent_made_no_error(first_error_step, result.steps.len(), result.ending);
    let error = match (first_error, result.ending) {
        (Some(e), _) => Some(e),
        (None, Ending::Stopped) => None,
        (None, Ending::StepLimit) => Some(format!(
            "{} steps without stop() (the step limit)",
            result.steps.len()
        )),
        (None, Ending::SequenceLimit) => Some("the agent's context filled up".to_string()),
        // The step that refused the empty mask carries the error, so this arm is not reached.
        (None, Ending::EmptyMask) => Some("a measurement of an empty mask".to_string()),
        (None, Ending::Undefined) => Some("an undefined value".to_string()),
    };
    let ran = error.is_none();
    Ok(SampleResult {
        family: sample.family.clone(),
        anatomy: anatomy.to_string(),
        spacing_mm: sample
            .inputs
            .first()
            .map(|i| i.image.geometry().spacing_mm())
            .unwrap_or([f64::NAN; 3]),
        seed: sample.seed,
        prompt: sample.prompt.text.clone(),
        typo: sample.prompt.typo,
        held_out_template: false,
        modalities: sample.inputs.iter().map(|i| i.modality.clone()).collect(),
        inputs: sample.inputs.len(),
        program: result
            .steps
            .iter()
            .map(|s| s.code.as_str())
            .collect::<Vec<_>>()
            .join("\n<step>\n"),
        response: result.output.response.clone(),
        expected: sample.answer.clone(),
        ran,
        agent_ran,
        passed: check.passed && ran,
        failures: check.failures(),
        error,
        outputs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The `requested` families among `available` (all of them when none is requested), in the
/// catalogue's order; a family that is not available is an error that lists those that are.
fn select_families(available: Vec<String>, requested: &[String]) -> Result<Vec<String>> {
    if requested.is_empty() {
        return Ok(available);
    }
    if let Some(unknown) = requested.iter().find(|r| !available.contains(r)) {
        return Err(TrainError::Settings {
            what: "evaluation family".into(),
            problem: format!(
                "{unknown:?} is not a family this evaluation can draw; the families are: {}",
                available.join(", ")
            ),
        });
    }
    Ok(available
        .into_iter()
        .filter(|f| requested.contains(f))
        .collect())
}

/// [`SampleResult::agent_ran`] of a program of `steps` steps whose first error (if any) was at
/// step index `first_error_step` and that ended with `ending`. A dead end is refused at the
/// last step; an error before it was the agent's.
fn agent_made_no_error(first_error_step: Option<usize>, steps: usize, ending: Ending) -> bool {
    match first_error_step {
        None => ending == Ending::Stopped,
        Some(i) => ending.is_dead_end() && i + 1 == steps,
    }
}

/// The cause of a program error as the report counts it: the runtime's error kind
/// (`error (syntax)`, `error (library)`, …), else the limit that ended the program.
pub fn error_cause(error: &str) -> String {
    if let Some(start) = error.find("error (") {
        let rest = &error[start..];
        if let Some(end) = rest.find(')') {
            let kind = &rest[..=end];
            // The message's head says more than the kind alone: a library error names its
            // function (`centroid: empty mask: …`), others start with what went wrong
            // (`unknown variable `s1``); names and quoted code are left out so causes group.
            let message = rest[end + 1..].split_once(": ").map_or("", |(_, m)| m);
            let head = message
                .split([':', '`', '\'', '"'])
                .next()
                .unwrap_or("")
                .trim();
            return if head.is_empty() {
                kind.to_string()
            } else {
                format!("{kind} {}", head.chars().take(48).collect::<String>())
            };
        }
    }
    if error.contains("step limit") {
        "no stop() within the step limit".to_string()
    } else if error.contains("context") {
        "the agent's context filled up".to_string()
    } else {
        "other".to_string()
    }
}

/// The share of `samples` the agent answers right writing its programs freely, with oracle
/// vision ([`Conversation::with_oracle`]): the free-running validation of training, which
/// teacher-forced losses do not measure.
pub fn oracle_success(model: &Model, samples: &[TaskSample]) -> Result<f64> {
    if samples.is_empty() {
        return Ok(0.0);
    }
    let options = AnswerOptions::default();
    let mut passed = 0usize;
    for s in samples {
        passed += usize::from(evaluate_sample(model, s, "", &options, None, true)?.passed);
    }
    Ok(passed as f64 / samples.len() as f64)
}

/// Runs the evaluation, calling `progress(done, total, result)` after each sample.
pub fn evaluate(
    model: &Model,
    model_id: &str,
    options: &EvalOptions,
    mut progress: impl FnMut(usize, usize, &SampleResult),
) -> Result<EvalReport> {
    let settings = options.sampler_settings()?;
    let spacings = if options.spacings_mm.is_empty() {
        vec![[model.config.preprocessing.spacing_mm; 3]]
    } else {
        options.spacings_mm.clone()
    };
    let mut samplers = Vec::with_capacity(spacings.len());
    for &mm in &spacings {
        if !mm.iter().all(|s| s.is_finite() && (0.5..=8.0).contains(s)) {
            return Err(TrainError::Settings {
                what: "evaluation spacing".into(),
                problem: format!("{mm:?} mm is outside 0.5–8 mm"),
            });
        }
        samplers.push(JointSampler::on_grid(&settings, mm, options.seed)?);
    }
    let cats: Vec<&tasks::Catalogue> = samplers.iter().flat_map(|s| s.catalogues()).collect();
    let available: Vec<String> = cats[0]
        .families()
        .iter()
        .filter(|f| matches!(cats[0].unavailable(f.id), Ok(None)))
        .map(|f| f.id.to_string())
        .collect();
    let families = select_families(available, &options.families)?;
    let total = families.len() * cats.len() * options.per_family;
    // One job per (anatomy, family); each draws its samples from seeds named by the pair, so
    // the set depends neither on which job a thread took first nor on the other families (a new
    // family leaves every other family's samples as they were).
    let jobs: Vec<(&tasks::Catalogue, &str)> = cats
        .iter()
        .flat_map(|&cat| families.iter().map(move |f| (cat, f.as_str())))
        .collect();
    let tries_per_job = options.per_family * 4 + 4;
    let mut done = 0;
    let per_job = crate::parallel::ordered_jobs(
        jobs.len(),
        options.threads(),
        |j, emit| {
            let (cat, family) = jobs[j];
            let first_index = job_seed_index(&job_name(cat), family);
            let mut got = 0;
            for attempt in 0..tries_per_job {
                if got == options.per_family {
                    break;
                }
                let index = first_index.wrapping_add(attempt as u64);
                let seed =
                    crate::trainer::sample_seed(SeedPurpose::Evaluation, options.seed, index);
                // Every other sample asks with the family's held-out template (language
                // generalisation); the rest with templates seen in training.
                let held_out = got % 2 == 1;
                let split = if held_out {
                    TemplateSplit::HeldOut
                } else {
                    TemplateSplit::Training
                };
                let sample = match cat.sample_split(family, seed, split) {
                    Ok(s) => s,
                    Err(tasks::TaskError::NoSample { .. }) => continue,
                    Err(source) => {
                        return Err(TrainError::Sample {
                            family: family.to_string(),
                            anatomy: cat.anatomy().name.clone(),
                            seed,
                            source,
                        })
                    }
                };
                let mut r = options.evaluate(model, &sample, cat)?;
                r.held_out_template = held_out;
                got += 1;
                emit(r);
            }
            Ok(())
        },
        |_, r| {
            done += 1;
            progress(done, total, r);
        },
    )?;
    let samples: Vec<SampleResult> = per_job.into_iter().flatten().collect();
    Ok(summarise(model_id, options, samples))
}

fn summarise(model_id: &str, options: &EvalOptions, samples: Vec<SampleResult>) -> EvalReport {
    let mut families: BTreeMap<String, FamilySummary> = BTreeMap::new();
    let mut dice: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for s in &samples {
        let f = families.entry(s.family.clone()).or_default();
        f.samples += 1;
        f.passed += usize::from(s.passed);
        f.ran += usize::from(s.ran);
        f.mean_seconds += s.seconds;
        for o in &s.outputs {
            let e = dice.entry(o.target.clone()).or_insert((0.0, 0));
            e.0 += o.dice;
            e.1 += 1;
        }
    }
    for f in families.values_mut() {
        f.mean_seconds /= f.samples.max(1) as f64;
    }
    let passed = samples.iter().filter(|s| s.passed).count();
    let mut breakdown: BTreeMap<String, Rate> = BTreeMap::new();
    for s in &samples {
        let keys = [
            format!(
                "template: {}",
                if s.held_out_template {
                    "held out"
                } else {
                    "seen"
                }
            ),
            format!("typo: {}", if s.typo { "yes" } else { "no" }),
            format!("inputs: {}", s.inputs),
            format!(
                "contrast: {}",
                s.modalities.first().map(String::as_str).unwrap_or("none")
            ),
            format!("anatomy: {}", s.anatomy),
            format!("spacing: {} mm", spacing_label(s.spacing_mm)),
        ];
        for k in keys {
            let r = breakdown.entry(k).or_default();
            r.samples += 1;
            r.passed += usize::from(s.passed);
        }
    }
    let mut not_ran: BTreeMap<String, usize> = BTreeMap::new();
    for e in samples.iter().filter_map(|s| s.error.as_deref()) {
        *not_ran.entry(error_cause(e)).or_default() += 1;
    }
    EvalReport {
        breakdown,
        not_ran,
        presence: PresenceCounts::of(&samples),
        model: model_id.to_string(),
        per_family: options.per_family,
        seed: options.seed,
        success: passed as f64 / samples.len().max(1) as f64,
        families,
        dice_by_target: dice
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / n.max(1) as f64))
            .collect(),
        samples,
        segmentation: Vec::new(),
        characterisation: Vec::new(),
        phi_similarity: None,
    }
}

impl EvalReport {
    /// The report as Markdown: overall success, a table per family, Dice by target, and a few
    /// failures with their programs.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# VoxelPrompt evaluation\n\nModel `{}`, {} sample(s) per family and anatomy, seed {}.\n\n**End-to-end success: {:.1} %** ({} of {} samples).\n\n",
            self.model,
            self.per_family,
            self.seed,
            100.0 * self.success,
            self.samples.iter().filter(|s| s.passed).count(),
            self.samples.len()
        );
        md.push_str(&format!(
            "Programs with no error of the agent's: {} of {} (ran to `stop()`: {}; the others \
             ended on a measurement of an empty mask or an undefined value, answered in words).\n\n",
            self.samples.iter().filter(|s| s.agent_ran).count(),
            self.samples.len(),
            self.samples.iter().filter(|s| s.ran).count(),
        ));
        md.push_str("| family | samples | passed | ran to stop() | success | s/sample |\n|---|---|---|---|---|---|\n");
        for (id, f) in &self.families {
            md.push_str(&format!(
                "| {id} | {} | {} | {} | {:.0} % | {:.1} |\n",
                f.samples,
                f.passed,
                f.ran,
                100.0 * f.passed as f64 / f.samples.max(1) as f64,
                f.mean_seconds
            ));
        }
        md.push_str(
            "\n## Success by condition\n\n| condition | samples | success |\n|---|---|---|\n",
        );
        for (k, r) in &self.breakdown {
            md.push_str(&format!(
                "| {k} | {} | {:.0} % |\n",
                r.samples,
                100.0 * r.passed as f64 / r.samples.max(1) as f64
            ));
        }
        if !self.not_ran.is_empty() {
            md.push_str(
                "\n## Why programs did not run to stop()\n\n| cause | samples |\n|---|---|\n",
            );
            let mut causes: Vec<(&String, &usize)> = self.not_ran.iter().collect();
            causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (cause, n) in causes {
                md.push_str(&format!("| {cause} | {n} |\n"));
            }
        }
        if let Some(p) = &self.presence {
            md.push_str(&format!(
                "\n## Is there a lesion? (lesion_presence)\n\n| subjects | answered right |\n|---|---|\n\
                 | with the lesion asked about (sensitivity) | {} of {} |\n\
                 | without it (specificity) | {} of {} |\n",
                p.found, p.present, p.cleared, p.absent
            ));
        }
        if !self.dice_by_target.is_empty() {
            md.push_str(
                "\n## Dice of shown outputs, by target\n\n| target | mean Dice |\n|---|---|\n",
            );
            for (t, d) in &self.dice_by_target {
                md.push_str(&format!("| {t} | {d:.3} |\n"));
            }
        }
        if !self.segmentation.is_empty() {
            md.push_str(&crate::segmentation_experiment::markdown(
                &self.segmentation,
            ));
        }
        if let Some(phi) = &self.phi_similarity {
            md.push_str(&phi.markdown());
        }
        if !self.characterisation.is_empty() {
            md.push_str(&crate::characterisation_experiment::markdown(
                &self.characterisation,
            ));
        }
        let pictured: Vec<(&SampleResult, &OutputDice)> = self
            .samples
            .iter()
            .flat_map(|s| s.outputs.iter().map(move |o| (s, o)))
            .filter(|(_, o)| o.picture.is_some())
            .take(12)
            .collect();
        if !pictured.is_empty() {
            md.push_str(
                "\n## Masks against the truth\n\nGreen: truth the model missed; red: the model's \
                 mask outside the truth; yellow: both.\n\n",
            );
            for (s, o) in pictured {
                md.push_str(&format!(
                    "- {} (seed {}), {}: Dice {:.3}\n\n  ![{}]({})\n",
                    s.family,
                    s.seed,
                    o.target,
                    o.dice,
                    o.target,
                    o.picture.as_deref().unwrap_or_default()
                ));
            }
        }
        let failures: Vec<&SampleResult> =
            self.samples.iter().filter(|s| !s.passed).take(5).collect();
        if !failures.is_empty() {
            md.push_str("\n## Some failures\n");
            for f in failures {
                md.push_str(&format!(
                    "\n### {} (seed {})\n\nPrompt: {}\n\nExpected: {}\n\nGot: {}\n\nChecker: {}\n\nProgram error: {}\n\n```\n{}\n```\n",
                    f.family,
                    f.seed,
                    f.prompt,
                    f.expected.trim(),
                    if f.response.trim().is_empty() { "(nothing)" } else { f.response.trim() },
                    f.failures.replace('\n', "; "),
                    f.error.as_deref().unwrap_or("none"),
                    f.program
                ));
            }
        }
        md
    }

    /// Draws the report's charts into `dir/charts/`: success per family, and model versus
    /// baseline Dice per target when the segmentation experiment ran; plus the learning curve
    /// from `train_csv` when given. Returns the charts drawn (paths relative to `dir`) and why
    /// any could not be (a missing font), so a long evaluation never fails on a picture.
    pub fn charts(&self, dir: &Path, train_csv: Option<&Path>) -> (Vec<String>, Vec<String>) {
        let charts = dir.join("charts");
        if let Err(e) = std::fs::create_dir_all(&charts) {
            return (Vec::new(), vec![format!("{}: {e}", charts.display())]);
        }
        let (mut drawn, mut problems) = (Vec::new(), Vec::new());
        let mut keep = |name: &str, r: Result<()>| match r {
            Ok(()) => drawn.push(format!("charts/{name}")),
            Err(e) => problems.push(e.to_string()),
        };
        if !self.families.is_empty() {
            let ids: Vec<String> = self.families.keys().cloned().collect();
            let rate = |f: &dyn Fn(&FamilySummary) -> usize| -> Vec<f64> {
                self.families
                    .values()
                    .map(|s| f(s) as f64 / s.samples.max(1) as f64)
                    .collect()
            };
            let (passed, ran) = (rate(&|s| s.passed), rate(&|s| s.ran));
            let name = "success_by_family.png";
            keep(
                name,
                crate::plot::bar_chart_png(
                    &charts.join(name),
                    "End-to-end success per family",
                    "fraction of samples",
                    &ids,
                    &[
                        crate::plot::Bars {
                            name: "passed the checker",
                            values: &passed,
                            colour: plotters::style::RGBColor(44, 160, 44),
                        },
                        crate::plot::Bars {
                            name: "ran to stop()",
                            values: &ran,
                            colour: plotters::style::RGBColor(31, 119, 180),
                        },
                    ],
                    1.0,
                ),
            );
        }
        if !self.segmentation.is_empty() {
            let targets: Vec<String> = self.segmentation.iter().map(|r| r.target.clone()).collect();
            let model: Vec<f64> = self
                .segmentation
                .iter()
                .map(|r| r.model_mean_dice)
                .collect();
            let baseline: Vec<f64> = self
                .segmentation
                .iter()
                .map(|r| r.comparison.as_ref().map_or(f64::NAN, |c| c.mean_b))
                .collect();
            let name = "dice_by_target.png";
            keep(
                name,
                crate::plot::bar_chart_png(
                    &charts.join(name),
                    "Segmentation Dice per target",
                    "mean Dice",
                    &targets,
                    &[
                        crate::plot::Bars {
                            name: "VoxelPrompt",
                            values: &model,
                            colour: plotters::style::RGBColor(31, 119, 180),
                        },
                        crate::plot::Bars {
                            name: "single-task baseline",
                            values: &baseline,
                            colour: plotters::style::RGBColor(255, 127, 14),
                        },
                    ],
                    1.0,
                ),
            );
        }
        if let Some(csv) = train_csv {
            let name = "learning_curve.png";
            keep(name, crate::plot::loss_png(csv, &charts.join(name)));
        }
        (drawn, problems)
    }

    /// Writes `report.json` and `report.md` into `dir`, with the charts of
    /// [`EvalReport::charts`] (the learning curve from `train_csv` when given).
    pub fn write(&self, dir: &Path, train_csv: Option<&Path>) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let json =
            serde_json::to_string_pretty(self).map_err(|e| TrainError::Backend(e.to_string()))?;
        let (drawn, problems) = self.charts(dir, train_csv);
        let mut md = self.markdown();
        if !drawn.is_empty() || !problems.is_empty() {
            md.push_str(
                "
## Charts

",
            );
            for c in &drawn {
                md.push_str(&format!(
                    "![{c}]({c})

"
                ));
            }
            for p in &problems {
                md.push_str(&format!(
                    "Not drawn: {p}

"
                ));
            }
        }
        for (name, text) in [("report.json", json), ("report.md", md)] {
            let path = dir.join(name);
            voxel::io::atomic_write(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
        }
        Ok(())
    }
}

/// The model's mask `predicted` against `truth` over `image` ([`voxel::render::save_comparison_png`]),
/// drawn at 1 mm because evaluation subjects are at the model's coarse working spacing.
fn comparison_png(
    path: &Path,
    image: &voxel::Image,
    truth: &voxel::Mask,
    predicted: &voxel::Mask,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    voxel::render::save_comparison_png(path, image, truth, predicted, Some(1.0))?;
    Ok(())
}

/// What names a catalogue's evaluation jobs: its anatomy and, when it has one, its grid
/// (`--spacing 4,4x4x6` evaluates one anatomy on two).
fn job_name(cat: &tasks::Catalogue) -> String {
    let [x, y, z] = cat.grid_spacing_mm();
    format!("{} at {x}x{y}x{z} mm", cat.anatomy().name)
}

/// The first sample index of the evaluation job for (`catalogue`, `family`): FNV-1a of both
/// names, so the samples of a family do not move when families are added or reordered.
fn job_seed_index(catalogue: &str, family: &str) -> u64 {
    crate::model::fnv1a(format!("{catalogue}/{family}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::{
        agent_made_no_error, error_cause, job_seed_index, select_families, PresenceCounts,
        SampleResult,
    };
    use crate::inference::Ending;

    #[test]
    fn evaluation_seeds_are_named_by_anatomy_and_family() {
        // FNV-1a 64 of the bytes, computed independently (Python).
        assert_eq!(
            job_seed_index("fsaverage/aparc+aseg.mgz", "lesion_presence"),
            0xfeeb_12a8_6bea_2277
        );
        assert_ne!(
            job_seed_index("fsaverage/aparc+aseg.mgz", "volume"),
            job_seed_index("deepmriprep/neuromorphometrics", "volume")
        );
    }

    fn answered(family: &str, expected: &str, response: &str) -> SampleResult {
        SampleResult {
            family: family.into(),
            anatomy: "fsaverage".into(),
            spacing_mm: [3.0; 3],
            seed: 1,
            prompt: "Is there any glioma?".into(),
            typo: false,
            held_out_template: false,
            modalities: vec!["T1w".into()],
            inputs: 1,
            program: String::new(),
            response: response.into(),
            expected: expected.into(),
            ran: true,
            agent_ran: true,
            passed: expected == response,
            failures: String::new(),
            error: None,
            outputs: Vec::new(),
            seconds: 1.0,
        }
    }

    #[test]
    fn presence_answers_count_as_sensitivity_and_specificity() {
        let (yes, no) = ("Yes: there is a glioma.", "No: there is no glioma.");
        let samples = [
            answered("lesion_presence", yes, yes),
            answered("lesion_presence", yes, "Yes: there is an abscess."),
            answered("lesion_presence", yes, no),
            answered("lesion_presence", no, yes),
            answered("lesion_presence", no, "The glioma is 3 mL."),
            answered("lesion_presence", no, no),
            answered("volume", no, no),
        ];
        let c = PresenceCounts::of(&samples).unwrap();
        assert_eq!(
            c,
            PresenceCounts {
                present: 3,
                found: 2,
                absent: 3,
                cleared: 1
            }
        );
        assert_eq!(PresenceCounts::of(&samples[6..]), None);
    }

    #[test]
    fn families_are_chosen_by_id_in_the_catalogues_order() {
        let available = || vec!["volume".to_string(), "lesion_presence".into(), "snr".into()];
        assert_eq!(select_families(available(), &[]).unwrap(), available());
        let chosen = select_families(available(), &["snr".into(), "volume".into()]).unwrap();
        assert_eq!(chosen, vec!["volume".to_string(), "snr".into()]);
        let err = select_families(available(), &["presence".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"presence\"") && err.contains("lesion_presence"),
            "{err}"
        );
    }

    #[test]
    fn only_the_agents_own_errors_count_against_it() {
        assert!(agent_made_no_error(None, 3, Ending::Stopped));
        assert!(!agent_made_no_error(None, 12, Ending::StepLimit));
        assert!(!agent_made_no_error(None, 9, Ending::SequenceLimit));
        // The last step measured an empty mask, or divided by its zero volume.
        assert!(agent_made_no_error(Some(2), 3, Ending::EmptyMask));
        assert!(agent_made_no_error(Some(1), 2, Ending::Undefined));
        // A syntax error at step 1, then the dead end at step 3: the agent's error first.
        assert!(!agent_made_no_error(Some(0), 3, Ending::EmptyMask));
        // An error the agent wrote past (ran on to stop()) still counts.
        assert!(!agent_made_no_error(Some(0), 3, Ending::Stopped));
    }

    #[test]
    fn error_causes_group_by_kind_and_message_head() {
        assert_eq!(
            error_cause(
                "step 2: error (library) at line 3, column 6: centroid: empty mask: centroid of \
                 an empty mask is undefined"
            ),
            "error (library) centroid"
        );
        assert_eq!(
            error_cause(
                "step 1: error (syntax) at line 1, column 16: unknown variable `s1`; define it"
            ),
            "error (syntax) unknown variable"
        );
        assert_eq!(
            error_cause("step 3: error (syntax) at line 1, column 243: Expecting ',' to separate"),
            "error (syntax) Expecting"
        );
        assert_eq!(
            error_cause("12 steps without stop() (the step limit)"),
            "no stop() within the step limit"
        );
        assert_eq!(
            error_cause("the agent's context filled up"),
            "the agent's context filled up"
        );
        assert_eq!(error_cause("something else"), "other");
    }
}
