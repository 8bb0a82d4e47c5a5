//! The joint training run (`voxelprompt train`): samples drawn from the task catalogue on a
//! background thread, [`crate::joint::sample_loss`] per sample, Adam with gradient
//! accumulation and clipping, the learning rate halved on a validation plateau, and a
//! crash-safe checkpoint that a later run resumes exactly.
//!
//! A run directory holds
//!
//! - `checkpoint/`: `model/` (a loadable [`Model`] directory), `average/` (the moving average
//!   of the weights, a [`Model`] directory too, when the settings keep one), `optimizer.bin` and
//!   `vision-optimizer.bin` (Adam's state of the agent and of the vision network),
//!   `phi-namer.safetensors` and `phi-namer-optimizer.bin` (the training-only
//!   [`crate::phi_namer`] and its Adam state; a checkpoint without them starts a fresh namer),
//!   `state.json` ([`RunState`]: step, next sample index, learning rate, plateau counters,
//!   settings). Written to a sibling directory first and swapped in by renames, so a crash
//!   leaves the previous checkpoint intact;
//! - `train.csv`: one row per optimiser step (rows past the checkpoint are dropped on resume);
//! - `masks.csv`: one row per scored `generate` call (family, target, true and predicted
//!   voxels, Dice), the per-target learning curves (trimmed on resume as `train.csv`);
//! - `tokenizer.json`: the tokenizer trained for the run (also inside every model).
//!
//! Samples are a pure function of the run seed and their index, so resuming at the saved
//! index replays exactly the samples an uninterrupted run would have drawn.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use agent::AgentTokenizer;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{Module, ParamGroup};
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use synth::{Hemisphere, SynthConfig, Vocabulary};
use tasks::program::{GenerateTarget, ModMeaning};
use tasks::scenario::Scenario;
use tasks::truth::MaskDef;
use tasks::{Catalogue, TaskError, TaskSample, TemplateSplit};

use crate::averaging::AverageState;
use crate::error::{Result, TrainError};
use crate::joint::{
    program_loss, sample_loss, sample_loss_with_extras, LossContext, MaskScore, StageSeconds,
};
use crate::model::{JointNet, Model, ModelConfig};
use crate::phi_namer::{PhiNamer, NAMER_FILE};
use agent::AgentModel;
use vision::Unet;

/// The shipped joint-training settings (`configs/train/joint.toml`).
pub const JOINT_TOML: &str = include_str!("../../../configs/train/joint.toml");

/// Settings of a joint training run (see `configs/train/joint.toml` for each field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSettings {
    /// Adam learning rate of the agent at the start.
    pub learning_rate: f64,
    /// Adam learning rate of the vision network at the start (absent: `learning_rate`); the
    /// plateau rule scales both alike.
    #[serde(default)]
    pub vision_learning_rate: Option<f64>,
    /// Adam learning rate of the agent's ϕ head at the start (absent: `learning_rate`); the
    /// plateau rule scales it alike. The head learns only from the mask losses, through the
    /// vision network, like the vision network itself.
    #[serde(default)]
    pub phi_learning_rate: Option<f64>,
    /// Samples per optimiser step.
    pub accumulation: usize,
    /// Per-parameter gradient L2 norm limit.
    pub grad_clip_norm: f64,
    /// λ of the Dice term.
    pub dice_weight: f64,
    /// Weight of the voxel-wise binary cross-entropy of generated volumes (absent: 0).
    #[serde(default)]
    pub bce_weight: f64,
    /// Weight of the loss of naming each generator's target from its ϕ
    /// ([`crate::phi_namer`]; absent: 0, no namer).
    #[serde(default)]
    pub phi_name_weight: f64,
    /// Adam learning rate of the ϕ namer at the start (absent: the ϕ head's); the plateau
    /// rule scales it alike.
    #[serde(default)]
    pub phi_name_learning_rate: Option<f64>,
    /// Optimiser steps between progress rows.
    pub log_every: usize,
    /// Minutes between checkpoints.
    pub checkpoint_minutes: f64,
    /// Optimiser steps between validations (0: none).
    pub validate_every: usize,
    /// Validation samples.
    pub validation_samples: usize,
    /// Validations without improvement before the learning rate is halved.
    pub plateau_patience: usize,
    /// Validation samples the agent also answers freely at every validation, with oracle
    /// vision ([`crate::eval::oracle_success`]); the model with the best share passed is kept
    /// in `RUN/best/` (absent: 0, none).
    #[serde(default)]
    pub free_running_samples: usize,
    /// Task samples whose text trains a new run's tokenizer.
    pub tokenizer_samples: usize,
    /// Anatomy choice (`all`, `phantom`, `fsaverage`, `neuromorphometrics`).
    pub anatomy: String,
    /// Weight of families not listed in `families`.
    pub default_family_weight: f64,
    /// Fraction of training samples used for program pretraining
    /// ([`crate::joint::program_loss`]: oracle vision, cross-entropy only; absent: 0).
    #[serde(default)]
    pub program_only_fraction: f64,
    /// Sampling weight by family id.
    #[serde(default)]
    pub families: BTreeMap<String, f64>,
    /// Sampling weights by family id of the joint (not program-only) training samples; when
    /// empty they are drawn like the others (`families`), else only the families listed here.
    #[serde(default)]
    pub joint_families: BTreeMap<String, f64>,
    /// Share of the joint training samples that ask for one of `joint_targets` instead of a
    /// target drawn by the family's own scenario weights (absent: 0).
    #[serde(default)]
    pub joint_target_fraction: f64,
    /// Sampling weights of those targets by name: a vocabulary anatomy target (segmented by
    /// `segment_anatomy`) or an active lesion class (`segment_lesion`).
    #[serde(default)]
    pub joint_targets: BTreeMap<String, f64>,
    /// More masks per joint sample: this many targets drawn from `joint_targets` by weight
    /// (without repeats, none the program already generates) are generated from the sample's
    /// first encoding and scored too ([`crate::joint::sample_loss_with_extras`]); a lesion class
    /// the subject lacks asks for an empty mask (absent: 0, the paper's one mask per `generate`).
    #[serde(default)]
    pub extra_targets: usize,
    /// Share of the extra targets drawn as a lesion class the subject lacks that are kept (the
    /// others give way to the next draw; absent: 0.5). Kept all, such negatives outnumbered the
    /// masks of present lesions ~2 to 1 per class in small-9 and erased them (session 20).
    #[serde(default = "default_absent_lesion_share")]
    pub extra_absent_lesion_share: f64,
    /// Whether the first extra target is a lesion class the subject has and its program does not
    /// ask for (when there is one: the incidental lesions of anatomy questions,
    /// `tasks::family::INCIDENTAL_LESION_PROBABILITY`), before the draw by weight (absent: false).
    /// Drawn by weight, such a lesion came up in ~1.5 % of the extras of lesion classes (18
    /// masks in small9e's steps 1 500–2 530, against 393 of the lesion programs' own).
    #[serde(default)]
    pub extra_present_lesion: bool,
    /// Cap of the foreground weight in a lesion mask's binary cross-entropy
    /// ([`crate::loss::weighted_bce_with_logits_loss`]; absent: 1, the plain voxel mean).
    /// Anatomy masks keep the plain mean.
    #[serde(default = "default_positive_weight_max")]
    pub lesion_positive_weight_max: f64,
    /// Whether the plateau rule lowers the vision network's and the ϕ head's rates with the
    /// agent's (absent: true). The validation loss is the whole loss of 20 samples, most of it
    /// masks of the long tail of targets, and does not follow the segmentation the vision
    /// network is learning (small-9's stopped improving at step 4 800 while its held-out Dice
    /// climbed to step 6 403); false leaves the mask side at its configured rates.
    #[serde(default = "default_true")]
    pub plateau_lowers_vision: bool,
    /// Decay per optimiser step of the moving average of the weights ([`crate::averaging`]),
    /// which is then what is validated, kept as the best and shipped (absent: no average;
    /// the current weights are).
    #[serde(default)]
    pub weight_average_decay: Option<f64>,
    /// Give the vision network FiLM (ϕ as a per-channel scale too, [`vision::Unet::
    /// with_phi_scale`]) if it lacks it, with zero scale weights so training goes on from the
    /// same function (absent: false). One way: a network that has FiLM keeps it.
    #[serde(default)]
    pub vision_phi_scale: bool,
    /// Give the vision network a side gate (ϕ's offsets of the logits on either side of the
    /// head's midline, [`vision::side_gate`]) if it lacks it, with zero weights so training goes
    /// on from the same function (absent: false). One way, as `vision_phi_scale`.
    #[serde(default)]
    pub vision_side_gate: bool,
    /// Make the vision network's side gate logistic ([`vision::Unet::with_logistic_side_gate`]:
    /// a yes/no per side, where the linear gate could not give bilateral targets no offset and
    /// lateral ones a large one at once), starting at next to no offset; what a linear gate had
    /// learnt is dropped (absent: false). One way, as `vision_side_gate`.
    #[serde(default)]
    pub vision_side_gate_logistic: bool,
    /// Weight of the side gate's teaching term ([`crate::joint::side_gate_term`]; absent: 0).
    #[serde(default)]
    pub side_gate_weight: f64,
}

fn default_absent_lesion_share() -> f64 {
    0.5
}

fn default_positive_weight_max() -> f64 {
    1.0
}

fn default_true() -> bool {
    true
}

impl JointSettings {
    /// The vision network's learning rate when the agent's is `agent_learning_rate` (the
    /// configured ratio is kept as the plateau rule lowers the agent's, unless
    /// `plateau_lowers_vision` is false: then the configured rate).
    pub fn vision_rate(&self, agent_learning_rate: f64) -> f64 {
        let configured = self.vision_learning_rate.unwrap_or(self.learning_rate);
        self.mask_side_rate(agent_learning_rate, configured)
    }

    /// The ϕ head's learning rate when the agent's is `agent_learning_rate` (as
    /// [`JointSettings::vision_rate`]: the head learns from the masks alone).
    pub fn phi_rate(&self, agent_learning_rate: f64) -> f64 {
        let configured = self.phi_learning_rate.unwrap_or(self.learning_rate);
        self.mask_side_rate(agent_learning_rate, configured)
    }

    fn mask_side_rate(&self, agent_learning_rate: f64, configured: f64) -> f64 {
        if self.plateau_lowers_vision {
            agent_learning_rate * configured / self.learning_rate
        } else {
            configured
        }
    }

    /// Settings that draw samples as the task catalogue does, for evaluation and the
    /// characterisation classifiers: `anatomy`, the family weights given (`default` for the
    /// others) and none of training's own mix (joint families, focus targets). A sampling
    /// field added for training belongs here, so held-out draws stay plain by default.
    pub fn for_sampling(
        anatomy: &str,
        families: BTreeMap<String, f64>,
        default_family_weight: f64,
    ) -> Result<JointSettings> {
        Ok(JointSettings {
            anatomy: anatomy.to_string(),
            families,
            default_family_weight,
            joint_families: BTreeMap::new(),
            joint_targets: BTreeMap::new(),
            joint_target_fraction: 0.0,
            extra_targets: 0,
            extra_absent_lesion_share: default_absent_lesion_share(),
            validate_every: 0,
            ..JointSettings::builtin()?
        })
    }

    /// The ϕ namer's learning rate when the agent's is `agent_learning_rate` (the configured
    /// ratio is kept as the plateau rule lowers the agent's).
    pub fn phi_name_rate(&self, agent_learning_rate: f64) -> f64 {
        match self.phi_name_learning_rate {
            Some(v) => agent_learning_rate * v / self.learning_rate,
            None => self.phi_rate(agent_learning_rate),
        }
    }

    /// `model` with the parts these settings add to a vision network that lacks them
    /// (`vision_phi_scale`, `vision_side_gate`, `vision_side_gate_logistic`), each starting
    /// where it changes nothing (the logistic gate: next to nothing).
    pub fn upgrade_model(&self, model: Model) -> Model {
        let model = if self.vision_phi_scale {
            model.with_vision_phi_scale()
        } else {
            model
        };
        let model = if self.vision_side_gate {
            model.with_vision_side_gate()
        } else {
            model
        };
        if self.vision_side_gate_logistic {
            model.with_vision_logistic_side_gate()
        } else {
            model
        }
    }

    /// The shipped defaults.
    pub fn builtin() -> Result<JointSettings> {
        Self::from_toml_str(JOINT_TOML, "configs/train/joint.toml")
    }

    /// Parses and validates settings.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<JointSettings> {
        let s: JointSettings = toml::from_str(text).map_err(|e| TrainError::Settings {
            what: origin.into(),
            problem: e.to_string(),
        })?;
        s.validate(origin)?;
        Ok(s)
    }

    /// Checks every field's range.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |problem: String| {
            Err(TrainError::Settings {
                what: origin.into(),
                problem,
            })
        };
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "learning_rate {} must be positive",
                self.learning_rate
            ));
        }
        if self.accumulation == 0 || self.log_every == 0 {
            return bad("accumulation and log_every must be at least 1".into());
        }
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let not_negative = |x: f64| x >= 0.0 && x.is_finite();
        if !positive(self.grad_clip_norm)
            || !not_negative(self.dice_weight)
            || !not_negative(self.bce_weight)
            || !not_negative(self.phi_name_weight)
        {
            return bad(
                "grad_clip_norm must be positive; dice_weight, bce_weight and phi_name_weight \
                 not negative"
                    .into(),
            );
        }
        for (name, rate) in [
            ("vision_learning_rate", self.vision_learning_rate),
            ("phi_learning_rate", self.phi_learning_rate),
            ("phi_name_learning_rate", self.phi_name_learning_rate),
        ] {
            if let Some(lr) = rate {
                if !positive(lr) {
                    return bad(format!("{name} {lr} must be positive"));
                }
            }
        }
        if !(0.0..=1.0).contains(&self.program_only_fraction) {
            return bad(format!(
                "program_only_fraction {} must be in [0, 1]",
                self.program_only_fraction
            ));
        }
        if !(0.0..=1.0).contains(&self.joint_target_fraction) {
            return bad(format!(
                "joint_target_fraction {} must be in [0, 1]",
                self.joint_target_fraction
            ));
        }
        if self.joint_target_fraction > 0.0
            && self
                .joint_targets
                .values()
                .all(|&w| w <= 0.0 || !w.is_finite())
        {
            return bad(
                "joint_target_fraction > 0 needs [joint_targets] with a positive weight".into(),
            );
        }
        if !(self.lesion_positive_weight_max >= 1.0 && self.lesion_positive_weight_max.is_finite())
        {
            return bad(format!(
                "lesion_positive_weight_max {} must be at least 1",
                self.lesion_positive_weight_max
            ));
        }
        if !(self.side_gate_weight >= 0.0 && self.side_gate_weight.is_finite()) {
            return bad(format!(
                "side_gate_weight {} must be 0 or more",
                self.side_gate_weight
            ));
        }
        if !(0.0..=1.0).contains(&self.extra_absent_lesion_share) {
            return bad(format!(
                "extra_absent_lesion_share {} must be in [0, 1]",
                self.extra_absent_lesion_share
            ));
        }
        if self.extra_targets > 0
            && self
                .joint_targets
                .values()
                .all(|&w| w <= 0.0 || !w.is_finite())
        {
            return bad("extra_targets > 0 needs [joint_targets] with a positive weight".into());
        }
        if let Some(d) = self.weight_average_decay {
            if !(d > 0.0 && d < 1.0) {
                return bad(format!("weight_average_decay {d} must be in (0, 1)"));
            }
        }
        if !positive(self.checkpoint_minutes) {
            return bad("checkpoint_minutes must be positive".into());
        }
        if self
            .families
            .values()
            .chain(self.joint_families.values())
            .chain(self.joint_targets.values())
            .any(|&w| !not_negative(w))
            || !not_negative(self.default_family_weight)
        {
            return bad("family and target weights must be finite and not negative".into());
        }
        Ok(())
    }
}

/// What each 64-bit sample seed is drawn for; the purposes occupy disjoint quarters of the
/// seed space (the top two bits), so no training sample is ever a validation or evaluation one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedPurpose {
    /// Training samples.
    Training = 0,
    /// Validation samples (the plateau rule).
    Validation = 1,
    /// Held-out evaluation samples (`voxelprompt eval`).
    Evaluation = 2,
}

/// The seed of sample `index` of a run seeded `run_seed`, for `purpose`.
pub fn sample_seed(purpose: SeedPurpose, run_seed: u64, index: u64) -> u64 {
    let mut z = run_seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(index)
        .wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((purpose as u64) << 62) | (z >> 2)
}

/// Whether training sample `index` of a run seeded `run_seed` is a program-pretraining one:
/// a pure function of both, like the sample itself, so a resumed run makes the same choices.
pub fn is_program_only(settings: &JointSettings, run_seed: u64, index: u64) -> bool {
    if settings.program_only_fraction <= 0.0 {
        return false;
    }
    // A stream of its own (the run seed is offset) so the choice is independent of the sample.
    let bits = sample_seed(SeedPurpose::Training, run_seed ^ 0x05ee_d0f0_ac1e, index);
    let uniform = (bits >> 9) as f64 / (1u64 << 53) as f64;
    uniform < settings.program_only_fraction
}

/// The purpose a sample seed was drawn for.
pub fn seed_purpose(seed: u64) -> u64 {
    seed >> 62
}

/// Draws task samples: anatomy by index in turn, family by weight, deterministic in
/// (run seed, purpose, index).
pub struct JointSampler {
    catalogues: Vec<Catalogue>,
    families: Vec<(String, f64)>,
    /// The joint training samples' own weights (`[joint_families]`), when given.
    joint_families: Option<Vec<(String, f64)>>,
    /// `[joint_targets]`: (target name, the family that segments it, weight).
    joint_targets: Vec<(String, &'static str, f64)>,
    joint_target_fraction: f64,
    /// `extra_targets` and what each of `joint_targets` asks for as an extra target (its
    /// variants, [`extra_variants`]) with its weight.
    extra_targets: usize,
    extra_absent_lesion_share: f64,
    extra_present_lesion: bool,
    extra_pool: Vec<(Vec<GenerateTarget>, f64)>,
    run_seed: u64,
}

/// Whether `mask` is a lesion class `sample`'s subject has in none of its sessions. A session
/// without a lesion record of the class is decided from the records; only one with such a
/// record (whose components may still be empty there) builds the mask: this runs for every
/// lesion class of the extras' pool at every joint sample.
fn is_absent_lesion(sample: &TaskSample, mask: &MaskDef) -> bool {
    let MaskDef::AnyLesion { class, .. } = mask else {
        return false;
    };
    sample
        .truth
        .sessions
        .iter()
        .enumerate()
        .all(|(k, session)| {
            !session.records.iter().any(|r| r.class == *class)
                || sample.truth.mask(mask, k).map_or(true, |m| m.count() == 0)
        })
}

/// What `[joint_targets]` entry `name` (of `family`, as [`weighted_targets`] found it) asks for
/// as an extra target: every lesion of a class (empty in a subject without one), or a vocabulary
/// target's labels, followed by its left and right halves when the vocabulary has them (an
/// extra asks for one of them at random: the same scan's masks of "thalamus", "left thalamus"
/// and "right thalamus" are what teaches a ϕ its side).
fn extra_variants(cat: &Catalogue, name: &str, family: &str) -> Result<Vec<GenerateTarget>> {
    let extra = |description: String, mask: MaskDef| GenerateTarget {
        name: "extra".into(),
        description,
        mask,
    };
    if let (Some(c), "segment_lesion") = (cat.class_index(name), family) {
        let active = cat.class(c)?;
        let entry = active.entry;
        return Ok(vec![extra(
            entry.canonical.to_string(),
            MaskDef::AnyLesion {
                class: active.class,
                components: entry.proper.to_vec(),
            },
        )]);
    }
    let target = cat.target(cat.target_index(name)?)?;
    let mut variants = vec![extra(
        target.name.clone(),
        MaskDef::Anatomy {
            ids: target.anatomy_ids(),
        },
    )];
    if target.hemisphere == Hemisphere::Both {
        for (side, hemisphere) in [("left", Hemisphere::Left), ("right", Hemisphere::Right)] {
            let half = cat
                .target_index(&format!("{side} {}", target.name))
                .and_then(|i| cat.target(i))
                .ok()
                .filter(|h| h.hemisphere == hemisphere);
            if let Some(half) = half {
                variants.push(extra(
                    half.name.clone(),
                    MaskDef::Anatomy {
                        ids: half.anatomy_ids(),
                    },
                ));
            }
        }
    }
    Ok(variants)
}

/// The targets of `table` with the family that asks for each (`segment_anatomy` for a
/// vocabulary anatomy target, `segment_lesion` for an active lesion class), those of weight 0
/// left out; a name that is neither is an error.
fn weighted_targets(
    cat: &Catalogue,
    table: &BTreeMap<String, f64>,
) -> Result<Vec<(String, &'static str, f64)>> {
    let mut targets = Vec::new();
    for (name, &w) in table {
        let family = if cat.class_index(name).is_some() {
            "segment_lesion"
        } else if cat
            .target_index(name)
            .is_ok_and(|t| cat.anatomy_targets().contains(&t))
        {
            "segment_anatomy"
        } else {
            return Err(TrainError::Settings {
                what: "[joint_targets]".into(),
                problem: format!(
                    "{name:?} is neither an anatomy target of the vocabulary nor an active \
                     lesion class (docs/vocabulary.md lists them)"
                ),
            });
        };
        if w > 0.0 {
            targets.push((name.clone(), family, w));
        }
    }
    Ok(targets)
}

/// The available families of `cat` with their weight in `table` (`default` when not listed),
/// those of weight 0 left out; an unknown name in `table` or no family left is an error.
fn weighted_families(
    cat: &Catalogue,
    table: &BTreeMap<String, f64>,
    default: f64,
    what: &str,
) -> Result<Vec<(String, f64)>> {
    for name in table.keys() {
        if cat.families().iter().all(|f| f.id != name) {
            return Err(TrainError::Settings {
                what: what.into(),
                problem: format!("no task family {name:?} (see `voxelprompt tasks list`)"),
            });
        }
    }
    let mut families = Vec::new();
    for f in cat.families() {
        if cat.unavailable(f.id)?.is_some() {
            continue;
        }
        let w = table.get(f.id).copied().unwrap_or(default);
        if w > 0.0 {
            families.push((f.id.to_string(), w));
        }
    }
    if families.is_empty() {
        return Err(TrainError::Settings {
            what: what.into(),
            problem: "every family has weight 0".into(),
        });
    }
    Ok(families)
}

impl JointSampler {
    /// A sampler over `settings.anatomy` at `spacing_mm`.
    pub fn new(settings: &JointSettings, spacing_mm: f64, run_seed: u64) -> Result<JointSampler> {
        JointSampler::on_grid(settings, [spacing_mm; 3], run_seed)
    }

    /// A sampler whose subjects are synthesised on voxels of `spacing_mm` per axis (a thick
    /// slice axis when one differs; the anatomy template is built at the finest of them).
    pub fn on_grid(
        settings: &JointSettings,
        spacing_mm: [f64; 3],
        run_seed: u64,
    ) -> Result<JointSampler> {
        let config = SynthConfig::builtin()?;
        let anatomies = synth::subject::load_anatomies(&settings.anatomy, &config)?;
        let finest = spacing_mm.iter().copied().fold(f64::INFINITY, f64::min);
        let mut catalogues = Vec::with_capacity(anatomies.len());
        for a in anatomies {
            catalogues.push(Catalogue::new(a, finest)?.with_grid_spacing(spacing_mm)?);
        }
        let _ = Vocabulary::builtin()?;
        let first = catalogues
            .first()
            .ok_or_else(|| TrainError::Sampler("no anatomy to synthesise from".into()))?;
        let families = weighted_families(
            first,
            &settings.families,
            settings.default_family_weight,
            "[families]",
        )?;
        let joint_families = if settings.joint_families.is_empty() {
            None
        } else {
            Some(weighted_families(
                first,
                &settings.joint_families,
                0.0,
                "[joint_families]",
            )?)
        };
        let joint_targets = weighted_targets(first, &settings.joint_targets)?;
        let extra_pool = joint_targets
            .iter()
            .map(|(name, family, w)| Ok((extra_variants(first, name, family)?, *w)))
            .collect::<Result<Vec<_>>>()?;
        Ok(JointSampler {
            catalogues,
            families,
            joint_families,
            joint_targets,
            joint_target_fraction: settings.joint_target_fraction,
            extra_targets: settings.extra_targets,
            extra_absent_lesion_share: settings.extra_absent_lesion_share,
            extra_present_lesion: settings.extra_present_lesion,
            extra_pool,
            run_seed,
        })
    }

    /// The extra targets of joint training sample `index` (`extra_targets` of them, fewer
    /// when the pool runs out): `[joint_targets]` entries drawn by weight without repeats from a
    /// stream of their own, each as one of its variants at random (a bilateral target or its
    /// left or right half), leaving out the targets `sample`'s program generates itself and
    /// all but `extra_absent_lesion_share` of the lesion classes its subject lacks; with
    /// `extra_present_lesion`, a lesion class the subject has comes first.
    pub fn extra_targets(&self, sample: &TaskSample, index: u64) -> Vec<GenerateTarget> {
        if self.extra_targets == 0 {
            return Vec::new();
        }
        let own: Vec<&str> = sample
            .mods()
            .filter_map(|m| match m {
                ModMeaning::Generate { target } => Some(target.description.as_str()),
                ModMeaning::Encode { .. } => None,
            })
            .collect();
        let mut pool: Vec<(Vec<&GenerateTarget>, f64)> = self
            .extra_pool
            .iter()
            .map(|(variants, w)| {
                let left: Vec<&GenerateTarget> = variants
                    .iter()
                    .filter(|t| !own.contains(&t.description.as_str()))
                    .collect();
                (left, *w)
            })
            .filter(|(variants, _)| !variants.is_empty())
            .collect();
        let seed = sample_seed(SeedPurpose::Training, self.run_seed ^ 0xe7a5_7a46, index);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut extras = Vec::with_capacity(self.extra_targets);
        if self.extra_present_lesion {
            let present = pool.iter().position(|(variants, _)| {
                variants.iter().any(|t| {
                    matches!(t.mask, MaskDef::AnyLesion { .. })
                        && !is_absent_lesion(sample, &t.mask)
                })
            });
            if let Some(i) = present {
                let (variants, _) = pool.remove(i);
                extras.push(variants[rng.random_range(0..variants.len())].clone());
            }
        }
        while extras.len() < self.extra_targets && !pool.is_empty() {
            let pick = pick_weighted(&mut rng, pool.iter().map(|(_, w)| *w));
            let (variants, _) = pool.remove(pick);
            let target = variants[rng.random_range(0..variants.len())];
            let keep = rng.random::<f64>() < self.extra_absent_lesion_share;
            if keep || !is_absent_lesion(sample, &target.mask) {
                extras.push(target.clone());
            }
        }
        extras
    }

    /// The catalogues, one per anatomy.
    pub fn catalogues(&self) -> &[Catalogue] {
        &self.catalogues
    }

    /// Sample `index` for `purpose`; `Ok(None)` when no subject fitting the drawn task was
    /// found (the index is skipped, deterministically).
    pub fn sample(&self, purpose: SeedPurpose, index: u64) -> Result<Option<TaskSample>> {
        self.sample_from(&self.families, purpose, index)
    }

    /// Training sample `index`, drawn from the joint samples' family weights
    /// (`[joint_families]`) unless it is a program-only one or there are none. A share
    /// `joint_target_fraction` of the joint ones asks for one of `[joint_targets]` instead.
    pub fn training_sample(&self, index: u64, program_only: bool) -> Result<Option<TaskSample>> {
        if !program_only {
            if let Some(target) = self.focus_target(index) {
                return self.target_sample(target, index);
            }
        }
        let families = match (&self.joint_families, program_only) {
            (Some(joint), false) => joint,
            _ => &self.families,
        };
        self.sample_from(families, SeedPurpose::Training, index)
    }

    /// The `[joint_targets]` entry joint sample `index` asks for, if it is one of the focused
    /// share: drawn from a stream of its own, so runs without the table draw as before.
    fn focus_target(&self, index: u64) -> Option<&(String, &'static str, f64)> {
        if self.joint_target_fraction <= 0.0 || self.joint_targets.is_empty() {
            return None;
        }
        let seed = sample_seed(SeedPurpose::Training, self.run_seed ^ 0x7a4e_c0de, index);
        let mut rng = StdRng::seed_from_u64(seed);
        if rng.random::<f64>() >= self.joint_target_fraction {
            return None;
        }
        let pick = pick_weighted(&mut rng, self.joint_targets.iter().map(|t| t.2));
        self.joint_targets.get(pick)
    }

    fn target_sample(
        &self,
        (name, family, _): &(String, &'static str, f64),
        index: u64,
    ) -> Result<Option<TaskSample>> {
        let drawn = sample_asking_for(
            &self.catalogues,
            SeedPurpose::Training,
            self.run_seed,
            index,
            family,
            name,
        )?;
        Ok(drawn.map(|(sample, _)| sample))
    }

    fn sample_from(
        &self,
        families: &[(String, f64)],
        purpose: SeedPurpose,
        index: u64,
    ) -> Result<Option<TaskSample>> {
        let seed = sample_seed(purpose, self.run_seed, index);
        let mut rng = StdRng::seed_from_u64(seed);
        let family = &families[pick_weighted(&mut rng, families.iter().map(|(_, w)| *w))].0;
        let cat = &self.catalogues[(index as usize) % self.catalogues.len()];
        // Training and validation never see a family's held-out prompt template.
        let split = match purpose {
            SeedPurpose::Evaluation => TemplateSplit::Any,
            _ => TemplateSplit::Training,
        };
        match cat.sample_split(family, seed, split) {
            Ok(s) => Ok(Some(s)),
            Err(TaskError::NoSample { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// An index drawn in proportion to `weights` (one uniform draw from `rng`; the last index when
/// rounding leaves the draw past the end).
fn pick_weighted(rng: &mut StdRng, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut pick = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        if pick < w {
            return i;
        }
        pick -= w;
        last = i;
    }
    last
}

/// The sample of `index` for `purpose` (anatomies in turn, so every one contributes) that asks
/// for `target` through `family`, prompted from the training templates, with its catalogue;
/// `None` when no subject fitted. Training's `[joint_targets]` and the evaluation's per-target
/// experiment draw with it.
pub(crate) fn sample_asking_for<'c>(
    cats: &'c [Catalogue],
    purpose: SeedPurpose,
    run_seed: u64,
    index: u64,
    family: &str,
    target: &str,
) -> Result<Option<(TaskSample, &'c Catalogue)>> {
    let cat = &cats[(index as usize) % cats.len()];
    let seed = sample_seed(purpose, run_seed, index);
    let keep = |s: &Scenario| cat.scenario_asks_for(s, target);
    match cat.sample_where(family, seed, TemplateSplit::Training, &keep) {
        Ok(s) => Ok(Some((s, cat))),
        Err(TaskError::NoSample { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A new tokenizer trained on the text of `n` task samples of `cat`.
pub fn train_tokenizer(
    cat: &Catalogue,
    n: usize,
    vocab_size: usize,
    seed: u64,
) -> Result<AgentTokenizer> {
    let mut text = Vec::new();
    tasks::corpus::write_corpus(cat, n.max(1), seed, &mut text)?;
    let text = String::from_utf8_lossy(&text).to_string();
    Ok(AgentTokenizer::train(text.lines(), vocab_size)?)
}

/// The run's progress, saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Run seed (weights and samples).
    pub seed: u64,
    /// Optimiser steps taken.
    pub step: u64,
    /// Index of the next training sample.
    pub next_sample: u64,
    /// Training samples used (skipped indices not counted).
    pub samples: u64,
    /// Current learning rate.
    pub learning_rate: f64,
    /// Best validation loss so far.
    pub best_validation: Option<f64>,
    /// Best free-running validation success so far (the model in `RUN/best/`).
    #[serde(default)]
    pub best_free_running: Option<f64>,
    /// Validations since the best one.
    pub plateau: usize,
    /// Training wall time so far, seconds (all sessions).
    pub seconds: f64,
    /// The settings of the run.
    pub settings: JointSettings,
    /// Progress of the moving average of the weights, when the run keeps one.
    #[serde(default)]
    pub average: Option<AverageState>,
}

/// One row of `train.csv`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRow {
    /// Optimiser step.
    pub step: u64,
    /// Training samples used so far.
    pub samples: u64,
    /// Training wall time so far, seconds.
    pub seconds: f64,
    /// Learning rate of this step.
    pub learning_rate: f64,
    /// Mean total loss of this step's samples.
    pub loss: f64,
    /// Mean cross-entropy.
    pub cross_entropy: f64,
    /// Mean Σ Dice loss per sample.
    pub dice: f64,
    /// Mean Σ binary cross-entropy of generated volumes per sample.
    pub bce: f64,
    /// Mean scored `generate` calls per sample (Dice per volume = dice / generated).
    pub generated: f64,
    /// Mean naming loss of the target names read from ϕ ([`crate::phi_namer`]), over the
    /// samples with a generator marker (`None`: none had one, or there is no namer).
    pub phi_name: Option<f64>,
    /// Mean side gate teaching term ([`crate::joint::side_gate_term`]) over the samples with
    /// a generator marker (`None`: none had one, or the term is off).
    pub side_gate: Option<f64>,
    /// Mean program steps that reported an error, per sample.
    pub step_errors: f64,
    /// Validation loss, when this step validated.
    pub validation: Option<f64>,
    /// Share of the free-running validation samples passed, when this step validated.
    pub free_running: Option<f64>,
    /// Mean seconds per sample by stage over this step.
    pub stages: StageSeconds,
}

/// The CSV header of `train.csv`.
pub const CSV_HEADER: &str = "step,samples,seconds,learning_rate,loss,cross_entropy,dice,step_errors,validation,synthesis_s,agent_forward_s,runtime_s,vision_forward_s,loss_s,backward_s,bce,generated,free_running_success,phi_name,side_gate";

impl LogRow {
    /// The row as CSV.
    pub fn csv(&self) -> String {
        let s = &self.stages;
        format!(
            "{},{},{:.1},{:e},{:.5},{:.5},{:.5},{:.3},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.5},{:.2},{},{},{}",
            self.step,
            self.samples,
            self.seconds,
            self.learning_rate,
            self.loss,
            self.cross_entropy,
            self.dice,
            self.step_errors,
            self.validation
                .map(|v| format!("{v:.5}"))
                .unwrap_or_default(),
            s.synthesis,
            s.agent_forward,
            s.runtime,
            s.vision_forward,
            s.loss,
            s.backward,
            self.bce,
            self.generated,
            self.free_running
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default(),
            self.phi_name
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default(),
            self.side_gate
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default()
        )
    }
}

/// The optimisation state: the model on an autodiff device, one Adam and one gradient
/// accumulator for each network (their learning rates differ).
pub struct JointTrainer {
    model: Model,
    optimizer: ModuleOptimizer,
    vision_optimizer: ModuleOptimizer,
    accumulator: GradientsAccumulator<AgentModel>,
    vision_accumulator: GradientsAccumulator<Unet>,
    /// The training-only probe naming each generator's target from its ϕ, with its Adam.
    namer: PhiNamer,
    namer_optimizer: ModuleOptimizer,
    namer_accumulator: GradientsAccumulator<PhiNamer>,
    /// Devices of the data-parallel replicas ([`JointTrainer::with_devices`]); empty: none.
    replica_devices: Vec<Device>,
    /// The moving average of the weights (`weight_average_decay`), off the autodiff graph;
    /// its progress is `state.average`.
    average: Option<JointNet>,
    /// The run's progress.
    pub state: RunState,
}

fn optimizer(settings: &JointSettings) -> ModuleOptimizer {
    AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(
            settings.grad_clip_norm as f32,
        )))
        .init()
}

/// The moving average of the weights in a checkpoint directory (a loadable [`Model`]).
pub const AVERAGE_DIR: &str = "average";
/// Adam's state of the agent in a checkpoint directory.
const AGENT_OPTIMIZER_FILE: &str = "optimizer.bin";
/// Adam's state of the vision network in a checkpoint directory.
const VISION_OPTIMIZER_FILE: &str = "vision-optimizer.bin";
/// Adam's state of the ϕ namer in a checkpoint directory.
const NAMER_OPTIMIZER_FILE: &str = "phi-namer-optimizer.bin";

/// One sample's gradients (already divided by the accumulation) and loss values.
struct SampleGradients {
    agent: GradientsParams,
    vision: GradientsParams,
    namer: Option<GradientsParams>,
    loss: f64,
    phi_name: Option<f64>,
    side_gate: Option<f64>,
    cross_entropy: f64,
    dice: f64,
    bce: f64,
    generated: usize,
    step_errors: usize,
    /// The sample's family and seed with the scores of its `generate` calls.
    masks: Vec<MaskRow>,
    seconds: StageSeconds,
}

/// A training sample as an optimiser step takes it.
struct Drawn {
    sample: TaskSample,
    /// Program pretraining (oracle vision, cross-entropy only).
    program_only: bool,
    /// Its extra targets ([`JointSampler::extra_targets`]; none for a program-only one).
    extras: Vec<GenerateTarget>,
}

/// One row of `masks.csv`: a scored `generate` call of a training sample.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskRow {
    /// The task family of the sample, prefixed `extra:` for one of its extra targets.
    pub family: String,
    /// The sample's seed (redraws it).
    pub seed: u64,
    /// How the mask came out.
    pub score: MaskScore,
}

/// The CSV header of `masks.csv` (one row per scored `generate` call of a training step).
pub const MASKS_CSV_HEADER: &str =
    "step,family,seed,target,truth_voxels,predicted_voxels,dice,soft_dice_loss";

impl MaskRow {
    /// The row as CSV, at optimiser step `step` (the target is quoted: it is free text).
    pub fn csv(&self, step: u64) -> String {
        let s = &self.score;
        format!(
            "{step},{},{},\"{}\",{},{},{:.4},{:.4}",
            self.family,
            self.seed,
            s.target.replace('"', "'"),
            s.truth_voxels,
            s.predicted_voxels,
            s.dice,
            s.soft_dice_loss
        )
    }
}

/// Forward and backward on one sample with `ctx.net` (the model or a replica of it).
fn sample_gradients(
    ctx: &LossContext,
    drawn: &Drawn,
    accumulation: f64,
) -> Result<SampleGradients> {
    let sample = &drawn.sample;
    let mut loss = if drawn.program_only {
        program_loss(ctx, sample)?
    } else {
        sample_loss_with_extras(ctx, sample, &drawn.extras)?
    };
    let started = Instant::now();
    let mut grads = loss.total.clone().div_scalar(accumulation).backward();
    let vision = GradientsParams::from_module(&mut grads, &ctx.net.vision);
    let agent = GradientsParams::from_module(&mut grads, &ctx.net.agent);
    let namer = ctx
        .phi_namer
        .map(|(namer, _)| GradientsParams::from_module(&mut grads, namer));
    loss.seconds.backward = started.elapsed().as_secs_f64();
    Ok(SampleGradients {
        agent,
        vision,
        namer,
        loss: crate::joint::scalar(loss.total)?,
        phi_name: loss.phi_name,
        side_gate: loss.side,
        cross_entropy: loss.cross_entropy,
        dice: loss.dice,
        bce: loss.bce,
        generated: loss.generated,
        step_errors: loss.step_errors,
        masks: loss
            .masks
            .into_iter()
            .map(|score| MaskRow {
                family: if score.extra {
                    format!("extra:{}", sample.family)
                } else {
                    sample.family.clone()
                },
                seed: sample.seed,
                score,
            })
            .collect(),
        seconds: loss.seconds,
    })
}

/// Aggregates of the samples of one optimiser step.
#[derive(Default)]
struct StepSums {
    n: usize,
    loss: f64,
    cross_entropy: f64,
    dice: f64,
    bce: f64,
    generated: f64,
    /// Σ naming loss and the samples it was measured on.
    phi_name: f64,
    named: usize,
    /// Σ side gate term and the samples it was measured on.
    side_gate: f64,
    sided: usize,
    step_errors: f64,
    stages: StageSeconds,
    masks: Vec<MaskRow>,
}

impl JointTrainer {
    /// A trainer for `model` (moved to the autodiff flavour of `device`).
    pub fn new(
        model: Model,
        settings: JointSettings,
        seed: u64,
        device: &Device,
    ) -> Result<JointTrainer> {
        settings.validate("joint settings")?;
        let model = settings.upgrade_model(model);
        // `train()` turns on autodiff with each parameter's recorded training state; a model
        // built or loaded on a plain device only records it.
        let model = Model {
            net: model.net.to_device(device).train().with_stable_ids(),
            ..model
        };
        let namer = fresh_namer(&model, device);
        Ok(JointTrainer {
            model,
            optimizer: optimizer(&settings),
            vision_optimizer: optimizer(&settings),
            accumulator: GradientsAccumulator::new(),
            vision_accumulator: GradientsAccumulator::new(),
            namer,
            namer_optimizer: optimizer(&settings),
            namer_accumulator: GradientsAccumulator::new(),
            replica_devices: Vec::new(),
            state: RunState {
                seed,
                step: 0,
                next_sample: 0,
                samples: 0,
                learning_rate: settings.learning_rate,
                best_validation: None,
                best_free_running: None,
                plateau: 0,
                seconds: 0.0,
                settings,
                average: None,
            },
            average: None,
        })
    }

    /// The current model for inference (no autodiff).
    pub fn model(&self) -> Model {
        self.model.valid()
    }

    /// The model that is validated, kept as the run's best and shipped: the moving average of
    /// the weights when the run keeps one, else the current weights.
    pub fn validated_model(&self) -> Model {
        match &self.average {
            Some(net) => Model {
                net: net.clone(),
                tokenizer: self.model.tokenizer.clone(),
                config: self.model.config.clone(),
            },
            None => self.model(),
        }
    }

    /// Moves the moving average toward the weights of the step just taken (starting it from
    /// them when there is none yet), or drops it when the settings keep none.
    fn update_average(&mut self) -> Result<()> {
        let Some(decay) = self.state.settings.weight_average_decay else {
            self.average = None;
            self.state.average = None;
            return Ok(());
        };
        match (self.average.take(), self.state.average.as_mut()) {
            (Some(average), Some(progress)) => {
                self.average = Some(progress.update(average, &self.model.net, decay)?);
            }
            _ => {
                self.average = Some(self.model.net.valid());
                self.state.average = Some(AverageState::start(self.state.step));
            }
        }
        Ok(())
    }

    /// Trains data-parallel on `devices` (burn's multi-device pattern, as burn-train does it):
    /// every optimiser step, each device gets a replica of the model (`Module::fork`, the same
    /// parameter ids) and takes the step's samples from a shared queue on a thread of its own;
    /// their gradients are moved to the main device and summed in sample order, so the step
    /// equals the one-device step. Several entries may name the same device (`cpu,cpu`). One
    /// device or none: the samples run one after another on the main model.
    pub fn with_devices(mut self, devices: Vec<Device>) -> JointTrainer {
        self.replica_devices = if devices.len() > 1 {
            devices
        } else {
            Vec::new()
        };
        self
    }

    /// Forward and backward on every sample of one optimiser step (`accumulation` of them,
    /// with whether each is a program-only one), then the step.
    fn train_step(&mut self, batch: &[Drawn], sums: &mut StepSums) -> Result<()> {
        let settings = &self.state.settings;
        let scale = settings.accumulation as f64;
        let naming = settings.phi_name_weight > 0.0;
        let per_sample = |net: &JointNet, namer: &PhiNamer, drawn: &Drawn| {
            let ctx = LossContext {
                net,
                tokenizer: &self.model.tokenizer,
                preprocessing: &self.model.config.preprocessing,
                dice_weight: settings.dice_weight,
                bce_weight: settings.bce_weight,
                lesion_positive_weight_max: settings.lesion_positive_weight_max,
                side_gate_weight: settings.side_gate_weight,
                phi_namer: naming.then_some((namer, settings.phi_name_weight)),
            };
            sample_gradients(&ctx, drawn, scale)
        };
        let results: Vec<SampleGradients> = if self.replica_devices.is_empty() {
            batch
                .iter()
                .map(|d| per_sample(&self.model.net, &self.namer, d))
                .collect::<Result<_>>()?
        } else {
            let main = self.model.net.agent.device();
            let replicas: Vec<(JointNet, PhiNamer)> = self
                .replica_devices
                .iter()
                .map(|d| {
                    let d = d.clone().autodiff();
                    (self.model.net.clone().fork(&d), self.namer.clone().fork(&d))
                })
                .collect();
            crate::parallel::ordered_jobs_with(
                replicas,
                batch.len(),
                |(net, namer), j, emit| {
                    let mut g = per_sample(net, namer, &batch[j])?;
                    g.agent = g.agent.to_device(&main, &net.agent);
                    g.vision = g.vision.to_device(&main, &net.vision);
                    g.namer = g.namer.map(|n| n.to_device(&main, &*namer));
                    emit(g);
                    Ok(())
                },
                |_, _| {},
            )?
            .into_iter()
            .flatten()
            .collect()
        };
        for g in results {
            self.vision_accumulator
                .accumulate(&self.model.net.vision, g.vision);
            self.accumulator.accumulate(&self.model.net.agent, g.agent);
            if let Some(n) = g.namer {
                self.namer_accumulator.accumulate(&self.namer, n);
            }
            self.state.samples += 1;
            if let Some(v) = g.phi_name {
                sums.phi_name += v;
                sums.named += 1;
            }
            if let Some(v) = g.side_gate {
                sums.side_gate += v;
                sums.sided += 1;
            }
            sums.n += 1;
            sums.loss += g.loss;
            sums.cross_entropy += g.cross_entropy;
            sums.dice += g.dice;
            sums.bce += g.bce;
            sums.generated += g.generated as f64;
            sums.step_errors += g.step_errors as f64;
            sums.stages.add(&g.seconds);
            sums.masks.extend(g.masks);
        }
        let JointNet { agent, vision } = self.model.net.clone();
        let lr = self.state.learning_rate;
        let vision_lr = self.state.settings.vision_rate(lr);
        let phi_lr = self.state.settings.phi_rate(lr);
        // The ϕ head's parameters (matched by id) take their own rate, the rest the agent's.
        let agent_lr: ModuleLearningRate = if phi_lr == lr {
            lr.into()
        } else {
            ModuleLrScheduler::new(lr)
                .with_group(ParamGroup::ids_from_module(agent.phi_head.clone()), phi_lr)
                .step()
        };
        self.model.net = JointNet {
            agent: self
                .optimizer
                .step(agent_lr, agent, self.accumulator.grads()),
            vision: self
                .vision_optimizer
                .step(vision_lr, vision, self.vision_accumulator.grads()),
        };
        if naming {
            self.namer = self.namer_optimizer.step(
                ModuleLearningRate::from(self.state.settings.phi_name_rate(lr)),
                self.namer.clone(),
                self.namer_accumulator.grads(),
            );
        }
        self.state.step += 1;
        self.update_average()
    }

    /// Mean loss over `samples` without gradients.
    pub fn validation_loss(&self, samples: &[TaskSample]) -> Result<f64> {
        if samples.is_empty() {
            return Ok(f64::NAN);
        }
        let model = self.validated_model();
        let ctx = LossContext {
            net: &model.net,
            tokenizer: &model.tokenizer,
            preprocessing: &model.config.preprocessing,
            dice_weight: self.state.settings.dice_weight,
            bce_weight: self.state.settings.bce_weight,
            lesion_positive_weight_max: self.state.settings.lesion_positive_weight_max,
            side_gate_weight: 0.0,
            // The validation loss measures what is shipped; the namer is not.
            phi_namer: None,
        };
        let mut total = 0.0;
        for s in samples {
            total += crate::joint::scalar(sample_loss(&ctx, s)?.total)?;
        }
        Ok(total / samples.len() as f64)
    }

    /// Applies the plateau rule to a new validation loss.
    fn on_validation(&mut self, loss: f64) {
        let s = &mut self.state;
        match s.best_validation {
            Some(best) if loss >= best - 1e-4 * best.abs().max(1.0) => {
                s.plateau += 1;
                if s.plateau >= s.settings.plateau_patience.max(1) {
                    s.learning_rate /= 2.0;
                    s.plateau = 0;
                }
            }
            _ => {
                s.best_validation = Some(loss);
                s.plateau = 0;
            }
        }
    }

    /// Writes the checkpoint into `run_dir/checkpoint` (see the module docs).
    pub fn save_checkpoint(&self, run_dir: &Path) -> Result<()> {
        let staging = run_dir.join(".checkpoint.partial");
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
        self.model().save(&staging.join("model"))?;
        if self.average.is_some() {
            self.validated_model().save(&staging.join(AVERAGE_DIR))?;
        }
        self.namer.save(&staging.join(NAMER_FILE))?;
        for (file, optimizer) in [
            (AGENT_OPTIMIZER_FILE, &self.optimizer),
            (VISION_OPTIMIZER_FILE, &self.vision_optimizer),
            (NAMER_OPTIMIZER_FILE, &self.namer_optimizer),
        ] {
            let path = staging.join(file);
            optimizer
                .to_record()
                .save(&path)
                .map_err(|e| TrainError::checkpoint(&path, format!("{e:?}")))?;
        }
        let state = staging.join("state.json");
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|e| TrainError::Backend(e.to_string()))?;
        std::fs::write(&state, text).map_err(|e| TrainError::io(&state, e))?;
        let dir = run_dir.join("checkpoint");
        let old = run_dir.join(".checkpoint.old");
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(|e| TrainError::io(&dir, e))?;
        }
        std::fs::rename(&staging, &dir).map_err(|e| TrainError::io(&dir, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        Ok(())
    }

    /// A trainer continuing the checkpoint of `run_dir` on `device`.
    pub fn resume(run_dir: &Path, device: &Device) -> Result<JointTrainer> {
        JointTrainer::resume_with(run_dir, device, None)
    }

    /// [`JointTrainer::resume`], with `settings` (when given) replacing the run's from its
    /// next step on: the weights, optimiser moments and sample counter carry over; the sample
    /// mix, loss weights and schedule are the new ones. The learning rate lowered by the
    /// plateau rule carries over too, unless the new settings change `learning_rate`: then
    /// the schedule restarts at the new rate, with no best validation loss yet.
    pub fn resume_with(
        run_dir: &Path,
        device: &Device,
        settings: Option<JointSettings>,
    ) -> Result<JointTrainer> {
        let mut dir = run_dir.join("checkpoint");
        if !dir.is_dir() {
            // A crash between the two renames of `save_checkpoint` leaves only the old one.
            let old = run_dir.join(".checkpoint.old");
            if old.is_dir() {
                dir = old;
            } else {
                return Err(TrainError::checkpoint(
                    run_dir,
                    "holds no checkpoint to resume (start a run with --out)",
                ));
            }
        }
        let state_path = dir.join("state.json");
        let text =
            std::fs::read_to_string(&state_path).map_err(|e| TrainError::io(&state_path, e))?;
        let mut state: RunState = serde_json::from_str(&text)
            .map_err(|e| TrainError::checkpoint(&state_path, e.to_string()))?;
        if let Some(settings) = settings {
            settings.validate("the new settings")?;
            if settings.learning_rate != state.settings.learning_rate {
                // The schedule restarts: the best validation loss of the old one (perhaps on
                // other validation samples) would halve the new rate within `patience`
                // validations, as it did to small-6 at step 2 100.
                state.learning_rate = settings.learning_rate;
                state.plateau = 0;
                state.best_validation = None;
            }
            state.settings = settings;
        }
        let (model, _) = Model::load(&dir.join("model"), device)?;
        let mut trainer = JointTrainer::new(model, state.settings.clone(), state.seed, device)?;
        let load = |file: &str| {
            let path = dir.join(file);
            burn::optim::OptimizerRecord::load(&path)
                .map_err(|e| TrainError::checkpoint(&path, format!("cannot read: {e:?}")))
        };
        trainer.optimizer = optimizer(&state.settings).load_record(load(AGENT_OPTIMIZER_FILE)?);
        // Checkpoints from before the split kept one Adam state for both networks, keyed by
        // parameter id; each optimiser finds its own parameters' moments in it.
        let vision_file = if dir.join(VISION_OPTIMIZER_FILE).is_file() {
            VISION_OPTIMIZER_FILE
        } else {
            AGENT_OPTIMIZER_FILE
        };
        trainer.vision_optimizer = optimizer(&state.settings).load_record(load(vision_file)?);
        // Checkpoints from before the namer have none: it starts fresh (zero weights).
        if dir.join(NAMER_FILE).is_file() {
            let config = &trainer.model.config.agent;
            trainer.namer =
                stable_namer_ids(PhiNamer::load(&dir.join(NAMER_FILE), config, device)?.train());
            if dir.join(NAMER_OPTIMIZER_FILE).is_file() {
                trainer.namer_optimizer =
                    optimizer(&state.settings).load_record(load(NAMER_OPTIMIZER_FILE)?);
            }
        }
        // The average carries over when the checkpoint has one and the settings still keep
        // one; otherwise the next step starts it afresh.
        let average_dir = dir.join(AVERAGE_DIR);
        if state.settings.weight_average_decay.is_some()
            && state.average.is_some()
            && average_dir.is_dir()
        {
            let (average, _) = Model::load(&average_dir, device)?;
            trainer.average = Some(state.settings.upgrade_model(average).net);
        } else {
            state.average = None;
        }
        trainer.state = state;
        Ok(trainer)
    }
}

/// A zero namer for `model`'s agent on the autodiff flavour of `device`.
fn fresh_namer(model: &Model, device: &Device) -> PhiNamer {
    stable_namer_ids(PhiNamer::new(&model.config.agent, device).train())
}

/// The namer with parameter ids derived from their path under `phi_namer`, so its Adam state
/// saved by one process matches the parameters of the next (as [`JointNet::with_stable_ids`]).
fn stable_namer_ids(namer: PhiNamer) -> PhiNamer {
    crate::model::with_stable_ids_under(namer, "phi_namer")
}

/// How to run [`train`].
#[derive(Clone, Debug)]
pub struct TrainJob {
    /// The run directory (checkpoint, `train.csv`).
    pub out: PathBuf,
    /// Wall-time budget of this invocation, minutes.
    pub minutes: Option<f64>,
    /// Stop when the run has taken this many optimiser steps in total.
    pub steps: Option<u64>,
}

/// What [`train`] did in this invocation.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Rows logged in this invocation (one per optimiser step).
    pub rows: Vec<LogRow>,
    /// Optimiser steps of the whole run.
    pub step: u64,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// Whether it stopped because `stop` was raised.
    pub interrupted: bool,
}

/// Samples synthesised ahead of the optimiser.
const PREFETCH: usize = 2;

/// Trains `trainer` until the budget of `job` is spent or `stop` is raised, checkpointing into
/// `job.out` periodically and at the end; `on_row` sees every optimiser step's row.
pub fn train(
    trainer: &mut JointTrainer,
    job: &TrainJob,
    stop: &AtomicBool,
    mut on_row: impl FnMut(&LogRow),
) -> Result<TrainSummary> {
    std::fs::create_dir_all(&job.out).map_err(|e| TrainError::io(&job.out, e))?;
    let csv_path = job.out.join("train.csv");
    let mut csv = open_log(&csv_path, CSV_HEADER, trainer.state.step)?;
    let masks_path = job.out.join("masks.csv");
    let mut masks_csv = open_log(&masks_path, MASKS_CSV_HEADER, trainer.state.step)?;

    let settings = trainer.state.settings.clone();
    let spacing = trainer.model.config.preprocessing.spacing_mm;
    let seed = trainer.state.seed;
    // One sampler (the anatomies are loaded once) for validation and the prefetch thread.
    let sampler = JointSampler::new(&settings, spacing, seed)?;
    let validation: Vec<TaskSample> = if settings.validate_every > 0 {
        let mut out = Vec::new();
        let mut i = 0u64;
        while out.len() < settings.validation_samples
            && i < 10 * settings.validation_samples as u64 + 10
        {
            if let Some(s) = sampler.sample(SeedPurpose::Validation, i)? {
                out.push(s);
            }
            i += 1;
        }
        out
    } else {
        Vec::new()
    };

    let started = Instant::now();
    let seconds_before = trainer.state.seconds;
    let mut last_checkpoint = Instant::now();
    let budget_s = job.minutes.map(|m| m * 60.0).unwrap_or(f64::INFINITY);
    let max_steps = job.steps.unwrap_or(u64::MAX);
    let mut rows = Vec::new();
    let mut interrupted = false;
    let first_index = trainer.state.next_sample;
    // Index of the first sample of the optimiser step being accumulated.
    let mut step_start = first_index;

    std::thread::scope(|scope| -> Result<()> {
        type Item = (u64, Result<Option<TaskSample>>, f64);
        let (sender, receiver) = mpsc::sync_channel::<Item>(PREFETCH);
        let sampler = &sampler;
        let settings = &settings;
        scope.spawn(move || {
            for k in first_index.. {
                let t = Instant::now();
                let s = sampler.training_sample(k, is_program_only(settings, seed, k));
                let failed = s.is_err();
                if sender.send((k, s, t.elapsed().as_secs_f64())).is_err() || failed {
                    break;
                }
            }
        });

        let mut sums = StepSums::default();
        // The samples of the step being gathered, with whether each is program-only.
        let mut batch: Vec<Drawn> = Vec::new();
        while trainer.state.step < max_steps {
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            if batch.is_empty() && started.elapsed().as_secs_f64() >= budget_s {
                break;
            }
            let (k, sample, synth_s) = receiver
                .recv()
                .map_err(|e| TrainError::Sampler(e.to_string()))?;
            let sample = sample?;
            trainer.state.next_sample = k + 1;
            let Some(sample) = sample else { continue };
            sums.stages.synthesis += synth_s;
            let program_only = is_program_only(settings, seed, k);
            let extras = if program_only {
                Vec::new()
            } else {
                sampler.extra_targets(&sample, k)
            };
            batch.push(Drawn {
                sample,
                program_only,
                extras,
            });
            if batch.len() < settings.accumulation {
                continue;
            }
            trainer.train_step(&batch, &mut sums)?;
            batch.clear();
            step_start = trainer.state.next_sample;
            trainer.state.seconds = seconds_before + started.elapsed().as_secs_f64();
            let mut validation_loss = None;
            let mut free_running = None;
            if settings.validate_every > 0
                && trainer
                    .state
                    .step
                    .is_multiple_of(settings.validate_every as u64)
            {
                let v = trainer.validation_loss(&validation)?;
                trainer.on_validation(v);
                validation_loss = Some(v);
                let n = settings.free_running_samples.min(validation.len());
                if n > 0 {
                    let model = trainer.validated_model();
                    let success = crate::eval::oracle_success(&model, &validation[..n])?;
                    free_running = Some(success);
                    if trainer.state.best_free_running.is_none_or(|b| success > b) {
                        trainer.state.best_free_running = Some(success);
                        save_best(&model, &job.out, trainer.state.step, success)?;
                    }
                }
            }
            let n = sums.n.max(1) as f64;
            let row = LogRow {
                step: trainer.state.step,
                samples: trainer.state.samples,
                seconds: trainer.state.seconds,
                learning_rate: trainer.state.learning_rate,
                loss: sums.loss / n,
                cross_entropy: sums.cross_entropy / n,
                dice: sums.dice / n,
                bce: sums.bce / n,
                generated: sums.generated / n,
                phi_name: (sums.named > 0).then(|| sums.phi_name / sums.named as f64),
                side_gate: (sums.sided > 0).then(|| sums.side_gate / sums.sided as f64),
                step_errors: sums.step_errors / n,
                validation: validation_loss,
                free_running,
                stages: sums.stages.scaled(n),
            };
            writeln!(csv, "{}", row.csv()).map_err(|e| TrainError::io(&csv_path, e))?;
            for mask in &sums.masks {
                writeln!(masks_csv, "{}", mask.csv(row.step))
                    .map_err(|e| TrainError::io(&masks_path, e))?;
            }
            on_row(&row);
            rows.push(row);
            sums = StepSums::default();
            if last_checkpoint.elapsed().as_secs_f64() >= settings.checkpoint_minutes * 60.0 {
                trainer.save_checkpoint(&job.out)?;
                last_checkpoint = Instant::now();
            }
        }
        // A partial step is dropped: the checkpoint holds whole optimiser steps only, and the
        // next run resumes at the first sample of the unfinished step.
        if !batch.is_empty() {
            trainer.state.next_sample = step_start;
        }
        drop(receiver);
        Ok(())
    })?;

    trainer.state.seconds = seconds_before + started.elapsed().as_secs_f64();
    trainer.save_checkpoint(&job.out)?;
    Ok(TrainSummary {
        step: trainer.state.step,
        rows,
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
    })
}

/// Sub-directory of a run holding the model with the best free-running validation success.
pub const BEST_DIR: &str = "best";

/// Keeps `model` as the run's best (`RUN/best/model`, with `best.json` saying its step and
/// success), replacing the previous best only once it is completely written.
fn save_best(model: &Model, run_dir: &Path, step: u64, success: f64) -> Result<()> {
    let staging = run_dir.join(".best.partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
    model.save(&staging.join("model"))?;
    let note = serde_json::json!({ "step": step, "free_running_success": success });
    let path = staging.join("best.json");
    std::fs::write(&path, note.to_string()).map_err(|e| TrainError::io(&path, e))?;
    let best = run_dir.join(BEST_DIR);
    if best.exists() {
        std::fs::remove_dir_all(&best).map_err(|e| TrainError::io(&best, e))?;
    }
    std::fs::rename(&staging, &best).map_err(|e| TrainError::io(&best, e))?;
    Ok(())
}

/// Opens the log `path` for appending, after [`trim_csv`]; a new or empty one gets `header`.
fn open_log(path: &Path, header: &str, step: u64) -> Result<std::fs::File> {
    trim_csv(path, header, step)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    if file.metadata().map_err(|e| TrainError::io(path, e))?.len() == 0 {
        writeln!(file, "{header}").map_err(|e| TrainError::io(path, e))?;
    }
    Ok(file)
}

/// Drops rows of the log `path` (first column: the step) past `step`, written after the
/// checkpoint a run resumes from.
fn trim_csv(path: &Path, header: &str, step: u64) -> Result<()> {
    let Ok(original) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    // A run begun before columns were added gets the current header (its old rows simply
    // lack the new columns at the end).
    let text = match original.lines().next() {
        Some(h) if h != header && header.starts_with(h) => original.replacen(h, header, 1),
        _ => original.clone(),
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .is_none_or(|s| s <= step)
        })
        .collect();
    let mut out = kept.join("\n");
    out.push('\n');
    if out != original {
        std::fs::write(path, out).map_err(|e| TrainError::io(path, e))?;
    }
    Ok(())
}

/// A fresh model of `config` with a tokenizer trained for it.
pub fn new_model(
    config: ModelConfig,
    settings: &JointSettings,
    seed: u64,
    device: &Device,
) -> Result<Model> {
    let sampler_settings = JointSettings {
        validate_every: 0,
        ..settings.clone()
    };
    let sampler = JointSampler::new(&sampler_settings, config.preprocessing.spacing_mm, seed)?;
    let tokenizer = train_tokenizer(
        &sampler.catalogues()[0],
        settings.tokenizer_samples,
        config.agent.vocab_size,
        seed,
    )?;
    Model::new(config, tokenizer, seed, device)
}
