//! Helpers shared by the synth integration tests.
#![allow(dead_code)] // each test binary uses some of these helpers

use synth::anatomy::{EXTRACEREBRAL_CSF, SCALP, SKULL};
use synth::labels::{DIPLOE, DURA, SUBCUTANEOUS_FAT, TEMPORALIS, VENOUS_SINUS};
use voxel::LabelMap;

/// fsaverage's `aparc+aseg` with its head model from the anatomy cache, or `None` after
/// [`voxel::test_support::skip_missing`] (which fails the test when data is required).
pub fn fsaverage_or_skip(config: &synth::SynthConfig) -> Option<synth::Anatomy> {
    let Some(dir) =
        synth::anatomy::default_cache_dir().filter(|d| d.join("fsaverage/aparc+aseg.mgz").exists())
    else {
        voxel::test_support::skip_missing(
            "fsaverage in the anatomy cache",
            "run python3 scripts/fetch_anatomy.py",
        );
        return None;
    };
    Some(
        synth::Anatomy::fsaverage(&dir, synth::Source::FsAparcAseg, &config.head)
            .expect("fsaverage loads"),
    )
}

/// The head-model layers met going up (+z) from voxel `start` to the top of the grid, runs
/// collapsed: 0 brain (anything else), 1 extracerebral CSF, 2 dura (or a venous sinus in it),
/// 3 bone (tables and diploë), 4 soft tissue over the skull (temporalis, fat, skin), 5 air.
pub fn layers_upward(labels: &LabelMap, start: [usize; 3]) -> Vec<i32> {
    let mut seq: Vec<i32> = Vec::new();
    for k in start[2]..labels.geometry().shape()[2] {
        let class = match labels.at(start[0], start[1], k) {
            EXTRACEREBRAL_CSF => 1,
            DURA | VENOUS_SINUS => 2,
            SKULL | DIPLOE => 3,
            TEMPORALIS | SUBCUTANEOUS_FAT | SCALP => 4,
            0 => 5,
            _ => 0,
        };
        if seq.last() != Some(&class) {
            seq.push(class);
        }
    }
    seq
}
