//! Text for tokenizer training: samples of every available family, run with the oracle, written
//! the way the agent reads them: the prompt, one metadata line per input volume, then each
//! step's code and its feedback, then the response.
//!
//! ```text
//! <bos>Segment the left hippocampus.
//! volume scan_1, modality T1w, acquired 2021-03-04
//! <step>let e = encode(scan_1 <mod>);
//! read(e);<endstep><feedback><vol><endfeedback>
//! ...
//! Segmented the left hippocampus: 4.189 mL.<eos>
//! ```

use crate::catalogue::Catalogue;
use crate::error::{Result, TaskError};
use crate::oracle::run_with_oracle;
use crate::sample::TaskSample;
use std::io::Write;

/// What a corpus run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorpusStats {
    /// Samples written.
    pub samples: usize,
    /// Bytes written.
    pub bytes: usize,
    /// Samples skipped because no fitting subject was found.
    pub skipped: usize,
}

/// One sample as corpus text (see the module docs), run with the oracle for its feedback.
pub fn sample_text(sample: &TaskSample) -> Result<String> {
    let run = run_with_oracle(sample)?;
    let mut s = format!("<bos>{}\n", sample.prompt.text);
    for i in &sample.inputs {
        s.push_str(&i.metadata_line());
        s.push('\n');
    }
    for step in &run.steps {
        s.push_str(&format!(
            "<step>{}<endstep><feedback>{}<endfeedback>\n",
            step.code, step.feedback
        ));
    }
    s.push_str(&run.output.response);
    s.push_str("<eos>\n");
    Ok(s)
}

/// Writes `n` samples, cycling through the available families, sample `i` drawn with a seed
/// derived from `seed` and `i` (the same arguments give the same text).
pub fn write_corpus(
    cat: &Catalogue,
    n: usize,
    seed: u64,
    out: &mut dyn Write,
) -> Result<CorpusStats> {
    let mut ids = Vec::new();
    for f in cat.families() {
        if cat.unavailable(f.id)?.is_none() {
            ids.push(f.id);
        }
    }
    let mut stats = CorpusStats::default();
    if ids.is_empty() {
        return Ok(stats);
    }
    for i in 0..n {
        let id = ids[i % ids.len()];
        let s = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(i as u64);
        let sample = match cat.sample(id, s) {
            Ok(x) => x,
            Err(TaskError::NoSample { .. }) => {
                stats.skipped += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let text = sample_text(&sample)?;
        out.write_all(text.as_bytes())?;
        stats.samples += 1;
        stats.bytes += text.len();
    }
    Ok(stats)
}
