//! `voxelprompt demo [--out DIR] [--model DIR]`: the shipped model on built-in cases, so a fresh
//! clone shows what the product does with no data of its own.
//!
//! - Synthetic subjects (the task catalogue, on the anatomy cache when fetched, else the
//!   built-in phantom): a segment-and-measure question, an asymmetry question, a lesion and a
//!   longitudinal change across two visits. Each is asked with a phrasing kept out of
//!   training; the true answer and the checker's verdict are printed beside the model's.
//! - A real brain MRI when the anatomy cache has one (nilearn's MNI152 2009 T1 template,
//!   fetched from PyPI by `scripts/fetch_anatomy.py`): brain mask, white matter, ventricles.
//!
//! Every case gets a folder under `--out` as `run --out` writes it (report.json, trace.json,
//! output volumes on the input's grid, PNG overlays) plus its input scans as NIfTI, and
//! `summary.md` lists them all. With `--json`, stdout gets that summary as one JSON object
//! (the model, and per case its prompt, answer, truth, verdict, files and seconds).

use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tasks::{Catalogue, Level, TaskSample, TemplateSplit};
use train::inference::{AnswerOptions, Scan};
use voxel::io::{self, WriteOptions};

use crate::cmd::args::ModelArgs;
use crate::cmd::run::{answer_into, Inputs, LoadedModel, OutputOptions, ScanArg};
use crate::cmd::say;

/// Arguments of `demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Directory for every case's outputs and summary.md.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Voxel size of the synthetic subjects, mm (the model conforms them to its own).
    #[arg(long, default_value_t = 1.5)]
    spacing: f64,
    /// Seed of the synthetic cases.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The synthetic cases: (folder, task family).
const SYNTHETIC_CASES: &[(&str, &str)] = &[
    ("1-segment-and-measure", "volume"),
    ("2-asymmetry", "asymmetry"),
    ("3-lesion", "segment_lesion"),
    ("4-longitudinal", "lesion_volume_change"),
];

/// Questions asked of the real brain.
const REAL_PROMPTS: &[(&str, &str)] = &[
    (
        "5-real-brain-mask",
        "Extract the brain and give its volume.",
    ),
    (
        "6-real-white-matter",
        "Segment the white matter and tell me its volume.",
    ),
    ("7-real-ventricles", "How large are the lateral ventricles?"),
];

/// nilearn's MNI152 2009 T1 template in the anatomy cache (see `scripts/fetch_anatomy.py`).
pub const MNI152_T1: &str = "mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz";

/// One case as printed and summarised.
#[derive(Serialize)]
struct CaseResult {
    /// The case's folder name under `--out`.
    case: String,
    /// That folder.
    dir: String,
    prompt: String,
    /// Each input as `name (modality, date or file)`.
    inputs: String,
    /// The model's answer.
    answer: String,
    /// The error that ended its program, if any.
    error: Option<String>,
    /// The true answer (synthetic cases).
    truth: Option<String>,
    /// The checker's verdict in words (synthetic cases).
    verdict: Option<String>,
    /// Whether the checker accepts the answer (synthetic cases).
    passed: Option<bool>,
    /// Files the answer wrote (report.json comes beside them).
    outputs: Vec<String>,
    seconds: f64,
}

impl CaseResult {
    /// The answer as a person reads it; a real case, which has no verdict, names its error.
    fn shown_answer(&self) -> String {
        match (&self.error, &self.verdict) {
            (Some(e), None) => format!("{} [program error: {e}]", or_none(&self.answer)),
            _ => or_none(&self.answer).to_string(),
        }
    }
}

/// The model a `demo` ran, as `--json` names it.
#[derive(Serialize)]
struct ModelInfo {
    name: String,
    path: String,
    weights_sha256: String,
}

/// `demo --json`: what summary.md holds.
#[derive(Serialize)]
struct DemoSummary {
    model: ModelInfo,
    /// The anatomy the synthetic cases were built from.
    anatomy: String,
    spacing_mm: f64,
    cases: Vec<CaseResult>,
    /// summary.md.
    summary: String,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let loaded = args.model.load()?;
    say!(
        "model {} ({}), loaded in {:.1} s",
        loaded.manifest.model,
        loaded.path.display(),
        loaded.load_seconds
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut results = Vec::new();
    let options = args.model.answer_options();

    let config = synth::SynthConfig::builtin()?;
    let anatomy = synth::subject::load_anatomies("all", &config)?
        .into_iter()
        .next()
        .context("no anatomy to synthesise from")?;
    let anatomy_name = anatomy.name.clone();
    let cat = Catalogue::new(anatomy, args.spacing)
        .with_context(|| format!("building the task catalogue at {} mm", args.spacing))?;
    for (k, &(folder, family)) in SYNTHETIC_CASES.iter().enumerate() {
        let sample = cat
            .sample_split(family, args.seed + k as u64, TemplateSplit::HeldOut)
            .with_context(|| format!("synthesising the {family} case"))?;
        let r = synthetic_case(&loaded, &sample, &args.out.join(folder), folder, &options)?;
        print_case(&r);
        results.push(r);
    }

    let real = synth::anatomy::default_cache_dir().map(|d| d.join(MNI152_T1));
    match real.filter(|p| p.is_file()) {
        Some(path) => {
            let image = Arc::new(
                io::read_image(&path).with_context(|| format!("reading {}", path.display()))?,
            );
            for &(folder, prompt) in REAL_PROMPTS {
                let r = real_case(
                    &loaded,
                    &image,
                    &path,
                    prompt,
                    &args.out.join(folder),
                    folder,
                    &options,
                )?;
                print_case(&r);
                results.push(r);
            }
        }
        None => say!(
            "\n(no real brain in the anatomy cache: `python3 scripts/fetch_anatomy.py` fetches \
             nilearn's MNI152 template for the real-scan cases)"
        ),
    }

    let summary = summary_markdown(&results, &loaded, &anatomy_name, args.spacing);
    let path = args.out.join("summary.md");
    io::atomic_write(&path, |w| std::io::Write::write_all(w, summary.as_bytes()))?;
    say!("\nsummary: {}", path.display());
    if crate::cmd::json() {
        crate::cmd::print_json(&DemoSummary {
            model: ModelInfo {
                name: loaded.manifest.model.clone(),
                path: loaded.path.display().to_string(),
                weights_sha256: loaded
                    .manifest
                    .files
                    .get(train::model::WEIGHTS_FILE)
                    .map(|e| e.sha256.clone())
                    .unwrap_or_default(),
            },
            anatomy: anatomy_name,
            spacing_mm: args.spacing,
            cases: results,
            summary: path.display().to_string(),
        })?;
    }
    Ok(())
}

/// Writes the sample's inputs as NIfTI into `dir/inputs`, asks the model, checks the answer.
fn synthetic_case(
    loaded: &LoadedModel,
    sample: &TaskSample,
    dir: &Path,
    folder: &str,
    options: &AnswerOptions,
) -> Result<CaseResult> {
    let inputs_dir = dir.join("inputs");
    std::fs::create_dir_all(&inputs_dir)
        .with_context(|| format!("creating {}", inputs_dir.display()))?;
    let mut scans = Vec::new();
    let mut parsed = Vec::new();
    for input in &sample.inputs {
        let path = inputs_dir.join(format!("{}.nii.gz", input.name));
        io::write_image(&path, &input.image, &WriteOptions::default())
            .with_context(|| format!("writing {}", path.display()))?;
        scans.push(Scan {
            name: input.name.clone(),
            image: input.image.clone(),
            modality: Some(input.modality.clone()),
            date: Some(input.date.clone()),
        });
        parsed.push(ScanArg {
            name: input.name.clone(),
            date: Some(input.date.clone()),
            path,
        });
    }
    let started = Instant::now();
    let inputs = Inputs {
        scans: &scans,
        args: &parsed,
        read_seconds: 0.0,
    };
    let done = answer_into(
        loaded,
        inputs,
        &sample.prompt.text,
        options,
        &OutputOptions {
            dir: Some(dir),
            dicom_seg: false,
        },
    )?;
    let output = &done.answer.output;
    let check = sample.check(&output.response, &output.outputs, Level::Model)?;
    let verdict = match (&output.error, check.passed) {
        (Some(e), _) => format!("failed: the program stopped with an error: {e}"),
        (None, true) => "passed (the checker accepts the numbers and masks)".to_string(),
        (None, false) => format!("failed: {}", check.failures().trim()),
    };
    Ok(CaseResult {
        case: folder.to_string(),
        dir: dir.display().to_string(),
        prompt: sample.prompt.text.clone(),
        inputs: sample
            .inputs
            .iter()
            .map(|i| format!("{} ({}, {})", i.name, i.modality, i.date))
            .collect::<Vec<_>>()
            .join(", "),
        answer: output.response.clone(),
        error: output.error.as_ref().map(|e| e.to_string()),
        truth: Some(sample.answer.clone()),
        verdict: Some(verdict),
        passed: Some(output.error.is_none() && check.passed),
        outputs: done.outputs.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Asks `prompt` about the real brain `image`.
fn real_case(
    loaded: &LoadedModel,
    image: &Arc<voxel::Image>,
    path: &Path,
    prompt: &str,
    dir: &Path,
    folder: &str,
    options: &AnswerOptions,
) -> Result<CaseResult> {
    let scans = [Scan {
        name: "t1".into(),
        image: image.clone(),
        modality: Some("T1w".into()),
        date: None,
    }];
    let parsed = [ScanArg {
        name: "t1".into(),
        date: None,
        path: path.to_path_buf(),
    }];
    let started = Instant::now();
    let inputs = Inputs {
        scans: &scans,
        args: &parsed,
        read_seconds: 0.0,
    };
    let output = OutputOptions {
        dir: Some(dir),
        dicom_seg: false,
    };
    let done = answer_into(loaded, inputs, prompt, options, &output)?;
    let output = &done.answer.output;
    Ok(CaseResult {
        case: folder.to_string(),
        dir: dir.display().to_string(),
        prompt: prompt.to_string(),
        inputs: format!("t1 (T1w, {})", path.display()),
        answer: output.response.clone(),
        error: output.error.as_ref().map(|e| e.to_string()),
        truth: None,
        verdict: None,
        passed: None,
        outputs: done.outputs.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn print_case(r: &CaseResult) {
    say!("\n== {} ==", r.case);
    say!("question: {}", r.prompt);
    say!("inputs:   {}", r.inputs);
    say!("answer:   {}", r.shown_answer());
    if let Some(t) = &r.truth {
        say!("truth:    {t}");
    }
    if let Some(v) = &r.verdict {
        say!("verdict:  {v}");
    }
    say!(
        "({:.1} s; report, masks and pictures in {})",
        r.seconds,
        r.case
    );
}

fn or_none(text: &str) -> &str {
    if text.trim().is_empty() {
        "(no answer)"
    } else {
        text
    }
}

fn summary_markdown(
    results: &[CaseResult],
    loaded: &LoadedModel,
    anatomy: &str,
    spacing_mm: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# voxelprompt demo\n\nModel `{}` (weights {}) from `{}`. Synthetic cases: anatomy `{anatomy}` \
         at {spacing_mm} mm, phrasings held out of training.\n",
        loaded.manifest.model,
        loaded.manifest.weights_id(),
        loaded.path.display()
    );
    let _ = writeln!(s, "| case | question | answer | truth | verdict | s |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    for r in results {
        let _ = writeln!(
            s,
            "| [{0}]({0}/report.json) | {1} | {2} | {3} | {4} | {5:.1} |",
            r.case,
            cell(&r.prompt),
            cell(&r.shown_answer()),
            cell(r.truth.as_deref().unwrap_or("—")),
            cell(r.verdict.as_deref().unwrap_or("—")),
            r.seconds
        );
    }
    s
}
