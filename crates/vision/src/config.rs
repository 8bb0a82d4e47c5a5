//! Network sizes as data: the TOML files under `configs/vision/` read into [`UnetConfig`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};

/// The presets shipped with the crate, as TOML text, so a binary needs no file at run time.
const PRESETS: [(&str, &str); 3] = [
    ("tiny", include_str!("../../../configs/vision/tiny.toml")),
    ("small", include_str!("../../../configs/vision/small.toml")),
    ("paper", include_str!("../../../configs/vision/paper.toml")),
];

/// Size and shape of the UNet-like vision network (DESIGN.md §5).
///
/// ```
/// let config = vision::UnetConfig::preset("paper").unwrap();
/// assert_eq!((config.levels, config.channels_top, config.channels_below), (6, 32, 96));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// Name of the size (`tiny`, `small`, `paper`, or a custom one).
    pub name: String,
    /// Resolution levels; the input is max-pooled `levels - 1` times, the deepest is the bottleneck.
    pub levels: usize,
    /// Feature channels at the full-resolution level.
    pub channels_top: usize,
    /// Feature channels at every level below the top.
    pub channels_below: usize,
    /// 3×3×3 convolutions per level (each followed by GroupNorm and SiLU).
    pub convs_per_level: usize,
    /// GroupNorm group size in channels.
    pub group_size: usize,
    /// Width of the latent instruction ϕ.
    pub phi_dim: usize,
    /// Whether ϕ also scales the mixed features channel by channel (FiLM), as well as shifting
    /// them ([`crate::phi_mixing`]). Off in the paper's network and in the models trained
    /// before it existed (whose configurations omit it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub phi_scale: bool,
    /// Whether ϕ also offsets the logits on either side of the head's midline
    /// ([`crate::side_gate`]). Off in the paper's network and in the models trained before it
    /// existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub side_gate: bool,
    /// Whether the side gate is logistic: each side's offset is `−SIDE_SUPPRESSION_LOGITS ·
    /// σ(gain·ϕ·W + b)`, a learned yes/no per side ([`crate::side_gate`]), not session 21's
    /// linear `gain·ϕ·W`. Absent in the models trained before it existed (linear).
    #[serde(default, skip_serializing_if = "is_false")]
    pub side_gate_logistic: bool,
    /// Width b of the stream-attention queries, keys and values.
    pub attention_width: usize,
    /// Width d of the ε° embedding (the agent's hidden width).
    pub embedding_dim: usize,
    /// Slice/in-plane spacing ratio ω above which convolutions run per slice in 2-D.
    pub anisotropy_ratio: f64,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl UnetConfig {
    /// One of the shipped presets: `tiny`, `small` or `paper`.
    pub fn preset(name: &str) -> Result<Self> {
        let text = PRESETS
            .iter()
            .find(|(preset, _)| *preset == name)
            .map(|(_, text)| *text)
            .ok_or_else(|| VisionError::UnknownPreset(name.to_string()))?;
        Self::from_toml_str(text, &format!("preset `{name}`"))
    }

    /// Reads and validates a TOML configuration file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| VisionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|error| VisionError::ConfigParse {
            origin: origin.to_string(),
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that every size is usable (channels divisible by the group size, ≥ 1 level, …).
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(VisionError::InvalidConfig {
                name: self.name.clone(),
                reason,
            })
        };
        if self.levels == 0 {
            return invalid("levels must be at least 1".into());
        }
        if self.convs_per_level == 0 {
            return invalid("convs_per_level must be at least 1".into());
        }
        if self.group_size == 0 {
            return invalid("group_size must be at least 1".into());
        }
        for (field, channels) in [
            ("channels_top", self.channels_top),
            ("channels_below", self.channels_below),
        ] {
            if channels == 0 || channels % self.group_size != 0 {
                return invalid(format!(
                    "{field} = {channels} must be a positive multiple of group_size = {}",
                    self.group_size
                ));
            }
        }
        for (field, width) in [
            ("phi_dim", self.phi_dim),
            ("attention_width", self.attention_width),
            ("embedding_dim", self.embedding_dim),
        ] {
            if width == 0 {
                return invalid(format!("{field} must be at least 1"));
            }
        }
        if !(self.anisotropy_ratio.is_finite() && self.anisotropy_ratio >= 1.0) {
            return invalid(format!(
                "anisotropy_ratio = {} must be a finite number ≥ 1",
                self.anisotropy_ratio
            ));
        }
        Ok(())
    }

    /// Feature channels at `level` (0 = full resolution).
    pub fn channels_at(&self, level: usize) -> usize {
        if level == 0 {
            self.channels_top
        } else {
            self.channels_below
        }
    }

    /// The configuration as pretty JSON (stored next to checkpoints).
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and a string cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_paper_matches_the_paper() {
        for name in ["tiny", "small", "paper"] {
            let config = UnetConfig::preset(name).unwrap();
            assert_eq!(config.name, name);
        }
        let paper = UnetConfig::preset("paper").unwrap();
        assert_eq!(paper.levels, 6);
        assert_eq!(paper.channels_top, 32);
        assert_eq!(paper.channels_below, 96);
        assert_eq!(paper.group_size, 4);
        assert_eq!(paper.phi_dim, 32);
        assert_eq!(paper.attention_width, 32);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        assert!(matches!(
            UnetConfig::preset("huge"),
            Err(VisionError::UnknownPreset(_))
        ));
        let mut text = include_str!("../../../configs/vision/tiny.toml").to_string();
        text = text.replace("channels_top = 8", "channels_top = 6");
        assert!(matches!(
            UnetConfig::from_toml_str(&text, "test"),
            Err(VisionError::InvalidConfig { .. })
        ));
        assert!(matches!(
            UnetConfig::from_toml_str("levels = 'x'", "test"),
            Err(VisionError::ConfigParse { .. })
        ));
    }
}
