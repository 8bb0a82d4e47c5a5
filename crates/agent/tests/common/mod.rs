//! A small synthetic task set for the agent tests: 20 prompts with multi-step programs and their
//! feedback, in the shape the `tasks` crate will produce (DESIGN.md §7).

#![allow(dead_code)]

use agent::{AgentSequence, AgentTokenizer, FeedbackItem, VolumeInfo};
use burn::prelude::*;

/// One training example: prompt, input volumes, and the program as steps with their feedback.
#[derive(Debug, Clone)]
pub struct Example {
    pub prompt: String,
    pub volumes: Vec<VolumeInfo>,
    /// `(code, feedback after it)`; the last step's feedback is empty (the program stopped).
    pub steps: Vec<(String, Vec<FeedbackItem>)>,
}

const STRUCTURES: [&str; 10] = [
    "left hippocampus",
    "right hippocampus",
    "left thalamus",
    "right caudate",
    "brain stem",
    "tumour",
    "left putamen",
    "cerebellum",
    "lateral ventricles",
    "white matter lesions",
];

fn t1(name: &str, date: Option<&str>) -> VolumeInfo {
    VolumeInfo {
        name: name.into(),
        modality: Some("T1w".into()),
        acquired: date.map(str::to_string),
    }
}

fn text(s: String) -> Vec<FeedbackItem> {
    vec![FeedbackItem::Text(s)]
}

/// The 20 distinct examples: 10 structures × 4 task shapes (volume, extents, growth between two
/// sessions, encode-then-generate with `<vol>` feedback), two shapes per structure.
pub fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    for i in 0..20 {
        let s = STRUCTURES[i % 10];
        let value = format!("{:.2}", 1.0 + i as f64 * 0.37);
        let ex = match (i / 10 + 2 * (i % 2)) % 4 {
            0 => Example {
                prompt: format!("What is the volume of the {s}?"),
                volumes: vec![t1("scan_1", None)],
                steps: vec![
                    (
                        "let m = generate(encode([scan_1]<mod>)<mod>); let v = volume(m); read(v);"
                            .into(),
                        text(format!("v = {value} mL")),
                    ),
                    (
                        format!("respond(\"The volume of the {s} is \" + v + \" mL\"); stop();"),
                        vec![],
                    ),
                ],
            },
            1 => Example {
                prompt: format!("How large is the {s} in each direction?"),
                volumes: vec![t1("scan_1", Some("2021-03-04"))],
                steps: vec![
                    (
                        "let m = generate(encode([scan_1]<mod>)<mod>); let e = extents(m); read(e);"
                            .into(),
                        text(format!("e = [{value}, 22.50, 30.10] mm")),
                    ),
                    (
                        format!(
                            "respond(\"The {s} spans \" + e[0] + \" x \" + e[1] + \" x \" + e[2] + \" mm\"); stop();"
                        ),
                        vec![],
                    ),
                ],
            },
            2 => Example {
                prompt: format!("How much did the {s} change between the two scans?"),
                volumes: vec![
                    t1("scan_1", Some("2020-01-10")),
                    t1("scan_2", Some("2021-01-12")),
                ],
                steps: vec![
                    (
                        "let a = generate(encode([scan_1, scan_2]<mod>)<mod>); let b = generate(encode([scan_2, scan_1]<mod>)<mod>);"
                            .into(),
                        vec![],
                    ),
                    (
                        "let d = volume(b) - volume(a); read(d);".into(),
                        text(format!("d = {value} mL")),
                    ),
                    (
                        format!("respond(\"The {s} changed by \" + d + \" mL\"); stop();"),
                        vec![],
                    ),
                ],
            },
            _ => Example {
                prompt: format!("Find the {s} and report its volume."),
                volumes: vec![VolumeInfo {
                    name: "scan_1".into(),
                    modality: Some("FLAIR".into()),
                    acquired: None,
                }],
                steps: vec![
                    (
                        "let z = encode([scan_1]<mod>); read(z);".into(),
                        vec![
                            FeedbackItem::Text("z = ".into()),
                            FeedbackItem::Encoding { streams: vec![Vec::new(); 1] },
                        ],
                    ),
                    (
                        "let m = generate(z<mod>); let v = volume(m); read(v);".into(),
                        text(format!("v = {value} mL")),
                    ),
                    (
                        format!("respond(\"Found the {s}: \" + v + \" mL\"); stop();"),
                        vec![],
                    ),
                ],
            },
        };
        out.push(ex);
    }
    out
}

/// Every text of the examples, for tokenizer training.
pub fn corpus(examples: &[Example]) -> Vec<String> {
    let mut c = Vec::new();
    for ex in examples {
        c.push(ex.prompt.clone());
        c.extend(ex.volumes.iter().map(|v| v.render()));
        for (code, feedback) in &ex.steps {
            c.push(code.clone());
            for item in feedback {
                if let FeedbackItem::Text(t) = item {
                    c.push(t.clone());
                }
            }
        }
    }
    c
}

/// The tokenizer of the test corpus (fits the `tiny` config's 512 ids).
pub fn tokenizer(examples: &[Example]) -> AgentTokenizer {
    AgentTokenizer::train(corpus(examples), 512).expect("tokenizer trains on the test corpus")
}

/// μ₁ of an example.
pub fn initial(tok: &AgentTokenizer, ex: &Example) -> AgentSequence {
    AgentSequence::initial(tok, &ex.prompt, &ex.volumes).expect("μ₁ builds")
}

/// The full teacher-forcing sequence of an example: μ₁, then every step and its feedback.
pub fn full_sequence(tok: &AgentTokenizer, ex: &Example) -> AgentSequence {
    let mut seq = initial(tok, ex);
    for (code, feedback) in &ex.steps {
        seq.push_step(tok, code).expect("step appends");
        if !feedback.is_empty() {
            seq.push_feedback(tok, feedback).expect("feedback appends");
        }
    }
    seq
}

/// Number of `<vol>` slots in an example's feedback.
pub fn n_vol(ex: &Example) -> usize {
    ex.steps
        .iter()
        .flat_map(|(_, f)| f)
        .map(FeedbackItem::vol_slots)
        .sum()
}

/// A fixed pseudo-random ε° `[n, d]` (stands in for the vision encoder's output).
pub fn fixed_eps(n: usize, d: usize, salt: u64, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..n * d)
        .map(|i| {
            let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, d]), device)
}

/// The ε° rows a runtime would push with one step's feedback: one fixed row per `<vol>` slot,
/// salted by the example index (the same rows as in training when an example has one such
/// feedback).
pub fn feedback_eps(
    feedback: &[FeedbackItem],
    d: usize,
    salt: u64,
    device: &Device,
) -> Option<Tensor<2>> {
    let slots: usize = feedback.iter().map(FeedbackItem::vol_slots).sum();
    (slots > 0).then(|| fixed_eps(slots, d, salt, device))
}

/// Largest absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The values of a float tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 tensor")
}
