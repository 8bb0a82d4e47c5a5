//! The head model around the brain: its parts are where anatomy puts them, its tissues look as
//! they do on each contrast, SynthStrip-style random classes never enter the skull cavity, and
//! fields of view cut the head where they say. Runs on the phantom (always available) and on
//! fsaverage when the anatomy cache has it.

use synth::anatomy::{Anatomy, EXTRACEREBRAL_CSF, SCALP, SKULL};
use synth::contrast::Contrast;
use synth::labels::*;
use synth::spatial::FovMode;
use synth::{synthesize_subject, IntensityMode, SubjectSpec, SynthConfig, Vocabulary};
use voxel::neighbourhood::face_neighbours;
use voxel::LabelMap;

fn anatomies(config: &SynthConfig) -> Vec<Anatomy> {
    let mut out = vec![Anatomy::phantom(2.0, &config.head).unwrap()];
    if let Some(dir) = synth::anatomy::default_cache_dir() {
        if dir.join("fsaverage/aparc+aseg.mgz").exists() {
            out.push(Anatomy::load("fsaverage", &dir, config).unwrap());
        } else if std::env::var_os("VOXELPROMPT_REQUIRE_DATA").is_some() {
            panic!("VOXELPROMPT_REQUIRE_DATA is set but fsaverage is not in the anatomy cache");
        }
    }
    out
}

/// Centroid (world mm) and voxel count of the voxels satisfying `want`.
fn centroid(labels: &LabelMap, want: impl Fn(i32) -> bool) -> ([f64; 3], usize) {
    let g = labels.geometry();
    let (mut s, mut n) = ([0.0; 3], 0);
    for (i, &l) in labels.data().iter().enumerate() {
        if want(l) {
            let c = g.coords(i);
            let p = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64]);
            for a in 0..3 {
                s[a] += p[a];
            }
            n += 1;
        }
    }
    (s.map(|v| v / n.max(1) as f64), n)
}

fn in_cavity(l: i32) -> bool {
    tissue_of_label(l).is_some_and(|t| !t.is_outside_cavity())
}

#[test]
fn head_parts_sit_where_anatomy_puts_them() {
    let config = SynthConfig::builtin().unwrap();
    for anatomy in anatomies(&config) {
        let labels = &anatomy.labels;
        let name = &anatomy.name;
        let present = labels.labels();
        for id in [
            EXTRACEREBRAL_CSF,
            SKULL,
            SCALP,
            DURA,
            FALX,
            TENTORIUM,
            DIPLOE,
            SUBCUTANEOUS_FAT,
            GLOBE,
            LENS,
            OPTIC_NERVE,
            ORBITAL_FAT,
            FRONTAL_SINUS,
            SPHENOID_SINUS,
            MAXILLARY_SINUS,
            MASTOID_AIR,
            NASAL_CAVITY,
            TEMPORALIS,
            MASSETER,
            NECK_MUSCLE,
            VERTEBRA,
            SPINAL_CORD,
            SPINAL_CSF,
            VENOUS_SINUS,
        ] {
            assert!(present.contains(&id), "{name} lacks {id}");
        }
        synth::labels::check_known(labels).unwrap();
        let bb = anatomy.brain_box;
        let (brain, _) = centroid(labels, |l| cerebral_side(l).is_some());
        let (left, nl) = centroid(labels, |l| cerebral_side(l) == Some(true));
        let (right, nr) = centroid(labels, |l| cerebral_side(l) == Some(false));
        assert!(nl > 0 && nr > 0);
        let midline = (left[0] + right[0]) / 2.0;
        // Eyes: in front of and below the cerebrum's centre, one on each side, lens in front.
        let g = labels.geometry();
        let (eye_l, _) = centroid(labels, |l| l == GLOBE);
        assert!(eye_l[1] > brain[1] + 40.0, "{name}: eyes at y {}", eye_l[1]);
        assert!(eye_l[2] < brain[2] - 20.0, "{name}: eyes at z {}", eye_l[2]);
        let mut sides = [0usize; 2];
        for (i, &l) in labels.data().iter().enumerate() {
            if l == GLOBE {
                let c = g.coords(i);
                let x = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])[0];
                sides[usize::from(x > midline)] += 1;
            }
        }
        let ratio = sides[0] as f64 / sides[1].max(1) as f64;
        assert!((0.8..1.25).contains(&ratio), "{name}: globes {sides:?}");
        let (lens, _) = centroid(labels, |l| l == LENS);
        assert!(
            lens[1] > eye_l[1] + 5.0,
            "{name}: lens behind the globe centre"
        );
        // The falx lies on the midline above the ventricles; the tentorium below the cerebrum
        // and above the cerebellum's lowest point.
        let (falx, nf) = centroid(labels, |l| l == FALX);
        assert!(nf > 20, "{name}: falx has {nf} voxels");
        assert!(
            (falx[0] - midline).abs() < 4.0,
            "{name}: falx at x {}",
            falx[0]
        );
        let (tent, _) = centroid(labels, |l| l == TENTORIUM);
        let [cb_lo, cb_hi] = bb.cerebellum_z_mm;
        assert!(
            tent[2] > cb_lo && tent[2] < cb_hi + 10.0 && tent[1] < brain[1],
            "{name}: tentorium at {tent:?}, cerebellum z {cb_lo}..{cb_hi}"
        );
        // The spinal cord continues below the brainstem; the neck lies below the brain.
        let (cord, _) = centroid(labels, |l| l == SPINAL_CORD);
        let (stem, _) = centroid(labels, |l| l == BRAINSTEM);
        assert!(cord[2] < stem[2] && (cord[0] - stem[0]).abs() < 4.0);
        // Walls: the brain touches only the cavity; air spaces and the diploë never touch it.
        for (i, &l) in labels.data().iter().enumerate() {
            let neighbours = || face_neighbours(g, i).map(|q| labels.data()[q]);
            if is_parenchyma_label(l) {
                assert!(
                    neighbours().all(|m| in_cavity(m) || m == SPINAL_CORD),
                    "{name}: brain label {l} touches the outside"
                );
            }
            if l == DIPLOE || tissue_of_label(l) == Some(Tissue::Air) {
                assert!(
                    neighbours().all(|m| !in_cavity(m)),
                    "{name}: label {l} touches the skull cavity"
                );
            }
        }
    }
}

fn spec(contrasts: &[Contrast]) -> SubjectSpec {
    SubjectSpec {
        contrasts: contrasts.to_vec(),
        lesions: vec![],
        sessions: 1,
        spacing_mm: [2.0; 3],
        mode: IntensityMode::Realistic,
    }
}

/// Mean of `image` over the voxels whose label satisfies `want` and whose face neighbours all
/// do too (away from partial volume).
fn interior_mean(image: &voxel::Image, labels: &LabelMap, want: impl Fn(i32) -> bool) -> f64 {
    let g = labels.geometry();
    let (mut s, mut n) = (0.0, 0usize);
    for (i, &l) in labels.data().iter().enumerate() {
        if want(l) && face_neighbours(g, i).all(|q| want(labels.data()[q])) {
            s += image.data()[i] as f64;
            n += 1;
        }
    }
    if n == 0 {
        // Thin structures at 2 mm: every voxel of them.
        for (i, &l) in labels.data().iter().enumerate() {
            if want(l) {
                s += image.data()[i] as f64;
                n += 1;
            }
        }
    }
    assert!(n > 0, "no voxel");
    s / n as f64
}

#[test]
fn head_tissues_look_as_they_do_on_each_contrast() {
    let mut config = SynthConfig::builtin().unwrap();
    config.head.random_fields_probability = 0.0;
    config.spatial.fov_mode_weights = [(FovMode::HeadAndNeck, 1.0)].into();
    let vocab = Vocabulary::builtin().unwrap();
    let anatomy = Anatomy::phantom(2.0, &config.head).unwrap();
    let contrasts = [Contrast::T1, Contrast::T2, Contrast::Ct];
    for seed in 0..2 {
        let sub =
            synthesize_subject(&anatomy, &spec(&contrasts), &config, &vocab, "h", seed).unwrap();
        let s = &sub.sessions[0];
        let l = &s.labels;
        let t1 = &s.images[&Contrast::T1].image;
        let t2 = &s.images[&Contrast::T2].image;
        let hu = s.images[&Contrast::Ct].hu.as_ref().unwrap();
        let fat = |l: i32| l == SUBCUTANEOUS_FAT || l == ORBITAL_FAT;
        let muscle = |l: i32| l == NECK_MUSCLE || l == TEMPORALIS || l == MASSETER;
        let air = |l: i32| tissue_of_label(l) == Some(Tissue::Air);
        assert!(interior_mean(t1, l, fat) > interior_mean(t1, l, muscle) + 0.2);
        assert!(interior_mean(t1, l, air) < 0.1);
        assert!(interior_mean(t2, l, |l| l == GLOBE) > interior_mean(t2, l, muscle) + 0.3);
        assert!(interior_mean(hu, l, air) < -600.0);
        assert!(interior_mean(hu, l, fat) < -30.0);
        assert!(interior_mean(hu, l, muscle) > 20.0);
        assert!(interior_mean(hu, l, |l| l == SKULL) > 500.0);
    }
}

#[test]
fn random_classes_never_enter_the_skull_cavity() {
    let vocab = Vocabulary::builtin().unwrap();
    let plain = {
        let mut c = SynthConfig::builtin().unwrap();
        c.head.random_fields_probability = 0.0;
        c
    };
    let random = {
        let mut c = plain.clone();
        c.head.random_fields_probability = 1.0;
        c
    };
    let anatomy = Anatomy::phantom(2.0, &plain.head).unwrap();
    let spec = spec(&[Contrast::T1]);
    for seed in 0..2 {
        let a = synthesize_subject(&anatomy, &spec, &plain, &vocab, "a", seed).unwrap();
        let b = synthesize_subject(&anatomy, &spec, &random, &vocab, "b", seed).unwrap();
        assert!(!a.random_extracerebral && b.random_extracerebral);
        let (la, lb) = (&a.sessions[0].labels, &b.sessions[0].labels);
        let mut changed = 0;
        for (&x, &y) in la.data().iter().zip(lb.data()) {
            if x != y {
                changed += 1;
                assert!(!in_cavity(x) && x != 0, "label {x} became {y}");
                assert!(is_random_head_class(y));
            }
        }
        let classes: std::collections::BTreeSet<i32> = lb
            .data()
            .iter()
            .copied()
            .filter(|&l| is_random_head_class(l))
            .collect();
        assert!(
            changed > 1000 && classes.len() >= 4,
            "{changed} voxels, {classes:?}"
        );
    }
}

#[test]
fn fields_of_view_frame_the_head() {
    let vocab = Vocabulary::builtin().unwrap();
    let mut base = SynthConfig::builtin().unwrap();
    base.head.random_fields_probability = 0.0;
    let anatomy = Anatomy::phantom(2.0, &base.head).unwrap();
    let bb = anatomy.brain_box;
    let spec = spec(&[]);
    let only = |m: FovMode| {
        let mut c = base.clone();
        c.spatial.fov_mode_weights = [(m, 1.0)].into();
        // Edges are checked along world z; tilted grids have their own test.
        c.spatial.tilt_probability = 0.0;
        c
    };
    for seed in 0..3 {
        let top_bottom = |m: FovMode| {
            let sub = synthesize_subject(&anatomy, &spec, &only(m), &vocab, "f", seed).unwrap();
            assert_eq!(sub.field_of_view, m);
            let g = sub.sessions[0].labels.geometry().clone();
            let n = g.shape();
            let lo = g.voxel_to_world([0.0; 3])[2];
            let hi = g.voxel_to_world([0.0, 0.0, (n[2] - 1) as f64])[2];
            (hi, lo, sub)
        };
        let (hi, _, _) = top_bottom(FovMode::CutVertex);
        assert!(hi < bb.max_mm[2] - 3.0, "vertex kept: top {hi}");
        let (_, lo, _) = top_bottom(FovMode::CutCerebellum);
        let [cb_lo, cb_hi] = bb.cerebellum_z_mm;
        assert!(
            lo > cb_lo && lo < cb_hi,
            "bottom {lo} not in the cerebellum"
        );
        let (hi, lo, sub) = top_bottom(FovMode::HeadAndNeck);
        assert!(hi > bb.max_mm[2] && lo < bb.min_mm[2] - 20.0, "{lo}..{hi}");
        assert!(sub.sessions[0].labels.data().contains(&SPINAL_CORD));
    }
}

#[test]
fn layers_vary_per_subject_by_relabelling() {
    let vocab = Vocabulary::builtin().unwrap();
    let mut c = SynthConfig::builtin().unwrap();
    c.head.random_fields_probability = 0.0;
    let anatomy = Anatomy::phantom(2.0, &c.head).unwrap();
    let labels_with = |p: f64| {
        let mut c = c.clone();
        c.head.no_diploe_probability = p;
        c.head.thin_fat_probability = p;
        let sub = synthesize_subject(&anatomy, &spec(&[]), &c, &vocab, "v", 3).unwrap();
        sub.sessions[0].labels.clone()
    };
    let (kept, varied) = (labels_with(0.0), labels_with(1.0));
    assert!(kept.data().contains(&DIPLOE) && kept.data().contains(&SUBCUTANEOUS_FAT));
    for (&a, &b) in kept.data().iter().zip(varied.data()) {
        match a {
            DIPLOE => assert_eq!(b, SKULL),
            SUBCUTANEOUS_FAT => assert_eq!(b, SCALP),
            a => assert_eq!(a, b),
        }
    }
}

#[test]
fn the_shells_ablation_is_csf_skull_and_scalp_of_the_configured_thickness() {
    let mut config = SynthConfig::builtin().unwrap();
    config.head.model = synth::config::HeadModel::Shells;
    config.head.random_fields_probability = 1.0;
    let anatomy = Anatomy::phantom(2.0, &config.head).unwrap();
    let labels = &anatomy.labels;
    let brain =
        labels.map(|l| l != 0 && tissue_of_label(l).is_some_and(|t| !t.is_outside_cavity()));
    for id in labels.labels() {
        assert!(
            id == 0
                || [EXTRACEREBRAL_CSF, SKULL, SCALP].contains(&id)
                || tissue_of_label(id).is_some_and(|t| !t.is_outside_cavity()),
            "label {id} is not a shell, CSF or brain"
        );
    }
    // Along the vertical line through the top of the brain: CSF, then skull_mm of skull, then
    // scalp_mm of scalp, then air (2 mm voxels, so each thickness within one voxel).
    let g = labels.geometry();
    let [nx, ny, nz] = labels.shape();
    let (top_k, i, j) = (0..nz)
        .rev()
        .find_map(|k| {
            (0..nx * ny)
                .find(|&n| brain.at(n % nx, n / nx, k))
                .map(|n| (k, n % nx, n / nx))
        })
        .unwrap();
    let column: Vec<i32> = (top_k..nz).map(|k| labels.at(i, j, k)).collect();
    let run = |id: i32| column.iter().filter(|&&l| l == id).count() as f64 * g.spacing_mm()[2];
    assert!(
        (run(SKULL) - config.head.skull_mm).abs() <= 2.0,
        "skull {} mm",
        run(SKULL)
    );
    assert!(
        (run(SCALP) - config.head.scalp_mm).abs() <= 2.0,
        "scalp {} mm",
        run(SCALP)
    );
    assert_eq!(column.last(), Some(&0), "air above the scalp");
    // No random head classes, whatever their probability.
    let mut warped = labels.clone();
    assert!(!synth::head::randomise_extracerebral(&mut warped, &config.head, 3).unwrap());
}

#[test]
fn tilted_grids_are_oblique_by_at_most_the_configured_angle_and_keep_the_brain() {
    let vocab = Vocabulary::builtin().unwrap();
    let mut base = SynthConfig::builtin().unwrap();
    base.head.random_fields_probability = 0.0;
    base.spatial.fov_mode_weights = [(FovMode::Head, 1.0)].into();
    let anatomy = Anatomy::phantom(2.0, &base.head).unwrap();
    let with_tilt = |p: f64, seed: u64| {
        let mut c = base.clone();
        c.spatial.tilt_probability = p;
        synthesize_subject(&anatomy, &spec(&[]), &c, &vocab, "t", seed).unwrap()
    };
    // Angle between the grid's slice normal (third axis) and world z, degrees.
    let slice_tilt_deg = |g: &voxel::Geometry| {
        let l = g.affine().linear();
        let col = [l[0][2], l[1][2], l[2][2]];
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        (col[2].abs() / norm).acos().to_degrees()
    };
    let max =
        (base.spatial.tilt_max_deg.powi(2) + 2.0 * base.spatial.tilt_other_max_deg.powi(2)).sqrt();
    let mut tilts = Vec::new();
    for seed in 0..6 {
        let flat = with_tilt(0.0, seed);
        let tilted = with_tilt(1.0, seed);
        assert!(slice_tilt_deg(flat.sessions[0].labels.geometry()) < 1e-9);
        let t = slice_tilt_deg(tilted.sessions[0].labels.geometry());
        assert!(t <= max + 1e-6, "tilt {t}° over {max}°");
        tilts.push(t);
        // The brain stays in the field of view, and no session or contrast loses its grid.
        let brain = |s: &synth::Subject| {
            s.sessions[0]
                .labels
                .data()
                .iter()
                .filter(|&&l| in_cavity(l) && l != EXTRACEREBRAL_CSF)
                .count() as f64
        };
        let ratio = brain(&tilted) / brain(&flat);
        assert!(
            (0.85..1.15).contains(&ratio),
            "brain voxels tilted/flat {ratio}"
        );
    }
    assert!(
        tilts.iter().any(|&t| t > 5.0),
        "no clearly tilted grid: {tilts:?}"
    );
}

#[test]
fn the_head_support_lies_behind_the_head_and_shows_on_ct_only() {
    let vocab = Vocabulary::builtin().unwrap();
    let mut config = SynthConfig::builtin().unwrap();
    config.head.random_fields_probability = 0.0;
    let anatomy = Anatomy::phantom(2.0, &config.head).unwrap();
    let labels = &anatomy.labels;
    let (support, n) = centroid(labels, |l| l == HEAD_SUPPORT);
    assert!(n > 0, "the anatomy has no head support");
    let (brain, _) = centroid(labels, in_cavity);
    let (head, _) = centroid(labels, |l| l != 0 && l != HEAD_SUPPORT);
    // Behind the head (posterior, -y in RAS), on the midline, never touching the head.
    assert!(
        support[1] < brain[1] - 50.0,
        "support at y {} vs brain {}",
        support[1],
        brain[1]
    );
    assert!(
        (support[0] - head[0]).abs() < 5.0,
        "support off the midline: {support:?}"
    );
    for (idx, &l) in labels.data().iter().enumerate() {
        if l == HEAD_SUPPORT {
            for j in face_neighbours(labels.geometry(), idx) {
                let m = labels.data()[j];
                assert!(m == 0 || m == HEAD_SUPPORT, "support touches label {m}");
            }
        }
    }
    // Present in some subjects, absent in others; bright on CT, black on T1.
    config.head.support_probability = 1.0;
    let sub = synthesize_subject(
        &anatomy,
        &spec(&[Contrast::Ct, Contrast::T1]),
        &config,
        &vocab,
        "s",
        2,
    )
    .unwrap();
    let s = &sub.sessions[0];
    assert!(
        s.labels.data().contains(&HEAD_SUPPORT),
        "support outside the field of view"
    );
    let hu = s.images[&Contrast::Ct].hu.as_ref().unwrap();
    let ct = interior_mean(hu, &s.labels, |l| l == HEAD_SUPPORT);
    let t1 = interior_mean(&s.images[&Contrast::T1].image, &s.labels, |l| {
        l == HEAD_SUPPORT
    });
    let t1_brain = interior_mean(&s.images[&Contrast::T1].image, &s.labels, |l| {
        l == 2 || l == 41
    });
    assert!(ct > 100.0, "support on CT: {ct} HU");
    assert!(
        t1 < 0.2 * t1_brain,
        "support on T1 {t1} vs white matter {t1_brain}"
    );
    config.head.support_probability = 0.0;
    let sub =
        synthesize_subject(&anatomy, &spec(&[Contrast::T1]), &config, &vocab, "s", 2).unwrap();
    assert!(!sub.sessions[0].labels.data().contains(&HEAD_SUPPORT));
}

#[test]
fn neck_vessels_run_beside_the_spine_below_the_skull_base() {
    let config = SynthConfig::builtin().unwrap();
    for anatomy in anatomies(&config) {
        let labels = &anatomy.labels;
        let (vessels, n) = centroid(labels, |l| l == NECK_VESSELS);
        assert!(n > 0, "{}: no neck vessels", anatomy.name);
        let (cord, _) = centroid(labels, |l| l == SPINAL_CORD);
        let (stem, _) = centroid(labels, |l| l == BRAINSTEM);
        // Paired left and right (centroid near the midline), in front of the cord, below the
        // brainstem.
        assert!(
            (vessels[0] - cord[0]).abs() < 5.0,
            "{}: {vessels:?}",
            anatomy.name
        );
        assert!(vessels[1] > cord[1], "{}: behind the cord", anatomy.name);
        assert!(
            vessels[2] < stem[2],
            "{}: above the brainstem",
            anatomy.name
        );
        let g = labels.geometry();
        let (left, right) = labels
            .data()
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == NECK_VESSELS)
            .fold((0, 0), |(a, b), (i, _)| {
                let c = g.coords(i);
                let x = g.voxel_to_world([c[0] as f64, c[1] as f64, c[2] as f64])[0];
                if x < cord[0] {
                    (a + 1, b)
                } else {
                    (a, b + 1)
                }
            });
        assert!(
            left > 0 && right > 0,
            "{}: {left} left, {right} right",
            anatomy.name
        );
    }
}
