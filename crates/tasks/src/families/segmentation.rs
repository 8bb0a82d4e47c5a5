//! Segmentation of a named target: any anatomical target of the vocabulary, any lesion class,
//! any lesion component.

use super::{
    done, encode_step, maybe_skull_strip, roi_case, roi_feasible, roi_pool, roi_scenarios,
    roi_space, scenario_roi, RoiCase, ANATOMY_CONTRASTS,
};
use crate::catalogue::Catalogue;
use crate::checker::{ExpectedOutput, OutputKind, Quantity};
use crate::error::{Result, TaskError};
use crate::family::{
    bind_inputs, pick_contrasts, synthesize, Family, FamilyInfo, Group, Outcome, MIN_ROI_VOXELS,
};
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Key, Roi, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use synth::Contrast;

/// The segmentation families.
pub fn families() -> Vec<Box<dyn Family>> {
    vec![
        Box::new(SegmentAnatomy),
        Box::new(SegmentLesion),
        Box::new(SegmentComponent),
    ]
}

const PROGRAM: &str =
    "encode all inputs → read(e) → generate target → read(volume) → show + respond volume → stop";

/// The shared program: encode, generate the target, read its volume, show it, respond.
fn segmentation_program(
    p: &mut ProgramBuilder,
    inputs: &[crate::sample::InputVolume],
    name: &str,
    truth_ml: f64,
) -> Reply {
    p.step(encode_step(inputs));
    p.step(format!(
        "let m = {};\nread(volume(m));",
        generate_first("e", "target", inputs.len())
    ));
    let reply = Reply::new()
        .text(&format!("Segmented the {name}: "))
        .number(
            "volume(m)",
            truth_ml,
            Quantity::VolumeMl,
            &format!("volume of the {name}"),
        )
        .text(".");
    p.step(format!(
        "show(m, \"segmentation\");\n{}\nstop();",
        reply.code()
    ));
    reply
}

/// The whole outcome of segmenting the region of `case`: its target, the shared program, the
/// volume reply and the mask output.
fn segment_case(case: RoiCase) -> Result<Outcome> {
    let mut p = ProgramBuilder::new();
    p.target("target", &case.name, case.def.clone());
    let ml = voxel::measure::volume_ml(&case.mask);
    let reply = segmentation_program(&mut p, &case.inputs, &case.name, ml);
    done(
        &p,
        case.inputs,
        &case.synth,
        &[reply],
        vec![],
        vec![mask_output(case.def)],
    )
}

fn mask_output(def: MaskDef) -> ExpectedOutput {
    ExpectedOutput {
        name: "segmentation".into(),
        input: "scan_1".into(),
        session: 0,
        target: def,
        kind: OutputKind::Mask,
    }
}

const TEMPLATES_TARGET: &[&str] = &[
    "{req}{seg_verb} the {target}{in_scan}{end}",
    "{can_you}{show_verb} the {target}{in_scan}{qend}",
    "{target} {seg_noun}{please_suffix}",
    "{i_want} a {seg_noun} of the {target}{in_scan}{end}",
    "{where_q} the {target}{in_scan}{qend}",
    "{seg_noun} for the {target}{end}",
    "{req}{seg_verb} {the_scan}: {target}{end}",
];

/// Segment any anatomical target of the vocabulary.
pub struct SegmentAnatomy;

impl Family for SegmentAnatomy {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "segment_anatomy",
            group: Group::Segmentation,
            asks: "a mask of any anatomical target of the vocabulary (structures, parcels, groups)",
            inputs: "1–2 of T1w, T2w, FLAIR, PD, CT; one session; healthy subject",
            program: PROGRAM,
            answer: "mask `segmentation`; `Segmented the X: V mL.`",
            tolerance: "Dice ≥ 0.7; volume ±10 % or 0.1 mL",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        TEMPLATES_TARGET
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        Ok(roi_scenarios(
            "target",
            &roi_space(cat, |_| true, |_| false),
        ))
    }
    /// In proportion to the square root of the target's size: the brain, white matter and the
    /// ventricles, which people ask for most and which teach the vision network the most per
    /// sample, come up far more often than one of ~300 parcels drawn uniformly would.
    fn scenario_weight(&self, cat: &Catalogue, s: &Scenario) -> f64 {
        match scenario_roi(s, "target") {
            Some(Roi::Anatomy(t)) => (cat.template_voxels(t) as f64).sqrt(),
            _ => 1.0,
        }
    }
    fn feasible(&self, cat: &Catalogue, s: &Scenario) -> bool {
        scenario_roi(s, "target").is_some_and(|r| roi_feasible(cat, r))
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let roi = scenario_roi(s, "target").ok_or_else(|| missing("segment_anatomy", "target"))?;
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(None, ANATOMY_CONTRASTS, n, rng);
        let mut case = match roi_case(cat, roi, &contrasts, rng)? {
            Ok(c) => c,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        maybe_skull_strip(cat, &mut case, rng)?;
        segment_case(case)
    }
}

pub(crate) fn missing(family: &str, slot: &str) -> TaskError {
    TaskError::Program {
        family: family.into(),
        problem: format!("the scenario has no {slot:?} key"),
    }
}

/// Segment a lesion of any class.
pub struct SegmentLesion;

impl Family for SegmentLesion {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "segment_lesion",
            group: Group::Segmentation,
            asks: "a mask of the lesion (lesion proper, edema excluded) of any lesion class",
            inputs: "1–2 contrasts the class is conspicuous on; one session; one lesion",
            program: PROGRAM,
            answer: "mask `segmentation`; `Segmented the X: V mL.`",
            tolerance: "Dice ≥ 0.7; volume ±10 % or 0.1 mL",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        TEMPLATES_TARGET
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        Ok(roi_scenarios(
            "target",
            &roi_space(cat, |_| false, |_| true),
        ))
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let roi = scenario_roi(s, "target").ok_or_else(|| missing("segment_lesion", "target"))?;
        let pool = roi_pool(cat, roi)?;
        let first = pool[rng.random_range(0..pool.len())];
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(Some(first), &pool, n, rng);
        let mut case = match roi_case(cat, roi, &contrasts, rng)? {
            Ok(c) => c,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        maybe_skull_strip(cat, &mut case, rng)?;
        segment_case(case)
    }
}

/// Segment one component of a lesion (enhancing tumour, necrotic core, edema, gliosis, ...).
pub struct SegmentComponent;

impl Family for SegmentComponent {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: "segment_component",
            group: Group::Segmentation,
            asks: "a mask of one component of a lesion (necrotic core, enhancing tumour, edema, gliosis, ...)",
            inputs: "1–2 contrasts the class is conspicuous on; one session; one lesion",
            program: PROGRAM,
            answer: "mask `segmentation`; `Segmented the C of the X: V mL.`",
            tolerance: "Dice ≥ 0.7; volume ±10 % or 0.1 mL",
        }
    }
    fn templates(&self) -> &'static [&'static str] {
        &[
            "{req}{seg_verb} the {component} of the {lesion}{in_scan}{end}",
            "{req}{seg_verb} only the {component} of the {lesion}{end}",
            "{lesion} {component} {seg_noun}{please_suffix}",
            "{i_want} a {seg_noun} of the {component} of the {lesion}{end}",
            "{can_you}{show_verb} the {component} of the {lesion}{qend}",
            "{where_q} the {component} of the {lesion}{in_scan}{qend}",
            "the {lesion} has several parts; {seg_verb} the {component}{end}",
        ]
    }
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        for (c, class) in cat.classes().iter().enumerate() {
            for k in 0..class.entry.components.len() {
                out.push(
                    Scenario::new()
                        .with("component", Key::Component(c, k))
                        .with("lesion", Key::Class(c)),
                );
            }
        }
        Ok(out)
    }
    fn subject_attempts(&self) -> usize {
        // Some components (the necrotic core of a small metastasis) are often absent.
        8
    }
    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let Some(Key::Component(c, k)) = s.get("component") else {
            return Err(missing("segment_component", "component"));
        };
        let class = cat.class(c)?;
        let comp = class
            .entry
            .components
            .get(k)
            .ok_or_else(|| missing("segment_component", "component"))?;
        let pool = class.entry.contrasts;
        let n = rng.random_range(1..=2);
        let first = pool[rng.random_range(0..pool.len())];
        let contrasts: Vec<Contrast> = pick_contrasts(Some(first), pool, n, rng);
        let synth = match synthesize(cat, &contrasts, &[class.class], 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let def = MaskDef::Lesion {
            lesion: 0,
            components: comp.ids.to_vec(),
        };
        let mask = synth.truth.mask(&def, 0)?;
        let name = format!("{} of the {}", comp.name, class.entry.canonical);
        if mask.count() < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(format!(
                "the {name} has {} voxels",
                mask.count()
            )));
        }
        let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&c| (0, c)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let mut p = ProgramBuilder::new();
        p.target("target", &name, def.clone());
        let ml = voxel::measure::volume_ml(&mask);
        let reply = segmentation_program(&mut p, &inputs, &name, ml);
        done(&p, inputs, &synth, &[reply], vec![], vec![mask_output(def)])
    }
}
