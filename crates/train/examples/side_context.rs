//! Which side of the head the model draws a lateral target on, three ways (session 24):
//!
//! - default: held-out `segment_anatomy` samples whose target is one side of a paired
//!   structure: the program's own mask and, from the same encoding, the same target and its
//!   mirror asked as extras (`let extra = generate(e /* right thalamus */ <mod>);` after the
//!   program); Dice and predicted:true volume of each.
//! - `SIDE_PAIRS=1`: extras only, per subject: "left X" and "right X" of four structures, each
//!   scored against its own side's truth and the other side's (a mask on the wrong side, or on
//!   both, scores there too). The 16 extras follow each other in one sequence, a longer context
//!   than training's two, so the later ones are a rough reading.
//! - `PHI=1`: the side gate's offsets `(a_left, a_right)` of the ϕ the agent emits for "X",
//!   "left X" and "right X" written into held-out programs: what the gate does with the words.
//!
//! `NO_GATE=1` drops the side gate first (the network's own sides).
//!
//! ```text
//! cargo run --release -p train --example side_context -- models/voxelprompt-small 24
//! PHI=1 cargo run --release -p train --example side_context -- models/voxelprompt-small 6
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use tasks::program::{GenerateTarget, ModMeaning};
use tasks::truth::MaskDef;
use train::joint::{sample_loss_with_extras, LossContext};
use train::model::Model;
use train::trainer::{JointSampler, JointSettings};

fn mirrored(description: &str) -> Option<String> {
    if let Some(rest) = description.strip_prefix("left ") {
        Some(format!("right {rest}"))
    } else {
        description
            .strip_prefix("right ")
            .map(|rest| format!("left {rest}"))
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        bail!("usage: side_context MODEL_DIR [SAMPLES]");
    };
    let wanted: usize = args.next().map_or(Ok(30), |s| s.parse())?;
    let device = Device::flex();
    let (mut model, _) =
        Model::load(&dir, &device).with_context(|| format!("loading {}", dir.display()))?;
    if std::env::var("NO_GATE").is_ok() {
        model.net.vision.side_gate = None;
    }
    let mut settings = JointSettings::builtin()?;
    settings.anatomy = "all".into();
    let sampler = JointSampler::new(&settings, model.config.preprocessing.spacing_mm, 777)?;
    let ctx = LossContext {
        net: &model.net,
        tokenizer: &model.tokenizer,
        preprocessing: &model.config.preprocessing,
        dice_weight: 1.0,
        bce_weight: 0.0,
        side_gate_weight: 0.0,
        lesion_positive_weight_max: 1.0,
        phi_namer: None,
    };
    if std::env::var("PHI").is_ok() {
        return phis(&model, &sampler, wanted);
    }
    if std::env::var("SIDE_PAIRS").is_ok() {
        return pairs(&sampler, &ctx, wanted);
    }
    let (mut found, mut seed) = (0usize, 0u64);
    let mut sums = [0.0f64; 3];
    println!("target | program Dice (pred:true) | same as extra | mirror as extra");
    while found < wanted && seed < 5000 {
        seed += 1;
        let cat = &sampler.catalogues()[(seed % sampler.catalogues().len() as u64) as usize];
        let sample = cat.sample("segment_anatomy", 1_000_000 + seed)?;
        let Some(target) = sample
            .program
            .iter()
            .flat_map(|s| &s.mods)
            .find_map(|m| match m {
                ModMeaning::Generate { target } => Some(target.clone()),
                ModMeaning::Encode { .. } => None,
            })
        else {
            continue;
        };
        let Some(other) = mirrored(&target.description) else {
            continue;
        };
        let Ok(mirror_target) = cat.target_index(&other).and_then(|i| cat.target(i)) else {
            continue;
        };
        let mirror = GenerateTarget {
            name: "extra".into(),
            description: mirror_target.name.clone(),
            mask: MaskDef::Anatomy {
                ids: mirror_target.anatomy_ids(),
            },
        };
        let loss = sample_loss_with_extras(&ctx, &sample, &[target.clone(), mirror])?;
        if loss.masks.len() != 3 {
            continue;
        }
        found += 1;
        let cell = |i: usize| {
            let m = &loss.masks[i];
            format!(
                "{:.3} ({:.2})",
                m.dice,
                m.predicted_voxels as f64 / m.truth_voxels.max(1) as f64
            )
        };
        for (i, s) in sums.iter_mut().enumerate() {
            *s += loss.masks[i].dice;
        }
        println!(
            "{} [{}] | {} | {} | {}",
            target.description,
            sample.inputs[0].contrast.name(),
            cell(0),
            cell(1),
            cell(2)
        );
    }
    let n = found.max(1) as f64;
    println!(
        "mean over {found}: program {:.3}, same as extra {:.3}, mirror as extra {:.3}",
        sums[0] / n,
        sums[1] / n,
        sums[2] / n
    );
    Ok(())
}

/// Extras only: for each paired structure, each side's ϕ scored against its own side's truth
/// and against the other side's (a mask on the wrong side scores high there).
fn pairs(sampler: &JointSampler, ctx: &LossContext<'_>, subjects: usize) -> Result<()> {
    const STRUCTURES: [&str; 4] = [
        "thalamus",
        "hippocampus",
        "caudate nucleus",
        "lateral ventricle",
    ];
    let mut sums = vec![[0.0f64; 4]; STRUCTURES.len()];
    println!("structure [contrast] | L vs L truth | L vs R truth | R vs R truth | R vs L truth");
    for seed in 0..subjects as u64 {
        let cat = &sampler.catalogues()[(seed % sampler.catalogues().len() as u64) as usize];
        let sample = cat.sample("segment_anatomy", 2_000_000 + seed)?;
        let mut extras = Vec::new();
        for s in STRUCTURES {
            let left = cat.target(cat.target_index(&format!("left {s}"))?)?;
            let right = cat.target(cat.target_index(&format!("right {s}"))?)?;
            for (asked, truth) in [(left, left), (left, right), (right, right), (right, left)] {
                extras.push(GenerateTarget {
                    name: "extra".into(),
                    description: asked.name.clone(),
                    mask: MaskDef::Anatomy {
                        ids: truth.anatomy_ids(),
                    },
                });
            }
        }
        let loss = sample_loss_with_extras(ctx, &sample, &extras)?;
        let scored: Vec<_> = loss.masks.iter().filter(|m| m.extra).collect();
        if scored.len() != extras.len() {
            continue;
        }
        for (k, s) in STRUCTURES.iter().enumerate() {
            let d: Vec<f64> = scored[4 * k..4 * k + 4].iter().map(|m| m.dice).collect();
            for i in 0..4 {
                sums[k][i] += d[i];
            }
            println!(
                "{s} [{}] | {:.3} | {:.3} | {:.3} | {:.3}",
                sample.inputs[0].contrast.name(),
                d[0],
                d[1],
                d[2],
                d[3]
            );
        }
    }
    for (k, s) in STRUCTURES.iter().enumerate() {
        let n = subjects as f64;
        println!(
            "mean {s}: L/L {:.3} L/R {:.3} R/R {:.3} R/L {:.3}",
            sums[k][0] / n,
            sums[k][1] / n,
            sums[k][2] / n,
            sums[k][3] / n
        );
    }
    Ok(())
}

/// The gate's offsets `(a_left, a_right)` of the ϕ the agent emits for a structure, its left and
/// its right half, each written into the `generate` of held-out `segment_anatomy` programs (and
/// their prompts) in place of the programs' own target; means over `samples` programs.
fn phis(model: &Model, sampler: &JointSampler, samples: usize) -> Result<()> {
    use burn::tensor::{Tensor, TensorData};
    const STRUCTURES: [&str; 4] = [
        "thalamus",
        "hippocampus",
        "caudate nucleus",
        "lateral ventricle",
    ];
    let Some(gate) = &model.net.vision.side_gate else {
        bail!("the model has no side gate");
    };
    let device = Device::flex();
    for s in STRUCTURES {
        let variants = [s.to_string(), format!("left {s}"), format!("right {s}")];
        let mut mean_phi = vec![vec![0.0f64; 0]; 3];
        let mut offsets = [[0.0f64; 2]; 3];
        let mut n = 0usize;
        for seed in 0..samples as u64 {
            let cat = &sampler.catalogues()[(seed % sampler.catalogues().len() as u64) as usize];
            let sample = cat.sample("segment_anatomy", 3_000_000 + seed)?;
            let Some(original) =
                sample
                    .program
                    .iter()
                    .flat_map(|s| &s.mods)
                    .find_map(|m| match m {
                        ModMeaning::Generate { target } => Some(target.description.clone()),
                        ModMeaning::Encode { .. } => None,
                    })
            else {
                continue;
            };
            let mut rows = Vec::new();
            for v in &variants {
                let mut edited = sample.clone();
                for step in &mut edited.program {
                    step.code = step.code.replace(&original, v);
                }
                edited.prompt.text = edited.prompt.text.replace(&original, v);
                let phis = train::joint::generator_phis(&model.net, &model.tokenizer, &edited)?;
                let Some(phi) = phis.first() else { break };
                rows.push(phi.clone());
            }
            if rows.len() != 3 {
                continue;
            }
            n += 1;
            let width = rows[0].len();
            let flat: Vec<f32> = rows.iter().flatten().copied().collect();
            let t = Tensor::<2>::from_data(TensorData::new(flat, [3, width]), &device);
            let o = gate
                .offsets(&t)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            for i in 0..3 {
                offsets[i][0] += f64::from(o[2 * i]);
                offsets[i][1] += f64::from(o[2 * i + 1]);
                if mean_phi[i].is_empty() {
                    mean_phi[i] = vec![0.0; width];
                }
                for (m, x) in mean_phi[i].iter_mut().zip(&rows[i]) {
                    *m += f64::from(*x);
                }
            }
        }
        let n = n.max(1) as f64;
        for (i, v) in variants.iter().enumerate() {
            println!(
                "{v:28} a_left {:+.2} a_right {:+.2}",
                offsets[i][0] / n,
                offsets[i][1] / n
            );
        }
        let d = |a: &[f64], b: &[f64]| -> f64 {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt()
                / n
        };
        let norm = |a: &[f64]| a.iter().map(|x| x * x).sum::<f64>().sqrt() / n;
        let left_dir: Vec<f64> = mean_phi[1]
            .iter()
            .zip(&mean_phi[0])
            .map(|(a, b)| a - b)
            .collect();
        let right_dir: Vec<f64> = mean_phi[2]
            .iter()
            .zip(&mean_phi[0])
            .map(|(a, b)| a - b)
            .collect();
        println!(
            "  |ϕ| {:.2}; |left − both| {:.2}, |right − both| {:.2}; cosine(left − both, right − both) {:+.2}",
            norm(&mean_phi[0]),
            d(&mean_phi[1], &mean_phi[0]),
            d(&mean_phi[2], &mean_phi[0]),
            train::stats::cosine(&left_dir, &right_dir)
        );
    }
    Ok(())
}
