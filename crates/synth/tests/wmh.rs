//! White-matter hyperintensities as small vessel disease has them, measured on fsaverage's own
//! 1 mm label map with voxel's distance transform (not the sampler's bookkeeping): volumes that
//! span mild to confluent disease, most of the lesion along the lateral ventricles, caps at the
//! horns, both hemispheres, and white matter only.

mod common;

use synth::lesion::{paint, sample_lesion, LesionClass};
use synth::{SynthConfig, Vocabulary};
use voxel::distance::distance_to_mask_mm;
use voxel::{Affine, LabelMap};

const LEFT_WM: i32 = 2;
const RIGHT_WM: i32 = 41;
const LATERAL_VENTRICLES: [i32; 2] = [4, 43];

#[test]
fn wmh_are_periventricular_bilateral_and_span_mild_to_confluent() {
    let config = SynthConfig::builtin().unwrap();
    let Some(anatomy) = common::fsaverage_or_skip(&config) else {
        return;
    };
    let vocab = Vocabulary::builtin().unwrap();
    let labels = &anatomy.labels;
    let g = labels.geometry();
    let voxel_ml = g.spacing_mm().iter().product::<f64>() / 1000.0;
    let ventricle_distance = distance_to_mask_mm(&labels.mask_of_any(&LATERAL_VENTRICLES)).unwrap();
    // The ventricles' anterior-posterior extent (world y), for the caps.
    let ventricle_y: Vec<f64> = (0..labels.data().len())
        .filter(|&i| LATERAL_VENTRICLES.contains(&labels.data()[i]))
        .map(|i| {
            let c = g.coords(i);
            g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])[1]
        })
        .collect();
    let y_lo = ventricle_y.iter().copied().fold(f64::INFINITY, f64::min);
    let y_hi = ventricle_y
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);

    let mut volumes_ml = Vec::new();
    let (mut near, mut total, mut at_caps) = (0usize, 0usize, 0usize);
    for seed in 0..10u64 {
        let shape = sample_lesion(
            LesionClass::Wmh,
            labels,
            &vocab,
            &config.lesions,
            &mut synth::rng::stream(seed, 7),
        )
        .unwrap();
        let mut lesions: LabelMap = labels.map(|_| 0);
        let painted = paint(&shape, labels, &mut lesions, &Affine::IDENTITY, &vocab).unwrap();
        assert!(!painted.is_empty(), "seed {seed}: nothing painted");
        let (mut left, mut right) = (0usize, 0usize);
        for &i in &painted {
            match labels.data()[i] {
                LEFT_WM => left += 1,
                RIGHT_WM => right += 1,
                other => panic!("seed {seed}: WMH painted on label {other}"),
            }
            let d = ventricle_distance.data()[i];
            if d <= 10.0 {
                near += 1;
                let c = g.coords(i);
                let y = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])[1];
                let quarter = 0.25 * (y_hi - y_lo);
                at_caps += (y <= y_lo + quarter || y >= y_hi - quarter) as usize;
            }
        }
        total += painted.len();
        let ml = painted.len() as f64 * voxel_ml;
        // Bilateral from a moderate burden on (a couple of mL): a few foci may all fall on one side.
        if ml > 3.0 {
            assert!(
                left.min(right) * 10 >= painted.len(),
                "seed {seed}: {left} left, {right} right of {ml:.1} mL"
            );
        }
        volumes_ml.push(ml);
    }
    eprintln!("{near} of {total} within 10 mm, {at_caps} at the caps");
    volumes_ml.sort_by(f64::total_cmp);
    let (smallest, largest) = (volumes_ml[0], volumes_ml[volumes_ml.len() - 1]);
    // Mild disease is ~1 mL or less; Fazekas 3 is tens of mL.
    eprintln!("volumes {volumes_ml:.1?}");
    assert!(smallest < 2.0, "volumes {volumes_ml:.1?}");
    assert!(largest > 15.0, "volumes {volumes_ml:.1?}");
    assert!(
        volumes_ml[volumes_ml.len() / 2] > 2.0,
        "volumes {volumes_ml:.1?}"
    );
    // Periventricular predominance, and the caps take a fair share of it.
    assert!(near * 10 >= total * 6, "{near} of {total} within 10 mm");
    assert!(
        at_caps * 4 >= near,
        "{at_caps} of {near} periventricular at the caps"
    );
}
