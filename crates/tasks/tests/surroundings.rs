//! The "tissue surrounding the lesion" a characterisation program measures (the truth's
//! `MaskDef::Surroundings`) must be the tissue `synth` recorded the lesion's intensity classes
//! against, or the program's ratio and the expected answer disagree. Checked where the two
//! once drifted apart: extra-axial lesions of the posterior fossa, whose surroundings are
//! cerebellum and brainstem rather than cerebral grey and white matter.
//!
//! The class is recomputed here from the subject's own tissue means over the truth's masks,
//! with the recorder's rule (`IntensityClass::of_means`). On the main branch before issue 16
//! the truth kept only cerebral tissue and this test failed for three cysts in the
//! cerebellopontine angle (PD and GRE).

use synth::anatomy::Anatomy;
use synth::contrast::{Contrast, SubjectTissues};
use synth::lesion::{ids, IntensityClass, LesionClass, CEREBELLOPONTINE_ANGLE};
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};
use tasks::truth::{MaskDef, SubjectTruth};

const SPACING_MM: f64 = 3.0;

fn is_posterior_fossa(lobe: &str, site: &str) -> bool {
    lobe == "cerebellum" || lobe == "infratentorial" || site == CEREBELLOPONTINE_ANGLE
}

#[test]
fn posterior_fossa_surroundings_give_the_recorded_intensity_classes() {
    let config = SynthConfig::builtin().unwrap();
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(SPACING_MM, &config.head).unwrap();
    let tol = config.intensity.iso_tolerance;
    let mut checked = Vec::new();
    let mut mismatches = Vec::new();
    // Arachnoid cysts: a third of them sit in the posterior fossa of the phantom (behind the
    // cerebellum or in the cerebellopontine angle), and on PD and GRE their class depends on
    // whether cerebellum or cerebral cortex is the reference.
    for seed in 0..40u64 {
        for class in [LesionClass::ArachnoidCyst] {
            let spec = SubjectSpec {
                contrasts: Contrast::ALL.to_vec(),
                lesions: vec![class],
                sessions: 1,
                spacing_mm: [SPACING_MM; 3],
                mode: IntensityMode::Realistic,
            };
            let subject = synthesize_subject(&anatomy, &spec, &config, &vocab, "pf", seed).unwrap();
            let record = &subject.sessions[0].lesion_records[0];
            if !is_posterior_fossa(&record.lobe, &record.site) {
                continue;
            }
            let truth = SubjectTruth::new(&subject, &vocab).unwrap();
            let s = truth.session(0).unwrap();
            let ring = truth.mask(&MaskDef::Surroundings { lesion: 0 }, 0).unwrap();
            let ring: Vec<usize> = (0..ring.data().len()).filter(|&v| ring.data()[v]).collect();
            let proper: Vec<usize> = (0..s.owner.data().len())
                .filter(|&v| s.owner.data()[v] == 1 && s.lesions.data()[v] != ids::EDEMA)
                .collect();
            assert!(!ring.is_empty() && !proper.is_empty());
            // The subject's own tissue means (stream 1 of its seed, as `synthesize_subject`).
            let tissues = SubjectTissues::sample(
                &config,
                IntensityMode::Realistic,
                &mut synth::rng::stream(seed, 1),
            );
            for c in Contrast::ALL {
                let m = tissues.means(&config, c);
                let mean = |vs: &[usize], f: &dyn Fn(usize) -> f32| {
                    vs.iter().map(|&v| f(v) as f64).sum::<f64>() / vs.len() as f64
                };
                let lesion = mean(&proper, &|v| m.of_lesion(s.lesions.data()[v]));
                let around = mean(&ring, &|v| m.of_label(s.labels.data()[v]));
                let from_truth = IntensityClass::of_means(lesion, around, tol);
                let recorded = record.intensity[&c];
                if from_truth != recorded {
                    mismatches.push(format!(
                        "seed {seed} {} at {} ({}), {}: truth's surroundings give {from_truth:?}, \
                         recorded {recorded:?}",
                        class.name(),
                        record.site,
                        record.lobe,
                        c.name()
                    ));
                }
            }
            checked.push(format!("seed {seed} {} at {}", class.name(), record.site));
        }
    }
    println!("posterior-fossa lesions checked: {checked:?}");
    assert!(
        checked.len() >= 5,
        "only {} posterior-fossa lesions in 40 seeds: the test checks too little",
        checked.len()
    );
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
