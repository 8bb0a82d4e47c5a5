//! The catalogue: every task family with its grammar and scenario space, the anatomy and
//! configuration subjects are synthesized from, and the entry points to draw prompts, draw
//! whole samples and count distinct prompts.
//!
//! ```
//! let cat = tasks::Catalogue::phantom(4.0).unwrap();
//! assert!(cat.families().len() >= 25);
//! let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
//! let p = cat.sample_prompt("volume", &mut rng).unwrap();
//! assert!(!p.text.is_empty());
//! ```

use crate::classes::{active_classes, ActiveClass};
use crate::error::{Result, TaskError};
use crate::families;
use crate::family::{Family, FamilyInfo, Outcome};
use crate::grammar::{add_typo, capitalise, Grammar, GrammarBuilder, Template};
use crate::phrases::{common_rules, phrases};
use crate::sample::{Prompt, TaskSample};
use crate::scenario::{slot_key, slot_kind, Key, Roi, Scenario};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use synth::{Anatomy, SynthConfig, Target, Vocabulary};

/// Share of prompts that get one typo.
pub const TYPO_RATE: f64 = 0.03;

/// Scenarios tried per sample before giving up.
const MAX_SCENARIOS: usize = 60;

struct Entry {
    family: Box<dyn Family>,
    grammar: Grammar,
    templates: Vec<Template>,
    space: Vec<Scenario>,
    /// Draw weights of `space` ([`Family::scenario_weight`]); `None` when all are equal, so a
    /// uniform family draws exactly as it always has.
    weights: Option<Vec<f64>>,
}

impl Entry {
    /// A scenario index drawn in proportion to the scenario weights.
    fn draw(&self, rng: &mut StdRng) -> usize {
        match &self.weights {
            Some(w) => crate::grammar::pick_index(w, rng),
            None => rng.random_range(0..self.space.len()),
        }
    }
}

/// Which prompt templates a sample may use. The last template of every family is held out of
/// training (each family has at least two; tested), for the evaluation's language experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateSplit {
    /// Any template (the tokenizer corpus, tests).
    Any,
    /// Every template but the held-out one (training and validation).
    Training,
    /// Only the held-out template (evaluation).
    HeldOut,
}

/// All task families, ready to sample (see the module docs).
pub struct Catalogue {
    vocab: Vocabulary,
    config: SynthConfig,
    anatomy: Anatomy,
    spacing_mm: f64,
    /// Voxel size of synthesized subjects per axis (`[spacing_mm; 3]` unless a thick-slice
    /// grid was asked for with [`Catalogue::with_grid_spacing`]).
    grid_spacing_mm: [f64; 3],
    classes: Vec<ActiveClass>,
    /// Voxel count of every label of the anatomy template.
    label_counts: BTreeMap<i32, usize>,
    entries: Vec<Entry>,
}

impl Catalogue {
    /// The catalogue synthesizing subjects from `anatomy` on `spacing_mm` voxels.
    pub fn new(anatomy: Anatomy, spacing_mm: f64) -> Result<Catalogue> {
        let mut label_counts = BTreeMap::new();
        for &l in anatomy.labels.data() {
            *label_counts.entry(l).or_insert(0usize) += 1;
        }
        let mut cat = Catalogue {
            vocab: Vocabulary::builtin()?,
            config: SynthConfig::builtin()?,
            anatomy,
            spacing_mm,
            grid_spacing_mm: [spacing_mm; 3],
            classes: active_classes(),
            label_counts,
            entries: Vec::new(),
        };
        let mut entries = Vec::new();
        for family in families::all() {
            let mut g = GrammarBuilder::new();
            common_rules(&mut g);
            family.rules(&mut g);
            let grammar = g.build()?;
            let templates = family
                .templates()
                .iter()
                .map(|t| Template::parse(t))
                .collect::<Result<Vec<_>>>()?;
            let space = family.space(&cat)?;
            let id = family.info().id;
            if templates.is_empty() {
                return Err(TaskError::Program {
                    family: id.into(),
                    problem: "the family has no prompt templates".into(),
                });
            }
            if space.is_empty() && family.unavailable(&cat).is_none() {
                return Err(TaskError::Program {
                    family: id.into(),
                    problem: "the scenario space is empty".into(),
                });
            }
            // Every slot of every template must have phrases for the first scenario.
            if let Some(s) = space.first() {
                for t in &templates {
                    for slot in grammar.slots(t) {
                        let key = s.get(slot_key(slot)).ok_or_else(|| TaskError::Program {
                            family: id.into(),
                            problem: format!(
                                "template {:?} uses {{{slot}}}, which its scenarios lack",
                                t.source()
                            ),
                        })?;
                        if phrases(&cat, &key, slot_kind(slot))?.is_empty() {
                            return Err(TaskError::Program {
                                family: id.into(),
                                problem: format!("slot {{{slot}}} has no phrases"),
                            });
                        }
                    }
                }
            }
            let weights: Vec<f64> = space
                .iter()
                .map(|s| family.scenario_weight(&cat, s))
                .collect();
            if weights.iter().any(|w| !w.is_finite() || *w < 0.0)
                || (!weights.is_empty() && weights.iter().sum::<f64>() <= 0.0)
            {
                return Err(TaskError::Program {
                    family: id.into(),
                    problem: "scenario weights must be finite, non-negative, not all zero".into(),
                });
            }
            let weights = weights.iter().any(|&w| w != 1.0).then_some(weights);
            entries.push(Entry {
                family,
                grammar,
                templates,
                space,
                weights,
            });
        }
        cat.entries = entries;
        Ok(cat)
    }

    /// The catalogue over the built-in phantom anatomy (no download needed) at `spacing_mm`.
    pub fn phantom(spacing_mm: f64) -> Result<Catalogue> {
        let config = SynthConfig::builtin()?;
        let anatomy = Anatomy::phantom(spacing_mm, &config.head)?;
        Catalogue::new(anatomy, spacing_mm)
    }

    /// The vocabulary of targets.
    pub fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The data engine's configuration.
    pub fn synth_config(&self) -> &SynthConfig {
        &self.config
    }

    /// The anatomy subjects are synthesized from.
    pub fn anatomy(&self) -> &Anatomy {
        &self.anatomy
    }

    /// Nominal (in-plane) voxel size of synthesized subjects.
    pub fn spacing_mm(&self) -> f64 {
        self.spacing_mm
    }

    /// Voxel size of synthesized subjects per axis.
    pub fn grid_spacing_mm(&self) -> [f64; 3] {
        self.grid_spacing_mm
    }

    /// The catalogue with subjects synthesised on voxels of `spacing_mm` per axis, e.g.
    /// `[1, 1, 5]` for thick-slice acquisitions (synth averages sub-slices over each slab).
    pub fn with_grid_spacing(mut self, spacing_mm: [f64; 3]) -> Result<Catalogue> {
        if spacing_mm.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(TaskError::Mask(format!(
                "voxel size {spacing_mm:?} mm must be positive"
            )));
        }
        self.grid_spacing_mm = spacing_mm;
        Ok(self)
    }

    /// The catalogue with the data engine configured by `config` instead of the built-in one
    /// (an experiment with, say, more skull-stripped scans).
    pub fn with_synth_config(mut self, config: SynthConfig) -> Catalogue {
        self.config = config;
        self
    }

    /// The active lesion classes.
    pub fn classes(&self) -> &[ActiveClass] {
        &self.classes
    }

    /// Active class number `c`.
    pub fn class(&self, c: usize) -> Result<&ActiveClass> {
        self.classes
            .get(c)
            .ok_or_else(|| TaskError::Mask(format!("no active lesion class {c}")))
    }

    /// Index of the active class named `name`, if it is active.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.entry.name == name)
    }

    /// Vocabulary target number `t`.
    pub fn target(&self, t: usize) -> Result<&Target> {
        self.vocab
            .targets()
            .get(t)
            .ok_or_else(|| TaskError::Mask(format!("no vocabulary target {t}")))
    }

    /// Index of the vocabulary target called `name`.
    pub fn target_index(&self, name: &str) -> Result<usize> {
        let t = self.vocab.require(name)?;
        self.vocab
            .targets()
            .iter()
            .position(|x| x.name == t.name)
            .ok_or_else(|| TaskError::Mask(format!("{name} is not a target")))
    }

    /// Targets that are anatomy (they have label ids in an anatomical label map).
    pub fn anatomy_targets(&self) -> Vec<usize> {
        self.vocab
            .targets()
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.anatomy_ids().is_empty())
            .map(|(i, _)| i)
            .collect()
    }

    /// Voxels of target `t` in the anatomy template (0 when the anatomy lacks it).
    pub fn template_voxels(&self, t: usize) -> usize {
        self.target(t)
            .map(|t| {
                t.anatomy_ids()
                    .iter()
                    .map(|id| self.label_counts.get(id).copied().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Whether scenario `s` asks for the target called `name` in its `target` slot: a
    /// vocabulary target (`white matter`) or an active lesion class (`glioma`). The
    /// evaluation's per-target experiment and training's `[joint_targets]` select samples
    /// with it.
    pub fn scenario_asks_for(&self, s: &Scenario, name: &str) -> bool {
        match s.get("target") {
            Some(Key::Roi(Roi::Anatomy(t))) => self.target(t).is_ok_and(|x| x.name == name),
            Some(Key::Roi(Roi::Lesion(c))) => self.class(c).is_ok_and(|x| x.entry.name == name),
            _ => false,
        }
    }

    /// Descriptions of all families, in catalogue order.
    pub fn families(&self) -> Vec<FamilyInfo> {
        self.entries.iter().map(|e| e.family.info()).collect()
    }

    /// Why family `id` cannot be sampled, or `None` when it can.
    pub fn unavailable(&self, id: &str) -> Result<Option<String>> {
        Ok(self.entry(id)?.family.unavailable(self))
    }

    /// The prompt templates of family `id`.
    pub fn templates(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .entry(id)?
            .templates
            .iter()
            .map(|t| t.source().to_string())
            .collect())
    }

    fn entry(&self, id: &str) -> Result<&Entry> {
        self.entries
            .iter()
            .find(|e| e.family.info().id == id)
            .ok_or_else(|| TaskError::UnknownFamily(id.to_string()))
    }

    fn draw_prompt(
        &self,
        e: &Entry,
        scenario: &Scenario,
        rng: &mut StdRng,
        split: TemplateSplit,
    ) -> Result<Prompt> {
        let n = e.templates.len();
        let template = match split {
            TemplateSplit::Any => rng.random_range(0..n),
            TemplateSplit::Training => rng.random_range(0..n.saturating_sub(1).max(1)),
            TemplateSplit::HeldOut => n - 1,
        };
        let slot = |name: &str| -> Result<Vec<String>> {
            let key = scenario.get(slot_key(name)).ok_or_else(|| {
                TaskError::Grammar(format!("the scenario has no key for {{{name}}}"))
            })?;
            phrases(self, &key, slot_kind(name))
        };
        let x = e.grammar.expand(&e.templates[template], &slot, rng)?;
        let mut text = capitalise(&x.text);
        let mut typo = false;
        if rng.random::<f64>() < TYPO_RATE {
            if let Some(t) = add_typo(&text, &x.protected, rng) {
                text = t;
                typo = true;
            }
        }
        Ok(Prompt {
            text,
            template,
            typo,
        })
    }

    /// A prompt of family `id` for a scenario drawn from its space by weight (no subject is
    /// synthesized).
    pub fn sample_prompt(&self, id: &str, rng: &mut StdRng) -> Result<Prompt> {
        let e = self.entry(id)?;
        if e.space.is_empty() {
            return Err(TaskError::Unavailable {
                family: id.into(),
                reason: e.family.unavailable(self).unwrap_or_default(),
            });
        }
        let scenario = &e.space[e.draw(rng)];
        self.draw_prompt(e, scenario, rng, TemplateSplit::Any)
    }

    /// The index of family `id`'s template kept out of training ([`TemplateSplit`]).
    pub fn held_out_template(&self, id: &str) -> Result<usize> {
        Ok(self.entry(id)?.templates.len() - 1)
    }

    /// A whole sample of family `id`, deterministic in `seed`: a scenario, a subject that fits
    /// it, the program, the expected answer and a prompt.
    pub fn sample(&self, id: &str, seed: u64) -> Result<TaskSample> {
        self.sample_split(id, seed, TemplateSplit::Any)
    }

    /// [`Catalogue::sample`] with the prompt drawn from the templates of `split`: training
    /// never sees a family's held-out template, so the evaluation can measure generalisation to
    /// unseen phrasings.
    pub fn sample_split(&self, id: &str, seed: u64, split: TemplateSplit) -> Result<TaskSample> {
        self.sample_inner(id, seed, split, None)
    }

    /// [`Catalogue::sample_split`] restricted to the scenarios `keep` accepts (drawn uniformly
    /// among them): the evaluation's per-target experiments ask for, say, the hippocampus
    /// only. Fails with [`TaskError::NoSample`] when `keep` accepts none.
    pub fn sample_where(
        &self,
        id: &str,
        seed: u64,
        split: TemplateSplit,
        keep: &dyn Fn(&Scenario) -> bool,
    ) -> Result<TaskSample> {
        self.sample_inner(id, seed, split, Some(keep))
    }

    fn sample_inner(
        &self,
        id: &str,
        seed: u64,
        split: TemplateSplit,
        keep: Option<&dyn Fn(&Scenario) -> bool>,
    ) -> Result<TaskSample> {
        let e = self.entry(id)?;
        let kept: Option<Vec<usize>> =
            keep.map(|k| (0..e.space.len()).filter(|&i| k(&e.space[i])).collect());
        if kept.as_ref().is_some_and(|k| k.is_empty()) {
            return Err(TaskError::NoSample {
                family: id.to_string(),
                attempts: 0,
                last: "no scenario of the family is the one asked for".into(),
            });
        }
        if let Some(reason) = e.family.unavailable(self) {
            return Err(TaskError::Unavailable {
                family: id.into(),
                reason,
            });
        }
        let mut rng = StdRng::seed_from_u64(seed ^ fnv1a(id));
        let mut attempts = 0;
        let mut last = String::from("no feasible scenario");
        for _ in 0..MAX_SCENARIOS {
            let index = match &kept {
                Some(k) => k[rng.random_range(0..k.len())],
                None => e.draw(&mut rng),
            };
            let scenario = e.space[index].clone();
            if !e.family.feasible(self, &scenario) {
                continue;
            }
            for _ in 0..e.family.subject_attempts() {
                attempts += 1;
                match e.family.realise(self, &scenario, &mut rng)? {
                    Outcome::Done(r) => {
                        let prompt = self.draw_prompt(e, &scenario, &mut rng, split)?;
                        // Its own stream, so the scenario, subject and prompt of a seed do not
                        // depend on the naming.
                        let mut names_rng = StdRng::seed_from_u64(seed ^ fnv1a("input names"));
                        let names = crate::names::draw_names(&r.inputs, &mut names_rng);
                        let r = crate::names::rename(*r, &names);
                        return Ok(TaskSample {
                            family: id.to_string(),
                            seed,
                            prompt,
                            scenario,
                            inputs: r.inputs,
                            program: r.program,
                            expected: r.expected,
                            answer: r.answer,
                            truth: r.truth,
                        });
                    }
                    Outcome::Rejected(why) => last = why,
                }
            }
        }
        Err(TaskError::NoSample {
            family: id.to_string(),
            attempts,
            last,
        })
    }

    /// For each template of family `id`: the phrase lists of its slots, one entry per distinct
    /// combination of the scenario keys it uses.
    /// Only every `stride`-th scenario of the space is used (1 for all of them).
    fn template_bindings(
        &self,
        e: &Entry,
        id: &str,
        stride: usize,
    ) -> Result<Vec<Vec<Vec<Vec<String>>>>> {
        let mut all = Vec::with_capacity(e.templates.len());
        for t in &e.templates {
            let slots = e.grammar.slots(t);
            let mut seen: BTreeSet<Vec<Key>> = BTreeSet::new();
            let mut bindings = Vec::new();
            for s in e.space.iter().step_by(stride.max(1)) {
                let keys: Vec<Key> = slots
                    .iter()
                    .map(|sl| {
                        s.get(slot_key(sl)).ok_or_else(|| {
                            TaskError::Grammar(format!(
                                "a scenario of {id} has no key for {{{sl}}}"
                            ))
                        })
                    })
                    .collect::<Result<_>>()?;
                if !seen.insert(keys.clone()) {
                    continue;
                }
                let lists = slots
                    .iter()
                    .zip(&keys)
                    .map(|(sl, k)| phrases(self, k, slot_kind(sl)))
                    .collect::<Result<Vec<_>>>()?;
                bindings.push(lists);
            }
            all.push(bindings);
        }
        Ok(all)
    }

    /// The number of distinct prompts family `id` can produce (typos not counted), from its
    /// expansion tree (see [`crate::grammar`]).
    pub fn distinct_prompts(&self, id: &str) -> Result<u128> {
        self.distinct_prompts_thinned(id, 1)
    }

    /// [`Catalogue::distinct_prompts`] over every `stride`-th scenario only, to compare with
    /// [`Catalogue::enumerate_prompts_thinned`] on families too large to enumerate whole.
    pub fn distinct_prompts_thinned(&self, id: &str, stride: usize) -> Result<u128> {
        let e = self.entry(id)?;
        let mut total = 0u128;
        for (t, bindings) in e
            .templates
            .iter()
            .zip(self.template_bindings(e, id, stride)?)
        {
            total += e.grammar.count_template(t, &bindings)?;
        }
        Ok(total)
    }

    /// Every prompt family `id` can produce (capitalised as sampled, without typos), or `None`
    /// when there are more than `limit`. For checking [`Catalogue::distinct_prompts`].
    pub fn enumerate_prompts(&self, id: &str, limit: usize) -> Result<Option<Vec<String>>> {
        self.enumerate_prompts_thinned(id, 1, limit)
    }

    /// [`Catalogue::enumerate_prompts`] over every `stride`-th scenario only.
    pub fn enumerate_prompts_thinned(
        &self,
        id: &str,
        stride: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>> {
        let e = self.entry(id)?;
        let mut out = Vec::new();
        for (t, bindings) in e
            .templates
            .iter()
            .zip(self.template_bindings(e, id, stride)?)
        {
            match e.grammar.enumerate_template(t, &bindings, limit) {
                Some(v) => out.extend(v.iter().map(|s| capitalise(s))),
                None => return Ok(None),
            }
            if out.len() > limit {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }
}

impl Catalogue {
    /// The families as a Markdown table (for `docs/tasks.md`): id, group, what is asked,
    /// inputs, program outline, answer form, tolerance for model answers, distinct prompts.
    pub fn markdown_table(&self) -> Result<String> {
        let mut out = String::from(
            "| family | group | what is asked | inputs | program | answer | tolerance (model) | distinct prompts |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let cell = |s: &str| s.replace('|', "\\|");
        let mut total = 0u128;
        for f in self.families() {
            let distinct = self.distinct_prompts(f.id)?;
            let status = match self.unavailable(f.id)? {
                Some(_) => " (waiting for its lesion class)".to_string(),
                None => {
                    total += distinct;
                    String::new()
                }
            };
            out.push_str(&format!(
                "| `{}`{status} | {} | {} | {} | {} | {} | {} | {distinct} |\n",
                f.id,
                f.group.name(),
                cell(f.asks),
                cell(f.inputs),
                cell(f.program),
                cell(f.answer),
                cell(f.tolerance),
            ));
        }
        out.push_str(&format!(
            "\nDistinct prompts of the available families: {total} (typos not counted).\n"
        ));
        Ok(out)
    }
}

// Training data loaders share one catalogue across threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Catalogue>();
};

/// FNV-1a of a string, to separate the random streams of families sharing a seed.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
