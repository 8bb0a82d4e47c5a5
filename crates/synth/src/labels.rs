//! Label semantics: what an anatomy label id or a lesion-map id means. The FreeSurfer ids the
//! engine reasons about by name, the tissue class of every label, and the one definition of
//! brain parenchyma. Anatomy sources are remapped into this id space (neuromorphometrics through
//! `configs/synth/neuromorphometrics.toml`), so every other module asks here instead of
//! writing ids out.

use crate::error::{Result, SynthError};
use serde::{Deserialize, Serialize};
use voxel::LabelMap;

/// FreeSurfer `Left-Cerebral-White-Matter`.
pub const LEFT_CEREBRAL_WHITE_MATTER: i32 = 2;
/// FreeSurfer `Left-Cerebral-Cortex` (unparcellated).
pub const LEFT_CEREBRAL_CORTEX: i32 = 3;
/// FreeSurfer `Left-Lateral-Ventricle`.
pub const LEFT_LATERAL_VENTRICLE: i32 = 4;
/// FreeSurfer `Left-Cerebellum-Cortex`.
pub const LEFT_CEREBELLUM_CORTEX: i32 = 8;
/// FreeSurfer `Left-Thalamus`.
pub const LEFT_THALAMUS: i32 = 10;
/// FreeSurfer `Left-Caudate`.
pub const LEFT_CAUDATE: i32 = 11;
/// FreeSurfer `Left-Putamen`.
pub const LEFT_PUTAMEN: i32 = 12;
/// FreeSurfer `Brain-Stem`.
pub const BRAINSTEM: i32 = 16;
/// FreeSurfer `Right-Cerebral-White-Matter`.
pub const RIGHT_CEREBRAL_WHITE_MATTER: i32 = 41;
/// FreeSurfer `Right-Cerebral-Cortex` (unparcellated).
pub const RIGHT_CEREBRAL_CORTEX: i32 = 42;
/// FreeSurfer `Right-Lateral-Ventricle`.
pub const RIGHT_LATERAL_VENTRICLE: i32 = 43;
/// FreeSurfer `Right-Cerebellum-Cortex`.
pub const RIGHT_CEREBELLUM_CORTEX: i32 = 47;
/// FreeSurfer `Right-Thalamus`.
pub const RIGHT_THALAMUS: i32 = 49;
/// FreeSurfer `Right-Caudate`.
pub const RIGHT_CAUDATE: i32 = 50;
/// FreeSurfer `Right-Putamen`.
pub const RIGHT_PUTAMEN: i32 = 51;
/// Label of the skull (FreeSurfer `Skull`).
pub const SKULL: i32 = 165;
/// Label of the CSF shell between brain and skull (FreeSurfer `CSF-ExtraCerebral`).
pub const EXTRACEREBRAL_CSF: i32 = 257;
/// Label of the scalp and other soft tissue outside the skull (FreeSurfer `Head-ExtraCerebral`).
pub const SCALP: i32 = 258;
/// Head-model labels beyond FreeSurfer's three (skull, extracerebral CSF, head) live in
/// `HEAD_LABELS`, 710–799: ids no anatomy source or FreeSurfer segmentation we read produces
/// (aseg's ids stay below 256, the vermis is 630–632), below the lesion ids (900–931), outside
/// the ids a left-right flip swaps (1000–4999, `voxel::crop::LabelSwap::freesurfer`) and inside
/// the lookup tables ([`LABEL_LUT_LEN`]).
pub const HEAD_LABELS: std::ops::Range<i32> = 710..800;
/// Dura mater over the convexity and skull base: a thin layer between the CSF and the inner
/// table, inside the skull cavity (extra-axial lesions may lie on it).
pub const DURA: i32 = 711;
/// Falx cerebri: the dural sheet in the interhemispheric fissure.
pub const FALX: i32 = 712;
/// Tentorium cerebelli: the dural sheet between the occipital lobes and the cerebellum.
pub const TENTORIUM: i32 = 713;
/// Diploë: the marrow between the inner and outer tables of the skull ([`SKULL`] is the
/// cortical bone of the tables, the skull base and the facial bones).
pub const DIPLOE: i32 = 714;
/// Subcutaneous fat under the scalp and over the face and neck.
pub const SUBCUTANEOUS_FAT: i32 = 715;
/// Eye globes (vitreous body), both sides.
pub const GLOBE: i32 = 716;
/// Lenses of the eyes.
pub const LENS: i32 = 717;
/// Optic nerves in the orbits (the chiasm is FreeSurfer's `Optic-Chiasm`, 85).
pub const OPTIC_NERVE: i32 = 718;
/// Orbital fat around the globes and optic nerves.
pub const ORBITAL_FAT: i32 = 719;
/// Frontal sinus (air).
pub const FRONTAL_SINUS: i32 = 720;
/// Sphenoid sinus (air).
pub const SPHENOID_SINUS: i32 = 721;
/// Maxillary sinuses (air).
pub const MAXILLARY_SINUS: i32 = 722;
/// Mastoid air cells.
pub const MASTOID_AIR: i32 = 723;
/// Nasal cavity and pharyngeal airway (air).
pub const NASAL_CAVITY: i32 = 724;
/// Temporalis muscles over the temporal bone.
pub const TEMPORALIS: i32 = 725;
/// Masseter muscles.
pub const MASSETER: i32 = 726;
/// Other muscle and deep soft tissue of the face and neck.
pub const NECK_MUSCLE: i32 = 727;
/// Vertebrae (marrow-filled bodies and arches).
pub const VERTEBRA: i32 = 728;
/// Spinal cord below the brainstem.
pub const SPINAL_CORD: i32 = 729;
/// CSF of the spinal canal around the cord.
pub const SPINAL_CSF: i32 = 730;
/// Superior sagittal and transverse venous sinuses (in the dura; enhance on T1c).
pub const VENOUS_SINUS: i32 = 731;
/// The scanner's head support behind the occiput (CT table and headrest cradle): not anatomy;
/// black on MR, plastic and carbon fibre on CT.
pub const HEAD_SUPPORT: i32 = 732;
/// Large vessels of the neck: internal carotid and vertebral arteries, jugular veins.
pub const NECK_VESSELS: i32 = 733;
/// First of the SynthStrip-style random classes painted outside the skull cavity
/// (`RANDOM_HEAD_CLASSES` ids from here); their intensities are random per subject.
pub const RANDOM_HEAD_BASE: i32 = 750;
/// Number of random extracerebral classes.
pub const RANDOM_HEAD_CLASSES: i32 = 32;
/// Cortical parcels of `aparc+aseg` (left 1000–1999, right 2000–2999).
pub const CORTICAL_PARCELS: std::ops::Range<i32> = 1000..3000;

/// Size of the anatomy lookup tables (labels are clamped into it; FreeSurfer ids < 3000).
pub const LABEL_LUT_LEN: usize = 4096;
/// Lesion ids are `LESION_ID_BASE + k`, `k < LESION_LUT_LEN`.
pub const LESION_ID_BASE: i32 = 900;
/// Size of the lesion lookup tables.
pub const LESION_LUT_LEN: usize = 32;

/// Whether `label` is one of the SynthStrip-style random extracerebral classes.
pub fn is_random_head_class(label: i32) -> bool {
    (RANDOM_HEAD_BASE..RANDOM_HEAD_BASE + RANDOM_HEAD_CLASSES).contains(&label)
}

/// Whether `label` bounds the skull cavity from outside the CSF: dura or bone. Extra-axial
/// lesions are dural-based, so they are placed in CSF that touches such a label.
pub fn is_cavity_wall(label: i32) -> bool {
    matches!(label, DURA | SKULL)
}

/// The cerebral hemisphere a label belongs to (`Some(true)` left, `Some(false)` right) for
/// cerebral parenchyma with a side; `None` otherwise (midline, CSF, posterior fossa, head).
pub fn cerebral_side(label: i32) -> Option<bool> {
    match label {
        2 | 3 | 10..=13 | 17 | 18 | 26 | 28 | 1000..=1999 => Some(true),
        41 | 42 | 49..=54 | 58 | 60 | 2000..=2999 => Some(false),
        _ => None,
    }
}

/// Whether `label` is cerebellar grey or white matter (either side, or the vermis).
pub fn is_cerebellum(label: i32) -> bool {
    matches!(label, 7 | 8 | 46 | 47 | 630..=632)
}

/// Whether `label` is cerebral white matter (left or right).
pub fn is_cerebral_white_matter(label: i32) -> bool {
    label == LEFT_CEREBRAL_WHITE_MATTER || label == RIGHT_CEREBRAL_WHITE_MATTER
}

/// Whether `label` is cerebral cortex: a cortical parcel or the unparcellated cortex.
pub fn is_cerebral_cortex(label: i32) -> bool {
    CORTICAL_PARCELS.contains(&label)
        || label == LEFT_CEREBRAL_CORTEX
        || label == RIGHT_CEREBRAL_CORTEX
}

/// Whether `label` is a cortical parcel of `aparc+aseg`.
pub fn is_cortical_parcel(label: i32) -> bool {
    CORTICAL_PARCELS.contains(&label)
}

/// Whether `label` is cerebellar cortex (left or right).
pub fn is_cerebellar_cortex(label: i32) -> bool {
    label == LEFT_CEREBELLUM_CORTEX || label == RIGHT_CEREBELLUM_CORTEX
}

/// Whether `label` is a lateral ventricle (left or right).
pub fn is_lateral_ventricle(label: i32) -> bool {
    label == LEFT_LATERAL_VENTRICLE || label == RIGHT_LATERAL_VENTRICLE
}

/// A tissue class; every anatomical and lesion label maps to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tissue {
    /// Air outside the head.
    Background,
    /// Cerebral white matter.
    WhiteMatter,
    /// Cerebral cortex, hippocampus, amygdala.
    CorticalGm,
    /// Basal ganglia, thalamus, ventral diencephalon.
    DeepGm,
    /// Ventricles and other CSF.
    Csf,
    /// Skull.
    Skull,
    /// Scalp and other soft tissue outside the skull.
    Scalp,
    /// Vessels.
    Vessel,
    /// Choroid plexus.
    ChoroidPlexus,
    /// Cerebellar cortex.
    CerebellarGm,
    /// Cerebellar white matter.
    CerebellarWm,
    /// Brainstem.
    Brainstem,
    /// Vasogenic edema.
    Edema,
    /// Tumour necrosis.
    Necrosis,
    /// Contrast-enhancing tumour.
    EnhancingTumour,
    /// Non-enhancing solid tumour.
    SolidTumour,
    /// Acute infarct (cytotoxic edema).
    AcuteInfarct,
    /// Chronic infarct (encephalomalacia).
    ChronicInfarct,
    /// Gliosis.
    Gliosis,
    /// White-matter hyperintensity.
    Wmh,
    /// Meningioma.
    Meningioma,
    /// Arachnoid cyst fluid.
    Cyst,
    /// Acute blood.
    AcuteBlood,
    /// Chronic blood products (chronic subdural collection).
    ChronicBlood,
    /// Abscess cavity (pus, restricted diffusion).
    AbscessPus,
    /// Abscess capsule (enhancing).
    AbscessCapsule,
    /// Dura mater, falx and tentorium (enhance on T1c).
    Dura,
    /// Bone marrow: diploë of the skull, vertebral bodies (fatty, T1 bright).
    Marrow,
    /// Fat: subcutaneous and orbital.
    Fat,
    /// Skeletal muscle.
    Muscle,
    /// Air inside the head: sinuses, mastoid cells, nasal cavity, airway.
    Air,
    /// Vitreous body of the eye (water, like CSF).
    Vitreous,
    /// Lens of the eye.
    Lens,
    /// Optic nerve.
    Nerve,
    /// Spinal cord.
    SpinalCord,
    /// SynthStrip-style random class outside the cavity (its mean is drawn per subject).
    RandomHead,
    /// The scanner's table and head support (no MR signal; plastic on CT).
    Support,
}

impl Tissue {
    /// Every tissue, in a fixed order (its index is the position here).
    pub const ALL: [Tissue; 37] = [
        Tissue::Background,
        Tissue::WhiteMatter,
        Tissue::CorticalGm,
        Tissue::DeepGm,
        Tissue::Csf,
        Tissue::Skull,
        Tissue::Scalp,
        Tissue::Vessel,
        Tissue::ChoroidPlexus,
        Tissue::CerebellarGm,
        Tissue::CerebellarWm,
        Tissue::Brainstem,
        Tissue::Edema,
        Tissue::Necrosis,
        Tissue::EnhancingTumour,
        Tissue::SolidTumour,
        Tissue::AcuteInfarct,
        Tissue::ChronicInfarct,
        Tissue::Gliosis,
        Tissue::Wmh,
        Tissue::Meningioma,
        Tissue::Cyst,
        Tissue::AcuteBlood,
        Tissue::ChronicBlood,
        Tissue::AbscessPus,
        Tissue::AbscessCapsule,
        Tissue::Dura,
        Tissue::Marrow,
        Tissue::Fat,
        Tissue::Muscle,
        Tissue::Air,
        Tissue::Vitreous,
        Tissue::Lens,
        Tissue::Nerve,
        Tissue::SpinalCord,
        Tissue::RandomHead,
        Tissue::Support,
    ];
}

impl Tissue {
    /// Brain parenchyma: cerebral white matter, cortex and deep grey matter, cerebellar grey
    /// and white matter, brainstem (brain tissue, not CSF, vessels or choroid plexus). The one
    /// definition of "parenchyma" in the engine.
    pub fn is_parenchyma(self) -> bool {
        self.is_cerebral() || self.is_infratentorial()
    }

    /// Cerebral (supratentorial) parenchyma: white matter, cortex, deep grey matter; the tissue
    /// intra-axial lesions are painted into.
    pub fn is_cerebral(self) -> bool {
        matches!(
            self,
            Tissue::WhiteMatter | Tissue::CorticalGm | Tissue::DeepGm
        )
    }

    /// Posterior-fossa parenchyma: cerebellar grey and white matter, brainstem.
    pub fn is_infratentorial(self) -> bool {
        matches!(
            self,
            Tissue::CerebellarGm | Tissue::CerebellarWm | Tissue::Brainstem
        )
    }

    /// Whether the tissue lies outside the skull cavity (air, bone, marrow and every soft
    /// tissue of the scalp, face, orbits and neck). Dura and vessels count as inside: a
    /// meningioma grows from the dura and a subdural collection lies on it.
    pub fn is_outside_cavity(self) -> bool {
        matches!(
            self,
            Tissue::Background
                | Tissue::Skull
                | Tissue::Scalp
                | Tissue::Marrow
                | Tissue::Fat
                | Tissue::Muscle
                | Tissue::Air
                | Tissue::Vitreous
                | Tissue::Lens
                | Tissue::Nerve
                | Tissue::SpinalCord
                | Tissue::RandomHead
                | Tissue::Support
        )
    }
}

/// The tissue of a FreeSurfer (aseg / aparc+aseg) or head-model label; `None` for an id the
/// engine does not know (anatomies are checked with [`check_known`] before synthesis, so such
/// a label never reaches an image).
pub fn tissue_of_label(label: i32) -> Option<Tissue> {
    Some(match label {
        0 => Tissue::Background,
        2 | 41 | 77 | 85 | 251..=255 => Tissue::WhiteMatter,
        3 | 42 | 17 | 18 | 53 | 54 | 1000..=2999 => Tissue::CorticalGm,
        10..=13 | 26 | 28 | 49..=52 | 58 | 60 => Tissue::DeepGm,
        4 | 5 | 14 | 15 | 24 | 43 | 44 | EXTRACEREBRAL_CSF => Tissue::Csf,
        7 | 46 => Tissue::CerebellarWm,
        8 | 47 | 630..=632 => Tissue::CerebellarGm,
        BRAINSTEM => Tissue::Brainstem,
        30 | 62 => Tissue::Vessel,
        31 | 63 => Tissue::ChoroidPlexus,
        SKULL => Tissue::Skull,
        SCALP => Tissue::Scalp,
        DURA | FALX | TENTORIUM => Tissue::Dura,
        DIPLOE | VERTEBRA => Tissue::Marrow,
        SUBCUTANEOUS_FAT | ORBITAL_FAT => Tissue::Fat,
        GLOBE => Tissue::Vitreous,
        LENS => Tissue::Lens,
        OPTIC_NERVE => Tissue::Nerve,
        FRONTAL_SINUS | SPHENOID_SINUS | MAXILLARY_SINUS | MASTOID_AIR | NASAL_CAVITY => {
            Tissue::Air
        }
        TEMPORALIS | MASSETER | NECK_MUSCLE => Tissue::Muscle,
        SPINAL_CORD => Tissue::SpinalCord,
        SPINAL_CSF => Tissue::Csf,
        VENOUS_SINUS | NECK_VESSELS => Tissue::Vessel,
        HEAD_SUPPORT => Tissue::Support,
        l if is_random_head_class(l) => Tissue::RandomHead,
        _ => return None,
    })
}

/// Whether `label` is brain parenchyma ([`Tissue::is_parenchyma`]).
pub fn is_parenchyma_label(label: i32) -> bool {
    tissue_of_label(label).is_some_and(Tissue::is_parenchyma)
}

/// Checks that every label of `labels` has a tissue class, or names the first that has none.
pub fn check_known(labels: &LabelMap) -> Result<()> {
    let mut known = vec![false; LABEL_LUT_LEN];
    for (l, k) in known.iter_mut().enumerate() {
        *k = tissue_of_label(l as i32).is_some();
    }
    let unknown = labels.data().iter().copied().find(|&l| {
        usize::try_from(l)
            .ok()
            .and_then(|i| known.get(i))
            .is_none_or(|&k| !k)
    });
    match unknown {
        None => Ok(()),
        Some(label) => Err(SynthError::UnknownLabel { label }),
    }
}

/// Lesion-map ids of the components; their public path is `synth::lesion::ids`.
pub mod lesion_ids {
    /// Necrotic tumour core.
    pub const NECROSIS: i32 = 901;
    /// Enhancing tumour (rim).
    pub const ENHANCING: i32 = 902;
    /// Vasogenic edema (around tumours, haemorrhages and abscesses).
    pub const EDEMA: i32 = 903;
    /// Non-enhancing solid tumour.
    pub const SOLID: i32 = 904;
    /// Acute infarct.
    pub const ACUTE_INFARCT: i32 = 905;
    /// Chronic infarct (encephalomalacia).
    pub const CHRONIC_INFARCT: i32 = 906;
    /// White-matter hyperintensity.
    pub const WMH: i32 = 907;
    /// Meningioma (extra-axial, dural-based, enhancing).
    pub const MENINGIOMA: i32 = 908;
    /// Arachnoid cyst (extra-axial CSF collection).
    pub const ARACHNOID_CYST: i32 = 909;
    /// Intraparenchymal haemorrhage (acute blood).
    pub const HAEMORRHAGE: i32 = 910;
    /// Acute subdural haematoma (hyperdense blood).
    pub const SDH_ACUTE: i32 = 911;
    /// Chronic subdural haematoma (hypodense collection).
    pub const SDH_CHRONIC: i32 = 912;
    /// Abscess cavity (pus: restricted diffusion).
    pub const ABSCESS_CAVITY: i32 = 913;
    /// Abscess capsule (thin enhancing rim).
    pub const ABSCESS_CAPSULE: i32 = 914;
    /// Gliosis around a chronic infarct.
    pub const GLIOSIS: i32 = 915;
}

/// The tissue of a lesion-map component id ([`lesion_ids`]).
pub fn tissue_of_lesion(id: i32) -> Tissue {
    use lesion_ids::*;
    match id {
        NECROSIS => Tissue::Necrosis,
        ENHANCING => Tissue::EnhancingTumour,
        EDEMA => Tissue::Edema,
        SOLID => Tissue::SolidTumour,
        ACUTE_INFARCT => Tissue::AcuteInfarct,
        CHRONIC_INFARCT => Tissue::ChronicInfarct,
        WMH => Tissue::Wmh,
        MENINGIOMA => Tissue::Meningioma,
        ARACHNOID_CYST => Tissue::Cyst,
        HAEMORRHAGE | SDH_ACUTE => Tissue::AcuteBlood,
        SDH_CHRONIC => Tissue::ChronicBlood,
        ABSCESS_CAVITY => Tissue::AbscessPus,
        ABSCESS_CAPSULE => Tissue::AbscessCapsule,
        GLIOSIS => Tissue::Gliosis,
        _ => Tissue::Background,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxel::Geometry;

    #[test]
    fn parenchyma_is_cerebral_plus_posterior_fossa_and_unknown_labels_are_refused() {
        for l in [2, 3, 10, 1028, 7, 8, 16] {
            assert!(is_parenchyma_label(l), "{l}");
        }
        for l in [0, 4, 24, EXTRACEREBRAL_CSF, SKULL, SCALP, 31] {
            assert!(!is_parenchyma_label(l), "{l}");
        }
        assert_eq!(tissue_of_label(9999), None);
        let g = Geometry::from_spacing([2, 1, 1], [1.0; 3], [0.0; 3]).unwrap();
        let known = LabelMap::new(g.clone(), vec![2, SKULL]).unwrap();
        assert!(check_known(&known).is_ok());
        let unknown = LabelMap::new(g, vec![2, 9999]).unwrap();
        assert!(matches!(
            check_known(&unknown),
            Err(SynthError::UnknownLabel { label: 9999 })
        ));
    }
}
