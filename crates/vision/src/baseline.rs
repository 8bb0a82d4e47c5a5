//! The paper's single-task baselines: the same UNet without ϕ (a plain fully-connected layer
//! where ϕ mixing was), and a classifier built on the same encoder.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor};

use crate::config::UnetConfig;
use crate::error::{Result, VisionError};
use crate::init::SeededInit;
use crate::unet::{global_max, prepare_input, Encoder, Unet, UnetOutput};

/// A single-task segmentation UNet: [`Unet`] with the ϕ inputs removed.
#[derive(Module, Debug)]
pub struct BaselineUnet {
    /// The network, built without ϕ weights.
    pub unet: Unet,
}

impl BaselineUnet {
    /// A freshly initialised baseline of `config` (its `phi_dim` is ignored).
    pub fn new(config: &UnetConfig, seed: u64, device: &Device) -> Result<Self> {
        Ok(Self {
            unet: Unet::build(config, None, seed, device)?,
        })
    }

    /// Foreground probabilities `[S, 1, X, Y, Z]` and ε° `[S, d]` for `scans` (`[S, 1, X, Y, Z]`).
    pub fn forward(&self, scans: Tensor<5>, spacing_mm: [f64; 3]) -> Result<UnetOutput> {
        let encoding = self.unet.encode_with(scans, spacing_mm, None)?;
        let probabilities = sigmoid(self.unet.generate_logits_with(&encoding, None));
        Ok(UnetOutput {
            probabilities,
            embedding: encoding.embedding,
        })
    }

    /// Foreground logits `[S, 1, X, Y, Z]` for `scans` (`[S, 1, X, Y, Z]`): what training's
    /// losses take, since a sigmoid's probabilities lose the gradient where they saturate.
    pub fn logits(&self, scans: Tensor<5>, spacing_mm: [f64; 3]) -> Result<Tensor<5>> {
        let encoding = self.unet.encode_with(scans, spacing_mm, None)?;
        Ok(self.unet.generate_logits_with(&encoding, None))
    }
}

/// A single-task classifier: encoder, global max over space, max over streams, linear, softmax.
#[derive(Module, Debug)]
pub struct Classifier {
    /// The unconditioned encoder arm.
    pub encoder: Encoder,
    /// Linear map from the deepest channels to the class logits.
    pub head: Linear,
    /// The sizes of the encoder.
    #[module(skip)]
    pub config: UnetConfig,
}

impl Classifier {
    /// A freshly initialised classifier with `num_classes` outputs.
    pub fn new(
        config: &UnetConfig,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        if num_classes < 2 {
            return Err(VisionError::InvalidConfig {
                name: config.name.clone(),
                reason: format!("a classifier needs at least 2 classes, got {num_classes}"),
            });
        }
        let mut init = SeededInit::new(seed);
        let encoder = Encoder::new(config, None, &mut init, device);
        let deep = config.channels_at(config.levels - 1);
        let head = Linear {
            weight: init.linear_uniform([deep, num_classes], deep, device),
            bias: Some(SeededInit::constant([num_classes], 0.0, device)),
        };
        Ok(Self {
            encoder,
            head,
            config: config.clone(),
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.head.weight.dims()[1]
    }

    /// Class logits `[num_classes]` for all streams of one subject together.
    pub fn logits(&self, scans: Tensor<5>, spacing_mm: [f64; 3]) -> Result<Tensor<1>> {
        let input = prepare_input(scans, spacing_mm, &self.config)?;
        let features = self.encoder.forward(input.padded, &input.schedule, None);
        let deepest = features[features.len() - 1].clone();
        let per_stream = global_max(deepest, &input.schedule, input.input_shape);
        // The max over streams makes the prediction independent of the order of the scans.
        let pooled = per_stream.max_dim(0);
        Ok(self.head.forward(pooled).reshape([self.num_classes()]))
    }

    /// Class probabilities `[num_classes]` (softmax of [`Self::logits`]).
    pub fn forward(&self, scans: Tensor<5>, spacing_mm: [f64; 3]) -> Result<Tensor<1>> {
        Ok(softmax(self.logits(scans, spacing_mm)?, 0))
    }
}
