//! The task families, one module per group, and the program pieces they share.

pub mod characterisation;
pub mod descriptor;
pub mod image_ops;
pub mod longitudinal;
pub mod morphology;
pub mod multi_roi;
pub mod presence;
pub mod segmentation;
pub mod statistics;

use crate::catalogue::Catalogue;
use crate::checker::{Expected, ExpectedChoice, ExpectedOutput};
use crate::error::Result;
use crate::family::{
    bind_inputs, pick_contrasts, roi_def, roi_lesions, synthesize, Family, Outcome, Realised,
    Synthesized, MIN_ROI_VOXELS,
};
use crate::program::{encode_call, ProgramBuilder, Reply};
use crate::sample::InputVolume;
use crate::scenario::{Key, Roi, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use std::sync::Arc;
use synth::Contrast;
use voxel::Mask;

/// Every family, in catalogue order.
pub fn all() -> Vec<Box<dyn Family>> {
    let mut out: Vec<Box<dyn Family>> = Vec::new();
    out.extend(segmentation::families());
    out.extend(descriptor::families());
    out.extend(image_ops::families());
    out.extend(statistics::families());
    out.extend(morphology::families());
    out.extend(multi_roi::families());
    out.extend(longitudinal::families());
    out.extend(characterisation::families());
    out.extend(presence::families());
    out
}

/// MR contrasts a healthy-anatomy question may come with.
pub(crate) const ANATOMY_CONTRASTS: &[Contrast] = &[
    Contrast::T1,
    Contrast::T2,
    Contrast::Flair,
    Contrast::Pd,
    Contrast::Ct,
];

/// The first step of most programs: encode every input, read the encoding.
pub(crate) fn encode_step(inputs: &[InputVolume]) -> String {
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    format!("let e = {};\nread(e);", encode_call(&names))
}

/// Assembles the outcome from a finished program, its response lines and its checks.
pub(crate) fn done(
    program: &ProgramBuilder,
    inputs: Vec<InputVolume>,
    synth: &Synthesized,
    replies: &[Reply],
    choices: Vec<ExpectedChoice>,
    outputs: Vec<ExpectedOutput>,
) -> Result<Outcome> {
    let expected = Expected {
        numbers: replies.iter().flat_map(|r| r.numbers().to_vec()).collect(),
        choices,
        outputs,
    };
    Ok(Outcome::Done(Box::new(Realised {
        inputs,
        program: program.build()?,
        expected,
        answer: replies
            .iter()
            .map(|r| r.expected_text().to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        truth: Arc::clone(&synth.truth),
    })))
}

/// The regions of interest a family can ask about: anatomy targets passing `anatomy` and
/// active lesion classes passing `lesion` (by class index).
pub(crate) fn roi_space(
    cat: &Catalogue,
    anatomy: impl Fn(&synth::Target) -> bool,
    lesion: impl Fn(&crate::classes::ActiveClass) -> bool,
) -> Vec<Roi> {
    let mut out: Vec<Roi> = cat
        .anatomy_targets()
        .into_iter()
        .filter(|&t| cat.target(t).map(&anatomy).unwrap_or(false))
        .map(Roi::Anatomy)
        .collect();
    out.extend(
        cat.classes()
            .iter()
            .enumerate()
            .filter(|(_, c)| lesion(c))
            .map(|(i, _)| Roi::Lesion(i)),
    );
    out
}

/// Scenarios with the single key `slot` set to each of `rois`.
pub(crate) fn roi_scenarios(slot: &str, rois: &[Roi]) -> Vec<Scenario> {
    rois.iter()
        .map(|&r| Scenario::new().with(slot, Key::Roi(r)))
        .collect()
}

/// Whether the anatomy template has target `roi` at all (lesions always can be placed).
pub(crate) fn roi_feasible(cat: &Catalogue, roi: Roi) -> bool {
    match roi {
        Roi::Anatomy(t) => cat.template_voxels(t) > 0,
        Roi::Lesion(_) => true,
    }
}

/// The region of interest of a scenario.
pub(crate) fn scenario_roi(s: &Scenario, slot: &str) -> Option<Roi> {
    match s.get(slot) {
        Some(Key::Roi(r)) => Some(r),
        _ => None,
    }
}

/// A one-session subject for a question about one region.
pub(crate) struct RoiCase {
    /// The subject.
    pub synth: Synthesized,
    /// Its bound images.
    pub inputs: Vec<InputVolume>,
    /// The region.
    pub def: MaskDef,
    /// Its canonical name.
    pub name: String,
    /// Its true mask in session 0.
    pub mask: Mask,
}

/// Synthesizes a one-session subject with the lesion `roi` needs (for anatomy, sometimes an
/// incidental one: [`roi_lesions`]), binds `contrasts`
/// in order, and checks the region has at least [`MIN_ROI_VOXELS`] voxels.
pub(crate) fn roi_case(
    cat: &Catalogue,
    roi: Roi,
    contrasts: &[Contrast],
    rng: &mut StdRng,
) -> Result<std::result::Result<RoiCase, String>> {
    let lesions = roi_lesions(cat, roi, contrasts, rng)?;
    let synth = match synthesize(cat, contrasts, &lesions, 1, rng)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let (def, name) = roi_def(cat, roi)?;
    let mask = synth.truth.mask(&def, 0)?;
    if mask.count() < MIN_ROI_VOXELS {
        return Ok(Err(format!("the {name} has {} voxels", mask.count())));
    }
    let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&c| (0, c)).collect();
    let inputs = bind_inputs(&synth.subject, &images)?;
    Ok(Ok(RoiCase {
        synth,
        inputs,
        def,
        name,
        mask,
    }))
}

/// The vocabulary group of the skull cavity: what an intracranial skull strip keeps.
pub const INTRACRANIAL_TARGET: &str = "intracranial volume";

/// Hands `case`'s scans over skull-stripped with the probability `[skull_stripped]` of the
/// synthesis configuration gives: MR inputs zeroed outside the brain mask
/// ([`image_ops::SKULL_STRIP_TARGET`], what BET or SynthStrip keep) or the intracranial volume,
/// dilated by a random margin. Left whole when an input is CT (stripped CT is rare and its zero
/// is water, not nothing) or when the question's mask reaches outside the kept region (a question
/// about the skull or the scalp needs the head). Returns whether it stripped.
pub(crate) fn maybe_skull_strip(
    cat: &Catalogue,
    case: &mut RoiCase,
    rng: &mut StdRng,
) -> Result<bool> {
    let settings = &cat.synth_config().skull_stripped;
    if rng.random::<f64>() >= settings.probability
        || case.inputs.iter().any(|i| i.contrast == Contrast::Ct)
    {
        return Ok(false);
    }
    let group = if rng.random::<f64>() < settings.intracranial_probability {
        INTRACRANIAL_TARGET
    } else {
        image_ops::SKULL_STRIP_TARGET
    };
    let margin_mm = synth::rng::uniform(rng, settings.dilation_mm[0], settings.dilation_mm[1]);
    let labels = &case.synth.truth.session(0)?.labels;
    let mut keep = labels.mask_of_any(&cat.vocab().require(group)?.anatomy_ids());
    if margin_mm > 0.0 {
        keep = voxel::morphology::dilate(&keep, margin_mm)?;
    }
    let reaches_outside = case
        .mask
        .data()
        .iter()
        .zip(keep.data())
        .any(|(&asked, &kept)| asked && !kept);
    if reaches_outside {
        return Ok(false);
    }
    for input in &mut case.inputs {
        let stripped = input
            .image
            .zip_map(&keep, |v, inside| if inside { v } else { 0.0 })?;
        input.image = Arc::new(stripped);
    }
    Ok(true)
}

/// [`roi_case`] with one or two contrasts drawn from the region's pool ([`roi_pool`]): the
/// common start of families that ask about one region and do not name a contrast.
pub(crate) fn roi_case_any_contrasts(
    cat: &Catalogue,
    roi: Roi,
    rng: &mut StdRng,
) -> Result<std::result::Result<RoiCase, String>> {
    let pool = roi_pool(cat, roi)?;
    let n = rng.random_range(1..=2);
    let contrasts = pick_contrasts(None, &pool, n, rng);
    roi_case(cat, roi, &contrasts, rng)
}

/// The input bound to `contrast`.
pub(crate) fn input_of(inputs: &[InputVolume], contrast: Contrast) -> Option<&InputVolume> {
    inputs.iter().find(|i| i.contrast == contrast)
}

/// The contrasts to synthesize for a region: for a lesion, its most conspicuous contrasts; for
/// anatomy, the healthy-anatomy pool.
pub(crate) fn roi_pool(cat: &Catalogue, roi: Roi) -> Result<Vec<Contrast>> {
    Ok(match roi {
        Roi::Anatomy(_) => ANATOMY_CONTRASTS.to_vec(),
        Roi::Lesion(c) => cat.class(c)?.entry.contrasts.to_vec(),
    })
}
