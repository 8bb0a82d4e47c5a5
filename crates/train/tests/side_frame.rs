//! The side gate's plane seen through the model's own preprocessing: however a scan's voxels
//! are stored (RAS, LPS, PIR, ILA), conformed and put in the network's `[S, 1, Z, Y, X]`
//! tensor, the left hemisphere's structures lie on the left of the plane the gate steps
//! across, the right ones on the right. Session 21's gate split the tensor's first spatial axis
//! (z) and its tests, built on hand-made tensors, could not tell.

use burn::tensor::Device;
use train::preprocess::{Modality, Preprocessing};
use vision::side_gate::SideFrame;
use vision::tensor::{image_to_tensor, tensor_spacing};
use voxel::phantom::demo_head;
use voxel::resample::{Interpolation, Resample, ResampleOptions};
use voxel::Orientation;

/// FreeSurfer ids of the demo head's left and right structures (white matter, cortex,
/// lateral ventricle, hippocampus).
const LEFT: [i32; 4] = [2, 3, 4, 17];
const RIGHT: [i32; 4] = [41, 42, 43, 53];

#[test]
fn left_structures_lie_left_of_the_plane_whatever_the_storage_order() {
    let head = demo_head([2.0; 3]).unwrap();
    let preprocessing = Preprocessing::at_spacing(3.0);
    for code in ["RAS", "LPS", "PIR", "ILA"] {
        let orientation = Orientation::parse(code).unwrap();
        let image = head.image.reorient(orientation);
        let conformed = preprocessing.conform(&image, Modality::Mr).unwrap();
        let grid = conformed.geometry().clone();
        let labels = head
            .labels
            .reorient(orientation)
            .resample(
                &grid,
                &ResampleOptions {
                    interpolation: Interpolation::Nearest,
                    ..ResampleOptions::default()
                },
            )
            .unwrap();
        let tensor = image_to_tensor(&conformed, &Device::flex());
        let frame = SideFrame::of_scans(&tensor, tensor_spacing(&grid)).unwrap();
        let [nx, ny, _] = grid.shape();
        let (mut left, mut right) = (0usize, 0usize);
        for (i, &id) in labels.data().iter().enumerate() {
            let side = if LEFT.contains(&id) {
                -1.0
            } else if RIGHT.contains(&id) {
                1.0
            } else {
                continue;
            };
            let voxel = [i % nx, i / nx % ny, i / (nx * ny)];
            let d = frame.signed_distance_mm(0, voxel);
            // The hemispheres meet at the midline: a voxel within one voxel of the plane may
            // lie either side of it.
            if d.abs() > 3.0 {
                assert_eq!(
                    d.signum(),
                    side,
                    "{code}: label {id} at voxel {voxel:?} is {d:.1} mm from the plane {:?}",
                    frame.planes[0]
                );
                left += usize::from(side < 0.0);
                right += usize::from(side > 0.0);
            }
        }
        assert!(
            left > 1000 && right > 1000,
            "{code}: {left} left, {right} right"
        );
    }
}
