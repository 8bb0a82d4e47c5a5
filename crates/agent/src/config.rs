//! Decoder sizes as data: `configs/agent/{tiny,small,paper}.toml` read into [`DecoderConfig`].
//!
//! Checkpoints store the same struct as JSON (DESIGN.md §7), so a checkpoint always knows the
//! shape of the network that wrote it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};

/// The hyper-parameters of the LLaMA-style decoder and its ϕ head.
///
/// ```
/// let cfg = agent::DecoderConfig::builtin("paper").unwrap();
/// assert_eq!((cfg.n_layers, cfg.d_model, cfg.d_mlp, cfg.n_heads), (16, 512, 2048, 32));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    /// Human-readable name of the size (`tiny`, `small`, `paper`, …).
    pub name: String,
    /// Rows of the token embedding and outputs of the language-model head. Must be at least the
    /// tokenizer's vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream (the paper's d); also the width of ε° feedback vectors.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Attention heads per block; `d_model / n_heads` must be even for rotary positions.
    pub n_heads: usize,
    /// Hidden width of the SwiGLU MLP.
    pub d_mlp: usize,
    /// Longest token sequence the decoder accepts (prompt, all steps and feedback together).
    pub max_seq_len: usize,
    /// Base of the rotary frequencies (10 000 in LLaMA).
    pub rope_theta: f64,
    /// Epsilon inside RMSNorm.
    pub norm_eps: f64,
    /// Length of each ϕ vector emitted at a `<mod>` (32 in the paper).
    pub phi_dim: usize,
    /// Standard deviation of the normal initialisation of weight matrices.
    pub init_std: f64,
}

/// The built-in sizes, embedded from `configs/agent/` so a binary carries them.
const BUILTIN: [(&str, &str); 3] = [
    ("tiny", include_str!("../../../configs/agent/tiny.toml")),
    ("small", include_str!("../../../configs/agent/small.toml")),
    ("paper", include_str!("../../../configs/agent/paper.toml")),
];

impl DecoderConfig {
    /// One of the sizes shipped in `configs/agent/` (`tiny`, `small`, `paper`).
    pub fn builtin(name: &str) -> Result<Self> {
        let (_, text) =
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| AgentError::Config {
                    origin: format!("builtin {name:?}"),
                    problem: format!(
                        "no such built-in size; choose one of {:?}",
                        BUILTIN.map(|(n, _)| n)
                    ),
                })?;
        Self::from_toml_str(text, &format!("configs/agent/{name}.toml"))
    }

    /// Parses a TOML config file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AgentError::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names its source in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| AgentError::Config {
            origin: origin.to_string(),
            problem: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Parses the JSON form stored in checkpoints; `origin` names its source in error messages.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| AgentError::Config {
            origin: origin.to_string(),
            problem: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// The JSON form stored in checkpoints.
    pub fn to_json_string(&self) -> String {
        // Serialising a plain struct of numbers and a string cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks the invariants the decoder relies on; `origin` names the source in the error.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let fail = |problem: String| {
            Err(AgentError::Config {
                origin: origin.to_string(),
                problem,
            })
        };
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_mlp", self.d_mlp),
            ("max_seq_len", self.max_seq_len),
            ("phi_dim", self.phi_dim),
        ] {
            if value == 0 {
                return fail(format!("{field} must be positive"));
            }
        }
        if self.d_model % self.n_heads != 0 {
            return fail(format!(
                "d_model {} is not a multiple of n_heads {}",
                self.d_model, self.n_heads
            ));
        }
        if self.head_dim() % 2 != 0 {
            return fail(format!(
                "head width d_model/n_heads = {} must be even for rotary positions",
                self.head_dim()
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return fail(format!("rope_theta {} must be > 1", self.rope_theta));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return fail(format!("norm_eps {} must be positive", self.norm_eps));
        }
        if !(self.init_std.is_finite() && self.init_std > 0.0) {
            return fail(format!("init_std {} must be positive", self.init_std));
        }
        Ok(())
    }

    /// Number of trainable parameters of the decoder plus ϕ head (untied embedding and head).
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let per_layer = 2 * d + 4 * d * d + 3 * d * self.d_mlp;
        2 * self.vocab_size * d + self.n_layers * per_layer + d + d * self.phi_dim + self.phi_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_sizes_match_the_design() {
        let paper = DecoderConfig::builtin("paper").unwrap();
        assert_eq!(paper.n_layers, 16);
        assert_eq!(paper.d_model, 512);
        assert_eq!(paper.d_mlp, 2048);
        assert_eq!(paper.n_heads, 32);
        assert_eq!(paper.vocab_size, 32000);
        assert_eq!(paper.phi_dim, 32);
        let small = DecoderConfig::builtin("small").unwrap();
        assert_eq!((small.n_layers, small.d_model), (4, 256));
        let tiny = DecoderConfig::builtin("tiny").unwrap();
        assert!(tiny.num_params() < small.num_params());
        assert!(DecoderConfig::builtin("huge").is_err());
    }

    #[test]
    fn json_round_trip_and_validation() {
        let tiny = DecoderConfig::builtin("tiny").unwrap();
        let back = DecoderConfig::from_json_str(&tiny.to_json_string(), "test").unwrap();
        assert_eq!(tiny, back);
        let mut odd = tiny.clone();
        odd.n_heads = 3;
        assert!(odd.validate("test").is_err());
        let bad = "name = \"x\"\nvocab_size = 10\n";
        assert!(DecoderConfig::from_toml_str(bad, "test").is_err());
    }
}
