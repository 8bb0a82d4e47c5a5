//! The ground truth of a synthesized subject as the tasks need it: per session the anatomy and
//! lesion-component maps, a map of which lesion painted each voxel, and the lesion records; and
//! [`MaskDef`], the definition of every mask a program's `generate` calls stand for.
//!
//! `synth` records lesion components by id, and lesions of the same class share ids, so the
//! per-lesion map is rebuilt by replaying `synth`'s own painting (`synth::lesion::paint`) of
//! each lesion shape in order as that session painted it; the replay must reproduce the subject's
//! lesion map voxel for voxel, otherwise building the truth fails.

use crate::error::{Result, TaskError};
use serde::Serialize;
use synth::lesion::{paint, reference_tissue, LesionClass, LesionRecord};
use synth::{Subject, Vocabulary};
use voxel::{LabelMap, Mask};

/// What a generated mask should be, evaluated on one session's truth.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskDef {
    /// Voxels of the anatomy label map whose label is one of `ids` (0 is the air around the
    /// head).
    Anatomy {
        /// Label ids.
        ids: Vec<i32>,
    },
    /// Voxels painted by lesion number `lesion` (in the subject's lesion list) whose
    /// lesion-map id is one of `components`.
    Lesion {
        /// Index into the subject's lesions.
        lesion: usize,
        /// Lesion-map ids.
        components: Vec<i32>,
    },
    /// Voxels of any lesion of class `class` whose lesion-map id is one of `components`. The
    /// class matters: a glioma's and a metastasis's necrosis and enhancing rim share their
    /// lesion-map ids, and a glioma is not a metastasis.
    AnyLesion {
        /// The lesion class.
        class: LesionClass,
        /// Lesion-map ids.
        components: Vec<i32>,
    },
    /// The normal-appearing tissue around lesion number `lesion` that `synth` compares its
    /// intensity classes against (`synth::lesion::reference_tissue`): lesion-free brain
    /// parenchyma within `synth::lesion::SURROUNDINGS_MM` of it, or all lesion-free tissue of
    /// the skull cavity there when it has no parenchyma.
    Surroundings {
        /// Index into the subject's lesions.
        lesion: usize,
    },
}

impl MaskDef {
    /// Whether the mask is lesion voxels (one lesion's or a class's), not anatomy or a
    /// lesion's surroundings.
    pub fn is_lesion(&self) -> bool {
        matches!(self, MaskDef::Lesion { .. } | MaskDef::AnyLesion { .. })
    }
}

/// The truth of one session.
#[derive(Clone, Debug)]
pub struct SessionTruth {
    /// ISO date of the scan.
    pub date: String,
    /// Days since the first session.
    pub days_from_baseline: i64,
    /// Anatomy labels.
    pub labels: LabelMap,
    /// Lesion-component map (ids 901…).
    pub lesions: LabelMap,
    /// 0 where no lesion, else 1 + the index of the lesion that painted the voxel.
    pub owner: LabelMap,
    /// One record per lesion, in the subject's lesion order.
    pub records: Vec<LesionRecord>,
}

/// The truth of a subject: its sessions in date order.
#[derive(Clone, Debug)]
pub struct SubjectTruth {
    /// Subject id.
    pub id: String,
    /// Seed the subject was synthesized from.
    pub seed: u64,
    /// Sessions.
    pub sessions: Vec<SessionTruth>,
}

impl SubjectTruth {
    /// Collects the truth of `subject`, replaying its lesion painting (see the module docs).
    pub fn new(subject: &Subject, vocab: &Vocabulary) -> Result<SubjectTruth> {
        let mut sessions = Vec::with_capacity(subject.sessions.len());
        for (k, s) in subject.sessions.iter().enumerate() {
            // On grids synthesised without sub-slices the replay must give the lesion map and
            // the owners exactly: the check that task truth and synth agree. A thick-slice
            // session was painted on sub-slices and kept the centre one, which a replay on the
            // thick grid cannot reproduce; its owners come from synth alone.
            if s.subslices == [1, 1, 1] {
                let mut replay = s.lesions.map(|_| 0i32);
                let mut owner = vec![0i32; s.lesions.data().len()];
                for (i, shape) in s.lesion_shapes.iter().enumerate() {
                    for v in paint(shape, &s.labels, &mut replay, &s.to_subject, vocab)? {
                        owner[v] = i as i32 + 1;
                    }
                }
                let differ = replay
                    .data()
                    .iter()
                    .zip(s.lesions.data())
                    .filter(|(a, b)| a != b)
                    .count()
                    + owner
                        .iter()
                        .zip(s.lesion_owner.data())
                        .filter(|(a, b)| a != b)
                        .count();
                if differ > 0 {
                    return Err(TaskError::Replay {
                        session: k,
                        voxels: differ,
                    });
                }
            }
            sessions.push(SessionTruth {
                date: s.date.clone(),
                days_from_baseline: s.days_from_baseline,
                owner: s.lesion_owner.clone(),
                labels: s.labels.clone(),
                lesions: s.lesions.clone(),
                records: s.lesion_records.clone(),
            });
        }
        Ok(SubjectTruth {
            id: subject.id.clone(),
            seed: subject.seed,
            sessions,
        })
    }

    /// The session `k`, or an error naming it.
    pub fn session(&self, k: usize) -> Result<&SessionTruth> {
        self.sessions
            .get(k)
            .ok_or_else(|| TaskError::Mask(format!("the subject has no session {k}")))
    }

    /// The mask `def` stands for in session `k`, on that session's grid.
    pub fn mask(&self, def: &MaskDef, k: usize) -> Result<Mask> {
        let s = self.session(k)?;
        Ok(match def {
            MaskDef::Anatomy { ids } => s.labels.mask_of_any(ids),
            MaskDef::Lesion { lesion, components } => {
                if *lesion >= s.records.len() {
                    return Err(TaskError::Mask(format!(
                        "lesion {lesion} of a subject with {} lesions",
                        s.records.len()
                    )));
                }
                let want = *lesion as i32 + 1;
                s.owner
                    .zip_map(&s.lesions, |o, l| o == want && components.contains(&l))?
            }
            MaskDef::AnyLesion { class, components } => {
                // Owner ids (1 + the lesion's index) of the lesions of the class.
                let owners: Vec<i32> = (1i32..)
                    .zip(&s.records)
                    .filter(|(_, r)| r.class == *class)
                    .map(|(owner, _)| owner)
                    .collect();
                s.owner.zip_map(&s.lesions, |o, l| {
                    owners.contains(&o) && components.contains(&l)
                })?
            }
            MaskDef::Surroundings { lesion } => {
                let want = *lesion as i32 + 1;
                let voxels: Vec<usize> = s
                    .owner
                    .data()
                    .iter()
                    .enumerate()
                    .filter(|(_, &o)| o == want)
                    .map(|(i, _)| i)
                    .collect();
                if voxels.is_empty() {
                    return Err(TaskError::Mask(format!(
                        "lesion {lesion} has no voxels in session {k}"
                    )));
                }
                // The region `synth` records the lesion's intensity classes against.
                let keep = reference_tissue(&s.labels, &s.lesions, &voxels);
                let mut data = vec![false; s.labels.data().len()];
                for v in keep {
                    data[v] = true;
                }
                s.labels.with_data(data)?
            }
        })
    }

    /// Volume in mL of `def` in session `k`.
    pub fn volume_ml(&self, def: &MaskDef, k: usize) -> Result<f64> {
        Ok(voxel::measure::volume_ml(&self.mask(def, k)?))
    }
}
