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
//! (the model, and per case its prompt, answer, truth or reference, verdict, files and seconds).

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
use crate::cmd::run::{
    answer_into, evidence_lines, EvidenceReport, Inputs, LoadedModel, OutputOptions, ScanArg,
    EVIDENCE_DIR,
};
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

/// Questions asked of the real brain, with the reference each answer is shown beside.
const REAL_PROMPTS: &[(&str, &str, RealReference)] = &[
    (
        "5-real-brain-mask",
        "Extract the brain and give its volume.",
        RealReference::BrainMask,
    ),
    (
        "6-real-white-matter",
        "Segment the white matter and tell me its volume.",
        RealReference::WhiteMatter,
    ),
    (
        "7-real-ventricles",
        "How large are the lateral ventricles?",
        RealReference::None,
    ),
];

/// nilearn's MNI152 2009 T1 template in the anatomy cache (see `scripts/fetch_anatomy.py`).
pub const MNI152_T1: &str = "mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz";
/// The white-matter probability map of the same template (nilearn's `load_mni152_wm_template`).
pub const MNI152_WM: &str = "mni152/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz";

/// What a real case's answer is compared with, from nilearn's own files for the template.
#[derive(Clone, Copy)]
enum RealReference {
    /// nilearn's `load_mni152_brain_mask` (threshold 0.2): template voxels above 0.2 of its
    /// maximum. The template is skull-stripped, so this is the brain outline with the CSF inside
    /// it, what "extract the brain" means (docs/vocabulary.md).
    BrainMask,
    /// The white-matter probability map (scaled to a maximum of 1, as nilearn loads it), summed:
    /// the expected white-matter volume.
    WhiteMatter,
    /// nilearn ships no map to compare with.
    None,
}

/// Reference volume in mL of the template `t1` (and its white-matter map `wm`, when needed).
fn reference_ml(kind: RealReference, t1: &voxel::Image, wm: Option<&voxel::Image>) -> Option<f64> {
    let scaled = |image: &voxel::Image| {
        let max = image.data().iter().copied().fold(f32::MIN, f32::max);
        let voxel_ml = image.geometry().voxel_volume_ml();
        (max > 0.0).then_some((max, voxel_ml))
    };
    match kind {
        RealReference::BrainMask => {
            let (max, voxel_ml) = scaled(t1)?;
            let inside = t1.data().iter().filter(|&&v| v / max > 0.2).count();
            Some(inside as f64 * voxel_ml)
        }
        RealReference::WhiteMatter => {
            let wm = wm?;
            let (max, voxel_ml) = scaled(wm)?;
            let sum: f64 = wm.data().iter().map(|&v| f64::from(v / max)).sum();
            Some(sum * voxel_ml)
        }
        RealReference::None => None,
    }
}

/// The reference line of a real case.
fn reference_text(kind: RealReference, t1: &voxel::Image, wm: Option<&voxel::Image>) -> String {
    match (kind, reference_ml(kind, t1, wm)) {
        (RealReference::BrainMask, Some(ml)) => format!(
            "{ml:.1} mL: nilearn's brain mask of the template (load_mni152_brain_mask, above 0.2 \
             of its maximum)"
        ),
        (RealReference::WhiteMatter, Some(ml)) => {
            format!("{ml:.1} mL: the template's white-matter probability map, summed")
        }
        (RealReference::WhiteMatter, None) => {
            format!("none: {MNI152_WM} is not in the anatomy cache (scripts/fetch_anatomy.py)")
        }
        _ => "none: nilearn ships no CSF or ventricle map for this template".to_string(),
    }
}

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
    /// What a real case's answer is compared with (a volume from nilearn's own maps of the
    /// template, or why there is none).
    reference: Option<String>,
    /// The checker's verdict in words (synthetic cases).
    verdict: Option<String>,
    /// Whether the checker accepts the answer (synthetic cases).
    passed: Option<bool>,
    /// Files the answer wrote (report.json comes beside them).
    outputs: Vec<String>,
    /// The masks the answer rests on that its program did not show, written under
    /// `CASE/evidence/`.
    evidence: Vec<EvidenceReport>,
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
            let wm_path = path
                .parent()
                .and_then(Path::parent)
                .map(|cache| cache.join(MNI152_WM));
            let wm = match wm_path.filter(|p| p.is_file()) {
                Some(p) => {
                    Some(io::read_image(&p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            for &(folder, prompt, reference) in REAL_PROMPTS {
                let mut r = real_case(
                    &loaded,
                    &image,
                    &path,
                    prompt,
                    &args.out.join(folder),
                    folder,
                    &options,
                )?;
                r.reference = Some(reference_text(reference, &image, wm.as_ref()));
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
        reference: None,
        verdict: Some(verdict),
        passed: Some(output.error.is_none() && check.passed),
        outputs: done.outputs.clone(),
        evidence: done.evidence.clone(),
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
        reference: None,
        verdict: None,
        passed: None,
        outputs: done.outputs.clone(),
        evidence: done.evidence.clone(),
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
    if let Some(t) = &r.reference {
        say!("reference: {t}");
    }
    if let Some(v) = &r.verdict {
        say!("verdict:  {v}");
    }
    for line in evidence_lines(&r.evidence) {
        say!("{line}");
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

/// `text` as one cell of a markdown table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A case's answer as summary.md's table shows it, with the evidence masks it rests on (what each
/// was asked to be, linked to its file, and its volume).
fn answer_cell(r: &CaseResult) -> String {
    let evidence: Vec<String> = r
        .evidence
        .iter()
        .map(|e| {
            let what = e.target.as_deref().unwrap_or(&e.variable);
            let link = e
                .file
                .as_deref()
                .and_then(|f| Path::new(f).file_name())
                .map(|leaf| {
                    format!(
                        "[{what}]({}/{EVIDENCE_DIR}/{})",
                        r.case,
                        leaf.to_string_lossy()
                    )
                })
                .unwrap_or_else(|| what.to_string());
            format!("{link} {} mL", runtime::format_number(e.volume_ml))
        })
        .collect();
    if evidence.is_empty() {
        cell(&r.shown_answer())
    } else {
        format!(
            "{} (evidence: {})",
            cell(&r.shown_answer()),
            cell(&evidence.join(", "))
        )
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
    let _ = writeln!(
        s,
        "| case | question | answer | truth (real scans: reference) | verdict | s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in results {
        let answer = answer_cell(r);
        let _ = writeln!(
            s,
            "| [{0}]({0}/report.json) | {1} | {2} | {3} | {4} | {5:.1} |",
            r.case,
            cell(&r.prompt),
            answer,
            cell(r.truth.as_deref().or(r.reference.as_deref()).unwrap_or("—")),
            cell(r.verdict.as_deref().unwrap_or("—")),
            r.seconds
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxel::{Geometry, Image};

    /// A 4×4×4 image of 2 mm voxels (8 µL each) with the given values.
    fn image(values: Vec<f32>) -> Image {
        let g = Geometry::from_spacing([4, 4, 4], [2.0; 3], [0.0; 3]).unwrap();
        Image::new(g, values).unwrap()
    }

    /// A "yes" on a real scan comes with the mask it rests on, linked in summary.md.
    #[test]
    fn the_summary_links_the_evidence_beside_the_answer() {
        let mut case = CaseResult {
            case: "real_mni152_haemorrhage".into(),
            dir: "/tmp/demo/real_mni152_haemorrhage".into(),
            prompt: "Is there any haemorrhage?".into(),
            inputs: "t1".into(),
            answer: "Yes: there is a haemorrhage.".into(),
            error: None,
            truth: None,
            reference: None,
            verdict: None,
            passed: None,
            outputs: vec![],
            evidence: vec![EvidenceReport {
                variable: "m".into(),
                target: Some("haemorrhage".into()),
                grid_of: "t1".into(),
                volume_ml: 9.6,
                file: Some("/tmp/demo/real_mni152_haemorrhage/evidence/m.nii.gz".into()),
            }],
            seconds: 1.0,
        };
        assert_eq!(
            answer_cell(&case),
            "Yes: there is a haemorrhage. (evidence: \
             [haemorrhage](real_mni152_haemorrhage/evidence/m.nii.gz) 9.600 mL)"
        );
        case.evidence.clear();
        assert_eq!(answer_cell(&case), "Yes: there is a haemorrhage.");
    }

    #[test]
    fn reference_volumes_follow_nilearns_definitions() {
        // Brain mask: voxels above 0.2 of the maximum (10): 0.2 × 10 = 2 itself is outside.
        let mut t1 = vec![0.0f32; 64];
        t1[..10].fill(10.0);
        t1[10..15].fill(2.5);
        t1[15..20].fill(2.0);
        let t1 = image(t1);
        let ml = reference_ml(RealReference::BrainMask, &t1, None).unwrap();
        assert!((ml - 15.0 * 0.008).abs() < 1e-9, "{ml}");
        // White matter: probabilities scaled to a maximum of 1, summed: (2 + 4×0.5) × 8 µL.
        let mut wm = vec![0.0f32; 64];
        wm[..2].fill(0.8);
        wm[2..6].fill(0.4);
        let wm = image(wm);
        let ml = reference_ml(RealReference::WhiteMatter, &t1, Some(&wm)).unwrap();
        assert!((ml - 4.0 * 0.008).abs() < 1e-6, "{ml}");
        assert!(reference_ml(RealReference::WhiteMatter, &t1, None).is_none());
        assert!(reference_ml(RealReference::None, &t1, Some(&wm)).is_none());
        assert!(reference_text(RealReference::None, &t1, None).starts_with("none"));
    }
}
