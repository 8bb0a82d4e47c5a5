//! Writes a PNG montage per lesion class and seed, `CLASS-SEED.png` (rows: FLAIR, T1
//! post-contrast, DWI, CT, and T1 post-contrast with the lesion map in red; columns: sagittal,
//! coronal, axial through the lesion), and prints what was recorded and measured.
//!
//! `cargo run -p synth --example lesion_montages -- [OUT_DIR] [SPACING_MM] [SEEDS] [ANATOMY]
//! [CLASSES]` (defaults: /tmp/synth-montages, 2 mm, 1 seed, fsaverage when the anatomy cache
//! has it, else `phantom`; every class, or a comma-separated list).

use synth::contrast::Contrast;
use synth::lesion::{ids, LesionClass};
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = std::path::PathBuf::from(args.first().map_or("/tmp/synth-montages", |s| s));
    let spacing: f64 = args.get(1).map_or(Ok(2.0), |s| s.parse())?;
    let seeds: u64 = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let config = SynthConfig::builtin()?;
    let vocab = Vocabulary::builtin()?;
    let anatomy = if args.get(3).is_some_and(|a| a == "phantom") {
        synth::Anatomy::phantom(spacing, &config.head)?
    } else {
        synth::subject::default_anatomy(&config)?
    };
    std::fs::create_dir_all(&out)?;
    let contrasts = vec![
        Contrast::T1,
        Contrast::T2,
        Contrast::Flair,
        Contrast::Gre,
        Contrast::Dwi,
        Contrast::Adc,
        Contrast::T1c,
        Contrast::Ct,
    ];
    println!("anatomy {} at {spacing} mm", anatomy.name);
    let classes = match args.get(4) {
        Some(list) => list
            .split(',')
            .map(LesionClass::parse)
            .collect::<synth::Result<Vec<_>>>()?,
        None => LesionClass::ALL.to_vec(),
    };
    for class in classes {
        let spec = SubjectSpec {
            contrasts: contrasts.clone(),
            lesions: vec![class],
            sessions: 1,
            spacing_mm: [spacing; 3],
            mode: IntensityMode::Realistic,
        };
        for seed in 0..seeds {
            let t = std::time::Instant::now();
            let sub = synthesize_subject(&anatomy, &spec, &config, &vocab, "m", seed)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let s = &sub.sessions[0];
            let r = &s.lesion_records[0];
            let lesion: Vec<usize> = (0..s.lesions.data().len())
                .filter(|&i| s.lesions.data()[i] != 0 && s.lesions.data()[i] != ids::EDEMA)
                .collect();
            let on = |f: &dyn Fn(i32) -> bool| {
                lesion.iter().filter(|&&i| f(s.labels.data()[i])).count() as f64
                    / lesion.len().max(1) as f64
            };
            let csf = on(&|l| l == synth::anatomy::EXTRACEREBRAL_CSF);
            let skull = on(&|l| l == synth::anatomy::SKULL || l == synth::anatomy::SCALP);
            let comps: Vec<String> = r
                .components
                .iter()
                .map(|c| format!("{}:{:.1}", c.id, c.volume_ml))
                .collect();
            let ints: Vec<String> = r
                .intensity
                .iter()
                .map(|(c, i)| format!("{}={:?}", c.name(), i))
                .collect();
            // Mean image intensity in the lesion over that in the parenchyma 1–3 voxels away.
            let ratios: Vec<String> = [
                Contrast::T1,
                Contrast::T2,
                Contrast::Flair,
                Contrast::Gre,
                Contrast::Dwi,
                Contrast::Adc,
                Contrast::T1c,
            ]
            .iter()
            .map(|c| {
                format!(
                    "{}={:.2}",
                    c.name(),
                    ratio(&s.images[c].image, &s.labels, &s.lesions)
                )
            })
            .collect();
            let hu = s.images[&Contrast::Ct].hu.as_ref().expect("ct hu");
            let (hl, hb) = means(hu, &s.labels, &s.lesions);
            println!(
                "{:<18} seed {seed}: {:.1} mL (+{:.1} edema) [{}] {:?} site={} lobe={} terr={:?} restr={} enh={} on-CSF={:.0}% on-skull={:.0}% | {} | {} | CT {:.0}/{:.0} HU | {ms:.0} ms",
                class.name(),
                r.volume_ml,
                r.edema_ml,
                comps.join(" "),
                r.hemisphere,
                r.site,
                r.lobe,
                r.territory,
                r.restricted_diffusion,
                r.enhancement,
                100.0 * csf,
                100.0 * skull,
                ints.join(" "),
                ratios.join(" "),
                hl,
                hb,
            );
            {
                // Slices through the lesion voxel nearest the centroid (a crescent's centroid is
                // in the brain beside it).
                let g = s.labels.geometry();
                let nearest = lesion
                    .iter()
                    .copied()
                    .min_by(|&a, &b| {
                        let d = |v: usize| {
                            let c = g.coords(v);
                            let p = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
                            (0..3)
                                .map(|k| (p[k] - r.centroid_mm[k]).powi(2))
                                .sum::<f64>()
                        };
                        d(a).total_cmp(&d(b))
                    })
                    .unwrap_or(0);
                let c = g.coords(nearest);
                let img = |c: Contrast| &s.images[&c].image;
                let rows = [
                    (img(Contrast::Flair), None),
                    (img(Contrast::T1c), None),
                    (img(Contrast::Dwi), None),
                    (img(Contrast::Ct), None),
                    (img(Contrast::T1c), Some(&s.lesions)),
                ];
                let path = out.join(format!("{}-{seed}.png", class.name()));
                synth::preview::write_montage_rows(&path, &rows, c, 2)?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// Mean of `img` over the lesion proper and over non-lesion parenchyma 1–3 voxels from it.
fn means(img: &voxel::Image, labels: &voxel::LabelMap, lesions: &voxel::LabelMap) -> (f64, f64) {
    let sp = labels.geometry().spacing_mm()[0];
    let lesion = lesions.map(|l| l != 0);
    let near = voxel::morphology::dilate(&lesion, sp * 1.01).expect("dilate");
    let far = voxel::morphology::dilate(&lesion, sp * 3.01).expect("dilate");
    let (mut a, mut na, mut b, mut nb) = (0.0, 0, 0.0, 0);
    for i in 0..img.data().len() {
        let l = lesions.data()[i];
        if l != 0 && l != ids::EDEMA {
            a += img.data()[i] as f64;
            na += 1;
        } else if far.data()[i] && !near.data()[i] && l == 0 {
            let t = labels.data()[i];
            if matches!(t, 2 | 41 | 10..=13 | 17 | 18 | 26 | 28 | 49..=54 | 58 | 60 | 1000..=2999) {
                b += img.data()[i] as f64;
                nb += 1;
            }
        }
    }
    (a / na.max(1) as f64, b / nb.max(1) as f64)
}

fn ratio(img: &voxel::Image, labels: &voxel::LabelMap, lesions: &voxel::LabelMap) -> f64 {
    let (a, b) = means(img, labels, lesions);
    a / b.max(1e-6)
}
