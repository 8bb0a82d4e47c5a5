//! Running a whole hand-written program, as `voxelprompt exec --program FILE.rhai` does.
//!
//! A program is one step, or several steps delimited the way the agent writes them
//! (`<step> ... <endstep>`). Steps run in order in one [`Session`]; the first failing step
//! ends the run (a person reads the error; there is no agent to react to it) and so does
//! `stop()`. Vision calls go to a [`GroundTruthBackend`] when a label map is given, otherwise
//! they fail with a message that says to pass `--labels`.

use crate::error::Result;
use crate::sandbox::Limits;
use crate::session::{RunOutput, Session};
use crate::vision::{GroundTruthBackend, StructureTable, UnavailableBackend, VisionBackend};
use std::sync::Arc;
use voxel::{Image, LabelMap};

/// Ground truth for the vision calls of a hand-written program: a label map on the grid of
/// the scans (or covering them) and the table that maps structure names to its labels.
#[derive(Clone, Debug)]
pub struct GroundTruth {
    /// The label map.
    pub labels: LabelMap,
    /// Structure names → label ids.
    pub structures: StructureTable,
}

/// Splits a program into steps: the text between `<step>` and `<endstep>` (the closing marker
/// may be missing at the end), or the whole text as one step when it has no `<step>`.
pub fn split_steps(program: &str) -> Vec<String> {
    if !program.contains("<step>") {
        return vec![program.to_string()];
    }
    program
        .split("<step>")
        .skip(1)
        .map(|chunk| {
            chunk
                .split("<endstep>")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs `program` on the named `inputs` (variable name, image) and returns its response,
/// output volumes and trace. Step errors do not make this fail: they are in
/// [`RunOutput::error`] and in the trace. `<mod>` markers are an error here (there is no agent
/// to produce ϕ); name structures instead: `generate(encode(scan_1), "Left-Hippocampus")`.
pub fn run_program(
    program: &str,
    inputs: Vec<(String, Image)>,
    ground_truth: Option<GroundTruth>,
    limits: &Limits,
) -> Result<RunOutput> {
    let inputs: Vec<(String, Arc<Image>)> =
        inputs.into_iter().map(|(n, i)| (n, Arc::new(i))).collect();
    let backend: Arc<dyn VisionBackend> = match ground_truth {
        Some(gt) => Arc::new(GroundTruthBackend::new(gt.structures).with_labels(gt.labels)),
        None => Arc::new(UnavailableBackend::new(
            "no vision network in `exec`: pass --labels (a label map of the scan) to answer generate(...) from it",
        )),
    };
    let mut session = Session::new(inputs, backend, limits.clone())?;
    for step in split_steps(program) {
        let outcome = session.step(&step, &[])?;
        if outcome.error.is_some() || outcome.stopped {
            break;
        }
    }
    Ok(session.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_split_on_agent_markers() {
        assert_eq!(split_steps("let a = 1;"), vec!["let a = 1;"]);
        let p = "<step>let a = 1;<endstep>\n<feedback>ignored</feedback><step> read(a); <endstep><step>stop()";
        assert_eq!(split_steps(p), vec!["let a = 1;", "read(a);", "stop()"]);
    }
}
