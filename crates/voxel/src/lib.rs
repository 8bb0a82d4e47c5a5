//! `voxel`: the imaging core of VoxelPrompt. Volumes with their geometry, NIfTI and FreeSurfer
//! readers and writers, resampling, morphology, measurements with units, overlap metrics and
//! slice pictures. No deep-learning framework in here.

#![warn(missing_docs)]

pub mod affine;
pub mod error;
pub mod geometry;
pub mod orientation;
pub mod volume;

pub use affine::Affine;
pub use error::{Result, VoxelError};
pub use geometry::{Geometry, Plane};
pub use orientation::Orientation;
pub use volume::{Image, LabelMap, Mask, Volume};
pub mod calendar;
pub mod components;
pub mod crop;
pub mod distance;
pub mod intensity;
pub mod io;
pub mod lut;
pub mod measure;
pub mod metrics;
pub mod morphology;
pub mod neighbourhood;
pub mod phantom;
pub mod render;
pub mod resample;
pub mod test_support;
