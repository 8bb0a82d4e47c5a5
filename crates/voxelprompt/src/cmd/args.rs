//! Arguments shared by the commands that ask the trained model (`run`, `chat`, `batch`,
//! `demo`, `eval`, `serve`), flattened into each so the flags and defaults are the same
//! everywhere.

use anyhow::Result;
use std::path::PathBuf;
use train::inference::{AnswerOptions, Scan};

use crate::cmd::run::{load_model, read_scans, LoadedModel, ScanArg};

/// Which model answers, on which device, within which limits.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model directory (default: $VOXELPROMPT_MODEL, else the shipped models/voxelprompt-small).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Most program steps per answer.
    #[arg(long, default_value_t = 8)]
    pub max_steps: usize,
    /// Most tokens per step.
    #[arg(long, default_value_t = 400)]
    pub max_new_tokens: usize,
}

impl ModelArgs {
    /// Loads the model (exit code 3 when it is missing or corrupt, 2 for a bad device).
    pub fn load(&self) -> Result<LoadedModel> {
        load_model(self.model.as_deref(), &self.device)
    }

    /// The limits of each answer.
    pub fn answer_options(&self) -> AnswerOptions {
        AnswerOptions {
            max_steps: self.max_steps,
            max_new_tokens: self.max_new_tokens,
            ..AnswerOptions::default()
        }
    }
}

/// The scans a question is about, as given on the command line.
#[derive(clap::Args, Clone, Debug)]
pub struct ScanArgs {
    /// Scans: `PATH`, `NAME=PATH` or `NAME@YYYY-MM-DD=PATH` (default names scan_1, scan_2, …).
    #[arg(required = true)]
    pub scans: Vec<String>,
    /// Modality of every scan given without one in its name (e.g. `T1w`, `FLAIR`, `CT`).
    #[arg(long)]
    pub modality: Option<String>,
}

impl ScanArgs {
    /// Reads every scan (exit code 2 on any problem).
    pub fn read(&self) -> Result<(Vec<Scan>, Vec<ScanArg>)> {
        read_scans(&self.scans, self.modality.as_deref())
    }
}
