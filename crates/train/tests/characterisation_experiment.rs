//! The evaluation's characterisation experiment (experiment 2) with `tiny` networks on the
//! phantom (plumbing, not quality): classes from the samples' own choices, a classifier that
//! trains, saves, reloads and answers with one of its classes, and a row per question with the
//! classifier compared pairwise where its checkpoint exists.

use burn::tensor::Device;
use tasks::Catalogue;
use train::characterisation_experiment::{
    answer_class, classes_of, run, train, ClassifierJob, TrainedClassifier, FAMILIES,
};
use train::eval::EvalOptions;
use train::inference::AnswerOptions;
use train::model::ModelConfig;
use train::preprocess::Preprocessing;
use train::trainer::{self, JointSettings};
use vision::UnetConfig;

#[test]
fn a_class_is_the_right_option_of_every_choice() {
    let cat = Catalogue::phantom(6.0).unwrap();
    for family in FAMILIES {
        let samples: Vec<_> = (0..6u64)
            .filter_map(|seed| cat.sample(family, seed).ok())
            .collect();
        assert!(!samples.is_empty(), "{family}: no phantom sample");
        let classes = classes_of(&samples);
        for s in &samples {
            let class = answer_class(s).unwrap();
            assert!(
                classes.contains(&class),
                "{family}: {class:?} not in {classes:?}"
            );
            // The class names exactly the choices' answers, in order.
            let parts: Vec<&str> = class.split(" + ").collect();
            assert_eq!(parts.len(), s.expected.choices.len());
            for (p, c) in parts.iter().zip(&s.expected.choices) {
                assert_eq!(*p, c.answer);
            }
        }
        match family {
            "diffusion_restriction" | "enhancement" => assert_eq!(classes, ["no", "yes"]),
            "signal_intensity" => assert_eq!(classes.len(), 3, "{classes:?}"),
            _ => assert!(classes.len() >= 3, "{family}: {classes:?}"),
        }
    }
}

/// The signal question's classifier sees the one scan the question names (the scenario's
/// contrast), whatever the input names or the choice's wording.
#[test]
fn the_signal_classifier_reads_the_scan_the_question_names() {
    let cat = Catalogue::phantom(6.0).unwrap();
    let preprocessing = Preprocessing::at_spacing(8.0);
    let mut checked = 0;
    for seed in 0..12u64 {
        let Ok(s) = cat.sample("signal_intensity", seed) else {
            continue;
        };
        let Some(tasks::scenario::Key::Contrast(k)) = s.scenario.get("contrast") else {
            panic!("a signal sample without a contrast");
        };
        let (scans, _) = train::characterisation_experiment::classifier_input(
            &s,
            &preprocessing,
            &Device::flex(),
        )
        .unwrap();
        assert_eq!(
            scans.dims()[0],
            1,
            "seed {seed}: one scan of {}",
            s.inputs.len()
        );
        assert!(s.inputs.iter().any(|i| i.contrast == k));
        checked += usize::from(s.inputs.len() > 1);
    }
    assert!(checked > 0, "no sample with several scans to choose from");
}

#[test]
fn a_classifier_trains_reloads_and_is_compared_pairwise() {
    let device = Device::flex();
    let root = tempfile::tempdir().unwrap();
    let family = "enhancement";
    let job = ClassifierJob {
        family: family.into(),
        network: UnetConfig::preset("tiny").unwrap(),
        preprocessing: Preprocessing::at_spacing(8.0),
        anatomy: "phantom".into(),
        learning_rate: 1e-3,
        steps: 3,
        minutes: None,
        seed: 1,
        device: device.clone(),
        out: root.path().join(family),
        stop: None,
    };
    let mut steps = 0;
    let record = train(&job, |step, loss| {
        steps = step;
        assert!(loss.is_finite() && loss >= 0.0, "loss {loss}");
    })
    .unwrap();
    assert_eq!((record.steps, steps), (3, 3));
    assert_eq!(record.classes, ["no", "yes"]);
    // A raised stop flag (a signal) ends training at the next step, with its checkpoint.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = ClassifierJob {
        steps: 50,
        out: root.path().join("stopped"),
        stop: Some(stop.clone()),
        ..job.clone()
    };
    let record_stopped = train(&stopped, |step, _| {
        if step == 2 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert_eq!(record_stopped.steps, 2);
    TrainedClassifier::load(&root.path().join("stopped"), &device).unwrap();
    let classifier = TrainedClassifier::load(&root.path().join(family), &device).unwrap();
    assert_eq!(classifier.record, record);
    let sample = Catalogue::phantom(8.0).unwrap().sample(family, 4).unwrap();
    let answer = classifier.predict(&sample).unwrap();
    assert!(record.classes.contains(&answer), "{answer}");
    // A record that disagrees with its network is refused, naming the file.
    let path = root.path().join(family).join("classifier.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"yes\"", "\"yes\", \"maybe\"")).unwrap();
    let e = TrainedClassifier::load(&root.path().join(family), &device).unwrap_err();
    assert!(e.to_string().contains("classifier.json"), "{e}");
    std::fs::write(&path, text).unwrap();

    let mut settings = JointSettings::builtin().unwrap();
    settings.anatomy = "phantom".into();
    settings.tokenizer_samples = 30;
    let model =
        trainer::new_model(ModelConfig::builtin("tiny").unwrap(), &settings, 3, &device).unwrap();
    let options = EvalOptions {
        per_family: 0,
        seed: 0,
        anatomy: "phantom".into(),
        spacings_mm: vec![[8.0; 3]],
        answer: AnswerOptions {
            max_steps: 2,
            max_new_tokens: 16,
            ..AnswerOptions::default()
        },
        pictures: None,
        oracle_vision: false,
        threads: 0,
        families: Vec::new(),
    };
    let k = 2;
    let rows = run(
        &model,
        &options,
        k,
        Some((root.path(), &device)),
        |_, total, _| {
            assert_eq!(total, k * FAMILIES.len());
        },
    )
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.family.as_str()).collect();
    assert_eq!(names, FAMILIES);
    for r in &rows {
        assert_eq!(r.model_correct.len(), k, "{}", r.family);
        if r.family == family {
            assert_eq!(r.classifier_correct.len(), k);
            let acc = r.classifier_accuracy.unwrap();
            let mean = r.classifier_correct.iter().sum::<f64>() / k as f64;
            assert!((acc - mean).abs() < 1e-12);
            assert!(r.classifier_correct.iter().all(|&c| c == 0.0 || c == 1.0));
        } else {
            assert!(r.classifier.is_none() && r.classifier_accuracy.is_none());
        }
    }
    let md = train::characterisation_experiment::markdown(&rows);
    assert_eq!(md.matches("no classifier").count(), FAMILIES.len() - 1);
    for f in FAMILIES {
        assert!(md.contains(&format!("| {f} | {k} |")), "{md}");
    }
}
