//! Changes over two or more sessions of one subject: lesion volume change (mL and %), change
//! of a lesion's mean signal, ventricular growth, and a lesion's volume at every visit. Each
//! session is one input (same contrast), encoded together as streams; `generate` returns one
//! mask per session.

use super::done;
use super::segmentation::missing;
use crate::catalogue::Catalogue;
use crate::checker::Quantity;
use crate::error::Result;
use crate::family::{bind_inputs, synthesize, Family, FamilyInfo, Group, Outcome, MIN_ROI_VOXELS};
use crate::phrases::modality_name;
use crate::program::{encode_call, ProgramBuilder, Reply};
use crate::scenario::{Key, Roi, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use synth::{Contrast, LesionClass};

/// The longitudinal families.
pub fn families() -> Vec<Box<dyn Family>> {
    [
        Change::VolumeMl,
        Change::VolumePercent,
        Change::Intensity,
        Change::Ventricles,
        Change::Trajectory,
    ]
    .into_iter()
    .map(|c| Box::new(Longitudinal(c)) as Box<dyn Family>)
    .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    VolumeMl,
    VolumePercent,
    Intensity,
    Ventricles,
    Trajectory,
}

/// Ventricular targets growth questions name.
const VENTRICLES: &[&str] = &[
    "ventricular system",
    "lateral ventricle",
    "left lateral ventricle",
    "right lateral ventricle",
];

/// A longitudinal question.
pub struct Longitudinal(Change);

impl Family for Longitudinal {
    fn info(&self) -> FamilyInfo {
        let (id, asks, answer, tolerance) = match self.0 {
            Change::VolumeMl => (
                "lesion_volume_change",
                "how much a lesion's volume changed between the first and last of 2–3 sessions, in mL",
                "`The X measured a mL on D1 and b mL on Dn, a change of c mL.`",
                "volumes ±10 %; change ±10 % of the larger volume or 0.1 mL",
            ),
            Change::VolumePercent => (
                "lesion_percent_change",
                "the relative change of a lesion's volume between the first and last of 2–3 sessions",
                "`The X measured a mL on D1 and b mL on Dn: p % change.`",
                "volumes ±10 %; change ±10 percentage points",
            ),
            Change::Intensity => (
                "intensity_change",
                "the change of a lesion's mean signal on a contrast between sessions (e.g. DWI signal decay of an infarct)",
                "`Mean M intensity in the X: a a.u. on D1 and b a.u. on Dn, a change of c a.u. (p %).`",
                "means ±5 %; change ±0.03 a.u.; percent ±10 points",
            ),
            Change::Ventricles => (
                "ventricular_growth",
                "the growth of the ventricles (or one lateral ventricle) between the first and last of 2–3 sessions",
                "`The X measured a mL on D1 and b mL on Dn, a change of c mL (p %).`",
                "volumes ±10 %; change ±10 % of the larger volume; percent ±10 points",
            ),
            Change::Trajectory => (
                "lesion_trajectory",
                "a lesion's volume at each of three sessions",
                "`Volumes of the X: a mL (D1), b mL (D2), c mL (D3).`",
                "each volume ±10 %",
            ),
        };
        FamilyInfo {
            id,
            group: Group::Longitudinal,
            asks,
            inputs: "one image per session, same contrast, dated; 2–3 sessions",
            program: "encode all sessions as streams → read(e) → generate (one mask per session) → volumes / means → read → respond with change()/percent_change() → stop",
            answer,
            tolerance,
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        match self.0 {
            Change::VolumeMl => &[
                "how much did the {lesion} change in volume between {sessions}{qend}",
                "{req}{measure_verb} the change in {lesion} volume across {sessions}{end}",
                "did the {lesion} grow or shrink between {sessions}{qend}",
                "{lesion} volume change over {sessions}{qend}",
                "{can_you}compare the {lesion} volume on {sessions}{qend}",
                "{i_need} the absolute volume change of the {lesion} between {sessions}{end}",
                "{req}track the {lesion} volume over {sessions} and report the difference{end}",
            ],
            Change::VolumePercent => &[
                "by what percentage did the {lesion} change between {sessions}{qend}",
                "{req}{measure_verb} the percent change in {lesion} volume across {sessions}{end}",
                "{what_is} the relative growth of the {lesion} between {sessions}{qend}",
                "{lesion} percent volume change over {sessions}{qend}",
                "{can_you}express the change of the {lesion} between {sessions} as a percentage{qend}",
                "{i_need} the relative volume change of the {lesion} across {sessions}{end}",
                "how many percent bigger or smaller is the {lesion} on the last scan{qend}",
            ],
            Change::Intensity => &[
                "how did the {contrast} signal of the {lesion} change between {sessions}{qend}",
                "{req}{measure_verb} the change in mean {contrast} intensity of the {lesion}{end}",
                "is the {lesion} getting brighter or darker on {contrast}{qend}",
                "{lesion} {contrast} signal change over {sessions}{qend}",
                "{can_you}compare the mean {contrast} intensity of the {lesion} on {sessions}{qend}",
                "{i_need} the {contrast} signal evolution of the {lesion}{end}",
                "{req}quantify {contrast} signal decay in the {lesion} between {sessions}{end}",
            ],
            Change::Ventricles => &[
                "how much has the {target} grown between {sessions}{qend}",
                "{req}{measure_verb} the enlargement of the {target} across {sessions}{end}",
                "{target} volume change over {sessions}{qend}",
                "{lead}is there enlargement of the {target}{qend}",
                "{can_you}compare the {target} volume on {sessions}{qend}",
                "{i_need} the change in {target} size between {sessions} in mL and percent{end}",
                "{req}quantify {target} growth over {sessions}{end}",
            ],
            Change::Trajectory => &[
                "{req}{measure_verb} the {lesion} volume at each of the three visits{end}",
                "how did the {lesion} volume evolve over the three scans{qend}",
                "{lesion} volume at every time point{qend}",
                "{can_you}track the {lesion} across all three sessions{qend}",
                "{i_need} a volume time course of the {lesion}{end}",
                "{req}report the {lesion} volume on each scan date{end}",
                "what was the {lesion} volume at baseline and at each follow-up{qend}",
            ],
        }
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        let sessions: &[usize] = if self.0 == Change::Trajectory {
            &[3]
        } else {
            &[2, 3]
        };
        if self.0 == Change::Ventricles {
            for v in VENTRICLES {
                let t = cat.target_index(v)?;
                for &n in sessions {
                    out.push(
                        Scenario::new()
                            .with("target", Key::Roi(Roi::Anatomy(t)))
                            .with("sessions", Key::Sessions(n)),
                    );
                }
            }
            return Ok(out);
        }
        for (c, class) in cat.classes().iter().enumerate() {
            for &n in sessions {
                let base = Scenario::new()
                    .with("lesion", Key::Class(c))
                    .with("sessions", Key::Sessions(n));
                if self.0 == Change::Intensity {
                    for &k in class.entry.contrasts {
                        if k != Contrast::Adc && k != Contrast::Ct {
                            out.push(base.clone().with("contrast", Key::Contrast(k)));
                        }
                    }
                } else {
                    out.push(base);
                }
            }
        }
        Ok(out)
    }

    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let id = self.info().id;
        let Some(Key::Sessions(n)) = s.get("sessions") else {
            return Err(missing(id, "sessions"));
        };
        // What is measured, the contrast, and the lesions to synthesize.
        let (def, name, contrast, lesions): (MaskDef, String, Contrast, Vec<LesionClass>) =
            match self.0 {
                Change::Ventricles => {
                    let Some(Key::Roi(Roi::Anatomy(t))) = s.get("target") else {
                        return Err(missing(id, "target"));
                    };
                    let target = cat.target(t)?;
                    let pool = [Contrast::T1, Contrast::T2, Contrast::Flair];
                    (
                        MaskDef::Anatomy {
                            ids: target.anatomy_ids(),
                        },
                        target.name.clone(),
                        pool[rng.random_range(0..pool.len())],
                        vec![],
                    )
                }
                _ => {
                    let Some(Key::Class(c)) = s.get("lesion") else {
                        return Err(missing(id, "lesion"));
                    };
                    let class = cat.class(c)?;
                    let contrast = match s.get("contrast") {
                        Some(Key::Contrast(k)) => k,
                        _ => {
                            let pool: Vec<Contrast> = class
                                .entry
                                .contrasts
                                .iter()
                                .copied()
                                .filter(|&k| k != Contrast::Adc)
                                .collect();
                            if pool.is_empty() {
                                return Ok(Outcome::Rejected(format!(
                                    "{} has no contrast to follow over time",
                                    class.entry.name
                                )));
                            }
                            pool[rng.random_range(0..pool.len())]
                        }
                    };
                    (
                        MaskDef::Lesion {
                            lesion: 0,
                            components: class.entry.proper.to_vec(),
                        },
                        class.entry.canonical.to_string(),
                        contrast,
                        vec![class.class],
                    )
                }
            };
        let synth = match synthesize(cat, &[contrast], &lesions, n, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let masks = (0..n)
            .map(|k| synth.truth.mask(&def, k))
            .collect::<Result<Vec<_>>>()?;
        if masks[0].count() < MIN_ROI_VOXELS || masks[n - 1].count() < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(format!(
                "the {name} is too small at baseline or at the end"
            )));
        }
        let images: Vec<(usize, Contrast)> = (0..n).map(|k| (k, contrast)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
        let dates: Vec<String> = inputs.iter().map(|i| i.date.clone()).collect();
        let vols: Vec<f64> = masks.iter().map(voxel::measure::volume_ml).collect();
        let last = n - 1;
        let mut p = ProgramBuilder::new();
        p.target("target", &name, def);
        p.step(format!("let e = {};\nread(e);", encode_call(&names)));
        let reply = if self.0 == Change::Intensity {
            let means = inputs
                .iter()
                .zip(&masks)
                .map(|(i, m)| voxel::measure::mean_std(&i.image, m).map(|x| x.0))
                .collect::<voxel::Result<Vec<f64>>>()?;
            let list: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(k, scan)| format!("mean({scan}, m[{k}])"))
                .collect();
            p.step(format!(
                "let m = generate(e <mod:target>);\nlet mu = [{}];\nread(mu);",
                list.join(", ")
            ));
            let modality = modality_name(contrast);
            let pct = 100.0 * (means[last] - means[0]) / means[0].abs();
            Reply::new()
                .text(&format!("Mean {modality} intensity in the {name}: "))
                .number("mu[0]", means[0], Quantity::IntensityAu, "mean at baseline")
                .text(&format!(" on {} and ", dates[0]))
                .number(
                    &format!("mu[{last}]"),
                    means[last],
                    Quantity::IntensityAu,
                    "mean at the last session",
                )
                .text(&format!(" on {}, a change of ", dates[last]))
                .number(
                    &format!("change(mu[0], mu[{last}])"),
                    means[last] - means[0],
                    Quantity::ChangeAu,
                    "change of the mean",
                )
                .text(" (")
                .number(
                    &format!("percent_change(mu[0], mu[{last}])"),
                    pct,
                    Quantity::ChangePercent,
                    "relative change of the mean",
                )
                .text(").")
        } else {
            let list: Vec<String> = (0..n).map(|k| format!("volume(m[{k}])")).collect();
            p.step(format!(
                "let m = generate(e <mod:target>);\nlet v = [{}];\nread(v);",
                list.join(", ")
            ));
            let reference = Some(vols[0].max(vols[last]));
            let pct = 100.0 * (vols[last] - vols[0]) / vols[0].abs();
            let head = |r: Reply| {
                r.text(&format!("The {name} measured "))
                    .number("v[0]", vols[0], Quantity::VolumeMl, "volume at baseline")
                    .text(&format!(" on {} and ", dates[0]))
                    .number(
                        &format!("v[{last}]"),
                        vols[last],
                        Quantity::VolumeMl,
                        "volume at the last session",
                    )
                    .text(&format!(" on {}", dates[last]))
            };
            match self.0 {
                Change::VolumeMl => head(Reply::new())
                    .text(", a change of ")
                    .number_with_reference(
                        &format!("change(v[0], v[{last}])"),
                        vols[last] - vols[0],
                        Quantity::ChangeMl,
                        "volume change",
                        reference,
                    )
                    .text("."),
                Change::VolumePercent => head(Reply::new())
                    .text(": ")
                    .number(
                        &format!("percent_change(v[0], v[{last}])"),
                        pct,
                        Quantity::ChangePercent,
                        "relative volume change",
                    )
                    .text(" change."),
                Change::Ventricles => head(Reply::new())
                    .text(", a change of ")
                    .number_with_reference(
                        &format!("change(v[0], v[{last}])"),
                        vols[last] - vols[0],
                        Quantity::ChangeMl,
                        "volume change",
                        reference,
                    )
                    .text(" (")
                    .number(
                        &format!("percent_change(v[0], v[{last}])"),
                        pct,
                        Quantity::ChangePercent,
                        "relative volume change",
                    )
                    .text(")."),
                _ => {
                    let mut r = Reply::new().text(&format!("Volumes of the {name}: "));
                    for k in 0..n {
                        if k > 0 {
                            r = r.text(", ");
                        }
                        r = r
                            .number(
                                &format!("v[{k}]"),
                                vols[k],
                                Quantity::VolumeMl,
                                &format!("volume at session {}", k + 1),
                            )
                            .text(&format!(" ({})", dates[k]));
                    }
                    r.text(".")
                }
            }
        };
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, inputs, &synth, &[reply], vec![], vec![])
    }
}
