//! The evaluation's segmentation experiment end to end with a `tiny` model and a `tiny` baseline
//! on the phantom (plumbing, not quality): a row per target in the fixed order, K samples each,
//! the baseline used where its checkpoint exists and paired statistics over exactly its samples.

use burn::tensor::Device;
use train::checkpoint::{self, TrainingRecord};
use train::eval::EvalOptions;
use train::inference::AnswerOptions;
use train::model::ModelConfig;
use train::segmentation_experiment::{baseline_dir, run, ANATOMY_TARGETS, LESION_TARGETS};
use train::trainer::{self, JointSettings};
use train::{BaselineSettings, BaselineTrainer};
use vision::UnetConfig;

#[test]
fn every_target_gets_k_samples_and_baselines_are_compared_pairwise() {
    let mut settings = JointSettings::builtin().unwrap();
    settings.anatomy = "phantom".into();
    settings.tokenizer_samples = 30;
    let device = Device::flex();
    let model =
        trainer::new_model(ModelConfig::builtin("tiny").unwrap(), &settings, 3, &device).unwrap();

    // An untrained baseline for "brain" only, at the model's coarse spacing.
    let root = tempfile::tempdir().unwrap();
    let mut bs = BaselineSettings::builtin().unwrap();
    bs.target = "brain".into();
    bs.spacing_mm = 8.0;
    bs.patch_shape = [24, 24, 24];
    let record = TrainingRecord {
        settings: bs,
        network: "tiny".into(),
        seed: 1,
        steps: 0,
        seconds: 0.0,
        recent_loss: None,
        anatomy: "phantom".into(),
    };
    let baseline = BaselineTrainer::new(&UnetConfig::preset("tiny").unwrap(), 1e-3, 2)
        .unwrap()
        .trained(record.clone());
    checkpoint::save(&baseline_dir(root.path(), "brain"), &baseline.net, &record).unwrap();

    let options = EvalOptions {
        per_family: 0,
        seed: 0,
        anatomy: "phantom".into(),
        spacings_mm: vec![[6.0; 3]],
        answer: AnswerOptions {
            max_steps: 2,
            max_new_tokens: 24,
            ..AnswerOptions::default()
        },
        pictures: None,
        oracle_vision: false,
        threads: 0,
        families: Vec::new(),
    };
    let k = 2;
    let mut calls = 0;
    let rows = run(
        &model,
        &options,
        k,
        Some((root.path(), &device)),
        |done, total, _| {
            calls += 1;
            assert_eq!(done, calls);
            assert_eq!(total, k * (ANATOMY_TARGETS.len() + LESION_TARGETS.len()));
        },
    )
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.target.as_str()).collect();
    let want: Vec<&str> = ANATOMY_TARGETS
        .iter()
        .chain(&LESION_TARGETS)
        .copied()
        .collect();
    assert_eq!(names, want);
    for r in &rows {
        assert_eq!(r.model_dice.len(), k, "{}", r.target);
        assert_eq!(r.samples.len(), k);
        assert!(r.model_dice.iter().all(|d| (0.0..=1.0).contains(d)));
        // Each sample asked for this target, in the family that segments it.
        for s in &r.samples {
            assert_eq!(s.family, r.family);
            let asked = &s.outputs[0].target;
            let name = r.target.replace('_', " ");
            assert!(
                asked.contains(&name) || (r.target == "wmh" && asked.contains("white")),
                "{} sample asked for {asked:?}",
                r.target
            );
        }
        if r.target == "brain" {
            let c = r.comparison.as_ref().expect("brain has a baseline");
            assert_eq!(r.baseline_dice.len(), k);
            assert_eq!(c.n, k);
            let mean_b = r.baseline_dice.iter().sum::<f64>() / k as f64;
            assert!((c.mean_b - mean_b).abs() < 1e-12);
            assert!((c.mean_a - r.model_mean_dice).abs() < 1e-12);
            assert!(r.baseline_dice.iter().all(|d| (0.0..=1.0).contains(d)));
        } else {
            assert!(r.comparison.is_none() && r.baseline_dice.is_empty() && r.baseline.is_none());
        }
    }
    let md = train::segmentation_experiment::markdown(&rows);
    assert_eq!(md.matches("no baseline").count(), rows.len() - 1);
    // Lesion classes read as words, not ids.
    assert!(
        md.contains("| acute infarct |") && !md.contains("acute_infarct"),
        "{md}"
    );

    // The targets' ϕ compared: a symmetric cosine matrix over the targets with samples, in
    // experiment order, with ones on the diagonal.
    let phi = train::segmentation_experiment::phi_similarity(&model, &options, 1).unwrap();
    assert!(phi.targets.len() >= 3, "{:?}", phi.targets);
    let order: Vec<usize> = phi
        .targets
        .iter()
        .map(|t| want.iter().position(|w| w == t).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    assert!(phi.samples.iter().all(|&n| n == 1));
    for (i, row) in phi.relative_distance.iter().enumerate() {
        assert_eq!(row[i], 0.0);
        for (j, d) in row.iter().enumerate() {
            assert!(*d >= 0.0 && (d - phi.relative_distance[j][i]).abs() < 1e-12);
        }
    }
    for (i, row) in phi.cosine.iter().enumerate() {
        assert_eq!(row.len(), phi.targets.len());
        assert!((row[i] - 1.0).abs() < 1e-9, "diagonal {}", row[i]);
        for (j, c) in row.iter().enumerate() {
            assert!((c - phi.cosine[j][i]).abs() < 1e-12);
            assert!((-1.0 - 1e-9..=1.0 + 1e-9).contains(c));
        }
    }
    assert!(phi.markdown().contains("| brain (1) |"));
}

#[test]
fn relative_distances_of_known_vectors() {
    use train::stats::relative_distances;
    // Lengths 5, 5 and 0: the scale is 10/3.
    let d = relative_distances(&[vec![3.0, 4.0], vec![-3.0, 4.0], vec![0.0, 0.0]]);
    assert!((d[0][1] - 6.0 / (10.0 / 3.0)).abs() < 1e-12);
    assert!((d[0][2] - 5.0 / (10.0 / 3.0)).abs() < 1e-12);
    assert_eq!(d[1][0], d[0][1]);
    assert_eq!(d[2][2], 0.0);
    assert_eq!(
        relative_distances(&[vec![0.0], vec![0.0]]),
        vec![vec![0.0; 2]; 2]
    );
}

#[test]
fn cosine_of_known_vectors() {
    use train::stats::cosine;
    assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f64.sqrt()).abs() < 1e-12);
    assert!((cosine(&[1.0, 2.0], &[-2.0, 1.0])).abs() < 1e-12);
    assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
}
