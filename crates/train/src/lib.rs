//! `train`: training and evaluation of VoxelPrompt's networks (DESIGN.md §7).
//!
//! - The joint model: [`model`] (agent + vision + tokenizer + preprocessing, saved with a
//!   checksum manifest), [`preprocess`] (the one conform/restore path of training and
//!   inference), [`backend`] (the runtime's `VisionBackend` running the vision network),
//!   [`joint`] (the teacher-forced loss of one task sample) and [`trainer`] (the resumable
//!   training run behind `voxelprompt train`).
//! - The single-task baseline: a [`vision::BaselineUnet`] trained for one vocabulary target on
//!   subjects synthesised on the fly ([`sampling`]), with soft Dice + BCE ([`loss`]),
//!   checkpoints ([`checkpoint`]) and inference plus overlap metrics on real scans
//!   ([`evaluation`]).

#![warn(missing_docs)]

pub mod averaging;
pub mod backend;
pub mod baseline;
pub mod characterisation_experiment;
pub mod checkpoint;
pub mod error;
pub mod eval;
pub mod eval_comparison;
pub mod evaluation;
pub mod inference;
pub mod joint;
pub mod loss;
pub mod model;
pub mod parallel;
pub mod phi_namer;
pub mod plot;
pub mod preprocess;
pub mod sampling;
pub mod segmentation_experiment;
pub mod settings;
pub mod stats;
pub mod trainer;

pub use backend::UnetBackend;
pub use baseline::{train, BaselineTrainer, StepLog, TrainOptions, TrainReport};
pub use checkpoint::TrainedBaseline;
pub use error::{Result, TrainError};
pub use evaluation::{segment, Evaluation};
pub use model::{JointNet, Model, ModelConfig};
pub use preprocess::{Modality, Preprocessing};
pub use sampling::{Sampler, TrainingSample};
pub use settings::BaselineSettings;
pub use trainer::{JointSettings, JointTrainer, SeedPurpose};
