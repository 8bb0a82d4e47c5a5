//! How much one mask teaches the ϕ-steered network, with ϕ as a bias only (the paper's mixing)
//! or as a per-channel scale too (FiLM, `phi_scale`). The agent is left out: each target gets a
//! learned ϕ of its own, so the experiment measures only what the conditioning lets the network
//! learn from a mask. One network learns K targets in turn (one sample a step, a synthesised
//! subject cropped around the target, as `voxelprompt baseline train` draws them) with the
//! joint trainer's vision loss and rate; every `--eval-every` steps it segments a fixed
//! held-out set (4 subjects a target) and prints each target's Dice at 0.5.
//!
//! ```text
//! cargo run --release -p train --example film_yield -- --steps 600 --threads 1          # bias
//! cargo run --release -p train --example film_yield -- --steps 600 --threads 1 --film   # FiLM
//! cargo run --release -p train --example film_yield -- --steps 600 --channels-top 32      # wider
//! ```
//!
//! `--channels-top N` widens the full-resolution level (`small` has 16), the other question of
//! docs/training.md: whether the shared network is short of capacity rather than of masks.
//!
//! Needs the fsaverage anatomy (`python3 scripts/fetch_anatomy.py`).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use train::loss::dice_bce_with_logits_loss;
use train::sampling::{Sampler, TrainingSample};
use train::BaselineSettings;
use vision::tensor::{image_to_tensor, tensor_spacing};
use vision::{Unet, UnetConfig};

/// The targets learnt together (the evaluation's small anatomical targets).
const TARGETS: [&str; 4] = [
    "lateral ventricle",
    "thalamus",
    "caudate nucleus",
    "hippocampus",
];
/// Held-out subjects per target.
const EVAL_SUBJECTS: u64 = 4;
/// The joint trainer's vision learning rate (configs/train/continue.toml).
const LEARNING_RATE: f64 = 4e-4;

/// The network and one learned ϕ per target.
#[derive(Module, Debug)]
struct Steered {
    net: Unet,
    /// `[K, phi_dim]`.
    phi: Param<Tensor<2>>,
}

impl Steered {
    fn logits(&self, sample: &TrainingSample, target: usize) -> Result<Tensor<5>> {
        let device = self.phi.val().device();
        let image = image_to_tensor(&sample.image, &device);
        let phi = self.phi.val().narrow(0, target, 1);
        let encoding = self
            .net
            .encode(image, tensor_spacing(sample.image.geometry()), &phi)?;
        Ok(self.net.generate_logits(&encoding, &phi)?)
    }
}

struct Args {
    film: bool,
    channels_top: Option<usize>,
    steps: usize,
    eval_every: usize,
    threads: usize,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        film: false,
        channels_top: None,
        steps: 600,
        eval_every: 150,
        threads: 1,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} needs a whole number"))
        };
        match flag.as_str() {
            "--film" => args.film = true,
            "--channels-top" => args.channels_top = Some(value("--channels-top")?),
            "--steps" => args.steps = value("--steps")?,
            "--eval-every" => args.eval_every = value("--eval-every")?.max(1),
            "--threads" => args.threads = value("--threads")?.max(1),
            "--seed" => args.seed = value("--seed")? as u64,
            other => bail!(
                "unknown argument {other:?} (--film, --channels-top, --steps, --eval-every, \
                 --threads, --seed)"
            ),
        }
    }
    Ok(args)
}

fn hard_dice(probabilities: &[f32], target: &[f32]) -> f64 {
    let (mut both, mut predicted, mut truth) = (0.0f64, 0.0f64, 0.0f64);
    for (&p, &t) in probabilities.iter().zip(target) {
        let p = f64::from(u8::from(p > 0.5));
        let t = f64::from(u8::from(t > 0.5));
        both += p * t;
        predicted += p;
        truth += t;
    }
    2.0 * both / (predicted + truth).max(1.0)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .context("thread pool")?;
    let synth_config = synth::SynthConfig::builtin()?;
    let vocabulary = synth::Vocabulary::builtin()?;
    let anatomy = synth::subject::load_anatomies("fsaverage", &synth_config)
        .context("fsaverage anatomy (run `python3 scripts/fetch_anatomy.py`)")?
        .into_iter()
        .next()
        .context("no fsaverage label map")?;
    let settings: Vec<BaselineSettings> = TARGETS
        .iter()
        .map(|&target| {
            let mut s = BaselineSettings::builtin()?;
            s.target = target.to_string();
            s.learning_rate = LEARNING_RATE;
            Ok(s)
        })
        .collect::<Result<_>>()?;
    let samplers: Vec<Sampler> = settings
        .iter()
        .map(|s| Sampler::new(&anatomy, &synth_config, &vocabulary, s))
        .collect::<std::result::Result<_, _>>()?;
    let held_out: Vec<Vec<TrainingSample>> = samplers
        .iter()
        .map(|sampler| {
            (0..EVAL_SUBJECTS)
                .map(|k| sampler.sample(u64::MAX - k))
                .collect::<std::result::Result<_, _>>()
        })
        .collect::<std::result::Result<_, _>>()?;

    let small = UnetConfig::preset("small")?;
    let config = UnetConfig {
        phi_scale: args.film,
        channels_top: args.channels_top.unwrap_or(small.channels_top),
        ..small
    };
    config.validate()?;
    let device = Device::flex().autodiff();
    let net = Unet::new(&config, args.seed, &device)?;
    // ϕ of a trained agent: entries of order 1 (uniform on [-√3, √3], unit variance).
    let phi_values: Vec<f32> = {
        let mut state = args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..TARGETS.len() * config.phi_dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 3f32.sqrt()
            })
            .collect()
    };
    let phi = Tensor::from_data(
        TensorData::new(phi_values, [TARGETS.len(), config.phi_dim]),
        &device,
    );
    let mut model = Steered {
        net,
        phi: Param::from_tensor(phi),
    };
    let mut optimizer = AdamConfig::new().init();
    println!(
        "# film={} channels_top={} steps={} seed={} targets={:?}",
        args.film, config.channels_top, args.steps, args.seed, TARGETS
    );
    println!("step,seconds,mean_loss,{},mean", TARGETS.join(","));
    let start = Instant::now();
    let mut losses = Vec::new();
    for step in 1..=args.steps {
        let target = (step - 1) % TARGETS.len();
        let sample = samplers[target].sample(args.seed.wrapping_mul(1_000_003) + step as u64)?;
        let truth = image_to_tensor(&sample.target, &device);
        let loss = dice_bce_with_logits_loss(model.logits(&sample, target)?, truth);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(LEARNING_RATE, model, grads);
        if step % args.eval_every == 0 || step == args.steps {
            let frozen = model.valid();
            let mut dice = Vec::new();
            for (k, samples) in held_out.iter().enumerate() {
                let mut sum = 0.0;
                for sample in samples {
                    let p = sigmoid(frozen.logits(sample, k)?)
                        .into_data()
                        .try_into_vec::<f32>()
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    sum += hard_dice(&p, sample.target.data());
                }
                dice.push(sum / samples.len() as f64);
            }
            let recent = &losses[losses.len().saturating_sub(args.eval_every)..];
            let mean_loss = recent.iter().map(|&l| f64::from(l)).sum::<f64>() / recent.len() as f64;
            let mean = dice.iter().sum::<f64>() / dice.len() as f64;
            let cells: Vec<String> = dice.iter().map(|d| format!("{d:.3}")).collect();
            println!(
                "{step},{:.0},{mean_loss:.4},{},{mean:.3}",
                start.elapsed().as_secs_f64(),
                cells.join(",")
            );
        }
    }
    Ok(())
}
