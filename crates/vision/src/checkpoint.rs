//! Checkpoints: a directory with `config.json` (what to build) and `weights.safetensors`.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use vision::{checkpoint, Unet, UnetConfig};
//!
//! let device = Device::flex();
//! let net = Unet::new(&UnetConfig::preset("tiny")?, 1, &device)?;
//! checkpoint::save(&net, std::path::Path::new("ckpt/vision"))?;
//! let again: Unet = checkpoint::load(std::path::Path::new("ckpt/vision"), &device)?;
//! # Ok::<(), vision::VisionError>(())
//! ```

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::baseline::{BaselineUnet, Classifier};
use crate::config::UnetConfig;
use crate::error::{Result, VisionError};
use crate::unet::Unet;

/// Name of the configuration file inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// Name of the weights file inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// Version of the checkpoint layout written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// The JSON side of a checkpoint: which network, with which sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// `unet`, `baseline_unet` or `classifier`.
    pub kind: String,
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Network sizes.
    pub config: UnetConfig,
    /// Number of classes (classifiers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
}

/// A network that can be written to and rebuilt from a checkpoint.
pub trait Checkpointable: ModuleSnapshot + Sized {
    /// The `kind` recorded in the header.
    const KIND: &'static str;
    /// The header describing this network.
    fn header(&self) -> CheckpointHeader;
    /// An (uninitialised-weights) network matching `header`, ready to receive the weights.
    fn from_header(header: &CheckpointHeader, device: &Device) -> Result<Self>;
}

impl Checkpointable for Unet {
    const KIND: &'static str = "unet";
    fn header(&self) -> CheckpointHeader {
        header(Self::KIND, self.config(), None)
    }
    fn from_header(header: &CheckpointHeader, device: &Device) -> Result<Self> {
        Unet::new(&header.config, 0, device)
    }
}

impl Checkpointable for BaselineUnet {
    const KIND: &'static str = "baseline_unet";
    fn header(&self) -> CheckpointHeader {
        header(Self::KIND, self.unet.config(), None)
    }
    fn from_header(header: &CheckpointHeader, device: &Device) -> Result<Self> {
        BaselineUnet::new(&header.config, 0, device)
    }
}

impl Checkpointable for Classifier {
    const KIND: &'static str = "classifier";
    fn header(&self) -> CheckpointHeader {
        header(Self::KIND, &self.config, Some(self.num_classes()))
    }
    fn from_header(header: &CheckpointHeader, device: &Device) -> Result<Self> {
        let num_classes = header.num_classes.unwrap_or(0);
        Classifier::new(&header.config, num_classes, 0, device)
    }
}

fn header(kind: &str, config: &UnetConfig, num_classes: Option<usize>) -> CheckpointHeader {
    CheckpointHeader {
        kind: kind.to_string(),
        format_version: FORMAT_VERSION,
        config: config.clone(),
        num_classes,
    }
}

/// Writes `net` into directory `dir` (created if needed), overwriting an earlier checkpoint.
pub fn save<M: Checkpointable>(net: &M, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| VisionError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let header_path = dir.join(CONFIG_FILE);
    let json =
        serde_json::to_string_pretty(&net.header()).map_err(|e| VisionError::Checkpoint {
            path: header_path.clone(),
            message: format!("cannot serialise the header: {e}"),
        })?;
    std::fs::write(&header_path, json).map_err(|source| VisionError::Io {
        path: header_path,
        source,
    })?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(weights_path.clone())
        .metadata("voxelprompt_kind", M::KIND)
        .metadata("format_version", FORMAT_VERSION.to_string());
    net.save_into(&mut store)
        .map_err(|e| VisionError::Checkpoint {
            path: weights_path,
            message: format!("cannot write the weights: {e}"),
        })
}

/// Reads the header of the checkpoint in `dir`.
pub fn read_header(dir: &Path) -> Result<CheckpointHeader> {
    let header_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&header_path).map_err(|source| VisionError::Io {
        path: header_path.clone(),
        source,
    })?;
    let header: CheckpointHeader =
        serde_json::from_str(&text).map_err(|e| VisionError::Checkpoint {
            path: header_path.clone(),
            message: format!("not a vision checkpoint header: {e}"),
        })?;
    if header.format_version != FORMAT_VERSION {
        return Err(VisionError::Checkpoint {
            path: header_path,
            message: format!(
                "format version {} is not supported (this build reads {FORMAT_VERSION})",
                header.format_version
            ),
        });
    }
    header.config.validate()?;
    Ok(header)
}

/// Rebuilds a network of type `M` from the checkpoint in `dir`, with every weight loaded.
pub fn load<M: Checkpointable>(dir: &Path, device: &Device) -> Result<M> {
    let header = read_header(dir)?;
    if header.kind != M::KIND {
        return Err(VisionError::Checkpoint {
            path: dir.join(CONFIG_FILE),
            message: format!("holds a `{}`, not a `{}`", header.kind, M::KIND),
        });
    }
    let mut net = M::from_header(&header, device)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    if !weights_path.is_file() {
        return Err(VisionError::Checkpoint {
            path: weights_path,
            message: "weights file is missing".into(),
        });
    }
    let mut store = SafetensorsStore::from_file(weights_path.clone());
    let result = net
        .load_from(&mut store)
        .map_err(|e| VisionError::Checkpoint {
            path: weights_path.clone(),
            message: format!("cannot read the weights: {e}"),
        })?;
    if !result.is_success() || !result.missing.is_empty() {
        return Err(VisionError::Checkpoint {
            path: weights_path,
            message: format!(
                "weights do not match the configuration: {} errors, missing {:?}",
                result.errors.len(),
                result
                    .missing
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>()
            ),
        });
    }
    Ok(net)
}

/// Whether a tensor path is outside the ε° projection (kept when widths differ).
fn outside_embedding(path: &str, _container: &str) -> bool {
    !(path.starts_with("embedding.") || path.starts_with("unet.embedding."))
}

/// Starts `unet` from a single-task baseline checkpoint in `dir` (`BaselineUnet`, written by
/// `voxelprompt baseline train`): every weight the two share is the baseline's, while the ϕ
/// parts of the mixing layers (which the baseline lacks) keep `unet`'s own, and so does the ε°
/// projection when the widths differ. With ϕ = 0 the segmentation is exactly the baseline's.
/// The sizes must match but for `name`, `phi_dim`, `phi_scale`, `side_gate` and `embedding_dim`. Returns the
/// number of tensors taken from the baseline.
pub fn load_baseline_into(unet: &mut Unet, dir: &Path) -> Result<usize> {
    let header = read_header(dir)?;
    let bad = |message: String| VisionError::Checkpoint {
        path: dir.join(CONFIG_FILE),
        message,
    };
    if header.kind != BaselineUnet::KIND {
        return Err(bad(format!(
            "holds a `{}`, not a single-task baseline (`{}`)",
            header.kind,
            BaselineUnet::KIND
        )));
    }
    let ours = unet.config().clone();
    let same_embedding = header.config.embedding_dim == ours.embedding_dim;
    let comparable = UnetConfig {
        name: ours.name.clone(),
        phi_dim: ours.phi_dim,
        phi_scale: ours.phi_scale,
        side_gate: ours.side_gate,
        side_gate_logistic: ours.side_gate_logistic,
        embedding_dim: ours.embedding_dim,
        ..header.config.clone()
    };
    if comparable != ours {
        return Err(bad(format!(
            "its network ({:?}) differs from the model's vision network ({:?}) in more than \
             name, phi_dim and embedding_dim",
            header.config, ours
        )));
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(weights_path.clone())
        .with_key_remapping(r"^unet\.", "")
        .allow_partial(true);
    if !same_embedding {
        store = store.with_predicate(outside_embedding);
    }
    let result = unet
        .load_from(&mut store)
        .map_err(|e| VisionError::Checkpoint {
            path: weights_path.clone(),
            message: format!("cannot read the weights: {e}"),
        })?;
    let unexpected_missing: Vec<&String> = result
        .missing
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            !name.contains("phi_weight")
                && !name.contains("phi_scale_weight")
                && !name.starts_with("side_gate.")
                && outside_embedding(name, "")
        })
        .collect();
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|name| same_embedding || outside_embedding(name, ""))
        .collect();
    if !result.errors.is_empty() || !unexpected_missing.is_empty() || !unused.is_empty() {
        return Err(VisionError::Checkpoint {
            path: weights_path,
            message: format!(
                "does not fit the model's vision network: {} errors, missing {:?}, unused {:?}",
                result.errors.len(),
                unexpected_missing,
                unused
            ),
        });
    }
    Ok(result.applied.len())
}
