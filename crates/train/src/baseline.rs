//! The single-task baseline trainer: a [`BaselineUnet`] learns one vocabulary target from
//! subjects synthesised on the fly, one new subject per step, with soft Dice + BCE and Adam.
//!
//! [`BaselineTrainer`] is the optimisation step on given samples (tests drive it directly);
//! [`train`] adds the sample stream (synthesised on a background thread while the network
//! trains), the time budget, progress lines and periodic checkpoints.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use synth::{Anatomy, SynthConfig, Vocabulary};
use vision::{BaselineUnet, UnetConfig};

use crate::checkpoint::{self, TrainedBaseline, TrainingRecord};
use crate::error::{Result, TrainError};
use crate::loss::dice_bce_with_logits_loss;
use crate::sampling::{Sampler, TrainingSample};
use crate::settings::BaselineSettings;
use vision::tensor::{image_to_tensor, tensor_spacing};

/// Samples synthesised ahead of the optimiser.
const PREFETCH: usize = 2;

/// The optimisation state of a baseline: network (on an autodiff device), Adam, step count.
pub struct BaselineTrainer {
    net: BaselineUnet,
    optimizer: ModuleOptimizer,
    learning_rate: f64,
    /// The autodiff device training runs on.
    device: Device,
    /// The same device without autodiff, for inference.
    inference_device: Device,
    steps: usize,
}

impl BaselineTrainer {
    /// A freshly initialised network of `config` (weights from `seed`) on the CPU backend.
    pub fn new(config: &UnetConfig, learning_rate: f64, seed: u64) -> Result<Self> {
        Self::on_device(config, learning_rate, seed, &Device::flex())
    }

    /// As [`BaselineTrainer::new`], on `device` (e.g. from [`vision::compute_device`]); the
    /// same weights for the same seed on every device.
    pub fn on_device(
        config: &UnetConfig,
        learning_rate: f64,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let autodiff = device.clone().autodiff();
        Ok(Self {
            net: BaselineUnet::new(config, seed, &autodiff)?,
            optimizer: AdamConfig::new().init(),
            learning_rate,
            device: autodiff,
            inference_device: device.clone(),
            steps: 0,
        })
    }

    /// One Adam step on `sample`; returns the loss before the step.
    pub fn step(&mut self, sample: &TrainingSample) -> Result<f64> {
        let image = image_to_tensor(&sample.image, &self.device);
        let target = image_to_tensor(&sample.target, &self.device);
        let logits = self
            .net
            .logits(image, tensor_spacing(sample.image.geometry()))?;
        let loss = dice_bce_with_logits_loss(logits, target);
        let value = loss
            .clone()
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| TrainError::Backend(format!("{e:?}")))?
            .first()
            .copied()
            .ok_or_else(|| TrainError::Backend("empty loss tensor".into()))?;
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        let net = self.net.clone();
        self.net = self.optimizer.step(self.learning_rate, net, grads);
        self.steps += 1;
        Ok(value as f64)
    }

    /// Optimiser steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The network for inference (no autodiff), on the training device.
    pub fn inference_net(&self) -> BaselineUnet {
        self.net.valid()
    }

    /// The current network with `record`, ready for [`crate::evaluation::segment`].
    pub fn trained(&self, record: TrainingRecord) -> TrainedBaseline {
        TrainedBaseline {
            net: self.inference_net(),
            record,
            device: self.inference_device.clone(),
        }
    }
}

/// How to run [`train`].
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Target, spacing, augmentation, normalisation, learning rate.
    pub settings: BaselineSettings,
    /// Network size.
    pub network: UnetConfig,
    /// Wall-time budget, minutes; training stops at the first step boundary past it.
    pub minutes: f64,
    /// Stop after this many steps even if time is left.
    pub max_steps: Option<usize>,
    /// Seed of the weights and of the sample stream.
    pub seed: u64,
    /// Where the network trains (`Device::flex()` for the CPU).
    pub device: Device,
    /// Checkpoint directory (written every `checkpoint_every` steps and at the end), if any.
    pub out: Option<PathBuf>,
    /// Set (by a signal handler) to stop at the next step boundary, checkpoint written.
    pub stop: Option<Arc<AtomicBool>>,
}

/// One progress line.
#[derive(Clone, Debug, PartialEq)]
pub struct StepLog {
    /// Steps taken.
    pub step: usize,
    /// Mean loss since the previous line.
    pub mean_loss: f64,
    /// Wall time since the start, seconds.
    pub seconds: f64,
    /// Mean seconds the optimiser waited for a sample since the previous line.
    pub wait_seconds: f64,
}

/// What a finished run did.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Steps taken.
    pub steps: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Loss of every step, in order.
    pub losses: Vec<f64>,
}

/// Trains a baseline on samples synthesised from `anatomy`, calling `on_log` every
/// `log_every` steps; returns the trained network and a report. With `options.out`, writes a
/// checkpoint there periodically and at the end.
pub fn train(
    options: &TrainOptions,
    anatomy: &Anatomy,
    synth_config: &SynthConfig,
    vocabulary: &Vocabulary,
    mut on_log: impl FnMut(&StepLog),
) -> Result<(TrainedBaseline, TrainReport)> {
    let settings = &options.settings;
    settings.validate("training options")?;
    options.network.validate()?;
    settings.check_patch_for(options.network.levels)?;
    let sampler = Sampler::new(anatomy, synth_config, vocabulary, settings)?;
    let mut trainer = BaselineTrainer::on_device(
        &options.network,
        settings.learning_rate,
        options.seed,
        &options.device,
    )?;
    let record = |steps: usize, seconds: f64, recent_loss: Option<f64>| TrainingRecord {
        settings: settings.clone(),
        network: options.network.name.clone(),
        seed: options.seed,
        steps,
        seconds,
        recent_loss,
        anatomy: anatomy.name.clone(),
    };
    let start = Instant::now();
    let budget_s = options.minutes * 60.0;
    let max_steps = options.max_steps.unwrap_or(usize::MAX);
    let mut losses = Vec::new();
    let mut window = (0.0f64, 0usize, 0.0f64);
    let mut recent_loss = None;

    std::thread::scope(|scope| -> Result<()> {
        let (sender, receiver) = mpsc::sync_channel::<Result<TrainingSample>>(PREFETCH);
        let sampler = &sampler;
        let seed = options.seed;
        scope.spawn(move || {
            for k in 0u64.. {
                let sample = sampler.sample(seed.wrapping_mul(0x9E37_79B9).wrapping_add(k));
                let failed = sample.is_err();
                // A closed channel means training is over.
                if sender.send(sample).is_err() || failed {
                    break;
                }
            }
        });
        let stopped = || {
            options
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        };
        while trainer.steps() < max_steps && start.elapsed().as_secs_f64() < budget_s && !stopped()
        {
            let waited = Instant::now();
            let sample = receiver
                .recv()
                .map_err(|e| TrainError::Sampler(e.to_string()))??;
            window.2 += waited.elapsed().as_secs_f64();
            let loss = trainer.step(&sample)?;
            losses.push(loss);
            window.0 += loss;
            window.1 += 1;
            let step = trainer.steps();
            if step % settings.log_every == 0 {
                let mean = window.0 / window.1 as f64;
                recent_loss = Some(mean);
                on_log(&StepLog {
                    step,
                    mean_loss: mean,
                    seconds: start.elapsed().as_secs_f64(),
                    wait_seconds: window.2 / window.1 as f64,
                });
                window = (0.0, 0, 0.0);
            }
            if let Some(dir) = &options.out {
                if step % settings.checkpoint_every == 0 {
                    let r = record(step, start.elapsed().as_secs_f64(), recent_loss);
                    checkpoint::save(dir, &trainer.inference_net(), &r)?;
                }
            }
        }
        drop(receiver);
        Ok(())
    })?;

    if window.1 > 0 {
        recent_loss = Some(window.0 / window.1 as f64);
    }
    let seconds = start.elapsed().as_secs_f64();
    let final_record = record(trainer.steps(), seconds, recent_loss);
    if let Some(dir) = &options.out {
        checkpoint::save(dir, &trainer.inference_net(), &final_record)?;
    }
    let report = TrainReport {
        steps: trainer.steps(),
        seconds,
        losses,
    };
    Ok((trainer.trained(final_record), report))
}
