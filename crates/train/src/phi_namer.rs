//! A training-only probe that makes ϕ name its target.
//!
//! ϕ is all the vision network learns which target to segment from, yet nothing in the agent's
//! cross-entropy asks the hidden state at a generator's `<mod>` to carry the target: the token
//! it predicts there is `)`. Through session 9 the only pressure was the Dice gradient through
//! ϕ, and the shipped model emitted one ϕ for the lateral ventricle, hippocampus, thalamus,
//! caudate, glioma, infarct and WMH (cosine 0.96–1.00 between their means), so the vision
//! network segmented none of them.
//!
//! The namer is a linear map from ϕ to the tokenizer's vocabulary, trained with the agent to
//! predict the tokens of the target's description (`left hippocampus`) from that target's ϕ:
//! a bag of words, so `left hippocampus` and `right hippocampus` share a word and differ in
//! another. Its loss reaches the ϕ head and the decoder, which then have to carry the name
//! into ϕ. The namer belongs to the trainer, not the model: it is saved with the checkpoint
//! (its own weights and Adam state) and never shipped.

use std::path::Path;

use agent::{AgentTokenizer, DecoderConfig};
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Int, Tensor, TensorData};
use tasks::program::ModMeaning;

use crate::error::{Result, TrainError};

/// File of the namer's weights inside a checkpoint directory.
pub const NAMER_FILE: &str = "phi-namer.safetensors";

/// `logits = W·ϕ + b` over the agent's vocabulary.
#[derive(Module, Debug)]
pub struct PhiNamer {
    /// `phi_dim → vocab_size` projection with bias.
    pub proj: Linear,
}

impl PhiNamer {
    /// A namer for the agent of `config`, with zero weights: it starts by predicting every
    /// token alike, so its first gradients into ϕ are zero and it cannot disturb a trained
    /// agent before it has learned anything (and it needs no seed).
    pub fn new(config: &DecoderConfig, device: &Device) -> PhiNamer {
        let proj = LinearConfig::new(config.phi_dim, config.vocab_size)
            .with_initializer(Initializer::Zeros)
            .init(device);
        PhiNamer { proj }
    }

    /// Mean cross-entropy of each name token given its target's ϕ: `phis` `[n, phi_dim]`,
    /// `names[i]` the token ids of row `i`'s description (rows with none are skipped).
    /// `None` when no row has a name.
    pub fn loss(&self, phis: Tensor<2>, names: &[Vec<u32>]) -> Result<Option<Tensor<1>>> {
        let [n, _] = phis.dims();
        if n != names.len() {
            return Err(TrainError::Backend(format!(
                "{n} ϕ rows for {} target names",
                names.len()
            )));
        }
        let (rows, targets): (Vec<i64>, Vec<u32>) = names
            .iter()
            .enumerate()
            .flat_map(|(row, ids)| ids.iter().map(move |&id| (row as i64, id)))
            .unzip();
        if rows.is_empty() {
            return Ok(None);
        }
        let index =
            Tensor::<1, Int>::from_data(TensorData::new(rows, [targets.len()]), &phis.device());
        let logits = self.proj.forward(phis.select(0, index));
        Ok(Some(agent::cross_entropy(logits, &targets)?))
    }

    /// Writes the weights to `path` (safetensors).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut store = SafetensorsStore::from_file(path).overwrite(true);
        self.clone()
            .valid()
            .save_into(&mut store)
            .map_err(|e| TrainError::checkpoint(path, e.to_string()))
    }

    /// Reads weights written by [`PhiNamer::save`] into a namer for `config`.
    pub fn load(path: &Path, config: &DecoderConfig, device: &Device) -> Result<PhiNamer> {
        let mut namer = PhiNamer::new(config, device);
        let mut store = SafetensorsStore::from_file(path);
        let result = namer
            .load_from(&mut store)
            .map_err(|e| TrainError::checkpoint(path, e.to_string()))?;
        if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(TrainError::checkpoint(
                path,
                format!(
                    "does not fit the namer: errors {:?}, missing {:?}, unused {:?}",
                    result.errors, result.missing, result.unused
                ),
            ));
        }
        Ok(namer)
    }
}

/// The token ids naming each marker's target: a generator's description as it reads inside
/// the program's comment (after a space, so the same word pieces), none for an encoder.
pub fn marker_names(tok: &AgentTokenizer, meanings: &[&ModMeaning]) -> Result<Vec<Vec<u32>>> {
    meanings
        .iter()
        .map(|m| match m {
            ModMeaning::Generate { target } => {
                Ok(tok.encode_text(&format!(" {}", target.description))?)
            }
            ModMeaning::Encode { .. } => Ok(Vec::new()),
        })
        .collect()
}
