//! The catalogue the tests share: the built-in phantom anatomy at 4 mm, so that a subject
//! synthesizes in tens of milliseconds and no anatomy download is needed.
#![allow(dead_code)]

use std::sync::OnceLock;
use tasks::Catalogue;

/// Voxel size of test subjects.
pub const SPACING_MM: f64 = 4.0;

/// The shared catalogue.
pub fn catalogue() -> &'static Catalogue {
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue::phantom(SPACING_MM).expect("the phantom catalogue builds"))
}

/// Ids of the families this build can sample.
pub fn available() -> Vec<&'static str> {
    let cat = catalogue();
    cat.families()
        .into_iter()
        .filter(|f| cat.unavailable(f.id).expect("known family").is_none())
        .map(|f| f.id)
        .collect()
}
