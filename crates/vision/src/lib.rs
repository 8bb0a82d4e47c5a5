//! `vision`: the instructable 3-D vision network of VoxelPrompt (DESIGN.md §5).
//!
//! An encoder and a generator (the down and up arms of a UNet) whose every level is steered by
//! a latent instruction ϕ from the agent ([`phi_mixing`]), lets the S input streams of a subject
//! exchange information at every voxel ([`stream_attention`]), and convolves in the scan's
//! native space ([`schedule`], [`conv`]): thick-slice scans are processed per slice until the
//! pooled in-plane spacing catches up. Written once against burn; the CPU backend (flex) is the
//! default and CUDA/wgpu come with the `cuda`/`wgpu` features.
//!
//! ```no_run
//! use burn::tensor::{Device, Tensor};
//! use vision::{Unet, UnetConfig};
//!
//! let device = Device::flex();
//! let net = Unet::new(&UnetConfig::preset("tiny")?, 7, &device)?;
//! let scans = Tensor::<5>::zeros([2, 1, 40, 48, 37], &device); // two contrasts, one grid
//! let phi = Tensor::<2>::zeros([2, 32], &device);
//! let out = net.forward(scans, [1.0, 1.0, 1.0], &phi)?;
//! assert_eq!(out.probabilities.dims(), [2, 1, 40, 48, 37]);
//! # Ok::<(), vision::VisionError>(())
//! ```

#![warn(missing_docs)]

pub mod baseline;
pub mod bias_silu;
pub mod block;
pub mod checkpoint;
pub mod config;
pub mod conv;
pub mod conv_kernel;
pub mod conv_op;
pub mod device;
pub mod error;
mod init;
pub mod midplane;
pub mod norm_kernel;
pub mod norm_op;
pub mod phi_mixing;
pub mod pool;
pub mod profile;
pub mod schedule;
pub mod side_gate;
pub mod stream_attention;
pub mod streamed;
pub mod tensor;
pub mod unet;
pub mod upsample;

pub use baseline::{BaselineUnet, Classifier};
pub use config::UnetConfig;
pub use device::{available_devices, compute_device};
pub use error::{Result, VisionError};
pub use schedule::{LevelGeometry, NativeSchedule};
pub use streamed::StreamOptions;
pub use unet::{Encoding, Unet, UnetOutput};
