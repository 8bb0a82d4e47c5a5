//! Decoding speed of the agent on the CPU backend (issue 5).
//!
//! For the `small` and `paper` sizes: greedy tokens/s with the KV cache after a prefix of 64 and
//! 1024 tokens, the same without the cache (full recompute per token) as the in-process
//! reference, and the per-token time against prefix length, which must stay nearly flat at
//! small prefixes when the cache works.
//!
//! Each timed token does what `DecodeSession::decode_step` does per token: embed one id, run the
//! blocks against the cache, apply the head, read the logits to the host and take the argmax.
//! Weights are random (seeded); speed does not depend on them.
//!
//! `cargo bench -p agent`; `AGENT_BENCH_QUICK=1` shortens the runs.

use std::time::Instant;

use agent::{AgentModel, DecoderConfig, KvCache};
use burn::prelude::*;

/// Token ids for a prefix: a fixed pseudo-random walk over the vocabulary.
fn prefix_ids(n: usize, vocab: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i as u64 * 2_654_435_761 + 12_345) % vocab as u64) as u32)
        .collect()
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = (f32::NEG_INFINITY, 0u32);
    for (i, &v) in row.iter().enumerate() {
        if v > best.0 {
            best = (v, i as u32);
        }
    }
    best.1
}

fn logits_row(model: &AgentModel, hidden: Tensor<3>) -> Vec<f32> {
    let [_, n, d] = hidden.dims();
    let last = hidden.slice_dim(1, n - 1..n).reshape([1, d]);
    model
        .decoder
        .logits(last)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 logits")
}

/// Prefills `prefix` tokens into a fresh cache, then times `n_new` greedy tokens.
/// Returns (prefill seconds, seconds per new token).
fn decode_with_cache(model: &AgentModel, prefix: usize, n_new: usize) -> (f64, f64) {
    let vocab = model.config().vocab_size;
    let ids = prefix_ids(prefix, vocab);
    let mut cache = KvCache::new(&model.decoder);
    let t0 = Instant::now();
    let x = model
        .input_embeddings(&ids, 1, prefix, &[], None)
        .expect("embeddings");
    let hidden = model.forward_hidden(x, Some(&mut cache)).expect("prefill");
    let mut next = argmax(&logits_row(model, hidden));
    let prefill = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..n_new {
        let x = model
            .input_embeddings(&[next], 1, 1, &[], None)
            .expect("embedding");
        let hidden = model.forward_hidden(x, Some(&mut cache)).expect("step");
        next = argmax(&logits_row(model, hidden));
    }
    (prefill, t1.elapsed().as_secs_f64() / n_new as f64)
}

/// Seconds per new token when every token recomputes the whole sequence (no cache).
fn decode_without_cache(model: &AgentModel, prefix: usize, n_new: usize) -> f64 {
    let vocab = model.config().vocab_size;
    let mut ids = prefix_ids(prefix, vocab);
    let t = Instant::now();
    for _ in 0..n_new {
        let x = model
            .input_embeddings(&ids, 1, ids.len(), &[], None)
            .expect("embeddings");
        let hidden = model.forward_hidden(x, None).expect("forward");
        ids.push(argmax(&logits_row(model, hidden)));
    }
    t.elapsed().as_secs_f64() / n_new as f64
}

fn main() {
    let quick = std::env::var_os("AGENT_BENCH_QUICK").is_some();
    let device = Device::flex();
    let n_new = if quick { 16 } else { 64 };
    println!("agent decoding benchmark (burn flex CPU backend, f32, batch 1, greedy)");
    println!(
        "threads: flex as configured by the workspace (no `rayon` feature: one core per op)\n"
    );

    let mut rows = Vec::new();
    for name in ["small", "paper"] {
        let cfg = DecoderConfig::builtin(name).expect("built-in config");
        let model = AgentModel::new(&cfg, 1, &device).expect("model");
        println!(
            "{name}: {} layers, d {}, MLP {}, {} heads, vocab {}, {:.1} M parameters",
            cfg.n_layers,
            cfg.d_model,
            cfg.d_mlp,
            cfg.n_heads,
            cfg.vocab_size,
            cfg.num_params() as f64 / 1e6
        );
        // Warm-up: first calls allocate and fault in the weights.
        decode_with_cache(&model, 16, 4);

        for prefix in [64usize, 1024] {
            let (prefill_s, per_token) = decode_with_cache(&model, prefix, n_new);
            let n_ref = if quick || (prefix > 64 && name == "paper") {
                2
            } else {
                4
            };
            let per_token_ref = decode_without_cache(&model, prefix, n_ref);
            rows.push((
                name,
                prefix,
                1.0 / per_token,
                prefill_s,
                1.0 / per_token_ref,
            ));
            println!(
                "  prefix {prefix:5}: {:7.1} tokens/s with KV cache ({:6.2} ms/token), \
                 prefill {:7.1} ms ({:7.0} tokens/s), without cache {:6.1} tokens/s → cache ×{:.0}",
                1.0 / per_token,
                per_token * 1e3,
                prefill_s * 1e3,
                prefix as f64 / prefill_s,
                1.0 / per_token_ref,
                per_token_ref / per_token
            );
        }

        println!("  per-token time against prefix length (KV cache):");
        let prefixes: &[usize] = if quick {
            &[16, 64, 256, 1024]
        } else {
            &[16, 32, 64, 128, 256, 512, 1024, 2048]
        };
        let mut base = None;
        for &p in prefixes {
            let (_, per_token) = decode_with_cache(&model, p, if quick { 8 } else { 32 });
            let base_t = *base.get_or_insert(per_token);
            println!(
                "    prefix {p:5}: {:6.2} ms/token  (×{:.2} of prefix {}; ×{} if it grew linearly)",
                per_token * 1e3,
                per_token / base_t,
                prefixes[0],
                p / prefixes[0]
            );
        }
        println!();
    }

    println!("summary (tokens/s, greedy with KV cache)");
    println!("| size  | prefix | KV cache tok/s | no cache tok/s |");
    println!("|-------|--------|----------------|----------------|");
    for (name, prefix, tps, _, tps_ref) in rows {
        println!("| {name:5} | {prefix:6} | {tps:14.1} | {tps_ref:14.1} |");
    }
}
