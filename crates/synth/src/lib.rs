//! `synth`: the VoxelPrompt data engine. It turns real anatomical label maps (FreeSurfer
//! fsaverage and the CAT12 neuromorphometrics atlas, fetched by `scripts/fetch_anatomy.py`) or
//! analytic phantoms into unlimited synthetic subjects: a head model around the brain, random
//! spatial variation, MRI/CT contrasts, lesions with recorded attributes, and dated follow-up
//! sessions.

#![warn(missing_docs)]

pub mod error;
pub mod rng;
pub mod vocabulary;

pub use error::{Result, SynthError};
pub use vocabulary::{Hemisphere, Source, Target, Territory, Vocabulary};
pub mod anatomy;
pub mod atrophy;
pub mod config;
pub mod contrast;
pub mod field;
pub mod head;
pub mod labels;
pub mod lesion;
pub mod mass_effect;
pub mod neuromorphometrics;
pub mod preview;
pub mod slab;
pub mod spatial;
pub mod subject;

pub use anatomy::Anatomy;
pub use config::SynthConfig;
pub use contrast::{Contrast, IntensityMode};
pub use lesion::{LesionClass, LesionRecord};
pub use subject::{synthesize_subject, write_subjects, Session, Subject, SubjectSpec};
