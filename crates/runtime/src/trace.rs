//! The trace of a run: per step, the code, a summary of the ϕ vectors it was given, the
//! feedback it produced, its error if any, and its wall time. The trace is the provenance of
//! every number in a report, so it serialises to JSON as is.

use crate::error::{Result, StepError};
use crate::values::Phi;
use serde::{Deserialize, Serialize};

/// A summary of a step's ϕ vectors: enough to see in a report whether the agent's `<mod>`
/// outputs are sane (not NaN, not exploding) without storing them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhiSummary {
    /// Number of ϕ vectors.
    pub count: usize,
    /// Mean of all their components (0 when there are none).
    pub mean: f64,
    /// Mean Euclidean norm of the vectors (0 when there are none).
    pub norm: f64,
}

impl PhiSummary {
    /// Summarises `phi`.
    pub fn of(phi: &[Phi]) -> PhiSummary {
        if phi.is_empty() {
            return PhiSummary::default();
        }
        let components = phi.iter().flat_map(|p| p.iter()).map(|&v| v as f64);
        let n = (phi.len() * phi[0].len()) as f64;
        let mean = components.sum::<f64>() / n;
        let norm = phi
            .iter()
            .map(|p| p.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt())
            .sum::<f64>()
            / phi.len() as f64;
        PhiSummary {
            count: phi.len(),
            mean,
            norm,
        }
    }
}

/// One executed step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    /// Step number, from 1.
    pub index: usize,
    /// The code as the agent wrote it (with `<mod>` markers).
    pub code: String,
    /// The ϕ vectors bound to its markers.
    pub phi: PhiSummary,
    /// The feedback as text (encodings as `<vol>` per stream), errors included.
    pub feedback: String,
    /// The error that ended the step early, if any.
    pub error: Option<StepError>,
    /// Whether the step called `stop()`.
    pub stopped: bool,
    /// Text the step printed with `print`/`debug` (for people; the agent does not see it).
    pub log: String,
    /// Wall time of the step in milliseconds, vision calls included.
    pub wall_ms: f64,
}

/// All steps of a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The steps.
    pub steps: Vec<StepTrace>,
}

impl Trace {
    /// The trace as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a trace back from JSON.
    pub fn from_json(text: &str) -> Result<Trace> {
        Ok(serde_json::from_str(text)?)
    }
}
