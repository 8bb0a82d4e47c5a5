//! What a task family is ([`Family`]) and the pieces families share: synthesizing a subject for
//! a scenario, binding its images as program inputs, and naming regions of interest.

use crate::catalogue::Catalogue;
use crate::checker::Expected;
use crate::error::Result;
use crate::grammar::GrammarBuilder;
use crate::phrases::modality_name;
use crate::program::ProgramStep;
use crate::sample::InputVolume;
use crate::scenario::{Roi, Scenario};
use crate::truth::{MaskDef, SubjectTruth};
use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;
use std::sync::Arc;
use synth::contrast::SynthImage;
use synth::{
    synthesize_subject, Contrast, IntensityMode, LesionClass, Subject, SubjectSpec, SynthError,
};
use voxel::Image;

/// Least number of voxels a region a task asks about must have in the subject.
pub const MIN_ROI_VOXELS: usize = 6;

/// The groups of families (DESIGN.md §7, paper §4.1–4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Segmentation of a named target.
    Segmentation,
    /// Segmentation of one lesion among several, picked by a descriptor.
    Descriptor,
    /// Removing, extracting or cropping around a region.
    ImageOps,
    /// Intensity statistics in a region.
    Statistics,
    /// Size and shape of a region.
    Morphology,
    /// Measurements that combine several regions.
    MultiRoi,
    /// Changes over two or more sessions.
    Longitudinal,
    /// Questions with a finite set of answers.
    Characterisation,
}

impl Group {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Group::Segmentation => "segmentation",
            Group::Descriptor => "descriptor",
            Group::ImageOps => "image ops",
            Group::Statistics => "statistics",
            Group::Morphology => "morphology",
            Group::MultiRoi => "multi-ROI",
            Group::Longitudinal => "longitudinal",
            Group::Characterisation => "characterisation",
        }
    }
}

/// A family's description, for `tasks list` and docs/tasks.md.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FamilyInfo {
    /// Identifier, e.g. `segment_anatomy`.
    pub id: &'static str,
    /// Group.
    pub group: Group,
    /// What is asked.
    pub asks: &'static str,
    /// Input volumes.
    pub inputs: &'static str,
    /// The program's outline.
    pub program: &'static str,
    /// The answer's form.
    pub answer: &'static str,
    /// Tolerance for model answers.
    pub tolerance: &'static str,
}

/// A realised task instance, before its prompt is drawn.
#[derive(Clone, Debug)]
pub struct Realised {
    /// Input volumes.
    pub inputs: Vec<InputVolume>,
    /// φ*.
    pub program: Vec<ProgramStep>,
    /// What a correct answer contains.
    pub expected: Expected,
    /// The response φ* prints with ground-truth masks.
    pub answer: String,
    /// The subject's truth.
    pub truth: Arc<SubjectTruth>,
}

/// The result of trying to realise a scenario on a freshly synthesized subject.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A task instance.
    Done(Box<Realised>),
    /// The subject does not fit (the target is missing, a descriptor is ambiguous, ...).
    Rejected(String),
}

/// A task family: prompt templates, the space of scenarios, and how to realise one.
pub trait Family: Send + Sync {
    /// Description.
    fn info(&self) -> FamilyInfo;
    /// Top-level prompt templates (equally likely).
    fn templates(&self) -> &'static [&'static str];
    /// Rules of its own, added to the common ones.
    fn rules(&self, _g: &mut GrammarBuilder) {}
    /// Every scenario a prompt can describe (for sampling prompts and counting them).
    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>>;
    /// Why the family cannot be sampled in this build, if it cannot.
    fn unavailable(&self, _cat: &Catalogue) -> Option<String> {
        None
    }
    /// Relative probability of drawing `scenario` from the space (1 for every scenario unless a
    /// family says otherwise).
    fn scenario_weight(&self, _cat: &Catalogue, _scenario: &Scenario) -> f64 {
        1.0
    }
    /// A cheap check, before any synthesis, that the scenario can be realised at all.
    fn feasible(&self, _cat: &Catalogue, _scenario: &Scenario) -> bool {
        true
    }
    /// Subjects to try per scenario before drawing another scenario.
    fn subject_attempts(&self) -> usize {
        4
    }
    /// Synthesizes a subject for `scenario` and builds inputs, program and expected answer.
    fn realise(&self, cat: &Catalogue, scenario: &Scenario, rng: &mut StdRng) -> Result<Outcome>;
}

/// A subject synthesized for a task, with its truth.
pub struct Synthesized {
    /// The subject.
    pub subject: Subject,
    /// Its truth.
    pub truth: Arc<SubjectTruth>,
}

/// Synthesizes a subject; `Ok(Err(reason))` when a lesion cannot be placed in it.
pub fn synthesize(
    cat: &Catalogue,
    contrasts: &[Contrast],
    lesions: &[LesionClass],
    sessions: usize,
    rng: &mut StdRng,
) -> Result<std::result::Result<Synthesized, String>> {
    let mut contrasts = contrasts.to_vec();
    contrasts.sort();
    contrasts.dedup();
    let spec = SubjectSpec {
        contrasts,
        lesions: lesions.to_vec(),
        sessions,
        spacing_mm: cat.grid_spacing_mm(),
        mode: IntensityMode::Realistic,
    };
    let seed: u64 = rng.random();
    let subject = match synthesize_subject(
        cat.anatomy(),
        &spec,
        cat.synth_config(),
        cat.vocab(),
        &format!("sub-{seed:016x}"),
        seed,
    ) {
        Ok(s) => s,
        Err(SynthError::Placement(why)) => return Ok(Err(why)),
        Err(e) => return Err(e.into()),
    };
    let truth = Arc::new(SubjectTruth::new(&subject, cat.vocab())?);
    Ok(Ok(Synthesized { subject, truth }))
}

/// The image a program gets for `contrast`: CT in Hounsfield units, ADC in 10⁻³ mm²/s (synth's
/// ADC map is quantitative — no bias field, no gamma — so only its normalisation is undone),
/// other MR as synthesized (normalised to [0, 1]). Returns the image and its units.
pub fn program_image(img: &SynthImage, contrast: Contrast) -> (Image, &'static str) {
    match (contrast, &img.hu) {
        (Contrast::Ct, Some(hu)) => (hu.clone(), "HU"),
        (Contrast::Adc, _) => {
            let scale = img.acquisition.normalisation_scale as f32;
            (img.image.map(|v| scale * v.max(0.0)), "10^-3 mm^2/s")
        }
        _ => (img.image.clone(), "normalised"),
    }
}

/// Binds `(session, contrast)` images of `subject` as inputs `scan_1`, `scan_2`, … in order.
pub fn bind_inputs(subject: &Subject, images: &[(usize, Contrast)]) -> Result<Vec<InputVolume>> {
    images
        .iter()
        .enumerate()
        .map(|(n, &(k, c))| {
            let session = subject.sessions.get(k).ok_or_else(|| {
                crate::error::TaskError::Mask(format!("the subject has no session {k}"))
            })?;
            let img = session.images.get(&c).ok_or_else(|| {
                crate::error::TaskError::Mask(format!("session {k} has no {} image", c.name()))
            })?;
            let (image, units) = program_image(img, c);
            Ok(InputVolume {
                name: format!("scan_{}", n + 1),
                contrast: c,
                modality: modality_name(c).to_string(),
                units: units.to_string(),
                session: k,
                date: session.date.clone(),
                image: Arc::new(image),
            })
        })
        .collect()
}

/// Up to `n` distinct contrasts: `first` (if any) then random picks from `pool`, in a random
/// order.
pub fn pick_contrasts(
    first: Option<Contrast>,
    pool: &[Contrast],
    n: usize,
    rng: &mut StdRng,
) -> Vec<Contrast> {
    let mut out: Vec<Contrast> = first.into_iter().collect();
    let mut pool: Vec<Contrast> = pool.iter().copied().filter(|c| Some(*c) != first).collect();
    while out.len() < n && !pool.is_empty() {
        out.push(pool.remove(rng.random_range(0..pool.len())));
    }
    // Shuffle so the asked contrast is not always scan_1.
    for i in (1..out.len()).rev() {
        out.swap(i, rng.random_range(0..=i));
    }
    out
}

/// The mask definition and canonical name of a region of interest; a lesion ROI is the first
/// lesion's proper part.
pub fn roi_def(cat: &Catalogue, roi: Roi) -> Result<(MaskDef, String)> {
    Ok(match roi {
        Roi::Anatomy(t) => {
            let target = cat.target(t)?;
            (
                MaskDef::Anatomy {
                    ids: target.anatomy_ids(),
                },
                target.name.clone(),
            )
        }
        Roi::Lesion(c) => {
            let e = cat.class(c)?.entry;
            (
                MaskDef::Lesion {
                    lesion: 0,
                    components: e.proper.to_vec(),
                },
                e.canonical.to_string(),
            )
        }
    })
}

/// Share of the subjects of a question about anatomy that also carry a lesion of a class drawn
/// at random: patients' heads have lesions, and the anatomy must be found around them (a glioma
/// displaces the ventricles; an infarct is not white matter). It is also where the vision
/// network meets most of its lesions in joint training: the extra masks generated from such a
/// subject's encoding include its lesion (train's `extra_present_lesion`), where before the only
/// mask of a lesion a joint sample asked for was its program's own.
pub const INCIDENTAL_LESION_PROBABILITY: f64 = 0.3;

/// The lesion classes a subject needs for `roi`: its class for a lesion; for anatomy, none, or
/// one incidental lesion ([`INCIDENTAL_LESION_PROBABILITY`]) of a class conspicuous on one of
/// `contrasts` (an acute infarct on a T1 alone would teach the network to draw what no reader
/// can see).
pub fn roi_lesions(
    cat: &Catalogue,
    roi: Roi,
    contrasts: &[Contrast],
    rng: &mut StdRng,
) -> Result<Vec<LesionClass>> {
    Ok(match roi {
        Roi::Anatomy(_) => {
            let visible: Vec<LesionClass> = cat
                .classes()
                .iter()
                .filter(|c| c.entry.contrasts.iter().any(|k| contrasts.contains(k)))
                .map(|c| c.class)
                .collect();
            if !visible.is_empty() && rng.random_bool(INCIDENTAL_LESION_PROBABILITY) {
                vec![visible[rng.random_range(0..visible.len())]]
            } else {
                vec![]
            }
        }
        Roi::Lesion(c) => vec![cat.class(c)?.class],
    })
}
