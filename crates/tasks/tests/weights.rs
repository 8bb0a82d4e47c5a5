//! `segment_anatomy` draws its target in proportion to the square root of its size: the share
//! of large targets among sampled subjects matches the share the weights predict, and is far
//! above the share a uniform draw would give.

mod common;

use common::catalogue;
use tasks::scenario::{Key, Roi};

#[test]
fn segment_anatomy_draws_large_targets_by_the_square_root_of_their_size() {
    let cat = catalogue();
    let sizes: Vec<(usize, f64)> = cat
        .anatomy_targets()
        .into_iter()
        .map(|t| (t, cat.template_voxels(t) as f64))
        .filter(|&(_, v)| v > 0.0)
        .collect();
    let mut sorted: Vec<f64> = sizes.iter().map(|s| s.1).collect();
    sorted.sort_by(f64::total_cmp);
    // "Large": the biggest tenth of the targets (brain, white matter, cortex, hemispheres...).
    let threshold = sorted[sorted.len() * 9 / 10];
    let is_large = |t: usize| cat.template_voxels(t) as f64 >= threshold;
    let weight_sum: f64 = sizes.iter().map(|s| s.1.sqrt()).sum();
    let large_weight: f64 = sizes
        .iter()
        .filter(|s| s.1 >= threshold)
        .map(|s| s.1.sqrt())
        .sum();
    let predicted = large_weight / weight_sum;
    let uniform = sizes.iter().filter(|s| s.1 >= threshold).count() as f64 / sizes.len() as f64;
    assert!(
        predicted > 2.0 * uniform,
        "{predicted} vs uniform {uniform}"
    );

    let n = 80;
    let mut large = 0;
    for seed in 0..n {
        let s = cat.sample("segment_anatomy", 9000 + seed).unwrap();
        match s.scenario.get("target") {
            Some(Key::Roi(Roi::Anatomy(t))) => large += usize::from(is_large(t)),
            other => panic!("segment_anatomy scenario without an anatomical target: {other:?}"),
        }
    }
    let share = large as f64 / n as f64;
    println!(
        "large targets: {share:.3} of samples, predicted {predicted:.3}, uniform {uniform:.3}"
    );
    let sd = (predicted * (1.0 - predicted) / n as f64).sqrt();
    assert!(
        (share - predicted).abs() <= 4.0 * sd,
        "large-target share {share:.3}, predicted {predicted:.3} ± {sd:.3} (uniform {uniform:.3})"
    );
}
