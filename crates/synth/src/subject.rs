//! Subjects and their dated sessions, deterministic from a seed: one spatial transform of the
//! template per subject, a small residual misalignment per session, ventricles that enlarge
//! and cortex that thins over time, lesions that grow or shrink by a recorded (and measured)
//! amount, and every requested contrast per session. [`write_subjects`] writes them to disk.

use crate::anatomy::Anatomy;
use crate::atrophy::Atrophy;
use crate::config::SynthConfig;
use crate::contrast::{render, Acquisition, Contrast, IntensityMode, SubjectTissues, SynthImage};
use crate::error::{Result, SynthError};
use crate::labels::{
    is_cerebral_cortex, is_lateral_ventricle, EXTRACEREBRAL_CSF, LEFT_CAUDATE,
    LEFT_CEREBRAL_WHITE_MATTER, LEFT_THALAMUS, RIGHT_CAUDATE, RIGHT_CEREBRAL_WHITE_MATTER,
    RIGHT_THALAMUS,
};
use crate::lesion::{
    ids, paint, record_session, sample_lesion_apart, LesionClass, LesionRecord, LesionShape,
    SdhStage,
};
use crate::rng::{hash_unit, mix, normal, stream};
use crate::spatial::{random_rigid, sample_head_grid, warp_labels, FovMode, SpatialTransform};
use crate::vocabulary::Vocabulary;
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use voxel::measure::volume_ml;
use voxel::neighbourhood::face_neighbours;
use voxel::{Affine, LabelMap};

/// What to synthesise for each subject.
#[derive(Clone, Debug, Serialize)]
pub struct SubjectSpec {
    /// Contrasts rendered in every session.
    pub contrasts: Vec<Contrast>,
    /// Lesions placed in every subject, one per entry (a class may repeat, e.g. several
    /// metastases, each at its own site).
    pub lesions: Vec<LesionClass>,
    /// Number of sessions (≥ 1).
    pub sessions: usize,
    /// Output voxel size.
    pub spacing_mm: [f64; 3],
    /// Realistic tissue means or SynthSeg-style random ones.
    pub mode: IntensityMode,
}

/// One dated session of a subject.
#[derive(Clone, Debug)]
pub struct Session {
    /// ISO date of the scan.
    pub date: String,
    /// Days since the first session.
    pub days_from_baseline: i64,
    /// Images per contrast (same grid as the labels).
    pub images: BTreeMap<Contrast, SynthImage>,
    /// Anatomy label map (lesions not burnt in; extra-axial lesions' mass effect applied).
    pub labels: LabelMap,
    /// Lesion-component map (0 = no lesion; ids in `crate::lesion::ids`).
    pub lesions: LabelMap,
    /// Which lesion painted each voxel: 0 = none, else 1 + its index in the subject's lesion
    /// list (a later lesion over an earlier one keeps the voxel, as painting does).
    pub lesion_owner: LabelMap,
    /// One record per lesion, in the order of the subject's lesion list.
    pub lesion_records: Vec<LesionRecord>,
    /// The lesion geometries as painted in this session (scaled by growth; a subdural
    /// haematoma's stage as aged), so a lesion's own mask can be repainted with
    /// [`crate::lesion::paint`].
    pub lesion_shapes: Vec<LesionShape>,
    /// Session world → subject world (identity for the first session).
    pub to_subject: Affine,
    /// Sub-slices per voxel along each axis the session was synthesised on (`[1, 1, 1]`: on its
    /// own grid; see [`crate::slab`]). Recorded, not recomputed from the grid: a spacing read
    /// back from the affine can fall on the other side of the sub-slice rule (6 / 4 mm is 1.5).
    pub subslices: [usize; 3],
    /// Measured volume of the ventricular system.
    pub ventricles_ml: f64,
    /// Measured brain volume.
    pub brain_ml: f64,
}

/// Change of one lesion between the first session and a later one, from measured volumes.
#[derive(Clone, Debug, Serialize)]
pub struct GrowthRecord {
    /// Index into the lesion list.
    pub lesion: usize,
    /// Later session index.
    pub session: usize,
    /// Days between the sessions.
    pub days: i64,
    /// Lesion volume at baseline.
    pub baseline_ml: f64,
    /// Lesion volume at the later session.
    pub volume_ml: f64,
    /// `volume_ml - baseline_ml`.
    pub change_ml: f64,
    /// Relative change in percent (0 when the baseline is empty).
    pub change_percent: f64,
}

/// A synthetic subject.
#[derive(Clone, Debug)]
pub struct Subject {
    /// Identifier, e.g. `sub-003`.
    pub id: String,
    /// Seed the subject was made from.
    pub seed: u64,
    /// Anatomy source name.
    pub anatomy: String,
    /// Template → subject spatial transform.
    pub transform: SpatialTransform,
    /// How the field of view frames the head.
    pub field_of_view: FovMode,
    /// Whether the tissue outside the skull cavity was replaced by random classes.
    pub random_extracerebral: bool,
    /// How its ventricles and sulci differ from the anatomy's.
    pub atrophy: Atrophy,
    /// Lesion geometries at baseline.
    pub lesion_shapes: Vec<LesionShape>,
    /// Sessions in date order.
    pub sessions: Vec<Session>,
    /// Lesion growth between baseline and each later session.
    pub growth: Vec<GrowthRecord>,
}

/// ISO date (`YYYY-MM-DD`) of `days` since 1970-01-01.
fn iso_date(days: i64) -> String {
    let (y, m, d) = voxel::calendar::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Progression at follow-up `k`: ventricle-adjacent white matter and deep grey matter join the
/// lateral ventricles with probability `0.25 k`, and cortex next to the CSF shell becomes CSF
/// with probability `0.15 k` (one voxel layer at most, so the change is small and smooth).
fn progress(labels: &LabelMap, k: usize, key: u64) -> Result<LabelMap> {
    if k == 0 {
        return Ok(labels.clone());
    }
    let g = labels.geometry();
    let src = labels.data();
    let p_vent = (0.25 * k as f32).min(1.0);
    let p_atrophy = (0.15 * k as f32).min(1.0);
    let mut out = src.to_vec();
    for idx in 0..src.len() {
        let l = src[idx];
        let neighbour = |want: &dyn Fn(i32) -> bool| -> Option<i32> {
            face_neighbours(g, idx).map(|q| src[q]).find(|&m| want(m))
        };
        let u = hash_unit(key, idx as u64);
        if matches!(
            l,
            LEFT_CEREBRAL_WHITE_MATTER
                | RIGHT_CEREBRAL_WHITE_MATTER
                | LEFT_THALAMUS
                | LEFT_CAUDATE
                | RIGHT_THALAMUS
                | RIGHT_CAUDATE
        ) && u < p_vent
        {
            if let Some(v) = neighbour(&is_lateral_ventricle) {
                out[idx] = v;
            }
        } else if is_cerebral_cortex(l)
            && u < p_atrophy
            && neighbour(&|m| m == EXTRACEREBRAL_CSF).is_some()
        {
            out[idx] = EXTRACEREBRAL_CSF;
        }
    }
    Ok(labels.with_data(out)?)
}

/// Days after which blood is chronic: a subdural haematoma is recorded and painted with its
/// chronic component, and an intraparenchymal haemorrhage takes the chronic-blood intensities
/// (CT: from hyperdense through isodense at 1–3 weeks to hypodense).
pub const SDH_CHRONIC_AFTER_DAYS: i64 = 21;

/// Synthesises one subject from `anatomy`, deterministic in `seed`.
pub fn synthesize_subject(
    anatomy: &Anatomy,
    spec: &SubjectSpec,
    config: &SynthConfig,
    vocab: &Vocabulary,
    id: &str,
    seed: u64,
) -> Result<Subject> {
    if spec.sessions == 0 {
        return Err(SynthError::InvalidArgument(
            "a subject needs at least one session".into(),
        ));
    }
    // Every label needs a tissue class to be given intensities.
    crate::labels::check_known(&anatomy.labels)?;
    let mut rng = stream(seed, 0);
    let centre = anatomy.brain_box.centre_mm();
    let transform = SpatialTransform::sample(&config.spatial, centre, &mut rng);
    // Subject world is centred near the origin: the grid is centred on the brain's centre
    // mapped back through the affine's translation, which is small.
    let (grid, field_of_view) = sample_head_grid(
        &config.spatial,
        spec.spacing_mm,
        &anatomy.brain_box,
        &mut rng,
        &mut stream(seed, 3),
    )?;
    let mut random_extracerebral = false;
    let tissues = SubjectTissues::sample(config, spec.mode, &mut stream(seed, 1));
    let all_means: Vec<_> = Contrast::ALL
        .iter()
        .map(|&c| tissues.means(config, c))
        .collect();
    let base_day = 18_262 + rng.random_range(0..2000); // from 2020-01-01
                                                       // A stream of its own, so the draws above and below are the same as without atrophy.
    let atrophy = Atrophy::sample(&config.atrophy, &mut stream(seed, 5));
    let template = match &anatomy.atrophy_maps {
        Some(maps) => atrophy.apply(&anatomy.labels, maps)?,
        None => std::borrow::Cow::Borrowed(&anatomy.labels),
    };
    let mut sessions: Vec<Session> = Vec::with_capacity(spec.sessions);
    let mut shapes: Vec<LesionShape> = Vec::new();
    let mut day = 0i64;
    let mut lesion_rng = stream(seed, 2);
    for k in 0..spec.sessions {
        let mut srng = stream(seed, 100 + k as u64);
        let to_subject = if k == 0 {
            Affine::IDENTITY
        } else {
            day += srng.random_range(60..400);
            random_rigid(
                &mut srng,
                grid.center_world(),
                config.spatial.session_rotation_deg,
                config.spatial.session_translation_mm,
            )
        };
        // Native thick-slice grids are synthesised on sub-slices and reduced below.
        let k_sub = crate::slab::subslices(spec.spacing_mm);
        let work_grid = if k_sub == [1, 1, 1] {
            grid.clone()
        } else {
            crate::slab::fine_grid(&grid, k_sub)?
        };
        let warped = warp_labels(&template, &work_grid, &transform, &to_subject)?;
        let mut labels = progress(&warped, k, mix(seed, 200 + k as u64))?;
        if k == 0 {
            for &class in &spec.lesions {
                let s = sample_lesion_apart(
                    class,
                    &labels,
                    vocab,
                    &config.lesions,
                    &mut lesion_rng,
                    &shapes,
                )?;
                shapes.push(s);
            }
        } else {
            for s in shapes.iter_mut() {
                // Mean log change of the linear scale per follow-up.
                let drift = config
                    .lesions
                    .scale_log_drift_per_followup(s.class, s.sdh_stage);
                let sd = config.lesions.scale_log_sd_per_followup;
                s.scale *= (drift + sd * normal(&mut lesion_rng)).exp();
                // Blood ages: after about three weeks a subdural collection is no longer
                // hyperdense, and the fresh blood of an acute-on-chronic one has resorbed.
                if day >= SDH_CHRONIC_AFTER_DAYS && s.sdh_stage.is_some() {
                    s.sdh_stage = Some(SdhStage::Chronic);
                    s.second.clear();
                    s.core_level = 0.0;
                }
            }
        }
        for s in &shapes {
            labels = crate::mass_effect::displace(s, &labels, &to_subject)?;
        }
        // Outside the cavity only, so lesion placement is unaffected; the same draw for every
        // session of the subject. Before painting: an extra-axial lesion's depth is measured
        // from the skull, so painting must see the labels that `tasks` replays it on.
        crate::head::vary_layers(&mut labels, &config.head, mix(seed, 301))?;
        random_extracerebral =
            crate::head::randomise_extracerebral(&mut labels, &config.head, mix(seed, 300))?;
        let mut lesions = labels.map(|_| 0i32);
        let mut painted = Vec::with_capacity(shapes.len());
        for s in &shapes {
            painted.push(paint(s, &labels, &mut lesions, &to_subject, vocab)?);
        }
        // An intraparenchymal haematoma seen weeks later has lost its fresh-blood signal.
        let mut session_means = all_means.clone();
        if day >= SDH_CHRONIC_AFTER_DAYS {
            for m in &mut session_means {
                m.set_lesion(ids::HAEMORRHAGE, m.of_lesion(ids::SDH_CHRONIC));
            }
        }
        let mut images = BTreeMap::new();
        for &c in &spec.contrasts {
            let mut crng = stream(seed, 1000 + 16 * k as u64 + c as u64);
            let acq = Acquisition::sample(config, c, spec.spacing_mm, &mut crng);
            let means = &session_means[Contrast::ALL.iter().position(|&x| x == c).unwrap_or(0)];
            let mut img = render(&labels, &lesions, means, &acq, config)?;
            if k_sub != [1, 1, 1] {
                img.image = crate::slab::average(&img.image, &grid, k_sub)?;
                if let Some(hu) = &img.hu {
                    img.hu = Some(crate::slab::average(hu, &grid, k_sub)?);
                }
            }
            images.insert(c, img);
        }
        if k_sub != [1, 1, 1] {
            let fine = labels.geometry().clone();
            labels = crate::slab::centre(&labels, &grid, k_sub)?;
            lesions = crate::slab::centre(&lesions, &grid, k_sub)?;
            for p in painted.iter_mut() {
                *p = p
                    .iter()
                    .filter_map(|&f| crate::slab::centre_index(f, &fine, k_sub))
                    .collect();
            }
        }
        let lesion_records = shapes
            .iter()
            .zip(&painted)
            .map(|(s, v)| {
                record_session(
                    s,
                    v,
                    &labels,
                    &lesions,
                    &session_means,
                    vocab,
                    config.intensity.iso_tolerance,
                    &to_subject,
                )
            })
            .collect();
        let mut owner = vec![0i32; lesions.data().len()];
        for (i, voxels) in painted.iter().enumerate() {
            for &v in voxels {
                if let Some(o) = owner.get_mut(v) {
                    *o = i as i32 + 1;
                }
            }
        }
        let lesion_owner = lesions.with_data(owner)?;
        let ventricles = vocab.require("ventricular system")?.anatomy_ids();
        let brain = vocab.require("brain")?.anatomy_ids();
        sessions.push(Session {
            date: iso_date(base_day + day),
            days_from_baseline: day,
            images,
            ventricles_ml: volume_ml(&labels.mask_of_any(&ventricles)),
            brain_ml: volume_ml(&labels.mask_of_any(&brain)),
            labels,
            lesions,
            lesion_owner,
            lesion_records,
            lesion_shapes: shapes.clone(),
            to_subject,
            subslices: k_sub,
        });
    }
    let mut growth = Vec::new();
    for (k, s) in sessions.iter().enumerate().skip(1) {
        for (i, (r, r0)) in s
            .lesion_records
            .iter()
            .zip(&sessions[0].lesion_records)
            .enumerate()
        {
            growth.push(GrowthRecord {
                lesion: i,
                session: k,
                days: s.days_from_baseline,
                baseline_ml: r0.volume_ml,
                volume_ml: r.volume_ml,
                change_ml: r.volume_ml - r0.volume_ml,
                change_percent: if r0.volume_ml > 0.0 {
                    100.0 * (r.volume_ml / r0.volume_ml - 1.0)
                } else {
                    0.0
                },
            });
        }
    }
    Ok(Subject {
        id: id.to_string(),
        seed,
        anatomy: anatomy.name.clone(),
        transform,
        field_of_view,
        random_extracerebral,
        atrophy,
        lesion_shapes: sessions
            .first()
            .map(|s| s.lesion_shapes.clone())
            .unwrap_or_default(),
        sessions,
        growth,
    })
}

#[derive(Serialize)]
struct SessionJson<'a> {
    session: usize,
    date: &'a str,
    days_from_baseline: i64,
    grid_shape: [usize; 3],
    spacing_mm: [f64; 3],
    images: BTreeMap<&'static str, &'a Acquisition>,
    lesions: &'a [LesionRecord],
    ventricles_ml: f64,
    brain_ml: f64,
    misalignment_to_baseline: [[f64; 4]; 4],
}

#[derive(Serialize)]
struct SubjectJson<'a> {
    id: &'a str,
    seed: u64,
    anatomy: &'a str,
    spec: &'a SubjectSpec,
    transform: &'a SpatialTransform,
    field_of_view: FovMode,
    random_extracerebral: bool,
    atrophy: Atrophy,
    sessions: Vec<SessionJson<'a>>,
    growth: &'a [GrowthRecord],
}

/// The JSON of every attribute of `subject`.
pub fn subject_json(subject: &Subject, spec: &SubjectSpec) -> serde_json::Value {
    let sessions = subject
        .sessions
        .iter()
        .enumerate()
        .map(|(k, s)| SessionJson {
            session: k,
            date: &s.date,
            days_from_baseline: s.days_from_baseline,
            grid_shape: s.labels.shape(),
            spacing_mm: s.labels.geometry().spacing_mm(),
            images: s
                .images
                .iter()
                .map(|(c, i)| (c.name(), &i.acquisition))
                .collect(),
            lesions: &s.lesion_records,
            ventricles_ml: s.ventricles_ml,
            brain_ml: s.brain_ml,
            misalignment_to_baseline: s.to_subject.0,
        })
        .collect();
    serde_json::to_value(SubjectJson {
        id: &subject.id,
        seed: subject.seed,
        anatomy: &subject.anatomy,
        spec,
        transform: &subject.transform,
        field_of_view: subject.field_of_view,
        random_extracerebral: subject.random_extracerebral,
        atrophy: subject.atrophy,
        sessions,
        growth: &subject.growth,
    })
    .unwrap_or(serde_json::Value::Null)
}

/// Loads fsaverage `aparc+aseg` from the anatomy cache when present, else the phantom (at 2 mm).
pub fn default_anatomy(config: &SynthConfig) -> Result<Anatomy> {
    if let Some(dir) = crate::anatomy::default_cache_dir() {
        if dir.join("fsaverage/aparc+aseg.mgz").exists() {
            return Anatomy::fsaverage(&dir, crate::vocabulary::Source::FsAparcAseg, &config.head);
        }
    }
    Anatomy::phantom(2.0, &config.head)
}

/// The anatomies `choice` names, from the default anatomy cache: `default` ([`default_anatomy`]),
/// one of [`crate::anatomy::ANATOMY_NAMES`], or `all` (every real anatomy the cache has, in
/// that order; the phantom when it has none). Subjects take them in turn
/// ([`write_subjects_from_anatomies`]).
pub fn load_anatomies(choice: &str, config: &SynthConfig) -> Result<Vec<Anatomy>> {
    let dir = crate::anatomy::default_cache_dir();
    match choice {
        "default" => Ok(vec![default_anatomy(config)?]),
        "all" => {
            let found = dir
                .as_deref()
                .map(crate::anatomy::available_anatomies)
                .unwrap_or_default();
            match dir {
                Some(dir) if !found.is_empty() => found
                    .iter()
                    .map(|n| Anatomy::load(n, &dir, config))
                    .collect(),
                _ => Ok(vec![Anatomy::phantom(2.0, &config.head)?]),
            }
        }
        name => {
            let dir = dir.ok_or_else(|| {
                SynthError::InvalidArgument(
                    "no anatomy cache: set VOXELPROMPT_ANATOMY or HOME".into(),
                )
            })?;
            Ok(vec![Anatomy::load(name, &dir, config)?])
        }
    }
}

/// Writes `n` subjects under `out_dir`: `sub-XXX/ses-K/{contrast}.nii.gz`, `labels.nii.gz`,
/// `lesions.nii.gz`, `ct_hu.nii.gz` (CT), `{contrast}.png` previews, and `sub-XXX/subject.json`
/// with every attribute. Uses the fsaverage anatomy when the cache has it, else the phantom.
/// `spacing_mm` is the output voxel size per axis; an anisotropic one (e.g. 1×1×5 mm) gives
/// native thick-slice grids, as clinical scans have. Returns the subject directories.
pub fn write_subjects(
    out_dir: &Path,
    n: usize,
    contrasts: &[Contrast],
    lesions: &[LesionClass],
    sessions: usize,
    spacing_mm: [f64; 3],
    seed: u64,
) -> Result<Vec<PathBuf>> {
    let config = SynthConfig::builtin()?;
    let vocab = Vocabulary::builtin()?;
    let anatomy = default_anatomy(&config)?;
    let spec = SubjectSpec {
        contrasts: contrasts.to_vec(),
        lesions: lesions.to_vec(),
        sessions,
        spacing_mm,
        mode: IntensityMode::Realistic,
    };
    write_subjects_from(out_dir, n, &anatomy, &spec, &config, &vocab, seed)
}

/// [`write_subjects`] with an explicit anatomy, spec, configuration and vocabulary.
pub fn write_subjects_from(
    out_dir: &Path,
    n: usize,
    anatomy: &Anatomy,
    spec: &SubjectSpec,
    config: &SynthConfig,
    vocab: &Vocabulary,
    seed: u64,
) -> Result<Vec<PathBuf>> {
    write_subjects_from_anatomies(
        out_dir,
        n,
        std::slice::from_ref(anatomy),
        spec,
        config,
        vocab,
        seed,
    )
}

/// [`write_subjects_from`] with several anatomies taken in turn: subject `i` is synthesised
/// from `anatomies[i % anatomies.len()]` (its `subject.json` records which).
pub fn write_subjects_from_anatomies(
    out_dir: &Path,
    n: usize,
    anatomies: &[Anatomy],
    spec: &SubjectSpec,
    config: &SynthConfig,
    vocab: &Vocabulary,
    seed: u64,
) -> Result<Vec<PathBuf>> {
    if anatomies.is_empty() {
        return Err(SynthError::InvalidArgument(
            "no anatomy to synthesise subjects from".into(),
        ));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    let mut dirs = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("sub-{i:03}");
        let anatomy = &anatomies[i % anatomies.len()];
        let subject = synthesize_subject(anatomy, spec, config, vocab, &id, mix(seed, i as u64))?;
        let dir = out_dir.join(&id);
        for (k, s) in subject.sessions.iter().enumerate() {
            let sd = dir.join(format!("ses-{k}"));
            std::fs::create_dir_all(&sd).map_err(io(&sd))?;
            voxel::io::write_labels(&sd.join("labels.nii.gz"), &s.labels)?;
            voxel::io::write_labels(&sd.join("lesions.nii.gz"), &s.lesions)?;
            let at = s
                .lesion_records
                .first()
                .map(|r| s.labels.geometry().world_to_voxel(r.centroid_mm))
                .unwrap_or_else(|| s.labels.shape().map(|d| d as f64 / 2.0));
            let at = [0, 1, 2].map(|a| at[a].round().max(0.0) as usize);
            for (c, img) in &s.images {
                let opts = voxel::io::WriteOptions::default();
                voxel::io::write_image(
                    &sd.join(format!("{}.nii.gz", c.name())),
                    &img.image,
                    &opts,
                )?;
                if let Some(hu) = &img.hu {
                    voxel::io::write_image(&sd.join("ct_hu.nii.gz"), hu, &opts)?;
                }
                crate::preview::write_montage(
                    &sd.join(format!("{}.png", c.name())),
                    &img.image,
                    Some(&s.lesions),
                    at,
                    2,
                )?;
            }
        }
        let json = serde_json::to_string_pretty(&subject_json(&subject, spec)).unwrap_or_default();
        let jp = dir.join("subject.json");
        std::fs::write(&jp, json).map_err(io(&jp))?;
        dirs.push(dir);
    }
    Ok(dirs)
}
