//! The side gate: ϕ's say over which side of the head a mask may lie on.
//!
//! A convolutional network is blind to where it is: a left hippocampus and a right one look
//! alike, and telling them apart takes features that span from the structure to the midline.
//! The joint model trained without help marked both thalami for "right thalamus" (29 mL against
//! 9 in the evaluation of session 19) after thousands of steps. The gate adds to every logit
//! `a_left(ϕ)·left(x) + a_right(ϕ)·right(x)`, where `(a_left, a_right) = g·ϕ·W` (one
//! `[phi_dim, 2]` weight and a fixed gain [`SIDE_GATE_GAIN`]; no bias: a side is a property of
//! the instruction, not of the voxel) and `left`, `right = 1 − left` are a smooth step across
//! the head's midline along the first axis of the conformed grid (which runs from left to
//! right: the scans are reoriented to RAS before the network sees them). For "left thalamus" ϕ can learn a large negative `a_right` and the
//! network's both-sided thalamus loses its right half.
//!
//! The midline is the intensity centroid of each stream along that axis (heads are nearly
//! symmetric, and a centroid does not care where the head lies in the field of view). Zero
//! weights leave the network's function as it was, so a trained network gains the gate without
//! forgetting anything ([`crate::Unet::with_side_gate`]).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Result, VisionError};
use crate::init::SeededInit;
use crate::tensor::tensor_values;

/// Width of the step across the midline, mm: the step is `σ((x − midline) / this)`, so a voxel
/// 3 mm from the midline is 95 % on its side.
pub const SIDE_STEP_MM: f64 = 1.0;

/// Factor on the gate's offsets, `(a_left, a_right) = GAIN · ϕ·W`. Adam moves each weight by
/// about the learning rate a step, so at the vision rate (4e-4) an unscaled gate took ~130
/// steps to reach weights of 0.01 (small9e, session 21), thousands of steps short of the
/// offsets of several logits that take a side away; scaled, it needs a tenth of the steps.
pub const SIDE_GATE_GAIN: f64 = 10.0;

/// Where each stream's midline lies, for the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct SideFrame {
    /// The midline of each stream, in voxels along the first axis of the caller's grid.
    pub midline_voxels: Vec<f64>,
    /// [`SIDE_STEP_MM`] in voxels of that axis.
    pub step_voxels: f64,
}

impl SideFrame {
    /// The frame of `scans` (`[S, 1, X, Y, Z]`, intensities normalised so that air is ~0) with
    /// `spacing_x_mm` along the first axis: each stream's midline is the centroid of its
    /// intensities clamped to [0, 1] along that axis (the grid's centre for a blank stream).
    pub fn of_scans(scans: &Tensor<5>, spacing_x_mm: f64) -> Result<SideFrame> {
        let [streams, _, sx, _, _] = scans.dims();
        if !(spacing_x_mm > 0.0 && spacing_x_mm.is_finite()) {
            return Err(VisionError::Shape(format!(
                "the side gate needs a positive spacing, got {spacing_x_mm} mm"
            )));
        }
        let profile = tensor_values(
            scans
                .clone()
                .detach()
                .clamp(0.0, 1.0)
                .sum_dim(4)
                .sum_dim(3)
                .reshape([streams, sx]),
        )?;
        let midline_voxels = profile
            .chunks(sx)
            .map(|row| {
                let (mass, moment) = row
                    .iter()
                    .enumerate()
                    .fold((0.0f64, 0.0f64), |(m, mo), (x, &v)| {
                        (m + f64::from(v), mo + x as f64 * f64::from(v))
                    });
                if mass > 0.0 {
                    moment / mass
                } else {
                    (sx as f64 - 1.0) / 2.0
                }
            })
            .collect();
        Ok(SideFrame {
            midline_voxels,
            step_voxels: SIDE_STEP_MM / spacing_x_mm,
        })
    }

    /// `right(x)` of every stream at rows `x0..x0 + rows` of the first axis, `[S, 1, rows, 1, 1]`.
    fn right_side(&self, x0: usize, rows: usize, device: &Device) -> Tensor<5> {
        let streams = self.midline_voxels.len();
        let values: Vec<f32> = self
            .midline_voxels
            .iter()
            .flat_map(|&midline| {
                (x0..x0 + rows).map(move |x| {
                    let t = (x as f64 - midline) / self.step_voxels;
                    (1.0 / (1.0 + (-t).exp())) as f32
                })
            })
            .collect();
        Tensor::from_data(TensorData::new(values, [streams, 1, rows, 1, 1]), device)
    }
}

/// The gate's weight: ϕ ↦ (offset of the left side, offset of the right side).
#[derive(Module, Debug)]
pub struct SideGate {
    /// `[phi_dim, 2]`, zero at the start.
    pub weight: Param<Tensor<2>>,
}

impl SideGate {
    /// A gate for a `phi_dim`-wide ϕ that does nothing yet (zero weight).
    pub fn new(phi_dim: usize, device: &Device) -> SideGate {
        SideGate {
            weight: SeededInit::constant([phi_dim, 2], 0.0, device),
        }
    }

    /// The offsets `(a_left, a_right)` of each row of `phi` (`[S, phi_dim]` → `[S, 2]`).
    pub fn offsets(&self, phi: &Tensor<2>) -> Tensor<2> {
        phi.clone()
            .matmul(self.weight.val())
            .mul_scalar(SIDE_GATE_GAIN)
    }

    /// `logits` (`[S, 1, rows, Y, Z]`, rows `x0..` of the first axis) with each stream's side
    /// offsets added under `phi` (`[S, phi_dim]`).
    pub fn apply(
        &self,
        logits: Tensor<5>,
        phi: &Tensor<2>,
        frame: &SideFrame,
        x0: usize,
    ) -> Tensor<5> {
        let [streams, _, rows, _, _] = logits.dims();
        let device = logits.device();
        let offsets = self.offsets(phi);
        let left = offsets
            .clone()
            .narrow(1, 0, 1)
            .reshape([streams, 1, 1, 1, 1]);
        let right = offsets.narrow(1, 1, 1).reshape([streams, 1, 1, 1, 1]);
        let right_side = frame.right_side(x0, rows, &device);
        let left_side = right_side.clone().neg().add_scalar(1.0);
        logits + left * left_side + right * right_side
    }
}
