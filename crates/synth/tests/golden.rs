//! Output regression: a fixed set of subjects (every lesion class, two sessions, the phantom and
//! fsaverage) must synthesise to the outputs recorded in `tests/fixtures/golden_{anatomy}.json`,
//! so a refactor or a move of constants into the configuration cannot change the data engine
//! unnoticed. The phantom subjects take well under a second; the fsaverage ones a few seconds,
//! most of it building fsaverage's head model.
//!
//! Each image, label map, lesion map and `subject.json` is recorded twice: as an FNV-1a hash of
//! its exact bytes, and as a summary robust to last-bit floating-point differences (label and
//! lesion maps: the hash of their integer values; images: count, mean, sd, min and max;
//! `subject.json`: the hash of its text with every number rounded to 9 significant digits).
//! The summaries are checked everywhere; the exact hashes only on x86-64 Linux, where the
//! fixture was recorded (other platforms' libm may differ in the last bit of `exp` or `sin`).
//!
//! After an intended change of the outputs, rewrite the fixture with
//! `VOXELPROMPT_BLESS=1 cargo test -p synth --test golden` and say why in the commit.

mod common;

use serde_json::{json, Map, Value};
use std::path::PathBuf;
use synth::anatomy::Anatomy;
use synth::contrast::Contrast;
use synth::lesion::LesionClass;
use synth::subject::subject_json;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};

/// FNV-1a, 64 bit: small, dependency-free and stable.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn hash_f32(data: &[f32]) -> String {
    fnv1a(data.iter().flat_map(|v| v.to_le_bytes()))
}

fn hash_i32(data: &[i32]) -> String {
    fnv1a(data.iter().flat_map(|v| v.to_le_bytes()))
}

/// `v` with every number rounded to 9 significant digits.
fn rounded(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(0.0);
            let r: f64 = format!("{x:.8e}").parse().unwrap_or(x);
            json!(r)
        }
        Value::Array(a) => Value::Array(a.iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), rounded(v))).collect()),
        other => other.clone(),
    }
}

fn image_summary(data: &[f32]) -> Value {
    let n = data.len() as f64;
    let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let min = data.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    json!([data.len(), mean, var.sqrt(), min, max])
}

/// One subject of the set: its name, anatomy (`phantom` or `fsaverage`), lesions, voxel size
/// and intensity mode.
struct Case {
    name: &'static str,
    anatomy: &'static str,
    lesions: &'static [LesionClass],
    spacing_mm: [f64; 3],
    mode: IntensityMode,
}

const CASES: &[Case] = {
    use IntensityMode::*;
    use LesionClass::*;
    &[
        Case {
            name: "glioma_wmh",
            anatomy: "phantom",
            lesions: &[Glioma, Wmh],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "metastases",
            anatomy: "phantom",
            lesions: &[Metastasis, Metastasis],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "acute_infarct",
            anatomy: "phantom",
            lesions: &[AcuteInfarct],
            spacing_mm: [4.0; 3],
            mode: Randomised,
        },
        Case {
            name: "chronic_infarct_haemorrhage",
            anatomy: "phantom",
            lesions: &[ChronicInfarct, Haemorrhage],
            spacing_mm: [4.0, 4.0, 6.0],
            mode: Realistic,
        },
        Case {
            name: "meningioma",
            anatomy: "phantom",
            lesions: &[Meningioma],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "arachnoid_cyst",
            anatomy: "phantom",
            lesions: &[ArachnoidCyst],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "subdural",
            anatomy: "phantom",
            lesions: &[SubduralHaematoma],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "abscess",
            anatomy: "phantom",
            lesions: &[Abscess],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "fsaverage_glioma_meningioma_subdural",
            anatomy: "fsaverage",
            lesions: &[Glioma, Meningioma, SubduralHaematoma],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
        Case {
            name: "fsaverage_infarct_abscess_cyst_haemorrhage",
            anatomy: "fsaverage",
            lesions: &[AcuteInfarct, Abscess, ArachnoidCyst, Haemorrhage],
            spacing_mm: [4.0; 3],
            mode: Realistic,
        },
    ]
};

const CONTRASTS: [Contrast; 5] = [
    Contrast::T1,
    Contrast::Flair,
    Contrast::T1c,
    Contrast::Ct,
    Contrast::Adc,
];

fn fixture_path(anatomy: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/golden_{anatomy}.json"))
}

/// `{ item: { "exact": hash, "summary": value } }` for every output of every case on `anatomy`.
fn record_outputs(anatomy: &Anatomy, which: &str) -> Map<String, Value> {
    let config = SynthConfig::builtin().unwrap();
    let vocab = Vocabulary::builtin().unwrap();
    let mut out = Map::new();
    for (i, case) in CASES.iter().enumerate() {
        if case.anatomy != which {
            continue;
        }
        let spec = SubjectSpec {
            contrasts: CONTRASTS.to_vec(),
            lesions: case.lesions.to_vec(),
            sessions: 2,
            spacing_mm: case.spacing_mm,
            mode: case.mode,
        };
        let seed = 1000 + i as u64;
        let subject = synthesize_subject(anatomy, &spec, &config, &vocab, case.name, seed)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut put = |key: String, exact: String, summary: Value| {
            out.insert(key, json!({ "exact": exact, "summary": summary }));
        };
        for (k, s) in subject.sessions.iter().enumerate() {
            let at = |what: &str| format!("{}/ses-{k}/{what}", case.name);
            put(
                at("labels"),
                hash_i32(s.labels.data()),
                json!(hash_i32(s.labels.data())),
            );
            put(
                at("lesions"),
                hash_i32(s.lesions.data()),
                json!(hash_i32(s.lesions.data())),
            );
            for (c, img) in &s.images {
                put(
                    at(c.name()),
                    hash_f32(img.image.data()),
                    image_summary(img.image.data()),
                );
                if let Some(hu) = &img.hu {
                    put(at("ct_hu"), hash_f32(hu.data()), image_summary(hu.data()));
                }
            }
        }
        let js = subject_json(&subject, &spec);
        let text = serde_json::to_string_pretty(&js).unwrap();
        let round = serde_json::to_string(&rounded(&js)).unwrap();
        put(
            format!("{}/subject.json", case.name),
            fnv1a(text.bytes()),
            json!(fnv1a(round.bytes())),
        );
    }
    out
}

/// Whether two summaries agree: equal, or numbers within a relative 1e-6 (images).
fn summaries_agree(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| summaries_agree(p, q))
        }
        (Value::Number(p), Value::Number(q)) => {
            let (p, q) = (
                p.as_f64().unwrap_or(f64::NAN),
                q.as_f64().unwrap_or(f64::NAN),
            );
            (p - q).abs() <= 1e-6 * p.abs().max(q.abs()).max(1e-3)
        }
        _ => a == b,
    }
}

/// Synthesises the cases of `which` from `anatomy` and compares them with their fixture (or
/// rewrites it under `VOXELPROMPT_BLESS=1`).
fn check(anatomy: &Anatomy, which: &str) {
    let t = std::time::Instant::now();
    let got = record_outputs(anatomy, which);
    println!(
        "synthesised {} outputs in {:.1} s",
        got.len(),
        t.elapsed().as_secs_f64()
    );
    let path = fixture_path(which);
    if std::env::var("VOXELPROMPT_BLESS").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&Value::Object(got)).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
        println!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (write it with VOXELPROMPT_BLESS=1)",
            path.display()
        )
    });
    let want: Map<String, Value> = serde_json::from_str(&text).unwrap();
    let exact_platform = cfg!(all(target_arch = "x86_64", target_os = "linux"));
    let mut failures = Vec::new();
    for (key, g) in &got {
        let Some(w) = want.get(key) else {
            failures.push(format!("{key}: not in the fixture"));
            continue;
        };
        if !summaries_agree(&g["summary"], &w["summary"]) {
            failures.push(format!(
                "{key}: summary {} != recorded {}",
                g["summary"], w["summary"]
            ));
        } else if exact_platform && g["exact"] != w["exact"] {
            failures.push(format!(
                "{key}: exact hash {} != recorded {} (summaries agree: last-bit float change?)",
                g["exact"], w["exact"]
            ));
        }
    }
    for key in want.keys() {
        if !got.contains_key(key) {
            failures.push(format!("{key}: recorded but not produced"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} outputs differ from {} (after an intended change, rewrite it with \
         VOXELPROMPT_BLESS=1):\n{}",
        failures.len(),
        got.len(),
        path.display(),
        failures.join("\n")
    );
}

#[test]
fn phantom_outputs_match_the_fixture() {
    let config = SynthConfig::builtin().unwrap();
    check(&Anatomy::phantom(4.0, &config.head).unwrap(), "phantom");
}

#[test]
fn fsaverage_outputs_match_the_fixture() {
    let config = SynthConfig::builtin().unwrap();
    let Some(anatomy) = common::fsaverage_or_skip(&config) else {
        return;
    };
    check(&anatomy, "fsaverage");
}
