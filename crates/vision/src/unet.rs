//! The instructable UNet: encoder m_enc and generator m_gen, steered by ϕ (DESIGN.md §5).
//!
//! Inputs are the S streams of one subject on one grid, `[S, 1, X, Y, Z]`, their voxel spacing
//! and one ϕ per stream. The input is zero-padded at the far end of every axis to the multiple
//! the pooling schedule needs and the output cropped back, so any size works and no voxel of
//! the scan is ever dropped.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use crate::block::{BlockShape, LevelBlock};
use crate::config::UnetConfig;
use crate::conv::Pointwise;
use crate::error::{Result, VisionError};
use crate::init::SeededInit;
use crate::pool::max_pool_x2;
use crate::profile;
use crate::schedule::NativeSchedule;
use crate::side_gate::{SideFrame, SideGate};
use crate::upsample::upsample_linear_x2;

/// The down arm: one [`LevelBlock`] per level with max pooling in between.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Blocks from full resolution (index 0) to the bottleneck.
    pub blocks: Vec<LevelBlock>,
}

/// The up arm: one [`LevelBlock`] per level above the bottleneck, then a 1-channel head.
#[derive(Module, Debug)]
pub struct Generator {
    /// Blocks indexed by level (0 = full resolution); level l reads the upsampled level l+1
    /// concatenated with the encoder's level-l features.
    pub blocks: Vec<LevelBlock>,
    /// The 1×1×1 convolution to one output channel (a logit per voxel).
    pub head: Pointwise,
}

/// Encoder and generator with the ε° embedding head.
#[derive(Module, Debug)]
pub struct Unet {
    /// The down arm m_enc.
    pub encoder: Encoder,
    /// The up arm m_gen.
    pub generator: Generator,
    /// Linear map from the deepest channels to the agent width d (ε°).
    pub embedding: Linear,
    /// ϕ's offsets of the logits on either side of the midline ([`crate::side_gate`]); absent
    /// unless the network was built with `side_gate`.
    pub side_gate: Option<SideGate>,
    /// The sizes this network was built with.
    #[module(skip)]
    pub config: UnetConfig,
}

/// What the encoder hands to the generator and to the agent.
#[derive(Debug, Clone)]
pub struct Encoding {
    /// Features of every level, `[S, c_l, X_l, Y_l, Z_l]` on the padded grid.
    pub features: Vec<Tensor<5>>,
    /// ε°: one d-vector per stream, `[S, d]`.
    pub embedding: Tensor<2>,
    /// The native-space schedule of this input.
    pub schedule: NativeSchedule,
    /// The caller's spatial size, before padding.
    pub input_shape: [usize; 3],
    /// Each stream's midline, when the network has a side gate.
    pub side: Option<SideFrame>,
}

/// Result of [`Unet::forward`].
#[derive(Debug, Clone)]
pub struct UnetOutput {
    /// Foreground probability per voxel, `[S, 1, X, Y, Z]` on the input grid.
    pub probabilities: Tensor<5>,
    /// ε°, `[S, d]`.
    pub embedding: Tensor<2>,
}

/// An input checked against a network and padded for its schedule.
#[derive(Debug, Clone)]
pub(crate) struct PreparedInput {
    pub padded: Tensor<5>,
    pub schedule: NativeSchedule,
    pub input_shape: [usize; 3],
}

/// Validates `x` (`[S, 1, X, Y, Z]`) and spacing, and pads `x` for the pooling schedule.
pub(crate) fn prepare_input(
    x: Tensor<5>,
    spacing_mm: [f64; 3],
    config: &UnetConfig,
) -> Result<PreparedInput> {
    let [streams, channels, sx, sy, sz] = x.dims();
    if streams == 0 || channels != 1 || sx == 0 || sy == 0 || sz == 0 {
        return Err(VisionError::Shape(format!(
            "scans must be [S ≥ 1, 1, X ≥ 1, Y ≥ 1, Z ≥ 1], got {:?}",
            x.dims()
        )));
    }
    let schedule = NativeSchedule::new(spacing_mm, config.levels, config.anisotropy_ratio)?;
    let input_shape = [sx, sy, sz];
    let padded_shape = schedule.padded_shape(input_shape);
    let padded = if padded_shape == input_shape {
        x
    } else {
        let pairs: [(usize, usize); 3] = [0, 1, 2].map(|a| (0, padded_shape[a] - input_shape[a]));
        x.pad(pairs, PadMode::Constant(0.0))
    };
    Ok(PreparedInput {
        padded,
        schedule,
        input_shape,
    })
}

/// Checks that ϕ is `[S, phi_dim]`.
pub(crate) fn check_phi(phi: &Tensor<2>, streams: usize, phi_dim: usize) -> Result<()> {
    if phi.dims() != [streams, phi_dim] {
        return Err(VisionError::Shape(format!(
            "ϕ must be [S = {streams}, {phi_dim}], got {:?}",
            phi.dims()
        )));
    }
    Ok(())
}

impl Encoder {
    /// The encoder of `config`; `phi_dim = None` builds the unconditioned baseline arm.
    pub(crate) fn new(
        config: &UnetConfig,
        phi_dim: Option<usize>,
        init: &mut SeededInit,
        device: &Device,
    ) -> Self {
        let blocks = (0..config.levels)
            .map(|level| {
                let shape = BlockShape {
                    c_in: if level == 0 {
                        1
                    } else {
                        config.channels_at(level - 1)
                    },
                    c_out: config.channels_at(level),
                    convs: config.convs_per_level,
                    group_size: config.group_size,
                    phi_dim,
                    phi_scale: config.phi_scale && phi_dim.is_some(),
                    attention_width: config.attention_width,
                };
                LevelBlock::new(shape, init, device)
            })
            .collect();
        Self { blocks }
    }

    /// Features of every level for a padded input.
    pub fn forward(
        &self,
        padded: Tensor<5>,
        schedule: &NativeSchedule,
        phi: Option<&Tensor<2>>,
    ) -> Vec<Tensor<5>> {
        let mut features = Vec::with_capacity(self.blocks.len());
        let mut x = padded;
        for (level, block) in self.blocks.iter().enumerate() {
            if level > 0 {
                x = profile::time("max pool", || {
                    max_pool_x2(x, schedule.level(level - 1).pool)
                });
            }
            x = block.forward(x, schedule.level(level).collapsed, phi);
            features.push(x.clone());
        }
        features
    }
}

impl Generator {
    /// The generator of `config`; `phi_dim = None` builds the unconditioned baseline arm.
    pub(crate) fn new(
        config: &UnetConfig,
        phi_dim: Option<usize>,
        init: &mut SeededInit,
        device: &Device,
    ) -> Self {
        let blocks = (0..config.levels.saturating_sub(1))
            .map(|level| {
                let shape = BlockShape {
                    c_in: config.channels_at(level + 1) + config.channels_at(level),
                    c_out: config.channels_at(level),
                    convs: config.convs_per_level,
                    group_size: config.group_size,
                    phi_dim,
                    phi_scale: config.phi_scale && phi_dim.is_some(),
                    attention_width: config.attention_width,
                };
                LevelBlock::new(shape, init, device)
            })
            .collect();
        Self {
            blocks,
            head: Pointwise::new(config.channels_top, 1, init, device),
        }
    }

    /// Foreground logits on the padded grid, `[S, 1, X, Y, Z]`.
    pub fn forward(
        &self,
        features: &[Tensor<5>],
        schedule: &NativeSchedule,
        phi: Option<&Tensor<2>>,
    ) -> Tensor<5> {
        let deepest = features.len() - 1;
        let mut x = features[deepest].clone();
        for level in (0..deepest).rev() {
            let up = profile::time("upsample", || {
                upsample_linear_x2(x, schedule.level(level).pool)
            });
            let joined = profile::time("concat", || {
                Tensor::cat(vec![up, features[level].clone()], 1)
            });
            x = self.blocks[level].forward(joined, schedule.level(level).collapsed, phi);
        }
        profile::time("head", || self.head.forward(x))
    }
}

/// ε°: the global max over the scan's own voxels of each stream's deepest features, `[S, c]`.
///
/// Voxels that lie entirely in the padding are left out, so padding never changes ε°.
pub(crate) fn global_max(
    deepest: Tensor<5>,
    schedule: &NativeSchedule,
    input_shape: [usize; 3],
) -> Tensor<2> {
    let padded = schedule.padded_shape(input_shape);
    let deep_shape = schedule.level_shape(padded, schedule.len() - 1);
    let mut x = deepest;
    for axis in 0..3 {
        let factor = padded[axis] / deep_shape[axis];
        let covered = input_shape[axis].div_ceil(factor);
        if covered < deep_shape[axis] {
            x = x.narrow(2 + axis, 0, covered);
        }
    }
    let [streams, channels, sx, sy, sz] = x.dims();
    x.reshape([streams, channels, sx * sy * sz])
        .max_dim(2)
        .reshape([streams, channels])
}

/// Crops a padded `[S, C, X, Y, Z]` tensor back to `input_shape`.
pub(crate) fn crop(x: Tensor<5>, input_shape: [usize; 3]) -> Tensor<5> {
    let dims = x.dims();
    let mut x = x;
    for axis in 0..3 {
        if dims[2 + axis] != input_shape[axis] {
            x = x.narrow(2 + axis, 0, input_shape[axis]);
        }
    }
    x
}

impl Unet {
    /// A freshly initialised network of `config`; the same `seed` gives the same weights.
    pub fn new(config: &UnetConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::build(config, Some(config.phi_dim), seed, device)
    }

    /// Builds a conditioned (`phi_dim` given) or unconditioned network.
    pub(crate) fn build(
        config: &UnetConfig,
        phi_dim: Option<usize>,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let mut init = SeededInit::new(seed);
        let encoder = Encoder::new(config, phi_dim, &mut init, device);
        let generator = Generator::new(config, phi_dim, &mut init, device);
        let deep = config.channels_at(config.levels - 1);
        let embedding = Linear {
            weight: init.linear_uniform([deep, config.embedding_dim], deep, device),
            bias: Some(SeededInit::constant([config.embedding_dim], 0.0, device)),
        };
        let side_gate = phi_dim.filter(|_| config.side_gate).map(|p| {
            if config.side_gate_logistic {
                SideGate::logistic(p, device)
            } else {
                SideGate::new(p, device)
            }
        });
        Ok(Self {
            encoder,
            generator,
            embedding,
            side_gate,
            config: config.clone(),
        })
    }

    /// The sizes of this network.
    pub fn config(&self) -> &UnetConfig {
        &self.config
    }

    /// This network with FiLM (`phi_scale`) where it lacks it: every ϕ-mixing layer gets a zero
    /// scale weight, so the network computes what it computed before and can learn the scale
    /// from here. A network that has FiLM already is returned as it is.
    pub fn with_phi_scale(mut self) -> Self {
        if self.config.phi_scale {
            return self;
        }
        self.config.phi_scale = true;
        let blocks = self
            .encoder
            .blocks
            .iter_mut()
            .chain(self.generator.blocks.iter_mut());
        for block in blocks {
            block.mixing.add_phi_scale();
        }
        self
    }

    /// This network with a side gate ([`crate::side_gate`]) where it lacks it, with zero
    /// weights: it computes what it computed before and can learn the sides from here. A
    /// network that has one already, or has no ϕ, is returned as it is.
    pub fn with_side_gate(mut self) -> Self {
        if self.config.side_gate {
            return self;
        }
        self.config.side_gate = true;
        let device = self.embedding.weight.val().device();
        self.side_gate = Some(SideGate::new(self.config.phi_dim, &device));
        self
    }

    /// This network with a logistic side gate ([`crate::side_gate`]) in place of a linear one or
    /// none, starting at next to no offset ([`crate::side_gate::LOGISTIC_START_BIAS`]): what a
    /// linear gate had learnt is dropped (its weights mean offsets, not exclusion logits). A
    /// network whose gate is logistic already is returned as it is.
    pub fn with_logistic_side_gate(mut self) -> Self {
        if self.config.side_gate && self.config.side_gate_logistic {
            return self;
        }
        self.config.side_gate = true;
        self.config.side_gate_logistic = true;
        let device = self.embedding.weight.val().device();
        self.side_gate = Some(SideGate::logistic(self.config.phi_dim, &device));
        self
    }

    /// Encodes `scans` (`[S, 1, X, Y, Z]`, spacing in mm) under instruction `phi` (`[S, phi_dim]`).
    pub fn encode(
        &self,
        scans: Tensor<5>,
        spacing_mm: [f64; 3],
        phi: &Tensor<2>,
    ) -> Result<Encoding> {
        check_phi(phi, scans.dims()[0], self.config.phi_dim)?;
        self.encode_with(scans, spacing_mm, Some(phi))
    }

    /// [`Self::encode`] with an optional ϕ (the baselines pass none).
    pub(crate) fn encode_with(
        &self,
        scans: Tensor<5>,
        spacing_mm: [f64; 3],
        phi: Option<&Tensor<2>>,
    ) -> Result<Encoding> {
        let side = match (&self.side_gate, phi) {
            (Some(_), Some(_)) => Some(SideFrame::of_scans(&scans, spacing_mm)?),
            _ => None,
        };
        let input = prepare_input(scans, spacing_mm, &self.config)?;
        let features = self.encoder.forward(input.padded, &input.schedule, phi);
        let deepest = features[features.len() - 1].clone();
        let pooled = global_max(deepest, &input.schedule, input.input_shape);
        Ok(Encoding {
            embedding: self.embedding.forward(pooled),
            features,
            schedule: input.schedule,
            input_shape: input.input_shape,
            side,
        })
    }

    /// Foreground probabilities `[S, 1, X, Y, Z]` from an encoding under instruction `phi`.
    pub fn generate(&self, encoding: &Encoding, phi: &Tensor<2>) -> Result<Tensor<5>> {
        Ok(sigmoid(self.generate_logits(encoding, phi)?))
    }

    /// [`Self::generate`] before the sigmoid: foreground logits `[S, 1, X, Y, Z]`. Training
    /// takes its cross-entropy from these, whose gradient does not vanish where the sigmoid
    /// saturates.
    pub fn generate_logits(&self, encoding: &Encoding, phi: &Tensor<2>) -> Result<Tensor<5>> {
        let streams = encoding.embedding.dims()[0];
        check_phi(phi, streams, self.config.phi_dim)?;
        Ok(self.generate_logits_with(encoding, Some(phi)))
    }

    /// Foreground logits on the input grid (before the sigmoid).
    pub(crate) fn generate_logits_with(
        &self,
        encoding: &Encoding,
        phi: Option<&Tensor<2>>,
    ) -> Tensor<5> {
        let logits = self
            .generator
            .forward(&encoding.features, &encoding.schedule, phi);
        let logits = crop(logits, encoding.input_shape);
        match (&self.side_gate, phi, &encoding.side) {
            (Some(gate), Some(phi), Some(frame)) => gate.apply(logits, phi, frame, 0),
            _ => logits,
        }
    }

    /// Encodes and generates with the same ϕ: probabilities `[S, 1, X, Y, Z]` and ε° `[S, d]`.
    pub fn forward(
        &self,
        scans: Tensor<5>,
        spacing_mm: [f64; 3],
        phi: &Tensor<2>,
    ) -> Result<UnetOutput> {
        let encoding = self.encode(scans, spacing_mm, phi)?;
        let probabilities = sigmoid(self.generate_logits_with(&encoding, Some(phi)));
        Ok(UnetOutput {
            probabilities,
            embedding: encoding.embedding,
        })
    }
}
