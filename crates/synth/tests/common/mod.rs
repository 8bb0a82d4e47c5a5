//! Helpers shared by the synth integration tests.

use synth::anatomy::{EXTRACEREBRAL_CSF, SCALP, SKULL};
use voxel::LabelMap;

/// The head-model layers met going up (+z) from voxel `start` to the top of the grid, runs
/// collapsed: 0 brain (anything else), 1 extracerebral CSF, 2 skull, 3 scalp, 4 air.
pub fn layers_upward(labels: &LabelMap, start: [usize; 3]) -> Vec<i32> {
    let mut seq: Vec<i32> = Vec::new();
    for k in start[2]..labels.geometry().shape()[2] {
        let class = match labels.at(start[0], start[1], k) {
            EXTRACEREBRAL_CSF => 1,
            SKULL => 2,
            SCALP => 3,
            0 => 4,
            _ => 0,
        };
        if seq.last() != Some(&class) {
            seq.push(class);
        }
    }
    seq
}
