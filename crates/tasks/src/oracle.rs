//! The oracle: a [`VisionBackend`] that answers every `generate` with the true mask of the
//! target its `<mod>` stands for, so a ground-truth program can run end to end without a
//! trained network. **For tests, the tokenizer corpus and `exec`-style demonstrations only**:
//! it reads the answer out of the sample.
//!
//! The harness gives the n-th marker of the program (counting over all steps) the ϕ vector
//! [`oracle_phi`]`(n)`; the oracle decodes n and looks up that marker's meaning. Encoder
//! markers carry no information for it. `read` of an encoding gives the ground-truth backend's
//! plain image statistics in place of ε°.

use crate::error::{Result, TaskError};
use crate::program::ModMeaning;
use crate::sample::TaskSample;
use crate::truth::{MaskDef, SubjectTruth};
use runtime::grid::integer_offset;
use runtime::{
    EncodingHandle, GroundTruthBackend, Limits, Phi, RunOutput, Session, StructureTable,
    VisionBackend, PHI_DIM,
};
use serde::Serialize;
use std::sync::Arc;
use voxel::crop::crop_or_pad;
use voxel::{Image, Mask};

/// Marks a ϕ vector as made by [`oracle_phi`].
const TAG: f32 = 7919.0;

/// The ϕ the harness binds to marker number `index` (0-based, over the whole program).
pub fn oracle_phi(index: usize) -> Phi {
    let mut p = [0.0f32; PHI_DIM];
    p[0] = TAG;
    p[1] = index as f32;
    p
}

/// The marker index an [`oracle_phi`] vector encodes.
fn decode(phi: &Phi) -> Option<usize> {
    (phi[0] == TAG && phi[1] >= 0.0 && phi[1].fract() == 0.0).then_some(phi[1] as usize)
}

/// The test-harness backend (see the module docs).
pub struct OracleBackend {
    truth: Arc<SubjectTruth>,
    inputs: Vec<(Arc<Image>, usize)>,
    targets: Vec<Option<MaskDef>>,
    stats: GroundTruthBackend,
}

impl OracleBackend {
    /// The oracle for `sample`'s program and inputs.
    pub fn new(sample: &TaskSample) -> OracleBackend {
        OracleBackend {
            truth: sample.truth.clone(),
            inputs: sample.input_sessions(),
            targets: sample
                .mods()
                .map(|m| match m {
                    ModMeaning::Generate { target } => Some(target.mask.clone()),
                    ModMeaning::Encode { .. } => None,
                })
                .collect(),
            stats: GroundTruthBackend::new(StructureTable::new()),
        }
    }
}

impl VisionBackend for OracleBackend {
    fn name(&self) -> &str {
        "oracle"
    }

    fn encode(&self, volumes: &[Arc<Image>], phi: &[Phi]) -> runtime::Result<EncodingHandle> {
        Ok(EncodingHandle::new(volumes.to_vec(), phi.to_vec(), None))
    }

    fn generate(&self, encoding: &EncodingHandle, phi: &Phi) -> runtime::Result<Vec<Image>> {
        let vision = |m: String| runtime::RuntimeError::Vision(m);
        let index = decode(phi).ok_or_else(|| vision("ϕ was not made by oracle_phi".into()))?;
        let def = self
            .targets
            .get(index)
            .and_then(|t| t.as_ref())
            .ok_or_else(|| vision(format!("marker {index} is not a generate target")))?;
        encoding
            .streams()
            .iter()
            .map(|s| {
                stream_truth(&self.truth, &self.inputs, def, s)
                    .map(|m| m.to_image())
                    .map_err(|e| vision(e.to_string()))
            })
            .collect()
    }

    fn embedding(&self, encoding: &EncodingHandle) -> runtime::Result<Vec<Vec<f32>>> {
        self.stats.embedding(encoding)
    }
}

/// The true mask of `def` for one encoded stream: the stream is an input (matched by identity,
/// `inputs` pairs each input image with its session) or a crop of one when all inputs share a
/// session. Used by the oracle and by the joint trainer's Dice loss.
pub fn stream_truth(
    truth: &SubjectTruth,
    inputs: &[(Arc<Image>, usize)],
    def: &MaskDef,
    stream: &Arc<Image>,
) -> Result<Mask> {
    if let Some((_, s)) = inputs.iter().find(|(i, _)| Arc::ptr_eq(i, stream)) {
        return truth.mask(def, *s);
    }
    let mut sessions: Vec<usize> = inputs.iter().map(|(_, s)| *s).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let [session] = sessions[..] else {
        return Err(TaskError::Mask(
            "the truth of a derived volume is known only when all inputs are of one session".into(),
        ));
    };
    let grid = truth.session(session)?.labels.geometry();
    let off = integer_offset(grid, stream.geometry()).ok_or_else(|| {
        TaskError::Mask("an encoded volume is not on (a crop of) an input's grid".into())
    })?;
    Ok(crop_or_pad(
        &truth.mask(def, session)?,
        off,
        stream.shape(),
        false,
    )?)
}

impl TaskSample {
    /// Each input image with its session index, as [`stream_truth`] takes them.
    pub fn input_sessions(&self) -> Vec<(Arc<Image>, usize)> {
        self.inputs
            .iter()
            .map(|i| (i.image.clone(), i.session))
            .collect()
    }
}

/// One executed step: its code and the feedback the agent would see.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutedStep {
    /// The code.
    pub code: String,
    /// The feedback text (`<vol>` per encoded stream for encodings).
    pub feedback: String,
}

/// A program run step by step.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The steps that ran.
    pub steps: Vec<ExecutedStep>,
    /// Response, outputs, trace.
    pub output: RunOutput,
}

/// The ϕ vectors of each step for the oracle: marker n of the program gets `oracle_phi(n)`.
pub fn oracle_phis(sample: &TaskSample) -> Vec<Vec<Phi>> {
    let mut n = 0;
    sample
        .program
        .iter()
        .map(|s| {
            s.mods
                .iter()
                .map(|_| {
                    n += 1;
                    oracle_phi(n - 1)
                })
                .collect()
        })
        .collect()
}

/// A runtime session on `sample`'s inputs whose vision is the oracle: every `generate`
/// returns the true mask of the target its `<mod>` means.
pub fn oracle_session(sample: &TaskSample) -> Result<Session> {
    let backend: Arc<dyn VisionBackend> = Arc::new(OracleBackend::new(sample));
    Ok(Session::new(
        sample.named_images(),
        backend,
        Limits::default(),
    )?)
}

/// Runs `sample`'s program in a runtime session whose vision calls the oracle answers; stops
/// at `stop()` or after the last step (a failing step does not end the run: the agent would
/// see its error as feedback).
pub fn run_with_oracle(sample: &TaskSample) -> Result<Execution> {
    let mut session = oracle_session(sample)?;
    let mut steps = Vec::new();
    for (step, phi) in sample.program.iter().zip(oracle_phis(sample)) {
        let outcome = session.step(&step.code, &phi)?;
        steps.push(ExecutedStep {
            code: step.code.clone(),
            feedback: outcome.feedback_text(),
        });
        if outcome.stopped {
            break;
        }
    }
    Ok(Execution {
        steps,
        output: session.finish(),
    })
}
