//! Writes `heads.pgm` (columns: synthetic subjects; rows: T1, T2, FLAIR, CT (−100…200 HU); each
//! cell axial | coronal | sagittal through the eyes on the midline, 2 mm pixels) and, when the
//! anatomy cache has FreeSurfer's `fsaverage/mri/T1.mgz`, `fsaverage_T1.pgm` in the same
//! layout through the same template point, for comparing by eye. Greyscale PGM keeps this
//! example free of image dependencies; `scripts/pgm_to_png.py` turns them into small PNGs.
//!
//! `cargo run --release -p synth --example head_montages -- [OUT_DIR] [SEEDS]` (defaults:
//! /tmp/head-montages, `0,1,2,3`; fsaverage when the cache has it, else the phantom).

use synth::contrast::Contrast;
use synth::labels::GLOBE;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};
use voxel::render::{render_triplanar, Focus, RenderOptions, RgbImage, Window};

/// The grey channel of pictures stacked in rows, each row left-aligned.
fn stack(rows: &[RgbImage]) -> (usize, usize, Vec<u8>) {
    let w = rows.iter().map(|r| r.width).max().unwrap_or(0);
    let h: usize = rows.iter().map(|r| r.height).sum();
    let mut out = vec![0u8; w * h];
    let mut y0 = 0;
    for r in rows {
        for y in 0..r.height {
            for x in 0..r.width {
                out[(y0 + y) * w + x] = r.pixels[3 * (y * r.width + x)];
            }
        }
        y0 += r.height;
    }
    (w, h, out)
}

fn write_pgm(path: &std::path::Path, w: usize, h: usize, grey: &[u8]) -> std::io::Result<()> {
    let mut bytes = format!("P5\n{w} {h}\n255\n").into_bytes();
    bytes.extend_from_slice(grey);
    std::fs::write(path, bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = std::path::PathBuf::from(args.first().map_or("/tmp/head-montages", |s| s));
    let seeds: Vec<u64> = args
        .get(1)
        .map_or("0,1,2,3", |s| s)
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(&out)?;
    let config = SynthConfig::builtin()?;
    let vocab = Vocabulary::builtin()?;
    let t = std::time::Instant::now();
    let anatomy = if std::env::var_os("HEAD_MONTAGES_PHANTOM").is_some() {
        synth::Anatomy::phantom(2.0, &config.head)?
    } else {
        synth::subject::default_anatomy(&config)?
    };
    println!(
        "anatomy {} {:?} with head in {:.0} ms",
        anatomy.name,
        anatomy.labels.shape(),
        t.elapsed().as_secs_f64() * 1e3
    );
    if std::env::var_os("HEAD_MONTAGES_WRITE_LABELS").is_some() {
        voxel::io::write_labels(&out.join("anatomy_labels.nii.gz"), &anatomy.labels)?;
    }
    let contrasts = [Contrast::T1, Contrast::T2, Contrast::Flair, Contrast::Ct];
    let spec = SubjectSpec {
        contrasts: contrasts.to_vec(),
        lesions: vec![],
        sessions: 1,
        spacing_mm: [2.0; 3],
        mode: IntensityMode::Realistic,
    };
    let focus_of = |labels: &voxel::LabelMap| -> Option<[f64; 3]> {
        let m = labels.mask_of(GLOBE);
        voxel::measure::centroid_mm(&m).ok()
    };
    let mut columns: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for &seed in &seeds {
        let sub = synthesize_subject(&anatomy, &spec, &config, &vocab, "h", seed)?;
        let s = &sub.sessions[0];
        println!(
            "seed {seed}: field of view {:?}, random extracerebral classes {}, grid {:?}",
            sub.field_of_view,
            sub.random_extracerebral,
            s.labels.shape()
        );
        // Through the eyes; where random classes replaced them, through where they would be
        // (the same subject without the randomisation has the same geometry).
        let focus = match focus_of(&s.labels) {
            Some(p) => Some(p),
            None => {
                let mut plain = config.clone();
                plain.head.random_fields_probability = 0.0;
                let twin = synthesize_subject(&anatomy, &spec, &plain, &vocab, "h", seed)?;
                focus_of(&twin.sessions[0].labels)
            }
        };
        let focus = focus.map_or(Focus::Centre, Focus::WorldMm);
        let rows = contrasts
            .iter()
            .map(|c| {
                render_triplanar(
                    &s.images[c].image,
                    &RenderOptions {
                        focus,
                        window: Window::Range {
                            low: 0.0,
                            high: 1.0,
                        },
                        overlay: None,
                        pixel_mm: Some(2.0),
                    },
                )
            })
            .collect::<voxel::Result<Vec<_>>>()?;
        columns.push(stack(&rows));
    }
    // Columns side by side with a 4-pixel gap.
    let h = columns.iter().map(|c| c.1).max().unwrap_or(0);
    let w: usize = columns.iter().map(|c| c.0 + 4).sum();
    let mut grey = vec![0u8; w * h];
    let mut x0 = 0;
    for (cw, ch, px) in &columns {
        for y in 0..*ch {
            grey[y * w + x0..y * w + x0 + cw].copy_from_slice(&px[y * cw..(y + 1) * cw]);
        }
        x0 += cw + 4;
    }
    write_pgm(&out.join("heads.pgm"), w, h, &grey)?;
    if let Some(dir) = synth::anatomy::default_cache_dir() {
        let t1 = dir.join("fsaverage/T1.mgz");
        if t1.exists() {
            let img = voxel::io::read_image(&t1)?.to_ras();
            let focus = focus_of(&anatomy.labels).map_or(Focus::Centre, Focus::WorldMm);
            let pic = render_triplanar(
                &img,
                &RenderOptions {
                    focus,
                    window: Window::Auto,
                    overlay: None,
                    pixel_mm: Some(2.0),
                },
            )?;
            let (w, h, g) = stack(&[pic]);
            write_pgm(&out.join("fsaverage_T1.pgm"), w, h, &g)?;
        }
    }
    println!("wrote {}", out.display());
    Ok(())
}
