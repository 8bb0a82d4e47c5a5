//! `train`: training and evaluation of VoxelPrompt's networks (DESIGN.md §7).
//!
//! For now it holds the single-task baseline: a [`vision::BaselineUnet`] trained for one
//! vocabulary target on subjects synthesised on the fly ([`sampling`]), with soft Dice + BCE
//! ([`loss`]), checkpoints with their training settings ([`checkpoint`]) and inference plus
//! overlap metrics on real scans ([`evaluation`]). The joint agent + vision loop will sit
//! beside [`baseline`] and reuse the sampling, losses and evaluation.

#![warn(missing_docs)]

pub mod baseline;
pub mod checkpoint;
pub mod error;
pub mod evaluation;
pub mod loss;
pub mod sampling;
pub mod settings;
pub mod tensor;

pub use baseline::{train, BaselineTrainer, StepLog, TrainOptions, TrainReport};
pub use checkpoint::TrainedBaseline;
pub use error::{Result, TrainError};
pub use evaluation::{segment, Evaluation};
pub use sampling::{Sampler, TrainingSample};
pub use settings::BaselineSettings;
