//! Benchmark: one 2 mm subject (~96³) with T1 + FLAIR and one glioma, on one core (issue 3
//! target: ≤ 150 ms). Uses fsaverage when the anatomy cache has it, else the phantom. Prints the
//! median over repeated subjects and the stage split of one run.

use std::time::Instant;
use synth::contrast::Contrast;
use synth::lesion::LesionClass;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};

fn main() {
    let config = SynthConfig::builtin().expect("builtin config");
    let vocab = Vocabulary::builtin().expect("builtin vocabulary");
    let t0 = Instant::now();
    let anatomy = synth::subject::default_anatomy(&config).expect("anatomy");
    println!(
        "anatomy {} {:?} loaded with head model in {:.0} ms (once per run, not per subject)",
        anatomy.name,
        anatomy.labels.shape(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let spec = SubjectSpec {
        contrasts: vec![Contrast::T1, Contrast::Flair],
        lesions: vec![LesionClass::Glioma],
        sessions: 1,
        spacing_mm: [2.0; 3],
        mode: IntensityMode::Realistic,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    let mut ms: Vec<f64> = Vec::new();
    let mut voxels = 0;
    let mut by_fov: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    pool.install(|| {
        for seed in 0..12u64 {
            let t = Instant::now();
            let s = synthesize_subject(&anatomy, &spec, &config, &vocab, "bench", seed)
                .expect("subject");
            let elapsed = t.elapsed().as_secs_f64() * 1e3;
            ms.push(elapsed);
            let key = format!(
                "{:?}{}",
                s.field_of_view,
                if s.random_extracerebral {
                    "+random"
                } else {
                    ""
                }
            );
            by_fov.entry(key).or_default().push(elapsed);
            voxels += s.sessions[0].labels.geometry().num_voxels();
        }
    });
    for (k, v) in &by_fov {
        let shown: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        println!("  {k}: {} ms", shown.join(", "));
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    pool.install(|| stage_split(&anatomy, &config, &vocab));
    println!(
        "2 mm subject, t1+flair, 1 glioma, 1 thread: median {:.1} ms, min {:.1} ms, max {:.1} ms (mean grid {} voxels ≈ {:.0}³); target ≤ 150 ms",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1],
        voxels / ms.len(),
        ((voxels / ms.len()) as f64).cbrt()
    );
}

/// Times the stages of one subject separately, with the same public functions the pipeline uses.
fn stage_split(anatomy: &synth::Anatomy, config: &SynthConfig, vocab: &Vocabulary) {
    use synth::contrast::{render, Acquisition, SubjectTissues};
    use synth::rng::stream;
    use synth::spatial::{sample_grid, warp_labels, SpatialTransform};
    let mut rng = stream(3, 0);
    let centre = anatomy.labels.geometry().center_world();
    let tr = SpatialTransform::sample(&config.spatial, centre, &mut rng);
    let grid = sample_grid(&config.spatial, [2.0; 3], centre, &mut rng).expect("grid");
    let t = Instant::now();
    let labels = warp_labels(&anatomy.labels, &grid, &tr, &voxel::Affine::IDENTITY).expect("warp");
    let warp = t.elapsed().as_secs_f64() * 1e3;
    // The SynthStrip-style random classes, forced on (a quarter of subjects draw them).
    let mut forced = config.head.clone();
    forced.random_fields_probability = 1.0;
    let mut randomised = labels.clone();
    let t = Instant::now();
    synth::head::randomise_extracerebral(&mut randomised, &forced, 5).expect("random classes");
    let random_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(randomised);
    let t = Instant::now();
    let shape = synth::lesion::sample_lesion(
        LesionClass::Glioma,
        &labels,
        vocab,
        &config.lesions,
        &mut rng,
    )
    .expect("lesion");
    let place = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut lesions = labels.map(|_| 0i32);
    let v = synth::lesion::paint(
        &shape,
        &labels,
        &mut lesions,
        &voxel::Affine::IDENTITY,
        vocab,
    )
    .expect("paint");
    let paint = t.elapsed().as_secs_f64() * 1e3;
    let tissues = SubjectTissues::sample(config, IntensityMode::Realistic, &mut rng);
    let t = Instant::now();
    let means: Vec<_> = Contrast::ALL
        .iter()
        .map(|&c| tissues.means(config, c))
        .collect();
    let _ = synth::lesion::record(
        &shape,
        &v,
        &labels,
        &lesions,
        &means,
        vocab,
        config.intensity.iso_tolerance,
    );
    let rec = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut acq = Acquisition::sample(config, Contrast::T1, [2.0; 3], &mut rng);
    acq.thick_slices = None;
    let _ = render(&labels, &lesions, &means[0], &acq, config).expect("render");
    let render_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "stages (1 thread, {:?}): warp {warp:.1} ms, random head classes (when drawn) {random_ms:.1} ms, lesion placement {place:.1} ms, paint {paint:.1} ms, means+record {rec:.1} ms, render one contrast {render_ms:.1} ms",
        labels.shape()
    );
}
