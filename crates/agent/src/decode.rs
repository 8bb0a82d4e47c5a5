//! Greedy decoding of one step at a time with a KV cache (DESIGN.md §2): the agent writes a
//! step's code until it emits `<endstep>` or hits a token limit; every `<mod>` it emits yields a
//! ϕ vector from the ϕ slot that follows it.
//!
//! A [`DecodeSession`] owns the growing sequence and the cache across steps, so the feedback of
//! step i and the code of step i+1 are processed incrementally, never recomputed.

use burn::prelude::*;

use crate::decoder::KvCache;
use crate::error::{AgentError, Result};
use crate::model::AgentModel;
use crate::sequence::{AgentSequence, FeedbackItem, TokenRole};
use crate::tokenizer::AgentTokenizer;

/// Settings of greedy decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Most tokens a step may emit (ϕ slots not counted) before it is cut off.
    pub max_new_tokens: usize,
    /// Use the KV cache (the normal case). Without it every token recomputes the whole
    /// sequence, which exists to check the cache.
    pub use_kv_cache: bool,
    /// Keep the logits row each token was chosen from (for tests and diagnostics).
    pub record_logits: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 512,
            use_kv_cache: true,
            record_logits: false,
        }
    }
}

/// Why a step's decoding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model emitted `<endstep>`.
    EndStep,
    /// `max_new_tokens` was reached; the step was closed with `<endstep>` on the model's behalf.
    TokenLimit,
    /// The decoder's `max_seq_len` was about to be reached; the step was closed with
    /// `<endstep>` in the last free position, and no further step fits.
    SequenceLimit,
}

/// One decoded step: what the runtime receives.
#[derive(Debug, Clone)]
pub struct DecodedStep {
    /// The step's code with literal `<mod>` markers (ϕ slots removed).
    pub code: String,
    /// The emitted token ids (including `<mod>`, excluding ϕ slots and `<endstep>`).
    pub tokens: Vec<u32>,
    /// ϕ `[n_mod, phi_dim]`, one row per `<mod>` in order of appearance; `None` without `<mod>`.
    pub phi: Option<Tensor<2>>,
    /// Why decoding stopped.
    pub stop: StopReason,
    /// With [`DecodeOptions::record_logits`]: the logits row each emitted token (and the final
    /// `<endstep>`, when emitted) was chosen from.
    pub logits: Vec<Vec<f32>>,
}

/// A conversation with the agent: μ₁, then alternately decoded steps and pushed feedback.
#[derive(Debug)]
pub struct DecodeSession<'a> {
    model: &'a AgentModel,
    tok: &'a AgentTokenizer,
    seq: AgentSequence,
    cache: KvCache,
    /// ε° rows of all `<vol>` slots pushed so far, in order (kept for cache-free recompute).
    eps: Vec<Tensor<2>>,
    /// ε° rows already consumed by the cache.
    eps_fed: usize,
    /// Tokens whose keys and values are in the cache.
    fed: usize,
    /// Token ids the model may emit inside a step.
    allowed: Vec<bool>,
    /// Whether a `<mod>` may follow a step's code so far ([`DecodeSession::with_marker_gate`]).
    marker_gate: Option<fn(&str) -> bool>,
}

impl<'a> DecodeSession<'a> {
    /// Starts from `initial` (normally μ₁ from [`AgentSequence::initial`]). If it already
    /// contains `<vol>` slots, `eps` supplies their ε° rows in order.
    pub fn new(
        model: &'a AgentModel,
        tok: &'a AgentTokenizer,
        initial: AgentSequence,
        eps: Option<Tensor<2>>,
    ) -> Result<Self> {
        if tok.vocab_size() > model.config().vocab_size {
            return Err(AgentError::VocabMismatch {
                tokenizer: tok.vocab_size(),
                decoder: model.config().vocab_size,
            });
        }
        if initial.specials() != tok.specials() {
            return Err(AgentError::InvalidArgument(
                "the sequence was built with a different tokenizer".into(),
            ));
        }
        let ids = tok.specials();
        let allowed = (0..model.config().vocab_size as u32)
            .map(|id| {
                (id as usize) < tok.vocab_size()
                    && (!tok.is_special(id) || id == ids.mod_marker || id == ids.endstep)
            })
            .collect();
        let mut session = Self {
            model,
            tok,
            seq: initial,
            cache: KvCache::new(&model.decoder),
            eps: Vec::new(),
            eps_fed: 0,
            fed: 0,
            allowed,
            marker_gate: None,
        };
        session.add_eps(eps, session.seq.vol_positions().len())?;
        Ok(session)
    }

    /// Lets the model write `<mod>` only where `gate(code of the step so far)` holds (the
    /// runtime's `marker_counts_after`: not inside a string or a comment, where the marker would
    /// not count but its ϕ would); elsewhere the best other token is taken.
    pub fn with_marker_gate(mut self, gate: fn(&str) -> bool) -> Self {
        self.marker_gate = Some(gate);
        self
    }

    /// The sequence so far.
    pub fn sequence(&self) -> &AgentSequence {
        &self.seq
    }

    /// Ends the session, returning the sequence.
    pub fn into_sequence(self) -> AgentSequence {
        self.seq
    }

    /// Appends a step's feedback; `eps` holds one ε° row (`[n, d_model]`) per `<vol>` slot in
    /// `items`, in order.
    pub fn push_feedback(&mut self, items: &[FeedbackItem], eps: Option<Tensor<2>>) -> Result<()> {
        let slots: usize = items.iter().map(FeedbackItem::vol_slots).sum();
        // Both calls validate before they change anything, so an error leaves the session as
        // it was.
        let before = self.eps.len();
        self.add_eps(eps, slots)?;
        if let Err(e) = self.seq.push_feedback(self.tok, items) {
            self.eps.truncate(before);
            return Err(e);
        }
        Ok(())
    }

    fn add_eps(&mut self, eps: Option<Tensor<2>>, slots: usize) -> Result<()> {
        let supplied = eps.as_ref().map_or(0, |e| e.dims()[0]);
        if supplied != slots {
            return Err(AgentError::VolEmbeddingCount { slots, supplied });
        }
        let d = self.model.config().d_model;
        if let Some(width) = eps.as_ref().map(|e| e.dims()[1]).filter(|&w| w != d) {
            return Err(AgentError::Shape(format!(
                "ε° has width {width} but the decoder's d_model is {d}"
            )));
        }
        if let Some(e) = eps.filter(|_| slots > 0) {
            self.eps.push(e.to_device(&self.model.device()));
        }
        Ok(())
    }

    /// Decodes the next step greedily: appends `<step>`, then the model's tokens until
    /// `<endstep>` or a limit.
    pub fn decode_step(&mut self, options: &DecodeOptions) -> Result<DecodedStep> {
        let ids = *self.tok.specials();
        let max_len = self.model.config().max_seq_len;
        // Room for <step> and the closing <endstep> at least.
        if self.seq.len() + 2 > max_len {
            return Err(AgentError::SequenceTooLong {
                len: self.seq.len() + 2,
                max: max_len,
            });
        }
        self.seq.open_step()?;
        let mut hidden = self.feed(options.use_kv_cache)?;
        let mut tokens = Vec::new();
        let mut phi_rows = Vec::new();
        let mut recorded = Vec::new();
        let stop = loop {
            if tokens.len() >= options.max_new_tokens {
                break StopReason::TokenLimit;
            }
            let [_, n, d] = hidden.dims();
            let last = hidden.clone().slice_dim(1, n - 1..n).reshape([1, d]);
            let logits: Vec<f32> = self
                .model
                .decoder
                .logits(last)
                .into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| AgentError::Shape(format!("reading logits: {e:?}")))?;
            let mut next = self.argmax_allowed(&logits);
            if next == ids.mod_marker {
                if let Some(gate) = self.marker_gate {
                    if !gate(&self.tok.decode(&tokens)?) {
                        next = self.argmax_allowed_except(&logits, ids.mod_marker);
                    }
                }
            }
            if options.record_logits {
                recorded.push(logits);
            }
            if next == ids.endstep {
                self.seq.push_generated(next)?;
                break StopReason::EndStep;
            }
            // A <mod> brings its ϕ slot along: two positions; one more stays free for the
            // closing <endstep>.
            let needed = if next == ids.mod_marker { 2 } else { 1 };
            if self.seq.len() + needed + 1 > max_len {
                break StopReason::SequenceLimit;
            }
            self.seq.push_generated(next)?;
            tokens.push(next);
            hidden = self.feed(options.use_kv_cache)?;
            if next == ids.mod_marker {
                let [_, n, d] = hidden.dims();
                let slot = hidden.clone().slice_dim(1, n - 1..n).reshape([1, d]);
                phi_rows.push(self.model.phi_head.forward(slot));
            }
        };
        if self.seq.in_step() {
            self.seq.close_step()?;
        }
        let phi = (!phi_rows.is_empty()).then(|| Tensor::cat(phi_rows, 0));
        Ok(DecodedStep {
            code: self.tok.decode(&tokens)?,
            tokens,
            phi,
            stop,
            logits: recorded,
        })
    }

    fn argmax_allowed(&self, logits: &[f32]) -> u32 {
        self.argmax_allowed_except(logits, u32::MAX)
    }

    fn argmax_allowed_except(&self, logits: &[f32], except: u32) -> u32 {
        let mut best = (f32::NEG_INFINITY, self.tok.specials().endstep);
        for (id, (&l, &ok)) in logits.iter().zip(&self.allowed).enumerate() {
            // Strict `>` keeps the lowest id on ties, like an argmax over the full row.
            if ok && l > best.0 && id as u32 != except {
                best = (l, id as u32);
            }
        }
        best.1
    }

    /// Runs the model over the tokens not yet processed and returns their hidden states
    /// `[1, n, d]`. Without the cache, recomputes the whole sequence and returns all of it.
    fn feed(&mut self, use_cache: bool) -> Result<Tensor<3>> {
        let tokens = self.seq.tokens();
        let start = if use_cache { self.fed } else { 0 };
        let chunk = &tokens[start..];
        let vols: Vec<usize> = self
            .seq
            .roles()
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, r)| **r == TokenRole::VolSlot)
            .map(|(i, _)| i - start)
            .collect();
        let first_row = if use_cache { self.eps_fed } else { 0 };
        let eps = if vols.is_empty() || self.eps.is_empty() {
            None
        } else {
            let all = Tensor::cat(self.eps.clone(), 0);
            let end = (first_row + vols.len()).min(all.dims()[0]);
            Some(all.slice_dim(0, first_row..end))
        };
        let x = self
            .model
            .input_embeddings(chunk, 1, chunk.len(), &vols, eps)?;
        let hidden = if use_cache {
            self.model.forward_hidden(x, Some(&mut self.cache))?
        } else {
            self.model.forward_hidden(x, None)?
        };
        if use_cache {
            self.fed = self.seq.len();
            self.eps_fed += vols.len();
        }
        Ok(hidden)
    }
}
