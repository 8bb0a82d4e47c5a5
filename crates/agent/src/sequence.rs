//! Assembly of the agent's token sequence (DESIGN.md §2 and §4) and of its loss mask.
//!
//! A sequence is built from segments, each token tagged with its [`TokenRole`]:
//!
//! ```text
//! μ₁:        <bos> prompt "\n" metadata lines
//! step i:    <step> code … <mod> <phi> … <endstep>
//! feedback:  <feedback> text … <vol> <vol> … <endfeedback>
//! end:       <eos>
//! ```
//!
//! **ϕ slots.** Every `<mod>` in program code is followed by one `<phi>` position, the ϕ slot.
//! Its hidden state is passed through the ϕ head to give ϕ. The `<phi>` token is not text: the
//! model never has to predict it (decoding inserts it after each emitted `<mod>`) and it is not
//! part of the decoded code.
//!
//! **Loss mask.** Entry `i` of [`AgentSequence::loss_mask`] says whether the logits at position
//! `i` are scored against token `i + 1`. It is true exactly when token `i + 1` is a program token
//! the model must learn to emit: code text, `<mod>` and the closing `<endstep>`. Hence
//! - prompt, metadata, `<step>`, all feedback tokens (text, `<vol>`, markers) and `<eos>` are
//!   never targets;
//! - the `<phi>` token of a ϕ slot is never a target (the entry of the `<mod>` position is false);
//! - the ϕ slot's own position does predict the next code token (its entry is true): after
//!   emitting `<mod>` decoding continues from the ϕ slot's logits, so they must be trained.
//!
//! Rendering of μ₁'s metadata lines: `volume NAME, modality M, acquired D`, with the modality
//! and date parts left out when unknown.

use crate::error::{AgentError, Result};
use crate::tokenizer::{AgentTokenizer, SpecialIds};

/// What a token of a sequence is, which decides the loss mask and the ϕ and ε° slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// The leading `<bos>`.
    Bos,
    /// Prompt and per-volume metadata text of μ₁.
    Context,
    /// `<step>`: opens a step (inserted by decoding, not predicted).
    StepOpen,
    /// Program code text.
    Code,
    /// A `<mod>` marker in program code.
    Mod,
    /// The ϕ slot following a `<mod>`.
    PhiSlot,
    /// `<endstep>`: closes a step (predicted).
    StepClose,
    /// `<feedback>` and `<endfeedback>`.
    FeedbackMarker,
    /// Feedback text.
    FeedbackText,
    /// A `<vol>` slot whose input embedding is an externally supplied ε°.
    VolSlot,
    /// The final `<eos>`.
    Eos,
}

impl TokenRole {
    /// Whether the model is trained to emit a token of this role.
    pub fn is_program(self) -> bool {
        matches!(
            self,
            TokenRole::Code | TokenRole::Mod | TokenRole::StepClose
        )
    }
}

/// Metadata of one input volume, rendered as one line of μ₁.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The variable that holds the volume in the program's scope (`scan_1`).
    pub name: String,
    /// Contrast or modality if known (`T1w`, `FLAIR`, `CT`).
    pub modality: Option<String>,
    /// Acquisition date if known, as the user gave it (`2021-03-04`).
    pub acquired: Option<String>,
}

impl VolumeInfo {
    /// The metadata line of μ₁ (see the module doc for the format). Line breaks inside fields
    /// become spaces so that each volume stays on one line.
    pub fn render(&self) -> String {
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        let mut line = format!("volume {}", clean(&self.name));
        if let Some(m) = &self.modality {
            line.push_str(&format!(", modality {}", clean(m)));
        }
        if let Some(d) = &self.acquired {
            line.push_str(&format!(", acquired {}", clean(d)));
        }
        line
    }
}

pub use protocol::FeedbackItem;

/// A token sequence with the role of every token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSequence {
    tokens: Vec<u32>,
    roles: Vec<TokenRole>,
    ids: SpecialIds,
    step_open: bool,
}

impl AgentSequence {
    /// μ₁: `<bos>`, the prompt, and one metadata line per input volume.
    pub fn initial(tok: &AgentTokenizer, prompt: &str, volumes: &[VolumeInfo]) -> Result<Self> {
        for v in volumes {
            if v.name.trim().is_empty() {
                return Err(AgentError::InvalidArgument(
                    "an input volume needs a variable name".into(),
                ));
            }
        }
        let mut text = prompt.trim_end().to_string();
        for v in volumes {
            text.push('\n');
            text.push_str(&v.render());
        }
        let mut seq = Self {
            tokens: vec![tok.specials().bos],
            roles: vec![TokenRole::Bos],
            ids: *tok.specials(),
            step_open: false,
        };
        seq.push_text(tok, &text, TokenRole::Context)?;
        Ok(seq)
    }

    /// Appends a whole step, `<step>` code `<endstep>`, for teacher forcing. `<mod>` markers in
    /// `code` become `<mod>` tokens each followed by a ϕ slot. On error the sequence is
    /// unchanged.
    pub fn push_step(&mut self, tok: &AgentTokenizer, code: &str) -> Result<()> {
        // Encode first: the only fallible part, and it must not leave a half-written step.
        let ids = tok.encode_code(code)?;
        self.open_step()?;
        for id in ids {
            // `encode_code` yields no special token other than `<mod>`.
            self.push_generated(id)?;
        }
        self.close_step()
    }

    /// Appends `<step>`; decoding then appends tokens with [`AgentSequence::push_generated`].
    pub fn open_step(&mut self) -> Result<()> {
        if self.in_step() {
            return Err(AgentError::InvalidArgument(
                "a step is already open; close it before opening another".into(),
            ));
        }
        self.push(self.ids.step, TokenRole::StepOpen);
        self.step_open = true;
        Ok(())
    }

    /// Appends one token emitted inside an open step. `<mod>` also appends its ϕ slot and
    /// `<endstep>` closes the step; other special tokens are refused (they are not program text).
    pub fn push_generated(&mut self, id: u32) -> Result<()> {
        if !self.in_step() {
            return Err(AgentError::InvalidArgument(
                "program tokens can only be appended inside an open step".into(),
            ));
        }
        let ids = self.ids;
        if id == ids.mod_marker {
            self.push(id, TokenRole::Mod);
            self.push(ids.phi, TokenRole::PhiSlot);
        } else if id == ids.endstep {
            self.push(id, TokenRole::StepClose);
            self.step_open = false;
        } else if [
            ids.pad,
            ids.bos,
            ids.eos,
            ids.step,
            ids.feedback,
            ids.endfeedback,
            ids.vol,
            ids.phi,
        ]
        .contains(&id)
        {
            return Err(AgentError::InvalidArgument(format!(
                "special token id {id} cannot appear in program code"
            )));
        } else {
            self.push(id, TokenRole::Code);
        }
        Ok(())
    }

    /// Appends `<endstep>` to the open step.
    pub fn close_step(&mut self) -> Result<()> {
        self.push_generated(self.ids.endstep)
    }

    /// Whether a step is open (`<step>` appended, `<endstep>` not yet).
    pub fn in_step(&self) -> bool {
        self.step_open
    }

    /// Appends a step's feedback: `<feedback>`, the items, `<endfeedback>`. On error the
    /// sequence is unchanged.
    pub fn push_feedback(&mut self, tok: &AgentTokenizer, items: &[FeedbackItem]) -> Result<()> {
        if self.in_step() {
            return Err(AgentError::InvalidArgument(
                "feedback cannot be appended inside an open step".into(),
            ));
        }
        let mut tokens = vec![(self.ids.feedback, TokenRole::FeedbackMarker)];
        for item in items {
            match item {
                FeedbackItem::Text(text) => tokens.extend(
                    tok.encode_text(text)?
                        .into_iter()
                        .map(|id| (id, TokenRole::FeedbackText)),
                ),
                FeedbackItem::Encoding { streams } => tokens.extend(std::iter::repeat_n(
                    (self.ids.vol, TokenRole::VolSlot),
                    streams.len(),
                )),
            }
        }
        tokens.push((self.ids.endfeedback, TokenRole::FeedbackMarker));
        for (id, role) in tokens {
            self.push(id, role);
        }
        Ok(())
    }

    /// Appends the final `<eos>`.
    pub fn push_eos(&mut self) {
        self.push(self.ids.eos, TokenRole::Eos);
    }

    fn push_text(&mut self, tok: &AgentTokenizer, text: &str, role: TokenRole) -> Result<()> {
        for id in tok.encode_text(text)? {
            self.push(id, role);
        }
        Ok(())
    }

    fn push(&mut self, id: u32, role: TokenRole) {
        self.tokens.push(id);
        self.roles.push(role);
    }

    /// The token ids.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The role of every token.
    pub fn roles(&self) -> &[TokenRole] {
        &self.roles
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the sequence has no token (never true for a sequence built by `initial`).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The special-token ids the sequence was built with.
    pub fn specials(&self) -> &SpecialIds {
        &self.ids
    }

    /// `len() - 1` entries; entry `i` is true when the logits at position `i` are scored
    /// against token `i + 1` (module doc).
    pub fn loss_mask(&self) -> Vec<bool> {
        self.roles.iter().skip(1).map(|r| r.is_program()).collect()
    }

    /// Positions of the ϕ slots, in order of appearance.
    pub fn phi_positions(&self) -> Vec<usize> {
        self.positions(TokenRole::PhiSlot)
    }

    /// Positions of the `<vol>` slots, in order of appearance.
    pub fn vol_positions(&self) -> Vec<usize> {
        self.positions(TokenRole::VolSlot)
    }

    fn positions(&self, role: TokenRole) -> Vec<usize> {
        (0..self.roles.len())
            .filter(|&i| self.roles[i] == role)
            .collect()
    }

    /// The token ids of every step's code (between `<step>` and `<endstep>`, markers excluded,
    /// `<mod>` and ϕ slots included), in order; an open last step is included as far as it goes.
    pub fn step_tokens(&self) -> Vec<Vec<u32>> {
        let mut steps = Vec::new();
        let mut current: Option<Vec<u32>> = None;
        for (&id, &role) in self.tokens.iter().zip(&self.roles) {
            match role {
                TokenRole::StepOpen => current = Some(Vec::new()),
                TokenRole::StepClose => steps.extend(current.take()),
                _ => {
                    if let Some(c) = current.as_mut() {
                        c.push(id);
                    }
                }
            }
        }
        steps.extend(current);
        steps
    }
}

/// Several sequences right-padded to one length for a batched teacher-forced forward.
///
/// Flat positions are `b * len + i`. Padding sits after each sequence's end, so causal attention
/// keeps it from influencing real positions, and it is never a loss target.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// Token ids, `batch * len`, row-major.
    pub tokens: Vec<u32>,
    /// Number of sequences.
    pub batch: usize,
    /// Padded length.
    pub len: usize,
    /// `(flat position, target id)` of every scored prediction, in order.
    pub targets: Vec<(usize, u32)>,
    /// Flat positions of the ϕ slots (sequence-major, in order of appearance).
    pub phi_positions: Vec<usize>,
    /// Flat positions of the `<vol>` slots (sequence-major, in order of appearance); the rows of
    /// the ε° tensor supplied with the batch follow this order.
    pub vol_positions: Vec<usize>,
}

impl SequenceBatch {
    /// Pads `seqs` (at least one) to the longest of them with `<pad>`.
    pub fn new(seqs: &[&AgentSequence]) -> Result<Self> {
        let first = seqs
            .first()
            .ok_or_else(|| AgentError::InvalidArgument("an empty batch".into()))?;
        let pad = first.ids.pad;
        let len = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut batch = Self {
            tokens: Vec::with_capacity(seqs.len() * len),
            batch: seqs.len(),
            len,
            targets: Vec::new(),
            phi_positions: Vec::new(),
            vol_positions: Vec::new(),
        };
        for (b, seq) in seqs.iter().enumerate() {
            if seq.ids != first.ids {
                return Err(AgentError::InvalidArgument(
                    "sequences of one batch must come from the same tokenizer".into(),
                ));
            }
            let base = b * len;
            batch.tokens.extend_from_slice(&seq.tokens);
            batch.tokens.resize(base + len, pad);
            for (i, scored) in seq.loss_mask().into_iter().enumerate() {
                if scored {
                    batch.targets.push((base + i, seq.tokens[i + 1]));
                }
            }
            batch
                .phi_positions
                .extend(seq.phi_positions().into_iter().map(|p| base + p));
            batch
                .vol_positions
                .extend(seq.vol_positions().into_iter().map(|p| base + p));
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> AgentTokenizer {
        AgentTokenizer::train(
            [
                "let m = generate(encode([scan_1]<mod>)<mod>); read(volume(m));",
                "How large is it? volume scan_1, modality T1w",
            ],
            300,
        )
        .unwrap()
    }

    #[test]
    fn metadata_lines_leave_out_unknown_fields() {
        let full = VolumeInfo {
            name: "scan_2".into(),
            modality: Some("FLAIR".into()),
            acquired: Some("2021-05-06".into()),
        };
        assert_eq!(
            full.render(),
            "volume scan_2, modality FLAIR, acquired 2021-05-06"
        );
        let bare = VolumeInfo {
            name: "ct\nscan".into(),
            modality: None,
            acquired: None,
        };
        assert_eq!(bare.render(), "volume ct scan");
    }

    #[test]
    fn steps_carry_phi_slots_and_decode_back() {
        let tok = tok();
        let vol = VolumeInfo {
            name: "scan_1".into(),
            modality: None,
            acquired: None,
        };
        let mut seq = AgentSequence::initial(&tok, "How large is it?", &[vol]).unwrap();
        let code = "let m = generate(encode([scan_1]<mod>)<mod>);";
        seq.push_step(&tok, code).unwrap();
        let steps = seq.step_tokens();
        assert_eq!(steps.len(), 1);
        let ids = tok.specials();
        let mods = steps[0].iter().filter(|&&t| t == ids.mod_marker).count();
        let phis = steps[0].iter().filter(|&&t| t == ids.phi).count();
        assert_eq!((mods, phis), (2, 2));
        assert_eq!(tok.decode(&steps[0]).unwrap(), code);
        for p in seq.phi_positions() {
            assert_eq!(seq.tokens()[p - 1], ids.mod_marker);
        }
        assert_eq!(seq.tokens()[0], ids.bos);
        assert!(!seq.in_step());
    }

    #[test]
    fn grammar_violations_are_errors_and_change_nothing() {
        let tok = tok();
        let ids = *tok.specials();
        let no_name = VolumeInfo {
            name: " ".into(),
            modality: None,
            acquired: None,
        };
        assert!(AgentSequence::initial(&tok, "hi", &[no_name]).is_err());

        let mut seq = AgentSequence::initial(&tok, "hi", &[]).unwrap();
        assert!(seq.push_generated(42).is_err(), "no step is open");
        seq.open_step().unwrap();
        assert!(seq.open_step().is_err());
        let before = seq.clone();
        assert!(seq
            .push_feedback(&tok, &[FeedbackItem::Text("x".into())])
            .is_err());
        for special in [ids.vol, ids.phi, ids.bos, ids.feedback, ids.step] {
            assert!(seq.push_generated(special).is_err());
        }
        assert_eq!(seq, before);
        seq.close_step().unwrap();
        seq.push_feedback(
            &tok,
            &[FeedbackItem::Encoding {
                streams: vec![Vec::new(); 3],
            }],
        )
        .unwrap();
        assert_eq!(seq.vol_positions().len(), 3);
        seq.push_eos();
        assert_eq!(*seq.roles().last().unwrap(), TokenRole::Eos);
        assert!(!seq.loss_mask().last().unwrap(), "<eos> is not a target");
    }

    #[test]
    fn batches_pad_and_offset_positions() {
        let tok = tok();
        let mut a = AgentSequence::initial(&tok, "How large is it?", &[]).unwrap();
        a.push_step(&tok, "read(volume(m));").unwrap();
        let mut b = AgentSequence::initial(&tok, "hi", &[]).unwrap();
        b.push_step(&tok, "encode([scan_1]<mod>)").unwrap();
        b.push_feedback(
            &tok,
            &[FeedbackItem::Encoding {
                streams: vec![Vec::new()],
            }],
        )
        .unwrap();
        let batch = SequenceBatch::new(&[&a, &b]).unwrap();
        let len = a.len().max(b.len());
        assert_eq!((batch.batch, batch.len), (2, len));
        assert_eq!(batch.tokens.len(), 2 * len);
        assert_eq!(batch.phi_positions, vec![len + b.phi_positions()[0]]);
        assert_eq!(batch.vol_positions, vec![len + b.vol_positions()[0]]);
        let scored = |s: &AgentSequence| s.loss_mask().iter().filter(|m| **m).count();
        assert_eq!(batch.targets.len(), scored(&a) + scored(&b));
        for &(pos, target) in &batch.targets {
            assert_eq!(batch.tokens[pos + 1], target);
            assert_ne!(target, tok.specials().pad);
        }
        assert!(SequenceBatch::new(&[]).is_err());
    }
}
