//! `voxelprompt tasks list` (the task families with their distinct-prompt counts and one
//! example each) and `voxelprompt tasks corpus --n N [--seed S] [--out FILE]` (prompts,
//! programs, feedback and answers as text for tokenizer training).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use tasks::corpus::{sample_text, write_corpus};
use tasks::Catalogue;

/// Arguments of `tasks`.
#[derive(clap::Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    command: TasksCommand,
}

impl TasksArgs {
    /// Whether the subcommand has a `--json` form (`list`: a JSON array, one object per
    /// family; `corpus` writes text).
    pub fn has_json(&self) -> bool {
        matches!(self.command, TasksCommand::List(_))
    }
}

#[derive(clap::Subcommand)]
enum TasksCommand {
    /// The task families: distinct prompts, what they ask, one example prompt and program.
    List(ListArgs),
    /// Text for tokenizer training: samples of every family, run with ground-truth masks.
    Corpus(CorpusArgs),
}

/// Arguments of `tasks list`.
#[derive(clap::Args)]
struct ListArgs {
    /// Voxel size of the example subjects, mm (built-in phantom anatomy).
    #[arg(long, default_value_t = 4.0)]
    spacing: f64,
    /// Seed of the examples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One family in `tasks list --json`.
#[derive(serde::Serialize)]
struct FamilyRow {
    #[serde(flatten)]
    info: tasks::FamilyInfo,
    distinct_prompts: String,
    held_out_template: usize,
    templates: Vec<String>,
    unavailable: Option<String>,
    example_prompt: Option<String>,
    example_program: Option<String>,
    example_answer: Option<String>,
}

/// Arguments of `tasks corpus`.
#[derive(clap::Args)]
struct CorpusArgs {
    /// Number of samples (families in turn).
    #[arg(long)]
    n: usize,
    /// Random seed; the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Voxel size of the subjects, mm (built-in phantom anatomy; only feedback numbers depend
    /// on it).
    #[arg(long, default_value_t = 4.0)]
    spacing: f64,
}

fn catalogue(spacing: f64) -> Result<Catalogue> {
    anyhow::ensure!(
        (2.0..=8.0).contains(&spacing),
        "--spacing must be between 2 and 8 mm"
    );
    Catalogue::phantom(spacing).context("building the task catalogue")
}

/// Runs `tasks list` or `tasks corpus`.
pub fn run(args: &TasksArgs) -> Result<()> {
    match &args.command {
        TasksCommand::List(a) => list(a),
        TasksCommand::Corpus(a) => corpus(a),
    }
}

fn indent(text: &str, pad: &str) -> String {
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn list_json(cat: &Catalogue, seed: u64) -> Result<()> {
    let mut rows = Vec::new();
    for f in cat.families() {
        let unavailable = cat.unavailable(f.id)?;
        let sample = match unavailable {
            None => Some(
                cat.sample(f.id, seed)
                    .with_context(|| format!("sampling an example of {}", f.id))?,
            ),
            Some(_) => None,
        };
        rows.push(FamilyRow {
            distinct_prompts: cat.distinct_prompts(f.id)?.to_string(),
            held_out_template: cat.held_out_template(f.id)?,
            templates: cat.templates(f.id)?,
            example_prompt: sample.as_ref().map(|s| s.prompt.text.clone()),
            example_program: sample.as_ref().map(|s| s.program_text()),
            example_answer: sample.as_ref().map(|s| s.answer.clone()),
            unavailable,
            info: f,
        });
    }
    println!("{}", serde_json::to_string_pretty(&rows)?);
    Ok(())
}

fn list(args: &ListArgs) -> Result<()> {
    let cat = catalogue(args.spacing)?;
    if crate::cmd::json() {
        return list_json(&cat, args.seed);
    }
    let mut total: u128 = 0;
    let (mut available, mut waiting) = (0, 0);
    let mut out = String::new();
    for f in cat.families() {
        let distinct = cat.distinct_prompts(f.id)?;
        out.push_str(&format!(
            "{}  [{}]  {distinct} distinct prompts\n  asks:      {}\n  inputs:    {}\n  tolerance: {}\n",
            f.id,
            f.group.name(),
            f.asks,
            f.inputs,
            f.tolerance
        ));
        if let Some(reason) = cat.unavailable(f.id)? {
            waiting += 1;
            out.push_str(&format!("  not available: {reason}\n\n"));
            continue;
        }
        available += 1;
        total += distinct;
        let sample = cat
            .sample(f.id, args.seed)
            .with_context(|| format!("sampling an example of {}", f.id))?;
        let text =
            sample_text(&sample).with_context(|| format!("running the example of {}", f.id))?;
        out.push_str(&format!(
            "  example:\n{}\n\n",
            indent(text.trim_end(), "    ")
        ));
    }
    out.push_str(&format!(
        "{available} families available, {waiting} waiting for lesion classes; {total} distinct prompts in all (typos not counted)\n"
    ));
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

fn corpus(args: &CorpusArgs) -> Result<()> {
    anyhow::ensure!(
        (1..=10_000_000).contains(&args.n),
        "--n must be between 1 and 10000000"
    );
    let cat = catalogue(args.spacing)?;
    let stats = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let stats = write_corpus(&cat, args.n, args.seed, &mut w)?;
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            stats
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let stats = write_corpus(&cat, args.n, args.seed, &mut w)?;
            w.flush()?;
            stats
        }
    };
    crate::cmd::note!(
        "wrote {} samples ({} bytes); {} skipped (no fitting subject)",
        stats.samples,
        stats.bytes,
        stats.skipped
    );
    Ok(())
}
