//! `voxelprompt run --prompt "…" [--model DIR] [--out DIR] SCAN…`: one question answered by the
//! trained model. Prints the answer (`--json`: the report, as `report.json` holds it); with
//! `--out`, writes `report.json`, `trace.json`, every `show`n volume as NIfTI on its input's own
//! grid and a tri-planar PNG of each mask over its scan.
//!
//! Exit codes: 0 answered; 2 bad input (a scan that cannot be read, a bad argument, an output
//! that would overwrite an input); 3 no usable model (missing or corrupt directory); 4 the
//! program the model wrote failed or never called `stop()` (the report is still written).

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use train::inference::{answer, Answer, AnswerOptions, Ending, Scan};
use train::model::{Manifest, Model};
use voxel::io::{self, WriteOptions};
use voxel::render::{self, Focus, Overlay, RenderOptions};
use voxel::Image;

use crate::cmd::args::{ModelArgs, ScanArgs};
use crate::cmd::exit::{Exit, EXIT_BAD_INPUT, EXIT_MODEL, EXIT_PROGRAM};

/// Arguments of `run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The question.
    #[arg(long)]
    prompt: String,
    #[command(flatten)]
    scans: ScanArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Directory for report.json, trace.json, output volumes and pictures.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write each mask shown on a DICOM input as a DICOM Segmentation (`NAME.seg.dcm`)
    /// referencing that series.
    #[arg(long, requires = "out")]
    dicom_seg: bool,
}

/// The model directory to use: the flag, `$VOXELPROMPT_MODEL`, `./models/voxelprompt-small`,
/// then the one in the source tree this binary was built from.
pub fn model_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("VOXELPROMPT_MODEL") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("models/voxelprompt-small");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/voxelprompt-small")
}

/// One `NAME@DATE=PATH` argument.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanArg {
    /// Variable name.
    pub name: String,
    /// Acquisition date.
    pub date: Option<String>,
    /// File.
    pub path: PathBuf,
}

/// Parses scan arguments; the `i`-th unnamed one is `scan_{i}`.
pub fn parse_scans(args: &[String]) -> std::result::Result<Vec<ScanArg>, String> {
    let mut out: Vec<ScanArg> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let (label, path) = match a.split_once('=') {
            Some((l, p)) if !l.contains('/') && !l.is_empty() => (Some(l), p),
            _ => (None, a.as_str()),
        };
        let (name, date) = match label {
            None => (format!("scan_{}", i + 1), None),
            Some(l) => match l.split_once('@') {
                Some((n, d)) => {
                    let ok = d.len() == 10
                        && d.chars().enumerate().all(|(k, c)| {
                            if k == 4 || k == 7 {
                                c == '-'
                            } else {
                                c.is_ascii_digit()
                            }
                        });
                    if !ok {
                        return Err(format!("{a}: the date must be YYYY-MM-DD"));
                    }
                    (n.to_string(), Some(d.to_string()))
                }
                None => (l.to_string(), None),
            },
        };
        if out.iter().any(|s| s.name == name) {
            return Err(format!("the name {name} is given twice"));
        }
        out.push(ScanArg {
            name,
            date,
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

/// A scan as the report describes it.
#[derive(Serialize)]
struct InputReport {
    name: String,
    path: String,
    date: Option<String>,
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    orientation: String,
}

/// A number with its unit, as read from the answer.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// The number.
    pub value: f64,
    /// Its unit (`mL`, `mm`, `%`, …; empty for a plain number).
    pub unit: &'static str,
    /// The structure a volume is of, when it is the volume of exactly one of the answer's
    /// masks (shown or evidence) as the answer prints it: the target the agent asked the
    /// vision network for, else the mask's name.
    pub structure: Option<String>,
}

/// A mask the answer rests on that the program did not show (`runtime::RunOutput::evidence`).
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceReport {
    /// The program variable that held it.
    pub variable: String,
    /// What the agent asked the vision network for, from its `generate(… /* target */ …)`
    /// comment, when the variable was made by `generate`.
    pub target: Option<String>,
    /// The input scan whose grid it is on.
    pub grid_of: String,
    /// Its volume on that grid, mL.
    pub volume_ml: f64,
    /// The NIfTI written, when the answer was written to a directory.
    pub file: Option<String>,
}

#[derive(Serialize)]
struct ModelReport {
    path: String,
    name: String,
    weights_sha256: String,
}

#[derive(Serialize)]
struct Timing {
    load_model_s: f64,
    read_inputs_s: f64,
    answer_s: f64,
    agent_s: f64,
    runtime_s: f64,
    vision_s: f64,
    write_s: f64,
    total_s: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    prompt: &'a str,
    answer: &'a str,
    ending: Ending,
    inputs: Vec<InputReport>,
    steps: &'a [train::inference::StepRecord],
    measurements: Vec<Measurement>,
    outputs: Vec<String>,
    evidence: Vec<EvidenceReport>,
    model: ModelReport,
    version: &'static str,
    seconds: Timing,
}

/// Loads the model or fails with exit code 3.
pub fn load_model(flag: Option<&Path>, device: &str) -> Result<LoadedModel> {
    let started = Instant::now();
    let dir = model_dir(flag);
    let device = vision::compute_device(device).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
    let (model, manifest) = Model::load(&dir, &device).map_err(|e| {
        Exit::new(
            EXIT_MODEL,
            format!("cannot load the model in {}: {e}", dir.display()),
        )
    })?;
    Ok(LoadedModel {
        model,
        manifest,
        path: dir,
        load_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads scan arguments into scans (exit code 2 on any problem).
pub fn read_scans(args: &[String], modality: Option<&str>) -> Result<(Vec<Scan>, Vec<ScanArg>)> {
    let parsed = parse_scans(args).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
    let mut scans = Vec::with_capacity(parsed.len());
    for s in &parsed {
        let image = super::scan_input::read_scan(&s.path).map_err(|e| {
            Exit::new(
                EXIT_BAD_INPUT,
                format!("cannot read scan {}: {e}", s.path.display()),
            )
        })?;
        scans.push(Scan {
            name: s.name.clone(),
            image: Arc::new(image),
            modality: modality.map(str::to_string),
            date: s.date.clone(),
        });
    }
    Ok((scans, parsed))
}

/// A loaded model with where it came from, for reports.
pub struct LoadedModel {
    /// The model.
    pub model: Model,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory.
    pub path: PathBuf,
    /// Seconds it took to load.
    pub load_seconds: f64,
}

/// One answered question with its report (as written to `report.json`).
pub struct Answered {
    /// What the model did.
    pub answer: Answer,
    /// The report as pretty JSON.
    pub json: String,
    /// Files written.
    pub outputs: Vec<String>,
    /// The masks the answer rests on that the program did not show.
    pub evidence: Vec<EvidenceReport>,
}

/// The scans of a question: as read, as given on the command line (or by a manifest), and how
/// long reading them took (for the report's timings).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The scans, read.
    pub scans: &'a [Scan],
    /// Where each came from, in the same order.
    pub args: &'a [ScanArg],
    /// Seconds spent reading them.
    pub read_seconds: f64,
}

/// Where an answer's files go and which files beside NIfTI it gets.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputOptions<'a> {
    /// Directory for report.json, trace.json, output volumes and overlays; `None` writes
    /// nothing (the report is still returned).
    pub dir: Option<&'a Path>,
    /// Each mask shown on a DICOM input also as a DICOM Segmentation (`NAME.seg.dcm`)
    /// referencing that input's series.
    pub dicom_seg: bool,
}

/// Answers `prompt` about `inputs` and writes the answer as [`write_answer`] does.
pub fn answer_into(
    loaded: &LoadedModel,
    inputs: Inputs,
    prompt: &str,
    options: &AnswerOptions,
    output: &OutputOptions,
) -> Result<Answered> {
    let started = Instant::now();
    let result = answer(&loaded.model, inputs.scans, prompt, options).context("answering")?;
    let answer_s = started.elapsed().as_secs_f64();
    write_answer(loaded, inputs, prompt, result, answer_s, output)
}

/// The report of an answer that took `answer_s` seconds and, with `output.dir`, report.json,
/// trace.json, output volumes and overlays (and DICOM SEGs with `output.dicom_seg`) written
/// there; report.json last, so its presence marks a finished answer.
pub fn write_answer(
    loaded: &LoadedModel,
    inputs: Inputs,
    prompt: &str,
    result: Answer,
    answer_s: f64,
    output: &OutputOptions,
) -> Result<Answered> {
    let Inputs {
        scans,
        args: parsed,
        read_seconds: read_inputs_s,
    } = inputs;
    let given: Vec<&Path> = parsed.iter().map(|s| s.path.as_path()).collect();
    let t = Instant::now();
    let mut evidence = evidence_reports(&result);
    let outputs = match output.dir {
        Some(dir) => {
            let mut written = write_outputs(dir, &result, scans, &given)?;
            if output.dicom_seg {
                written.extend(write_dicom_segs(dir, &result, scans, parsed)?);
            }
            for (report, path) in evidence
                .iter_mut()
                .zip(write_evidence(dir, &result, scans, &given)?)
            {
                report.file = Some(path);
            }
            written
        }
        None => Vec::new(),
    };
    let mut report = Report {
        prompt,
        answer: &result.output.response,
        ending: result.ending,
        inputs: parsed
            .iter()
            .zip(scans)
            .map(|(p, s)| InputReport {
                name: p.name.clone(),
                path: p.path.display().to_string(),
                date: p.date.clone(),
                shape: s.image.shape(),
                spacing_mm: s.image.geometry().spacing_mm(),
                orientation: s.image.geometry().orientation().to_string(),
            })
            .collect(),
        steps: &result.steps,
        measurements: measurements(&result),
        outputs: outputs.clone(),
        evidence: evidence.clone(),
        model: ModelReport {
            path: loaded.path.display().to_string(),
            name: loaded.manifest.model.clone(),
            weights_sha256: loaded
                .manifest
                .files
                .get(train::model::WEIGHTS_FILE)
                .map(|e| e.sha256.clone())
                .unwrap_or_default(),
        },
        version: env!("CARGO_PKG_VERSION"),
        seconds: Timing {
            load_model_s: loaded.load_seconds,
            read_inputs_s,
            answer_s,
            agent_s: result.steps.iter().map(|s| s.decode_seconds).sum(),
            runtime_s: result.steps.iter().map(|s| s.run_seconds).sum(),
            vision_s: result.steps.iter().map(|s| s.vision_seconds).sum(),
            write_s: 0.0,
            total_s: 0.0,
        },
    };
    report.seconds.write_s = t.elapsed().as_secs_f64();
    report.seconds.total_s =
        loaded.load_seconds + read_inputs_s + answer_s + report.seconds.write_s;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = output.dir {
        let path = dir.join("report.json");
        io::ensure_not_input(&path, &given).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
        io::atomic_write(&path, |w| std::io::Write::write_all(w, json.as_bytes()))?;
    }
    Ok(Answered {
        answer: result,
        json,
        outputs,
        evidence,
    })
}

/// The answer's evidence masks as the report lists them (no files yet).
pub fn evidence_reports(result: &Answer) -> Vec<EvidenceReport> {
    result
        .output
        .evidence
        .iter()
        .filter_map(|e| match &e.data {
            runtime::OutputData::Mask(mask) => Some(EvidenceReport {
                variable: e.name.clone(),
                target: generated_target(&result.steps, &e.name),
                grid_of: e.grid_of.clone(),
                volume_ml: voxel::measure::volume_ml(mask),
                file: None,
            }),
            runtime::OutputData::Image(_) => None,
        })
        .collect()
}

/// The target of the last `let NAME = generate(… /* target */ …)` in the program, if any.
fn generated_target(steps: &[train::inference::StepRecord], name: &str) -> Option<String> {
    train::inference::generated_targets(steps)
        .into_iter()
        .rev()
        .find(|(n, t)| *n == name && !t.is_empty())
        .map(|(_, t)| t.to_string())
}

/// Writes each evidence mask as `DIR/evidence/NAME.nii.gz` with a PNG overlay beside it;
/// returns the NIfTI paths, in evidence order.
pub fn write_evidence(
    dir: &Path,
    result: &Answer,
    scans: &[Scan],
    given: &[&Path],
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    if result.output.evidence.is_empty() {
        return Ok(written);
    }
    let dir = dir.join(EVIDENCE_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for e in &result.output.evidence {
        let runtime::OutputData::Mask(mask) = &e.data else {
            continue;
        };
        write_mask_and_overlay(&dir, &e.name, mask, &e.grid_of, scans, given)?;
        written.push(dir.join(format!("{}.nii.gz", e.name)).display().to_string());
    }
    Ok(written)
}

/// Writes `DIR/NAME.nii.gz` and, when `grid_of` names one of `scans`, the overlay
/// `DIR/NAME.png` over it; returns the PNG's path if one was written. Neither may be an input.
fn write_mask_and_overlay(
    dir: &Path,
    name: &str,
    mask: &voxel::Mask,
    grid_of: &str,
    scans: &[Scan],
    given: &[&Path],
) -> Result<Option<String>> {
    let path = dir.join(format!("{name}.nii.gz"));
    io::ensure_not_input(&path, given).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
    io::write_mask(&path, mask)?;
    let Some(scan) = scans.iter().find(|s| s.name == grid_of) else {
        return Ok(None);
    };
    let png = dir.join(format!("{name}.png"));
    io::ensure_not_input(&png, given).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
    overlay_png(&png, &scan.image, mask)?;
    Ok(Some(png.display().to_string()))
}

/// One line per evidence mask for people: what it is, its volume and its file.
pub fn evidence_lines(evidence: &[EvidenceReport]) -> Vec<String> {
    evidence
        .iter()
        .map(|e| {
            let what = match &e.target {
                Some(t) => format!("{} ({t})", e.variable),
                None => e.variable.clone(),
            };
            let file = match &e.file {
                Some(f) => format!(": {f}"),
                None => " (--out DIR writes it)".to_string(),
            };
            format!(
                "evidence, not shown by the program: {what}, {} mL on {}{file}",
                runtime::format_number(e.volume_ml),
                e.grid_of
            )
        })
        .collect()
}

/// Subdirectory of an answer's directory for its evidence masks.
pub const EVIDENCE_DIR: &str = "evidence";

/// The numbers of an answer's text with their units, as the report lists them.
pub fn measurements(result: &Answer) -> Vec<Measurement> {
    let masks = mask_volumes(result);
    tasks::checker::parse_numbers(&result.output.response)
        .into_iter()
        .map(|(value, unit)| Measurement {
            value,
            unit: unit.text(),
            structure: (unit.text() == "mL")
                .then(|| structure_of_volume(value, &masks))
                .flatten(),
        })
        .collect()
}

/// Every mask of the answer (shown, then evidence) as (what it is, volume in mL): the target
/// of the `generate` that made its variable when there is one, else its name.
fn mask_volumes(result: &Answer) -> Vec<(String, f64)> {
    let output = &result.output;
    output
        .outputs
        .iter()
        .chain(&output.evidence)
        .filter_map(|o| match &o.data {
            runtime::OutputData::Mask(mask) => Some((
                generated_target(&result.steps, &o.name)
                    .unwrap_or_else(|| o.name.replace('_', " ")),
                voxel::measure::volume_ml(mask),
            )),
            runtime::OutputData::Image(_) => None,
        })
        .collect()
}

/// The one structure among `masks` whose volume the answer prints as `value` (the runtime's
/// number format), or `None` when none or several different ones do.
fn structure_of_volume(value: f64, masks: &[(String, f64)]) -> Option<String> {
    let printed = runtime::feedback::format_number(value);
    let mut found: Option<&String> = None;
    for (what, volume_ml) in masks {
        if runtime::feedback::format_number(*volume_ml) != printed {
            continue;
        }
        match found {
            Some(other) if other != what => return None,
            _ => found = Some(what),
        }
    }
    found.cloned()
}

/// Why an answer is not a success, as an exit-code error; `None` when it finished cleanly.
pub fn failure(result: &Answer) -> Option<Exit> {
    let last = result.steps.last().map(|s| s.code.as_str()).unwrap_or("");
    match (&result.output.error, result.ending) {
        // The response already says why in words; the exit code still says "not answered".
        (_, Ending::EmptyMask) => Some(Exit::new(
            EXIT_PROGRAM,
            "no answer: a measurement was asked of an empty mask (the response says which)",
        )),
        (_, Ending::Undefined) => Some(Exit::new(
            EXIT_PROGRAM,
            "no answer: a computation was undefined for its values, e.g. a ratio to 0 (the \
             response says which)",
        )),
        (Some(e), _) => Some(Exit::new(
            EXIT_PROGRAM,
            format!("the program failed: {e}\nlast step:\n{last}"),
        )),
        (None, Ending::Stopped) => None,
        (None, ending) => Some(Exit::new(
            EXIT_PROGRAM,
            format!(
                "the program did not finish ({ending:?}) after {} steps; last step:\n{last}",
                result.steps.len()
            ),
        )),
    }
}

/// Answers the question; prints the answer, or under `--json` the report (as report.json).
pub fn run(args: &RunArgs) -> Result<()> {
    if args.prompt.trim().is_empty() {
        return Err(Exit::new(EXIT_BAD_INPUT, "the prompt is empty").into());
    }
    let loaded = args.model.load()?;
    let t = Instant::now();
    let (scans, parsed) = args.scans.read()?;
    let inputs = Inputs {
        scans: &scans,
        args: &parsed,
        read_seconds: t.elapsed().as_secs_f64(),
    };
    let output = OutputOptions {
        dir: args.out.as_deref(),
        dicom_seg: args.dicom_seg,
    };
    let done = answer_into(
        &loaded,
        inputs,
        &args.prompt,
        &args.model.answer_options(),
        &output,
    )?;
    if crate::cmd::json() {
        println!("{}", done.json);
    } else {
        if done.answer.output.response.is_empty() {
            println!("(no answer)");
        } else {
            println!("{}", done.answer.output.response);
        }
        for o in &done.outputs {
            println!("wrote {o}");
        }
        for line in evidence_lines(&done.evidence) {
            println!("{line}");
        }
    }
    match failure(&done.answer) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Writes every output volume (NIfTI, on its input's grid), a PNG per mask and `trace.json`;
/// returns the paths written.
pub fn write_outputs(
    dir: &Path,
    result: &Answer,
    scans: &[Scan],
    given: &[&Path],
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for out in &result.output.outputs {
        let path = dir.join(format!("{}.nii.gz", out.name));
        io::ensure_not_input(&path, given).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
        match &out.data {
            runtime::OutputData::Image(img) => {
                io::write_image(&path, img, &WriteOptions::default())?
            }
            runtime::OutputData::Mask(mask) => {
                let png = write_mask_and_overlay(dir, &out.name, mask, &out.grid_of, scans, given)?;
                written.extend(png);
            }
        }
        written.push(path.display().to_string());
    }
    let trace = dir.join("trace.json");
    io::ensure_not_input(&trace, given).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
    let json = serde_json::to_string_pretty(&result.output.report())?;
    io::atomic_write(&trace, |w| std::io::Write::write_all(w, json.as_bytes()))?;
    written.push(trace.display().to_string());
    Ok(written)
}

/// Each mask output whose grid is a DICOM input's as a DICOM Segmentation `NAME.seg.dcm`
/// referencing that series (written to a temporary name, then renamed). Masks on NIfTI inputs
/// get none; a note says so.
pub fn write_dicom_segs(
    dir: &Path,
    result: &Answer,
    scans: &[Scan],
    parsed: &[ScanArg],
) -> Result<Vec<String>> {
    let given: Vec<&Path> = parsed.iter().map(|s| s.path.as_path()).collect();
    let mut written = Vec::new();
    for out in &result.output.outputs {
        let runtime::OutputData::Mask(mask) = &out.data else {
            continue;
        };
        let Some(k) = scans.iter().position(|s| s.name == out.grid_of) else {
            continue;
        };
        let source = &parsed[k].path;
        if !dicom::is_dicom_input(source) {
            crate::cmd::note!(
                "{}: no DICOM SEG ({} is not a DICOM input)",
                out.name,
                source.display()
            );
            continue;
        }
        let (_, reference) = dicom::read_spec_with_ref(source)
            .map_err(|e| Exit::new(EXIT_BAD_INPUT, format!("{}: {e}", source.display())))?;
        let path = dir.join(format!("{}.seg.dcm", out.name));
        io::ensure_not_input(&path, &given).map_err(|e| Exit::new(EXIT_BAD_INPUT, e))?;
        let partial = dir.join(format!(".{}.seg.dcm.partial", out.name));
        dicom::write_seg(
            &reference,
            &[dicom::Segment::new(&out.name, mask)],
            &partial,
        )
        .with_context(|| format!("writing the DICOM SEG of {}", out.name))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// The mask drawn over its scan, through the mask's centroid.
fn overlay_png(path: &Path, image: &Image, mask: &voxel::Mask) -> Result<()> {
    let labels = mask.map(i32::from);
    let colour = |_: i32| [255u8, 64, 32];
    let options = RenderOptions {
        focus: if mask.count() > 0 {
            Focus::MaskCentroid(mask)
        } else {
            Focus::Centre
        },
        overlay: Some(Overlay {
            labels: &labels,
            alpha: 0.35,
            colours: Some(&colour),
        }),
        ..RenderOptions::default()
    };
    render::save_triplanar_png(path, image, &options)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The masks a yes/no or a volume rests on are written under `evidence/`, on the scan's
    /// grid, voxel for voxel, with the target the agent named and their volume.
    #[test]
    fn evidence_masks_are_written_with_their_target_and_volume() {
        let g = voxel::Geometry::from_spacing([20, 18, 16], [1.0, 1.2, 1.5], [0.0; 3]).unwrap();
        let sphere = voxel::phantom::sphere_mask(&g, [10.0, 10.0, 12.0], 5.0);
        let image = Arc::new(sphere.map(|v| if v { 1.0f32 } else { 0.2 }));
        let scans = vec![Scan {
            name: "t1".into(),
            image,
            modality: None,
            date: None,
        }];
        let step = train::inference::StepRecord::of_code;
        let evidence = |name: &str, mask: &voxel::Mask| runtime::OutputVolume {
            name: name.into(),
            grid_of: "t1".into(),
            data: runtime::OutputData::Mask(Arc::new(mask.clone())),
        };
        let empty = sphere.map(|_| false);
        let answer = Answer {
            output: runtime::RunOutput {
                response: "Yes: there is a haemorrhage.".into(),
                outputs: vec![],
                trace: runtime::Trace::default(),
                stopped: true,
                error: None,
                evidence: vec![evidence("m", &sphere), evidence("none", &empty)],
            },
            steps: vec![
                step("let e = encode(t1 <mod>);\nread(e);"),
                step("let m = generate(e /* glioma */ <mod>);"),
                step("let mm = generate(e /* arachnoid cyst */ <mod>);\nlet m = generate(e /* haemorrhage */ <mod>);\nread(volume(m));"),
                step("let none = m & !m;\nrespond(\"Yes: there is a haemorrhage.\");\nstop();"),
            ],
            ending: Ending::Stopped,
            seconds: 0.0,
        };
        let reports = evidence_reports(&answer);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].variable, "m");
        assert_eq!(reports[0].target.as_deref(), Some("haemorrhage"));
        let expected_ml = sphere.count() as f64 * 1.0 * 1.2 * 1.5 / 1000.0;
        assert!(
            (reports[0].volume_ml - expected_ml).abs() < 1e-9,
            "{reports:?}"
        );
        assert_eq!(reports[1].target, None);
        assert_eq!(reports[1].volume_ml, 0.0);

        let dir = tempfile::tempdir().unwrap();
        let given = [Path::new("/nowhere/t1.nii.gz")];
        let written = write_evidence(dir.path(), &answer, &scans, &given).unwrap();
        let m_path = dir.path().join(EVIDENCE_DIR).join("m.nii.gz");
        assert_eq!(written[0], m_path.display().to_string());
        let back = io::read_labels(&m_path).unwrap();
        assert!(back.geometry().same_grid(&g, 1e-6));
        assert_eq!(back.mask_of(1).data(), sphere.data());
        assert!(dir.path().join(EVIDENCE_DIR).join("m.png").is_file());

        let mut with_files = reports.clone();
        with_files[0].file = Some(written[0].clone());
        let lines = evidence_lines(&with_files);
        assert!(
            lines[0].contains("m (haemorrhage), ")
                && lines[0].contains(&format!("{} mL on t1", runtime::format_number(expected_ml)))
                && lines[0].ends_with(&written[0]),
            "{lines:?}"
        );
        assert!(lines[1].contains("--out DIR"), "{lines:?}");
    }

    /// A volume in the answer is attributed to the one mask (shown or evidence) whose volume
    /// the runtime prints as that number: by the `generate` target of its variable, else by its
    /// name; a number no mask has, one two different masks share, or one in another unit, is
    /// not attributed.
    #[test]
    fn volumes_are_attributed_to_the_mask_they_measure() {
        let g = voxel::Geometry::from_spacing([20, 18, 16], [1.0, 1.2, 1.5], [0.0; 3]).unwrap();
        let big = voxel::phantom::sphere_mask(&g, [10.0, 10.0, 12.0], 5.0);
        let small = voxel::phantom::sphere_mask(&g, [10.0, 10.0, 12.0], 3.0);
        let ml = |m: &voxel::Mask| m.count() as f64 * 1.8 / 1000.0;
        let volume = |name: &str, mask: &voxel::Mask| runtime::OutputVolume {
            name: name.into(),
            grid_of: "t1".into(),
            data: runtime::OutputData::Mask(Arc::new(mask.clone())),
        };
        let fmt = runtime::format_number;
        let response = format!(
            "Left: {} mL, right: {} mL, ratio {} %, other {} mL.",
            fmt(ml(&big)),
            fmt(ml(&small)),
            fmt(ml(&small)),
            fmt(ml(&big) + 1.0)
        );
        let step = train::inference::StepRecord::of_code;
        let mut answer = Answer {
            output: runtime::RunOutput {
                response: response.clone(),
                outputs: vec![volume("right_hippocampus", &small)],
                trace: runtime::Trace::default(),
                stopped: true,
                error: None,
                evidence: vec![volume("l", &big)],
            },
            steps: vec![step("let l = generate(e /* left hippocampus */ <mod>);")],
            ending: Ending::Stopped,
            seconds: 0.0,
        };
        let got: Vec<(f64, &str, Option<String>)> = measurements(&answer)
            .into_iter()
            .map(|m| (m.value, m.unit, m.structure))
            .collect();
        let structures: Vec<Option<&str>> = got.iter().map(|g| g.2.as_deref()).collect();
        assert_eq!(
            structures,
            [
                Some("left hippocampus"),
                Some("right hippocampus"),
                None,
                None
            ],
            "{response}: {got:?}"
        );
        // Two different masks of the printed volume: which one is meant is not known.
        answer.output.outputs.push(volume("other", &big));
        assert_eq!(measurements(&answer)[0].structure, None);
    }

    /// A mask shown on a DICOM input becomes a DICOM SEG that pydicom reads as one (the
    /// writer's geometry is tested in crates/dicom/tests/seg.rs); one on a NIfTI input gets none.
    #[test]
    fn masks_on_dicom_inputs_are_written_as_dicom_seg() {
        let dir = tempfile::tempdir().unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make_dicom_fixtures.py");
        let fx = dir.path().join("fx");
        let made = Command::new("python3")
            .arg(script)
            .arg(&fx)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "make_dicom_fixtures.py needs python3 with pydicom (see .ci/run): {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let dicom_input = fx.join("axial");
        let nifti_input = fx.join("axial.nii");
        let image = Arc::new(crate::cmd::scan_input::read_scan(&dicom_input).unwrap());
        let mask = image.map(|v| v > 0.0 && v.is_finite());
        let other = Arc::new(crate::cmd::scan_input::read_scan(&nifti_input).unwrap());
        let scans = vec![
            Scan {
                name: "ct".into(),
                image: image.clone(),
                modality: None,
                date: None,
            },
            Scan {
                name: "t1".into(),
                image: other.clone(),
                modality: None,
                date: None,
            },
        ];
        let parsed = vec![
            ScanArg {
                name: "ct".into(),
                date: None,
                path: dicom_input,
            },
            ScanArg {
                name: "t1".into(),
                date: None,
                path: nifti_input,
            },
        ];
        let output = |name: &str, grid_of: &str, mask: voxel::Mask| runtime::OutputVolume {
            name: name.into(),
            grid_of: grid_of.into(),
            data: runtime::OutputData::Mask(Arc::new(mask)),
        };
        let answer = Answer {
            output: runtime::RunOutput {
                response: String::new(),
                outputs: vec![
                    output("brain", "ct", mask),
                    output("other", "t1", other.map(|v| v > 0.0)),
                ],
                trace: runtime::Trace::default(),
                stopped: true,
                error: None,
                evidence: vec![],
            },
            steps: Vec::new(),
            ending: Ending::Stopped,
            seconds: 0.0,
        };
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let written = write_dicom_segs(&out, &answer, &scans, &parsed).unwrap();
        assert_eq!(written.len(), 1, "{written:?}");
        assert!(!out.join("other.seg.dcm").exists());
        let seg = out.join("brain.seg.dcm");
        let check = Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, pydicom; d = pydicom.dcmread(sys.argv[1]); \
                 assert d.Modality == 'SEG' and d.SegmentationType == 'BINARY'; \
                 assert d.SegmentSequence[0].SegmentLabel == 'brain'; \
                 print(int(d.NumberOfFrames))",
            )
            .arg(&seg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let frames: usize = String::from_utf8_lossy(&check.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(frames >= 1);
    }
}
