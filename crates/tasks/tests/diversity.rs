//! Prompt diversity: over 10 000 sampled prompts per family no template accounts for more than
//! 20 %, typos stay rare, the distinct-prompt counts add up to at least 10⁶, and where a family
//! is small enough to enumerate, the count equals the number of distinct strings and every
//! sampled prompt is one of them (larger families: the same on a thinned scenario space).

mod common;

use common::catalogue;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashSet;

const PROMPTS: usize = 10_000;
/// Families with at most this many prompts are enumerated in full.
const ENUMERATE_UP_TO: usize = 300_000;
/// Larger families are enumerated over a thinned scenario space of at most this many prompts.
const THINNED_UP_TO: usize = 500_000;

#[test]
fn templates_are_balanced_and_counts_add_up() {
    let cat = catalogue();
    let mut total: u128 = 0;
    let mut table = String::new();
    let mut enumerated = 0;
    for id in common::available() {
        let templates = cat.templates(id).unwrap().len();
        assert!(templates >= 6, "{id} has {templates} templates");
        let mut per_template = vec![0usize; templates];
        let mut typos = 0;
        let mut seen = HashSet::new();
        let mut sampled = Vec::new();
        let mut rng = StdRng::seed_from_u64(42);
        for _ in 0..PROMPTS {
            let p = cat.sample_prompt(id, &mut rng).unwrap();
            per_template[p.template] += 1;
            typos += usize::from(p.typo);
            assert!(
                !p.text.contains("  ") && p.text.trim() == p.text,
                "{id}: {:?}",
                p.text
            );
            assert!(
                !p.text.contains('{') && !p.text.contains('}'),
                "{id}: {:?}",
                p.text
            );
            seen.insert(p.text.clone());
            if !p.typo {
                sampled.push(p.text);
            }
        }
        let max_share = *per_template.iter().max().unwrap() as f64 / PROMPTS as f64;
        assert!(
            max_share <= 0.20,
            "{id}: one template gives {:.1} % of prompts",
            100.0 * max_share
        );
        assert!(
            (100..=600).contains(&typos),
            "{id}: {typos} typos in {PROMPTS}"
        );
        let distinct = cat.distinct_prompts(id).unwrap();
        assert!(distinct >= 5_000, "{id}: only {distinct} distinct prompts");
        assert!(distinct >= seen.len() as u128 - typos as u128, "{id}");
        // Larger families: the same check on a thinned scenario space, which keeps every
        // template and rule and so every way two derivations could collide but the names.
        if distinct > ENUMERATE_UP_TO as u128 {
            let mut stride = (distinct / ENUMERATE_UP_TO as u128 + 1) as usize;
            let mut last = u128::MAX;
            loop {
                let thinned = cat.distinct_prompts_thinned(id, stride).unwrap();
                if thinned <= THINNED_UP_TO as u128 {
                    let all = cat
                        .enumerate_prompts_thinned(id, stride, THINNED_UP_TO)
                        .unwrap()
                        .unwrap();
                    let set: HashSet<&String> = all.iter().collect();
                    assert_eq!(set.len() as u128, thinned, "{id}: the grammar is ambiguous");
                    enumerated += 1;
                    break;
                }
                assert!(
                    thinned < last,
                    "{id}: one scenario alone has {thinned} prompts"
                );
                last = thinned;
                stride = stride.saturating_mul(2);
            }
        }
        if distinct <= ENUMERATE_UP_TO as u128 {
            let all = cat.enumerate_prompts(id, ENUMERATE_UP_TO).unwrap().unwrap();
            let set: HashSet<&String> = all.iter().collect();
            assert_eq!(
                set.len() as u128,
                distinct,
                "{id}: the grammar is ambiguous"
            );
            for p in &sampled {
                assert!(
                    set.contains(p),
                    "{id}: sampled {p:?} is not in the enumeration"
                );
            }
            enumerated += 1;
        }
        table.push_str(&format!(
            "{id:24} {distinct:>12} distinct, top template {:.1} %, {typos} typos\n",
            100.0 * max_share
        ));
        total += distinct;
    }
    println!("{table}total {total}");
    assert!(total >= 1_000_000, "{total} distinct prompts in all");
    assert!(
        enumerated >= 5,
        "only {enumerated} families were small enough to enumerate"
    );
}

#[test]
fn every_family_keeps_a_template_out_of_training() {
    use tasks::TemplateSplit;
    let cat = catalogue();
    for f in cat.families() {
        let templates = cat.templates(f.id).unwrap().len();
        assert!(templates >= 2, "{} has {templates} template(s)", f.id);
        assert_eq!(cat.held_out_template(f.id).unwrap(), templates - 1);
    }
    // Whole samples: training draws never use the held-out template, held-out draws always do.
    for id in common::available().into_iter().take(4) {
        let held = cat.held_out_template(id).unwrap();
        for seed in 0..6 {
            let s = cat.sample_split(id, seed, TemplateSplit::Training).unwrap();
            assert_ne!(s.prompt.template, held, "{id} seed {seed}");
            let s = cat.sample_split(id, seed, TemplateSplit::HeldOut).unwrap();
            assert_eq!(s.prompt.template, held, "{id} seed {seed}");
        }
    }
}
