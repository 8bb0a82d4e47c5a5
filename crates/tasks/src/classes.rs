//! Lesion classes as data: how prompts name each class and its components, which lesion-map
//! ids make up the lesion proper and each component, the contrasts it is conspicuous on, and
//! which kinds of question it suits. Families never match on [`LesionClass`] variants; they read
//! this table, so a new class is one entry here.
//!
//! Every entry names a `synth` class ([`LesionClass::parse`] accepts its `name`; a unit test
//! checks it), so a class added to `synth` is one entry here (see docs/tasks.md, "Adding a
//! lesion class").

use synth::lesion::ids;
use synth::{Contrast, LesionClass};

/// A named part of a lesion ("enhancing tumour", "necrotic core").
#[derive(Clone, Copy, Debug)]
pub struct ComponentEntry {
    /// Canonical name, used in responses.
    pub name: &'static str,
    /// Lesion-map ids that make up the component.
    pub ids: &'static [i32],
    /// How prompts name it.
    pub phrases: &'static [&'static str],
}

/// One lesion class with everything prompts and programs need to know about it.
#[derive(Clone, Copy, Debug)]
pub struct ClassEntry {
    /// The `synth` class name (`LesionClass::name()`, accepted by `LesionClass::parse`).
    pub name: &'static str,
    /// Canonical name in responses, e.g. `acute infarct`.
    pub canonical: &'static str,
    /// How prompts name one lesion of the class.
    pub phrases: &'static [&'static str],
    /// How prompts name several.
    pub plurals: &'static [&'static str],
    /// Lesion-map ids of the lesion proper (edema excluded).
    pub proper: &'static [i32],
    /// Named components (may be empty), including edema where the class has it.
    pub components: &'static [ComponentEntry],
    /// Contrasts the lesion is conspicuous on, most useful first.
    pub contrasts: &'static [Contrast],
    /// A single focus ("the lesion") rather than a diffuse pattern (WMH).
    pub focal: bool,
    /// Several lesions of the class in one subject are plausible (descriptor questions).
    pub multiple: bool,
    /// Arterial-territory questions make sense (infarcts).
    pub vascular: bool,
}

const EDEMA_COMPONENT: ComponentEntry = ComponentEntry {
    name: "perilesional edema",
    ids: &[ids::EDEMA],
    phrases: &[
        "edema",
        "oedema",
        "surrounding edema",
        "perilesional edema",
        "vasogenic edema",
    ],
};

/// The table. Active entries first; the pending ones follow (see the module docs).
pub const CLASSES: &[ClassEntry] = &[
    ClassEntry {
        name: "glioma",
        canonical: "glioma",
        phrases: &[
            "glioma",
            "tumour",
            "tumor",
            "brain tumour",
            "glial tumour",
            "mass",
            "neoplasm",
            "lesion",
        ],
        plurals: &["gliomas", "tumours", "tumors", "masses", "lesions"],
        proper: &[ids::NECROSIS, ids::ENHANCING, ids::SOLID],
        components: &[
            ComponentEntry {
                name: "necrotic core",
                ids: &[ids::NECROSIS],
                phrases: &[
                    "necrotic core",
                    "necrosis",
                    "necrotic component",
                    "central necrosis",
                    "necrotic centre",
                ],
            },
            ComponentEntry {
                name: "enhancing tumour",
                ids: &[ids::ENHANCING],
                phrases: &[
                    "enhancing tumour",
                    "enhancing rim",
                    "enhancing component",
                    "enhancing part",
                    "contrast-enhancing tumor",
                ],
            },
            ComponentEntry {
                name: "non-enhancing tumour",
                ids: &[ids::SOLID],
                phrases: &[
                    "non-enhancing tumour",
                    "non-enhancing component",
                    "non-enhancing part",
                    "solid non-enhancing tumor",
                ],
            },
            ComponentEntry {
                name: "peritumoural edema",
                ids: &[ids::EDEMA],
                phrases: &[
                    "edema",
                    "oedema",
                    "peritumoural edema",
                    "peritumoral edema",
                    "surrounding edema",
                    "vasogenic edema",
                ],
            },
            ComponentEntry {
                name: "tumour core",
                ids: &[ids::NECROSIS, ids::ENHANCING, ids::SOLID],
                phrases: &["tumour core", "tumor core", "solid tumour with necrosis"],
            },
            ComponentEntry {
                name: "whole tumour",
                ids: &[ids::NECROSIS, ids::ENHANCING, ids::EDEMA, ids::SOLID],
                phrases: &[
                    "whole tumour",
                    "whole tumor",
                    "tumour including edema",
                    "entire abnormality including edema",
                ],
            },
        ],
        contrasts: &[Contrast::Flair, Contrast::T1c, Contrast::T2, Contrast::T1],
        focal: true,
        multiple: true,
        vascular: false,
    },
    ClassEntry {
        name: "metastasis",
        canonical: "metastasis",
        phrases: &[
            "metastasis",
            "metastatic lesion",
            "metastatic deposit",
            "met",
            "secondary deposit",
            "brain metastasis",
            "lesion",
        ],
        plurals: &[
            "metastases",
            "mets",
            "metastatic lesions",
            "deposits",
            "lesions",
        ],
        proper: &[ids::NECROSIS, ids::ENHANCING],
        components: &[
            ComponentEntry {
                name: "enhancing rim",
                ids: &[ids::ENHANCING],
                phrases: &[
                    "enhancing rim",
                    "enhancing component",
                    "enhancing part",
                    "solid enhancing tumour",
                ],
            },
            ComponentEntry {
                name: "necrotic core",
                ids: &[ids::NECROSIS],
                phrases: &[
                    "necrotic core",
                    "necrotic centre",
                    "central necrosis",
                    "necrosis",
                ],
            },
            EDEMA_COMPONENT,
        ],
        contrasts: &[Contrast::T1c, Contrast::Flair, Contrast::T2],
        focal: true,
        multiple: true,
        vascular: false,
    },
    ClassEntry {
        name: "acute_infarct",
        canonical: "acute infarct",
        phrases: &[
            "acute infarct",
            "acute stroke",
            "infarct",
            "stroke",
            "ischaemic lesion",
            "ischemic lesion",
            "recent infarct",
            "lesion",
        ],
        plurals: &[
            "acute infarcts",
            "infarcts",
            "strokes",
            "ischaemic lesions",
            "lesions",
        ],
        proper: &[ids::ACUTE_INFARCT],
        components: &[],
        contrasts: &[Contrast::Dwi, Contrast::Flair, Contrast::T2, Contrast::Adc],
        focal: true,
        multiple: true,
        vascular: true,
    },
    ClassEntry {
        name: "chronic_infarct",
        canonical: "chronic infarct",
        phrases: &[
            "chronic infarct",
            "old infarct",
            "old stroke",
            "prior infarct",
            "remote infarct",
            "lesion",
        ],
        plurals: &["chronic infarcts", "old infarcts", "old strokes", "lesions"],
        proper: &[ids::CHRONIC_INFARCT, ids::GLIOSIS],
        components: &[
            ComponentEntry {
                name: "encephalomalacia",
                ids: &[ids::CHRONIC_INFARCT],
                phrases: &[
                    "encephalomalacia",
                    "encephalomalacic cavity",
                    "cystic encephalomalacia",
                    "tissue loss",
                ],
            },
            ComponentEntry {
                name: "gliosis",
                ids: &[ids::GLIOSIS],
                phrases: &[
                    "gliosis",
                    "gliotic rim",
                    "surrounding gliosis",
                    "gliotic tissue",
                ],
            },
        ],
        contrasts: &[Contrast::Flair, Contrast::T1, Contrast::T2],
        focal: true,
        multiple: true,
        vascular: true,
    },
    ClassEntry {
        name: "wmh",
        canonical: "white matter hyperintensities",
        phrases: &[
            "white matter hyperintensities",
            "WMH",
            "white matter lesions",
            "leukoaraiosis",
            "small vessel disease lesions",
            "FLAIR hyperintensities",
        ],
        plurals: &[
            "white matter hyperintensities",
            "WMHs",
            "white matter lesions",
        ],
        proper: &[ids::WMH],
        components: &[],
        contrasts: &[Contrast::Flair, Contrast::T2],
        focal: false,
        multiple: false,
        vascular: false,
    },
    ClassEntry {
        name: "meningioma",
        canonical: "meningioma",
        phrases: &[
            "meningioma",
            "extra-axial mass",
            "dural-based mass",
            "extra-axial tumour",
            "lesion",
        ],
        plurals: &["meningiomas", "extra-axial masses", "lesions"],
        proper: &[ids::MENINGIOMA],
        components: &[EDEMA_COMPONENT],
        contrasts: &[Contrast::T1c, Contrast::T2, Contrast::Flair],
        focal: true,
        multiple: true,
        vascular: false,
    },
    ClassEntry {
        name: "arachnoid_cyst",
        canonical: "arachnoid cyst",
        phrases: &[
            "arachnoid cyst",
            "cyst",
            "extra-axial cyst",
            "CSF-like cyst",
            "lesion",
        ],
        plurals: &["arachnoid cysts", "cysts", "lesions"],
        proper: &[ids::ARACHNOID_CYST],
        components: &[],
        contrasts: &[Contrast::T2, Contrast::Flair, Contrast::T1],
        focal: true,
        multiple: false,
        vascular: false,
    },
    ClassEntry {
        name: "haemorrhage",
        canonical: "haemorrhage",
        phrases: &[
            "haemorrhage",
            "hemorrhage",
            "bleed",
            "haematoma",
            "intraparenchymal haemorrhage",
            "ICH",
            "lesion",
        ],
        plurals: &["haemorrhages", "hemorrhages", "bleeds", "lesions"],
        proper: &[ids::HAEMORRHAGE],
        components: &[EDEMA_COMPONENT],
        contrasts: &[Contrast::Ct, Contrast::Gre, Contrast::T1],
        focal: true,
        multiple: true,
        vascular: false,
    },
    ClassEntry {
        name: "subdural_haematoma",
        canonical: "subdural haematoma",
        phrases: &[
            "subdural haematoma",
            "subdural hematoma",
            "SDH",
            "subdural collection",
            "subdural bleed",
        ],
        plurals: &["subdural haematomas", "subdural collections"],
        proper: &[ids::SDH_ACUTE, ids::SDH_CHRONIC],
        components: &[
            ComponentEntry {
                name: "acute component",
                ids: &[ids::SDH_ACUTE],
                phrases: &[
                    "acute component",
                    "acute blood",
                    "hyperdense component",
                    "fresh blood",
                ],
            },
            ComponentEntry {
                name: "chronic component",
                ids: &[ids::SDH_CHRONIC],
                phrases: &[
                    "chronic component",
                    "chronic blood",
                    "hypodense component",
                    "old blood",
                ],
            },
        ],
        contrasts: &[Contrast::Ct, Contrast::Flair, Contrast::T1],
        focal: false,
        multiple: false,
        vascular: false,
    },
    ClassEntry {
        name: "abscess",
        canonical: "abscess",
        phrases: &[
            "abscess",
            "brain abscess",
            "ring-enhancing lesion",
            "infective lesion",
            "lesion",
        ],
        plurals: &["abscesses", "ring-enhancing lesions", "lesions"],
        proper: &[ids::ABSCESS_CAVITY, ids::ABSCESS_CAPSULE],
        components: &[
            ComponentEntry {
                name: "abscess cavity",
                ids: &[ids::ABSCESS_CAVITY],
                phrases: &[
                    "cavity",
                    "abscess cavity",
                    "central cavity",
                    "pus-filled cavity",
                ],
            },
            ComponentEntry {
                name: "abscess capsule",
                ids: &[ids::ABSCESS_CAPSULE],
                phrases: &[
                    "capsule",
                    "abscess capsule",
                    "enhancing wall",
                    "abscess wall",
                ],
            },
            EDEMA_COMPONENT,
        ],
        contrasts: &[Contrast::T1c, Contrast::Dwi, Contrast::Flair],
        focal: true,
        multiple: true,
        vascular: false,
    },
];

/// A table entry that `synth` can synthesise, with its class.
#[derive(Clone, Copy, Debug)]
pub struct ActiveClass {
    /// The entry.
    pub entry: &'static ClassEntry,
    /// The synth class.
    pub class: LesionClass,
}

/// The entries with their `synth` class, in table order (every entry has one; see the module
/// docs).
pub fn active_classes() -> Vec<ActiveClass> {
    CLASSES
        .iter()
        .filter_map(|entry| {
            LesionClass::parse(entry.name)
                .ok()
                .map(|class| ActiveClass { entry, class })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_a_synth_class_named_alike() {
        let active = active_classes();
        assert_eq!(active.len(), CLASSES.len(), "an entry names no synth class");
        for a in &active {
            assert_eq!(a.entry.name, a.class.name());
        }
        for e in CLASSES {
            assert!(!e.phrases.is_empty() && !e.plurals.is_empty() && !e.proper.is_empty());
            assert!(!e.contrasts.is_empty());
            assert!(
                !e.proper.contains(&ids::EDEMA),
                "{}: edema is not the lesion proper",
                e.name
            );
        }
    }
}
