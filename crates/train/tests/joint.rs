//! The joint model end to end at `tiny` size on the phantom anatomy (4 mm): preprocessing round
//! trips, the model directory with its manifest, gradient flow from the Dice term into the
//! agent, and a short training run that resumes exactly.

use std::sync::atomic::AtomicBool;

use agent::AgentTokenizer;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use tasks::Catalogue;
use train::joint::{program_loss, sample_loss, sample_loss_with_extras, LossContext};
use train::model::{Model, ModelConfig, WeightsPrecision};
use train::phi_namer::{marker_names, PhiNamer};
use train::preprocess::{Modality, Preprocessing};
use train::trainer::{self, JointSettings, JointTrainer, SeedPurpose, TrainJob};
use voxel::metrics::dice;
use voxel::{Affine, Geometry, Image};

/// An ellipsoid (radii in mm) centred at the world origin, as a 0/1 image on `geometry`.
fn ellipsoid(geometry: &Geometry, radii_mm: [f64; 3]) -> Image {
    let [nx, ny, nz] = geometry.shape();
    let mut data = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = geometry.voxel_to_world([i as f64, j as f64, k as f64]);
                let r: f64 = (0..3).map(|a| (p[a] / radii_mm[a]).powi(2)).sum();
                data.push(if r <= 1.0 { 1.0 } else { 0.0 });
            }
        }
    }
    Image::new(geometry.clone(), data).unwrap()
}

fn round_trip_dice(geometry: &Geometry, working_mm: f64) -> f64 {
    let prep = Preprocessing::at_spacing(working_mm);
    let truth = ellipsoid(geometry, [38.0, 30.0, 26.0]);
    let grid = prep.grid(geometry).unwrap();
    let conformed = prep.carry_mask(&truth, &grid).unwrap();
    let back = prep.restore(&conformed, geometry).unwrap();
    dice(&back.threshold(0.5), &truth.threshold(0.5)).unwrap()
}

#[test]
fn conform_then_restore_keeps_a_mask_on_a_1mm_scan() {
    // LPS-ordered 1 mm grid centred on the origin: conform reorients and resamples to 2 mm.
    let n = 100usize;
    let c = (n as f64 - 1.0) / 2.0;
    let affine = Affine([
        [-1.0, 0.0, 0.0, c],
        [0.0, -1.0, 0.0, c],
        [0.0, 0.0, 1.0, -c],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let g = Geometry::new([n, n, n], affine).unwrap();
    let prep = Preprocessing::at_spacing(2.0);
    let grid = prep.grid(&g).unwrap();
    assert_eq!(grid.orientation().to_string(), "RAS");
    assert!(grid.spacing_mm().iter().all(|s| (s - 2.0).abs() < 1e-6));
    let d = round_trip_dice(&g, 2.0);
    assert!(d >= 0.99, "Dice after conform → restore {d}");
}

#[test]
fn conform_then_restore_keeps_a_mask_on_an_oblique_thick_slice_scan() {
    // 1 × 1 × 5 mm, rotated 20° about x and 12° about z: the thick axis keeps its 5 mm, the
    // in-plane axes go to 2 mm, and nothing is rotated.
    let (a, b) = (20f64.to_radians(), 12f64.to_radians());
    let rx = [
        [1.0, 0.0, 0.0],
        [0.0, a.cos(), -a.sin()],
        [0.0, a.sin(), a.cos()],
    ];
    let rz = [
        [b.cos(), -b.sin(), 0.0],
        [b.sin(), b.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let spacing = [1.0, 1.0, 5.0];
    let shape = [110usize, 110, 20];
    let mut m = [[0.0; 4]; 4];
    for r in 0..3 {
        for col in 0..3 {
            let rot: f64 = (0..3).map(|k| rz[r][k] * rx[k][col]).sum();
            m[r][col] = rot * spacing[col];
        }
    }
    m[3][3] = 1.0;
    // Centre the grid on the origin.
    let centre: Vec<f64> = (0..3).map(|a| (shape[a] as f64 - 1.0) / 2.0).collect();
    for row in m.iter_mut().take(3) {
        row[3] = -(0..3).map(|col| row[col] * centre[col]).sum::<f64>();
    }
    let g = Geometry::new(shape, Affine(m)).unwrap();
    let grid = Preprocessing::at_spacing(2.0).grid(&g).unwrap();
    let mut s = grid.spacing_mm();
    s.sort_by(f64::total_cmp);
    assert!((s[0] - 2.0).abs() < 1e-6 && (s[1] - 2.0).abs() < 1e-6 && (s[2] - 5.0).abs() < 1e-6);
    let d = round_trip_dice(&g, 2.0);
    assert!(d >= 0.99, "Dice after conform → restore {d}");
}

#[test]
fn normalisation_follows_the_modality() {
    let g = Geometry::from_spacing([4, 4, 4], [1.0; 3], [0.0; 3]).unwrap();
    let prep = Preprocessing::at_spacing(1.0);
    let hu: Vec<f32> = (0..64).map(|i| -1000.0 + 50.0 * i as f32).collect();
    let ct = prep
        .normalise(&Image::new(g.clone(), hu.clone()).unwrap(), Modality::Ct)
        .unwrap();
    for (&h, &v) in hu.iter().zip(ct.data()) {
        let want = ((f64::from(h) + 100.0) / 300.0).clamp(0.0, 1.0) as f32;
        assert!((v - want).abs() < 1e-6, "{h} HU → {v}, want {want}");
    }
    let adc = prep
        .normalise(&Image::filled(g.clone(), 1.75f32), Modality::Adc)
        .unwrap();
    assert!(adc.data().iter().all(|&v| (v - 0.5).abs() < 1e-6));
    assert_eq!(Modality::guess(&Image::new(g, hu).unwrap()), Modality::Ct);
    assert_eq!(Modality::from_name("CT"), Modality::Ct);
    assert_eq!(Modality::from_name("T1w post-contrast"), Modality::Mr);
}

fn tiny_settings() -> JointSettings {
    let mut s = JointSettings::builtin().unwrap();
    s.anatomy = "phantom".into();
    s.tokenizer_samples = 40;
    s.accumulation = 2;
    s.validate_every = 0;
    s.learning_rate = 1e-3;
    s.joint_target_fraction = 0.0;
    s
}

/// The loss context of the gradient tests: λ 0.1, no BCE.
fn loss_context<'a>(
    net: &'a train::JointNet,
    model: &'a Model,
    phi_namer: Option<(&'a PhiNamer, f64)>,
) -> LossContext<'a> {
    LossContext {
        net,
        tokenizer: &model.tokenizer,
        preprocessing: &model.config.preprocessing,
        dice_weight: 0.1,
        bce_weight: 0.0,
        lesion_positive_weight_max: 1.0,
        side_gate_weight: 0.0,
        phi_namer,
    }
}

fn tiny_model(settings: &JointSettings) -> Model {
    let config = ModelConfig::builtin("tiny").unwrap();
    trainer::new_model(config, settings, 3, &Device::flex()).unwrap()
}

#[test]
fn model_configs_derive_the_shared_widths() {
    for name in ["tiny", "small"] {
        let c = ModelConfig::builtin(name).unwrap();
        assert_eq!(c.vision.embedding_dim, c.agent.d_model, "{name}");
        assert_eq!(c.vision.phi_dim, runtime::PHI_DIM);
        assert_eq!(c.agent.phi_dim, runtime::PHI_DIM);
    }
    let mut bad = ModelConfig::builtin("tiny").unwrap();
    bad.vision.embedding_dim += 1;
    let e = bad.validate("test").unwrap_err().to_string();
    assert!(e.contains("d_model"), "{e}");
}

#[test]
fn a_saved_model_reloads_with_identical_outputs_and_bad_files_are_named() {
    let tok = AgentTokenizer::train(
        ["let e = encode(scan_1 <mod>); read(volume(generate(e <mod>)));"],
        300,
    )
    .unwrap();
    let device = Device::flex();
    let model = Model::new(ModelConfig::builtin("tiny").unwrap(), tok, 11, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    let manifest = model.save(&path).unwrap();
    assert_eq!(manifest.weights_id().len(), 12);
    let (loaded, again) = Model::load(&path, &device).unwrap();
    assert_eq!(manifest, again);

    let scans = Tensor::<5>::from_data(
        TensorData::new(
            (0..16 * 16 * 16)
                .map(|i| (i % 7) as f32 / 7.0)
                .collect::<Vec<_>>(),
            [1, 1, 16, 16, 16],
        ),
        &device,
    );
    let phi = Tensor::<2>::from_data(
        TensorData::new(
            (0..32).map(|i| i as f32 / 32.0).collect::<Vec<_>>(),
            [1, 32],
        ),
        &device,
    );
    let a = model
        .net
        .vision
        .forward(scans.clone(), [4.0; 3], &phi)
        .unwrap();
    let b = loaded.net.vision.forward(scans, [4.0; 3], &phi).unwrap();
    let (a, b) = (
        a.probabilities.into_data().try_to_vec::<f32>().unwrap(),
        b.probabilities.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(a, b);
    let tokens = loaded.tokenizer.encode_text("read(volume(m))").unwrap();
    let x1 = model
        .net
        .agent
        .input_embeddings(&tokens, 1, tokens.len(), &[], None)
        .unwrap();
    let x2 = loaded
        .net
        .agent
        .input_embeddings(&tokens, 1, tokens.len(), &[], None)
        .unwrap();
    let h1 = model.net.agent.forward_hidden(x1, None).unwrap();
    let h2 = loaded.net.agent.forward_hidden(x2, None).unwrap();
    let h1 = h1.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(h1, h2.into_data().try_to_vec::<f32>().unwrap());

    // Stored as f16 (a shipped model): half the bytes, the same network to f16 rounding.
    let half = dir.path().join("half");
    model.save_as(&half, WeightsPrecision::F16).unwrap();
    let full_bytes = std::fs::metadata(path.join("weights.safetensors"))
        .unwrap()
        .len();
    let half_bytes = std::fs::metadata(half.join("weights.safetensors"))
        .unwrap()
        .len();
    assert!(
        (half_bytes as f64) < 0.55 * full_bytes as f64,
        "f16 weights {half_bytes} bytes vs f32 {full_bytes}"
    );
    let (from_half, _) = Model::load(&half, &device).unwrap();
    let x3 = from_half
        .net
        .agent
        .input_embeddings(&tokens, 1, tokens.len(), &[], None)
        .unwrap();
    let h3 = from_half.net.agent.forward_hidden(x3, None).unwrap();
    let h3 = h3.into_data().try_to_vec::<f32>().unwrap();
    let worst = h1
        .iter()
        .zip(&h3)
        .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst < 2e-2, "f16 model differs by {worst}");

    // A truncated weights file, an edited config and a missing tokenizer are named.
    let weights = path.join("weights.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let e = Model::load(&path, &device).unwrap_err().to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("bytes"),
        "{e}"
    );
    std::fs::write(&weights, &bytes).unwrap();
    let config = path.join("model.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"tiny\"", "\"tinx\"")).unwrap();
    let e = Model::load(&path, &device).unwrap_err().to_string();
    assert!(e.contains("model.json") && e.contains("SHA-256"), "{e}");
    std::fs::write(&config, text).unwrap();
    std::fs::remove_file(path.join("tokenizer.json")).unwrap();
    let e = Model::load(&path, &device).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");
}

#[test]
fn the_dice_term_alone_trains_the_phi_head_and_the_decoder() {
    let settings = tiny_settings();
    let model = tiny_model(&settings);
    let net = model.net.clone().train();
    let cat = Catalogue::phantom(4.0).unwrap();
    let sample = cat.sample("segment_anatomy", 5).unwrap();
    let ctx = loss_context(&net, &model, None);
    let loss = sample_loss(&ctx, &sample).unwrap();
    assert!(loss.generated >= 1, "a segmentation program generates");
    let dice = loss.dice_loss.expect("a Dice term");
    let grads = dice.backward();
    let norm = |t: Option<Tensor<2>>| -> f64 {
        let v = t
            .expect("a gradient")
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()
    };
    let phi_head = norm(net.agent.phi_head.proj.weight.val().grad(&grads));
    let embed = norm(net.agent.decoder.embed.weight.val().grad(&grads));
    assert!(
        phi_head.is_finite() && phi_head > 1e-8,
        "ϕ head gradient {phi_head}"
    );
    assert!(
        embed.is_finite() && embed > 1e-10,
        "decoder embedding gradient {embed}"
    );
}

/// `phi_learning_rate` gives the ϕ head its own Adam rate: with the agent's rate near zero,
/// the decoder stays put while the head moves by about its rate per step.
#[test]
fn the_phi_head_learns_at_its_own_rate() {
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.0;
    settings.joint_families = [("segment_anatomy".to_string(), 1.0)].into_iter().collect();
    settings.accumulation = 1;
    settings.learning_rate = 1e-9;
    settings.phi_learning_rate = Some(1e-2);
    let model = tiny_model(&settings);
    let device = Device::flex();
    let before = model.net.clone();
    let mut t = JointTrainer::new(model, settings, 3, &device).unwrap();
    let root = tempfile::tempdir().unwrap();
    let job = TrainJob {
        out: root.path().join("run"),
        minutes: None,
        steps: Some(2),
    };
    trainer::train(&mut t, &job, &AtomicBool::new(false), |_| {}).unwrap();
    let after = t.model().net;
    let largest_change = |a: Tensor<2>, b: Tensor<2>| -> f64 {
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        a.iter()
            .zip(&b)
            .map(|(x, y)| f64::from((x - y).abs()))
            .fold(0.0, f64::max)
    };
    let phi = largest_change(
        before.agent.phi_head.proj.weight.val(),
        after.agent.phi_head.proj.weight.val(),
    );
    let embed = largest_change(
        before.agent.decoder.embed.weight.val(),
        after.agent.decoder.embed.weight.val(),
    );
    assert!(phi > 1e-3 && phi < 0.05, "ϕ head moved {phi}");
    assert!(embed < 1e-7, "decoder embedding moved {embed}");
    let mut bad = JointSettings::builtin().unwrap();
    bad.phi_learning_rate = Some(0.0);
    assert!(bad
        .validate("test")
        .unwrap_err()
        .to_string()
        .contains("phi_learning_rate"));
    let mut bad = JointSettings::builtin().unwrap();
    bad.phi_name_learning_rate = Some(-1.0);
    let e = bad.validate("test").unwrap_err().to_string();
    assert!(e.contains("phi_name_learning_rate"), "{e}");
    // The namer's rate keeps its ratio to the agent's as the plateau rule lowers it.
    let s = JointSettings::builtin().unwrap();
    let ratio = s.phi_name_learning_rate.unwrap() / s.learning_rate;
    assert!((s.phi_name_rate(s.learning_rate / 2.0) - ratio * s.learning_rate / 2.0).abs() < 1e-12);
}

#[test]
fn program_pretraining_trains_the_agent_alone_on_oracle_feedback() {
    let settings = tiny_settings();
    let model = tiny_model(&settings);
    let net = model.net.clone().train();
    let cat = Catalogue::phantom(4.0).unwrap();
    let sample = cat.sample("volume", 2).unwrap();
    let ctx = loss_context(&net, &model, None);
    let loss = program_loss(&ctx, &sample).unwrap();
    // The ground-truth program runs without an error when a perfect network answers it.
    assert_eq!(loss.step_errors, 0);
    assert_eq!(loss.generated, 0);
    assert!(loss.dice_loss.is_none());
    // An untrained decoder is near uniform over its vocabulary: ln(vocab) ± a little.
    let uniform = (model.config.agent.vocab_size as f64).ln();
    assert!(
        (loss.cross_entropy - uniform).abs() < 0.5,
        "cross-entropy {} vs ln(vocab) {uniform}",
        loss.cross_entropy
    );
    let grads = loss.total.backward();
    let embed = net.agent.decoder.embed.weight.val().grad(&grads);
    assert!(embed.is_some(), "the agent learns");
    let vision = burn::optim::GradientsParams::from_grads(grads, &net.vision);
    assert!(vision.is_empty(), "the vision network is not in the graph");
}

/// The naming probe: a zero namer predicts every token alike (its loss is ln(vocabulary)
/// exactly), a trained one reaches the ϕ head and the decoder through ϕ and not the vision
/// network, and encoder markers have no name.
#[test]
fn naming_the_target_from_phi_trains_the_phi_head_and_the_decoder() {
    let settings = tiny_settings();
    let model = tiny_model(&settings);
    let device = Device::flex();
    let vocab = model.config.agent.vocab_size;
    let zero = PhiNamer::new(&model.config.agent, &device);
    let phis = Tensor::<2>::ones([3, model.config.agent.phi_dim], &device);
    let names = vec![vec![5, 9], Vec::new(), vec![7]];
    let loss = train::joint::scalar(zero.loss(phis.clone(), &names).unwrap().unwrap()).unwrap();
    assert!(
        (loss - (vocab as f64).ln()).abs() < 1e-5,
        "{loss} vs ln {vocab}"
    );
    assert!(zero
        .loss(phis.clone(), &[vec![], vec![], vec![]])
        .unwrap()
        .is_none());
    assert!(zero.loss(phis, &names[..2]).is_err(), "one name per row");

    // A namer with non-zero weights, as after a few steps.
    let namer = PhiNamer {
        proj: burn::nn::LinearConfig::new(model.config.agent.phi_dim, vocab).init(&device),
    };
    let net = model.net.clone().train();
    let namer = namer.train();
    let cat = Catalogue::phantom(4.0).unwrap();
    let sample = cat.sample("segment_anatomy", 5).unwrap();
    let ctx = loss_context(&net, &model, Some((&namer, 0.5)));
    let loss = program_loss(&ctx, &sample).unwrap();
    assert!(
        loss.phi_name.is_some_and(|v| v > 0.0),
        "a segmentation program names its target"
    );
    let total = train::joint::scalar(loss.total.clone()).unwrap();
    assert!(
        (total - (loss.cross_entropy + 0.5 * loss.phi_name.unwrap_or(0.0))).abs() < 1e-4,
        "total {total} = ce {} + 0.5 × name {:?}",
        loss.cross_entropy,
        loss.phi_name
    );
    let grads = loss.total.backward();
    let phi_head = net.agent.phi_head.proj.weight.val().grad(&grads);
    assert!(
        phi_head.is_some(),
        "the ϕ head learns from program-only samples"
    );
    assert!(
        namer.proj.weight.val().grad(&grads).is_some(),
        "the namer learns"
    );
    let vision = burn::optim::GradientsParams::from_grads(grads, &net.vision);
    assert!(vision.is_empty(), "the vision network is not in the graph");

    // The names are the description's words as the comment spells them; an encoder has none.
    let mods: Vec<&tasks::program::ModMeaning> = sample.mods().collect();
    let names = marker_names(&model.tokenizer, &mods).unwrap();
    for (m, n) in mods.iter().zip(&names) {
        match m {
            tasks::program::ModMeaning::Encode { .. } => assert!(n.is_empty()),
            tasks::program::ModMeaning::Generate { target } => {
                let words = model.tokenizer.decode(n).unwrap();
                assert_eq!(words.trim(), target.description);
            }
        }
    }

    // Joint samples carry the same term, from the ϕ that went to the vision network.
    let joint = sample_loss(&ctx, &sample).unwrap();
    assert!(joint.phi_name.is_some_and(|v| v > 0.0) && joint.generated >= 1);
    // Only a program with a generator has a name to read.
    let volume = cat.sample("volume", 2).unwrap();
    let named = volume
        .mods()
        .any(|m| matches!(m, tasks::program::ModMeaning::Generate { .. }));
    assert_eq!(
        program_loss(&ctx, &volume).unwrap().phi_name.is_some(),
        named
    );
}

#[test]
fn the_program_only_choice_is_a_fraction_of_the_samples_and_repeatable() {
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.3;
    let chosen: Vec<bool> = (0..10_000)
        .map(|k| trainer::is_program_only(&settings, 11, k))
        .collect();
    let share = chosen.iter().filter(|&&c| c).count() as f64 / chosen.len() as f64;
    assert!((share - 0.3).abs() < 0.02, "share {share}");
    let again: Vec<bool> = (0..10_000)
        .map(|k| trainer::is_program_only(&settings, 11, k))
        .collect();
    assert_eq!(chosen, again);
    settings.program_only_fraction = 0.0;
    assert!((0..1000).all(|k| !trainer::is_program_only(&settings, 11, k)));
    settings.program_only_fraction = 1.5;
    let e = settings.validate("test").unwrap_err().to_string();
    assert!(e.contains("program_only_fraction"), "{e}");
}

#[test]
fn seeds_of_training_validation_and_evaluation_never_meet() {
    for i in 0..2000u64 {
        let t = trainer::sample_seed(SeedPurpose::Training, 7, i);
        let v = trainer::sample_seed(SeedPurpose::Validation, 7, i);
        let e = trainer::sample_seed(SeedPurpose::Evaluation, 7, i);
        assert_eq!(trainer::seed_purpose(t), 0);
        assert_eq!(trainer::seed_purpose(v), 1);
        assert_eq!(trainer::seed_purpose(e), 2);
    }
}

#[test]
fn training_lowers_the_loss_and_a_resumed_run_equals_an_uninterrupted_one() {
    // Half the samples are program pretraining ones, so both paths resume exactly.
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.5;
    settings.weight_average_decay = Some(0.9);
    let model = tiny_model(&settings);
    let device = Device::flex();
    let stop = AtomicBool::new(false);
    let root = tempfile::tempdir().unwrap();

    let whole = root.path().join("whole");
    let mut t = JointTrainer::new(model.clone(), settings.clone(), 3, &device).unwrap();
    let job = |out: &std::path::Path, steps| TrainJob {
        out: out.to_path_buf(),
        minutes: None,
        steps: Some(steps),
    };
    let uninterrupted = trainer::train(&mut t, &job(&whole, 12), &stop, |_| {}).unwrap();
    assert_eq!(uninterrupted.rows.len(), 12);
    let whole_trainer = t;

    let split = root.path().join("split");
    let mut t = JointTrainer::new(model, settings, 3, &device).unwrap();
    let first = trainer::train(&mut t, &job(&split, 8), &stop, |_| {}).unwrap();
    drop(t);
    let mut resumed = JointTrainer::resume(&split, &device).unwrap();
    assert_eq!(resumed.state.step, 8);
    let second = trainer::train(&mut resumed, &job(&split, 12), &stop, |_| {}).unwrap();
    let losses: Vec<f64> = first
        .rows
        .iter()
        .chain(&second.rows)
        .map(|r| r.loss)
        .collect();
    for (a, b) in losses.iter().zip(uninterrupted.rows.iter().map(|r| r.loss)) {
        assert!((a - b).abs() < 1e-5, "resumed {a} vs uninterrupted {b}");
    }
    // The moving average of the weights resumes exactly too: started after step 1, updated at
    // each of the 11 steps since, and saved in the checkpoint as a model of its own.
    let embedding = |m: &Model| m.net.vision.embedding.weight.val();
    let average_whole = embedding(&whole_trainer.validated_model());
    let average_split = embedding(&resumed.validated_model());
    average_split
        .clone()
        .into_data()
        .assert_approx_eq::<f32>(&average_whole.clone().into_data(), Default::default());
    let progress = resumed.state.average.expect("the run keeps an average");
    assert_eq!((progress.started_at_step, progress.updates), (1, 11));
    let current = embedding(&resumed.model());
    let moved: f32 = (current - average_split).abs().max().into_scalar();
    assert!(moved > 0.0, "the average is not the current weights");
    let (saved, _) = Model::load(
        &split.join("checkpoint").join(trainer::AVERAGE_DIR),
        &device,
    )
    .unwrap();
    embedding(&saved)
        .into_data()
        .assert_approx_eq::<f32>(&average_whole.into_data(), Default::default());
    let csv = std::fs::read_to_string(split.join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13, "header and one row per step");
    // masks.csv: one row per scored `generate` call, the same calls whether resumed or not.
    let mask_rows = |dir: &std::path::Path| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(dir.join("masks.csv")).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(trainer::MASKS_CSV_HEADER));
        lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let split_masks = mask_rows(&split);
    let generated: f64 = uninterrupted.rows.iter().map(|r| r.generated * 2.0).sum();
    assert_eq!(
        split_masks.len() as f64,
        generated,
        "rows = generate calls scored"
    );
    assert!(!split_masks.is_empty(), "half the samples are joint ones");
    let identity = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter().map(|r| r[..6].to_vec()).collect()
    };
    assert_eq!(identity(&split_masks), identity(&mask_rows(&whole)));
    for row in &split_masks {
        let dice: f64 = row[6].parse().unwrap();
        assert!((0.0..=1.0).contains(&dice), "{row:?}");
        assert!(row[0].parse::<u64>().unwrap() <= 12);
    }
    // New settings replace the run's from the next step; the progress carries over. (The
    // checkpoint is given a best validation loss and a plateau count, as a validating run has.)
    let state_path = split.join("checkpoint").join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["best_validation"] = serde_json::json!(0.5);
    state["plateau"] = serde_json::json!(2);
    std::fs::write(&state_path, state.to_string()).unwrap();
    let mut changed = resumed.state.settings.clone();
    changed.program_only_fraction = 0.25;
    changed.weight_average_decay = None;
    let learning_rate = resumed.state.learning_rate;
    drop(resumed);
    let again = JointTrainer::resume_with(&split, &device, Some(changed.clone())).unwrap();
    assert_eq!(again.state.step, 12);
    assert_eq!(again.state.learning_rate, learning_rate);
    assert_eq!(again.state.settings, changed);
    assert_eq!(again.state.best_validation, Some(0.5));
    assert_eq!(again.state.plateau, 2);
    // Settings without an average drop the checkpoint's.
    assert_eq!(again.state.average, None);
    drop(again);
    // A new learning rate restarts the schedule at it.
    changed.learning_rate = 4e-4;
    let restarted = JointTrainer::resume_with(&split, &device, Some(changed.clone())).unwrap();
    assert_eq!(restarted.state.learning_rate, 4e-4);
    assert_eq!(restarted.state.plateau, 0);
    assert_eq!(restarted.state.best_validation, None);
    drop(restarted);
    changed.program_only_fraction = 2.0;
    assert!(JointTrainer::resume_with(&split, &device, Some(changed)).is_err());
    // The checkpoint keeps the training-only namer (weights and Adam state), never the model.
    let checkpoint = split.join("checkpoint");
    assert!(checkpoint.join(train::phi_namer::NAMER_FILE).is_file());
    assert!(checkpoint.join("phi-namer-optimizer.bin").is_file());
    assert!(!checkpoint
        .join("model")
        .join(train::phi_namer::NAMER_FILE)
        .exists());
    let names: Vec<Option<f64>> = uninterrupted.rows.iter().map(|r| r.phi_name).collect();
    assert!(
        names.iter().flatten().any(|&n| n > 0.0),
        "the shipped settings name targets from ϕ: {names:?}"
    );

    let mean = |r: &[train::trainer::LogRow]| {
        r.iter().map(|x| x.cross_entropy).sum::<f64>() / r.len() as f64
    };
    let early = mean(&uninterrupted.rows[..3]);
    let late = mean(&uninterrupted.rows[9..]);
    assert!(
        late < early,
        "cross-entropy fell from {early:.3} to {late:.3}"
    );
}

#[test]
fn an_answer_that_fills_the_agents_context_ends_instead_of_failing() {
    // An untrained agent writes until its context is full; wherever that happens (opening a
    // step, inside one, or in the feedback), the answer ends with what it has. It once failed
    // with `SequenceTooLong` when the context filled between two steps, which stopped a
    // training run at its free-running validation.
    let settings = tiny_settings();
    let device = Device::flex();
    let base = tiny_model(&settings);
    let sampler =
        trainer::JointSampler::new(&settings, base.config.preprocessing.spacing_mm, 3).unwrap();
    let sample = (0..20)
        .find_map(|i| sampler.sample(SeedPurpose::Validation, i).unwrap())
        .unwrap();
    let initial = agent::sequence::AgentSequence::initial(
        &base.tokenizer,
        &sample.prompt.text,
        &train::joint::volume_infos(&sample),
    )
    .unwrap()
    .len();
    let options = train::inference::AnswerOptions {
        max_steps: 12,
        max_new_tokens: 6,
        ..Default::default()
    };
    for room in 2..26 {
        let mut config = base.config.clone();
        config.agent.max_seq_len = initial + room;
        let model = Model::new(config, base.tokenizer.clone(), 3, &device).unwrap();
        let result = train::eval::evaluate_sample(&model, &sample, "", &options, None, true)
            .unwrap_or_else(|e| panic!("{room} tokens of room: {e}"));
        assert!(!result.passed);
    }
}

#[test]
fn weight_averages_are_exact_and_refuse_networks_of_other_shapes() {
    use train::averaging::{effective_decay, lerp, mean};
    let settings = tiny_settings();
    let device = Device::flex();
    let config = ModelConfig::builtin("tiny").unwrap();
    let a = trainer::new_model(config.clone(), &settings, 3, &device).unwrap();
    let b = trainer::new_model(config, &settings, 4, &device).unwrap();
    let embedding = |net: &train::JointNet| net.vision.embedding.weight.val().into_data();
    let (ea, eb) = (
        a.net.vision.embedding.weight.val(),
        b.net.vision.embedding.weight.val(),
    );
    // The ends are the networks themselves, bit for bit.
    assert_eq!(
        embedding(&lerp(a.net.clone(), &b.net, 0.0).unwrap()),
        ea.clone().into_data()
    );
    assert_eq!(
        embedding(&lerp(a.net.clone(), &b.net, 1.0).unwrap()),
        eb.clone().into_data()
    );
    let want = ea.clone().add(eb.clone()).div_scalar(2.0).into_data();
    embedding(&mean(&[a.net.clone(), b.net.clone()]).unwrap())
        .assert_approx_eq::<f32>(&want, Default::default());
    // A quarter of the way, on a parameter of the agent too.
    let quarter = lerp(a.net.clone(), &b.net, 0.25).unwrap();
    let (pa, pb) = (
        a.net.agent.phi_head.proj.weight.val(),
        b.net.agent.phi_head.proj.weight.val(),
    );
    let want = pa
        .clone()
        .mul_scalar(0.75)
        .add(pb.mul_scalar(0.25))
        .into_data();
    quarter
        .agent
        .phi_head
        .proj
        .weight
        .val()
        .into_data()
        .assert_approx_eq::<f32>(&want, Default::default());
    assert!(lerp(a.net.clone(), &b.net, 1.5).is_err());
    assert!(mean(&[]).is_err());

    let small = trainer::new_model(
        ModelConfig::builtin("small").unwrap(),
        &settings,
        3,
        &device,
    )
    .unwrap();
    let err = lerp(a.net, &small.net, 0.5).unwrap_err().to_string();
    assert!(err.contains("different shapes"), "{err}");

    // The average forgets its start quickly, then decays at the nominal rate.
    assert!((effective_decay(0.995, 0) - 0.1).abs() < 1e-12);
    assert!((effective_decay(0.995, 90) - 0.91).abs() < 1e-12);
    assert_eq!(effective_decay(0.995, 10_000), 0.995);
}

#[test]
fn free_running_validation_keeps_the_best_model_and_old_logs_get_the_new_header() {
    let mut settings = tiny_settings();
    settings.validate_every = 2;
    settings.validation_samples = 2;
    settings.free_running_samples = 2;
    settings.program_only_fraction = 1.0;
    let model = tiny_model(&settings);
    let device = Device::flex();
    let stop = AtomicBool::new(false);
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let job = |steps| TrainJob {
        out: run.clone(),
        minutes: None,
        steps: Some(steps),
    };
    let mut t = JointTrainer::new(model, settings, 3, &device).unwrap();
    let first = trainer::train(&mut t, &job(2), &stop, |_| {}).unwrap();
    let success = first.rows[1].free_running.expect("step 2 validates");
    assert!((0.0..=1.0).contains(&success));
    assert!(first.rows[0].free_running.is_none());
    // The first validation is the best so far: its model is kept with its step.
    let best = run.join(trainer::BEST_DIR);
    Model::load(&best.join("model"), &device).unwrap();
    let note: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(best.join("best.json")).unwrap()).unwrap();
    assert_eq!(note["step"], 2);
    assert_eq!(t.state.best_free_running, Some(success));

    // A log written before the free-running column existed gets the current header on resume.
    let csv = run.join("train.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let old_header = trainer::CSV_HEADER.trim_end_matches(",free_running_success");
    std::fs::write(&csv, text.replacen(trainer::CSV_HEADER, old_header, 1)).unwrap();
    drop(t);
    let mut resumed = JointTrainer::resume(&run, &device).unwrap();
    trainer::train(&mut resumed, &job(3), &stop, |_| {}).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().next(), Some(trainer::CSV_HEADER));
    assert_eq!(text.lines().count(), 4, "header and one row per step");
    // The loss chart draws the free-running curve from that column.
    let png = root.path().join("loss.png");
    train::plot::loss_png(&csv, &png).unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
}

#[test]
fn joint_samples_are_drawn_from_their_own_family_weights() {
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.5;
    settings.joint_families = [("skull_strip".to_string(), 1.0)].into_iter().collect();
    let sampler = trainer::JointSampler::new(&settings, 4.0, 11).unwrap();
    let (mut joint, mut program_other) = (0, 0);
    for k in 0..40 {
        let program_only = trainer::is_program_only(&settings, 11, k);
        let Some(s) = sampler.training_sample(k, program_only).unwrap() else {
            continue;
        };
        if program_only {
            program_other += usize::from(s.family != "skull_strip");
        } else {
            assert_eq!(s.family, "skull_strip", "joint sample {k}");
            joint += 1;
        }
    }
    assert!(joint > 5, "{joint} joint samples");
    assert!(program_other > 5, "program-only samples keep every family");
    // Without the table, joint samples are drawn like the others.
    settings.joint_families.clear();
    let plain = trainer::JointSampler::new(&settings, 4.0, 11).unwrap();
    let a = plain.training_sample(3, false).unwrap().map(|s| s.prompt);
    let b = plain
        .sample(SeedPurpose::Training, 3)
        .unwrap()
        .map(|s| s.prompt);
    assert_eq!(a, b);
    settings.joint_families = [("no_such_family".to_string(), 1.0)].into_iter().collect();
    let e = trainer::JointSampler::new(&settings, 4.0, 11)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("joint_families") && e.contains("no_such_family"),
        "{e}"
    );
}

#[test]
fn a_share_of_joint_samples_asks_for_the_focus_targets() {
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.5;
    settings.joint_families = [("skull_strip".to_string(), 1.0)].into_iter().collect();
    settings.joint_targets = [
        ("white matter".to_string(), 1.0),
        ("lateral ventricle".to_string(), 1.0),
    ]
    .into_iter()
    .collect();
    settings.joint_target_fraction = 0.5;
    let sampler = trainer::JointSampler::new(&settings, 4.0, 11).unwrap();
    let cat = &sampler.catalogues()[0];
    let (mut focused, mut family_drawn) = (0, 0);
    let mut names = std::collections::BTreeSet::new();
    for k in 0..60 {
        let program_only = trainer::is_program_only(&settings, 11, k);
        let Some(s) = sampler.training_sample(k, program_only).unwrap() else {
            continue;
        };
        if program_only {
            continue;
        }
        match s.family.as_str() {
            "skull_strip" => family_drawn += 1,
            "segment_anatomy" => {
                let name = ["white matter", "lateral ventricle"]
                    .into_iter()
                    .find(|n| cat.scenario_asks_for(&s.scenario, n));
                names.insert(name.expect("a focus target"));
                focused += 1;
            }
            other => panic!("joint sample {k} of family {other}"),
        }
    }
    assert!(
        focused >= 5 && family_drawn >= 5,
        "{focused} focused, {family_drawn} drawn by family"
    );
    assert_eq!(names.len(), 2, "both targets are asked for: {names:?}");
    // The same index gives the same sample (a resumed run draws the same stream).
    let again = trainer::JointSampler::new(&settings, 4.0, 11).unwrap();
    for k in 0..8 {
        let p = trainer::is_program_only(&settings, 11, k);
        let a = sampler.training_sample(k, p).unwrap().map(|s| s.prompt);
        let b = again.training_sample(k, p).unwrap().map(|s| s.prompt);
        assert_eq!(a, b);
    }
    settings.joint_targets = [("no such structure".to_string(), 1.0)]
        .into_iter()
        .collect();
    let e = trainer::JointSampler::new(&settings, 4.0, 11)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("joint_targets") && e.contains("no such structure"),
        "{e}"
    );
    settings.joint_targets.clear();
    let e = settings.validate("test").unwrap_err().to_string();
    assert!(e.contains("joint_targets"), "{e}");
}

/// The settings of the extra-target tests: white matter and glioma, two extras per sample.
fn extra_target_settings() -> JointSettings {
    let mut settings = tiny_settings();
    settings.joint_targets = [
        ("white matter".to_string(), 1.0),
        ("glioma".to_string(), 1.0),
    ]
    .into_iter()
    .collect();
    settings.extra_targets = 2;
    settings
}

/// Extra targets are generated from the program's own encoding: each adds one scored mask
/// whose truth is the target in the sample's subject (a white matter of the subject's volume;
/// an empty glioma in a subject without one), adds its Dice to the loss and nothing to the
/// cross-entropy, and reaches the ϕ head.
#[test]
fn extra_targets_are_scored_masks_of_the_programs_encoding() {
    let settings = extra_target_settings();
    let model = tiny_model(&settings);
    let net = model.net.clone().train();
    let ctx = loss_context(&net, &model, None);
    let sampler = trainer::JointSampler::new(&settings, 4.0, 5).unwrap();
    let cat = &sampler.catalogues()[0];
    let sample = cat.sample("segment_anatomy", 5).unwrap();
    assert!(
        sample.truth.session(0).unwrap().records.is_empty(),
        "a healthy subject"
    );
    let extras = sampler.extra_targets(&sample, 0);
    let names: Vec<&str> = extras.iter().map(|t| t.description.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|n| n.contains("white matter")) && names.contains(&"glioma"),
        "{names:?}"
    );

    let plain = sample_loss(&ctx, &sample).unwrap();
    let loss = sample_loss_with_extras(&ctx, &sample, &extras).unwrap();
    assert_eq!(loss.generated, plain.generated + 2);
    assert!(
        (loss.cross_entropy - plain.cross_entropy).abs() < 1e-6,
        "no cross-entropy on the extra steps: {} vs {}",
        loss.cross_entropy,
        plain.cross_entropy
    );
    let extra: Vec<_> = loss.masks.iter().filter(|m| m.extra).collect();
    assert_eq!(extra.len(), 2);
    assert!(loss.masks.iter().filter(|m| !m.extra).count() == plain.masks.len());
    let glioma = extra.iter().find(|m| m.target == "glioma").unwrap();
    assert_eq!(glioma.truth_voxels, 0, "no glioma in this subject");
    // The extra white matter's truth (both sides or one) is the subject's: its volume on the
    // network's grid (4 mm voxels; pooled over the encoded streams) within 15 % of the label
    // map's.
    let wm = extra
        .iter()
        .find(|m| m.target.contains("white matter"))
        .unwrap();
    let ids = cat.vocab().require(&wm.target).unwrap().anatomy_ids();
    let truth_ml =
        voxel::measure::volume_ml(&sample.truth.session(0).unwrap().labels.mask_of_any(&ids));
    let voxel_ml = model.config.preprocessing.spacing_mm.powi(3) / 1000.0;
    let grid_ml = wm.truth_voxels as f64 * voxel_ml / sample.inputs.len() as f64;
    assert!(
        (grid_ml / truth_ml - 1.0).abs() < 0.15,
        "white matter {grid_ml:.1} mL on the grid against {truth_ml:.1} mL"
    );
    let extra_dice: f64 = extra.iter().map(|m| m.soft_dice_loss).sum();
    assert!(
        (loss.dice - plain.dice - extra_dice).abs() < 1e-4,
        "Σ Dice {} = {} + {}",
        loss.dice,
        plain.dice,
        extra_dice
    );

    // The extras' Dice alone reaches the ϕ head through the ϕ of the extra steps.
    let only_extras = sample_loss_with_extras(&ctx, &sample, &extras[..1]).unwrap();
    let grads = (only_extras.dice_loss.unwrap() - plain.dice_loss.unwrap()).backward();
    let g = net
        .agent
        .phi_head
        .proj
        .weight
        .val()
        .grad(&grads)
        .expect("a ϕ head gradient")
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(
        g.iter().any(|&x| x != 0.0),
        "the extra's Dice trains the ϕ head"
    );
}

/// `lesion_positive_weight_max` weighs the cross-entropy of lesion masks only: an anatomy
/// sample's loss is the same under any cap, a lesion sample's is not (the weighting itself is
/// checked by hand in `loss`).
#[test]
fn the_lesion_foreground_weight_reaches_lesion_masks_only() {
    let settings = tiny_settings();
    let model = tiny_model(&settings);
    let net = model.net.clone().train();
    let sampler = trainer::JointSampler::new(&settings, 4.0, 5).unwrap();
    let cat = &sampler.catalogues()[0];
    let bce = |sample: &tasks::TaskSample, cap: f64| {
        let mut ctx = loss_context(&net, &model, None);
        ctx.lesion_positive_weight_max = cap;
        let loss = sample_loss(&ctx, sample).unwrap();
        assert!(loss.generated > 0, "{}", sample.family);
        loss.bce
    };
    let anatomy = cat.sample("segment_anatomy", 5).unwrap();
    assert_eq!(bce(&anatomy, 1.0), bce(&anatomy, 20.0));
    let lesion = (0..20)
        .map(|seed| cat.sample("segment_lesion", seed).unwrap())
        .find(|s| !s.truth.session(0).unwrap().records.is_empty())
        .expect("a segment_lesion sample with a lesion");
    let (plain, weighted) = (bce(&lesion, 1.0), bce(&lesion, 20.0));
    assert!((plain - weighted).abs() > 1e-5, "{plain} vs {weighted}");
}

/// The extras of a sample are drawn without repeats, leave out what its program generates and
/// half of the lesion classes its subject lacks, follow the weights, ask for a bilateral target
/// or one of its halves, and are the same for the same index.
#[test]
fn extra_targets_are_drawn_by_weight_without_the_programs_own() {
    let mut settings = extra_target_settings();
    settings
        .joint_targets
        .insert("lateral ventricle".into(), 2.0);
    settings.extra_targets = 1;
    let sampler = trainer::JointSampler::new(&settings, 4.0, 7).unwrap();
    let cat = &sampler.catalogues()[0];
    let keep = |s: &tasks::scenario::Scenario| cat.scenario_asks_for(s, "white matter");
    let wm = cat
        .sample_where("segment_anatomy", 3, tasks::TemplateSplit::Training, &keep)
        .unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for k in 0..600 {
        let extras = sampler.extra_targets(&wm, k);
        assert_eq!(extras.len(), 1);
        assert_eq!(extras, sampler.extra_targets(&wm, k), "repeatable");
        *counts.entry(extras[0].description.clone()).or_insert(0) += 1;
    }
    assert!(!counts.contains_key("white matter"), "{counts:?}");
    let count = |name: &str| counts.get(name).copied().unwrap_or(0) as f64;
    let ventricles = [
        "lateral ventricle",
        "left lateral ventricle",
        "right lateral ventricle",
    ];
    for v in ventricles {
        assert!(count(v) > 40.0, "{v}: {counts:?}");
    }
    let ventricle: f64 = ventricles.iter().map(|v| count(v)).sum();
    let white_matter = count("left white matter") + count("right white matter");
    assert!(
        (ventricle / white_matter - 2.0).abs() < 0.5,
        "weights 2 : 1, drawn {counts:?}"
    );
    // The subject has no glioma: drawn first with weight 1 of 4, kept half the time (1/8).
    let glioma_share = count("glioma") / 600.0;
    assert!(
        (glioma_share - 0.125).abs() < 0.05,
        "an absent lesion class is kept half the time: {counts:?}"
    );
    // The white matter entry is left with its halves only.
    let halves: Vec<&String> = counts
        .keys()
        .filter(|n| n.contains("white matter"))
        .collect();
    assert!(
        !halves.is_empty()
            && halves
                .iter()
                .all(|n| n.starts_with("left") || n.starts_with("right")),
        "{counts:?}"
    );
    settings.extra_targets = 5;
    let sampler = trainer::JointSampler::new(&settings, 4.0, 7).unwrap();
    let extras = sampler.extra_targets(&wm, 3);
    // One per entry at most (the glioma, absent, half the time).
    assert!((2..=3).contains(&extras.len()), "{extras:?}");
    let names: Vec<&str> = extras.iter().map(|t| t.description.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("white matter")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("lateral ventricle")),
        "{names:?}"
    );
    assert!(!names.contains(&"white matter"), "{names:?}");
    settings.extra_absent_lesion_share = 1.5;
    let e = settings.validate("test").unwrap_err().to_string();
    assert!(e.contains("extra_absent_lesion_share"), "{e}");
    settings.extra_absent_lesion_share = 0.5;
    settings.joint_targets.clear();
    let e = settings.validate("test").unwrap_err().to_string();
    assert!(e.contains("extra_targets"), "{e}");
}

/// With `extra_present_lesion`, the first extra of a sample whose subject has a lesion its
/// program does not ask for (an anatomy question's incidental lesion) is that lesion, every
/// time; a subject without one draws by weight as before.
#[test]
fn a_present_lesion_comes_first_among_the_extras() {
    let mut settings = extra_target_settings();
    for class in tasks::classes::CLASSES {
        settings.joint_targets.insert(class.name.to_string(), 1.0);
    }
    settings.extra_targets = 1;
    settings.extra_absent_lesion_share = 0.0;
    settings.extra_present_lesion = true;
    let sampler = trainer::JointSampler::new(&settings, 4.0, 7).unwrap();
    let cat = &sampler.catalogues()[0];
    let keep = |s: &tasks::scenario::Scenario| cat.scenario_asks_for(s, "white matter");
    let (mut with, mut without) = (0, 0);
    for index in 0..60 {
        let sample = cat
            .sample_where(
                "segment_anatomy",
                index,
                tasks::TemplateSplit::Training,
                &keep,
            )
            .unwrap();
        let present: Vec<tasks::classes::ActiveClass> = tasks::classes::active_classes()
            .into_iter()
            .filter(|c| {
                let mask = tasks::truth::MaskDef::AnyLesion {
                    class: c.class,
                    components: c.entry.proper.to_vec(),
                };
                sample.truth.mask(&mask, 0).unwrap().count() > 0
            })
            .collect();
        for c in &present {
            assert!(
                sample
                    .inputs
                    .iter()
                    .any(|i| c.entry.contrasts.contains(&i.contrast)),
                "an incidental {} on {:?}, where it is not conspicuous",
                c.entry.canonical,
                sample.inputs.iter().map(|i| i.contrast).collect::<Vec<_>>()
            );
        }
        let present: Vec<&str> = present.iter().map(|c| c.entry.canonical).collect();
        assert!(
            present.len() <= 1,
            "one incidental lesion at most (a glioma is not also a metastasis, though the two share lesion-map ids): {present:?}"
        );
        for k in 0..6 {
            let extras = sampler.extra_targets(&sample, k);
            let names: Vec<&str> = extras.iter().map(|t| t.description.as_str()).collect();
            if present.is_empty() {
                // White matter is the program's own, so only its halves are left; absent
                // lesion classes are never kept here.
                assert_eq!(names.len(), 1, "subject {index}, draw {k}");
                assert!(names[0].ends_with("white matter"), "{names:?}");
            } else {
                assert_eq!(names, present, "subject {index}, draw {k}");
            }
        }
        if present.is_empty() {
            without += 1;
        } else {
            with += 1;
        }
        if with >= 2 && without >= 3 {
            break;
        }
    }
    assert!(
        with >= 2 && without >= 3,
        "subjects with an incidental lesion {with}, without {without}"
    );
}

/// Data-parallel training on two replicas (here both on the CPU) takes the same optimiser
/// steps as one device: the replicas' gradients are summed in sample order.
#[test]
fn two_replicas_train_like_one_device() {
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.5;
    settings.accumulation = 3;
    // With an extra target per joint sample, so the replicas draw and score those too.
    settings.joint_targets = [("white matter".to_string(), 1.0)].into_iter().collect();
    settings.extra_targets = 1;
    let model = tiny_model(&settings);
    let device = Device::flex();
    let stop = AtomicBool::new(false);
    let root = tempfile::tempdir().unwrap();
    let run = |name: &str, devices: Vec<Device>| {
        let mut t = JointTrainer::new(model.clone(), settings.clone(), 3, &device)
            .unwrap()
            .with_devices(devices);
        let job = TrainJob {
            out: root.path().join(name),
            minutes: None,
            steps: Some(4),
        };
        let summary = trainer::train(&mut t, &job, &stop, |_| {}).unwrap();
        (summary.rows, t.model())
    };
    let (one, one_model) = run("one", vec![device.clone()]);
    let (two, two_model) = run("two", vec![device.clone(), device.clone()]);
    assert_eq!(one.len(), 4);
    let masks = std::fs::read_to_string(root.path().join("one/masks.csv")).unwrap();
    assert!(
        masks
            .lines()
            .any(|l| l.contains(",extra:") && l.contains("\"white matter\"")),
        "extra targets are logged as such: {masks}"
    );
    assert!(
        one.iter().any(|r| r.generated > 0.0),
        "joint samples included"
    );
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a.samples, b.samples);
        assert!((a.loss - b.loss).abs() < 1e-5, "{} vs {}", a.loss, b.loss);
        assert!((a.dice - b.dice).abs() < 1e-5, "{} vs {}", a.dice, b.dice);
    }
    let weights = |m: &Model| {
        m.net
            .agent
            .decoder
            .embed
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (wa, wb) = (weights(&one_model), weights(&two_model));
    let max = wa
        .iter()
        .zip(&wb)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-5, "embedding weights differ by {max}");
}

/// A third of single-visit samples hide their acquisition dates (users often give none);
/// inputs from several visits always show them.
#[test]
fn single_visit_samples_sometimes_hide_their_dates() {
    let settings = tiny_settings();
    let sampler = trainer::JointSampler::new(&settings, 4.0, 11).unwrap();
    let mut sample = (0..)
        .find_map(|k| sampler.sample(SeedPurpose::Training, k).unwrap())
        .unwrap();
    for input in &mut sample.inputs {
        input.date = "2024-01-02".into();
    }
    let hidden = (0..3000u64)
        .filter(|&seed| {
            sample.seed = seed;
            !train::joint::shows_dates(&sample)
        })
        .count();
    assert!(
        (hidden as f64 / 3000.0 - 1.0 / 3.0).abs() < 0.03,
        "{hidden}"
    );
    sample.seed = (0..)
        .find(|&seed| {
            sample.seed = seed;
            !train::joint::shows_dates(&sample)
        })
        .unwrap();
    assert!(train::joint::volume_infos(&sample)
        .iter()
        .all(|v| v.acquired.is_none()));
    // Two visits: dates always shown.
    sample.inputs.push(sample.inputs[0].clone());
    sample.inputs[1].date = "2025-03-04".into();
    assert!(train::joint::shows_dates(&sample));
    assert!(train::joint::volume_infos(&sample)
        .iter()
        .all(|v| v.acquired.is_some()));
}

#[test]
fn the_settings_that_continue_the_shipped_model_parse() {
    let path = "configs/train/continue.toml";
    let text = include_str!("../../../configs/train/continue.toml");
    let s = JointSettings::from_toml_str(text, path).unwrap();
    let fresh = JointSettings::builtin().unwrap();
    // Lower rates for trained weights; the mask side's no higher than the agent's ratio to
    // them in a fresh run allows (the agent's was halved by the plateau rule, they were not).
    assert!(s.learning_rate < fresh.learning_rate);
    for (a, b) in [
        (s.vision_learning_rate, fresh.vision_learning_rate),
        (s.phi_learning_rate, fresh.phi_learning_rate),
    ] {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a < b, "{a} against a fresh run's {b}");
        assert!(a / s.learning_rate >= b / fresh.learning_rate);
    }
    // The loss is the one the shipped model was trained with.
    assert_eq!(
        (s.dice_weight, s.bce_weight, s.phi_name_weight),
        (fresh.dice_weight, fresh.bce_weight, fresh.phi_name_weight)
    );
    assert_eq!(s.anatomy, fresh.anatomy);
}

/// With `plateau_lowers_vision` the mask side's rates follow a halved agent rate; without,
/// they stay as configured.
#[test]
fn the_plateau_rule_lowers_the_vision_rates_only_when_told_to() {
    let mut s = JointSettings::builtin().unwrap();
    s.learning_rate = 1e-4;
    s.vision_learning_rate = Some(4e-4);
    s.phi_learning_rate = Some(1e-3);
    s.plateau_lowers_vision = true;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(s.vision_rate(5e-5), 2e-4));
    assert!(close(s.phi_rate(5e-5), 5e-4));
    s.plateau_lowers_vision = false;
    assert!(close(s.vision_rate(5e-5), 4e-4));
    assert!(close(s.phi_rate(5e-5), 1e-3));
    s.vision_learning_rate = None;
    assert!(close(s.vision_rate(5e-5), 1e-4));
    // The setting and the lesion weight cap parse and are checked.
    let text = include_str!("../../../configs/train/continue.toml");
    let c = JointSettings::from_toml_str(text, "continue.toml").unwrap();
    assert!(!c.plateau_lowers_vision && c.lesion_positive_weight_max > 1.0);
    let fresh = JointSettings::builtin().unwrap();
    assert!(fresh.plateau_lowers_vision && fresh.lesion_positive_weight_max == 1.0);
    let bad: String = text
        .lines()
        .map(|l| {
            if l.starts_with("lesion_positive_weight_max") {
                "lesion_positive_weight_max = 0.5\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(bad.contains("lesion_positive_weight_max = 0.5"));
    let e = JointSettings::from_toml_str(&bad, "bad.toml").unwrap_err();
    assert!(e.to_string().contains("lesion_positive_weight_max"), "{e}");
}

#[test]
fn a_run_given_film_and_a_side_gate_goes_on_from_the_same_weights_and_learns_them() {
    let mut settings = tiny_settings();
    settings.program_only_fraction = 0.0;
    settings.weight_average_decay = Some(0.9);
    let device = Device::flex();
    let stop = AtomicBool::new(false);
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let job = |steps| TrainJob {
        out: run.clone(),
        minutes: None,
        steps: Some(steps),
    };
    let mut t = JointTrainer::new(tiny_model(&settings), settings.clone(), 3, &device).unwrap();
    trainer::train(&mut t, &job(3), &stop, |_| {}).unwrap();
    let before = t.model();
    assert!(!before.config.vision.phi_scale && !before.config.vision.side_gate);
    drop(t);

    let mut film = settings;
    film.vision_phi_scale = true;
    film.vision_side_gate = true;
    let mut resumed = JointTrainer::resume_with(&run, &device, Some(film)).unwrap();
    let upgraded = resumed.model();
    assert!(upgraded.config.vision.phi_scale && upgraded.config.vision.side_gate);
    let first_conv = |m: &Model| m.net.vision.encoder.blocks[0].convs[0].weight.val();
    assert_eq!(
        (first_conv(&before) - first_conv(&upgraded))
            .abs()
            .max()
            .into_scalar::<f32>(),
        0.0,
        "every weight the network had carries over"
    );
    let scale = |m: &Model| {
        m.net.vision.generator.blocks[0]
            .mixing
            .phi_scale_weight
            .as_ref()
            .expect("FiLM weights")
            .val()
            .abs()
            .max()
            .into_scalar::<f32>()
    };
    let gate = |m: &Model| {
        m.net
            .vision
            .side_gate
            .as_ref()
            .expect("a side gate")
            .weight
            .val()
            .abs()
            .max()
            .into_scalar::<f32>()
    };
    assert_eq!(scale(&upgraded), 0.0);
    assert_eq!(gate(&upgraded), 0.0);
    let validated = resumed.validated_model();
    assert!(validated.config.vision.phi_scale && validated.net.vision.side_gate.is_some());
    trainer::train(&mut resumed, &job(6), &stop, |_| {}).unwrap();
    assert!(scale(&resumed.model()) > 0.0, "the scale learns from zero");
    assert!(gate(&resumed.model()) > 0.0, "the gate learns from zero");
    drop(resumed);
    // The checkpoint is a FiLM model now, and resumes as one without the setting.
    let again = JointTrainer::resume(&run, &device).unwrap();
    assert_eq!(again.state.step, 6);
    assert!(again.model().config.vision.phi_scale);
    let (saved, _) = Model::load(&run.join("checkpoint").join("model"), &device).unwrap();
    assert!(saved.config.vision.phi_scale && scale(&saved) > 0.0);
    assert!(saved.config.vision.side_gate && gate(&saved) > 0.0);
}

/// The teaching-term fixture: `gate` with weight `[[0.1, −0.2], [0.3, 0]]`, three ϕ rows
/// `(1, 0), (0, 2), (1, 1)` asking for the left, the right and both sides.
fn gate_fixture(
    mut gate: vision::side_gate::SideGate,
) -> (
    vision::side_gate::SideGate,
    Tensor<2>,
    [synth::Hemisphere; 3],
) {
    let device = Device::flex();
    gate.weight = burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![0.1f32, -0.2, 0.3, 0.0], [2, 2]),
        &device,
    ));
    let rows = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 0.0, 2.0, 1.0, 1.0], [3, 2]),
        &device,
    );
    use synth::Hemisphere::{Both, Left, Right};
    (gate, rows, [Left, Right, Both])
}

/// The side gate's teaching term, by hand: offsets `10·ϕ·W` against `−8` on the side a lateral
/// target is not on and 0 elsewhere, squared in units of 8 and averaged.
#[test]
fn the_side_gate_term_is_the_squared_offset_error() {
    use synth::Hemisphere;
    use train::joint::{side_gate_term, target_side};
    let (gate, rows, sides) = gate_fixture(vision::side_gate::SideGate::new(2, &Device::flex()));
    // Offsets (1, −2), (6, 0), (4, −2) against (0, −8), (−8, 0), (0, 0).
    let got: f32 = side_gate_term(&gate, rows, &sides).into_scalar();
    let want = (1.0 + 36.0 + 196.0 + 0.0 + 16.0 + 4.0) / 64.0 / 6.0;
    assert!((f64::from(got) - want).abs() < 1e-6, "{got} vs {want}");

    let target = |description: &str| tasks::program::GenerateTarget {
        name: "m".into(),
        description: description.into(),
        mask: tasks::truth::MaskDef::Anatomy { ids: Vec::new() },
    };
    assert_eq!(target_side(&target("left hippocampus")), Hemisphere::Left);
    assert_eq!(target_side(&target("right thalamus")), Hemisphere::Right);
    assert_eq!(target_side(&target("thalamus")), Hemisphere::Both);
    assert_eq!(
        target_side(&target("the larger metastasis")),
        Hemisphere::Both
    );
    // The lesion of two in the named hemisphere (segment_by_hemisphere).
    assert_eq!(target_side(&target("right meningioma")), Hemisphere::Right);
    assert_eq!(target_side(&target("left metastasis")), Hemisphere::Left);
    assert_eq!(target_side(&target("leftover glioma")), Hemisphere::Both);
}

/// The logistic gate's teaching term, by hand: the binary cross-entropy of its exclusion logits
/// `10·ϕ·W + b`, 1 on the side a lateral target is not on and 0 elsewhere, averaged.
#[test]
fn the_logistic_side_gate_term_is_the_exclusion_cross_entropy() {
    use train::joint::side_gate_term;
    let device = Device::flex();
    let (mut gate, rows, sides) = gate_fixture(vision::side_gate::SideGate::logistic(2, &device));
    gate.bias = Some(burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![-1.0f32, 0.5], [2]),
        &device,
    )));
    // Logits (0, −1.5), (5, 0.5), (3, −1.5); excluded (0, 1), (1, 0), (0, 0).
    let got: f32 = side_gate_term(&gate, rows, &sides).into_scalar();
    let bce = |z: f64, t: f64| (1.0 + z.exp()).ln() - t * z;
    let want = (bce(0.0, 0.0)
        + bce(-1.5, 1.0)
        + bce(5.0, 1.0)
        + bce(0.5, 0.0)
        + bce(3.0, 0.0)
        + bce(-1.5, 0.0))
        / 6.0;
    assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
}

/// `vision_side_gate_logistic` on resume replaces a run's linear gate (and its average's) with a
/// logistic one at the start bias, which the teaching term then moves; the checkpoint keeps it.
#[test]
fn a_run_resumed_with_the_logistic_gate_gets_it_and_keeps_it() {
    let root = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut settings = tiny_settings();
    settings.vision_side_gate = true;
    settings.side_gate_weight = 0.5;
    settings.weight_average_decay = Some(0.9);
    settings.program_only_fraction = 1.0;
    let run = root.path().join("run");
    let job = |steps| TrainJob {
        out: run.clone(),
        minutes: None,
        steps: Some(steps),
    };
    let model = settings.upgrade_model(tiny_model(&settings));
    let mut t = JointTrainer::new(model, settings.clone(), 3, &device).unwrap();
    trainer::train(&mut t, &job(2), &stop, |_| {}).unwrap();
    assert!(!t.model().config.vision.side_gate_logistic);
    drop(t);

    let mut logistic = settings;
    logistic.vision_side_gate_logistic = true;
    let mut resumed = JointTrainer::resume_with(&run, &device, Some(logistic)).unwrap();
    let bias = |m: &Model| -> Vec<f32> {
        let gate = m.net.vision.side_gate.as_ref().expect("a side gate");
        gate.bias
            .as_ref()
            .expect("a logistic gate")
            .val()
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    let start = vision::side_gate::LOGISTIC_START_BIAS as f32;
    assert_eq!(bias(&resumed.model()), vec![start, start]);
    assert!(resumed.validated_model().config.vision.side_gate_logistic);
    trainer::train(&mut resumed, &job(5), &stop, |_| {}).unwrap();
    assert!(
        bias(&resumed.model()) != vec![start, start],
        "the teaching term moves the bias"
    );
    drop(resumed);
    let again = JointTrainer::resume(&run, &device).unwrap();
    assert!(again.model().config.vision.side_gate_logistic);
    let (saved, _) = Model::load(&run.join("checkpoint").join("model"), &device).unwrap();
    assert!(
        saved.config.vision.side_gate_logistic && saved.net.vision.side_gate.unwrap().is_logistic()
    );
}

/// With a side gate and `side_gate_weight`, a program-only sample and a joint one that generate
/// a lateral target give the term, and its gradient reaches the gate; without the weight, none.
#[test]
fn lateral_targets_teach_the_side_gate() {
    let mut settings = tiny_settings();
    settings.vision_side_gate = true;
    let model = settings.upgrade_model(tiny_model(&settings));
    let net = model.net.clone().train();
    let sampler = trainer::JointSampler::new(&settings, 4.0, 5).unwrap();
    let cat = &sampler.catalogues()[0];
    let lateral = (0..40)
        .map(|seed| cat.sample("segment_anatomy", seed).unwrap())
        .find(|s| {
            s.mods().any(|m| match m {
                tasks::program::ModMeaning::Generate { target } => {
                    train::joint::target_side(target) != synth::Hemisphere::Both
                }
                _ => false,
            })
        })
        .expect("a segment_anatomy sample with a lateral target");
    let mut ctx = loss_context(&net, &model, None);
    assert_eq!(program_loss(&ctx, &lateral).unwrap().side, None);
    ctx.side_gate_weight = 0.1;
    for loss in [
        program_loss(&ctx, &lateral).unwrap(),
        sample_loss(&ctx, &lateral).unwrap(),
    ] {
        // A fresh gate gives 0: the term is the lateral targets' share of (8/8)² / 2.
        let side = loss.side.expect("the term");
        assert!(side > 0.0 && side <= 0.5, "{side}");
        let grads = loss.total.backward();
        let g = net
            .vision
            .side_gate
            .as_ref()
            .unwrap()
            .weight
            .val()
            .grad(&grads)
            .expect("a gate gradient")
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert!(g > 0.0);
    }
}
