//! Training samples for a single target: a synthesised subject (random contrast, intensity
//! mode, spatial transform, bias, noise, blur, thick slices — all from `synth`), optionally
//! masked to a dilated brain or intracranial mask, resampled with anti-aliasing to the training
//! spacing, normalised, and cropped to a patch around the target.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synth::{
    synthesize_subject, Anatomy, Contrast, IntensityMode, LesionClass, SubjectSpec, SynthConfig,
};
use synth::{SynthError, Vocabulary};
use voxel::resample::{geometry_with_spacing, Resample, ResampleOptions};
use voxel::Image;

use crate::error::{Result, TrainError};
use crate::settings::BaselineSettings;

/// The vocabulary group used for intracranial masking.
const INTRACRANIAL: &str = tasks::families::INTRACRANIAL_TARGET;
/// The vocabulary group used for brain masking.
const BRAIN: &str = "brain";

/// One training patch and what it was made from.
#[derive(Clone, Debug)]
pub struct TrainingSample {
    /// Normalised intensities in [0, 1] on the patch grid (training spacing).
    pub image: Image,
    /// Fraction of each patch voxel inside the target (anti-aliased), in [0, 1].
    pub target: Image,
    /// The contrast rendered.
    pub contrast: Contrast,
    /// Realistic or random tissue intensities.
    pub mode: IntensityMode,
    /// Voxel size the subject was synthesised at, mm.
    pub synth_spacing_mm: f64,
    /// Dilation radius of the anatomical mask, when the sample was masked.
    pub masked_dilation_mm: Option<f64>,
}

/// What a baseline learns.
enum Learned {
    /// Voxels of these anatomy label ids.
    Anatomy(Vec<i32>),
    /// The lesion proper (edema excluded) of one lesion class, in a subject given one lesion
    /// of it and imaged on a contrast it is conspicuous on (as `segment_lesion` asks).
    Lesion {
        class: LesionClass,
        proper: &'static [i32],
        contrasts: Vec<Contrast>,
    },
}

/// Draws training samples for one target from one anatomy.
pub struct Sampler<'a> {
    anatomy: &'a Anatomy,
    synth: &'a SynthConfig,
    vocabulary: &'a Vocabulary,
    settings: &'a BaselineSettings,
    contrasts: Vec<Contrast>,
    learned: Learned,
    brain_ids: Vec<i32>,
    intracranial_ids: Vec<i32>,
}

/// Uniform in `[lo, hi)`, `lo` when the range is empty.
fn uniform(rng: &mut StdRng, [lo, hi]: [f64; 2]) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

impl<'a> Sampler<'a> {
    /// A sampler of `settings.target`, a vocabulary target or a lesion class name
    /// (`glioma`, `acute_infarct`, `wmh`, …); fails when it is neither.
    pub fn new(
        anatomy: &'a Anatomy,
        synth: &'a SynthConfig,
        vocabulary: &'a Vocabulary,
        settings: &'a BaselineSettings,
    ) -> Result<Self> {
        let ids = |name: &str| -> Result<Vec<i32>> { Ok(vocabulary.require(name)?.anatomy_ids()) };
        let lesion = tasks::classes::active_classes()
            .into_iter()
            .find(|c| c.entry.name == settings.target);
        let learned = match lesion {
            Some(c) => Learned::Lesion {
                class: c.class,
                proper: c.entry.proper,
                contrasts: c.entry.contrasts.to_vec(),
            },
            None => {
                let target_ids = ids(&settings.target)?;
                if target_ids.is_empty() {
                    return Err(TrainError::Settings {
                        what: "target".into(),
                        problem: format!("{:?} has no anatomical labels to learn", settings.target),
                    });
                }
                Learned::Anatomy(target_ids)
            }
        };
        Ok(Self {
            anatomy,
            synth,
            vocabulary,
            settings,
            contrasts: settings.contrasts()?,
            learned,
            brain_ids: ids(BRAIN)?,
            intracranial_ids: ids(INTRACRANIAL)?,
        })
    }

    /// The sample of `seed` (deterministic). Fails if the target is absent from the patch,
    /// which the centring on the target makes impossible unless the anatomy lacks it.
    pub fn sample(&self, seed: u64) -> Result<TrainingSample> {
        let s = self.settings;
        let mut rng = StdRng::seed_from_u64(seed);
        let contrasts = match &self.learned {
            Learned::Lesion { contrasts, .. } => contrasts,
            Learned::Anatomy(_) => &self.contrasts,
        };
        let contrast = contrasts[rng.random_range(0..contrasts.len())];
        let mode = if rng.random::<f64>() < s.synthesis.randomised_probability {
            IntensityMode::Randomised
        } else {
            IntensityMode::Realistic
        };
        let synth_spacing_mm = uniform(&mut rng, s.synthesis.spacing_mm);
        let spec = SubjectSpec {
            contrasts: vec![contrast],
            lesions: match &self.learned {
                Learned::Lesion { class, .. } => vec![*class],
                Learned::Anatomy(_) => vec![],
            },
            sessions: 1,
            spacing_mm: [synth_spacing_mm; 3],
            mode,
        };
        let subject = synthesize_subject(
            self.anatomy,
            &spec,
            self.synth,
            self.vocabulary,
            "train",
            rng.random(),
        )?;
        let session = subject
            .sessions
            .into_iter()
            .next()
            .ok_or_else(|| SynthError::InvalidArgument("subject without a session".into()))?;
        let mut image = session
            .images
            .get(&contrast)
            .map(|i| i.image.clone())
            .ok_or_else(|| SynthError::InvalidArgument(format!("{contrast:?} not rendered")))?;
        let labels = session.labels;
        let target = match &self.learned {
            Learned::Anatomy(ids) => labels.mask_of_any(ids),
            Learned::Lesion { proper, .. } => session.lesions.mask_of_any(proper),
        };

        let masked_dilation_mm = if rng.random::<f64>() < s.masking.probability {
            let ids = if rng.random::<f64>() < s.masking.intracranial_probability {
                &self.intracranial_ids
            } else {
                &self.brain_ids
            };
            let radius = uniform(&mut rng, s.masking.dilation_mm);
            let mut keep = labels.mask_of_any(ids);
            if radius > 0.0 {
                keep = voxel::morphology::dilate(&keep, radius)?;
            }
            image = image.zip_map(&keep, |v, inside| if inside { v } else { 0.0 })?;
            Some(radius)
        } else {
            None
        };

        let grid = geometry_with_spacing(image.geometry(), [s.spacing_mm; 3])?;
        let image = image.resample(&grid, &ResampleOptions::linear())?;
        let image = voxel::intensity::normalize_percentile(&image, &s.normalisation.options())?;
        let target = target
            .to_image()
            .resample(&grid, &ResampleOptions::linear())?;

        let start = self.patch_start(&target, &mut rng)?;
        let image = voxel::crop::crop_or_pad(&image, start, s.patch_shape, 0.0)?;
        let target = voxel::crop::crop_or_pad(&target, start, s.patch_shape, 0.0)?;
        if !target.data().iter().any(|&v| v > 0.5) {
            return Err(TrainError::Settings {
                what: "patch_shape".into(),
                problem: format!(
                    "the patch of sample {seed} holds none of {:?}",
                    self.settings.target
                ),
            });
        }
        Ok(TrainingSample {
            image,
            target,
            contrast,
            mode,
            synth_spacing_mm,
            masked_dilation_mm,
        })
    }

    /// First voxel of a patch centred on the target's centroid, shifted at random.
    fn patch_start(&self, target: &Image, rng: &mut StdRng) -> Result<[i64; 3]> {
        let shape = target.shape();
        let mut sum = [0.0f64; 3];
        let mut weight = 0.0f64;
        for (idx, &v) in target.data().iter().enumerate() {
            if v > 0.0 {
                let c = target.geometry().coords(idx);
                for a in 0..3 {
                    sum[a] += v as f64 * c[a] as f64;
                }
                weight += v as f64;
            }
        }
        if weight <= 0.0 {
            return Err(TrainError::Settings {
                what: "target".into(),
                problem: format!(
                    "{:?} is absent from the synthesised subject",
                    self.settings.target
                ),
            });
        }
        let patch = self.settings.patch_shape;
        let jitter = self.settings.synthesis.jitter_fraction;
        Ok(std::array::from_fn(|a| {
            let centre = sum[a] / weight;
            let shift = jitter * patch[a] as f64 * (2.0 * rng.random::<f64>() - 1.0);
            let start = (centre + shift - patch[a] as f64 / 2.0).round() as i64;
            // Keep as much of the volume in the patch as possible when it is smaller.
            let max_start = shape[a] as i64 - patch[a] as i64;
            if max_start >= 0 {
                start.clamp(0, max_start)
            } else {
                start.clamp(max_start, 0)
            }
        }))
    }
}
