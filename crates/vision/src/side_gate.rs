//! The side gate: ϕ's say over which side of the head a mask may lie on.
//!
//! A convolutional network is blind to where it is: a left hippocampus and a right one look
//! alike, and telling them apart takes features that span from the structure to the midline.
//! The joint model trained without help marked both thalami for "right thalamus" (29 mL against
//! 9 in the evaluation of session 19) after thousands of steps. The gate adds to every logit
//! `a_left(ϕ)·left(x) + a_right(ϕ)·right(x)`, where `(a_left, a_right) = g·ϕ·W` (one
//! `[phi_dim, 2]` weight and a fixed gain [`SIDE_GATE_GAIN`]; no bias: a side is a property of
//! the instruction, not of the voxel) and `left`, `right = 1 − left` are a smooth step across
//! the head's mid-sagittal plane (the conformed grid's x axis runs from left to right: the
//! scans are reoriented to RAS before the network sees them, and x is the tensors' last axis,
//! `[S, C, Z, Y, X]`). For "left thalamus" ϕ can learn a large negative `a_right` and the
//! network's both-sided thalamus loses its right half.
//!
//! The plane is each stream's own, where the scan best matches its mirror image
//! ([`crate::midplane`]). Until session 22 the gate split the tensors' *first* spatial axis at
//! the intensity centroid, taking it for x: it was z, so the gate of small9e's first ~1 800
//! steps offset the upper and the lower half of the head, not the left and the right. Zero
//! weights leave the network's function as it was, so a trained network gains the gate without
//! forgetting anything ([`crate::Unet::with_side_gate`]).
//!
//! **The logistic gate (session 24).** A linear gate with no bias must give zero offsets to the
//! ϕ of every bilateral target (dozens of them, spanning most of ϕ's 32 dimensions) and −8 to
//! the other side of each lateral one: equalities a 32 × 2 map cannot meet, so least squares
//! settled between. Measured on the shipped model (step 2 418 of small9e, ~480 steps after the
//! gate was reset): `right thalamus` got `a_left` −3.2, `left thalamus` `a_right` −4.2, too little
//! to erase a side the network draws at several logits, and "right X" came out on both sides
//! (Dice 0.61 with the right thalamus, 0.54 with the left; `crates/train/examples/
//! side_context.rs`). The logistic gate asks instead, per side, "does this instruction exclude
//! this side?": `a = −SIDE_SUPPRESSION_LOGITS · σ(gain·ϕ·W + b)`, the bias starting at
//! [`LOGISTIC_START_BIAS`] (an offset of −0.03 logits: nothing changes until it learns). Being
//! on one side of a hyperplane is an inequality, which many targets can meet at once.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Result, VisionError};
use crate::init::SeededInit;
use crate::midplane::MidPlane;
use crate::tensor::tensor_values;

/// Width of the step across the mid-sagittal plane, mm: the step is `σ(d / this)` of the
/// distance `d` from the plane, so a voxel 3 mm from it is 95 % on its side.
pub const SIDE_STEP_MM: f64 = 1.0;

/// Factor on the gate's offsets, `(a_left, a_right) = GAIN · ϕ·W`. Adam moves each weight by
/// about the learning rate a step, so at the vision rate (4e-4) an unscaled gate took ~130
/// steps to reach weights of 0.01 (small9e, session 21), thousands of steps short of the
/// offsets of several logits that take a side away; scaled, it needs a tenth of the steps.
pub const SIDE_GATE_GAIN: f64 = 10.0;

/// The offset a logistic gate gives a side it excludes, logits: a voxel the network draws at
/// +10 on that side falls to σ(−2) ≈ 0.12, under the mask threshold.
pub const SIDE_SUPPRESSION_LOGITS: f64 = 12.0;

/// The logistic gate's bias at the start: σ(−6) ≈ 0.0025, an offset of −0.03 logits.
pub const LOGISTIC_START_BIAS: f64 = -6.0;

/// Where each stream's mid-sagittal plane lies, for the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct SideFrame {
    /// The plane of each stream ([`MidPlane::estimate`]), in mm of the caller's grid (x the
    /// left-right axis: the tensors' last).
    pub planes: Vec<MidPlane>,
    /// The grid's voxel size `[x, y, z]`, mm.
    pub spacing_mm: [f64; 3],
    /// The grid's shape `[X, Y, Z]`.
    pub shape: [usize; 3],
}

impl SideFrame {
    /// The frame of `scans` (`[S, 1, Z, Y, X]` as the network takes them: x, the left-right
    /// axis of the conformed RAS grid, last; intensities normalised so that air is ~0) on voxels
    /// of `spacing_mm` (in the tensor's axis order, `[z, y, x]`): each stream's mid-sagittal
    /// plane, found by mirror symmetry ([`crate::midplane`]).
    pub fn of_scans(scans: &Tensor<5>, spacing_mm: [f64; 3]) -> Result<SideFrame> {
        let [streams, _, nz, ny, nx] = scans.dims();
        if !spacing_mm.iter().all(|s| *s > 0.0 && s.is_finite()) {
            return Err(VisionError::Shape(format!(
                "the side gate needs positive voxel sizes, got {spacing_mm:?} mm"
            )));
        }
        let shape = [nx, ny, nz];
        let spacing_mm = [spacing_mm[2], spacing_mm[1], spacing_mm[0]];
        let values = tensor_values(scans.clone().detach())?;
        let per_stream = nx * ny * nz;
        let planes = if per_stream == 0 {
            vec![MidPlane::normal_to_x(0.0); streams]
        } else {
            values
                .chunks(per_stream)
                .map(|stream| MidPlane::estimate(stream, shape, spacing_mm))
                .collect()
        };
        Ok(SideFrame {
            planes,
            spacing_mm,
            shape,
        })
    }

    /// The grid's centre in y and z, mm: where a plane's `x_at_centre_mm` is taken.
    pub fn centre_mm(&self) -> [f64; 2] {
        MidPlane::grid_centre_mm(self.shape, self.spacing_mm)
    }

    /// Signed distance, mm, of voxel `[x, y, z]` from stream `stream`'s plane: positive on the
    /// right.
    pub fn signed_distance_mm(&self, stream: usize, [x, y, z]: [usize; 3]) -> f64 {
        let [sx, sy, sz] = self.spacing_mm;
        self.planes[stream].signed_distance_mm(
            [x as f64 * sx, y as f64 * sy, z as f64 * sz],
            self.centre_mm(),
        )
    }

    /// `right` of every stream at rows `z0..z0 + rows` of the tensors' first spatial axis over
    /// `y_len` × `x_len` voxels (a padded grid may run past the frame's; the plane extends
    /// there), `[S, 1, rows, y_len, x_len]`: the smooth step `σ(d / SIDE_STEP_MM)` of the
    /// signed distance `d` from the plane, mm (positive on the right: x grows to the right).
    fn right_side(
        &self,
        z0: usize,
        rows: usize,
        [y_len, x_len]: [usize; 2],
        device: &Device,
    ) -> Tensor<5> {
        let [sx, sy, sz] = self.spacing_mm;
        let centre = self.centre_mm();
        let mut values = Vec::with_capacity(self.planes.len() * rows * y_len * x_len);
        for plane in &self.planes {
            // [`MidPlane::signed_distance_mm`] with the plane's x and normal taken once a row.
            let step = plane.normal_length() * SIDE_STEP_MM;
            for z in z0..z0 + rows {
                for y in 0..y_len {
                    let x_plane = plane.x_at(y as f64 * sy, z as f64 * sz, centre);
                    for x in 0..x_len {
                        let across = (x as f64 * sx - x_plane) / step;
                        values.push((1.0 / (1.0 + (-across).exp())) as f32);
                    }
                }
            }
        }
        Tensor::from_data(
            TensorData::new(values, [self.planes.len(), 1, rows, y_len, x_len]),
            device,
        )
    }
}

/// The gate's weight: ϕ ↦ (offset of the left side, offset of the right side).
#[derive(Module, Debug)]
pub struct SideGate {
    /// `[phi_dim, 2]`, zero at the start.
    pub weight: Param<Tensor<2>>,
    /// `[2]`: the logistic gate's bias (left, right); absent in the linear gate.
    pub bias: Option<Param<Tensor<1>>>,
}

impl SideGate {
    /// A linear gate for a `phi_dim`-wide ϕ that does nothing yet (zero weight).
    pub fn new(phi_dim: usize, device: &Device) -> SideGate {
        SideGate {
            weight: SeededInit::constant([phi_dim, 2], 0.0, device),
            bias: None,
        }
    }

    /// A logistic gate (see the module docs) that does next to nothing yet: zero weight, bias
    /// [`LOGISTIC_START_BIAS`].
    pub fn logistic(phi_dim: usize, device: &Device) -> SideGate {
        SideGate {
            weight: SeededInit::constant([phi_dim, 2], 0.0, device),
            bias: Some(SeededInit::constant(
                [2],
                LOGISTIC_START_BIAS as f32,
                device,
            )),
        }
    }

    /// Whether this is the logistic gate.
    pub fn is_logistic(&self) -> bool {
        self.bias.is_some()
    }

    /// The logistic gate's exclusion logits `gain·ϕ·W + b` of each row of `phi` (`[S, 2]`:
    /// left, right; above 0, the side is excluded); `None` for the linear gate.
    pub fn exclusion_logits(&self, phi: &Tensor<2>) -> Option<Tensor<2>> {
        let bias = self.bias.as_ref()?;
        Some(
            phi.clone()
                .matmul(self.weight.val())
                .mul_scalar(SIDE_GATE_GAIN)
                .add(bias.val().unsqueeze_dim(0)),
        )
    }

    /// The offsets `(a_left, a_right)` of each row of `phi` (`[S, phi_dim]` → `[S, 2]`).
    pub fn offsets(&self, phi: &Tensor<2>) -> Tensor<2> {
        match self.exclusion_logits(phi) {
            Some(z) => sigmoid(z).mul_scalar(-SIDE_SUPPRESSION_LOGITS),
            None => phi
                .clone()
                .matmul(self.weight.val())
                .mul_scalar(SIDE_GATE_GAIN),
        }
    }

    /// `logits` (`[S, 1, rows, Y, X]`, rows `z0..` of the first spatial axis) with each
    /// stream's side offsets added under `phi` (`[S, phi_dim]`).
    pub fn apply(
        &self,
        logits: Tensor<5>,
        phi: &Tensor<2>,
        frame: &SideFrame,
        z0: usize,
    ) -> Tensor<5> {
        let [streams, _, rows, y_len, x_len] = logits.dims();
        let device = logits.device();
        let offsets = self.offsets(phi);
        let left = offsets
            .clone()
            .narrow(1, 0, 1)
            .reshape([streams, 1, 1, 1, 1]);
        let right = offsets.narrow(1, 1, 1).reshape([streams, 1, 1, 1, 1]);
        let right_side = frame.right_side(z0, rows, [y_len, x_len], &device);
        let left_side = right_side.clone().neg().add_scalar(1.0);
        logits + left * left_side + right * right_side
    }
}
