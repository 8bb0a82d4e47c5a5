//! Measurements over several regions: left-right asymmetry, volume ratios, volumes normalised
//! by intracranial volume, lesion burden (count and volume), and the acute and chronic
//! components of a subdural haematoma.

use super::segmentation::missing;
use super::{
    done, encode_step, roi_case, roi_case_any_contrasts, roi_feasible, roi_space, scenario_roi,
    ANATOMY_CONTRASTS, INTRACRANIAL_TARGET,
};
use crate::catalogue::Catalogue;
use crate::checker::Quantity;
use crate::error::Result;
use crate::family::{
    bind_inputs, pick_contrasts, synthesize, Family, FamilyInfo, Group, Outcome, MIN_ROI_VOXELS,
};
use crate::grammar::GrammarBuilder;
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Key, Roi, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use synth::{Contrast, Hemisphere};
use voxel::components::{count_components, Connectivity};

/// The class name of the subdural haematoma (see `crate::classes`).
pub const SDH_CLASS: &str = "subdural_haematoma";

/// The multi-region families.
pub fn families() -> Vec<Box<dyn Family>> {
    vec![
        Box::new(Asymmetry),
        Box::new(VolumeRatio),
        Box::new(IcvNormalised),
        Box::new(LesionBurden),
        Box::new(SdhComponents),
    ]
}

fn volume(mask: &voxel::Mask) -> f64 {
    voxel::measure::volume_ml(mask)
}

/// Left-right asymmetry index of a bilateral structure.
pub struct Asymmetry;

impl Family for Asymmetry {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "asymmetry",
            group: Group::MultiRoi,
            asks: "left and right volumes of a bilateral structure and their asymmetry index 100·(L−R)/((L+R)/2)",
            inputs: "1–2 of T1w, T2w, FLAIR, PD, CT; one session",
            program: "encode → read(e) → generate left and right → volumes → read → respond with asymmetry() → stop",
            answer: "`Left X: a mL, right X: b mL, asymmetry index c %.`",
            tolerance: "volumes ±10 %; index ±3 percentage points",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        &[
            "{what_is} the {asym_word} of the {structure}{qend}",
            "{req}compare the left and right {structure}{end}",
            "is the {structure} symmetric{qend}",
            "{req}{measure_verb} the {asym_word} of the {structure} volumes{end}",
            "{structure} {asym_word}{qend}",
            "{can_you}{measure_verb} how asymmetric the {structure} is{qend}",
            "{i_need} left vs right {structure} volumes and their {asym_word}{end}",
        ]
    }
    fn rules(&self, g: &mut GrammarBuilder) {
        g.rule(
            "asym_word",
            &[
                "asymmetry index",
                "left-right asymmetry",
                "hemispheric asymmetry",
                "asymmetry",
                "AI",
            ],
        );
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        Ok(bilateral(cat)
            .into_iter()
            .map(|(both, _, _)| Scenario::new().with("structure", Key::Roi(Roi::Anatomy(both))))
            .collect())
    }
    fn feasible(&self, cat: &Catalogue, s: &Scenario) -> bool {
        scenario_roi(s, "structure").is_some_and(|r| roi_feasible(cat, r))
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let Some(Roi::Anatomy(both)) = scenario_roi(s, "structure") else {
            return Err(missing("asymmetry", "structure"));
        };
        let (_, left, right) = bilateral(cat)
            .into_iter()
            .find(|(b, _, _)| *b == both)
            .ok_or_else(|| missing("asymmetry", "structure"))?;
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(None, ANATOMY_CONTRASTS, n, rng);
        let synth = match synthesize(cat, &contrasts, &[], 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let name = cat.target(both)?.name.clone();
        let defs = [left, right].map(|t| {
            cat.target(t).map(|x| MaskDef::Anatomy {
                ids: x.anatomy_ids(),
            })
        });
        let [l_def, r_def] = defs;
        let (l_def, r_def) = (l_def?, r_def?);
        let (l, r) = (synth.truth.mask(&l_def, 0)?, synth.truth.mask(&r_def, 0)?);
        if l.count() < MIN_ROI_VOXELS || r.count() < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(format!(
                "the {name} is too small on one side"
            )));
        }
        let (vl, vr) = (volume(&l), volume(&r));
        let ai = 100.0 * (vl - vr) / ((vl + vr) / 2.0);
        let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&c| (0, c)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let mut p = ProgramBuilder::new();
        p.target("left", &cat.target(left)?.name, l_def);
        p.target("right", &cat.target(right)?.name, r_def);
        p.step(encode_step(&inputs));
        p.step(format!(
            "let l = {};\nlet r = {};\nlet vl = volume(l);\nlet vr = volume(r);\nread([vl, vr]);",
            generate_first("e", "left", inputs.len()),
            generate_first("e", "right", inputs.len())
        ));
        let reply = Reply::new()
            .text(&format!("Left {name}: "))
            .number("vl", vl, Quantity::VolumeMl, &format!("left {name} volume"))
            .text(&format!(", right {name}: "))
            .number(
                "vr",
                vr,
                Quantity::VolumeMl,
                &format!("right {name} volume"),
            )
            .text(", asymmetry index ")
            .number(
                "asymmetry(vl, vr)",
                ai,
                Quantity::AsymmetryPercent,
                "asymmetry index",
            )
            .text(".");
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, inputs, &synth, &[reply], vec![], vec![])
    }
}

/// Bilateral structures: (both-sides target, left target, right target).
fn bilateral(cat: &Catalogue) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for t in cat.anatomy_targets() {
        let Ok(target) = cat.target(t) else { continue };
        if target.hemisphere != Hemisphere::Both {
            continue;
        }
        let side = |w: &str, h: Hemisphere| {
            cat.target_index(&format!("{w} {}", target.name))
                .ok()
                .filter(|&i| cat.target(i).is_ok_and(|x| x.hemisphere == h))
        };
        if let (Some(l), Some(r)) = (
            side("left", Hemisphere::Left),
            side("right", Hemisphere::Right),
        ) {
            out.push((t, l, r));
        }
    }
    out
}

/// Numerators and denominators of volume-ratio questions.
const RATIO_NUMERATORS: &[&str] = &[
    "lateral ventricle",
    "ventricular system",
    "hippocampus",
    "amygdala",
    "thalamus",
    "caudate nucleus",
    "putamen",
    "grey matter",
    "white matter",
    "cerebral cortex",
    "cerebellum",
    "brainstem",
    "frontal lobe",
    "temporal lobe",
    "CSF",
];
const RATIO_DENOMINATORS: &[&str] = &[
    "brain",
    INTRACRANIAL_TARGET,
    "cerebral white matter",
    "white matter",
    "grey matter",
    "cerebral hemisphere",
];

/// The ratio of two structures' volumes.
pub struct VolumeRatio;

impl Family for VolumeRatio {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "volume_ratio",
            group: Group::MultiRoi,
            asks: "the ratio of two structures' volumes (e.g. ventricles to brain, grey to white matter)",
            inputs: "1–2 of T1w, T2w, FLAIR, PD, CT; one session",
            program: "encode → read(e) → generate both → volumes → read → respond with ratio() → stop",
            answer: "`A: a mL, B: b mL, ratio r (p %).`",
            tolerance: "volumes ±10 %; ratio ±10 %",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        &[
            "{what_is} the ratio of the {pair.a} volume to the {pair.b} volume{qend}",
            "{req}divide the {pair.a} volume by the {pair.b} volume{end}",
            "{pair.a}-to-{pair.b} ratio{qend}",
            "{req}{measure_verb} the {pair.a} / {pair.b} volume ratio{end}",
            "how big is the {pair.a} relative to the {pair.b}{qend}",
            "{can_you}{measure_verb} the ratio between {pair.a} and {pair.b} volumes{qend}",
            "{i_need} the {pair.a} volume as a fraction of the {pair.b} volume{end}",
        ]
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        for a in RATIO_NUMERATORS {
            for b in RATIO_DENOMINATORS {
                if a == b {
                    continue;
                }
                let (a, b) = (cat.target_index(a)?, cat.target_index(b)?);
                out.push(Scenario::new().with("pair", Key::Pair(a, b)));
            }
        }
        Ok(out)
    }
    fn feasible(&self, cat: &Catalogue, s: &Scenario) -> bool {
        matches!(s.get("pair"), Some(Key::Pair(a, b)) if cat.template_voxels(a) > 0 && cat.template_voxels(b) > 0)
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let Some(Key::Pair(a, b)) = s.get("pair") else {
            return Err(missing("volume_ratio", "pair"));
        };
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(None, ANATOMY_CONTRASTS, n, rng);
        let synth = match synthesize(cat, &contrasts, &[], 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let (ta, tb) = (cat.target(a)?, cat.target(b)?);
        let da = MaskDef::Anatomy {
            ids: ta.anatomy_ids(),
        };
        let db = MaskDef::Anatomy {
            ids: tb.anatomy_ids(),
        };
        let (ma, mb) = (synth.truth.mask(&da, 0)?, synth.truth.mask(&db, 0)?);
        if ma.count() < MIN_ROI_VOXELS || mb.count() < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(
                "a structure of the ratio is too small".into(),
            ));
        }
        let (va, vb) = (volume(&ma), volume(&mb));
        let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&c| (0, c)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let mut p = ProgramBuilder::new();
        p.target("a", &ta.name, da);
        p.target("b", &tb.name, db);
        p.step(encode_step(&inputs));
        p.step(format!(
            "let a = {};\nlet b = {};\nlet va = volume(a);\nlet vb = volume(b);\nread([va, vb]);",
            generate_first("e", "a", inputs.len()),
            generate_first("e", "b", inputs.len())
        ));
        let reply = Reply::new()
            .text(&format!("{}: ", crate::grammar::capitalise(&ta.name)))
            .number("va", va, Quantity::VolumeMl, &format!("{} volume", ta.name))
            .text(&format!(", {}: ", tb.name))
            .number("vb", vb, Quantity::VolumeMl, &format!("{} volume", tb.name))
            .text(", ratio ")
            .number("ratio(va, vb)", va / vb, Quantity::Ratio, "volume ratio")
            .text(" (")
            .number(
                "100.0 * ratio(va, vb)",
                100.0 * va / vb,
                Quantity::SharePercent,
                "volume ratio in percent",
            )
            .text(").");
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, inputs, &synth, &[reply], vec![], vec![])
    }
}

/// A volume as a percentage of the intracranial volume.
pub struct IcvNormalised;

impl Family for IcvNormalised {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "icv_normalised",
            group: Group::MultiRoi,
            asks: "the volume of a region (anatomy inside the skull, or a lesion) as a percentage of the intracranial volume",
            inputs: "1–2 contrasts of one session",
            program: "encode → read(e) → generate region and ICV → volumes → read → respond with 100·ratio() → stop",
            answer: "`X: a mL, p % of the intracranial volume (c mL).`",
            tolerance: "volumes ±10 %; percentage ±10 %",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        &[
            "{what_is} the {roi} volume normalised by {icv_word}{qend}",
            "{req}{measure_verb} the {roi} volume as a percentage of the {icv_word}{end}",
            "{roi} volume, {icv_word}-normalised{qend}",
            "what fraction of the {icv_word} is the {roi}{qend}",
            "{can_you}{measure_verb} the {roi} volume corrected for {icv_word}{qend}",
            "{i_need} the {icv_word}-adjusted {roi} volume{end}",
            "{req}normalise the {roi} volume to the {icv_word}{end}",
        ]
    }
    fn rules(&self, g: &mut GrammarBuilder) {
        g.rule(
            "icv_word",
            &[
                INTRACRANIAL_TARGET,
                "ICV",
                "total intracranial volume",
                "TIV",
                "head size",
            ],
        );
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let rois = roi_space(
            cat,
            |t| {
                t.name != INTRACRANIAL_TARGET && cat.vocab().is_within(&t.name, INTRACRANIAL_TARGET)
            },
            |_| true,
        );
        Ok(super::roi_scenarios("roi", &rois))
    }
    fn feasible(&self, cat: &Catalogue, s: &Scenario) -> bool {
        scenario_roi(s, "roi").is_some_and(|r| roi_feasible(cat, r))
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let roi = scenario_roi(s, "roi").ok_or_else(|| missing("icv_normalised", "roi"))?;
        let case = match roi_case_any_contrasts(cat, roi, rng)? {
            Ok(c) => c,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let icv_def = MaskDef::Anatomy {
            ids: cat.vocab().require(INTRACRANIAL_TARGET)?.anatomy_ids(),
        };
        let icv = case.synth.truth.mask(&icv_def, 0)?;
        let (v, c) = (volume(&case.mask), volume(&icv));
        let name = case.name.clone();
        let mut p = ProgramBuilder::new();
        p.target("roi", &name, case.def.clone());
        p.target("icv", INTRACRANIAL_TARGET, icv_def);
        p.step(encode_step(&case.inputs));
        p.step(format!(
            "let m = {};\nlet icv = {};\nlet v = volume(m);\nlet c = volume(icv);\nread([v, c]);",
            generate_first("e", "roi", case.inputs.len()),
            generate_first("e", "icv", case.inputs.len())
        ));
        let reply = Reply::new()
            .text(&format!("{}: ", crate::grammar::capitalise(&name)))
            .number("v", v, Quantity::VolumeMl, &format!("{name} volume"))
            .text(", ")
            .number(
                "100.0 * ratio(v, c)",
                100.0 * v / c,
                Quantity::SharePercent,
                "share of the ICV",
            )
            .text(" of the intracranial volume (")
            .number("c", c, Quantity::VolumeMl, INTRACRANIAL_TARGET)
            .text(").");
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, case.inputs, &case.synth, &[reply], vec![], vec![])
    }
}

/// Number of separate lesions and their total volume for a diffuse lesion class (WMH).
pub struct LesionBurden;

impl LesionBurden {
    fn classes(cat: &Catalogue) -> Vec<usize> {
        cat.classes()
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.entry.focal && c.entry.components.is_empty())
            .map(|(i, _)| i)
            .collect()
    }
}

impl Family for LesionBurden {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "lesion_burden",
            group: Group::MultiRoi,
            asks: "the number of separate lesions (26-connected components) and their total volume, for diffuse lesions (WMH)",
            inputs: "1–2 contrasts the class is conspicuous on; one session",
            program: "encode → read(e) → generate all lesions → count_components, volume → read → respond → stop",
            answer: "`Found N separate X with a total volume of V mL.`",
            tolerance: "count ±20 % or 1; volume ±10 %",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        &[
            "how many {lesion.pl} are there and what is their total volume{qend}",
            "{req}count the {lesion.pl} and {measure_verb} their volume{end}",
            "{what_is} the {lesion} burden{qend}",
            "{req}quantify the {lesion} load{in_scan}{end}",
            "{lesion} count and volume{qend}",
            "{can_you}{measure_verb} the number and total volume of {lesion.pl}{qend}",
            "{i_need} a {lesion} burden estimate: count and total volume{end}",
        ]
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        Ok(LesionBurden::classes(cat)
            .into_iter()
            .map(|c| Scenario::new().with("lesion", Key::Class(c)))
            .collect())
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let Some(Key::Class(c)) = s.get("lesion") else {
            return Err(missing("lesion_burden", "lesion"));
        };
        let pool = cat.class(c)?.entry.contrasts;
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(pool.first().copied(), pool, n, rng);
        let case = match roi_case(cat, Roi::Lesion(c), &contrasts, rng)? {
            Ok(c) => c,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let count = count_components(&case.mask, Connectivity::TwentySix, None)?;
        let name = case.name.clone();
        let mut p = ProgramBuilder::new();
        p.target("lesions", &name, case.def.clone());
        p.step(encode_step(&case.inputs));
        p.step(format!(
            "let m = {};\nlet n = count_components(m);\nlet v = volume(m);\nread([n, v]);",
            generate_first("e", "lesions", case.inputs.len())
        ));
        let reply = Reply::new()
            .text("Found ")
            .number(
                "n",
                count as f64,
                Quantity::Count,
                &format!("number of {name}"),
            )
            .text(&format!(" separate {name} with a total volume of "))
            .number(
                "v",
                volume(&case.mask),
                Quantity::VolumeMl,
                &format!("volume of the {name}"),
            )
            .text(".");
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, case.inputs, &case.synth, &[reply], vec![], vec![])
    }
}

/// Acute and chronic components of a subdural haematoma (waits for the class, see
/// `crate::classes`).
pub struct SdhComponents;

impl Family for SdhComponents {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "sdh_components",
            group: Group::MultiRoi,
            asks: "volumes of the acute and chronic components of a subdural haematoma and the acute fraction",
            inputs: "CT in HU and up to one more contrast; one session",
            program: "encode → read(e) → generate acute and chronic components → volumes → read → respond with 100·ratio() → stop",
            answer: "`Acute component: a mL, chronic component: b mL, acute fraction p %.`",
            tolerance: "volumes ±10 %; fraction ±10 %",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        &[
            "{what_is} the volume of the acute and chronic components of the {lesion}{qend}",
            "{req}separate the {lesion} into acute and chronic blood and {measure_verb} each{end}",
            "how much of the {lesion} is acute{qend}",
            "{req}{measure_verb} the acute and chronic {lesion} volumes{end}",
            "{lesion}: acute vs chronic component volumes{qend}",
            "{can_you}{measure_verb} the acute-on-chronic {lesion} components{qend}",
            "{i_need} the volumes of fresh and old blood in the {lesion}{end}",
        ]
    }
    fn unavailable(&self, cat: &Catalogue) -> Option<String> {
        cat.class_index(SDH_CLASS)
            .is_none()
            .then(|| format!("lesion class {SDH_CLASS} is not in this catalogue"))
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        Ok(cat
            .class_index(SDH_CLASS)
            .map(|c| vec![Scenario::new().with("lesion", Key::Class(c))])
            .unwrap_or_default())
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let Some(Key::Class(c)) = s.get("lesion") else {
            return Err(missing("sdh_components", "lesion"));
        };
        let class = cat.class(c)?;
        let [acute, chronic] = match class.entry.components {
            [a, b, ..] => [a, b],
            _ => return Err(missing("sdh_components", "components")),
        };
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(Some(Contrast::Ct), class.entry.contrasts, n, rng);
        let synth = match synthesize(cat, &contrasts, &[class.class], 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let da = MaskDef::Lesion {
            lesion: 0,
            components: acute.ids.to_vec(),
        };
        let dc = MaskDef::Lesion {
            lesion: 0,
            components: chronic.ids.to_vec(),
        };
        let (ma, mc) = (synth.truth.mask(&da, 0)?, synth.truth.mask(&dc, 0)?);
        if ma.count() < MIN_ROI_VOXELS || mc.count() < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(
                "a haematoma component is too small".into(),
            ));
        }
        let (va, vc) = (volume(&ma), volume(&mc));
        let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&c| (0, c)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let mut p = ProgramBuilder::new();
        p.target(
            "acute",
            &format!("{} of the {}", acute.name, class.entry.canonical),
            da,
        );
        p.target(
            "chronic",
            &format!("{} of the {}", chronic.name, class.entry.canonical),
            dc,
        );
        p.step(encode_step(&inputs));
        p.step(format!(
            "let a = {};\nlet c = {};\nlet va = volume(a);\nlet vc = volume(c);\nread([va, vc]);",
            generate_first("e", "acute", inputs.len()),
            generate_first("e", "chronic", inputs.len())
        ));
        let reply = Reply::new()
            .text("Acute component: ")
            .number("va", va, Quantity::VolumeMl, "acute component volume")
            .text(", chronic component: ")
            .number("vc", vc, Quantity::VolumeMl, "chronic component volume")
            .text(", acute fraction ")
            .number(
                "100.0 * ratio(va, va + vc)",
                100.0 * va / (va + vc),
                Quantity::SharePercent,
                "acute fraction",
            )
            .text(".");
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, inputs, &synth, &[reply], vec![], vec![])
    }
}
