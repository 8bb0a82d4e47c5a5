//! The lesion classes: their names and aliases, the lesion-map components each can paint, and
//! the stages of a subdural haematoma.

use super::ids;
use crate::error::{Result, SynthError};
use serde::{Deserialize, Serialize};

/// A pathology class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionClass {
    /// Glioma: necrotic core, enhancing rim (or non-enhancing tumour), edema.
    Glioma,
    /// Metastasis at the grey-white junction: enhancing, small necrotic core, edema. A subject
    /// may have several, each at its own site.
    Metastasis,
    /// Acute infarct in an arterial territory: DWI bright, ADC dark.
    AcuteInfarct,
    /// Chronic infarct: encephalomalacia with a gliotic rim.
    ChronicInfarct,
    /// Multifocal white-matter hyperintensities.
    Wmh,
    /// Convexity or falx meningioma: dural-based, homogeneous, avidly enhancing, displaces the
    /// brain; sometimes edema in the white matter beneath.
    Meningioma,
    /// Arachnoid cyst of the middle cranial or posterior fossa: CSF on every contrast.
    ArachnoidCyst,
    /// Acute intraparenchymal haemorrhage (deep grey or lobar): hyperdense on CT, dark on T2
    /// and GRE, thin rim of edema.
    Haemorrhage,
    /// Subdural haematoma over a convexity: acute, chronic or acute-on-chronic crescent.
    SubduralHaematoma,
    /// Pyogenic abscess: restricting cavity, thin enhancing capsule, edema.
    Abscess,
}

impl LesionClass {
    /// Every class, in declaration order.
    pub const ALL: [LesionClass; 10] = [
        LesionClass::Glioma,
        LesionClass::Metastasis,
        LesionClass::AcuteInfarct,
        LesionClass::ChronicInfarct,
        LesionClass::Wmh,
        LesionClass::Meningioma,
        LesionClass::ArachnoidCyst,
        LesionClass::Haemorrhage,
        LesionClass::SubduralHaematoma,
        LesionClass::Abscess,
    ];

    /// Lower-case name used by the CLI (`glioma`, `metastasis`, `acute_infarct`, …).
    pub fn name(self) -> &'static str {
        match self {
            LesionClass::Glioma => "glioma",
            LesionClass::Metastasis => "metastasis",
            LesionClass::AcuteInfarct => "acute_infarct",
            LesionClass::ChronicInfarct => "chronic_infarct",
            LesionClass::Wmh => "wmh",
            LesionClass::Meningioma => "meningioma",
            LesionClass::ArachnoidCyst => "arachnoid_cyst",
            LesionClass::Haemorrhage => "haemorrhage",
            LesionClass::SubduralHaematoma => "subdural_haematoma",
            LesionClass::Abscess => "abscess",
        }
    }

    /// Parses a class name or alias (`tumour`, `stroke`, `ich`, `sdh`, `subdural_hematoma`, …).
    pub fn parse(name: &str) -> Result<LesionClass> {
        Ok(
            match name.trim().to_lowercase().replace(['-', ' '], "_").as_str() {
                "glioma" | "tumour" | "tumor" => LesionClass::Glioma,
                "metastasis" | "metastases" | "met" => LesionClass::Metastasis,
                "acute_infarct" | "infarct" | "stroke" => LesionClass::AcuteInfarct,
                "chronic_infarct" => LesionClass::ChronicInfarct,
                "wmh" | "white_matter_hyperintensities" => LesionClass::Wmh,
                "meningioma" => LesionClass::Meningioma,
                "arachnoid_cyst" => LesionClass::ArachnoidCyst,
                "haemorrhage"
                | "hemorrhage"
                | "ich"
                | "intraparenchymal_haemorrhage"
                | "intraparenchymal_hemorrhage" => LesionClass::Haemorrhage,
                "subdural_haematoma" | "sdh" | "subdural_hematoma" => {
                    LesionClass::SubduralHaematoma
                }
                "abscess" => LesionClass::Abscess,
                other => {
                    let names: Vec<&str> = LesionClass::ALL.iter().map(|c| c.name()).collect();
                    return Err(SynthError::InvalidArgument(format!(
                        "unknown lesion class {other:?}; implemented: {}",
                        names.join(" ")
                    )));
                }
            },
        )
    }

    /// Every lesion-map id this class can paint (see [`ids`]); optional components included.
    pub fn component_ids(self) -> &'static [i32] {
        use ids::*;
        match self {
            LesionClass::Glioma => &[NECROSIS, ENHANCING, EDEMA, SOLID],
            LesionClass::Metastasis => &[NECROSIS, ENHANCING, EDEMA],
            LesionClass::AcuteInfarct => &[ACUTE_INFARCT],
            LesionClass::ChronicInfarct => &[CHRONIC_INFARCT, GLIOSIS],
            LesionClass::Wmh => &[WMH],
            LesionClass::Meningioma => &[MENINGIOMA, EDEMA],
            LesionClass::ArachnoidCyst => &[ARACHNOID_CYST],
            LesionClass::Haemorrhage => &[HAEMORRHAGE, EDEMA],
            LesionClass::SubduralHaematoma => &[SDH_ACUTE, SDH_CHRONIC],
            LesionClass::Abscess => &[ABSCESS_CAVITY, ABSCESS_CAPSULE, EDEMA],
        }
    }

    /// Whether the class lies between skull and brain (and displaces the brain).
    pub fn is_extra_axial(self) -> bool {
        matches!(
            self,
            LesionClass::Meningioma | LesionClass::ArachnoidCyst | LesionClass::SubduralHaematoma
        )
    }

    /// Whether the lesion is star-shaped about its centre (one centred ellipsoid; its noise
    /// depends on direction only), which the radial mass effect relies on.
    pub(crate) fn is_star_shaped(self) -> bool {
        matches!(self, LesionClass::Meningioma | LesionClass::ArachnoidCyst)
    }
}

/// Ids of the components that enhance on post-contrast T1.
pub(super) const ENHANCING_IDS: [i32; 3] = [ids::ENHANCING, ids::MENINGIOMA, ids::ABSCESS_CAPSULE];

/// Composition of a subdural haematoma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdhStage {
    /// Hyperdense blood only.
    Acute,
    /// Hypodense, CSF-like collection only.
    Chronic,
    /// Acute-on-chronic: hyperdense blood layering dependently in a chronic collection.
    Mixed,
}
