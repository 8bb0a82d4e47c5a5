//! Overfit check (issue 5): a tiny agent trained from a fixed seed with Adam learns to reproduce
//! 20 distinct multi-step programs exactly from their prompts under greedy decoding, with the
//! true feedback (text and `<vol>` embeddings) pushed between steps as the runtime would.

mod common;

use std::time::Instant;

use agent::{
    AgentModel, AgentTokenizer, DecodeOptions, DecodeSession, DecoderConfig, SequenceBatch,
};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use common::*;

/// Peak Adam step size: large for a transformer, fine for memorising 20 sequences with a tiny
/// one. Reached after a short linear warm-up, then cosine-annealed to `FINAL_LR`.
const PEAK_LR: f64 = 1e-2;
/// Step size after the annealing.
const FINAL_LR: f64 = 1e-3;
/// Linear warm-up steps.
const WARMUP_STEPS: usize = 10;
/// Length of the cosine annealing after the warm-up.
const ANNEAL_STEPS: usize = 300;
/// Give up after this many full-batch steps. The fixed seed needs 100 here; seeds 1 and 7 needed
/// 80 each (a schedule annealed over 100 steps instead stalled for up to 400 on some seeds).
const MAX_STEPS: usize = 400;
/// Try greedy decoding once the mean token loss is below this.
const DECODE_CHECK_LOSS: f32 = 0.02;
/// How often the loss is inspected.
const CHECK_EVERY: usize = 20;

fn learning_rate(step: usize) -> f64 {
    if step < WARMUP_STEPS {
        return PEAK_LR * step as f64 / WARMUP_STEPS as f64;
    }
    let progress = ((step - WARMUP_STEPS) as f64 / ANNEAL_STEPS as f64).min(1.0);
    FINAL_LR + 0.5 * (PEAK_LR - FINAL_LR) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Decodes every example step by step and returns how many reproduce all their steps exactly.
fn exact_matches(model: &AgentModel, tok: &AgentTokenizer, exs: &[Example]) -> usize {
    let d = model.config().d_model;
    let device = model.device();
    let mut ok = 0;
    for (i, ex) in exs.iter().enumerate() {
        let mut session = DecodeSession::new(model, tok, initial(tok, ex), None).unwrap();
        let mut all = true;
        for (code, feedback) in &ex.steps {
            let step = session
                .decode_step(&DecodeOptions {
                    max_new_tokens: 120,
                    ..DecodeOptions::default()
                })
                .unwrap();
            if &step.code != code {
                all = false;
                break;
            }
            if !feedback.is_empty() {
                let eps = feedback_eps(feedback, d, i as u64, &device);
                session.push_feedback(feedback, eps).unwrap();
            }
        }
        ok += all as usize;
    }
    ok
}

#[test]
fn tiny_agent_memorises_twenty_programs() {
    let start = Instant::now();
    let exs = examples();
    let tok = tokenizer(&exs);
    let device = Device::flex().autodiff();
    let config = DecoderConfig::builtin("tiny").unwrap();
    let mut model = AgentModel::new(&config, 2024, &device).unwrap();
    let d = config.d_model;

    let seqs: Vec<_> = exs.iter().map(|ex| full_sequence(&tok, ex)).collect();
    let refs: Vec<_> = seqs.iter().collect();
    let batch = SequenceBatch::new(&refs).unwrap();
    // ε° rows in batch order: each example's own fixed vectors, as decoding will push them.
    let eps_rows: Vec<Tensor<2>> = exs
        .iter()
        .enumerate()
        .filter(|(_, ex)| n_vol(ex) > 0)
        .map(|(i, ex)| fixed_eps(n_vol(ex), d, i as u64, &device))
        .collect();
    let eps = (!eps_rows.is_empty()).then(|| Tensor::cat(eps_rows, 0));
    println!(
        "overfit: {} sequences, padded length {}, {} scored tokens, vocab {}",
        batch.batch,
        batch.len,
        batch.targets.len(),
        tok.vocab_size()
    );

    let mut optim = AdamConfig::new().init();
    let mut solved_at = None;
    for step in 1..=MAX_STEPS {
        let out = model.forward_teacher(&batch, eps.clone()).unwrap();
        let loss = out.loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(learning_rate(step), model, grads);
        if step % CHECK_EVERY == 0 {
            println!(
                "step {step:4}  loss {loss:.5}  {:.1} s",
                start.elapsed().as_secs_f32()
            );
            if loss < DECODE_CHECK_LOSS {
                let infer = model.valid();
                let ok = exact_matches(&infer, &tok, &exs);
                println!("  greedy decoding reproduces {ok}/20 programs exactly");
                if ok == exs.len() {
                    solved_at = Some(step);
                    break;
                }
            }
        }
    }
    println!(
        "overfit finished after {:?} steps in {:.1} s",
        solved_at,
        start.elapsed().as_secs_f32()
    );
    assert!(
        solved_at.is_some(),
        "the tiny agent did not reproduce all 20 programs within {MAX_STEPS} steps"
    );

    // The trained model emits <mod> and so exercises the ϕ path, which a random model rarely
    // does: decoding with the cache must agree with full recomputation, and the decoded ϕ with
    // the teacher-forced ϕ of the same sequence.
    let infer = model.valid();
    let plain = infer.device();
    for (i, ex) in exs
        .iter()
        .enumerate()
        .filter(|(_, ex)| n_vol(ex) > 0)
        .take(2)
    {
        let decode = |use_kv_cache: bool| {
            let mut session = DecodeSession::new(&infer, &tok, initial(&tok, ex), None).unwrap();
            let mut steps = Vec::new();
            for (_, feedback) in &ex.steps {
                let options = DecodeOptions {
                    max_new_tokens: 120,
                    use_kv_cache,
                    record_logits: true,
                };
                steps.push(session.decode_step(&options).unwrap());
                if !feedback.is_empty() {
                    let eps = feedback_eps(feedback, d, i as u64, &plain);
                    session.push_feedback(feedback, eps).unwrap();
                }
            }
            (steps, session.into_sequence())
        };
        let (cached, seq) = decode(true);
        let (full, _) = decode(false);
        let mut phi_decoded = Vec::new();
        for (c, f) in cached.iter().zip(&full) {
            assert_eq!(c.tokens, f.tokens);
            for (a, b) in c.logits.iter().zip(&f.logits) {
                assert!(max_abs_diff(a, b) < 1e-4);
            }
            let (pc, pf) = (c.phi.clone().map(values), f.phi.clone().map(values));
            assert_eq!(pc.is_some(), pf.is_some());
            if let (Some(pc), Some(pf)) = (pc, pf) {
                assert!(max_abs_diff(&pc, &pf) < 1e-4);
                phi_decoded.extend(pc);
            }
        }
        assert!(!phi_decoded.is_empty(), "the programs contain <mod>");
        let batch = SequenceBatch::new(&[&seq]).unwrap();
        let eps = fixed_eps(n_vol(ex), d, i as u64, &plain);
        let teacher = infer.forward_teacher(&batch, Some(eps)).unwrap();
        let phi_teacher = values(teacher.phi.expect("ϕ slots"));
        assert!(max_abs_diff(&phi_decoded, &phi_teacher) < 1e-4);
    }
}
