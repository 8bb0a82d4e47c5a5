//! Agent checkpoints (DESIGN.md §7): a directory holding
//!
//! - `model.safetensors`: the weights (burn-store, tensor names are module paths such as
//!   `decoder.blocks.0.attn.wqkv.weight`);
//! - `config.json`: the [`DecoderConfig`] that shapes them;
//! - `tokenizer.json`: the tokenizer the token ids refer to (HF `tokenizers` format).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::config::DecoderConfig;
use crate::error::{AgentError, Result};
use crate::model::AgentModel;
use crate::tokenizer::AgentTokenizer;

/// File name of the weights inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the decoder config inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the tokenizer inside a checkpoint directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Writes `model` and `tok` into the directory `dir` (created if missing; files replaced).
pub fn save(dir: &Path, model: &AgentModel, tok: &AgentTokenizer) -> Result<()> {
    check_vocab(tok, model.config())?;
    std::fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
    let config_path = dir.join(CONFIG_FILE);
    std::fs::write(&config_path, model.config().to_json_string())
        .map_err(|e| AgentError::io(&config_path, e))?;
    tok.save(&dir.join(TOKENIZER_FILE))?;
    let weights = dir.join(WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(&weights)
        .overwrite(true)
        .metadata("config", model.config().to_json_string());
    model
        .save_into(&mut store)
        .map_err(|e| AgentError::checkpoint(&weights, e.to_string()))
}

/// Reads a checkpoint directory written by [`save`] onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(AgentModel, AgentTokenizer)> {
    let config_path = dir.join(CONFIG_FILE);
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| AgentError::io(&config_path, e))?;
    let config = DecoderConfig::from_json_str(&text, &config_path.display().to_string())?;
    let tok = AgentTokenizer::load(&dir.join(TOKENIZER_FILE))?;
    check_vocab(&tok, &config)?;
    let weights: PathBuf = dir.join(WEIGHTS_FILE);
    if !weights.is_file() {
        return Err(AgentError::checkpoint(
            &weights,
            "the weights file is missing",
        ));
    }
    // Every parameter is overwritten below; the seed only fills the buffers meanwhile.
    let mut model = AgentModel::new(&config, 0, device)?;
    let mut store = SafetensorsStore::from_file(&weights);
    let result = model
        .load_from(&mut store)
        .map_err(|e| AgentError::checkpoint(&weights, e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(AgentError::checkpoint(
            &weights,
            format!(
                "does not match {}: missing {:?}, unexpected {:?}, errors {:?}",
                config_path.display(),
                result.missing,
                result.unused,
                result.errors
            ),
        ));
    }
    Ok((model, tok))
}

fn check_vocab(tok: &AgentTokenizer, config: &DecoderConfig) -> Result<()> {
    if tok.vocab_size() > config.vocab_size {
        return Err(AgentError::VocabMismatch {
            tokenizer: tok.vocab_size(),
            decoder: config.vocab_size,
        });
    }
    Ok(())
}
