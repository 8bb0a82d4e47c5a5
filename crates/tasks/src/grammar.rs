//! The prompt grammar: templates with `{placeholders}`, filled recursively from weighted lists
//! of interchangeable phrases, plus slots bound to a task's scenario (the target's names, the
//! contrast, ...), and a low rate of typos.
//!
//! A placeholder names either a **rule** of the grammar (a list of weighted alternatives, each
//! itself a template that may use other rules: politeness, verbs, question frames) or a
//! **slot**, filled from the scenario at sampling time (see [`crate::scenario`]). Rules may not
//! use slots, so the phrases a rule can produce are a fixed, finite set, enumerated once.
//!
//! Distinct prompts are counted from the expansion tree, not by sampling: a template yields
//! (product of the distinct expansions of its rules) × (distinct combinations of its slot
//! phrases over all scenarios). That equals the number of distinct strings when the grammar is
//! unambiguous (no two derivations give the same text), which the crate's tests check on
//! samples of every family. Typo variants are not counted.
//!
//! ```
//! use tasks::grammar::{GrammarBuilder, Template};
//! let mut g = GrammarBuilder::new();
//! g.rule("verb", &["segment", "outline"]);
//! g.rule("please", &["", "please "]);
//! let g = g.build().unwrap();
//! let t = Template::parse("{please}{verb} the {target}").unwrap();
//! // One scenario whose single slot has two phrases.
//! let scenarios = vec![vec![vec!["hippocampus".to_string(), "hippocampal formation".to_string()]]];
//! assert_eq!(g.count_template(&t, &scenarios).unwrap(), 2 * 2 * 2);
//! ```

use crate::error::{Result, TaskError};
use rand::Rng;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

/// The phrases of a slot, by placeholder name.
pub type SlotPhrases<'a> = &'a dyn Fn(&str) -> Result<Vec<String>>;

/// Most distinct expansions a single rule may have (rules are short phrase lists).
const MAX_RULE_EXPANSIONS: usize = 100_000;

/// Most slot-phrase combinations enumerated for one template.
const MAX_SLOT_COMBINATIONS: usize = 20_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Ref(String),
}

/// A string with `{name}` placeholders, e.g. `"{please}{verb} the {target}{end}"`.
#[derive(Clone, Debug)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`; placeholder names are letters, digits, `_` and `.`.
    pub fn parse(source: &str) -> Result<Template> {
        let bad = |why: &str| TaskError::Grammar(format!("template {source:?}: {why}"));
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if rest[..open].contains('}') {
                return Err(bad("'}' without '{'"));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| bad("'{' without '}'"))?;
            let name = &after[..close];
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !ok {
                return Err(bad(&format!("bad placeholder {name:?}")));
            }
            parts.push(Part::Ref(name.to_string()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(bad("'}' without '{'"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholder names, in order.
    pub fn refs(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r.as_str()),
            Part::Text(_) => None,
        })
    }
}

/// One weighted alternative of a rule (or a family's list of templates).
#[derive(Clone, Debug)]
pub struct Alternative {
    /// Relative weight (> 0).
    pub weight: f64,
    /// The alternative's text.
    pub template: Template,
}

/// Collects rules; [`GrammarBuilder::build`] checks and enumerates them.
#[derive(Clone, Debug, Default)]
pub struct GrammarBuilder {
    rules: BTreeMap<String, Vec<(f64, String)>>,
}

impl GrammarBuilder {
    /// An empty grammar.
    pub fn new() -> GrammarBuilder {
        GrammarBuilder::default()
    }

    /// Adds (or replaces) rule `name` with equally weighted alternatives.
    pub fn rule(&mut self, name: &str, alternatives: &[&str]) -> &mut GrammarBuilder {
        let alts = alternatives.iter().map(|a| (1.0, a.to_string())).collect();
        self.rules.insert(name.to_string(), alts);
        self
    }

    /// Adds (or replaces) rule `name` with weighted alternatives.
    pub fn weighted(&mut self, name: &str, alternatives: &[(f64, &str)]) -> &mut GrammarBuilder {
        let alts = alternatives
            .iter()
            .map(|(w, a)| (*w, a.to_string()))
            .collect();
        self.rules.insert(name.to_string(), alts);
        self
    }

    /// Parses every alternative, rejects unknown references and cycles, and enumerates the
    /// distinct expansions of every rule.
    pub fn build(&self) -> Result<Grammar> {
        let mut rules = BTreeMap::new();
        for (name, alts) in &self.rules {
            if alts.is_empty() {
                return Err(TaskError::Grammar(format!(
                    "rule {name:?} has no alternatives"
                )));
            }
            let mut parsed = Vec::with_capacity(alts.len());
            for (w, a) in alts {
                if !(w.is_finite() && *w > 0.0) {
                    return Err(TaskError::Grammar(format!(
                        "rule {name:?}: weight {w} of {a:?} is not positive"
                    )));
                }
                parsed.push(Alternative {
                    weight: *w,
                    template: Template::parse(a)?,
                });
            }
            rules.insert(name.clone(), parsed);
        }
        for (name, alts) in &rules {
            for a in alts {
                for r in a.template.refs() {
                    if !rules.contains_key(r) {
                        return Err(TaskError::Grammar(format!(
                            "rule {name:?} uses {{{r}}}, which is not a rule (rules cannot use slots)"
                        )));
                    }
                }
            }
        }
        let mut g = Grammar {
            rules,
            expansions: BTreeMap::new(),
        };
        let names: Vec<String> = g.rules.keys().cloned().collect();
        for n in names {
            let mut stack = Vec::new();
            g.enumerate(&n, &mut stack)?;
        }
        Ok(g)
    }
}

/// A checked set of rules with the distinct expansions of each.
#[derive(Clone, Debug)]
pub struct Grammar {
    rules: BTreeMap<String, Vec<Alternative>>,
    expansions: BTreeMap<String, Vec<String>>,
}

/// Text produced by expanding a template, with the byte ranges that came from slots (names of
/// targets, contrasts, ...), which typos must not touch.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    /// The text.
    pub text: String,
    /// Byte ranges of slot phrases in `text`.
    pub protected: Vec<Range<usize>>,
}

impl Grammar {
    fn enumerate(&mut self, name: &str, stack: &mut Vec<String>) -> Result<()> {
        if self.expansions.contains_key(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(TaskError::Grammar(format!(
                "rule {name:?} refers to itself through {}",
                stack.join(" -> ")
            )));
        }
        stack.push(name.to_string());
        let alts = self.rules.get(name).cloned().unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for a in &alts {
            let mut partial = vec![String::new()];
            for p in &a.template.parts {
                let pieces: Vec<String> = match p {
                    Part::Text(t) => vec![t.clone()],
                    Part::Ref(r) => {
                        self.enumerate(r, stack)?;
                        self.expansions.get(r).cloned().unwrap_or_default()
                    }
                };
                if partial.len() * pieces.len() > MAX_RULE_EXPANSIONS {
                    return Err(TaskError::Grammar(format!(
                        "rule {name:?} has more than {MAX_RULE_EXPANSIONS} expansions; make it a template"
                    )));
                }
                partial = partial
                    .iter()
                    .flat_map(|s| pieces.iter().map(move |q| format!("{s}{q}")))
                    .collect();
            }
            for s in partial {
                if seen.insert(s.clone()) {
                    out.push(s);
                }
            }
        }
        stack.pop();
        self.expansions.insert(name.to_string(), out);
        Ok(())
    }

    /// Whether `name` is a rule (otherwise a placeholder of that name is a slot).
    pub fn is_rule(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// Number of distinct strings rule `name` expands to (0 for an unknown rule).
    pub fn distinct(&self, name: &str) -> usize {
        self.expansions.get(name).map_or(0, Vec::len)
    }

    /// The slots of `template` (its placeholders that are not rules), in order.
    pub fn slots<'t>(&self, template: &'t Template) -> Vec<&'t str> {
        template.refs().filter(|r| !self.is_rule(r)).collect()
    }

    /// Distinct prompts `template` yields when its slots (in the order of
    /// [`Grammar::slots`]) take the phrase lists of each entry of `bindings` (one entry per
    /// scenario, each with one phrase list per slot): the product of the rules' distinct
    /// expansions times the number of distinct slot-phrase combinations over all entries.
    pub fn count_template(
        &self,
        template: &Template,
        bindings: &[Vec<Vec<String>>],
    ) -> Result<u128> {
        let generic: u128 = template
            .refs()
            .filter(|r| self.is_rule(r))
            .map(|r| self.distinct(r) as u128)
            .product();
        let slots = self.slots(template).len();
        if slots == 0 {
            return Ok(generic);
        }
        let mut combos: HashSet<String> = HashSet::new();
        for lists in bindings {
            if lists.len() != slots {
                return Err(TaskError::Grammar(format!(
                    "template {:?} has {slots} slots but a binding gives {} phrase lists",
                    template.source,
                    lists.len()
                )));
            }
            if lists.iter().any(Vec::is_empty) {
                continue;
            }
            let mut idx = vec![0usize; slots];
            loop {
                let key: Vec<&str> = idx.iter().zip(lists).map(|(&i, l)| l[i].as_str()).collect();
                combos.insert(key.join("\u{1f}"));
                if combos.len() > MAX_SLOT_COMBINATIONS {
                    return Err(TaskError::Grammar(format!(
                        "template {:?}: more than {MAX_SLOT_COMBINATIONS} slot combinations",
                        template.source
                    )));
                }
                // Odometer over the phrase lists.
                let mut a = slots;
                let done = loop {
                    if a == 0 {
                        break true;
                    }
                    a -= 1;
                    idx[a] += 1;
                    if idx[a] < lists[a].len() {
                        break false;
                    }
                    idx[a] = 0;
                };
                if done {
                    break;
                }
            }
        }
        Ok(generic * combos.len() as u128)
    }

    /// Every string `template` expands to over the slot phrase lists of `bindings` (as in
    /// [`Grammar::count_template`]), deduplicated, or `None` when there would be more than
    /// `limit`. For checking the counts on small families.
    pub fn enumerate_template(
        &self,
        template: &Template,
        bindings: &[Vec<Vec<String>>],
        limit: usize,
    ) -> Option<Vec<String>> {
        let slots = self.slots(template).len();
        let mut out: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let empty: Vec<Vec<String>> = Vec::new();
        let lists_of: Vec<&Vec<Vec<String>>> = if slots == 0 {
            vec![&empty]
        } else {
            bindings.iter().collect()
        };
        for lists in lists_of {
            let mut partial = vec![String::new()];
            let mut slot_i = 0;
            for p in &template.parts {
                let pieces: &[String] = match p {
                    Part::Text(t) => std::slice::from_ref(t),
                    Part::Ref(r) if self.is_rule(r) => self.expansions.get(r)?.as_slice(),
                    Part::Ref(_) => {
                        slot_i += 1;
                        lists.get(slot_i - 1)?.as_slice()
                    }
                };
                if partial.len() * pieces.len() > limit {
                    return None;
                }
                partial = partial
                    .iter()
                    .flat_map(|s| pieces.iter().map(move |q| format!("{s}{q}")))
                    .collect();
            }
            for s in partial {
                if seen.insert(s.clone()) {
                    out.push(s);
                    if out.len() > limit {
                        return None;
                    }
                }
            }
        }
        Some(out)
    }

    /// Expands `template`: rules by weighted choice, slots by a uniform choice among the
    /// phrases `slot` returns for them.
    pub fn expand(
        &self,
        template: &Template,
        slot: SlotPhrases<'_>,
        rng: &mut impl Rng,
    ) -> Result<Expansion> {
        let mut out = Expansion {
            text: String::new(),
            protected: Vec::new(),
        };
        self.expand_into(template, Some(slot), rng, &mut out)?;
        Ok(out)
    }

    fn expand_into(
        &self,
        template: &Template,
        slot: Option<SlotPhrases<'_>>,
        rng: &mut impl Rng,
        out: &mut Expansion,
    ) -> Result<()> {
        for p in &template.parts {
            match p {
                Part::Text(t) => out.text.push_str(t),
                Part::Ref(r) => {
                    if let Some(alts) = self.rules.get(r) {
                        let a = pick_weighted(alts, rng);
                        // Rules never use slots (checked in `build`).
                        self.expand_into(&a.template, None, rng, out)?;
                    } else {
                        let phrases = match slot {
                            Some(f) => f(r)?,
                            None => Vec::new(),
                        };
                        if phrases.is_empty() {
                            return Err(TaskError::Grammar(format!(
                                "slot {{{r}}} of {:?} has no phrases",
                                template.source
                            )));
                        }
                        let s = &phrases[rng.random_range(0..phrases.len())];
                        let start = out.text.len();
                        out.text.push_str(s);
                        out.protected.push(start..out.text.len());
                    }
                }
            }
        }
        Ok(())
    }
}

/// A weighted choice among `alts` (which must not be empty).
pub fn pick_weighted<'a>(alts: &'a [Alternative], rng: &mut impl Rng) -> &'a Alternative {
    let total: f64 = alts.iter().map(|a| a.weight).sum();
    let mut r = rng.random::<f64>() * total;
    for a in alts {
        if r < a.weight {
            return a;
        }
        r -= a.weight;
    }
    &alts[alts.len() - 1]
}

/// Index of a weighted choice among `weights` (which must not be empty).
pub fn pick_index(weights: &[f64], rng: &mut impl Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    weights.len().saturating_sub(1)
}

/// `text` with its first character upper-cased (prompts are written as sentences).
pub fn capitalise(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One typo in a word of at least four letters outside `protected`: two neighbouring letters
/// swapped or one letter dropped, never the first letter. `None` when no word qualifies.
///
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let t = tasks::grammar::add_typo("please segment the hippocampus", &[19..30], &mut rng).unwrap();
/// assert!(t.ends_with("the hippocampus") && t != "please segment the hippocampus");
/// ```
pub fn add_typo(text: &str, protected: &[Range<usize>], rng: &mut impl Rng) -> Option<String> {
    let bytes = text.as_bytes();
    let mut words: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let free = protected.iter().all(|p| p.end <= start || p.start >= i);
            // Whole words only: not glued to digits or other non-ASCII letters.
            let glued = |k: usize| {
                k < bytes.len()
                    && (bytes[k].is_ascii_digit() || bytes[k] >= 0x80 || bytes[k] == b'_')
            };
            if free && i - start >= 4 && !glued(i) && (start == 0 || !glued(start - 1)) {
                words.push(start..i);
            }
        } else {
            i += 1;
        }
    }
    if words.is_empty() {
        return None;
    }
    let w = words[rng.random_range(0..words.len())].clone();
    let mut word: Vec<u8> = bytes[w.clone()].to_vec();
    let n = word.len();
    let swappable: Vec<usize> = (1..n - 1).filter(|&j| word[j] != word[j + 1]).collect();
    if rng.random::<bool>() && !swappable.is_empty() {
        let j = swappable[rng.random_range(0..swappable.len())];
        word.swap(j, j + 1);
    } else {
        word.remove(rng.random_range(1..n));
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..w.start]);
    // Only ASCII letters were moved, so the bytes are valid UTF-8.
    out.push_str(&String::from_utf8_lossy(&word));
    out.push_str(&text[w.end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rules_enumerate_distinct_expansions() {
        let mut b = GrammarBuilder::new();
        b.rule("a", &["x", "y", "x"]);
        b.rule("b", &["{a}{a}", "xy"]);
        let g = b.build().unwrap();
        assert_eq!(g.distinct("a"), 2);
        // xx, xy, yx, yy (xy twice).
        assert_eq!(g.distinct("b"), 4);
    }

    #[test]
    fn bad_grammars_are_refused() {
        assert!(Template::parse("a {b").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("{a b}").is_err());
        let mut b = GrammarBuilder::new();
        b.rule("a", &["{b}"]);
        b.rule("b", &["{a}"]);
        assert!(b.build().is_err());
        let mut b = GrammarBuilder::new();
        b.rule("a", &["{slot}"]);
        assert!(b.build().is_err());
    }

    #[test]
    fn slot_combinations_are_counted_once() {
        let mut b = GrammarBuilder::new();
        b.rule("end", &["", "."]);
        let g = b.build().unwrap();
        let t = Template::parse("{x} and {y}{end}").unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // Two scenarios that share the combination ("a", "c").
        let bindings = vec![
            vec![s(&["a", "b"]), s(&["c"])],
            vec![s(&["a"]), s(&["c", "d"])],
        ];
        assert_eq!(g.count_template(&t, &bindings).unwrap(), 2 * 3);
    }

    #[test]
    fn expansion_marks_slots_and_typos_avoid_them() {
        let mut b = GrammarBuilder::new();
        b.rule("verb", &["segment", "delineate"]);
        let g = b.build().unwrap();
        let t = Template::parse("{verb} the {target} please").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let slot = |_: &str| Ok(vec!["left hippocampus".to_string()]);
        for _ in 0..50 {
            let e = g.expand(&t, &slot, &mut rng).unwrap();
            assert_eq!(&e.text[e.protected[0].clone()], "left hippocampus");
            let typo = add_typo(&e.text, &e.protected, &mut rng).unwrap();
            assert!(typo.contains("left hippocampus"), "{typo}");
            assert_ne!(typo, e.text);
            assert!(typo.len() + 1 >= e.text.len());
        }
    }
}
