//! The runtime's seam to the trained vision network: [`UnetBackend`] answers a program's
//! `encode` and `generate` calls with [`vision::Unet`], through the one preprocessing path
//! ([`crate::preprocess`]), and gives every probability map back on its input's own grid.
//!
//! It comes in two flavours. For inference it runs on a plain device and keeps nothing but
//! the encodings the program holds. For training ([`UnetBackend::training`]) it runs on an
//! autodiff device and keeps the graph of every call: the trainer registers the ϕ rows of the
//! agent's forward pass before each step ([`UnetBackend::register_phi`]), so the vision calls
//! that the runtime makes with plain ϕ values use the agent's differentiable rows; the ε° of
//! every encoding and the probabilities of every `generate` stay available as tensors for the
//! feedback embeddings and the Dice loss ([`UnetBackend::eps_rows`],
//! [`UnetBackend::take_generated`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use runtime::{EncodingHandle, Phi, RuntimeError, VisionBackend, PHI_DIM};
use vision::tensor::{images_to_tensor, tensor_spacing, tensor_to_images, tensor_values};
use vision::{Encoding, Unet};
use voxel::{Geometry, Image};

use crate::preprocess::{Modality, Preprocessing};

/// What an encoding handle carries for this backend.
struct EncodingRecord {
    /// The backend instance that made it (handles do not travel between sessions).
    owner: usize,
    encoding: Encoding,
    /// The conformed grid all streams were put on.
    grid: Geometry,
}

/// One `generate` call as the training loss needs it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The ϕ value the call was steered with.
    pub phi: Phi,
    /// The encoded volumes, one per stream.
    pub streams: Vec<Arc<Image>>,
    /// The conformed grid the probabilities are on.
    pub grid: Geometry,
    /// Foreground probabilities `[S, 1, z, y, x]` on `grid`, with their autodiff graph.
    pub probabilities: Tensor<5>,
    /// The logits the probabilities are the sigmoid of (same graph).
    pub logits: Tensor<5>,
}

#[derive(Default)]
struct TrainingState {
    phi: Vec<(Phi, Tensor<2>)>,
    eps: Vec<(Vec<f32>, Tensor<2>)>,
    generated: Vec<Generated>,
    /// The first encoding made (the extra targets reuse it; later ones are not kept, so a
    /// program that drops one frees it).
    first_encoding: Option<EncodingHandle>,
}

/// The vision network behind the runtime's [`VisionBackend`] (see the module docs).
pub struct UnetBackend {
    net: Unet,
    device: Device,
    preprocessing: Preprocessing,
    modalities: Vec<(Arc<Image>, Modality)>,
    training: Option<Mutex<TrainingState>>,
    id: usize,
    /// Seconds spent in `encode` and `generate` since the last take.
    vision_seconds: Mutex<f64>,
}

fn vision_error(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Vision(e.to_string())
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl UnetBackend {
    /// An inference backend: `net` on `device` (without autodiff), the model's
    /// `preprocessing`, and the modality of each input scan (other volumes, such as crops,
    /// get [`Modality::guess`]).
    pub fn inference(
        net: Unet,
        device: Device,
        preprocessing: Preprocessing,
        modalities: Vec<(Arc<Image>, Modality)>,
    ) -> UnetBackend {
        UnetBackend {
            net,
            device,
            preprocessing,
            modalities,
            training: None,
            id: next_id(),
            vision_seconds: Mutex::new(0.0),
        }
    }

    /// A training backend: `net` on an autodiff `device`; every call keeps its graph.
    pub fn training(
        net: Unet,
        device: Device,
        preprocessing: Preprocessing,
        modalities: Vec<(Arc<Image>, Modality)>,
    ) -> UnetBackend {
        UnetBackend {
            training: Some(Mutex::new(TrainingState::default())),
            ..UnetBackend::inference(net, device, preprocessing, modalities)
        }
    }

    fn state(&self) -> Option<MutexGuard<'_, TrainingState>> {
        self.training
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Registers the differentiable ϕ rows `[n, PHI_DIM]` of the next step's markers; a vision
    /// call whose ϕ value equals row i's values uses row i (training only).
    pub fn register_phi(&self, rows: Tensor<2>) -> runtime::Result<Vec<Phi>> {
        let n = rows.dims()[0];
        let values = tensor_values(rows.clone()).map_err(vision_error)?;
        let mut phis = Vec::with_capacity(n);
        let mut state = self.state();
        for (i, chunk) in values.chunks_exact(PHI_DIM).enumerate() {
            let mut phi = [0.0f32; PHI_DIM];
            phi.copy_from_slice(chunk);
            if let Some(s) = state.as_mut() {
                s.phi.push((phi, rows.clone().slice_dim(0, i..i + 1)));
            }
            phis.push(phi);
        }
        Ok(phis)
    }

    /// The differentiable ε° row `[1, d]` whose values are `values` (an encoding's feedback),
    /// if this training backend made it.
    pub fn eps_row(&self, values: &[f32]) -> Option<Tensor<2>> {
        let state = self.state()?;
        state
            .eps
            .iter()
            .rev()
            .find(|(v, _)| v.as_slice() == values)
            .map(|(_, t)| t.clone())
    }

    /// The `generate` calls since the last take, in call order (training only).
    pub fn take_generated(&self) -> Vec<Generated> {
        self.state()
            .map(|mut s| std::mem::take(&mut s.generated))
            .unwrap_or_default()
    }

    /// The first encoding this training backend made, if any: the extra targets of a joint
    /// sample are generated from it ([`crate::joint::sample_loss_with_extras`]).
    pub fn first_encoding(&self) -> Option<EncodingHandle> {
        self.state()?.first_encoding.clone()
    }

    /// Generates from `encoding` under `phi` for the training loss alone: the probabilities
    /// stay on the network's grid with their graph (nothing is restored onto the inputs'
    /// grids, no program sees them). Training backends only.
    pub fn generate_for_loss(
        &self,
        encoding: &EncodingHandle,
        phi: &Phi,
    ) -> runtime::Result<Generated> {
        if self.training.is_none() {
            return Err(vision_error("generate_for_loss needs a training backend"));
        }
        let started = Instant::now();
        let result = self.generate_on_grid(encoding, phi);
        self.add_vision_seconds(started);
        result
    }

    /// Seconds spent inside `encode` and `generate` since the last call.
    pub fn take_vision_seconds(&self) -> f64 {
        let mut s = self
            .vision_seconds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *s)
    }

    fn add_vision_seconds(&self, started: Instant) {
        let mut s = self
            .vision_seconds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *s += started.elapsed().as_secs_f64();
    }

    fn phi_tensor(&self, phi: &Phi) -> Tensor<2> {
        if let Some(state) = self.state() {
            if let Some((_, t)) = state.phi.iter().rev().find(|(p, _)| p == phi) {
                return t.clone();
            }
        }
        Tensor::<2>::from_data(TensorData::new(phi.to_vec(), [1, PHI_DIM]), &self.device)
    }

    fn modality_of(&self, image: &Arc<Image>) -> Modality {
        self.modalities
            .iter()
            .find(|(i, _)| Arc::ptr_eq(i, image))
            .map(|(_, m)| *m)
            .unwrap_or_else(|| Modality::guess(image))
    }

    fn record<'a>(
        &self,
        encoding: &'a EncodingHandle,
    ) -> runtime::Result<&'a Mutex<EncodingRecord>> {
        let record = encoding
            .payload::<Mutex<EncodingRecord>>()
            .ok_or_else(|| vision_error("this encoding was not made by the vision network"))?;
        let owner = record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .owner;
        if owner != self.id {
            return Err(vision_error("this encoding belongs to another session"));
        }
        Ok(record)
    }
}

impl VisionBackend for UnetBackend {
    fn name(&self) -> &str {
        "unet"
    }

    fn encode(&self, volumes: &[Arc<Image>], phi: &[Phi]) -> runtime::Result<EncodingHandle> {
        let started = Instant::now();
        let result = self.encode_inner(volumes, phi);
        self.add_vision_seconds(started);
        result
    }

    fn generate(&self, encoding: &EncodingHandle, phi: &Phi) -> runtime::Result<Vec<Image>> {
        let started = Instant::now();
        let result = self.generate_inner(encoding, phi);
        self.add_vision_seconds(started);
        result
    }

    fn embedding(&self, encoding: &EncodingHandle) -> runtime::Result<Vec<Vec<f32>>> {
        let record = self
            .record(encoding)?
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let eps = record.encoding.embedding.clone();
        let d = eps.dims()[1];
        let values = tensor_values(eps).map_err(vision_error)?;
        Ok(values.chunks_exact(d).map(|c| c.to_vec()).collect())
    }
}

impl UnetBackend {
    fn encode_inner(&self, volumes: &[Arc<Image>], phi: &[Phi]) -> runtime::Result<EncodingHandle> {
        let first = volumes
            .first()
            .ok_or_else(|| vision_error("encode needs at least one volume"))?;
        if phi.len() != volumes.len() {
            return Err(vision_error(format!(
                "encode got {} volumes but {} ϕ vectors (one <mod> per volume)",
                volumes.len(),
                phi.len()
            )));
        }
        let grid = self
            .preprocessing
            .grid(first.geometry())
            .map_err(vision_error)?;
        let conformed = volumes
            .iter()
            .map(|v| {
                self.preprocessing
                    .conform_onto(v, self.modality_of(v), &grid)
                    .map_err(vision_error)
            })
            .collect::<runtime::Result<Vec<Image>>>()?;
        let refs: Vec<&Image> = conformed.iter().collect();
        let scans = images_to_tensor(&refs, &self.device).map_err(vision_error)?;
        let phi_rows = Tensor::cat(phi.iter().map(|p| self.phi_tensor(p)).collect(), 0);
        let encoding = self
            .net
            .encode(scans, tensor_spacing(&grid), &phi_rows)
            .map_err(vision_error)?;
        if let Some(mut state) = self.state() {
            let eps = encoding.embedding.clone();
            let d = eps.dims()[1];
            let values = tensor_values(eps.clone()).map_err(vision_error)?;
            for (s, row) in values.chunks_exact(d).enumerate() {
                state
                    .eps
                    .push((row.to_vec(), eps.clone().slice_dim(0, s..s + 1)));
            }
        }
        let record = EncodingRecord {
            owner: self.id,
            encoding,
            grid,
        };
        let handle = EncodingHandle::new(
            volumes.to_vec(),
            phi.to_vec(),
            Some(Arc::new(Mutex::new(record))),
        );
        if let Some(mut state) = self.state() {
            state.first_encoding.get_or_insert_with(|| handle.clone());
        }
        Ok(handle)
    }

    /// The generator's output for `phi` on the encoding's conformed grid, with its graph.
    fn generate_on_grid(&self, encoding: &EncodingHandle, phi: &Phi) -> runtime::Result<Generated> {
        let record = self
            .record(encoding)?
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let streams = encoding.num_streams();
        let phi_rows = self.phi_tensor(phi).repeat_dim(0, streams);
        let logits = self
            .net
            .generate_logits(&record.encoding, &phi_rows)
            .map_err(vision_error)?;
        let probabilities = burn::tensor::activation::sigmoid(logits.clone());
        Ok(Generated {
            phi: *phi,
            streams: encoding.streams().to_vec(),
            grid: record.grid.clone(),
            probabilities,
            logits,
        })
    }

    fn generate_inner(&self, encoding: &EncodingHandle, phi: &Phi) -> runtime::Result<Vec<Image>> {
        let generated = self.generate_on_grid(encoding, phi)?;
        let on_grid = tensor_to_images(generated.probabilities.clone(), &generated.grid)
            .map_err(vision_error)?;
        if let Some(mut state) = self.state() {
            state.generated.push(generated);
        }
        on_grid
            .iter()
            .zip(encoding.streams())
            .map(|(map, stream)| {
                self.preprocessing
                    .restore(map, stream.geometry())
                    .map_err(vision_error)
            })
            .collect()
    }
}
