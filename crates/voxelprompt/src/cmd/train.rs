//! `voxelprompt train`: joint training of the agent and the vision network on task samples
//! synthesised on the fly (DESIGN.md §7). Resumable: `--resume DIR` continues a run exactly
//! where its last checkpoint left it; SIGINT/SIGTERM write a checkpoint before exiting.

use anyhow::{bail, Context, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use train::model::Model;
use train::trainer::{self, JointSettings, JointTrainer, LogRow, TrainJob};
use train::ModelConfig;

/// Arguments of `train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Joint model size: `tiny`, `small`, or a TOML file like configs/model/small.toml.
    #[arg(long, default_value = "small")]
    config: String,
    /// Run directory to create (checkpoint, train.csv). With --resume, defaults to it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start a new run from the weights and tokenizer of this model directory (e.g. the
    /// shipped models/voxelprompt-small) instead of fresh ones.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Start a new run's vision network from a single-task baseline (a `baseline train`
    /// checkpoint, e.g. the `brain` one of scripts/train_baselines.sh): every weight but the ϕ
    /// parts of the mixing layers is the baseline's, so the network begins as a segmenter.
    #[arg(long, conflicts_with = "resume")]
    init_vision: Option<PathBuf>,
    /// Wall-time budget of this invocation in minutes.
    #[arg(long)]
    minutes: Option<f64>,
    /// Stop when the run has taken this many optimiser steps in total.
    #[arg(long)]
    steps: Option<u64>,
    /// Training settings TOML (default: the shipped configs/train/joint.toml). With --resume,
    /// they replace the run's own from its next step (a copy is kept in the run directory as
    /// `settings-from-step-N.toml`).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Anatomy to synthesise from (overrides the settings): all, phantom, fsaverage,
    /// neuromorphometrics.
    #[arg(long, conflicts_with = "resume")]
    anatomy: Option<String>,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature. A
    /// comma-separated list trains data-parallel, one model replica per entry (`cuda:0,cuda:1`;
    /// `cpu,cpu` runs two replicas on the CPU; docs/training.md says when that pays).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Seed of the weights, the tokenizer corpus and the sample stream (new runs only).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the per-sample time breakdown and samples per hour at the end.
    #[arg(long)]
    bench: bool,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    if args.minutes.is_none() && args.steps.is_none() {
        bail!("give a budget: --minutes M or --steps N");
    }
    let devices = args
        .device
        .split(',')
        .map(vision::compute_device)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--device {}", args.device))?;
    let device = devices[0].clone();
    let (trainer, out) = match (&args.resume, &args.out) {
        (Some(dir), out) => {
            let settings = args.settings.as_deref().map(read_settings).transpose()?;
            let t = JointTrainer::resume_with(dir, &device, settings)
                .with_context(|| format!("resuming {}", dir.display()))?;
            if let Some(p) = &args.settings {
                let copy = dir.join(format!("settings-from-step-{}.toml", t.state.step));
                std::fs::copy(p, &copy)
                    .with_context(|| format!("copying {} to {}", p.display(), copy.display()))?;
                crate::cmd::note!(
                    "settings of {} replace the run's from step {}",
                    p.display(),
                    t.state.step
                );
            }
            crate::cmd::note!(
                "resuming {} at step {} (sample {}, {:.2} h trained, lr {:e})",
                dir.display(),
                t.state.step,
                t.state.next_sample,
                t.state.seconds / 3600.0,
                t.state.learning_rate
            );
            (t, out.clone().unwrap_or_else(|| dir.clone()))
        }
        (None, Some(out)) => {
            if out.join("checkpoint").exists() {
                bail!(
                    "{} already holds a run; continue it with --resume {0} or choose another --out",
                    out.display()
                );
            }
            let mut settings = match &args.settings {
                Some(p) => read_settings(p)?,
                None => JointSettings::builtin()?,
            };
            if let Some(a) = &args.anatomy {
                settings.anatomy = a.clone();
            }
            let model = match &args.init {
                Some(dir) => {
                    Model::load(dir, &device)
                        .with_context(|| format!("loading {}", dir.display()))?
                        .0
                }
                None => {
                    let config = ModelConfig::named_or_file(&args.config)?;
                    crate::cmd::note!(
                        "new {} model: training its tokenizer on {} task samples…",
                        config.name,
                        settings.tokenizer_samples
                    );
                    trainer::new_model(config, &settings, args.seed, &device)?
                }
            };
            let mut model = model;
            if let Some(dir) = &args.init_vision {
                let network = dir.join(train::checkpoint::NETWORK_DIR);
                let network = if network.is_dir() {
                    network
                } else {
                    dir.clone()
                };
                let taken = vision::checkpoint::load_baseline_into(&mut model.net.vision, &network)
                    .with_context(|| {
                        format!("starting the vision network from {}", dir.display())
                    })?;
                crate::cmd::note!(
                    "vision network started from {} ({taken} tensors)",
                    dir.display()
                );
            }
            (
                JointTrainer::new(model, settings, args.seed, &device)?,
                out.clone(),
            )
        }
        (None, None) => bail!("give --out DIR for a new run or --resume DIR to continue one"),
    };

    if devices.len() > 1 {
        crate::cmd::note!(
            "data-parallel on {} replicas ({})",
            devices.len(),
            args.device
        );
    }
    let mut trainer = trainer.with_devices(devices);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let job = TrainJob {
        out: out.clone(),
        minutes: args.minutes,
        steps: args.steps,
    };
    let bar = progress_bar(&job, trainer.state.step);
    let log_every = trainer.state.settings.log_every.max(1) as u64;
    let summary = trainer::train(&mut trainer, &job, &stop, |row| {
        if bar.is_some() || row.step % log_every == 0 || row.validation.is_some() {
            report(row, bar.as_ref());
        }
    })
    .with_context(|| format!("training into {}", out.display()))?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let plot = out.join("loss.png");
    if let Err(e) = train::plot::loss_png(&out.join("train.csv"), &plot) {
        eprintln!("warning: could not draw {}: {e}", plot.display());
    }
    crate::cmd::note!(
        "{} at step {} after {:.1} min; checkpoint in {}",
        if summary.interrupted {
            "interrupted"
        } else {
            "stopped"
        },
        summary.step,
        summary.seconds / 60.0,
        out.join("checkpoint").display()
    );
    let average = out.join("checkpoint").join(trainer::AVERAGE_DIR);
    if average.is_dir() {
        crate::cmd::note!(
            "the moving average of the weights (what is validated and shipped): {}",
            average.display()
        );
    }
    if args.bench {
        print_bench(&summary.rows);
    }
    Ok(())
}

fn progress_bar(job: &TrainJob, step: u64) -> Option<indicatif::ProgressBar> {
    if crate::cmd::quiet() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match job.steps {
        Some(n) => indicatif::ProgressBar::new(n).with_position(step),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} step {pos}{len} [{elapsed_precise} < {eta}] {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    Some(bar)
}

fn report(row: &LogRow, bar: Option<&indicatif::ProgressBar>) {
    let per_sample: f64 = row.stages.synthesis.max(0.0)
        + row.stages.agent_forward
        + row.stages.runtime
        + row.stages.loss
        + row.stages.backward;
    let line = format!(
        "step {} samples {} loss {:.4} (ce {:.4} dice {:.3}{}) lr {:.1e} {:.1} s/sample{}",
        row.step,
        row.samples,
        row.loss,
        row.cross_entropy,
        row.dice,
        row.phi_name
            .map(|v| format!(" ϕ name {v:.3}"))
            .unwrap_or_default(),
        row.learning_rate,
        per_sample,
        row.validation
            .map(|v| format!(" validation {v:.4}"))
            .unwrap_or_default()
    );
    match bar {
        Some(b) => {
            b.set_position(row.step);
            b.set_message(line);
        }
        None => crate::cmd::note!("{line}"),
    }
}

fn print_bench(rows: &[LogRow]) {
    if rows.is_empty() {
        println!("no optimiser step finished; no timing to report");
        return;
    }
    let mut total = train::joint::StageSeconds::default();
    for r in rows {
        total.add(&r.stages);
    }
    let s = total.scaled(rows.len() as f64);
    // Synthesis runs on its own thread, overlapped with the rest.
    let critical = s.agent_forward + s.runtime + s.loss + s.backward;
    println!("per-sample time (mean of {} optimiser steps):", rows.len());
    println!("  synthesis (background thread) {:8.3} s", s.synthesis);
    println!("  agent forward                 {:8.3} s", s.agent_forward);
    println!(
        "  runtime steps                 {:8.3} s (of which vision forward {:.3} s)",
        s.runtime, s.vision_forward
    );
    println!("  loss terms                    {:8.3} s", s.loss);
    println!("  backward (agent + vision)     {:8.3} s", s.backward);
    println!("  total on the training thread  {:8.3} s", critical);
    let first = &rows[0];
    let last = &rows[rows.len() - 1];
    let measured = if rows.len() > 1 {
        (last.samples - first.samples) as f64 / (last.seconds - first.seconds).max(1e-9) * 3600.0
    } else {
        3600.0 / critical.max(synthesis_floor(&s))
    };
    println!("samples per hour: {measured:.0}");
}

fn synthesis_floor(s: &train::joint::StageSeconds) -> f64 {
    s.synthesis
}

fn read_settings(path: &std::path::Path) -> Result<JointSettings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(JointSettings::from_toml_str(
        &text,
        &path.display().to_string(),
    )?)
}
