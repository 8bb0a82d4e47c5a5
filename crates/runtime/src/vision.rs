//! How the runtime reaches the vision network: the [`VisionBackend`] trait, and two backends
//! that need no network. [`GroundTruthBackend`] answers `generate` from a known label map (for
//! `voxelprompt exec`, the task catalogue and tests); [`UnavailableBackend`] refuses every
//! vision call with a message saying how to get one.
//!
//! The trait is deliberately small and works on plain volumes, so this crate does not depend
//! on the deep-learning framework. A training backend that needs gradients keeps its own
//! record of the tensors behind each call (for example in the [`EncodingHandle`] payload).

use crate::error::{Result, RuntimeError};
use crate::grid::integer_offset;
use crate::values::{EncodingHandle, Phi};
use std::collections::BTreeMap;
use std::sync::Arc;
use voxel::crop::crop_or_pad;
use voxel::lut::ColorLut;
use voxel::{Image, LabelMap};

/// The vision network as the runtime sees it: an encoder of co-registered streams and a
/// generator of one probability map per stream, both steered by ϕ vectors.
pub trait VisionBackend: Send + Sync {
    /// A short name for messages and traces, e.g. `"ground-truth"`.
    fn name(&self) -> &str;

    /// Whether `encode` and `generate` need ϕ vectors. When false, programs may call them
    /// without `<mod>` markers (hand-written programs for `exec`).
    fn requires_phi(&self) -> bool {
        true
    }

    /// Encodes `volumes` (one stream each, in order). `phi` has one vector per stream, or is
    /// empty when [`VisionBackend::requires_phi`] is false and the program gave none.
    fn encode(&self, volumes: &[Arc<Image>], phi: &[Phi]) -> Result<EncodingHandle>;

    /// One probability map (values in \[0, 1\]) per stream of `encoding`, each on the grid of
    /// that stream's input volume, with the generator steered by `phi`.
    fn generate(&self, encoding: &EncodingHandle, phi: &Phi) -> Result<Vec<Image>>;

    /// Like [`VisionBackend::generate`] but steered by a structure name instead of a ϕ; only
    /// backends with ground truth can do this.
    fn generate_named(&self, encoding: &EncodingHandle, structure: &str) -> Result<Vec<Image>> {
        let _ = (encoding, structure);
        Err(RuntimeError::Vision(format!(
            "the {} backend is steered by <mod> vectors, not by structure names",
            self.name()
        )))
    }

    /// ε°: one vector per stream summarising the encoding, fed back to the agent by `read`.
    fn embedding(&self, encoding: &EncodingHandle) -> Result<Vec<Vec<f32>>>;
}

/// A backend for sessions with no vision network: every call fails with `reason`.
#[derive(Clone, Debug)]
pub struct UnavailableBackend {
    reason: String,
}

impl UnavailableBackend {
    /// A backend whose every call fails with `reason` (say what the user should do).
    pub fn new(reason: impl Into<String>) -> UnavailableBackend {
        UnavailableBackend {
            reason: reason.into(),
        }
    }
}

impl VisionBackend for UnavailableBackend {
    fn name(&self) -> &str {
        "unavailable"
    }
    fn requires_phi(&self) -> bool {
        false
    }
    fn encode(&self, _: &[Arc<Image>], _: &[Phi]) -> Result<EncodingHandle> {
        Err(RuntimeError::Vision(self.reason.clone()))
    }
    fn generate(&self, _: &EncodingHandle, _: &Phi) -> Result<Vec<Image>> {
        Err(RuntimeError::Vision(self.reason.clone()))
    }
    fn generate_named(&self, _: &EncodingHandle, _: &str) -> Result<Vec<Image>> {
        Err(RuntimeError::Vision(self.reason.clone()))
    }
    fn embedding(&self, _: &EncodingHandle) -> Result<Vec<Vec<f32>>> {
        Err(RuntimeError::Vision(self.reason.clone()))
    }
}

/// Structure names → label ids: named groups first (e.g. `"Hippocampus"` → `[17, 53]`), then a
/// colour lookup table, then a literal id (`"17"` or `"label:17"`). Names match without regard
/// to ASCII case.
#[derive(Clone, Debug, Default)]
pub struct StructureTable {
    groups: BTreeMap<String, Vec<i32>>,
    lut: Option<ColorLut>,
}

impl StructureTable {
    /// An empty table (only literal ids resolve).
    pub fn new() -> StructureTable {
        StructureTable::default()
    }

    /// A table backed by a colour lookup table, e.g. `ColorLut::freesurfer_aseg()`.
    pub fn from_lut(lut: ColorLut) -> StructureTable {
        StructureTable {
            groups: BTreeMap::new(),
            lut: Some(lut),
        }
    }

    /// Adds (or replaces) a named structure made of `ids`.
    pub fn with_group(mut self, name: &str, ids: &[i32]) -> StructureTable {
        self.groups.insert(name.to_ascii_lowercase(), ids.to_vec());
        self
    }

    /// The label ids of `name`, or `None` when the table does not know it.
    pub fn lookup(&self, name: &str) -> Option<Vec<i32>> {
        let key = name.trim();
        if let Some(ids) = self.groups.get(&key.to_ascii_lowercase()) {
            return Some(ids.clone());
        }
        if let Some(id) = self.lut.as_ref().and_then(|l| l.id_of(key)) {
            return Some(vec![id]);
        }
        let literal = key.strip_prefix("label:").unwrap_or(key);
        literal.parse::<i32>().ok().map(|id| vec![id])
    }
}

/// Answers vision calls from known label maps: `generate` returns the exact mask of a structure
/// (as probabilities 0/1), `encode` just remembers its inputs. Steered either by structure
/// names (`generate(enc, "Left-Hippocampus")`) or, with [`GroundTruthBackend::with_code`], by
/// ϕ vectors matched to the nearest registered code.
#[derive(Clone, Debug)]
pub struct GroundTruthBackend {
    /// Label maps with the input volume they belong to (matched by identity), if any.
    labels: Vec<(Option<Arc<Image>>, Arc<LabelMap>)>,
    structures: StructureTable,
    codes: Vec<(String, Phi)>,
    embedding_dim: usize,
}

/// Length of the ground-truth backend's ε° stand-in (see [`GroundTruthBackend::embedding`]).
pub const GROUND_TRUTH_EMBEDDING_DIM: usize = 8;

impl GroundTruthBackend {
    /// A backend that resolves structure names with `structures` and has no label maps yet.
    pub fn new(structures: StructureTable) -> GroundTruthBackend {
        GroundTruthBackend {
            labels: Vec::new(),
            structures,
            codes: Vec::new(),
            embedding_dim: GROUND_TRUTH_EMBEDDING_DIM,
        }
    }

    /// Adds a label map used for any stream whose grid it covers (same grid, or the stream is
    /// a crop of it).
    pub fn with_labels(mut self, labels: LabelMap) -> GroundTruthBackend {
        self.labels.push((None, Arc::new(labels)));
        self
    }

    /// Adds a label map for one specific input volume (the same `Arc`), e.g. each session of
    /// a longitudinal series, which share a grid but not their lesions. Checked before the
    /// grid-matched maps.
    pub fn with_labels_for(mut self, image: Arc<Image>, labels: LabelMap) -> GroundTruthBackend {
        self.labels.insert(0, (Some(image), Arc::new(labels)));
        self
    }

    /// Registers ϕ `code` as meaning `structure`: `generate` with a ϕ picks the structure
    /// whose code is nearest (Euclidean). Lets tests and the task catalogue drive `<mod>`
    /// programs without a trained network.
    pub fn with_code(mut self, structure: &str, code: Phi) -> GroundTruthBackend {
        self.codes.push((structure.to_string(), code));
        self
    }

    fn labels_for(&self, stream: &Arc<Image>) -> Result<LabelMap> {
        for (owner, labels) in &self.labels {
            if owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, stream)) {
                if labels.geometry().same_grid(stream.geometry(), 1e-3) {
                    return Ok(labels.as_ref().clone());
                }
                return Err(RuntimeError::Vision(
                    "the label map given for this volume is not on its grid".into(),
                ));
            }
        }
        for (owner, labels) in &self.labels {
            if owner.is_some() {
                continue;
            }
            if let Some(off) = integer_offset(labels.geometry(), stream.geometry()) {
                return Ok(crop_or_pad(labels, off, stream.shape(), 0)?);
            }
        }
        Err(RuntimeError::Vision(
            "no ground-truth label map covers this volume's grid (give --labels for the scan)"
                .into(),
        ))
    }

    fn masks_of(&self, encoding: &EncodingHandle, ids: &[i32]) -> Result<Vec<Image>> {
        encoding
            .streams()
            .iter()
            .map(|s| Ok(self.labels_for(s)?.mask_of_any(ids).to_image()))
            .collect()
    }
}

impl VisionBackend for GroundTruthBackend {
    fn name(&self) -> &str {
        "ground-truth"
    }

    fn requires_phi(&self) -> bool {
        false
    }

    fn encode(&self, volumes: &[Arc<Image>], phi: &[Phi]) -> Result<EncodingHandle> {
        Ok(EncodingHandle::new(volumes.to_vec(), phi.to_vec(), None))
    }

    fn generate(&self, encoding: &EncodingHandle, phi: &Phi) -> Result<Vec<Image>> {
        let dist = |c: &Phi| {
            c.iter()
                .zip(phi)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
        };
        let nearest = self
            .codes
            .iter()
            .filter(|(_, c)| dist(c).is_finite())
            .min_by(|(_, a), (_, b)| dist(a).total_cmp(&dist(b)))
            .map(|(name, _)| name.clone());
        match nearest {
            Some(name) => self.generate_named(encoding, &name),
            None => Err(RuntimeError::Vision(
                "the ground-truth backend has no ϕ codes; name the structure instead: generate(enc, \"Left-Hippocampus\")"
                    .into(),
            )),
        }
    }

    fn generate_named(&self, encoding: &EncodingHandle, structure: &str) -> Result<Vec<Image>> {
        let ids = self.structures.lookup(structure).ok_or_else(|| {
            RuntimeError::Vision(format!(
                "unknown structure {structure:?}; use a name from the label table or a label id such as \"17\""
            ))
        })?;
        self.masks_of(encoding, &ids)
    }

    /// A stand-in for ε° made of plain statistics of each stream (mean, standard deviation,
    /// min, max, 10th/50th/90th percentile of a 64-bin histogram, fraction of non-zero voxels),
    /// so `read(encoding)` works and is deterministic; it carries no learned meaning.
    fn embedding(&self, encoding: &EncodingHandle) -> Result<Vec<Vec<f32>>> {
        Ok(encoding
            .streams()
            .iter()
            .map(|s| image_summary(s, self.embedding_dim))
            .collect())
    }
}

fn image_summary(image: &Image, dim: usize) -> Vec<f32> {
    let finite = || image.data().iter().copied().filter(|v| v.is_finite());
    let mut out = vec![0.0f32; dim];
    let n = finite().count();
    if n == 0 {
        return out;
    }
    let nf = n as f64;
    let mean = finite().map(f64::from).sum::<f64>() / nf;
    let var = finite().map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / nf;
    let (lo, hi) = finite().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    const BINS: usize = 64;
    let mut hist = [0usize; BINS];
    let width = (hi - lo).max(f32::MIN_POSITIVE);
    for v in finite() {
        let b = (((v - lo) / width) * BINS as f32) as usize;
        hist[b.min(BINS - 1)] += 1;
    }
    let quantile = |q: f64| {
        let target = (q * nf).ceil() as usize;
        let mut acc = 0usize;
        for (b, &c) in hist.iter().enumerate() {
            acc += c;
            if acc >= target {
                return lo + width * (b as f32 + 0.5) / BINS as f32;
            }
        }
        hi
    };
    let nonzero = finite().filter(|&v| v != 0.0).count() as f64 / nf;
    let stats = [
        mean as f32,
        var.sqrt() as f32,
        lo,
        hi,
        quantile(0.1),
        quantile(0.5),
        quantile(0.9),
        nonzero as f32,
    ];
    for (o, s) in out.iter_mut().zip(stats) {
        *o = s;
    }
    out
}
