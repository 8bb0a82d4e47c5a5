//! The joint VoxelPrompt model: agent + vision network + tokenizer + preprocessing + config,
//! saved to and loaded from one directory with a checksum manifest (DESIGN.md §7).
//!
//! A model directory holds
//!
//! - `model.json`: the resolved [`ModelConfig`] (agent and vision sizes, preprocessing);
//! - `weights.safetensors`: every parameter, named by module path (`agent.decoder.…`,
//!   `vision.encoder.…`);
//! - `tokenizer.json`: the tokenizer the agent's ids refer to;
//! - `manifest.json`: size and SHA-256 of each of those files. Loading checks it first, so a
//!   missing, truncated or swapped file is an error that names the file.
//!
//! The widths agent and vision share are derived once, in [`ModelConfig::resolve`]: the vision
//! network's ε° width is the agent's `d_model`, and both ϕ widths are [`runtime::PHI_DIM`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use agent::{AgentModel, AgentTokenizer, DecoderConfig};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::store::{FloatCastAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::DType;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vision::{Unet, UnetConfig};

use crate::error::{Result, TrainError};
use crate::preprocess::Preprocessing;

/// File of the resolved configuration inside a model directory.
pub const CONFIG_FILE: &str = "model.json";
/// File of the weights inside a model directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// File of the tokenizer inside a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// File of the checksum manifest inside a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The shipped joint sizes, embedded from `configs/model/`.
const BUILTIN: [(&str, &str); 2] = [
    ("tiny", include_str!("../../../configs/model/tiny.toml")),
    ("small", include_str!("../../../configs/model/small.toml")),
];

/// A joint model as written in `configs/model/*.toml`: which agent and vision sizes it joins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name of the joint size.
    pub name: String,
    /// Agent size: a name from `configs/agent/`.
    pub agent: String,
    /// Vision size: a name from `configs/vision/`.
    pub vision: String,
    /// Preprocessing settings.
    pub preprocessing: Preprocessing,
}

/// A joint model's full configuration, with the shared widths derived and checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name of the joint size.
    pub name: String,
    /// The agent's decoder.
    pub agent: DecoderConfig,
    /// The vision network.
    pub vision: UnetConfig,
    /// Preprocessing settings.
    pub preprocessing: Preprocessing,
}

impl ModelConfig {
    /// One of the shipped joint sizes (`tiny`, `small`).
    pub fn builtin(name: &str) -> Result<ModelConfig> {
        let (_, text) =
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| TrainError::Settings {
                    what: format!("model size {name:?}"),
                    problem: format!(
                        "no such size; choose one of {:?} or give a TOML file",
                        BUILTIN.map(|(n, _)| n)
                    ),
                })?;
        Self::from_toml_str(text, &format!("configs/model/{name}.toml"))
    }

    /// A size by name or from a TOML file path (anything with a `.toml` ending or a `/`).
    pub fn named_or_file(name: &str) -> Result<ModelConfig> {
        if name.ends_with(".toml") || name.contains('/') {
            let text = std::fs::read_to_string(name).map_err(|e| TrainError::io(name, e))?;
            Self::from_toml_str(&text, name)
        } else {
            Self::builtin(name)
        }
    }

    /// Parses a [`ModelSpec`] and resolves it.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<ModelConfig> {
        let spec: ModelSpec = toml::from_str(text).map_err(|e| TrainError::Settings {
            what: origin.into(),
            problem: e.to_string(),
        })?;
        Self::resolve(&spec, origin)
    }

    /// Joins the named agent and vision sizes: the vision ε° width becomes the agent's
    /// `d_model`; both ϕ widths must equal [`runtime::PHI_DIM`].
    pub fn resolve(spec: &ModelSpec, origin: &str) -> Result<ModelConfig> {
        let agent = DecoderConfig::builtin(&spec.agent).map_err(|e| TrainError::Settings {
            what: origin.into(),
            problem: e.to_string(),
        })?;
        let mut vision = UnetConfig::preset(&spec.vision)?;
        vision.embedding_dim = agent.d_model;
        let config = ModelConfig {
            name: spec.name.clone(),
            agent,
            vision,
            preprocessing: spec.preprocessing.clone(),
        };
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks the widths the two networks share and every part on its own.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |problem: String| TrainError::Settings {
            what: origin.into(),
            problem,
        };
        self.agent
            .validate(origin)
            .map_err(|e| bad(e.to_string()))?;
        self.vision.validate()?;
        self.preprocessing.validate()?;
        if self.agent.phi_dim != runtime::PHI_DIM || self.vision.phi_dim != runtime::PHI_DIM {
            return Err(bad(format!(
                "ϕ width: agent {} and vision {} must both be the runtime's {}",
                self.agent.phi_dim,
                self.vision.phi_dim,
                runtime::PHI_DIM
            )));
        }
        if self.vision.embedding_dim != self.agent.d_model {
            return Err(bad(format!(
                "the vision ε° width {} differs from the agent's d_model {}",
                self.vision.embedding_dim, self.agent.d_model
            )));
        }
        Ok(())
    }
}

/// How the weights of a saved model are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsPrecision {
    /// 32-bit floats, as trained (checkpoints).
    F32,
    /// 16-bit floats (shipped models: half the size).
    F16,
}

/// Agent and vision network as one module, so one optimiser and one backward pass train both.
#[derive(Module, Debug)]
pub struct JointNet {
    /// The language agent.
    pub agent: AgentModel,
    /// The instructable vision network.
    pub vision: Unet,
}

impl JointNet {
    /// Fresh weights from `seed` on `device`.
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<JointNet> {
        let agent = AgentModel::new(&config.agent, seed, device)
            .map_err(|e| TrainError::Backend(e.to_string()))?;
        let vision = Unet::new(&config.vision, seed.wrapping_add(1), device)?;
        Ok(JointNet { agent, vision }.with_stable_ids())
    }

    /// The same networks with FiLM in the vision network ([`Unet::with_phi_scale`]): the
    /// function is unchanged, the new scale weights start at zero.
    pub fn with_vision_phi_scale(self) -> JointNet {
        JointNet {
            agent: self.agent,
            vision: self.vision.with_phi_scale(),
        }
        .with_stable_ids()
    }

    /// The same networks with a side gate in the vision network ([`Unet::with_side_gate`]):
    /// the function is unchanged, the gate's weights start at zero.
    pub fn with_vision_side_gate(self) -> JointNet {
        JointNet {
            agent: self.agent,
            vision: self.vision.with_side_gate(),
        }
        .with_stable_ids()
    }

    /// The same networks with a logistic side gate in the vision network
    /// ([`Unet::with_logistic_side_gate`]): next to no offset at the start.
    pub fn with_vision_logistic_side_gate(self) -> JointNet {
        JointNet {
            agent: self.agent,
            vision: self.vision.with_logistic_side_gate(),
        }
        .with_stable_ids()
    }

    /// The same module with every parameter's id derived from its path, so optimiser state
    /// (keyed by parameter id) saved in one process matches the parameters of another.
    pub fn with_stable_ids(self) -> JointNet {
        self.map(&mut StableIds { path: Vec::new() })
    }
}

/// `module` with every parameter's id derived from its path under `root` (as
/// [`JointNet::with_stable_ids`], for the trainer's own modules; a distinct root keeps their
/// ids apart from the model's).
pub(crate) fn with_stable_ids_under<M: Module>(module: M, root: &str) -> M {
    module.map(&mut StableIds {
        path: vec![root.to_string()],
    })
}

struct StableIds {
    path: Vec<String>,
}

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.id = ParamId::from(fnv1a(self.path.join(".").as_bytes()));
        param
    }
}

/// FNV-1a, 64 bit: a hash of names that no Rust release changes (unlike `DefaultHasher`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A whole model: networks, tokenizer and configuration.
#[derive(Debug, Clone)]
pub struct Model {
    /// Agent and vision network.
    pub net: JointNet,
    /// The agent's tokenizer.
    pub tokenizer: AgentTokenizer,
    /// Sizes and preprocessing.
    pub config: ModelConfig,
}

/// Size and SHA-256 of one file of a model directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Size, bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// The checksum manifest of a model directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model's name.
    pub model: String,
    /// Every file but the manifest itself.
    pub files: BTreeMap<String, ManifestEntry>,
}

impl Manifest {
    /// A short identifier of the weights: the first 12 hex digits of their SHA-256.
    pub fn weights_id(&self) -> String {
        self.files
            .get(WEIGHTS_FILE)
            .map(|e| e.sha256.chars().take(12).collect())
            .unwrap_or_default()
    }
}

impl Model {
    /// The model with FiLM in its vision network ([`JointNet::with_vision_phi_scale`]), its
    /// configuration saying so.
    pub fn with_vision_phi_scale(self) -> Model {
        let mut config = self.config;
        config.vision.phi_scale = true;
        Model {
            net: self.net.with_vision_phi_scale(),
            config,
            tokenizer: self.tokenizer,
        }
    }

    /// The model with a side gate in its vision network ([`JointNet::with_vision_side_gate`]),
    /// its configuration saying so.
    pub fn with_vision_side_gate(self) -> Model {
        let mut config = self.config;
        config.vision.side_gate = true;
        Model {
            net: self.net.with_vision_side_gate(),
            config,
            tokenizer: self.tokenizer,
        }
    }

    /// The model with a logistic side gate in its vision network
    /// ([`JointNet::with_vision_logistic_side_gate`]), its configuration saying so.
    pub fn with_vision_logistic_side_gate(self) -> Model {
        let mut config = self.config;
        config.vision.side_gate = true;
        config.vision.side_gate_logistic = true;
        Model {
            net: self.net.with_vision_logistic_side_gate(),
            config,
            tokenizer: self.tokenizer,
        }
    }

    /// A fresh model of `config` with `tokenizer`, weights from `seed`.
    pub fn new(
        config: ModelConfig,
        tokenizer: AgentTokenizer,
        seed: u64,
        device: &Device,
    ) -> Result<Model> {
        if tokenizer.vocab_size() > config.agent.vocab_size {
            return Err(TrainError::Settings {
                what: format!("model {}", config.name),
                problem: format!(
                    "the tokenizer has {} ids but the agent's vocabulary is {}",
                    tokenizer.vocab_size(),
                    config.agent.vocab_size
                ),
            });
        }
        Ok(Model {
            net: JointNet::new(&config, seed, device)?,
            tokenizer,
            config,
        })
    }

    /// The same model on `device` without autodiff state (for inference or saving).
    pub fn valid(&self) -> Model {
        Model {
            net: self.net.valid(),
            tokenizer: self.tokenizer.clone(),
            config: self.config.clone(),
        }
    }

    /// Writes the model into `dir`: the files go to a fresh sibling directory first, which
    /// then replaces `dir` (an existing model there is removed only after the new one is
    /// complete).
    pub fn save(&self, dir: &Path) -> Result<Manifest> {
        self.save_as(dir, WeightsPrecision::F32)
    }

    /// [`Model::save`] with the weights stored at `precision` ([`Model::load`] reads either;
    /// f16 halves a shipped model, at a relative rounding error below 1e-3 per weight).
    pub fn save_as(&self, dir: &Path, precision: WeightsPrecision) -> Result<Manifest> {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into());
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
        let manifest = self.write_files(&staging, precision)?;
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| TrainError::io(dir, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        Ok(manifest)
    }

    fn write_files(&self, dir: &Path, precision: WeightsPrecision) -> Result<Manifest> {
        let config_path = dir.join(CONFIG_FILE);
        let json = serde_json::to_string_pretty(&self.config)
            .map_err(|e| TrainError::Backend(e.to_string()))?;
        std::fs::write(&config_path, json).map_err(|e| TrainError::io(&config_path, e))?;
        let tok_path = dir.join(TOKENIZER_FILE);
        self.tokenizer
            .save(&tok_path)
            .map_err(|e| TrainError::checkpoint(&tok_path, e.to_string()))?;
        let weights = dir.join(WEIGHTS_FILE);
        let mut store = SafetensorsStore::from_file(&weights).overwrite(true);
        if precision == WeightsPrecision::F16 {
            store = store.with_to_adapter(FloatCastAdapter::to(DType::F16));
        }
        self.net
            .valid()
            .save_into(&mut store)
            .map_err(|e| TrainError::checkpoint(&weights, e.to_string()))?;
        let mut files = BTreeMap::new();
        for f in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
            files.insert(f.to_string(), hash_file(&dir.join(f))?);
        }
        let manifest = Manifest {
            model: self.config.name.clone(),
            files,
        };
        let path = dir.join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| TrainError::Backend(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| TrainError::io(&path, e))?;
        Ok(manifest)
    }

    /// Reads a model directory written by [`Model::save`] onto `device`, checking every file
    /// against the manifest first.
    pub fn load(dir: &Path, device: &Device) -> Result<(Model, Manifest)> {
        if !dir.is_dir() {
            return Err(TrainError::checkpoint(
                dir,
                "not a model directory (train one with `voxelprompt train` or use models/voxelprompt-small)",
            ));
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| TrainError::checkpoint(&manifest_path, format!("cannot read: {e}")))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| TrainError::checkpoint(&manifest_path, format!("not a manifest: {e}")))?;
        for f in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
            let path = dir.join(f);
            let want = manifest.files.get(f).ok_or_else(|| {
                TrainError::checkpoint(&manifest_path, format!("lists no entry for {f}"))
            })?;
            if !path.is_file() {
                return Err(TrainError::checkpoint(
                    &path,
                    "missing from the model directory",
                ));
            }
            let got = hash_file(&path)?;
            if got.bytes != want.bytes {
                return Err(TrainError::checkpoint(
                    &path,
                    format!(
                        "is {} bytes but the manifest says {} (truncated or replaced)",
                        got.bytes, want.bytes
                    ),
                ));
            }
            if got.sha256 != want.sha256 {
                return Err(TrainError::checkpoint(
                    &path,
                    "its SHA-256 differs from the manifest (corrupt or replaced)",
                ));
            }
        }
        let config_path = dir.join(CONFIG_FILE);
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| TrainError::io(&config_path, e))?;
        let config: ModelConfig = serde_json::from_str(&text)
            .map_err(|e| TrainError::checkpoint(&config_path, e.to_string()))?;
        config.validate(&config_path.display().to_string())?;
        let tok_path = dir.join(TOKENIZER_FILE);
        let tokenizer = AgentTokenizer::load(&tok_path)
            .map_err(|e| TrainError::checkpoint(&tok_path, e.to_string()))?;
        let mut model = Model::new(config, tokenizer, 0, device)?;
        let weights = dir.join(WEIGHTS_FILE);
        // Weights stored as f16 (a shipped model) become f32 again; f32 ones pass unchanged.
        let mut store = SafetensorsStore::from_file(&weights)
            .with_from_adapter(FloatCastAdapter::to(DType::F32));
        let result = model
            .net
            .load_from(&mut store)
            .map_err(|e| TrainError::checkpoint(&weights, e.to_string()))?;
        if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(TrainError::checkpoint(
                &weights,
                format!(
                    "does not match {CONFIG_FILE}: missing {:?}, unexpected {:?}, errors {:?}",
                    result.missing, result.unused, result.errors
                ),
            ));
        }
        model.net = model.net.with_stable_ids();
        Ok((model, manifest))
    }
}

/// Size and SHA-256 of a file.
pub fn hash_file(path: &Path) -> Result<ManifestEntry> {
    let mut file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| TrainError::io(path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(ManifestEntry { bytes, sha256 })
}
