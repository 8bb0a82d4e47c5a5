//! `voxelprompt average --out DIR MODEL MODEL…`: the uniform mean of the weights of several
//! checkpoints of one training run, as a new model directory (f32, with the first model's
//! configuration and tokenizer), to evaluate and ship like any checkpoint. Averaging a run's
//! recent checkpoints smooths the step-to-step noise that made two checkpoints 75 steps apart
//! differ more than a session's progress ([`train::averaging`]); the run's own moving average
//! (`weight_average_decay`) does the same continuously.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use train::model::{Manifest, Model, CONFIG_FILE, TOKENIZER_FILE};

/// Arguments of `average`.
#[derive(clap::Args)]
pub struct AverageArgs {
    /// Model directories (e.g. snapshots of RUN/checkpoint/model), at least two, all of one
    /// configuration and tokenizer.
    #[arg(required = true, num_args = 2..)]
    models: Vec<PathBuf>,
    /// The new model directory (must not exist).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &AverageArgs) -> Result<()> {
    if args.out.exists() {
        bail!(
            "{} exists; give a new directory for the averaged model",
            args.out.display()
        );
    }
    let device = burn::tensor::Device::flex();
    let mut models: Vec<(Model, Manifest)> = Vec::with_capacity(args.models.len());
    for dir in &args.models {
        let (model, manifest) =
            Model::load(dir, &device).with_context(|| format!("loading {}", dir.display()))?;
        if let Some((_, first_manifest)) = models.first() {
            for file in [CONFIG_FILE, TOKENIZER_FILE] {
                if manifest.files.get(file) != first_manifest.files.get(file) {
                    bail!(
                        "{} has another {file} than {}: only checkpoints of one run average",
                        dir.display(),
                        args.models[0].display()
                    );
                }
            }
        }
        crate::cmd::note!("{}: weights {}", dir.display(), manifest.weights_id());
        models.push((model, manifest));
    }
    let nets: Vec<_> = models.iter().map(|(m, _)| m.net.clone()).collect();
    let net = train::averaging::mean(&nets).context("averaging the weights")?;
    let Some((first, _)) = models.into_iter().next() else {
        bail!("no models to average");
    };
    let averaged = Model { net, ..first };
    let manifest = averaged
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "averaged {} models into {} (weights {})",
        args.models.len(),
        args.out.display(),
        manifest.weights_id()
    );
    Ok(())
}
