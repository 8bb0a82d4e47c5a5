//! Inference of a trained baseline on any scan, and overlap with a reference mask.
//!
//! [`segment`] repeats the training-time preprocessing recorded in the checkpoint: reorient to
//! RAS, resample (anti-aliased) to the training spacing, normalise by percentiles; then runs
//! the network on the whole volume, brings the probabilities back to the input grid by linear
//! interpolation and thresholds them at 0.5.

use serde::Serialize;
use voxel::resample::{Resample, ResampleOptions};
use voxel::{Image, Mask};

use crate::checkpoint::TrainedBaseline;
use crate::error::Result;
use vision::tensor::{image_to_tensor, tensor_spacing, tensor_to_image};

/// Probability above which a voxel belongs to the target.
pub const THRESHOLD: f32 = 0.5;

/// Target probabilities of `image` on the network grid (RAS, training spacing).
pub fn probabilities_on_network_grid(model: &TrainedBaseline, image: &Image) -> Result<Image> {
    let settings = &model.record.settings;
    let ras = image.to_ras();
    let grid = voxel::resample::geometry_with_spacing(ras.geometry(), [settings.spacing_mm; 3])?;
    let resampled = ras.resample(&grid, &ResampleOptions::linear())?;
    let normalised =
        voxel::intensity::normalize_percentile(&resampled, &settings.normalisation.options())?;
    let input = image_to_tensor(&normalised, &model.device);
    let output = model.net.forward(input, tensor_spacing(&grid))?;
    Ok(tensor_to_image(output.probabilities, &grid)?)
}

/// Target probabilities of `image` on its own grid (linear interpolation).
pub fn probabilities(model: &TrainedBaseline, image: &Image) -> Result<Image> {
    let coarse = probabilities_on_network_grid(model, image)?;
    Ok(coarse.resample(image.geometry(), &ResampleOptions::linear())?)
}

/// The target mask of `image`, on the input grid.
pub fn segment(model: &TrainedBaseline, image: &Image) -> Result<Mask> {
    Ok(probabilities(model, image)?.threshold(THRESHOLD))
}

/// Overlap of a predicted mask with a reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Dice coefficient.
    pub dice: f64,
    /// Volume of the prediction, mL.
    pub predicted_ml: f64,
    /// Volume of the reference, mL.
    pub reference_ml: f64,
}

/// Dice and volumes of `prediction` against `reference`; the reference is brought onto the
/// prediction's grid (nearest neighbour) when the grids differ.
pub fn evaluate(prediction: &Mask, reference: &Mask) -> Result<Evaluation> {
    let reference = if reference.geometry().same_grid(prediction.geometry(), 1e-3) {
        reference.clone()
    } else {
        reference.resample(prediction.geometry(), &ResampleOptions::nearest())?
    };
    let ml = voxel::measure::volume_ml;
    Ok(Evaluation {
        dice: voxel::metrics::dice(prediction, &reference)?,
        predicted_ml: ml(prediction),
        reference_ml: ml(&reference),
    })
}
