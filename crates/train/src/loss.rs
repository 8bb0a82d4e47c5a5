//! Segmentation losses on probabilities `[S, 1, X, Y, Z]` against soft targets in [0, 1].
//!
//! The baseline net returns sigmoid probabilities, so both losses clamp them away from 0 and 1
//! (`PROBABILITY_FLOOR`) to keep the logarithms and their gradients finite.

use burn::tensor::Tensor;

/// Probabilities are clamped to `[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]`.
pub const PROBABILITY_FLOOR: f64 = 1e-6;

fn clamped(p: Tensor<5>) -> Tensor<5> {
    p.clamp(PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
}

/// `1 - 2|P·T| / (|P| + |T|)` per stream, averaged over streams; 0 for a perfect prediction.
pub fn soft_dice_loss(probabilities: Tensor<5>, target: Tensor<5>) -> Tensor<1> {
    let p = clamped(probabilities);
    let overlap = (p.clone() * target.clone()).sum_dims(&[1, 2, 3, 4]);
    let sums = p.sum_dims(&[1, 2, 3, 4]) + target.sum_dims(&[1, 2, 3, 4]);
    let dice = (overlap.mul_scalar(2.0) / sums.add_scalar(1e-6)).mean();
    dice.neg().add_scalar(1.0)
}

/// Mean binary cross-entropy over every voxel.
pub fn bce_loss(probabilities: Tensor<5>, target: Tensor<5>) -> Tensor<1> {
    let p = clamped(probabilities);
    (target.clone() * p.clone().log()
        + target.neg().add_scalar(1.0) * p.neg().add_scalar(1.0).log())
    .mean()
    .neg()
}

/// Soft Dice + BCE, the baseline's training loss.
pub fn dice_bce_loss(probabilities: Tensor<5>, target: Tensor<5>) -> Tensor<1> {
    soft_dice_loss(probabilities.clone(), target.clone()) + bce_loss(probabilities, target)
}
