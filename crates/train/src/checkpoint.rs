//! Baseline checkpoints: a directory with the network in `vision/` (the `vision` checkpoint
//! format: `config.json` + `weights.safetensors`) and `training.json`, the settings and
//! progress of the run. Inference reads the target spacing and normalisation from it.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use vision::BaselineUnet;

use crate::error::{Result, TrainError};
use crate::settings::BaselineSettings;

/// Sub-directory holding the network.
pub const NETWORK_DIR: &str = "vision";
/// File holding the [`TrainingRecord`].
pub const TRAINING_FILE: &str = "training.json";

/// What a checkpoint says about how it was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// Settings of the run (target, spacing, normalisation, augmentation).
    pub settings: BaselineSettings,
    /// Network size name (`tiny`, `small`, …); the full sizes are in `vision/config.json`.
    pub network: String,
    /// Seed of the weights and of the sample stream.
    pub seed: u64,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall time of training so far, seconds.
    pub seconds: f64,
    /// Mean loss over the last logging window.
    pub recent_loss: Option<f64>,
    /// Anatomy the subjects were synthesised from.
    pub anatomy: String,
}

/// A trained baseline ready for inference.
#[derive(Debug)]
pub struct TrainedBaseline {
    /// The network (on a plain, non-autodiff device).
    pub net: BaselineUnet,
    /// How it was trained.
    pub record: TrainingRecord,
    /// The device the network lives on (inputs are created there).
    pub device: Device,
}

/// Writes `net` and `record` into `dir` (created if needed). The network goes to a temporary
/// sibling first and replaces the previous one only once complete.
pub fn save(dir: &Path, net: &BaselineUnet, record: &TrainingRecord) -> Result<()> {
    save_with_record(dir, NETWORK_DIR, net, TRAINING_FILE, record)
}

/// Writes a network into `dir/network_dir` (the `vision` checkpoint format, through a temporary
/// sibling that replaces the previous one only once complete) and `record` as JSON into
/// `dir/record_file` (atomically).
pub fn save_with_record<M: vision::checkpoint::Checkpointable, R: Serialize>(
    dir: &Path,
    network_dir: &str,
    net: &M,
    record_file: &str,
    record: &R,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let tmp = dir.join(format!(".{network_dir}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    vision::checkpoint::save(net, &tmp)?;
    let final_dir = dir.join(network_dir);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    let json = serde_json::to_string_pretty(record).map_err(|e| TrainError::Checkpoint {
        path: dir.join(record_file),
        problem: format!("cannot serialise the record: {e}"),
    })?;
    voxel::io::atomic_write(&dir.join(record_file), |w| {
        std::io::Write::write_all(w, json.as_bytes())
    })?;
    Ok(())
}

/// Reads the training record of the checkpoint in `dir`.
pub fn read_record(dir: &Path) -> Result<TrainingRecord> {
    let path: PathBuf = dir.join(TRAINING_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let record: TrainingRecord =
        serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            problem: format!("not a baseline training record: {e}"),
        })?;
    record.settings.validate(&path.display().to_string())?;
    Ok(record)
}

impl TrainedBaseline {
    /// Loads the checkpoint in `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<TrainedBaseline> {
        if !dir.is_dir() {
            return Err(TrainError::Checkpoint {
                path: dir.to_path_buf(),
                problem: "not a directory; pass the --out directory of `baseline train`".into(),
            });
        }
        let record = read_record(dir)?;
        let net: BaselineUnet = vision::checkpoint::load(&dir.join(NETWORK_DIR), device)?;
        Ok(TrainedBaseline {
            net,
            record,
            device: device.clone(),
        })
    }
}
