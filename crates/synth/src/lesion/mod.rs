//! Lesion synthesis (paper A.3): pick a site in the subject's anatomy and a radius, fill a
//! sphere there with random ellipsoids (the lesion is a level set of the distance to the
//! nearest ellipsoid, so growth is a scale of that field), deform that field with smooth random
//! noise (the paper's dilate/erode/deform step), use a second random geometry for
//! heterogeneity (necrotic core, encephalomalacia, acute-on-chronic blood), restrict each
//! component to the tissue it may occupy, and paint the components into a lesion map. Every
//! attribute a question may ask about is measured on the painted maps and recorded in a
//! [`LesionRecord`].
//!
//! Extra-axial lesions (meningioma, arachnoid cyst, subdural haematoma) sit on the inner surface
//! of the skull and push the brain away: [`crate::mass_effect`] displaces the anatomy before
//! they are painted, so they occupy the space between skull and brain and never the skull. They
//! stay on one side of the midline plane fitted between the hemispheres (the falx).
//!
//! One concept per file: the class taxonomy (`class.rs`; component ids live in
//! [`crate::labels`]), geometry (`shape.rs`), anatomical site queries including vascular
//! territories (`site.rs`), the per-class samplers (`sample.rs`), painting (`paint.rs`) and
//! attribute recording (`record.rs`).

pub(crate) mod class;
pub(crate) mod paint;
pub(crate) mod record;
pub(crate) mod sample;
pub(crate) mod shape;
pub(crate) mod site;

/// Lesion-map ids of the components (defined with the other label semantics in
/// [`crate::labels`]; this is their public path).
pub use crate::labels::lesion_ids as ids;

pub use class::{LesionClass, SdhStage};
pub use paint::paint;
pub use record::{
    record, record_session, reference_tissue, surroundings, ComponentRecord, IntensityClass,
    LesionRecord, SURROUNDINGS_MM,
};
pub use sample::{sample_lesion, sample_lesion_apart};
pub use shape::{Ellipsoid, LesionShape, Midline, Wave};
pub use site::{lobe_and_territory, midline_plane, nearest_lobe, CEREBELLOPONTINE_ANGLE};
