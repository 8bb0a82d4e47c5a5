//! Questions with a finite set of answers about one lesion: its signal on a contrast, its
//! location, its vascular territory, diffusion restriction (given DWI and ADC) and enhancement
//! (given pre- and post-contrast T1). The answers are `synth`'s recorded attributes; the
//! programs measure the evidence (intensity ratios against the surrounding tissue, centroid)
//! and read it before answering.

use super::segmentation::missing;
use super::{done, encode_step, input_of};
use crate::catalogue::Catalogue;
use crate::checker::{ChoiceOption, ExpectedChoice};
use crate::classes::ActiveClass;
use crate::error::{Result, TaskError};
use crate::family::{
    bind_inputs, pick_contrasts, synthesize, Family, FamilyInfo, Group, Outcome, MIN_ROI_VOXELS,
};
use crate::phrases::modality_name;
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Intensity, Key, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use synth::lesion::LesionRecord;
use synth::{Contrast, Hemisphere, Territory};

/// The characterisation families.
pub fn families() -> Vec<Box<dyn Family>> {
    [
        Ask::Signal,
        Ask::Location,
        Ask::Territory,
        Ask::Diffusion,
        Ask::Enhancement,
    ]
    .into_iter()
    .map(|a| Box::new(Characterise(a)) as Box<dyn Family>)
    .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    Signal,
    Location,
    Territory,
    Diffusion,
    Enhancement,
}

/// Contrasts signal questions name: every MR contrast (CT densities are not "signal").
fn signal_contrasts() -> impl Iterator<Item = Contrast> {
    Contrast::ALL.into_iter().filter(|&c| c != Contrast::Ct)
}

/// Location answers: canonical name and the phrases that count as naming it.
const LOCATIONS: &[(&str, &[&str])] = &[
    ("frontal lobe", &["frontal lobe", "frontal"]),
    ("parietal lobe", &["parietal lobe", "parietal"]),
    ("temporal lobe", &["temporal lobe", "temporal"]),
    ("occipital lobe", &["occipital lobe", "occipital"]),
    ("insula", &["insula", "insular"]),
    ("cingulate gyrus", &["cingulate gyrus", "cingulate"]),
    (
        "deep grey matter",
        &["deep grey matter", "basal ganglia", "thalamus"],
    ),
    ("white matter", &["white matter"]),
    ("lateral ventricle", &["lateral ventricle"]),
    ("third ventricle", &["third ventricle"]),
    ("fourth ventricle", &["fourth ventricle"]),
    ("brainstem", &["brainstem", "brain stem"]),
    ("cerebellum", &["cerebellum", "cerebellar"]),
    ("cerebellopontine angle", &["cerebellopontine angle", "cpa"]),
];

/// The location answer for a lesion record and whether a side goes with it; `None` when the
/// record's site is not one of the answers.
pub fn location_of(r: &LesionRecord) -> Option<(&'static str, bool)> {
    let site = r.site.as_str();
    if site == synth::lesion::CEREBELLOPONTINE_ANGLE {
        return Some(("cerebellopontine angle", true));
    }
    if site.contains("lateral ventricle") && !site.contains("inferior") {
        return Some(("lateral ventricle", true));
    }
    for (s, lateral) in [
        ("third ventricle", false),
        ("fourth ventricle", false),
        ("brainstem", false),
    ] {
        if site == s {
            return Some((s, lateral));
        }
    }
    if site.contains("cerebellar") {
        return Some(("cerebellum", true));
    }
    Some(match r.lobe.as_str() {
        "frontal lobe" => ("frontal lobe", true),
        "parietal lobe" => ("parietal lobe", true),
        "temporal lobe" => ("temporal lobe", true),
        "occipital lobe" => ("occipital lobe", true),
        "insula" => ("insula", true),
        "cingulate cortex" => ("cingulate gyrus", true),
        "deep grey matter" => ("deep grey matter", true),
        "cerebral white matter" => ("white matter", true),
        _ => return None,
    })
}

fn options(list: &[(&str, &[&str])]) -> Vec<ChoiceOption> {
    list.iter()
        .map(|(n, ps)| ChoiceOption {
            name: n.to_string(),
            phrases: ps.iter().map(|p| p.to_string()).collect(),
        })
        .collect()
}

/// The lesion class a characterisation scenario asks about (its `lesion` slot).
pub(crate) fn asked_class<'c>(
    cat: &'c Catalogue,
    s: &Scenario,
    family: &str,
) -> Result<&'c ActiveClass> {
    let Some(Key::Class(c)) = s.get("lesion") else {
        return Err(missing(family, "lesion"));
    };
    cat.class(c)
}

/// A yes/no question's expected choice.
pub(crate) fn yes_no(what: &str, yes: bool) -> ExpectedChoice {
    ExpectedChoice {
        what: what.into(),
        answer: if yes { "yes" } else { "no" }.into(),
        options: options(&[("yes", &["yes"]), ("no", &["no"])]),
    }
}

/// A finite-answer question about one lesion.
pub struct Characterise(Ask);

impl Family for Characterise {
    fn info(&self) -> FamilyInfo {
        let (id, asks, inputs, answer) = match self.0 {
            Ask::Signal => (
                "signal_intensity",
                "whether a lesion is hyper-, hypo- or isointense on a named contrast (relative to the surrounding parenchyma)",
                "the named contrast and up to one more; one session; one lesion",
                "`The X is hyperintense on M.` (hyperintense / hypointense / isointense)",
            ),
            Ask::Location => (
                "location",
                "where a lesion is: side and lobe / insula / cingulate gyrus / deep grey matter / white matter / ventricles / brainstem / cerebellum",
                "1–2 contrasts the class is conspicuous on; one session; one lesion",
                "`The X is in the left frontal lobe.`",
            ),
            Ask::Territory => (
                "vascular_territory",
                "the arterial territory (ACA, MCA or PCA) of an infarct",
                "1–2 contrasts the class is conspicuous on; one session; one infarct",
                "`The X lies in the left MCA (middle cerebral artery) territory.`",
            ),
            Ask::Diffusion => (
                "diffusion_restriction",
                "whether a lesion restricts diffusion, given DWI and ADC",
                "DWI and ADC (10⁻³ mm²/s) of one session; one lesion",
                "`Yes: the X shows restricted diffusion.` / `No: the X does not show restricted diffusion.`",
            ),
            Ask::Enhancement => (
                "enhancement",
                "whether a lesion enhances, given pre- and post-contrast T1",
                "T1w and T1w post-contrast of one session; one lesion",
                "`Yes: the X enhances after contrast.` / `No: the X does not enhance after contrast.`",
            ),
        };
        FamilyInfo {
            id,
            group: Group::Characterisation,
            asks,
            inputs,
            program: "encode → read(e) → generate lesion (and surrounding tissue) → read intensity ratios / centroid → respond with the answer → stop",
            answer,
            tolerance: "exact: the right option and no other",
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        match self.0 {
            Ask::Signal => &[
                "{lead}{what_is} the signal intensity of the {lesion} on {contrast}{qend}",
                "{lead}is the {lesion} hyperintense, hypointense or isointense on {contrast}{qend}",
                "{lead}how does the {lesion} appear on the {contrast}{qend}",
                "{req}describe the {contrast} signal of the {lesion}{end}",
                "{lesion} signal on {contrast}{qend}",
                "{lead}{can_you}characterise the {lesion} on {contrast}{qend}",
                "{lead}is the {lesion} bright or dark on {contrast} compared with the surrounding tissue{qend}",
            ],
            Ask::Location => &[
                "{lead}where is the {lesion}{qend}",
                "{req}localise the {lesion}{end}",
                "{lead}in which lobe is the {lesion}{qend}",
                "{lead}{what_is} the location of the {lesion}{qend}",
                "{lead}which part of the brain does the {lesion} involve{qend}",
                "{lead}{can_you}tell me where the {lesion} is located{qend}",
                "{lesion} location{qend}",
            ],
            Ask::Territory => &[
                "{lead}which vascular territory does the {lesion} involve{qend}",
                "{lead}{what_is} the arterial territory of the {lesion}{qend}",
                "{lead}is the {lesion} in the ACA, MCA or PCA territory{qend}",
                "{req}name the vascular territory of the {lesion}{end}",
                "{lead}which artery supplies the region of the {lesion}{qend}",
                "{lead}{can_you}determine the vascular territory of the {lesion}{qend}",
                "{lesion} territory{qend}",
            ],
            Ask::Diffusion => &[
                "{lead}does the {lesion} show restricted diffusion{qend}",
                "{lead}is there diffusion restriction in the {lesion}{qend}",
                "{req}check the {lesion} for restricted diffusion on DWI and ADC{end}",
                "{lead}is the {lesion} bright on DWI and dark on ADC{qend}",
                "{lead}{what_is} the diffusion behaviour of the {lesion}{qend}",
                "{lead}{can_you}tell whether the {lesion} restricts diffusion{qend}",
                "{lesion}: restricted diffusion, yes or no{qend}",
            ],
            Ask::Enhancement => &[
                "{lead}does the {lesion} enhance{qend}",
                "{lead}is there contrast enhancement of the {lesion}{qend}",
                "{req}compare the pre- and post-contrast T1 for enhancement of the {lesion}{end}",
                "{lead}does the {lesion} take up gadolinium{qend}",
                "{lead}{what_is} the enhancement of the {lesion}: enhancing or not{qend}",
                "{lead}{can_you}tell whether the {lesion} enhances after contrast{qend}",
                "{lesion}: enhancing, yes or no{qend}",
            ],
        }
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        for (c, class) in cat.classes().iter().enumerate() {
            let ok = match self.0 {
                Ask::Signal | Ask::Diffusion | Ask::Enhancement => true,
                Ask::Location => class.entry.focal,
                Ask::Territory => class.entry.vascular,
            };
            if !ok {
                continue;
            }
            let base = Scenario::new().with("lesion", Key::Class(c));
            if self.0 == Ask::Signal {
                for k in signal_contrasts() {
                    out.push(base.clone().with("contrast", Key::Contrast(k)));
                }
            } else {
                out.push(base);
            }
        }
        Ok(out)
    }

    fn subject_attempts(&self) -> usize {
        6
    }

    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let id = self.info().id;
        let class = asked_class(cat, s, id)?;
        let canonical = class.entry.canonical;
        // Diffuse classes are named in the plural ("white matter hyperintensities").
        let plural = !class.entry.focal;
        let (is, shows, enhances, does) = if plural {
            ("are", "show", "enhance", "do")
        } else {
            ("is", "shows", "enhances", "does")
        };
        let pool = class.entry.contrasts;
        let n = rng.random_range(1..=2);
        let contrasts: Vec<Contrast> = match (self.0, s.get("contrast")) {
            (Ask::Signal, Some(Key::Contrast(k))) => pick_contrasts(
                Some(k),
                &[Contrast::T1, Contrast::T2, Contrast::Flair],
                n,
                rng,
            ),
            (Ask::Diffusion, _) => pick_contrasts(Some(Contrast::Dwi), &[Contrast::Adc], 2, rng),
            (Ask::Enhancement, _) => pick_contrasts(Some(Contrast::T1), &[Contrast::T1c], 2, rng),
            _ => pick_contrasts(Some(pool[rng.random_range(0..pool.len())]), pool, n, rng),
        };
        let synth = match synthesize(cat, &contrasts, &[class.class], 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let lesion = MaskDef::Lesion {
            lesion: 0,
            components: class.entry.proper.to_vec(),
        };
        let mask = synth.truth.mask(&lesion, 0)?;
        if mask.count() < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(format!(
                "the {canonical} has {} voxels",
                mask.count()
            )));
        }
        let record = synth
            .truth
            .session(0)?
            .records
            .first()
            .cloned()
            .ok_or_else(|| missing(id, "lesion record"))?;
        let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&k| (0, k)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let scan = |k: Contrast| {
            input_of(&inputs, k)
                .map(|i| i.name.clone())
                .ok_or_else(|| TaskError::Program {
                    family: id.into(),
                    problem: format!("no {} input", k.name()),
                })
        };
        let streams = inputs.len();
        let mut p = ProgramBuilder::new();
        p.target("lesion", canonical, lesion.clone());
        let around = MaskDef::Surroundings { lesion: 0 };
        p.step(encode_step(&inputs));
        let gen_lesion = format!("let m = {};", generate_first("e", "lesion", streams));
        let gen_ring = format!("let ring = {};", generate_first("e", "around", streams));
        let (evidence, reply, choices) = match self.0 {
            Ask::Signal => {
                let Some(Key::Contrast(k)) = s.get("contrast") else {
                    return Err(missing(id, "contrast"));
                };
                p.target(
                    "around",
                    &format!("tissue surrounding the {canonical}"),
                    around,
                );
                let answer = record
                    .intensity
                    .get(&k)
                    .copied()
                    .map(Intensity::of)
                    .ok_or_else(|| missing(id, "intensity record"))?;
                let sc = scan(k)?;
                let choice = ExpectedChoice {
                    what: format!("signal on {}", modality_name(k)),
                    answer: answer.word().into(),
                    options: Intensity::ALL
                        .iter()
                        .map(|i| ChoiceOption {
                            name: i.word().into(),
                            phrases: vec![i.word().into()],
                        })
                        .collect(),
                };
                (
                    format!(
                        "{gen_lesion}\n{gen_ring}\nread(ratio(mean({sc}, m), mean({sc}, ring)));"
                    ),
                    Reply::new().text(&format!(
                        "The {canonical} {is} {} on {}.",
                        answer.word(),
                        modality_name(k)
                    )),
                    vec![choice],
                )
            }
            Ask::Location | Ask::Territory => {
                if record.hemisphere == Hemisphere::Both {
                    return Ok(Outcome::Rejected("the lesion straddles the midline".into()));
                }
                let side = if record.hemisphere == Hemisphere::Left {
                    "left"
                } else {
                    "right"
                };
                let side_choice = ExpectedChoice {
                    what: "side".into(),
                    answer: side.into(),
                    options: options(&[("left", &["left"]), ("right", &["right"])]),
                };
                if self.0 == Ask::Location {
                    let Some((place, lateral)) = location_of(&record) else {
                        return Ok(Outcome::Rejected(format!(
                            "no location answer for site {:?}",
                            record.site
                        )));
                    };
                    let mut choices = vec![ExpectedChoice {
                        what: "location".into(),
                        answer: place.into(),
                        options: options(LOCATIONS),
                    }];
                    let text = if lateral {
                        choices.push(side_choice);
                        format!("The {canonical} is in the {side} {place}.")
                    } else {
                        format!("The {canonical} is in the {place}.")
                    };
                    (
                        format!("{gen_lesion}\nread(volume(m));\nread(centroid(m));"),
                        Reply::new().text(&text),
                        choices,
                    )
                } else {
                    let (abbr, long) = match record.territory {
                        Some(Territory::ACA) => ("ACA", "anterior cerebral artery"),
                        Some(Territory::MCA) => ("MCA", "middle cerebral artery"),
                        Some(Territory::PCA) => ("PCA", "posterior cerebral artery"),
                        _ => {
                            return Ok(Outcome::Rejected(
                                "the lesion is outside the ACA/MCA/PCA territories".into(),
                            ))
                        }
                    };
                    let choice = ExpectedChoice {
                        what: "vascular territory".into(),
                        answer: abbr.into(),
                        options: options(&[
                            ("ACA", &["aca", "anterior cerebral artery"]),
                            ("MCA", &["mca", "middle cerebral artery"]),
                            ("PCA", &["pca", "posterior cerebral artery"]),
                        ]),
                    };
                    (
                        format!("{gen_lesion}\nread(volume(m));\nread(centroid(m));"),
                        Reply::new().text(&format!(
                            "The {canonical} lies in the {side} {abbr} ({long}) territory."
                        )),
                        vec![choice, side_choice],
                    )
                }
            }
            Ask::Diffusion => {
                p.target(
                    "around",
                    &format!("tissue surrounding the {canonical}"),
                    around,
                );
                let (dwi, adc) = (scan(Contrast::Dwi)?, scan(Contrast::Adc)?);
                let yes = record.restricted_diffusion;
                let text = if yes {
                    format!("Yes: the {canonical} {shows} restricted diffusion.")
                } else {
                    format!("No: the {canonical} {does} not show restricted diffusion.")
                };
                (
                    format!(
                        "{gen_lesion}\n{gen_ring}\nread([ratio(mean({dwi}, m), mean({dwi}, ring)), ratio(mean({adc}, m), mean({adc}, ring))]);"
                    ),
                    Reply::new().text(&text),
                    vec![yes_no("restricted diffusion", yes)],
                )
            }
            Ask::Enhancement => {
                let (pre, post) = (scan(Contrast::T1)?, scan(Contrast::T1c)?);
                let yes = record.enhancement;
                let text = if yes {
                    format!("Yes: the {canonical} {enhances} after contrast.")
                } else {
                    format!("No: the {canonical} {does} not enhance after contrast.")
                };
                (
                    format!("{gen_lesion}\nread(ratio(mean({post}, m), mean({pre}, m)));"),
                    Reply::new().text(&text),
                    vec![yes_no("enhancement", yes)],
                )
            }
        };
        p.step(evidence);
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, inputs, &synth, &[reply], choices, vec![])
    }
}
