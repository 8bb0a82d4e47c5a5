//! Answering a question with a trained [`Model`] (DESIGN.md §2): μ₁ from the prompt and the
//! scans' metadata, then greedy decoding of one step at a time, each step run in the sandboxed
//! runtime with the model's vision network ([`UnetBackend`]), its feedback (text, and ε° at
//! `<vol>` slots) appended, until the program calls `stop()` or a limit is reached. Used by
//! `voxelprompt run` and by the evaluation.

use std::sync::Arc;
use std::time::Instant;

use agent::{AgentSequence, DecodeOptions, DecodeSession, FeedbackItem, StopReason, VolumeInfo};
use burn::tensor::{Tensor, TensorData};
use runtime::{Limits, RunOutput, Session, VisionBackend};
use serde::Serialize;
use voxel::Image;

use crate::backend::UnetBackend;
use crate::error::Result;
use crate::model::Model;
use crate::preprocess::Modality;

/// One input scan of a question.
#[derive(Clone, Debug)]
pub struct Scan {
    /// Program variable name (`scan_1`, `t1`, …).
    pub name: String,
    /// The image, in any orientation and spacing.
    pub image: Arc<Image>,
    /// Modality as the metadata line gives it (`T1w`, `FLAIR`, `CT`, …), if known.
    pub modality: Option<String>,
    /// Acquisition date (ISO), if known.
    pub date: Option<String>,
}

impl Scan {
    /// The modality that decides normalisation: from the metadata word, else from the
    /// intensities ([`Modality::guess`]).
    pub fn normalisation(&self) -> Modality {
        self.modality
            .as_deref()
            .map(Modality::from_name)
            .unwrap_or_else(|| Modality::guess(&self.image))
    }
}

/// Limits of one answer.
#[derive(Clone, Debug)]
pub struct AnswerOptions {
    /// Most program steps before the answer is cut off.
    pub max_steps: usize,
    /// Most tokens one step may emit.
    pub max_new_tokens: usize,
    /// The sandbox's limits.
    pub limits: Limits,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        AnswerOptions {
            max_steps: 8,
            max_new_tokens: 400,
            limits: Limits::default(),
        }
    }
}

/// One step as it ran.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// The code the agent wrote (with `<mod>` markers).
    pub code: String,
    /// The feedback text it got back (`<vol>` per encoded stream).
    pub feedback: String,
    /// The error the step reported, if any.
    pub error: Option<String>,
    /// Seconds the agent spent writing the step.
    pub decode_seconds: f64,
    /// Seconds the runtime spent running it (vision included).
    pub run_seconds: f64,
    /// Of `run_seconds`: inside the vision network.
    pub vision_seconds: f64,
    /// The ϕ that answered the step's `<mod>` markers, in order (not serialised: 32 numbers
    /// each, for tests and tools that look inside the vision calls).
    #[serde(skip)]
    pub phis: Vec<runtime::Phi>,
}

impl StepRecord {
    /// A step of `code` alone: no feedback, error, timing or ϕ (what a program read from text
    /// is, and what tests build answers from).
    pub fn of_code(code: &str) -> StepRecord {
        StepRecord {
            code: code.to_string(),
            feedback: String::new(),
            error: None,
            decode_seconds: 0.0,
            run_seconds: 0.0,
            vision_seconds: 0.0,
            phis: Vec::new(),
        }
    }
}

/// Why answering ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The program called `stop()`.
    Stopped,
    /// `max_steps` steps ran without `stop()`.
    StepLimit,
    /// The agent's context is full.
    SequenceLimit,
    /// A measurement was asked of a mask with no voxel (the vision network found nothing):
    /// the answer says so in words ([`empty_mask_response`]) instead of letting the agent write
    /// more steps, which cannot make the mask non-empty and were never trained on.
    EmptyMask,
    /// A library function's result was undefined for its values (`ratio` with a zero
    /// denominator, most often the volume of a mask the vision network left empty): the answer
    /// says so in words ([`undefined_response`]), as for [`Ending::EmptyMask`].
    Undefined,
}

impl Ending {
    /// A dead end that the answer states in words ([`Ending::EmptyMask`], [`Ending::Undefined`]):
    /// the program asked a fair question of a mask the vision network left empty; the error,
    /// if any, is the vision network's, not the agent's.
    pub fn is_dead_end(self) -> bool {
        matches!(self, Ending::EmptyMask | Ending::Undefined)
    }
}

/// A question answered.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Response, output volumes (each on its input's grid) and trace.
    pub output: RunOutput,
    /// Every step, in order.
    pub steps: Vec<StepRecord>,
    /// Why it ended.
    pub ending: Ending,
    /// Wall time of the whole answer, seconds.
    pub seconds: f64,
}

/// Answers `prompt` about `scans` with `model` (on the device its weights are on).
pub fn answer(
    model: &Model,
    scans: &[Scan],
    prompt: &str,
    options: &AnswerOptions,
) -> Result<Answer> {
    Conversation::new(model, scans, options.clone())?.ask(prompt)
}

/// Questions about the same scans in one runtime environment (`voxelprompt chat`): each is
/// answered by a program the agent writes from the question and the scans' metadata alone
/// (the agent was trained on single questions, so it does not see earlier ones), while the
/// variables every program leaves stay reachable as `NAME_TURN` (`m_1`, `e_2`) for later
/// programs and for hand-written code ([`Conversation::run_code`]).
pub struct Conversation<'m> {
    model: &'m Model,
    infos: Vec<VolumeInfo>,
    backend: Arc<UnetBackend>,
    session: Session,
    options: AnswerOptions,
    turns: usize,
    /// Markers answered so far when an oracle stands in for the vision network.
    oracle_markers: Option<usize>,
}

impl<'m> Conversation<'m> {
    /// A conversation about `scans`.
    pub fn new(model: &'m Model, scans: &[Scan], options: AnswerOptions) -> Result<Self> {
        Self::with_vision(model, scans, options, None)
    }

    /// A conversation in which `oracle` ([`tasks::oracle::OracleBackend`]) answers every vision
    /// call in place of the model's network: the n-th `<mod>` the agent writes gets
    /// [`tasks::oracle::oracle_phi`]`(n)` and the `<vol>` slots zero vectors, as in program
    /// pretraining ([`crate::joint::program_loss`]). It measures the agent alone: what the
    /// model would answer with a perfect vision network.
    pub fn with_oracle(
        model: &'m Model,
        scans: &[Scan],
        options: AnswerOptions,
        oracle: Arc<dyn VisionBackend>,
    ) -> Result<Self> {
        Self::with_vision(model, scans, options, Some(oracle))
    }

    fn with_vision(
        model: &'m Model,
        scans: &[Scan],
        options: AnswerOptions,
        oracle: Option<Arc<dyn VisionBackend>>,
    ) -> Result<Self> {
        let device = model.net.agent.device();
        let infos: Vec<VolumeInfo> = scans
            .iter()
            .map(|s| VolumeInfo {
                name: s.name.clone(),
                modality: s.modality.clone(),
                acquired: s.date.clone(),
            })
            .collect();
        let backend = Arc::new(UnetBackend::inference(
            model.net.vision.clone(),
            device,
            model.config.preprocessing.clone(),
            scans
                .iter()
                .map(|s| (s.image.clone(), s.normalisation()))
                .collect(),
        ));
        let oracle_markers = oracle.as_ref().map(|_| 0);
        let dyn_backend: Arc<dyn VisionBackend> = match oracle {
            Some(oracle) => oracle,
            None => backend.clone(),
        };
        let session = Session::new(
            scans
                .iter()
                .map(|s| (s.name.clone(), s.image.clone()))
                .collect(),
            dyn_backend,
            options.limits.clone(),
        )?;
        Ok(Conversation {
            model,
            infos,
            backend,
            session,
            options,
            turns: 0,
            oracle_markers,
        })
    }

    /// Answers `prompt`: greedy decoding of one step at a time, each run in the environment,
    /// until the program calls `stop()` or a limit is reached.
    pub fn ask(&mut self, prompt: &str) -> Result<Answer> {
        self.ask_with(prompt, |_| {})
    }

    /// [`Conversation::ask`], calling `on_step` with each step as soon as it has run (for
    /// `voxelprompt serve`, which streams the steps of an answer in progress).
    pub fn ask_with(
        &mut self,
        prompt: &str,
        mut on_step: impl FnMut(&StepRecord),
    ) -> Result<Answer> {
        let started = Instant::now();
        let model = self.model;
        let device = model.net.agent.device();
        let mu1 = AgentSequence::initial(&model.tokenizer, prompt, &self.infos)?;
        let mut decoder = DecodeSession::new(&model.net.agent, &model.tokenizer, mu1, None)?
            .with_marker_gate(runtime::marker_counts_after);
        let decode_options = DecodeOptions {
            max_new_tokens: self.options.max_new_tokens,
            ..DecodeOptions::default()
        };
        let mut steps = Vec::new();
        // The sentence a dead end (an empty mask, an undefined value) ends the answer with.
        let mut dead_end = None;
        let ending = loop {
            if steps.len() >= self.options.max_steps {
                break Ending::StepLimit;
            }
            let t = Instant::now();
            let step = match decoder.decode_step(&decode_options) {
                Ok(step) => step,
                // The feedback of the last step filled the context: no room for another.
                Err(agent::AgentError::SequenceTooLong { .. }) => break Ending::SequenceLimit,
                Err(e) => return Err(e.into()),
            };
            let decode_seconds = t.elapsed().as_secs_f64();
            let phis = match (&step.phi, &mut self.oracle_markers) {
                (Some(rows), Some(next)) => {
                    let first = *next;
                    *next += rows.dims()[0];
                    (first..*next).map(tasks::oracle::oracle_phi).collect()
                }
                (Some(rows), None) => phi_values(rows.clone())?,
                (None, _) => Vec::new(),
            };
            let t = Instant::now();
            let outcome = self.session.step(&step.code, &phis)?;
            let run_seconds = t.elapsed().as_secs_f64();
            steps.push(StepRecord {
                code: step.code.clone(),
                feedback: outcome.feedback_text(),
                error: outcome.error.as_ref().map(|e| e.to_string()),
                decode_seconds,
                run_seconds,
                vision_seconds: self.backend.take_vision_seconds(),
                phis,
            });
            if let Some(last) = steps.last() {
                on_step(last);
            }
            if outcome.stopped {
                break Ending::Stopped;
            }
            if let Some(function) = outcome.error.as_ref().and_then(|e| e.empty_mask_in.clone()) {
                let target = refused_target(&steps, outcome.error.as_ref().and_then(|e| e.line));
                dead_end = Some(empty_mask_response(&function, target.as_deref()));
                break Ending::EmptyMask;
            }
            if let Some(error) = outcome.error.as_ref().filter(|e| e.undefined_in.is_some()) {
                let function = error.undefined_in.as_deref().unwrap_or_default();
                dead_end = Some(undefined_response(function, &error.message));
                break Ending::Undefined;
            }
            if step.stop == StopReason::SequenceLimit {
                break Ending::SequenceLimit;
            }
            let mut eps = eps_rows(&outcome.feedback, &device);
            if self.oracle_markers.is_some() {
                let d = model.net.agent.config().d_model;
                eps = eps.map(|rows| Tensor::<2>::zeros([rows.dims()[0], d], &device));
            }
            if let Err(e) = decoder.push_feedback(&outcome.feedback, eps) {
                if matches!(e, agent::AgentError::SequenceTooLong { .. }) {
                    break Ending::SequenceLimit;
                }
                return Err(e.into());
            }
        };
        self.turns += 1;
        let mut output = self.session.end_turn(self.turns);
        if let Some(sentence) = dead_end {
            if !output.response.is_empty() {
                output.response.push('\n');
            }
            output.response.push_str(&sentence);
        }
        Ok(Answer {
            output,
            steps,
            ending,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Runs hand-written code (no `<mod>` markers) in the environment as a turn of its own:
    /// measurements on masks of earlier answers, `show`, `respond`.
    pub fn run_code(&mut self, code: &str) -> Result<(runtime::StepOutcome, RunOutput)> {
        let outcome = self.session.step(code, &[])?;
        self.turns += 1;
        Ok((outcome, self.session.end_turn(self.turns)))
    }

    /// Runs hand-written code as a turn of its own, like [`Conversation::run_code`], with
    /// `phis` answering its `<mod>` markers in order; returned as an [`Answer`] of one step
    /// (ending [`Ending::Stopped`]: the code ran to its end or to its error).
    pub fn run_code_answer(&mut self, code: &str, phis: &[runtime::Phi]) -> Result<Answer> {
        let started = Instant::now();
        let outcome = self.session.step(code, phis)?;
        let run_seconds = started.elapsed().as_secs_f64();
        self.turns += 1;
        let step = StepRecord {
            code: code.to_string(),
            feedback: outcome.feedback_text(),
            error: outcome.error.as_ref().map(|e| e.to_string()),
            decode_seconds: 0.0,
            run_seconds,
            vision_seconds: self.backend.take_vision_seconds(),
            phis: phis.to_vec(),
        };
        Ok(Answer {
            output: self.session.end_turn(self.turns),
            steps: vec![step],
            ending: Ending::Stopped,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The variables now defined (name, Rust type of the value).
    pub fn variables(&self) -> Vec<(String, String)> {
        self.session.variables()
    }

    /// Turns so far (questions and hand-written code).
    pub fn turns(&self) -> usize {
        self.turns
    }
}

/// The ϕ rows of a decoded step as the runtime's plain vectors.
fn phi_values(rows: Tensor<2>) -> Result<Vec<runtime::Phi>> {
    let values = vision::tensor::tensor_values(rows)?;
    Ok(values
        .chunks_exact(runtime::PHI_DIM)
        .map(|c| {
            let mut p = [0.0f32; runtime::PHI_DIM];
            p.copy_from_slice(c);
            p
        })
        .collect())
}

/// The ε° rows `[n, d]` of a step's encodings, in order, or `None` when it read none.
fn eps_rows(feedback: &[FeedbackItem], device: &burn::tensor::Device) -> Option<Tensor<2>> {
    let rows: Vec<&Vec<f32>> = feedback
        .iter()
        .flat_map(|f| match f {
            FeedbackItem::Encoding { streams } => streams.iter().collect(),
            FeedbackItem::Text(_) => Vec::new(),
        })
        .collect();
    let d = rows.first()?.len();
    let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Some(Tensor::<2>::from_data(
        TensorData::new(data, [rows.len(), d]),
        device,
    ))
}

/// The answer's last line when `function` refused an empty mask of `target` (the vision
/// network's name for it, if known). It avoids yes/no words, so that no checker of a yes/no
/// question reads it as an answer.
pub fn empty_mask_response(function: &str, target: Option<&str>) -> String {
    match target {
        Some(t) => format!(
            "Cannot answer: the vision network's mask of the {t} is empty (it marked nothing as \
             {t} in the scan), and {function} needs a mask with at least one voxel."
        ),
        None => format!(
            "Cannot answer: a mask the program measured is empty, and {function} needs a mask \
             with at least one voxel."
        ),
    }
}

/// The sentence an answer ends with when `function` refused values its result is undefined
/// for; `message` is the refusal's (`ratio: the second value is 0, so the ratio is undefined`).
pub fn undefined_response(function: &str, message: &str) -> String {
    let reason = message
        .strip_prefix(function)
        .and_then(|m| m.strip_prefix(':'))
        .unwrap_or(message)
        .trim();
    format!(
        "Cannot answer: {function} is undefined here ({reason}); a value of 0 there is often the \
         volume of a mask the vision network left empty."
    )
}

/// Every `let NAME = generate(… /* target */ …)` of a program's steps as `(NAME, target)`, in
/// program order (a later one of a name rebinds it). One statement per line or several
/// separated by `;`.
pub fn generated_targets(steps: &[StepRecord]) -> Vec<(&str, &str)> {
    let mut generated = Vec::new();
    let statements = steps
        .iter()
        .flat_map(|s| s.code.lines())
        .flat_map(|l| l.split(';'));
    for statement in statements {
        let Some((name, rest)) = statement
            .trim()
            .strip_prefix("let ")
            .and_then(|l| l.split_once('='))
        else {
            continue;
        };
        let (Some(open), Some(close)) = (rest.find("/*"), rest.find("*/")) else {
            continue;
        };
        if rest.trim_start().starts_with("generate(") && open < close {
            generated.push((name.trim(), rest[open + 2..close].trim()));
        }
    }
    generated
}

/// The target of the mask refused on line `line` (1-based) of the last step: the
/// `/* target */` comment of the `let NAME = generate(…)` that made a variable named on that
/// line, when exactly one target is named so. A mask derived from a generated one
/// (`left(m)`) has no such comment, and gets none.
fn refused_target(steps: &[StepRecord], line: Option<usize>) -> Option<String> {
    let error_line = steps.last()?.code.lines().nth(line?.checked_sub(1)?)?;
    let generated = generated_targets(steps);
    let named: Vec<&str> = error_line
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    let mut targets: Vec<&str> = Vec::new();
    for word in named {
        // The latest definition of a name is the one the line used.
        if let Some((_, target)) = generated.iter().rev().find(|(name, _)| *name == word) {
            if !targets.contains(target) {
                targets.push(target);
            }
        }
    }
    match targets.as_slice() {
        [one] if !one.is_empty() => Some(one.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(code: &str) -> StepRecord {
        StepRecord::of_code(code)
    }

    #[test]
    fn the_refused_mask_is_named_by_its_generate_comment() {
        let steps = [
            step("let e = encode(scan_1 <mod>);\nread(e);"),
            step("read(e);\nlet m = generate(e /* acute infarct */ <mod>);\nlet mu = mean(scan_1, m);"),
        ];
        assert_eq!(
            refused_target(&steps, Some(3)).as_deref(),
            Some("acute infarct")
        );
        // Line 1 names no generated mask; no line, no target.
        assert_eq!(refused_target(&steps, Some(1)), None);
        assert_eq!(refused_target(&steps, None), None);
        assert_eq!(refused_target(&steps, Some(9)), None);
    }

    #[test]
    fn a_redefined_or_derived_mask_gets_its_own_name_or_none() {
        let steps = [
            step("let m = generate(e /* glioma */ <mod>);"),
            step("let m = generate(e /* oedema */ <mod>);\nlet l = left(m);\nread(centroid(l));"),
        ];
        assert_eq!(
            refused_target(&steps, Some(1)).as_deref(),
            Some("oedema"),
            "the latest definition of m"
        );
        assert_eq!(refused_target(&steps, Some(3)), None, "l is derived");
        let two = [step(
            "let a = generate(e /* glioma */ <mod>);\nlet b = generate(e /* oedema */ <mod>);\nread(ratio(mean(scan_1, a), mean(scan_1, b)));",
        )];
        assert_eq!(
            refused_target(&two, Some(3)),
            None,
            "two targets on the line"
        );
    }

    #[test]
    fn the_response_names_the_target_and_no_yes_or_no_word() {
        for target in [Some("acute infarct"), None] {
            let text = empty_mask_response("mean", target);
            assert!(text.starts_with("Cannot answer"), "{text}");
            assert!(text.contains("mean"), "{text}");
            assert_reads_as_no_answer(&text);
        }
        assert!(empty_mask_response("centroid", Some("glioma")).contains("mask of the glioma"));
    }

    #[test]
    fn an_undefined_value_is_explained_without_a_yes_or_no_word() {
        let text = undefined_response(
            "ratio",
            "ratio: the second value is 0, so the ratio is undefined",
        );
        assert_eq!(
            text,
            "Cannot answer: ratio is undefined here (the second value is 0, so the ratio is \
             undefined); a value of 0 there is often the volume of a mask the vision network \
             left empty."
        );
        assert_reads_as_no_answer(&text);
    }

    /// `text` has none of the words a checker reads as a yes/no or presence answer.
    fn assert_reads_as_no_answer(text: &str) {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .map(str::to_lowercase)
            .collect();
        for word in ["yes", "no", "not", "absent", "present", "none"] {
            assert!(!words.iter().any(|w| w == word), "{word} in {text}");
        }
    }
}
