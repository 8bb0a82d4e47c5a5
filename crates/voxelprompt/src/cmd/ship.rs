//! `voxelprompt ship --run RUN --eval EVAL [--out models/voxelprompt-small] [--force]`: puts a
//! training run's checkpoint in the repository as the shipped model: the weights in f16, its
//! config, tokenizer and checksum manifest, the run's `train.csv` and `loss.png`, and the
//! held-out evaluation (`eval/report.md`, `eval/report.json`, `eval/pictures/`, `eval/charts/`). The model card `MODEL.md` in the
//! folder is kept (it is written by hand). Of a run that keeps a moving average of its weights,
//! the average (`checkpoint/average`) is shipped, as it is what the run validates.
//!
//! The evaluation must be of the weights shipped: its report names them (`model` is
//! `NAME WEIGHTS-ID`) and a report of other weights is refused, so a run's current weights can
//! never go out with its average's evaluation, or one checkpoint with another's.
//!
//! The shipped model is replaced only when no paired count of the evaluation (end-to-end
//! passes, programs without an error of the agent's, characterisation answers) is lower than
//! the old one's beyond chance (exact McNemar p < [`train::eval_comparison::TIE_P`]), and the
//! new one passes at least as many of the held-out samples both evaluations hold, or fewer
//! within chance while it has the higher mean Dice over the segmentation targets (`--force`
//! overrides), so git history does not fill with checkpoints that are no better; evaluations
//! that do not hold every sample of the shipped one (another seed or build) are refused, as their rates are not comparable. Before
//! deciding it prints the paired comparison of the two evaluations ([`train::eval_comparison`]:
//! the same samples, exact McNemar test, Dice per subject), and ships it as
//! `eval/comparison.md`; `--dry-run` prints it and stops.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use train::eval_comparison::{EvalComparison, ShipVerdict};
use train::model::{Model, WeightsPrecision};

/// Arguments of `ship`.
#[derive(clap::Args)]
pub struct ShipArgs {
    /// Training run directory (its `checkpoint/average` is shipped when the run keeps one, else
    /// its `checkpoint/model`), or a model directory.
    #[arg(long)]
    run: PathBuf,
    /// Directory of `voxelprompt eval` on that model (report.md, report.json).
    #[arg(long)]
    eval: PathBuf,
    /// The shipped model's folder.
    #[arg(long, default_value = "models/voxelprompt-small")]
    out: PathBuf,
    /// Replace the shipped model even when its evaluation was better.
    #[arg(long)]
    force: bool,
    /// Print the comparison with the shipped model's evaluation and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What `ship` reads of an evaluation's report.json.
struct EvalSummary {
    /// The weights evaluated (`NAME WEIGHTS-ID`), when the report names them.
    model: Option<String>,
    /// End-to-end success.
    success: f64,
}

/// Reads an evaluation's report.json, refusing one with oracle vision.
fn read_eval(report: &Path) -> Result<EvalSummary> {
    let text =
        std::fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", report.display()))?;
    let model = json["model"].as_str().map(str::to_string);
    if model
        .as_deref()
        .is_some_and(|m| m.ends_with(train::eval::ORACLE_VISION_SUFFIX))
    {
        anyhow::bail!(
            "{} is an evaluation with oracle vision (the agent alone); ship on an evaluation of \
             the model's own vision network",
            report.display()
        );
    }
    let success = json["success"]
        .as_f64()
        .with_context(|| format!("{} has no numeric `success`", report.display()))?;
    Ok(EvalSummary { model, success })
}

/// Why the rule keeps the shipped model, if it does ([`EvalComparison::ship_verdict`]): the
/// two evaluations must share every sample of the shipped one (success rates of two different
/// sample sets say little at this size), no paired count may be lower beyond chance, and the
/// candidate must pass at least as many of them, or fewer within chance and segment better.
///
/// [`EvalComparison::ship_verdict`]: train::eval_comparison::EvalComparison::ship_verdict
fn refusal(c: &EvalComparison, out: &Path) -> Option<String> {
    match c.ship_verdict() {
        ShipVerdict::MorePasses => {
            println!("the rule: at least as many end-to-end passes");
            None
        }
        ShipVerdict::TiedEndToEndBetterElsewhere => {
            println!(
                "the rule: fewer end-to-end passes but within chance, no other count lower beyond \
                 chance, and a higher mean Dice"
            );
            None
        }
        ShipVerdict::NotComparable => Some(format!(
            "the evaluations share {} of the shipped evaluation's {} samples (another seed, \
             sample count or build): evaluate the shipped model ({}) with this build's \
             `voxelprompt eval` and the same options, put that report in {}, then ship \
             (--force to ship anyway)",
            c.success.pairs,
            c.old_samples,
            out.display(),
            out.join("eval").display()
        )),
        ShipVerdict::Worse(reason) => Some(format!(
            "{reason}; not replacing it (--force to do it anyway)"
        )),
    }
}

pub fn run(args: &ShipArgs) -> Result<()> {
    let checkpoint = args.run.join("checkpoint");
    let model_dir = [train::trainer::AVERAGE_DIR, "model"]
        .iter()
        .map(|d| checkpoint.join(d))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| args.run.clone());
    let new_report = args.eval.join("report.json");
    let new_eval = read_eval(&new_report)?;
    let new_success = new_eval.success;
    let (model, manifest) = Model::load(&model_dir, &burn::tensor::Device::flex())
        .with_context(|| format!("loading {}", model_dir.display()))?;
    let evaluated = new_eval
        .model
        .with_context(|| format!("{} names no `model`", new_report.display()))?;
    if !evaluated.ends_with(&format!(" {}", manifest.weights_id())) {
        bail!(
            "{} evaluates the weights `{evaluated}`, but {} holds `{} {}`: evaluate the model \
             that is shipped (voxelprompt eval --model {})",
            new_report.display(),
            model_dir.display(),
            manifest.model,
            manifest.weights_id(),
            model_dir.display()
        );
    }
    println!(
        "shipping {} (weights {})",
        model_dir.display(),
        manifest.weights_id()
    );
    let old_report = args.out.join("eval/report.json");
    let comparison = if old_report.is_file() {
        let c = train::eval_comparison::compare(&old_report, &new_report)?;
        println!("{}", c.markdown());
        Some(c)
    } else {
        None
    };
    let refusal = comparison.as_ref().and_then(|c| refusal(c, &args.out));
    if args.dry_run {
        match &refusal {
            Some(reason) => println!("dry run: `ship` would refuse: {reason}"),
            None => println!("dry run: `ship` would replace {}", args.out.display()),
        }
        return Ok(());
    }
    if let (Some(reason), false) = (refusal, args.force) {
        bail!("{reason}");
    }

    let parent = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let staging = parent.join(format!(".{name}.ship-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    model
        .save_as(&staging, WeightsPrecision::F16)
        .with_context(|| format!("writing {}", staging.display()))?;
    let copy = |from: PathBuf, to: PathBuf| -> Result<()> {
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::copy(&from, &to)
            .map(|_| ())
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))
    };
    for f in ["train.csv", "loss.png", "masks.csv"] {
        let from = args.run.join(f);
        if from.is_file() {
            copy(from, staging.join(f))?;
        }
    }
    // A snapshot of a running run may lack the chart: draw it from the log it ships with.
    let csv = staging.join("train.csv");
    let chart = staging.join("loss.png");
    if csv.is_file() && !chart.is_file() {
        train::plot::loss_png(&csv, &chart)
            .with_context(|| format!("drawing {} from {}", chart.display(), csv.display()))?;
    }
    for f in ["report.md", "report.json"] {
        copy(args.eval.join(f), staging.join("eval").join(f))?;
    }
    if let Some(c) = &comparison {
        let path = staging.join("eval/comparison.md");
        std::fs::write(&path, c.markdown())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The masks-against-truth pictures and the charts report.md links to.
    for folder in ["pictures", "charts"] {
        let source = args.eval.join(folder);
        if !source.is_dir() {
            continue;
        }
        for entry in
            std::fs::read_dir(&source).with_context(|| format!("listing {}", source.display()))?
        {
            let from = entry?.path();
            if let Some(name) = from.file_name().filter(|_| from.is_file()) {
                copy(from.clone(), staging.join("eval").join(folder).join(name))?;
            }
        }
    }
    let card = args.out.join("MODEL.md");
    if card.is_file() {
        copy(card, staging.join("MODEL.md"))?;
    }
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if args.out.exists() {
        std::fs::rename(&args.out, &old)
            .with_context(|| format!("moving {} aside", args.out.display()))?;
    }
    std::fs::rename(&staging, &args.out)
        .with_context(|| format!("putting the model in {}", args.out.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    let bytes: u64 = walk_bytes(&args.out)?;
    println!(
        "shipped {} ({:.1} MB; held-out success {:.1} %) into {}",
        model_dir.display(),
        bytes as f64 / 1e6,
        100.0 * new_success,
        args.out.display()
    );
    if !args.out.join("MODEL.md").is_file() {
        println!(
            "write the model card {}",
            args.out.join("MODEL.md").display()
        );
    }
    Ok(())
}

/// Total size of the files under `dir`.
fn walk_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            walk_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
