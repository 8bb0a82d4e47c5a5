//! Behaviour of the agent against independent truths: the full recompute for the KV cache, a
//! hand-counted loss mask, causality for `<vol>` replacement, and file round trips.

mod common;

use agent::{
    checkpoint, AgentError, AgentModel, AgentSequence, DecodeOptions, DecodeSession, DecoderConfig,
    FeedbackItem, SequenceBatch, StopReason, VolumeInfo,
};
use burn::prelude::*;
use common::*;

fn tiny() -> DecoderConfig {
    DecoderConfig::builtin("tiny").unwrap()
}

/// Greedy decoding with the KV cache picks the same tokens from the same logits (within 1e-4)
/// as recomputing the whole sequence for every token, across two steps with feedback in
/// between (text and a `<vol>` slot) and across a growth of the cache buffers; the logits and
/// ϕ also match one teacher-forced pass over the final sequence.
#[test]
fn kv_cache_decoding_matches_full_recompute() {
    let exs = examples();
    let tok = tokenizer(&exs);
    let device = Device::flex();
    let model = AgentModel::new(&tiny(), 7, &device).unwrap();
    let d = model.config().d_model;
    let ex = &exs[3];
    let eps = fixed_eps(1, d, 11, &device);
    let feedback = vec![
        FeedbackItem::Text("z = ".into()),
        FeedbackItem::Encoding {
            streams: vec![Vec::new(); 1],
        },
        FeedbackItem::Text(" and some more feedback text to push the prefix past 64 tokens".into()),
    ];

    let run = |use_kv_cache: bool| {
        let mut session = DecodeSession::new(&model, &tok, initial(&tok, ex), None).unwrap();
        let options = DecodeOptions {
            max_new_tokens: 40,
            use_kv_cache,
            record_logits: true,
        };
        let first = session.decode_step(&options).unwrap();
        session.push_feedback(&feedback, Some(eps.clone())).unwrap();
        let second = session.decode_step(&options).unwrap();
        (first, second, session.into_sequence())
    };
    let (c1, c2, cached_seq) = run(true);
    let (f1, f2, full_seq) = run(false);

    assert_eq!(cached_seq.tokens(), full_seq.tokens());
    assert!(
        cached_seq.len() > 64,
        "the prefix must outgrow the first cache buffer"
    );
    for (c, f) in [(&c1, &f1), (&c2, &f2)] {
        assert_eq!(c.tokens, f.tokens);
        assert_eq!(c.code, f.code);
        assert_eq!(c.logits.len(), f.logits.len());
        for (lc, lf) in c.logits.iter().zip(&f.logits) {
            let diff = max_abs_diff(lc, lf);
            assert!(diff < 1e-4, "cached vs recomputed logits differ by {diff}");
        }
        match (&c.phi, &f.phi) {
            (Some(pc), Some(pf)) => {
                assert!(max_abs_diff(&values(pc.clone()), &values(pf.clone())) < 1e-4)
            }
            (None, None) => {}
            _ => panic!("ϕ present in one mode only"),
        }
        let n_mod = c
            .tokens
            .iter()
            .filter(|&&t| t == tok.specials().mod_marker)
            .count();
        assert_eq!(c.phi.as_ref().map_or(0, |p| p.dims()[0]), n_mod);
    }
    assert!(
        c1.tokens.len() + c2.tokens.len() >= 20,
        "decoding stopped too early to test much"
    );
    println!(
        "decoded {} + {} tokens ({:?}, {:?}), {} ϕ, final length {}",
        c1.tokens.len(),
        c2.tokens.len(),
        c1.stop,
        c2.stop,
        cached_seq.phi_positions().len(),
        cached_seq.len()
    );

    // One teacher-forced pass over the final sequence gives the same logits at the positions
    // the tokens were chosen from.
    let batch = SequenceBatch::new(&[&cached_seq]).unwrap();
    let hidden = {
        let x = model
            .input_embeddings(
                &batch.tokens,
                1,
                batch.len,
                &batch.vol_positions,
                Some(eps.clone()),
            )
            .unwrap();
        model.forward_hidden(x, None).unwrap()
    };
    let logits = model.decoder.logits(hidden.clone());
    let v = model.config().vocab_size;
    let step_opens: Vec<usize> = cached_seq
        .roles()
        .iter()
        .enumerate()
        .filter(|(_, r)| **r == agent::TokenRole::StepOpen)
        .map(|(i, _)| i)
        .collect();
    for (step, open) in [(&c1, step_opens[0]), (&c2, step_opens[1])] {
        // Chosen-from positions: <step>, then every emitted token except that a <mod> is
        // followed by its ϕ slot, whose logits choose the next token.
        let mut pos = open;
        let mut positions = vec![pos];
        for &t in &step.tokens {
            pos += if t == tok.specials().mod_marker { 2 } else { 1 };
            positions.push(pos);
        }
        for (row, &p) in step.logits.iter().zip(&positions) {
            let full = values(logits.clone().slice(s![0..1, p..p + 1, 0..v]));
            assert!(max_abs_diff(row, &full) < 1e-4);
        }
    }
    let phi_full = model.phi_at(hidden, &cached_seq.phi_positions()).unwrap();
    let phi_dec: Vec<f32> = [&c1, &c2]
        .iter()
        .filter_map(|s| s.phi.clone())
        .flat_map(values)
        .collect();
    let phi_full = phi_full.map(values).unwrap_or_default();
    assert_eq!(phi_full.len(), phi_dec.len());
    if !phi_dec.is_empty() {
        assert!(max_abs_diff(&phi_full, &phi_dec) < 1e-4);
    }
}

/// The loss mask of a hand-built sequence, counted segment by segment from the tokenizer:
/// prompt/metadata, `<step>`, feedback and the `<phi>` token are excluded; code, `<mod>`,
/// `<endstep>` and the prediction made at the ϕ slot are included.
#[test]
fn loss_mask_excludes_prompt_feedback_and_phi() {
    let exs = examples();
    let tok = tokenizer(&exs);
    let vol = VolumeInfo {
        name: "scan_1".into(),
        modality: Some("T1w".into()),
        acquired: Some("2021-03-04".into()),
    };
    let mut seq =
        AgentSequence::initial(&tok, "What is the volume?", std::slice::from_ref(&vol)).unwrap();
    seq.push_step(&tok, "let m = generate(encode([scan_1]<mod>)<mod>);")
        .unwrap();
    seq.push_feedback(
        &tok,
        &[
            FeedbackItem::Text("m = mask".into()),
            FeedbackItem::Encoding {
                streams: vec![Vec::new(); 2],
            },
        ],
    )
    .unwrap();
    seq.push_step(&tok, "stop();").unwrap();

    // The same sequence counted by hand: (token count, is a program token).
    let n = |s: &str| tok.encode_text(s).unwrap().len();
    let context = n(&format!("What is the volume?\n{}", vol.render()));
    let segments: Vec<(usize, bool, &str)> = vec![
        (1, false, "<bos>"),
        (context, false, "prompt + metadata"),
        (1, false, "<step>"),
        (n("let m = generate(encode([scan_1]"), true, "code"),
        (1, true, "<mod>"),
        (1, false, "<phi>"),
        (n(")"), true, "code"),
        (1, true, "<mod>"),
        (1, false, "<phi>"),
        (n(");"), true, "code"),
        (1, true, "<endstep>"),
        (1, false, "<feedback>"),
        (n("m = mask"), false, "feedback text"),
        (2, false, "<vol> <vol>"),
        (1, false, "<endfeedback>"),
        (1, false, "<step>"),
        (n("stop();"), true, "code"),
        (1, true, "<endstep>"),
    ];
    let mut program = Vec::new();
    for (count, is_program, _) in &segments {
        program.extend(std::iter::repeat_n(*is_program, *count));
    }
    assert_eq!(program.len(), seq.len());
    // Entry i scores token i+1.
    let expected: Vec<bool> = program[1..].to_vec();
    assert_eq!(seq.loss_mask(), expected);

    let specials = tok.specials();
    let toks = seq.tokens();
    let mask = seq.loss_mask();
    for (i, &t) in toks.iter().enumerate().skip(1) {
        if t == specials.phi {
            assert!(!mask[i - 1], "the <phi> token must not be a target");
            assert!(mask[i], "the ϕ slot predicts the next code token");
            assert_eq!(toks[i - 1], specials.mod_marker);
        }
        if t == specials.mod_marker || t == specials.endstep {
            assert!(mask[i - 1]);
        }
        if [
            specials.vol,
            specials.feedback,
            specials.endfeedback,
            specials.step,
        ]
        .contains(&t)
        {
            assert!(!mask[i - 1]);
        }
    }
    assert_eq!(seq.phi_positions().len(), 2);
    assert_eq!(seq.vol_positions().len(), 2);
    let batch = SequenceBatch::new(&[&seq]).unwrap();
    assert_eq!(batch.targets.len(), mask.iter().filter(|m| **m).count());
}

/// Replacing the `<vol>` input embedding changes the outputs after the slot, leaves earlier
/// positions untouched (causality), and lets gradients reach the supplied ε°.
#[test]
fn vol_embeddings_replace_inputs_and_receive_gradients() {
    let exs = examples();
    let tok = tokenizer(&exs);
    let device = Device::flex().autodiff();
    let model = AgentModel::new(&tiny(), 3, &device).unwrap();
    let d = model.config().d_model;
    let ex = exs.iter().find(|ex| n_vol(ex) == 1).unwrap();
    let seq = full_sequence(&tok, ex);
    let batch = SequenceBatch::new(&[&seq]).unwrap();
    let slot = batch.vol_positions[0];

    let eps_a = fixed_eps(1, d, 1, &device).require_grad();
    let eps_b = fixed_eps(1, d, 2, &device);
    let out_a = model.forward_teacher(&batch, Some(eps_a.clone())).unwrap();
    let out_b = model.forward_teacher(&batch, Some(eps_b)).unwrap();
    let v = model.config().vocab_size;
    let la = values(model.decoder.logits(out_a.hidden.clone()));
    let lb = values(model.decoder.logits(out_b.hidden.clone()));
    let before = max_abs_diff(&la[..slot * v], &lb[..slot * v]);
    let after = max_abs_diff(&la[slot * v..], &lb[slot * v..]);
    assert_eq!(before, 0.0, "positions before the slot cannot see it");
    assert!(
        after > 1e-3,
        "ε° must change the outputs after its slot ({after})"
    );

    let grads = out_a.loss.backward();
    let g = values(eps_a.grad(&grads).expect("ε° receives a gradient"));
    assert!(g.iter().any(|x| x.abs() > 0.0));
    assert!(g.iter().all(|x| x.is_finite()));

    // Wrong numbers of rows are errors, not panics.
    assert!(matches!(
        model.forward_teacher(&batch, None),
        Err(AgentError::VolEmbeddingCount {
            slots: 1,
            supplied: 0
        })
    ));
    assert!(model
        .forward_teacher(&batch, Some(fixed_eps(2, d, 1, &device)))
        .is_err());
}

/// Save → load gives bit-identical logits and the same tokenizer; broken checkpoints are
/// reported as errors.
#[test]
fn checkpoint_round_trip_is_exact() {
    let exs = examples();
    let tok = tokenizer(&exs);
    let device = Device::flex();
    let model = AgentModel::new(&tiny(), 5, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    checkpoint::save(dir.path(), &model, &tok).unwrap();
    let (loaded, tok2) = checkpoint::load(dir.path(), &device).unwrap();
    assert_eq!(loaded.config(), model.config());
    assert_eq!(tok2.specials(), tok.specials());

    let seq = full_sequence(&tok, &exs[0]);
    let seq2 = full_sequence(&tok2, &exs[0]);
    assert_eq!(seq.tokens(), seq2.tokens());
    let batch = SequenceBatch::new(&[&seq]).unwrap();
    let a = values(model.forward_logits(&batch, None).unwrap());
    let b = values(loaded.forward_logits(&batch, None).unwrap());
    assert_eq!(a, b);

    // Seeded init: the same seed reproduces the weights, another seed does not.
    let again = AgentModel::new(&tiny(), 5, &device).unwrap();
    assert_eq!(a, values(again.forward_logits(&batch, None).unwrap()));
    let other = AgentModel::new(&tiny(), 6, &device).unwrap();
    assert_ne!(a, values(other.forward_logits(&batch, None).unwrap()));

    // A checkpoint whose config disagrees with its weights is refused.
    let mut wrong = tiny();
    wrong.d_mlp = 128;
    std::fs::write(
        dir.path().join(checkpoint::CONFIG_FILE),
        wrong.to_json_string(),
    )
    .unwrap();
    assert!(checkpoint::load(dir.path(), &device).is_err());
    assert!(checkpoint::load(&dir.path().join("missing"), &device).is_err());
}

/// Decoding respects the token limit and the decoder's maximum length without panicking.
#[test]
fn decoding_stops_at_limits() {
    let exs = examples();
    let tok = tokenizer(&exs);
    let device = Device::flex();
    let model = AgentModel::new(&tiny(), 9, &device).unwrap();
    let mut session = DecodeSession::new(&model, &tok, initial(&tok, &exs[0]), None).unwrap();
    let step = session
        .decode_step(&DecodeOptions {
            max_new_tokens: 3,
            ..DecodeOptions::default()
        })
        .unwrap();
    assert!(step.tokens.len() <= 3);
    if step.stop == StopReason::TokenLimit {
        assert!(!session.sequence().in_step(), "a cut-off step is closed");
    }

    let mut short = tiny();
    short.max_seq_len = 48;
    let model = AgentModel::new(&short, 9, &device).unwrap();
    let mu1 = initial(&tok, &exs[0]);
    assert!(mu1.len() < 40);
    let mut session = DecodeSession::new(&model, &tok, mu1, None).unwrap();
    let mut stops = Vec::new();
    for _ in 0..10 {
        match session.decode_step(&DecodeOptions::default()) {
            Ok(step) => stops.push(step.stop),
            Err(AgentError::SequenceTooLong { max, .. }) => {
                assert_eq!(max, 48);
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(session.sequence().len() <= 48);
    assert!(stops.contains(&StopReason::SequenceLimit) || session.sequence().len() >= 47);
}

/// A marker gate keeps `<mod>` out where it says no, and the next-best token is taken instead:
/// with `<mod>` made every position's best token, an ungated step writes only markers, a gated
/// one writes a marker only where the gate allows it, and each marker still brings one ϕ.
#[test]
fn the_marker_gate_keeps_mod_where_it_counts() {
    let exs = examples();
    let tok = tokenizer(&exs);
    let device = Device::flex();
    let mut model = AgentModel::new(&tiny(), 9, &device).unwrap();
    let vocab = model.config().vocab_size;
    let mod_id = tok.specials().mod_marker as usize;
    let mut bias = vec![0f32; vocab];
    bias[mod_id] = 1e4;
    model.decoder.lm_head.bias = Some(burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(bias, [vocab]),
        &device,
    )));
    let options = DecodeOptions {
        max_new_tokens: 6,
        ..DecodeOptions::default()
    };
    let mut plain = DecodeSession::new(&model, &tok, initial(&tok, &exs[0]), None).unwrap();
    let step = plain.decode_step(&options).unwrap();
    assert!(step.tokens.iter().all(|&t| t as usize == mod_id));
    assert_eq!(step.phi.unwrap().dims()[0], 6);

    // Allowed only as the first token of a step.
    let mut gated = DecodeSession::new(&model, &tok, initial(&tok, &exs[0]), None)
        .unwrap()
        .with_marker_gate(|code| code.is_empty());
    let step = gated.decode_step(&options).unwrap();
    assert_eq!(step.tokens.len(), 6);
    assert_eq!(step.tokens[0] as usize, mod_id);
    assert!(step.tokens[1..].iter().all(|&t| t as usize != mod_id));
    assert_eq!(step.phi.unwrap().dims()[0], 1);
}
