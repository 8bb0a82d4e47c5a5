//! The program variable names a sample's inputs are given.
//!
//! Families bind inputs as `scan_1`, `scan_2`, … ([`crate::family::bind_inputs`]); users name
//! theirs as they like (`voxelprompt run t1@2024-01-05=…`, `batch` names BIDS scans by
//! contrast: `t1`, `flair`). A model trained on one scheme copies it whatever the metadata
//! says, so every sample draws a scheme ([`draw_names`]) and [`rename`] rewrites the whole
//! realised sample (inputs, program code, expected answer, expected outputs) to it.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::Rng;

use crate::family::Realised;
use crate::sample::InputVolume;

/// Names a single input may get besides the schemes built from its contrast or visit.
const SINGLE_INPUT_NAMES: &[&str] = &["scan", "image", "img", "input", "vol", "mri", "study"];
/// Prefixes of numbered names (`img1`, `vol_2`, …).
const NUMBERED_PREFIXES: &[&str] = &["scan_", "image_", "img", "vol_", "input", "s"];
/// Names of two visits, in time order.
const VISIT_PAIRS: &[[&str; 2]] = &[
    ["baseline", "followup"],
    ["pre", "post"],
    ["before", "after"],
    ["earlier", "later"],
    ["prior", "current"],
];

/// One name per input, drawn from a scheme chosen at random: the families' own `scan_k`
/// (kept most often, as `run` and `exec` name unnamed inputs so), numbered with another
/// prefix, by contrast (`t1`, `flair`; `t1_2` when a contrast repeats), by visit (`baseline`,
/// `followup`; with the contrast when a visit has several scans), or a single word.
pub fn draw_names(inputs: &[InputVolume], rng: &mut StdRng) -> Vec<String> {
    let n = inputs.len();
    let numbered =
        |prefix: &str| -> Vec<String> { (1..=n).map(|k| format!("{prefix}{k}")).collect() };
    let sessions: Vec<usize> = {
        let mut s: Vec<usize> = inputs.iter().map(|i| i.session).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let roll: f64 = rng.random();
    let names = if roll < 0.4 {
        numbered("scan_")
    } else if roll < 0.55 {
        numbered(NUMBERED_PREFIXES[rng.random_range(0..NUMBERED_PREFIXES.len())])
    } else if roll < 0.8 {
        by_contrast(inputs)
    } else if sessions.len() == 2 && roll < 0.92 {
        let pair = VISIT_PAIRS[rng.random_range(0..VISIT_PAIRS.len())];
        by_visit(inputs, &sessions, |k| pair[k].to_string())
    } else if sessions.len() > 2 && roll < 0.92 {
        by_visit(inputs, &sessions, |k| format!("visit{}", k + 1))
    } else if n == 1 {
        vec![SINGLE_INPUT_NAMES[rng.random_range(0..SINGLE_INPUT_NAMES.len())].to_string()]
    } else {
        by_contrast(inputs)
    };
    debug_assert_eq!(names.len(), n);
    names
}

/// `t1`, `flair`, …; a contrast given more than once is numbered in input order (`t1_1`,
/// `t1_2`).
fn by_contrast(inputs: &[InputVolume]) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for i in inputs {
        *count.entry(i.contrast.name()).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    inputs
        .iter()
        .map(|i| {
            let c = i.contrast.name();
            if count[c] == 1 {
                c.to_string()
            } else {
                let k = seen.entry(c).or_default();
                *k += 1;
                format!("{c}_{k}")
            }
        })
        .collect()
}

/// The visit name of each input's session (its rank among `sessions`), joined with the
/// contrast when a visit holds several inputs.
fn by_visit(
    inputs: &[InputVolume],
    sessions: &[usize],
    visit: impl Fn(usize) -> String,
) -> Vec<String> {
    let per_session = |s: usize| inputs.iter().filter(|i| i.session == s).count();
    inputs
        .iter()
        .map(|i| {
            let rank = sessions.iter().position(|&s| s == i.session).unwrap_or(0);
            if per_session(i.session) == 1 {
                visit(rank)
            } else {
                format!("{}_{}", i.contrast.name(), visit(rank))
            }
        })
        .collect()
}

/// `realised` with its inputs renamed to `names` (one per input, in order) everywhere a name
/// appears: the inputs, every program step, the expected answer and outputs. Unchanged when a
/// new name is already an identifier of the program (a variable or function it uses).
pub fn rename(mut realised: Realised, names: &[String]) -> Realised {
    let old: Vec<&str> = realised.inputs.iter().map(|i| i.name.as_str()).collect();
    let used: std::collections::BTreeSet<String> = realised
        .program
        .iter()
        .flat_map(|s| identifiers(&s.code))
        .filter(|w| !old.contains(&w.as_str()))
        .collect();
    if names.len() != old.len() || names.iter().any(|n| used.contains(n)) {
        return realised;
    }
    let map: BTreeMap<String, String> = realised
        .inputs
        .iter()
        .zip(names)
        .filter(|(i, n)| &i.name != *n)
        .map(|(i, n)| (i.name.clone(), n.clone()))
        .collect();
    if map.is_empty() {
        return realised;
    }
    for input in &mut realised.inputs {
        if let Some(n) = map.get(&input.name) {
            input.name = n.clone();
        }
    }
    for step in &mut realised.program {
        step.code = replace_identifiers(&step.code, &map);
        for m in &mut step.mods {
            if let crate::program::ModMeaning::Encode { volume } = m {
                if let Some(n) = map.get(volume.as_str()) {
                    *volume = n.clone();
                }
            }
        }
    }
    realised.answer = replace_identifiers(&realised.answer, &map);
    for out in &mut realised.expected.outputs {
        if let Some(n) = map.get(&out.input) {
            out.input = n.clone();
        }
    }
    realised
}

/// The identifiers (maximal runs of ASCII letters, digits and `_` not starting with a digit)
/// of `code`.
fn identifiers(code: &str) -> Vec<String> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// `text` with every whole identifier (a maximal run of ASCII letters, digits and `_`) that is
/// a key of `map` replaced by its value; all replacements at once, so names may swap.
pub fn replace_identifiers(text: &str, map: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match map.get(word.as_str()) {
            Some(n) => out.push_str(n),
            None => out.push_str(word),
        }
        word.clear();
    };
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_replaced_whole_and_at_once() {
        let map: BTreeMap<String, String> = [
            ("scan_1".to_string(), "scan_2".to_string()),
            ("scan_2".to_string(), "t1".to_string()),
        ]
        .into();
        assert_eq!(
            replace_identifiers(
                "encode(scan_1 <mod>, scan_2); scan_10 xscan_1 `scan_1.`",
                &map
            ),
            "encode(scan_2 <mod>, t1); scan_10 xscan_1 `scan_2.`"
        );
    }
}
