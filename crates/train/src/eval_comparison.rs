//! Paired comparison of two held-out evaluations (`report.json` of `voxelprompt eval`), the
//! evidence behind `voxelprompt ship`. Two evaluations with the same seed draw the same samples,
//! so each sample is a pair: the exact McNemar test asks whether the samples only one model
//! passed lean to one side more than chance would, and each segmentation target's Dice is
//! compared subject by subject ([`crate::stats::paired`]). With 136 samples and success near
//! 7 %, two or three samples either way are noise; the unpaired rates alone cannot say so.

use crate::error::{Result, TrainError};
use crate::stats::{self, PairedComparison};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Counts of paired yes/no outcomes and the exact McNemar test of the discordant ones.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PairedOutcomes {
    /// Pairs.
    pub pairs: usize,
    /// Yes for the old model.
    pub old: usize,
    /// Yes for the new model.
    pub new: usize,
    /// Yes for the old model only.
    pub old_only: usize,
    /// Yes for the new model only.
    pub new_only: usize,
    /// Two-sided exact McNemar p-value: the binomial test of `new_only` among the discordant
    /// pairs against 1/2 (`scipy.stats.binomtest(new_only, old_only + new_only).pvalue`); 1 when
    /// no pair is discordant.
    pub p_value: f64,
}

impl PairedOutcomes {
    /// Counts the pairs `(old, new)`.
    pub fn count(pairs: impl IntoIterator<Item = (bool, bool)>) -> PairedOutcomes {
        let mut c = PairedOutcomes {
            pairs: 0,
            old: 0,
            new: 0,
            old_only: 0,
            new_only: 0,
            p_value: 1.0,
        };
        for (old, new) in pairs {
            c.pairs += 1;
            c.old += usize::from(old);
            c.new += usize::from(new);
            c.old_only += usize::from(old && !new);
            c.new_only += usize::from(new && !old);
        }
        c.p_value = mcnemar_exact(c.old_only, c.new_only);
        c
    }
}

/// Two-sided exact McNemar p-value for `b` and `c` discordant pairs: twice the binomial(b + c,
/// 1/2) probability of a count at most min(b, c), capped at 1.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Sum C(n, i) / 2^n in log space: n is at most a few hundred samples.
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose - ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// One segmentation target of experiment 1 in both evaluations.
#[derive(Clone, Debug, Serialize)]
pub struct TargetChange {
    /// The target in words.
    pub target: String,
    /// New Dice against old, subject by subject (`mean_a` new, `mean_b` old); `None` when the
    /// subjects differ in number or a Dice is not finite.
    pub comparison: Option<PairedComparison>,
    /// Old model's mean Dice.
    pub old_mean: f64,
    /// New model's mean Dice.
    pub new_mean: f64,
}

/// Two evaluations compared sample by sample.
#[derive(Clone, Debug, Serialize)]
pub struct EvalComparison {
    /// The old evaluation's model.
    pub old_model: String,
    /// The new evaluation's model.
    pub new_model: String,
    /// Samples of the old evaluation.
    pub old_samples: usize,
    /// Samples of the new evaluation.
    pub new_samples: usize,
    /// Passed the checker (matched samples only).
    pub success: PairedOutcomes,
    /// Ran to `stop()` without an error (matched samples only).
    pub ran: PairedOutcomes,
    /// No error of the agent's (matched samples only): ran to `stop()`, or ended on a
    /// measurement of an empty mask or an undefined value, which the answer states
    /// (`agent_ran` of the report; [`dead_end_refusal`] for reports without it).
    pub agent_ran: PairedOutcomes,
    /// Passed, by family (matched samples only).
    pub success_by_family: BTreeMap<String, PairedOutcomes>,
    /// Experiment 1, targets in the old evaluation's order (those in both).
    pub segmentation: Vec<TargetChange>,
    /// Experiment 2, answers right (questions in both, paired by index).
    pub characterisation: Option<PairedOutcomes>,
    /// Why programs did not run to `stop()`: samples by cause in each evaluation, `(old, new)`
    /// (a report without the breakdown counts none). An empty mask the program measured is a
    /// cause of the vision network's, a syntax error one of the agent's: "ran to stop()" alone
    /// does not tell them apart.
    pub not_ran: BTreeMap<String, (usize, usize)>,
}

/// What identifies a sample across evaluations: the same family, anatomy and seed draw the same
/// subject, prompt and truth — with the same data engine (see [`Outcome::content`]).
type SampleKey = (String, String, u64);

/// One sample's outcome.
#[derive(Clone)]
struct Outcome {
    passed: bool,
    ran: bool,
    agent_ran: bool,
    /// The prompt and the expected answer, where the report has them: two builds whose data
    /// engines differ draw other subjects for the same key, and their outcomes do not pair.
    content: Option<(String, String)>,
}

fn report_error(path: &Path, problem: impl Into<String>) -> TrainError {
    TrainError::Report {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// An evaluation's report.json, read for comparison.
struct Report {
    path: PathBuf,
    json: Value,
}

impl Report {
    fn read(path: &Path) -> Result<Report> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| report_error(path, format!("not an evaluation report: {e}")))?;
        Ok(Report {
            path: path.to_path_buf(),
            json,
        })
    }

    fn array<'v>(&self, value: &'v Value, field: &str) -> Result<&'v [Value]> {
        value[field]
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| report_error(&self.path, format!("`{field}` is missing or not a list")))
    }

    fn string(&self, value: &Value, field: &str) -> Result<String> {
        value[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| report_error(&self.path, format!("`{field}` is missing or not text")))
    }

    fn boolean(&self, value: &Value, field: &str) -> Result<bool> {
        value[field].as_bool().ok_or_else(|| {
            report_error(
                &self.path,
                format!("`{field}` is missing or not true/false"),
            )
        })
    }

    /// The report's `not_ran` breakdown (samples by cause; empty when it has none).
    fn not_ran(&self) -> Result<BTreeMap<String, usize>> {
        let Some(map) = self.json["not_ran"].as_object() else {
            return Ok(BTreeMap::new());
        };
        map.iter()
            .map(|(cause, n)| {
                let n = n.as_u64().ok_or_else(|| {
                    report_error(&self.path, format!("`not_ran` of {cause:?} is not a count"))
                })?;
                Ok((cause.clone(), n as usize))
            })
            .collect()
    }

    fn numbers(&self, value: &Value, field: &str) -> Result<Vec<f64>> {
        self.array(value, field)?
            .iter()
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    report_error(
                        &self.path,
                        format!("`{field}` holds a value that is not a number"),
                    )
                })
            })
            .collect()
    }

    /// Each sample's outcome by its key.
    fn outcomes(&self) -> Result<BTreeMap<SampleKey, Outcome>> {
        let mut out = BTreeMap::new();
        for s in self.array(&self.json, "samples")? {
            let seed = s["seed"]
                .as_u64()
                .ok_or_else(|| report_error(&self.path, "a sample's `seed` is missing"))?;
            let key = (self.string(s, "family")?, self.string(s, "anatomy")?, seed);
            let ran = self.boolean(s, "ran")?;
            let agent_ran = match &s["agent_ran"] {
                Value::Null => ran || s["error"].as_str().is_some_and(dead_end_refusal),
                _ => self.boolean(s, "agent_ran")?,
            };
            let value = Outcome {
                passed: self.boolean(s, "passed")?,
                ran,
                agent_ran,
                content: match (s["prompt"].as_str(), s["expected"].as_str()) {
                    (Some(p), Some(e)) => Some((p.to_string(), e.to_string())),
                    _ => None,
                },
            };
            if out.insert(key.clone(), value).is_some() {
                return Err(report_error(
                    &self.path,
                    format!("two samples of {} ({}) have seed {}", key.0, key.1, key.2),
                ));
            }
        }
        Ok(out)
    }

    /// The entries of a per-item list (`segmentation`, `characterisation`) by `key_field`.
    fn entries(&self, list: &str, key_field: &str) -> Result<Vec<(String, &Value)>> {
        match &self.json[list] {
            Value::Null => Ok(Vec::new()),
            _ => self
                .array(&self.json, list)?
                .iter()
                .map(|e| Ok((self.string(e, key_field)?, e)))
                .collect(),
        }
    }
}

/// Whether a sample's first error (`error` of a report written before the reports had
/// `agent_ran`, session 22) is the runtime's refusal of an empty mask (`mean: empty mask: …`,
/// from `voxel`'s `EmptyMask`) or of an undefined value (`ratio: … is undefined`): the dead
/// ends `run` answers in words. Such a refusal ends the program, so it is its last step.
pub fn dead_end_refusal(error: &str) -> bool {
    error.contains("error (library)")
        && (error.contains(": empty mask: ") || error.ends_with("is undefined"))
}

/// Compares the evaluation in `new` (a report.json) against the one in `old`.
pub fn compare(old: &Path, new: &Path) -> Result<EvalComparison> {
    let (old, new) = (Report::read(old)?, Report::read(new)?);
    let (old_outcomes, new_outcomes) = (old.outcomes()?, new.outcomes()?);
    let matched: Vec<(&SampleKey, &Outcome, &Outcome)> = old_outcomes
        .iter()
        .filter_map(|(k, o)| new_outcomes.get(k).map(|n| (k, o, n)))
        .collect();
    if let Some((k, o, n)) = matched
        .iter()
        .find(|(_, o, n)| o.content.is_some() && n.content.is_some() && o.content != n.content)
    {
        let what = match (&o.content, &n.content) {
            (Some((op, _)), Some((np, _))) if op != np => format!("prompts {op:?} and {np:?}"),
            _ => "expected answers".to_string(),
        };
        return Err(report_error(
            &new.path,
            format!(
                "sample {} ({}, seed {}) differs from {}'s ({what}): the two evaluations were \
                 made by builds whose data engines differ; evaluate the old model again with \
                 this build",
                k.0,
                k.1,
                k.2,
                old.path.display()
            ),
        ));
    }
    let success = PairedOutcomes::count(matched.iter().map(|(_, o, n)| (o.passed, n.passed)));
    let ran = PairedOutcomes::count(matched.iter().map(|(_, o, n)| (o.ran, n.ran)));
    let agent_ran =
        PairedOutcomes::count(matched.iter().map(|(_, o, n)| (o.agent_ran, n.agent_ran)));
    let mut family_pairs: BTreeMap<String, Vec<(bool, bool)>> = BTreeMap::new();
    for (k, o, n) in &matched {
        family_pairs
            .entry(k.0.clone())
            .or_default()
            .push((o.passed, n.passed));
    }
    let success_by_family = family_pairs
        .into_iter()
        .map(|(f, pairs)| (f, PairedOutcomes::count(pairs)))
        .collect();

    let new_targets: BTreeMap<String, &Value> =
        new.entries("segmentation", "target")?.into_iter().collect();
    let mut segmentation = Vec::new();
    for (target, o) in old.entries("segmentation", "target")? {
        let Some(n) = new_targets.get(&target) else {
            continue;
        };
        let (old_dice, new_dice) = (old.numbers(o, "model_dice")?, new.numbers(n, "model_dice")?);
        let mean = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        segmentation.push(TargetChange {
            comparison: stats::paired(&new_dice, &old_dice),
            old_mean: mean(&old_dice),
            new_mean: mean(&new_dice),
            target,
        });
    }

    let new_questions: BTreeMap<String, &Value> = new
        .entries("characterisation", "family")?
        .into_iter()
        .collect();
    let mut answers = Vec::new();
    for (family, o) in old.entries("characterisation", "family")? {
        if let Some(n) = new_questions.get(&family) {
            let (a, b) = (
                old.numbers(o, "model_correct")?,
                new.numbers(n, "model_correct")?,
            );
            answers.extend(a.iter().zip(&b).map(|(x, y)| (*x > 0.5, *y > 0.5)));
        }
    }
    let characterisation = (!answers.is_empty()).then(|| PairedOutcomes::count(answers));
    let mut not_ran: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (cause, n) in old.not_ran()? {
        not_ran.entry(cause).or_default().0 = n;
    }
    for (cause, n) in new.not_ran()? {
        not_ran.entry(cause).or_default().1 = n;
    }

    Ok(EvalComparison {
        old_model: old.string(&old.json, "model")?,
        new_model: new.string(&new.json, "model")?,
        old_samples: old_outcomes.len(),
        new_samples: new_outcomes.len(),
        success,
        ran,
        agent_ran,
        success_by_family,
        segmentation,
        characterisation,
        not_ran,
    })
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

impl EvalComparison {
    /// The comparison as a Markdown section.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# `{}` against `{}`\n", self.new_model, self.old_model);
        let _ = writeln!(
            md,
            "{} samples in both evaluations (same family, anatomy and seed; old {}, new {}). \
             p: two-sided exact McNemar test of the samples only one model got right.\n",
            self.success.pairs, self.old_samples, self.new_samples
        );
        let _ = writeln!(md, "| | old | new | only old | only new | p |");
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        let mut row = |name: &str, o: &PairedOutcomes| {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} |",
                o.old,
                o.new,
                o.old_only,
                o.new_only,
                p_text(o.p_value)
            );
        };
        row("end-to-end success", &self.success);
        row("ran to stop()", &self.ran);
        row("no error of the agent's", &self.agent_ran);
        if let Some(c) = &self.characterisation {
            row("characterisation, right", c);
        }
        let changed: Vec<_> = self
            .success_by_family
            .iter()
            .filter(|(_, o)| o.old_only + o.new_only > 0)
            .collect();
        if !changed.is_empty() {
            let _ = writeln!(
                md,
                "\nFamilies whose passes changed (old → new, of samples):\n"
            );
            for (family, o) in changed {
                let _ = writeln!(md, "- {family}: {} → {} of {}", o.old, o.new, o.pairs);
            }
        }
        if !self.not_ran.is_empty() {
            let _ = writeln!(
                md,
                "\nWhy programs did not run to stop() (samples by cause, old → new):\n"
            );
            for (cause, (o, n)) in &self.not_ran {
                let _ = writeln!(md, "- {cause}: {o} → {n}");
            }
        }
        if !self.segmentation.is_empty() {
            let _ = writeln!(
                md,
                "\n## Segmentation experiment: Dice, subject by subject\n\n\
                 | target | old | new | new − old | 95 % CI | Wilcoxon p |\n|---|---|---|---|---|---|"
            );
            for t in &self.segmentation {
                let (diff, ci, p) = match &t.comparison {
                    Some(c) => (
                        format!("{:+.3}", c.mean_difference),
                        c.ci95
                            .map(|[lo, hi]| format!("[{lo:+.3}, {hi:+.3}]"))
                            .unwrap_or_else(|| "–".into()),
                        p_text(c.wilcoxon.p_value),
                    ),
                    None => ("–".into(), "–".into(), "–".into()),
                };
                let _ = writeln!(
                    md,
                    "| {} | {:.3} | {:.3} | {diff} | {ci} | {p} |",
                    t.target, t.old_mean, t.new_mean
                );
            }
        }
        md
    }
}

/// Largest shortfall the ship rule calls chance, on each paired count of the evaluation (end to
/// end, programs run to `stop()`, characterisation answers): the exact McNemar p-value of the
/// items only one model got right must be at least this for the count that fell to be a tie (a
/// 5-1 split has p 0.22, a 6-1 split 0.125).
pub const TIE_P: f64 = 0.2;

/// What the held-out evaluation says about replacing the old (shipped) model with the new one.
#[derive(Clone, Debug, PartialEq)]
pub enum ShipVerdict {
    /// The new model passes at least as many of the shared samples end to end, and no other
    /// paired count is lower beyond chance.
    MorePasses,
    /// Fewer end-to-end passes, by no more than chance gives (p ≥ [`TIE_P`]), no other paired
    /// count lower beyond chance, and a higher mean Dice over the segmentation targets.
    TiedEndToEndBetterElsewhere,
    /// The evaluations do not share every sample of the old one, so nothing can be said.
    NotComparable,
    /// The old model stays; the reason says why.
    Worse(String),
}

impl EvalComparison {
    /// Mean over the segmentation targets in both evaluations of each model's mean Dice
    /// (`(old, new)`; `None` when no target has a finite mean in both).
    pub fn mean_target_dice(&self) -> Option<(f64, f64)> {
        let both: Vec<_> = self
            .segmentation
            .iter()
            .filter(|t| t.old_mean.is_finite() && t.new_mean.is_finite())
            .collect();
        (!both.is_empty()).then(|| {
            let n = both.len() as f64;
            (
                both.iter().map(|t| t.old_mean).sum::<f64>() / n,
                both.iter().map(|t| t.new_mean).sum::<f64>() / n,
            )
        })
    }

    /// The ship rule. Every paired count of the evaluation is small (~10 end-to-end passes in
    /// 140 samples, 30 characterisation questions), so one that is lower by a few items is
    /// a coin toss between the models; each is weighed against chance alike (exact McNemar,
    /// [`TIE_P`]), and no count may fall beyond it. Then a model with at least as many
    /// end-to-end passes ships; one with fewer, within chance, ships when it segments better
    /// (the higher mean Dice over the segmentation targets).
    pub fn ship_verdict(&self) -> ShipVerdict {
        if self.success.pairs < self.old_samples {
            return ShipVerdict::NotComparable;
        }
        let s = &self.success;
        let mut against = Vec::new();
        let mut counts = vec![
            ("end-to-end passes", s),
            ("programs without an error of the agent's", &self.agent_ran),
        ];
        if let Some(c) = &self.characterisation {
            counts.push(("characterisation answers right", c));
        }
        for (what, c) in counts {
            if c.new < c.old && c.p_value < TIE_P {
                against.push(format!(
                    "{} {what} against {}, {} only old and {} only new (p {:.3} < {TIE_P})",
                    c.new, c.old, c.old_only, c.new_only, c.p_value
                ));
            }
        }
        if s.new < s.old {
            match self.mean_target_dice() {
                Some((old, new)) if new > old => {}
                Some((old, new)) => against.push(format!(
                    "fewer passes and a mean Dice over the segmentation targets of {new:.3} \
                     against {old:.3}"
                )),
                None => against
                    .push("fewer passes and no segmentation target in both evaluations".into()),
            }
        }
        if !against.is_empty() {
            return ShipVerdict::Worse(format!(
                "on the {} samples of both evaluations the shipped model succeeds on {} and this \
                 one on {}, and {}",
                s.pairs,
                s.old,
                s.new,
                against.join("; ")
            ));
        }
        if s.new >= s.old {
            ShipVerdict::MorePasses
        } else {
            ShipVerdict::TiedEndToEndBetterElsewhere
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_binomial_test() {
        // scipy.stats.binomtest(9, 10).pvalue = 2 * (1 + 10) / 1024
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert!((mcnemar_exact(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
        // binomtest(0, 5).pvalue = 2 / 32
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // binomtest(3, 5).pvalue = 1 (capped)
        assert!((mcnemar_exact(2, 3) - 1.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // binomtest(20, 100).pvalue = 1.1159089e-09
        let p = mcnemar_exact(80, 20);
        assert!((p / 1.1159089e-9 - 1.0).abs() < 1e-6, "{p}");
    }

    #[test]
    fn outcomes_count_agreement_and_discord() {
        let o = PairedOutcomes::count([
            (true, true),
            (true, false),
            (false, true),
            (false, true),
            (false, false),
        ]);
        assert_eq!(
            (o.pairs, o.old, o.new, o.old_only, o.new_only),
            (5, 2, 3, 1, 2)
        );
        assert_eq!(o.p_value, 1.0);
    }

    #[test]
    fn reports_of_different_data_engines_do_not_pair() {
        let dir = tempfile::tempdir().unwrap();
        let with = |prompt: &str, expected: &str| {
            serde_json::json!({"model": "small", "samples": [
                {"family": "volume", "anatomy": "fsaverage", "seed": 1, "passed": true,
                 "ran": true, "prompt": prompt, "expected": expected}]})
        };
        let paths: Vec<_> = ["old", "same", "engine"]
            .iter()
            .map(|n| dir.path().join(format!("{n}.json")))
            .collect();
        std::fs::write(
            &paths[0],
            with("Volume of the brain?", "1200 mL").to_string(),
        )
        .unwrap();
        std::fs::write(
            &paths[1],
            with("Volume of the brain?", "1200 mL").to_string(),
        )
        .unwrap();
        std::fs::write(
            &paths[2],
            with("Volume of the brain?", "1150 mL").to_string(),
        )
        .unwrap();
        assert_eq!(compare(&paths[0], &paths[1]).unwrap().success.pairs, 1);
        let e = compare(&paths[0], &paths[2]).unwrap_err().to_string();
        assert!(
            e.contains("engine.json") && e.contains("seed 1") && e.contains("expected answers"),
            "{e}"
        );
    }

    fn sample(family: &str, seed: u64, passed: bool, ran: bool) -> Value {
        serde_json::json!({"family": family, "anatomy": "fsaverage", "seed": seed,
                           "passed": passed, "ran": ran, "prompt": "…"})
    }

    #[test]
    fn reports_are_compared_sample_by_sample() {
        let dir = tempfile::tempdir().unwrap();
        // Old: passes volume/1 and volume/2; new: passes volume/2 and skull_strip/3. Seed 4 is in
        // the old report only and must not count.
        let old = serde_json::json!({
            "model": "small old",
            "samples": [sample("volume", 1, true, true), sample("volume", 2, true, true),
                        sample("skull_strip", 3, false, false), sample("volume", 4, true, true)],
            "segmentation": [{"target": "white matter", "model_dice": [0.5, 0.6, 0.7]},
                             {"target": "thalamus", "model_dice": [0.0, 0.0]}],
            "characterisation": [{"family": "signal_intensity", "model_correct": [1.0, 0.0, 0.0]}],
            "not_ran": {"error (syntax) Expecting": 1},
        });
        let new = serde_json::json!({
            "model": "small new",
            "samples": [sample("skull_strip", 3, true, true), sample("volume", 2, true, true),
                        sample("volume", 1, false, false)],
            "segmentation": [{"target": "white matter", "model_dice": [0.6, 0.8, 0.7]}],
            "characterisation": [{"family": "signal_intensity", "model_correct": [1.0, 1.0, 1.0]}],
            "not_ran": {"error (library) mean": 1},
        });
        let (old_path, new_path) = (dir.path().join("old.json"), dir.path().join("new.json"));
        std::fs::write(&old_path, old.to_string()).unwrap();
        std::fs::write(&new_path, new.to_string()).unwrap();
        let c = compare(&old_path, &new_path).unwrap();
        assert_eq!((c.old_samples, c.new_samples), (4, 3));
        let s = c.success;
        assert_eq!(
            (s.pairs, s.old, s.new, s.old_only, s.new_only),
            (3, 2, 2, 1, 1)
        );
        let r = c.ran;
        assert_eq!((r.old, r.new, r.old_only, r.new_only), (2, 2, 1, 1));
        assert_eq!(c.agent_ran, c.ran, "no sample ended on a dead end");
        assert_eq!(c.success_by_family["volume"].old_only, 1);
        assert_eq!(c.success_by_family["skull_strip"].new_only, 1);
        // Only white matter is in both; the differences are +0.1, +0.2, 0.
        assert_eq!(c.segmentation.len(), 1);
        let wm = c.segmentation[0].comparison.unwrap();
        assert!((wm.mean_difference - 0.1).abs() < 1e-12);
        assert!((c.segmentation[0].old_mean - 0.6).abs() < 1e-12);
        let ch = c.characterisation.unwrap();
        assert_eq!((ch.old, ch.new, ch.new_only), (1, 3, 2));
        let md = c.markdown();
        assert!(md.contains("| end-to-end success | 2 | 2 | 1 | 1 | 1.000 |"));
        assert!(
            md.contains("- error (library) mean: 0 → 1")
                && md.contains("- error (syntax) Expecting: 1 → 0"),
            "{md}"
        );
    }

    fn outcomes(old_only: usize, new_only: usize, both: usize, pairs: usize) -> PairedOutcomes {
        let mut pairs_list = vec![(true, false); old_only];
        pairs_list.extend(vec![(false, true); new_only]);
        pairs_list.extend(vec![(true, true); both]);
        pairs_list.resize(pairs, (false, false));
        PairedOutcomes::count(pairs_list)
    }

    /// Session 14's case: 13 against 10 passes of 140 (4 only old, 1 only new, p 0.375), 96
    /// against 115 programs ran, 11 against 14 characterisation answers, Dice higher on average.
    fn close_call() -> EvalComparison {
        let dice = |target: &str, old_mean: f64, new_mean: f64| TargetChange {
            target: target.into(),
            comparison: None,
            old_mean,
            new_mean,
        };
        EvalComparison {
            old_model: "small old".into(),
            new_model: "small new".into(),
            old_samples: 140,
            new_samples: 140,
            success: outcomes(4, 1, 9, 140),
            ran: outcomes(7, 26, 89, 140),
            agent_ran: outcomes(7, 26, 89, 140),
            success_by_family: BTreeMap::new(),
            segmentation: vec![
                dice("brain", 0.931, 0.926),
                dice("caudate nucleus", 0.137, 0.284),
                dice("hippocampus", 0.0, 0.0),
            ],
            characterisation: Some(outcomes(1, 4, 10, 30)),
            not_ran: BTreeMap::new(),
        }
    }

    #[test]
    fn ship_verdict_weighs_end_to_end_against_chance_and_the_other_experiments() {
        let c = close_call();
        assert_eq!((c.success.old, c.success.new), (13, 10));
        assert!((c.success.p_value - 0.375).abs() < 1e-12);
        let (old, new) = c.mean_target_dice().unwrap();
        assert!((old - 1.068 / 3.0).abs() < 1e-12 && (new - 1.21 / 3.0).abs() < 1e-12);
        assert_eq!(c.ship_verdict(), ShipVerdict::TiedEndToEndBetterElsewhere);

        // As many passes ships whatever the Dice says.
        let mut more = close_call();
        more.success = outcomes(1, 1, 12, 140);
        more.segmentation[1].new_mean = 0.0;
        assert_eq!(more.ship_verdict(), ShipVerdict::MorePasses);
        // ... but not with another count lower beyond chance (characterisation 8-1: p 0.039).
        more.characterisation = Some(outcomes(8, 1, 10, 30));
        let ShipVerdict::Worse(why) = more.ship_verdict() else {
            panic!("shipped a model 7 characterisation answers behind");
        };
        assert!(
            why.contains("characterisation") && why.contains("p 0.039"),
            "{why}"
        );

        // Beyond chance end to end (6 against 0: p 0.031) keeps the old model.
        let mut worse = close_call();
        worse.success = outcomes(6, 0, 7, 140);
        let ShipVerdict::Worse(why) = worse.ship_verdict() else {
            panic!("shipped a model 6 passes behind");
        };
        assert!(why.contains("p 0.031"), "{why}");

        // Each other count lower beyond chance keeps it too (the agent's errors 26-7: p 0.001)
        let mut agent_errors = close_call();
        agent_errors.agent_ran = outcomes(26, 7, 89, 140);
        assert!(matches!(agent_errors.ship_verdict(),
                         ShipVerdict::Worse(w) if w.contains("error of the agent's")));
        // ... but fewer programs run to stop() for empty masks, the agent making no more errors,
        // is the vision network's, which end to end and the Dice weigh (session 21's case).
        let mut honest_empty = close_call();
        honest_empty.ran = outcomes(26, 7, 89, 140);
        assert_eq!(
            honest_empty.ship_verdict(),
            ShipVerdict::TiedEndToEndBetterElsewhere
        );
        let mut fewer_right = close_call();
        fewer_right.characterisation = Some(outcomes(7, 0, 10, 30));
        assert!(matches!(fewer_right.ship_verdict(),
                         ShipVerdict::Worse(w) if w.contains("characterisation")));
        // ... but lower within chance is a tie, as end to end (characterisation 4-1: p 0.375;
        // session 19's step 5 761: 16 against 11).
        fewer_right.characterisation = Some(outcomes(4, 1, 10, 30));
        assert_eq!(
            fewer_right.ship_verdict(),
            ShipVerdict::TiedEndToEndBetterElsewhere
        );
        let mut lower_dice = close_call();
        lower_dice.segmentation[1].new_mean = 0.1;
        assert!(matches!(lower_dice.ship_verdict(), ShipVerdict::Worse(w) if w.contains("Dice")));
        let mut no_dice = close_call();
        no_dice.segmentation.clear();
        assert!(matches!(no_dice.ship_verdict(), ShipVerdict::Worse(_)));

        // A sample of the old evaluation missing from the new one: nothing can be said.
        let mut partial = close_call();
        partial.old_samples = 141;
        assert_eq!(partial.ship_verdict(), ShipVerdict::NotComparable);
    }

    #[test]
    fn the_agents_errors_are_told_from_the_vision_networks_dead_ends() {
        let dir = tempfile::tempdir().unwrap();
        let with_error = |seed: u64, error: &str| {
            serde_json::json!({"family": "volume", "anatomy": "fsaverage", "seed": seed,
                               "passed": false, "ran": false, "prompt": "…", "error": error})
        };
        // An old report (no `agent_ran`): its errors' text tells the dead ends (the runtime's
        // messages as session 21's reports hold them).
        let old = serde_json::json!({"model": "old", "samples": [
            with_error(1, "step 2: error (library) at line 2, column 11: mean: empty mask: \
                           mean and std of an empty mask is undefined"),
            with_error(2, "step 3: error (library) at line 1, column 103: ratio: the second \
                           value is 0, so the ratio is undefined"),
            with_error(3, "step 1: error (syntax) at line 1, column 16: unknown variable \
                           `scan`; define it with `let scan = ...` first"),
            with_error(4, "12 steps without stop() (the step limit)"),
            sample("volume", 5, true, true),
        ]});
        // A new report says it: seed 1 had an error of the agent's before its dead end.
        let mut new = old.clone();
        new["samples"][0]["agent_ran"] = false.into();
        new["samples"][2]["agent_ran"] = true.into();
        let (old_path, new_path) = (dir.path().join("old.json"), dir.path().join("new.json"));
        std::fs::write(&old_path, old.to_string()).unwrap();
        std::fs::write(&new_path, new.to_string()).unwrap();
        let c = compare(&old_path, &new_path).unwrap();
        assert_eq!((c.ran.old, c.ran.new), (1, 1));
        let a = c.agent_ran;
        assert_eq!((a.old, a.new, a.old_only, a.new_only), (3, 3, 1, 1));
        assert!(c
            .markdown()
            .contains("| no error of the agent's | 3 | 3 | 1 | 1 |"));
    }

    #[test]
    fn a_file_that_is_not_a_report_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(
            &path,
            r#"{"model": "m", "samples": [{"family": "volume", "seed": 1}]}"#,
        )
        .unwrap();
        let e = compare(&path, &path).unwrap_err().to_string();
        assert!(e.contains("report.json") && e.contains("anatomy"), "{e}");
        std::fs::write(&path, "not json").unwrap();
        let e = compare(&path, &path).unwrap_err().to_string();
        assert!(e.contains("not an evaluation report"), "{e}");
    }
}
