//! One task sample, everything training, evaluation and the tokenizer corpus need: the prompt,
//! the input volumes with their metadata, the ground-truth program as steps with the meaning of
//! every `<mod>`, the expected answer and the checker.

use crate::checker::{
    check_text, output_score, CheckItem, CheckReport, Expected, Level, GROUND_TRUTH_MIN_OVERLAP,
    MODEL_MIN_OVERLAP,
};
use crate::error::{Result, TaskError};
use crate::program::{GenerateTarget, ModMeaning, ProgramStep};
use crate::scenario::Scenario;
use crate::truth::SubjectTruth;
use runtime::OutputVolume;
use serde::Serialize;
use std::sync::Arc;
use synth::Contrast;
use voxel::{Image, Mask};

/// One input volume of a task.
#[derive(Clone, Debug)]
pub struct InputVolume {
    /// Program variable name (`scan_1`, `scan_2`, …).
    pub name: String,
    /// The contrast it was synthesized as.
    pub contrast: Contrast,
    /// Modality as the metadata line gives it (`FLAIR`, `T1w post-contrast`, `CT`, …).
    pub modality: String,
    /// Units of the intensities: `normalised` (MR, [0, 1]), `HU` (CT), `10^-3 mm^2/s` (ADC).
    pub units: String,
    /// Index of its session.
    pub session: usize,
    /// ISO date of its session.
    pub date: String,
    /// The image.
    pub image: Arc<Image>,
}

impl InputVolume {
    /// The line the agent's first state holds for this volume:
    /// `volume scan_1, modality FLAIR, acquired 2021-03-04`.
    pub fn metadata_line(&self) -> String {
        format!(
            "volume {}, modality {}, acquired {}",
            self.name, self.modality, self.date
        )
    }
}

/// A prompt drawn from a family's grammar.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prompt {
    /// The text.
    pub text: String,
    /// Index of the template it came from (for diversity statistics).
    pub template: usize,
    /// Whether a typo was injected.
    pub typo: bool,
}

/// One sample of a task family.
#[derive(Clone, Debug)]
pub struct TaskSample {
    /// Family id.
    pub family: String,
    /// Seed the sample was drawn with.
    pub seed: u64,
    /// The prompt.
    pub prompt: Prompt,
    /// The prompt-relevant choices.
    pub scenario: Scenario,
    /// Input volumes, in the order they are bound.
    pub inputs: Vec<InputVolume>,
    /// The ground-truth program φ*.
    pub program: Vec<ProgramStep>,
    /// What a correct answer contains.
    pub expected: Expected,
    /// The response φ* prints with ground-truth masks.
    pub answer: String,
    /// The subject's truth (label maps, lesion records).
    pub truth: Arc<SubjectTruth>,
}

impl TaskSample {
    /// The program as one text, steps delimited the way the agent writes them.
    pub fn program_text(&self) -> String {
        self.program
            .iter()
            .map(|s| format!("<step>{}<endstep>", s.code))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The meaning of every `<mod>` of the program, in order.
    pub fn mods(&self) -> impl Iterator<Item = &ModMeaning> {
        self.program.iter().flat_map(|s| s.mods.iter())
    }

    /// The inputs as a runtime session binds them: (name, image), in order.
    pub fn named_images(&self) -> Vec<(String, Arc<Image>)> {
        self.inputs
            .iter()
            .map(|i| (i.name.clone(), i.image.clone()))
            .collect()
    }

    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&InputVolume> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The true masks a `generate` call steered at `target` should return for an encoding of
    /// `streams` (input names, in encoding order): one per stream, on its session.
    pub fn target_masks(&self, target: &GenerateTarget, streams: &[&str]) -> Result<Vec<Mask>> {
        streams
            .iter()
            .map(|name| {
                let input = self.input(name).ok_or_else(|| {
                    TaskError::Mask(format!("{name} is not an input of this sample"))
                })?;
                self.truth.mask(&target.mask, input.session)
            })
            .collect()
    }

    /// Checks a response and the output volumes a run produced against the truth.
    pub fn check(
        &self,
        response: &str,
        outputs: &[OutputVolume],
        level: Level,
    ) -> Result<CheckReport> {
        let mut items = check_text(&self.expected, response, level);
        let min = match level {
            Level::GroundTruth => GROUND_TRUTH_MIN_OVERLAP,
            Level::Model => MODEL_MIN_OVERLAP,
        };
        for o in &self.expected.outputs {
            let what = format!("output {}", o.name);
            let Some(found) = outputs.iter().find(|x| x.name == o.name) else {
                items.push(CheckItem {
                    what,
                    passed: false,
                    detail: "not shown".into(),
                });
                continue;
            };
            let input = self.input(&o.input).ok_or_else(|| {
                TaskError::Mask(format!(
                    "expected output {} derives from unknown input {}",
                    o.name, o.input
                ))
            })?;
            let truth = self.truth.mask(&o.target, o.session)?;
            let score = output_score(o.kind, &input.image, &truth, found)?;
            items.push(CheckItem {
                what,
                passed: score >= min,
                detail: format!("overlap (Dice) {score:.4}, needs {min}"),
            });
        }
        Ok(CheckReport {
            passed: items.iter().all(|i| i.passed),
            items,
        })
    }
}
