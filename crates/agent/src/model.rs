//! The agent network: the decoder plus the ϕ head, the `<vol>` embedding replacement and the
//! teacher-forced forward with masked cross-entropy (DESIGN.md §4 and §7).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::config::DecoderConfig;
use crate::decoder::{Decoder, KvCache};
use crate::error::{AgentError, Result};
use crate::init::SeededInit;
use crate::phi_head::PhiHead;
use crate::sequence::SequenceBatch;

/// Decoder and ϕ head, trained together.
#[derive(Module, Debug)]
pub struct AgentModel {
    /// The LLaMA-style decoder.
    pub decoder: Decoder,
    /// Linear + SiLU from a ϕ slot's hidden state to ϕ.
    pub phi_head: PhiHead,
    #[module(skip)]
    config: DecoderConfig,
}

/// What the teacher-forced forward returns.
///
/// Logits are computed only for the scored positions: prompt and feedback are the bulk of a
/// sequence, and the vocabulary-wide head is the largest matrix product of a small decoder.
/// Full logits, when wanted, are `model.decoder.logits(out.hidden)`.
#[derive(Debug, Clone)]
pub struct TeacherOutput {
    /// Final hidden states `[batch, len, d]` (after the last RMSNorm).
    pub hidden: Tensor<3>,
    /// Next-token logits `[n_targets, vocab]` of the scored positions, in
    /// [`SequenceBatch::targets`] order.
    pub target_logits: Tensor<2>,
    /// Mean cross-entropy over the scored predictions (program tokens only), shape `[1]`.
    pub loss: Tensor<1>,
    /// ϕ `[n_phi, phi_dim]` of every ϕ slot in batch order, or `None` when there is none.
    pub phi: Option<Tensor<2>>,
    /// Number of predictions in the loss.
    pub n_targets: usize,
}

impl AgentModel {
    /// A new agent with weights drawn from `seed` (same seed, same weights, on any backend).
    pub fn new(config: &DecoderConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate("AgentModel::new")?;
        let mut rng = SeededInit::new(seed);
        let decoder = Decoder::new(config, &mut rng, device);
        let phi_head = PhiHead::new(
            config.d_model,
            config.phi_dim,
            config.init_std,
            &mut rng,
            device,
        );
        Ok(Self {
            decoder,
            phi_head,
            config: config.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.decoder.final_norm.gamma.device()
    }

    /// Input embeddings `[batch, len, d]` of `tokens` (row-major `batch * len`), with the rows at
    /// the flat positions `vol_positions` replaced by the rows of `eps` (ε°, `[n_vol, d]`).
    ///
    /// The replacement is a row selection from `[token embeddings; ε°]`, so gradients flow into
    /// ε° as well as into the embedding table.
    pub fn input_embeddings(
        &self,
        tokens: &[u32],
        batch: usize,
        len: usize,
        vol_positions: &[usize],
        eps: Option<Tensor<2>>,
    ) -> Result<Tensor<3>> {
        if tokens.len() != batch * len || len == 0 {
            return Err(AgentError::Shape(format!(
                "{} tokens do not form a non-empty [{batch}, {len}] batch",
                tokens.len()
            )));
        }
        let vocab = self.config.vocab_size;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(AgentError::InvalidArgument(format!(
                "token id {bad} is outside the decoder's vocabulary of {vocab}"
            )));
        }
        let device = self.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
        let emb = self.decoder.embed_tokens(ids);
        let supplied = eps.as_ref().map_or(0, |e| e.dims()[0]);
        if supplied != vol_positions.len() {
            return Err(AgentError::VolEmbeddingCount {
                slots: vol_positions.len(),
                supplied,
            });
        }
        let Some(eps) = eps.filter(|_| !vol_positions.is_empty()) else {
            return Ok(emb);
        };
        let d = self.config.d_model;
        if eps.dims()[1] != d {
            return Err(AgentError::Shape(format!(
                "ε° has width {} but the decoder's d_model is {d}",
                eps.dims()[1]
            )));
        }
        let n = batch * len;
        let mut index: Vec<i64> = (0..n as i64).collect();
        for (row, &pos) in vol_positions.iter().enumerate() {
            if pos >= n {
                return Err(AgentError::InvalidArgument(format!(
                    "<vol> position {pos} is outside the batch of {n} positions"
                )));
            }
            index[pos] = (n + row) as i64;
        }
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n]), &device);
        let rows = Tensor::cat(vec![emb.reshape([n, d]), eps.to_device(&device)], 0);
        Ok(rows.select(0, index).reshape([batch, len, d]))
    }

    /// Hidden states `[batch, n, d]` of input embeddings, continuing `cache` when given.
    pub fn forward_hidden(&self, x: Tensor<3>, cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        let [b, n, d] = x.dims();
        if let Some(c) = cache.as_ref() {
            c.check(&self.decoder, b)?;
        }
        if d != self.config.d_model {
            return Err(AgentError::Shape(format!(
                "input width {d} differs from d_model {}",
                self.config.d_model
            )));
        }
        let total = cache.as_ref().map_or(0, |c| c.len()) + n;
        if total > self.config.max_seq_len {
            return Err(AgentError::SequenceTooLong {
                len: total,
                max: self.config.max_seq_len,
            });
        }
        Ok(self.decoder.forward_hidden(x, cache))
    }

    /// ϕ `[n, phi_dim]` of the hidden states at the given flat positions of `hidden`
    /// (`[batch, len, d]`), or `None` when `positions` is empty.
    pub fn phi_at(&self, hidden: Tensor<3>, positions: &[usize]) -> Result<Option<Tensor<2>>> {
        if positions.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.phi_head.forward(select_rows(hidden, positions)?)))
    }

    /// Teacher-forced forward over a padded batch: logits everywhere, the masked cross-entropy
    /// over program tokens only, and ϕ at every ϕ slot. `eps` holds one ε° row per `<vol>` slot
    /// in `batch.vol_positions` order (gradients flow into it).
    pub fn forward_teacher(
        &self,
        batch: &SequenceBatch,
        eps: Option<Tensor<2>>,
    ) -> Result<TeacherOutput> {
        let x = self.input_embeddings(
            &batch.tokens,
            batch.batch,
            batch.len,
            &batch.vol_positions,
            eps,
        )?;
        let hidden = self.forward_hidden(x, None)?;
        let phi = self.phi_at(hidden.clone(), &batch.phi_positions)?;
        let positions: Vec<usize> = batch.targets.iter().map(|&(p, _)| p).collect();
        let ids: Vec<u32> = batch.targets.iter().map(|&(_, t)| t).collect();
        let rows = select_rows(hidden.clone(), &positions)?;
        let target_logits = self.decoder.logits(rows);
        let loss = cross_entropy(target_logits.clone(), &ids)?;
        Ok(TeacherOutput {
            hidden,
            target_logits,
            loss,
            phi,
            n_targets: batch.targets.len(),
        })
    }

    /// Next-token logits `[batch, len, vocab]` at every position of a batch.
    pub fn forward_logits(
        &self,
        batch: &SequenceBatch,
        eps: Option<Tensor<2>>,
    ) -> Result<Tensor<3>> {
        let x = self.input_embeddings(
            &batch.tokens,
            batch.batch,
            batch.len,
            &batch.vol_positions,
            eps,
        )?;
        Ok(self.decoder.logits(self.forward_hidden(x, None)?))
    }
}

/// Rows `[n, d]` of `hidden` `[batch, len, d]` at the given flat positions.
fn select_rows(hidden: Tensor<3>, positions: &[usize]) -> Result<Tensor<2>> {
    let [b, l, d] = hidden.dims();
    if positions.is_empty() {
        return Err(AgentError::InvalidArgument(
            "no program token to score: the batch has no step".into(),
        ));
    }
    if let Some(&bad) = positions.iter().find(|&&p| p >= b * l) {
        return Err(AgentError::InvalidArgument(format!(
            "position {bad} is outside a [{b}, {l}] batch"
        )));
    }
    let index: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let index =
        Tensor::<1, Int>::from_data(TensorData::new(index, [positions.len()]), &hidden.device());
    Ok(hidden.reshape([b * l, d]).select(0, index))
}

/// Mean cross-entropy of logits rows `[n, vocab]` against target ids (one per row).
pub fn cross_entropy(logits: Tensor<2>, targets: &[u32]) -> Result<Tensor<1>> {
    let [n, v] = logits.dims();
    if n != targets.len() || n == 0 {
        return Err(AgentError::Shape(format!(
            "{n} logits rows for {} targets",
            targets.len()
        )));
    }
    if let Some(&bad) = targets.iter().find(|&&t| t as usize >= v) {
        return Err(AgentError::InvalidArgument(format!(
            "target id {bad} is outside a vocabulary of {v}"
        )));
    }
    let ids: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, 1]), &logits.device());
    Ok(log_softmax(logits, 1)
        .gather(1, ids)
        .mean()
        .neg()
        .reshape([1]))
}

/// Mean cross-entropy of full `logits` `[batch, len, vocab]` at the flat positions of
/// `targets` against their target ids ([`SequenceBatch::targets`]).
pub fn masked_cross_entropy(logits: Tensor<3>, targets: &[(usize, u32)]) -> Result<Tensor<1>> {
    let positions: Vec<usize> = targets.iter().map(|&(p, _)| p).collect();
    let ids: Vec<u32> = targets.iter().map(|&(_, t)| t).collect();
    cross_entropy(select_rows(logits, &positions)?, &ids)
}
