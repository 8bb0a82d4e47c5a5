//! The VoxelPrompt language agent (DESIGN.md §4): a byte-level BPE tokenizer, a LLaMA-style
//! decoder, the `<mod>` → ϕ head, `<vol>` feedback embeddings and greedy decoding with a KV
//! cache.
//!
//! A request goes: [`AgentSequence::initial`] builds μ₁ from the prompt and the input volumes'
//! metadata; a [`DecodeSession`] decodes one step at a time ([`DecodedStep`]: code with `<mod>`
//! markers plus one ϕ per marker); the runtime executes it and pushes the feedback (text and
//! ε° rows for `<vol>` slots); repeat until the program stops. Training builds the same
//! sequences with [`AgentSequence::push_step`], batches them ([`SequenceBatch`]) and calls
//! [`AgentModel::forward_teacher`] for the masked cross-entropy and the ϕ of every step.
//!
//! ```no_run
//! use agent::{AgentModel, AgentSequence, AgentTokenizer, DecodeOptions, DecodeSession,
//!             DecoderConfig, VolumeInfo};
//! use burn::prelude::Device;
//! # fn main() -> agent::Result<()> {
//! let tok = AgentTokenizer::train(["let v = volume(m); read(v);"], 300)?;
//! let model = AgentModel::new(&DecoderConfig::builtin("tiny")?, 42, &Device::flex())?;
//! let vol = VolumeInfo { name: "scan_1".into(), modality: Some("T1w".into()), acquired: None };
//! let mu1 = AgentSequence::initial(&tok, "How big is the tumour?", &[vol])?;
//! let mut session = DecodeSession::new(&model, &tok, mu1, None)?;
//! let step = session.decode_step(&DecodeOptions::default())?;
//! println!("{} ({} ϕ)", step.code, step.phi.map_or(0, |p| p.dims()[0]));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod decoder;
pub mod error;
mod init;
pub mod model;
pub mod phi_head;
pub mod sequence;
pub mod tokenizer;

pub use config::DecoderConfig;
pub use decode::{DecodeOptions, DecodeSession, DecodedStep, StopReason};
pub use decoder::{Decoder, KvCache};
pub use error::{AgentError, Result};
pub use model::{cross_entropy, masked_cross_entropy, AgentModel, TeacherOutput};
pub use phi_head::PhiHead;
pub use sequence::{AgentSequence, FeedbackItem, SequenceBatch, TokenRole, VolumeInfo};
pub use tokenizer::{AgentTokenizer, SpecialIds, MOD_MARKER, SPECIAL_TOKENS, VOL_MARKER};
