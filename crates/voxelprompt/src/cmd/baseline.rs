//! `voxelprompt baseline train|segment`: the single-task baseline UNet trained on synthesised
//! subjects only, and its inference on real scans (with Dice against a reference mask;
//! `segment --json` prints the volume and Dice as JSON).

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use train::evaluation::{evaluate, segment};
use train::{BaselineSettings, TrainOptions, TrainedBaseline};
use vision::UnetConfig;
use voxel::io;
use voxel::resample::Resample;

/// Arguments of `baseline`.
#[derive(clap::Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    command: BaselineCommand,
}

impl BaselineArgs {
    /// Whether the subcommand has a `--json` form (`segment` has; `train` prints a log).
    pub fn has_json(&self) -> bool {
        matches!(self.command, BaselineCommand::Segment(_))
    }
}

#[derive(clap::Subcommand)]
enum BaselineCommand {
    /// Train a baseline for one target on subjects synthesised on the fly.
    Train(TrainArgs),
    /// Segment a scan with a trained baseline (and score it against a reference mask).
    Segment(SegmentArgs),
    /// Train a single-task classifier for one characterisation question (evaluation
    /// experiment 2) on the joint model's task samples and preprocessing.
    Classify(ClassifyArgs),
}

/// Arguments of `baseline classify`.
#[derive(clap::Args)]
struct ClassifyArgs {
    /// The question's task family: signal_intensity, location, vascular_territory,
    /// diffusion_restriction or enhancement.
    #[arg(long)]
    family: String,
    /// Steps (one task sample each).
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Wall-time budget in minutes (stops at the first step past it).
    #[arg(long)]
    minutes: Option<f64>,
    /// Network size of the encoder: `tiny`, `small`, `paper`, or a TOML file.
    #[arg(long, default_value = "small")]
    config: String,
    /// Joint model size whose preprocessing the classifier shares: `tiny`, `small`, or a TOML
    /// file like configs/model/small.toml.
    #[arg(long, default_value = "small")]
    model_config: String,
    /// Anatomy, as for `train`: all, phantom, fsaverage, neuromorphometrics.
    #[arg(long, default_value = "all")]
    anatomy: String,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Checkpoint directory to create (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the weights and of the sample stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Arguments of `baseline train`.
#[derive(clap::Args)]
struct TrainArgs {
    /// Vocabulary target or lesion class (`glioma`, `acute_infarct`, `wmh`, …) to segment
    /// (default: the settings file's, `brain`).
    #[arg(long)]
    target: Option<String>,
    /// Isotropic voxel size the network works at, mm (default: the settings file's, 3).
    #[arg(long)]
    spacing: Option<f64>,
    /// Wall-time budget in minutes.
    #[arg(long, default_value_t = 40.0)]
    minutes: f64,
    /// Stop after this many steps even if time is left.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Network size: `tiny`, `small`, `paper`, or a TOML file like configs/vision/small.toml.
    #[arg(long, default_value = "small")]
    config: String,
    /// Training settings TOML (default: the shipped configs/train/baseline.toml).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Training patch in voxels, three numbers (default: the settings file's).
    #[arg(long, num_args = 3)]
    patch: Option<Vec<usize>>,
    /// Checkpoint directory to create (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the weights and of the synthesised subjects.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Anatomy the subjects are built from: fsaverage, neuromorphometrics or phantom (default:
    /// fsaverage when the anatomy cache has it, else the phantom).
    #[arg(long)]
    anatomy: Option<String>,
    /// Data-engine parameters TOML (default: the shipped configs/synth/synth.toml), e.g. one
    /// with `[head] model = "shells"` for the head-model ablation.
    #[arg(long)]
    synth_config: Option<PathBuf>,
}

/// Arguments of `baseline segment`.
#[derive(clap::Args)]
struct SegmentArgs {
    /// Scan to segment.
    image: PathBuf,
    /// Checkpoint directory written by `baseline train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Mask to write (NIfTI or MGZ; never one of the inputs).
    #[arg(long)]
    out: PathBuf,
    /// Reference mask (non-zero = inside); prints the Dice of the prediction against it.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// PNG of the prediction against `--truth` (green missed, red extra, yellow both).
    #[arg(long, requires = "truth")]
    picture: Option<PathBuf>,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// `baseline segment --json`.
#[derive(Serialize)]
struct Segmented {
    /// The scan segmented.
    image: String,
    /// The vocabulary target the baseline segments.
    target: String,
    /// The mask written.
    mask: String,
    /// Its volume, mL.
    volume_ml: f64,
    /// The reference mask, when given.
    truth: Option<String>,
    /// Dice of the mask against it (on the mask's grid).
    dice: Option<f64>,
    /// The reference's volume on the mask's grid, mL.
    reference_ml: Option<f64>,
    /// The PNG of the mask against the reference (`--picture`).
    picture: Option<String>,
}

/// Runs `baseline train` or `baseline segment`.
pub fn run(args: &BaselineArgs) -> Result<()> {
    match &args.command {
        BaselineCommand::Train(a) => run_train(a),
        BaselineCommand::Segment(a) => run_segment(a),
        BaselineCommand::Classify(a) => run_classify(a),
    }
}

fn ensure_new_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        anyhow::ensure!(
            empty,
            "{} exists and is not empty; give a new directory so no earlier checkpoint is \
             overwritten",
            dir.display()
        );
    }
    Ok(())
}

fn run_classify(args: &ClassifyArgs) -> Result<()> {
    ensure_new_dir(&args.out)?;
    let model = train::ModelConfig::named_or_file(&args.model_config)?;
    let stop = stop_on_signals()?;
    let job = train::characterisation_experiment::ClassifierJob {
        family: args.family.clone(),
        network: network_config(&args.config)?,
        preprocessing: model.preprocessing,
        anatomy: args.anatomy.clone(),
        learning_rate: args.learning_rate,
        steps: args.steps,
        minutes: args.minutes,
        seed: args.seed,
        device: vision::compute_device(&args.device)?,
        out: args.out.clone(),
        stop: Some(stop.clone()),
    };
    println!(
        "training a {} classifier for {} ({} steps{}) on {} subjects",
        job.network.name,
        job.family,
        job.steps,
        args.minutes
            .map(|m| format!(", at most {m} min"))
            .unwrap_or_default(),
        job.anatomy
    );
    let mut window = Vec::new();
    let record = train::characterisation_experiment::train(&job, |step, loss| {
        window.push(loss);
        if step % 10 == 0 {
            let mean = window.iter().sum::<f64>() / window.len() as f64;
            println!("step {step:>5}  loss {mean:.4}");
            window.clear();
        }
    })
    .with_context(|| format!("training the {} classifier", args.family))?;
    if stop.load(Ordering::Relaxed) {
        // A non-zero status, so a script does not take the stopped run for a finished one.
        bail!(
            "stopped by a signal after {} steps ({:.1} min); their checkpoint is in {}",
            record.steps,
            record.seconds / 60.0,
            args.out.display()
        );
    }
    println!(
        "trained {} steps in {:.1} min ({} classes); checkpoint in {}",
        record.steps,
        record.seconds / 60.0,
        record.classes.len(),
        args.out.display()
    );
    Ok(())
}

/// A flag raised by SIGINT or SIGTERM, so training stops at its next step and saves.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

fn network_config(name: &str) -> Result<UnetConfig> {
    let path = Path::new(name);
    if name.ends_with(".toml") || path.is_file() {
        UnetConfig::from_toml_file(path).with_context(|| format!("reading {}", path.display()))
    } else {
        UnetConfig::preset(name).with_context(|| format!("network size {name:?}"))
    }
}

fn run_train(args: &TrainArgs) -> Result<()> {
    ensure_new_dir(&args.out)?;
    let mut settings = match &args.settings {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            BaselineSettings::parse(&text, &p.display().to_string())?
        }
        None => BaselineSettings::builtin()?,
    };
    if let Some(t) = &args.target {
        settings.target = t.clone();
    }
    if let Some(s) = args.spacing {
        settings.spacing_mm = s;
    }
    if let Some(p) = &args.patch {
        settings.patch_shape = [p[0], p[1], p[2]];
    }
    settings.validate("command line")?;
    let network = network_config(&args.config)?;
    let device = vision::compute_device(&args.device)?;
    let synth_config = match &args.synth_config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            synth::SynthConfig::parse(&text, &p.display().to_string())?
        }
        None => synth::SynthConfig::builtin()?,
    };
    let vocabulary = synth::Vocabulary::builtin()?;
    let choice = args.anatomy.as_deref().unwrap_or("default");
    anyhow::ensure!(
        choice != "all",
        "a baseline trains on one anatomy; give fsaverage, neuromorphometrics or phantom"
    );
    let anatomy = synth::subject::load_anatomies(choice, &synth_config)
        .with_context(|| {
            format!(
                "loading anatomy {choice:?} (run `python3 scripts/fetch_anatomy.py` to fetch it)"
            )
        })?
        .into_iter()
        .next()
        .with_context(|| format!("anatomy {choice:?} gave no label map"))?;
    println!(
        "training a {} baseline for {:?} at {} mm, patch {:?}, on subjects synthesised from {}; \
         budget {} min, device {}",
        network.name,
        settings.target,
        settings.spacing_mm,
        settings.patch_shape,
        anatomy.name,
        args.minutes,
        args.device
    );
    let stop = stop_on_signals()?;
    let options = TrainOptions {
        settings,
        network,
        minutes: args.minutes,
        max_steps: args.max_steps,
        seed: args.seed,
        device,
        out: Some(args.out.clone()),
        stop: Some(stop.clone()),
    };
    let (_, report) = train::train(&options, &anatomy, &synth_config, &vocabulary, |log| {
        println!(
            "step {:>5}  loss {:.4}  {:>7.1} s  (waited {:.2} s/step for samples)",
            log.step, log.mean_loss, log.seconds, log.wait_seconds
        );
    })
    .context("training the baseline")?;
    if stop.load(Ordering::Relaxed) {
        // A non-zero status, so a script does not take the stopped run for a finished one.
        bail!(
            "stopped by a signal after {} steps ({:.1} min); their checkpoint is in {}",
            report.steps,
            report.seconds / 60.0,
            args.out.display()
        );
    }
    println!(
        "trained {} steps in {:.1} min; checkpoint in {}",
        report.steps,
        report.seconds / 60.0,
        args.out.display()
    );
    Ok(())
}

fn run_segment(args: &SegmentArgs) -> Result<()> {
    let mut inputs = vec![args.image.as_path()];
    inputs.extend(args.truth.as_deref());
    io::ensure_not_input(&args.out, &inputs)?;
    if let Some(p) = &args.picture {
        io::ensure_not_input(p, &inputs)?;
    }
    let device = vision::compute_device(&args.device)?;
    let model = TrainedBaseline::load(&args.checkpoint, &device)
        .with_context(|| format!("loading the checkpoint {}", args.checkpoint.display()))?;
    let image = super::scan_input::read_scan(&args.image)
        .with_context(|| format!("reading {}", args.image.display()))?;
    let mask =
        segment(&model, &image).with_context(|| format!("segmenting {}", args.image.display()))?;
    io::write_mask(&args.out, &mask).with_context(|| format!("writing {}", args.out.display()))?;
    let ml = voxel::measure::volume_ml(&mask);
    crate::cmd::say!(
        "{}: {:?} {:.1} mL -> {}",
        args.image.display(),
        model.record.settings.target,
        ml,
        args.out.display()
    );
    let mut result = Segmented {
        image: args.image.display().to_string(),
        target: model.record.settings.target.clone(),
        mask: args.out.display().to_string(),
        volume_ml: ml,
        truth: None,
        dice: None,
        reference_ml: None,
        picture: None,
    };
    if let Some(t) = &args.truth {
        let truth = io::read_labels(t)
            .with_context(|| format!("reading {}", t.display()))?
            .map(|l| l != 0);
        let e =
            evaluate(&mask, &truth).with_context(|| format!("comparing with {}", t.display()))?;
        crate::cmd::say!(
            "Dice {:.4} against {} (prediction {:.1} mL, reference {:.1} mL)",
            e.dice,
            t.display(),
            e.predicted_ml,
            e.reference_ml
        );
        result.truth = Some(t.display().to_string());
        result.dice = Some(e.dice);
        result.reference_ml = Some(e.reference_ml);
        if let Some(p) = &args.picture {
            let truth = if truth.geometry().same_grid(mask.geometry(), 1e-3) {
                truth
            } else {
                truth
                    .resample(
                        mask.geometry(),
                        &voxel::resample::ResampleOptions::nearest(),
                    )
                    .with_context(|| format!("resampling {} to the scan", t.display()))?
            };
            let scan = if image.geometry().same_grid(mask.geometry(), 1e-3) {
                image.clone()
            } else {
                image.resample(mask.geometry(), &voxel::resample::ResampleOptions::linear())?
            };
            voxel::render::save_comparison_png(p, &scan, &truth, &mask, None)
                .with_context(|| format!("writing {}", p.display()))?;
            crate::cmd::say!(
                "picture (green missed, red extra, yellow both) -> {}",
                p.display()
            );
            result.picture = Some(p.display().to_string());
        }
    }
    if crate::cmd::json() {
        crate::cmd::print_json(&result)?;
    }
    Ok(())
}
