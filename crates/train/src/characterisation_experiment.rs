//! Experiment 2 of the evaluation (the paper's characterisation comparison): for each of the
//! five characterisation families ([`FAMILIES`]), a single-task [`Classifier`] learns the
//! family's answer from the scans alone, on samples of the same catalogue, anatomy and
//! preprocessing as the joint model; on held-out samples its accuracy is compared with the
//! model's, sample by sample.
//!
//! A sample's class is the right option of each of its choices, joined (`right` + `temporal
//! lobe`, `hyperintense`, `yes`); a family's classes are every combination of its choices'
//! options ([`classes_of`]). The classifier sees the scans the question is about: for
//! `signal_intensity` the contrast it names, otherwise every input, conformed onto the first
//! input's working grid (the joint model's [`Preprocessing`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use tasks::{TaskSample, TemplateSplit};
use vision::baseline::Classifier;
use vision::tensor::{images_to_tensor, tensor_spacing, tensor_values};
use vision::UnetConfig;
use voxel::Image;

use crate::error::{Result, TrainError};
use crate::eval::{EvalOptions, SampleResult};
use crate::model::Model;
use crate::preprocess::{Modality, Preprocessing};
use crate::stats::{paired, PairedComparison};
use crate::trainer::{sample_seed, JointSampler, JointSettings, SeedPurpose};

/// The characterisation families (task family ids).
pub const FAMILIES: [&str; 5] = [
    "signal_intensity",
    "location",
    "vascular_territory",
    "diffusion_restriction",
    "enhancement",
];

/// Joins the options of one class.
const CLASS_JOIN: &str = " + ";

/// Sub-directory of a classifier checkpoint holding the network.
pub const NETWORK_DIR: &str = "classifier";
/// File of a classifier checkpoint holding its [`ClassifierRecord`].
pub const RECORD_FILE: &str = "classifier.json";

/// Evaluation-seed indices of this experiment start here, clear of the per-family samples and
/// of experiment 1.
const SEED_OFFSET: u64 = 1 << 41;
/// Seeds tried for one sample slot before it is left empty.
const TRIES_PER_SAMPLE: usize = 8;

/// Training samples read to list a family's classes before training.
const PRESCAN_SAMPLES: u64 = 60;

/// The class of `sample`: the right option of each choice, joined.
pub fn answer_class(sample: &TaskSample) -> Result<String> {
    let choices = &sample.expected.choices;
    if choices.is_empty() {
        return Err(TrainError::Backend(format!(
            "sample {} ({}) asks no finite-answer question",
            sample.seed, sample.family
        )));
    }
    Ok(choices
        .iter()
        .map(|c| c.answer.as_str())
        .collect::<Vec<_>>()
        .join(CLASS_JOIN))
}

/// Every class the samples' choices allow: each sample contributes the combinations of its
/// choices' options. Sorted.
pub fn classes_of<'s>(samples: impl IntoIterator<Item = &'s TaskSample>) -> Vec<String> {
    let mut classes = std::collections::BTreeSet::new();
    for s in samples {
        let mut combos = vec![String::new()];
        for (i, choice) in s.expected.choices.iter().enumerate() {
            combos = combos
                .iter()
                .flat_map(|prefix| {
                    choice.options.iter().map(move |o| {
                        if i == 0 {
                            o.name.clone()
                        } else {
                            format!("{prefix}{CLASS_JOIN}{}", o.name)
                        }
                    })
                })
                .collect();
        }
        if !s.expected.choices.is_empty() {
            classes.extend(combos);
        }
    }
    classes.into_iter().collect()
}

/// The conformed scans the question of `sample` is about, `[S, 1, X, Y, Z]`, and their voxel
/// size.
pub fn classifier_input(
    sample: &TaskSample,
    preprocessing: &Preprocessing,
    device: &Device,
) -> Result<(Tensor<5>, [f64; 3])> {
    let named: Vec<&tasks::InputVolume> = match sample.family.as_str() {
        // The scan the question names: the scenario's contrast.
        "signal_intensity" => match sample.scenario.get("contrast") {
            Some(tasks::scenario::Key::Contrast(k)) => {
                sample.inputs.iter().filter(|i| i.contrast == k).collect()
            }
            _ => Vec::new(),
        },
        _ => sample.inputs.iter().collect(),
    };
    let inputs = if named.is_empty() {
        sample.inputs.iter().collect()
    } else {
        named
    };
    let first = inputs.first().ok_or_else(|| {
        TrainError::Backend(format!("sample {} has no input volume", sample.seed))
    })?;
    let grid = preprocessing.grid(first.image.geometry())?;
    let conformed = inputs
        .iter()
        .map(|i| preprocessing.conform_onto(&i.image, Modality::of_contrast(i.contrast), &grid))
        .collect::<Result<Vec<Image>>>()?;
    let refs: Vec<&Image> = conformed.iter().collect();
    Ok((images_to_tensor(&refs, device)?, tensor_spacing(&grid)))
}

/// How a classifier was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierRecord {
    /// Task family id.
    pub family: String,
    /// Class names, in the order of the network's outputs.
    pub classes: Vec<String>,
    /// Network size name (`tiny`, `small`, …).
    pub network: String,
    /// The preprocessing its inputs go through (the joint model's).
    pub preprocessing: Preprocessing,
    /// Anatomy the subjects were synthesised from.
    pub anatomy: String,
    /// Seed of the weights and of the sample stream.
    pub seed: u64,
    /// Optimiser steps taken (one sample each).
    pub steps: usize,
    /// Wall time of training, seconds, to the millisecond (so that the record reads back from
    /// its JSON exactly: serde_json's default parser can miss a 17-digit value by one ulp).
    pub seconds: f64,
    /// Mean cross-entropy over the last tenth of the steps.
    pub recent_loss: Option<f64>,
}

/// A trained classifier ready to answer.
#[derive(Debug)]
pub struct TrainedClassifier {
    /// The network (no autodiff).
    pub net: Classifier,
    /// How it was trained.
    pub record: ClassifierRecord,
    /// The device it runs on.
    pub device: Device,
}

impl TrainedClassifier {
    /// Loads the checkpoint in `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<TrainedClassifier> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        let record: ClassifierRecord =
            serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
                path: path.clone(),
                problem: format!("not a classifier record: {e}"),
            })?;
        let net: Classifier = vision::checkpoint::load(&dir.join(NETWORK_DIR), device)?;
        if net.num_classes() != record.classes.len() {
            return Err(TrainError::Checkpoint {
                path,
                problem: format!(
                    "lists {} classes but the network has {} outputs",
                    record.classes.len(),
                    net.num_classes()
                ),
            });
        }
        Ok(TrainedClassifier {
            net,
            record,
            device: device.clone(),
        })
    }

    /// The class the network gives `sample`.
    pub fn predict(&self, sample: &TaskSample) -> Result<String> {
        let (scans, spacing) = classifier_input(sample, &self.record.preprocessing, &self.device)?;
        let logits = tensor_values(self.net.logits(scans, spacing)?)?;
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        Ok(self.record.classes[best].clone())
    }
}

/// Writes a classifier checkpoint into `dir` (see [`crate::checkpoint::save_with_record`]).
pub fn save(dir: &Path, net: &Classifier, record: &ClassifierRecord) -> Result<()> {
    crate::checkpoint::save_with_record(dir, NETWORK_DIR, net, RECORD_FILE, record)
}

/// How to train one classifier.
#[derive(Clone, Debug)]
pub struct ClassifierJob {
    /// Task family id (one of [`FAMILIES`]).
    pub family: String,
    /// Network size.
    pub network: UnetConfig,
    /// The preprocessing (the joint model's).
    pub preprocessing: Preprocessing,
    /// Anatomy choice, as for joint training.
    pub anatomy: String,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Steps (one sample each).
    pub steps: usize,
    /// Wall-time budget, minutes (stops at the first step past it).
    pub minutes: Option<f64>,
    /// Seed of the weights and of the sample stream.
    pub seed: u64,
    /// Where it trains.
    pub device: Device,
    /// Checkpoint directory (written at the end).
    pub out: PathBuf,
    /// Raised to stop at the next step (a signal); the steps so far are saved.
    pub stop: Option<Arc<AtomicBool>>,
}

fn family_sampler(family: &str, anatomy: &str, spacing_mm: f64, seed: u64) -> Result<JointSampler> {
    if !FAMILIES.contains(&family) {
        return Err(TrainError::Settings {
            what: "classifier family".into(),
            problem: format!("{family:?} is not one of {}", FAMILIES.join(", ")),
        });
    }
    let families = [(family.to_string(), 1.0)].into_iter().collect();
    let settings = JointSettings::for_sampling(anatomy, families, 0.0)?;
    JointSampler::new(&settings, spacing_mm, seed)
}

/// Trains the classifier of `job.family` on training samples of the joint sampler (the same
/// seeds the joint model trains on) and writes its checkpoint; `progress(step, loss)` after
/// every step.
pub fn train(
    job: &ClassifierJob,
    mut progress: impl FnMut(usize, f64),
) -> Result<ClassifierRecord> {
    let started = Instant::now();
    let sampler = family_sampler(
        &job.family,
        &job.anatomy,
        job.preprocessing.spacing_mm,
        job.seed,
    )?;
    let mut prescan = Vec::new();
    for k in 0..PRESCAN_SAMPLES {
        if let Some(s) = sampler.sample(SeedPurpose::Training, k)? {
            prescan.push(s);
        }
    }
    let classes = classes_of(&prescan);
    if classes.len() < 2 {
        return Err(TrainError::Sampler(format!(
            "{} gave {} classes in {PRESCAN_SAMPLES} samples",
            job.family,
            classes.len()
        )));
    }
    let autodiff = job.device.clone().autodiff();
    let mut net = Classifier::new(&job.network, classes.len(), job.seed, &autodiff)?;
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    let mut losses = Vec::with_capacity(job.steps);
    let budget_s = job.minutes.map_or(f64::INFINITY, |m| m * 60.0);

    std::thread::scope(|scope| -> Result<()> {
        let (sender, receiver) = mpsc::sync_channel::<Result<Option<TaskSample>>>(2);
        let sampler = &sampler;
        scope.spawn(move || {
            for k in 0.. {
                let s = sampler.sample(SeedPurpose::Training, k);
                let failed = s.is_err();
                if sender.send(s).is_err() || failed {
                    break;
                }
            }
        });
        let stopped = || job.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
        while losses.len() < job.steps && started.elapsed().as_secs_f64() < budget_s && !stopped() {
            let sample = receiver
                .recv()
                .map_err(|e| TrainError::Sampler(e.to_string()))??;
            let Some(sample) = sample else { continue };
            let class = answer_class(&sample)?;
            // A class the prescan did not list cannot be learned (nor predicted).
            let Some(target) = classes.iter().position(|c| *c == class) else {
                continue;
            };
            let (scans, spacing) = classifier_input(&sample, &job.preprocessing, &autodiff)?;
            let logits = net.logits(scans, spacing)?;
            let n = classes.len();
            let log_p = log_softmax(logits.reshape([1, n]), 1);
            let index = Tensor::<2, Int>::from_data(
                TensorData::new(vec![target as i64], [1, 1]),
                &autodiff,
            );
            let loss = log_p.gather(1, index).mean().neg();
            let value = f64::from(
                tensor_values(loss.clone())?
                    .first()
                    .copied()
                    .unwrap_or(f32::NAN),
            );
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optimizer.step(job.learning_rate, net.clone(), grads);
            losses.push(value);
            progress(losses.len(), value);
        }
        drop(receiver);
        Ok(())
    })?;

    let tail = &losses[losses.len() - losses.len() / 10..];
    let record = ClassifierRecord {
        family: job.family.clone(),
        classes,
        network: job.network.name.clone(),
        preprocessing: job.preprocessing.clone(),
        anatomy: job.anatomy.clone(),
        seed: job.seed,
        steps: losses.len(),
        seconds: (started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        recent_loss: (!tail.is_empty()).then(|| tail.iter().sum::<f64>() / tail.len() as f64),
    };
    save(&job.out, &net.valid(), &record)?;
    Ok(record)
}

/// One family's results.
#[derive(Clone, Debug, Serialize)]
pub struct FamilyResult {
    /// Task family id.
    pub family: String,
    /// Whether the model answered each sample right (the checker passed), as 0/1.
    pub model_correct: Vec<f64>,
    /// Mean of `model_correct`.
    pub model_accuracy: f64,
    /// The classifier checkpoint used, if one exists for the family.
    pub classifier: Option<PathBuf>,
    /// Whether the classifier answered each sample right, as 0/1, in the same order.
    pub classifier_correct: Vec<f64>,
    /// Mean of `classifier_correct` (when a classifier exists).
    pub classifier_accuracy: Option<f64>,
    /// Model minus classifier, paired by sample.
    pub comparison: Option<PairedComparison>,
    /// Every sample as the per-family evaluation records it.
    pub samples: Vec<SampleResult>,
}

/// Runs the experiment with `per_family` held-out samples per family; `classifiers` is the
/// folder of classifier checkpoints (one sub-folder per family id) and their device.
pub fn run(
    model: &Model,
    options: &EvalOptions,
    per_family: usize,
    classifiers: Option<(&Path, &Device)>,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<FamilyResult>> {
    let sampler = options.experiment_sampler(model)?;
    let cats = sampler.catalogues();
    let total = FAMILIES.len() * per_family;
    let mut classifiers_by_family = Vec::with_capacity(FAMILIES.len());
    for family in FAMILIES {
        classifiers_by_family.push(match classifiers {
            Some((root, device)) if root.join(family).join(RECORD_FILE).is_file() => {
                let dir = root.join(family);
                Some((TrainedClassifier::load(&dir, device)?, dir))
            }
            _ => None,
        });
    }
    // One job per (family, sample slot), each with seeds of its own (see the segmentation
    // experiment).
    let mut done = 0;
    let slots = crate::parallel::ordered_jobs(
        FAMILIES.len() * per_family,
        options.threads(),
        |j, emit| {
            let family = FAMILIES[j / per_family];
            for attempt in 0..TRIES_PER_SAMPLE {
                let index = SEED_OFFSET + (j * TRIES_PER_SAMPLE + attempt) as u64 + 1;
                let cat = &cats[(index as usize) % cats.len()];
                let seed = sample_seed(SeedPurpose::Evaluation, options.seed, index);
                let sample = match cat.sample_split(family, seed, TemplateSplit::Training) {
                    Ok(s) => s,
                    Err(tasks::TaskError::NoSample { .. }) => continue,
                    Err(e) => return Err(e.into()),
                };
                let r = options.evaluate(model, &sample, cat)?;
                let classifier_right = match &classifiers_by_family[j / per_family] {
                    Some((c, _)) => Some(c.predict(&sample)? == answer_class(&sample)?),
                    None => None,
                };
                emit((r, classifier_right));
                break;
            }
            Ok(())
        },
        |j, _| {
            done += 1;
            progress(done, total, FAMILIES[j / per_family]);
        },
    )?;
    let mut slots = slots.into_iter();
    let mut out = Vec::with_capacity(FAMILIES.len());
    for (family, classifier) in FAMILIES.iter().zip(classifiers_by_family) {
        let mut result = FamilyResult {
            family: family.to_string(),
            model_correct: Vec::new(),
            model_accuracy: 0.0,
            classifier: classifier.as_ref().map(|c| c.1.clone()),
            classifier_correct: Vec::new(),
            classifier_accuracy: None,
            comparison: None,
            samples: Vec::new(),
        };
        for (r, right) in slots.by_ref().take(per_family).flatten() {
            result.model_correct.push(f64::from(u8::from(r.passed)));
            result
                .classifier_correct
                .extend(right.map(|r| f64::from(u8::from(r))));
            result.samples.push(r);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        result.model_accuracy = mean(&result.model_correct);
        if classifier.is_some() {
            result.classifier_accuracy = Some(mean(&result.classifier_correct));
            result.comparison = paired(&result.model_correct, &result.classifier_correct);
        }
        out.push(result);
    }
    Ok(out)
}

/// The experiment as a Markdown section: one row per family.
pub fn markdown(results: &[FamilyResult]) -> String {
    let mut md = String::from(
        "\n## Characterisation against single-task classifiers\n\nAccuracy per question on the \
         same held-out samples (the model: the checker passed; a classifier: its class is the \
         right answer); difference = model − classifier with its 95 % t confidence interval on \
         the paired 0/1 outcomes.\n\n| question | samples | model | classifier | difference \
         [95 % CI] |\n|---|---|---|---|---|\n",
    );
    for r in results {
        let (c, d) = match (&r.classifier_accuracy, &r.comparison) {
            (Some(a), Some(cmp)) => (
                format!("{:.0} %", 100.0 * a),
                match cmp.ci95 {
                    Some([lo, hi]) => format!(
                        "{:+.0} [{:+.0}, {:+.0}] points",
                        100.0 * cmp.mean_difference,
                        100.0 * lo,
                        100.0 * hi
                    ),
                    None => format!("{:+.0} points", 100.0 * cmp.mean_difference),
                },
            ),
            (Some(a), None) => (format!("{:.0} %", 100.0 * a), "—".into()),
            _ => ("no classifier".into(), "—".into()),
        };
        md.push_str(&format!(
            "| {} | {} | {:.0} % | {c} | {d} |\n",
            r.family,
            r.model_correct.len(),
            100.0 * r.model_accuracy
        ));
    }
    md
}
