//! Native thick-slice grids (e.g. 2×2×6 mm) carry through-slice partial volume: with every
//! other source of mixing switched off (no blur, texture, noise, bias), a CT on an isotropic
//! grid holds only the tissue HU values, while on a thick-slice grid the voxels whose slab
//! crosses a boundary take values in between, and the slab average conserves the total.

use synth::anatomy::Anatomy;
use synth::contrast::Contrast;
use synth::lesion::LesionClass;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};

fn flat_config() -> SynthConfig {
    let mut config = SynthConfig::builtin().unwrap();
    config.intensity.blur_sigma_vox = [0.0, 0.0];
    config.intensity.ct_blur_sigma_mm = [0.0, 0.0];
    config.intensity.texture_sd = [0.0, 0.0];
    config.intensity.noise_sd = [0.0, 0.0];
    config.intensity.bias_sd = [0.0, 0.0];
    config.spatial.thick_slice_probability = 0.0;
    config
}

/// HU image, the distinct tissue HU values of its label map, and the "mass" Σ (HU + 1000)·mL.
fn ct(spacing_mm: [f64; 3], seed: u64) -> (Vec<f32>, Vec<f32>, f64, [usize; 3]) {
    let config = flat_config();
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(2.0, &config.head).unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::Ct],
        lesions: vec![LesionClass::Glioma],
        sessions: 1,
        spacing_mm,
        mode: IntensityMode::Realistic,
    };
    let s = synthesize_subject(&anatomy, &spec, &config, &vocab, "slab", seed).unwrap();
    let session = &s.sessions[0];
    let hu = session.images[&Contrast::Ct].hu.clone().unwrap();
    let ml = hu.geometry().voxel_volume_mm3() / 1000.0;
    let mass = hu.data().iter().map(|&v| (v as f64 + 1000.0) * ml).sum();
    // The HU of each (label, lesion) pair present, read off voxels whose slab is one tissue on
    // the isotropic grid; on the thick grid collected from the isotropic subject below.
    let mut levels: Vec<f32> = hu.data().to_vec();
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup_by(|a, b| (*a - *b).abs() < 1e-3);
    (hu.data().to_vec(), levels, mass, hu.shape())
}

#[test]
fn thick_slices_mix_tissues_through_the_slab_and_conserve_the_total() {
    let seed = 11;
    let (iso, iso_levels, iso_mass, iso_shape) = ct([2.0; 3], seed);
    let (thick, _, thick_mass, thick_shape) = ct([2.0, 2.0, 6.0], seed);
    // The isotropic grid has only the handful of tissue values; the thick one at least 3 sub-
    // slices, so many more.
    assert!(
        iso_levels.len() < 40,
        "isotropic CT with no blur should hold only tissue values, has {} levels",
        iso_levels.len()
    );
    let off_level = thick
        .iter()
        .filter(|&&v| {
            iso_levels
                .binary_search_by(|l| {
                    if (l - v).abs() < 1e-2 {
                        std::cmp::Ordering::Equal
                    } else {
                        l.total_cmp(&v)
                    }
                })
                .is_err()
        })
        .count();
    let head = thick.iter().filter(|&&v| v > -900.0).count();
    let frac = off_level as f64 / head as f64;
    assert!(
        frac > 0.05,
        "only {:.1} % of head voxels on the 6 mm grid are tissue mixtures",
        100.0 * frac
    );
    println!(
        "2 mm: {} HU levels; 2×2×6 mm: {:.1} % of head voxels mixed; mass ratio {:.4}",
        iso_levels.len(),
        100.0 * frac,
        thick_mass / iso_mass
    );
    // Mixtures lie between the extreme tissue values.
    let (lo, hi) = (iso_levels[0], iso_levels[iso_levels.len() - 1]);
    assert!(thick.iter().all(|&v| v >= lo - 1e-2 && v <= hi + 1e-2));
    // Same subject, same field of view in mm: the integral of HU + 1000 agrees (the slab mean
    // neither creates nor loses tissue). Rounding the field of view to whole voxels moves its
    // edges, which lie in air (0 after the +1000 shift), so the totals agree closely.
    assert_eq!(iso_shape[0], thick_shape[0]);
    assert!(
        (thick_mass / iso_mass - 1.0).abs() < 0.02,
        "mass {thick_mass:.0} on 2×2×6 vs {iso_mass:.0} on 2 mm"
    );
    assert_eq!(iso.len(), iso_shape.iter().product::<usize>());
}

#[test]
fn thick_slice_sessions_keep_labels_and_records_on_the_output_grid() {
    let config = flat_config();
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(2.0, &config.head).unwrap();
    let spec = SubjectSpec {
        contrasts: vec![Contrast::T1, Contrast::Flair],
        lesions: vec![LesionClass::Glioma],
        sessions: 2,
        spacing_mm: [2.0, 2.0, 6.0],
        mode: IntensityMode::Realistic,
    };
    let a = synthesize_subject(&anatomy, &spec, &config, &vocab, "slab", 5).unwrap();
    let b = synthesize_subject(&anatomy, &spec, &config, &vocab, "slab", 5).unwrap();
    for (sa, sb) in a.sessions.iter().zip(&b.sessions) {
        let g = sa.labels.geometry();
        assert!((g.spacing_mm()[2] - 6.0).abs() < 1e-9);
        g.require_same_grid(sa.lesions.geometry(), "lesions")
            .unwrap();
        for img in sa.images.values() {
            g.require_same_grid(img.image.geometry(), "image").unwrap();
        }
        assert_eq!(sa.labels.data(), sb.labels.data(), "deterministic labels");
        assert_eq!(
            sa.images[&Contrast::Flair].image.data(),
            sb.images[&Contrast::Flair].image.data(),
            "deterministic images"
        );
        // Recorded lesion volume = the voxels of the written lesion map.
        let ml = g.voxel_volume_mm3() / 1000.0;
        let counted = sa.lesions.data().iter().filter(|&&l| l != 0).count() as f64 * ml;
        let recorded: f64 = sa
            .lesion_records
            .iter()
            .map(|r| r.volume_ml + r.edema_ml)
            .sum();
        assert!(
            (counted - recorded).abs() < 1e-6,
            "recorded {recorded} mL, lesion map {counted} mL"
        );
    }
    let g = &a.growth[0];
    let measured =
        a.sessions[1].lesion_records[0].volume_ml - a.sessions[0].lesion_records[0].volume_ml;
    assert!((g.change_ml - measured).abs() < 1e-9);
}
