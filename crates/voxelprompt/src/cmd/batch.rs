//! `voxelprompt batch (--manifest subjects.csv | --bids DIR) --prompt "…" --out DIR
//! [--shard I/N] [--jobs J]`: one question asked of many subjects and sessions, one output
//! folder each (`sub-S[/ses-T]/`, as `run --out` writes it).
//!
//! - Resumable: a folder with `report.json` is finished and skipped; a folder without one was
//!   cut off and is redone from scratch.
//! - Shardable: job k (in sorted order) belongs to shard `k mod N + 1`, so N independent
//!   processes (Slurm array tasks, Nextflow processes; see docs/cluster.md) cover the list once.
//! - A failure (unreadable scan, failed program) is written to the subject's `error.txt` and
//!   the batch goes on. At the end, `measurements.csv` (every number of every finished answer)
//!   and `failures.csv` are rebuilt from all folders, so the last shard to finish leaves the
//!   complete tables.
//!
//! Manifest: a CSV with a header; `subject` is required, `session` and `date` optional, every
//! other column is a scan named by the column (`t1`, `flair`, …) whose cell is a path (relative
//! to the manifest's folder); empty cells are skipped.
//!
//! With `--json`, stdout gets the final summary: this shard's done/skipped/failed counts and the
//! tables' row counts and paths.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use train::inference::{AnswerOptions, Scan};
use voxel::io;

use crate::cmd::args::ModelArgs;
use crate::cmd::exit::{Exit, EXIT_BAD_INPUT};
use crate::cmd::run::{answer_into, failure, Inputs, LoadedModel, OutputOptions, ScanArg};

/// Arguments of `batch`.
#[derive(clap::Args)]
pub struct BatchArgs {
    /// CSV manifest: subject[,session][,date],<scan name>,… (see `voxelprompt batch --help`).
    #[arg(long, required_unless_present = "bids", conflicts_with = "bids")]
    manifest: Option<PathBuf>,
    /// A BIDS dataset: every sub-*/[ses-*/]anat/*.nii[.gz] (T1w → t1, T2w → t2, FLAIR →
    /// flair, PDw → pd, T2starw → gre, ce-* T1w → t1c).
    #[arg(long)]
    bids: Option<PathBuf>,
    /// The question asked of every subject/session.
    #[arg(long)]
    prompt: String,
    /// Output folder (one sub-folder per subject/session, measurements.csv, failures.csv).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// This process's share of the jobs, `I/N` (1-based).
    #[arg(long, default_value = "1/1")]
    shard: String,
    /// Subjects answered at once (each answer also uses every core for its tensor maths).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Also write each mask shown on a DICOM input as a DICOM Segmentation (`NAME.seg.dcm`).
    #[arg(long)]
    dicom_seg: bool,
}

/// `batch --json`: what this process did and where the tables are.
#[derive(Serialize)]
struct BatchSummary {
    /// This process's shard, `I/N`.
    shard: String,
    /// Subject/sessions in the manifest or dataset.
    listed: usize,
    /// Of those, in this shard.
    in_shard: usize,
    /// Answered now.
    done: usize,
    /// Finished earlier (their report.json was there), so left alone.
    skipped: usize,
    /// Failed now (each has its error.txt).
    failed: usize,
    /// Rows of measurements.csv (over every shard's folders).
    measurements: usize,
    /// Rows of failures.csv (over every shard's folders).
    failures: usize,
    /// Rows of answers.csv (over every shard's folders).
    answers: usize,
    measurements_csv: String,
    failures_csv: String,
    answers_csv: String,
}

/// One subject/session to answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Subject label (without `sub-`).
    pub subject: String,
    /// Session label (without `ses-`), if any.
    pub session: Option<String>,
    /// Scans with their variable names.
    pub scans: Vec<(ScanArg, Option<String>)>,
}

impl Job {
    /// The job's output folder under `out`.
    pub fn dir(&self, out: &Path) -> PathBuf {
        let mut d = out.join(format!("sub-{}", self.subject));
        if let Some(s) = &self.session {
            d = d.join(format!("ses-{s}"));
        }
        d
    }
}

/// The modality word for a scan variable name, when the name says it.
pub fn modality_of_name(name: &str) -> Option<String> {
    let m = match name.to_ascii_lowercase().as_str() {
        "t1" | "t1w" => "T1w",
        "t2" | "t2w" => "T2w",
        "flair" => "FLAIR",
        "pd" | "pdw" => "PD",
        "gre" | "t2star" | "swi" => "GRE",
        "dwi" => "DWI",
        "adc" => "ADC",
        "t1c" | "t1ce" | "t1gd" => "T1w post-contrast",
        "ct" => "CT",
        _ => return None,
    };
    Some(m.to_string())
}

/// Reads a manifest (see the module docs).
pub fn read_manifest(path: &Path) -> Result<Vec<Job>> {
    let base = path.parent().unwrap_or(Path::new(""));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("reading manifest {}", path.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let subject = col("subject").ok_or_else(|| {
        Exit::new(
            EXIT_BAD_INPUT,
            format!("{}: the header has no `subject` column", path.display()),
        )
    })?;
    let (session, date) = (col("session"), col("date"));
    let mut jobs = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), line + 2))?;
        let cell = |i: usize| record.get(i).unwrap_or("").to_string();
        let mut scans = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            if Some(i) == session || Some(i) == date || i == subject || cell(i).is_empty() {
                continue;
            }
            let p = PathBuf::from(cell(i));
            scans.push((
                ScanArg {
                    name: h.clone(),
                    date: date.map(cell).filter(|d| !d.is_empty()),
                    path: if p.is_absolute() { p } else { base.join(p) },
                },
                modality_of_name(h),
            ));
        }
        let subject = cell(subject);
        if subject.is_empty() || scans.is_empty() {
            return Err(Exit::new(
                EXIT_BAD_INPUT,
                format!(
                    "{}: row {} needs a subject and at least one scan",
                    path.display(),
                    line + 2
                ),
            )
            .into());
        }
        jobs.push(Job {
            subject,
            session: session.map(cell).filter(|s| !s.is_empty()),
            scans,
        });
    }
    Ok(jobs)
}

/// The BIDS suffix of a file name and the scan name it becomes.
fn bids_scan_name(file: &str) -> Option<String> {
    let stem = file
        .strip_suffix(".nii.gz")
        .or_else(|| file.strip_suffix(".nii"))?;
    let suffix = stem.rsplit('_').next()?;
    let contrast_enhanced = stem.split('_').any(|e| e.starts_with("ce-"));
    Some(
        match suffix {
            "T1w" if contrast_enhanced => "t1c",
            "T1w" => "t1",
            "T2w" => "t2",
            "FLAIR" => "flair",
            "PDw" => "pd",
            "T2starw" => "gre",
            _ => return None,
        }
        .to_string(),
    )
}

/// Every subject/session of a BIDS dataset with anatomical scans.
pub fn read_bids(root: &Path) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let sorted = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .with_context(|| format!("listing {}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    for sub in sorted(root)? {
        let Some(subject) = sub
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("sub-"))
            .map(str::to_string)
        else {
            continue;
        };
        let sessions: Vec<(Option<String>, PathBuf)> = {
            let ses: Vec<PathBuf> = sorted(&sub)?
                .into_iter()
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("ses-"))
                })
                .collect();
            if ses.is_empty() {
                vec![(None, sub.clone())]
            } else {
                ses.into_iter()
                    .map(|p| {
                        let label = p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .and_then(|n| n.strip_prefix("ses-"))
                            .map(str::to_string);
                        (label, p)
                    })
                    .collect()
            }
        };
        for (session, dir) in sessions {
            let anat = dir.join("anat");
            if !anat.is_dir() {
                continue;
            }
            let mut scans: Vec<(ScanArg, Option<String>)> = Vec::new();
            for f in sorted(&anat)? {
                let Some(name) = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(bids_scan_name)
                else {
                    continue;
                };
                if scans.iter().any(|(s, _)| s.name == name) {
                    continue; // a second run of the same contrast: the first is used
                }
                let modality = modality_of_name(&name);
                scans.push((
                    ScanArg {
                        name,
                        date: None,
                        path: f,
                    },
                    modality,
                ));
            }
            if !scans.is_empty() {
                jobs.push(Job {
                    subject: subject.clone(),
                    session,
                    scans,
                });
            }
        }
    }
    Ok(jobs)
}

/// Parses `I/N` (1 ≤ I ≤ N).
pub fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let bad = || {
        Exit::new(
            EXIT_BAD_INPUT,
            format!("--shard {text:?}: expected I/N with 1 ≤ I ≤ N"),
        )
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(bad().into());
    }
    Ok((i, n))
}

pub fn run(args: &BatchArgs) -> Result<()> {
    if args.prompt.trim().is_empty() {
        return Err(Exit::new(EXIT_BAD_INPUT, "the prompt is empty").into());
    }
    let (shard, shards) = parse_shard(&args.shard)?;
    let mut jobs = match (&args.manifest, &args.bids) {
        (Some(m), _) => read_manifest(m)?,
        (None, Some(b)) => read_bids(b)?,
        (None, None) => bail!("give --manifest or --bids"),
    };
    jobs.sort_by(|a, b| (&a.subject, &a.session).cmp(&(&b.subject, &b.session)));
    for w in jobs.windows(2) {
        if w[0].subject == w[1].subject && w[0].session == w[1].session {
            return Err(Exit::new(
                EXIT_BAD_INPUT,
                format!(
                    "subject {} session {:?} is listed twice",
                    w[0].subject, w[0].session
                ),
            )
            .into());
        }
    }
    let mine: Vec<&Job> = jobs
        .iter()
        .enumerate()
        .filter(|(k, _)| k % shards + 1 == shard)
        .map(|(_, j)| j)
        .collect();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let todo: Vec<&Job> = mine
        .iter()
        .copied()
        .filter(|j| !j.dir(&args.out).join("report.json").is_file())
        .collect();
    crate::cmd::note!(
        "shard {shard}/{shards}: {} of {} subject/session(s), {} already finished",
        mine.len(),
        jobs.len(),
        mine.len() - todo.len()
    );
    let loaded = args.model.load()?;
    let options = args.model.answer_options();
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    if crate::cmd::quiet() || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = todo.get(k) else { break };
                let dir = job.dir(&args.out);
                let outcome =
                    answer_job(&loaded, job, &dir, &args.prompt, &options, args.dicom_seg);
                let label = format!(
                    "sub-{}{}",
                    job.subject,
                    job.session
                        .as_ref()
                        .map(|s| format!(" ses-{s}"))
                        .unwrap_or_default()
                );
                if let Err(e) = outcome {
                    let _ = std::fs::create_dir_all(&dir);
                    let _ = std::fs::write(dir.join("error.txt"), format!("{e:#}\n"));
                    if let Ok(mut n) = failed.lock() {
                        *n += 1;
                    }
                    bar.suspend(|| crate::cmd::note!("{label}: failed: {e:#}"));
                } else {
                    done.fetch_add(1, Ordering::Relaxed);
                    bar.suspend(|| crate::cmd::note!("{label}: done"));
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let Tables {
        measurements,
        failures,
        answers,
    } = write_tables(&jobs, &args.out)?;
    let (measurements_csv, failures_csv, answers_csv) = (
        args.out.join("measurements.csv"),
        args.out.join("failures.csv"),
        args.out.join("answers.csv"),
    );
    crate::cmd::say!(
        "{} answer(s) in {}, {} measurement(s) in {}, {} failure(s) in {}",
        answers,
        answers_csv.display(),
        measurements,
        measurements_csv.display(),
        failures,
        failures_csv.display()
    );
    let failed_here = failed.lock().map(|n| *n).unwrap_or(0);
    if crate::cmd::json() {
        crate::cmd::print_json(&BatchSummary {
            shard: format!("{shard}/{shards}"),
            listed: jobs.len(),
            in_shard: mine.len(),
            done: done.load(Ordering::Relaxed),
            skipped: mine.len() - todo.len(),
            failed: failed_here,
            measurements,
            failures,
            answers,
            measurements_csv: measurements_csv.display().to_string(),
            failures_csv: failures_csv.display().to_string(),
            answers_csv: answers_csv.display().to_string(),
        })?;
    }
    if failed_here > 0 {
        return Err(Exit::new(
            crate::cmd::exit::EXIT_PROGRAM,
            format!("{failed_here} subject/session(s) of this shard failed (see failures.csv)"),
        )
        .into());
    }
    Ok(())
}

/// Answers one job into `dir` (a half-written folder is cleared first). A program that
/// failed still leaves its report; the failure is returned for `error.txt`.
fn answer_job(
    loaded: &LoadedModel,
    job: &Job,
    dir: &Path,
    prompt: &str,
    options: &AnswerOptions,
    dicom_seg: bool,
) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let t = Instant::now();
    let mut scans = Vec::with_capacity(job.scans.len());
    for (arg, modality) in &job.scans {
        let image = super::scan_input::read_scan(&arg.path)
            .with_context(|| format!("cannot read scan {}", arg.path.display()))?;
        scans.push(Scan {
            name: arg.name.clone(),
            image: std::sync::Arc::new(image),
            modality: modality.clone(),
            date: arg.date.clone(),
        });
    }
    let parsed: Vec<ScanArg> = job.scans.iter().map(|(a, _)| a.clone()).collect();
    let inputs = Inputs {
        scans: &scans,
        args: &parsed,
        read_seconds: t.elapsed().as_secs_f64(),
    };
    let output = OutputOptions {
        dir: Some(dir),
        dicom_seg,
    };
    let done = answer_into(loaded, inputs, prompt, options, &output)?;
    match failure(&done.answer) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// What a number's unit says it measures.
fn quantity_of_unit(unit: &str) -> &'static str {
    match unit {
        "mL" => "volume",
        "mm" => "length",
        "%" => "percentage",
        "HU" => "density",
        "10^-3 mm^2/s" => "diffusivity",
        "" => "value",
        _ => "intensity",
    }
}

/// Row counts of the tables [`write_tables`] wrote.
struct Tables {
    measurements: usize,
    failures: usize,
    answers: usize,
}

/// Rebuilds measurements.csv, answers.csv and failures.csv from every job folder.
fn write_tables(jobs: &[Job], out: &Path) -> Result<Tables> {
    let mut m = String::from("subject,session,quantity,structure,value,unit\n");
    let mut a = String::from("subject,session,answer,ending,evidence\n");
    let mut f = String::from("subject,session,error\n");
    let (mut nm, mut na, mut nf) = (0, 0, 0);
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for job in jobs {
        let dir = job.dir(out);
        let session = job.session.clone().unwrap_or_default();
        if let Ok(text) = std::fs::read_to_string(dir.join("report.json")) {
            let report: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", dir.join("report.json").display()))?;
            let empty = Vec::new();
            for r in report["measurements"].as_array().unwrap_or(&empty) {
                let unit = r["unit"].as_str().unwrap_or("");
                let value = r["value"].as_f64().unwrap_or(f64::NAN);
                // A volume is attributed when it is one mask's (run::measurements); other
                // numbers are told apart by the answer's text (answers.csv).
                let structure = r["structure"].as_str().map(quote).unwrap_or_default();
                m.push_str(&format!(
                    "{},{},{},{structure},{value},{}\n",
                    quote(&job.subject),
                    quote(&session),
                    quantity_of_unit(unit),
                    quote(unit)
                ));
                nm += 1;
            }
            let evidence: Vec<String> = report["evidence"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|e| {
                    let what = e["target"]
                        .as_str()
                        .or(e["variable"].as_str())
                        .unwrap_or("mask");
                    let ml = runtime::feedback::format_number(
                        e["volume_ml"].as_f64().unwrap_or(f64::NAN),
                    );
                    match e["file"].as_str() {
                        Some(file) => format!("{what} {ml} mL ({file})"),
                        None => format!("{what} {ml} mL"),
                    }
                })
                .collect();
            a.push_str(&format!(
                "{},{},{},{},{}\n",
                quote(&job.subject),
                quote(&session),
                quote(report["answer"].as_str().unwrap_or("")),
                quote(report["ending"].as_str().unwrap_or("")),
                quote(&evidence.join("; "))
            ));
            na += 1;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("error.txt")) {
            f.push_str(&format!(
                "{},{},{}\n",
                quote(&job.subject),
                quote(&session),
                quote(text.trim())
            ));
            nf += 1;
        }
    }
    for (name, text) in [
        ("measurements.csv", m),
        ("answers.csv", a),
        ("failures.csv", f),
    ] {
        let path = out.join(name);
        io::atomic_write(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    }
    Ok(Tables {
        measurements: nm,
        failures: nf,
        answers: na,
    })
}
