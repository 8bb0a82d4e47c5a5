//! Full-resolution inference within a memory budget.
//!
//! A whole-volume forward pass of the paper network on a 1 mm brain holds several
//! full-resolution 32–128-channel feature maps at once (DESIGN.md §5 quotes 8.8 GB in PyTorch
//! for a 160×192×160 brain). Here the same network runs layer by layer, each layer over
//! x-slabs of the volume:
//!
//! - every 3×3×3 convolution reads its slab plus one halo row on each side (the overlap) and
//!   keeps only the slab's own rows, so each output voxel sees exactly the neighbours it sees in
//!   the whole-volume pass;
//! - GroupNorm statistics are global per stream and group, so they are reduced over the whole
//!   layer output before any voxel is normalised; normalisation, SiLU, ϕ mixing and stream
//!   attention are per-voxel and run in place, slab by slab;
//! - the generator's upsampled input and its concatenation with the skip features exist only
//!   one slab at a time, and every full-size map is freed as soon as its last reader is done
//!   (level-wise freeing).
//!
//! The result equals [`Unet::forward`] everywhere up to float rounding (GroupNorm sums in a
//! different order), not only in an interior: tiling the whole network spatially could not be
//! exact, because GroupNorm statistics span the volume and the paper network's receptive field
//! is larger than a brain.

use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::block::LevelBlock;
use crate::conv::NativeConv;
use crate::error::{Result, VisionError};
use crate::norm_kernel::{group_stats, NormShape};
use crate::phi_mixing::PhiMixing;
use crate::pool::max_pool_x2;
use crate::unet::{check_phi, global_max, prepare_input, Unet, UnetOutput};
use crate::upsample::upsample_linear_x2;

/// How the volume is cut into slabs.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Rough size of one slab's working tensors in MiB; sets the slab thickness per layer.
    pub slab_budget_mib: usize,
    /// Fixed slab thickness in rows (x voxels), overriding the budget (tests use tiny slabs).
    pub slab_rows: Option<usize>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            slab_budget_mib: 256,
            slab_rows: None,
        }
    }
}

/// A full-volume feature map in host memory, `[S, C, X, Y, Z]`, row-major.
struct HostMap {
    data: Vec<f32>,
    streams: usize,
    channels: usize,
    shape: [usize; 3],
}

impl HostMap {
    fn zeros(streams: usize, channels: usize, shape: [usize; 3]) -> Self {
        Self {
            data: vec![0.0; streams * channels * shape[0] * shape[1] * shape[2]],
            streams,
            channels,
            shape,
        }
    }

    fn from_tensor(t: Tensor<5>) -> Result<Self> {
        let [streams, channels, sx, sy, sz] = t.dims();
        let data = t
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| VisionError::Backend(format!("{e:?}")))?;
        Ok(Self {
            data,
            streams,
            channels,
            shape: [sx, sy, sz],
        })
    }

    fn plane(&self) -> usize {
        self.shape[1] * self.shape[2]
    }

    /// Rows `[x0, x1)` of every stream and channel as a tensor.
    fn slab(&self, x0: usize, x1: usize, device: &Device) -> Tensor<5> {
        let plane = self.plane();
        let rows = x1 - x0;
        let mut out = Vec::with_capacity(self.streams * self.channels * rows * plane);
        for sc in 0..self.streams * self.channels {
            let base = sc * self.shape[0] * plane;
            out.extend_from_slice(&self.data[base + x0 * plane..base + x1 * plane]);
        }
        let shape = [
            self.streams,
            self.channels,
            rows,
            self.shape[1],
            self.shape[2],
        ];
        Tensor::from_data(TensorData::new(out, shape), device)
    }

    /// Writes `t` (`[S, C, rows, Y, Z]`) into rows starting at `x0`.
    fn write_slab(&mut self, x0: usize, t: Tensor<5>) -> Result<()> {
        let [_, _, rows, _, _] = t.dims();
        let data = t.into_data();
        let values = data
            .as_slice::<f32>()
            .map_err(|e| VisionError::Backend(format!("{e:?}")))?;
        let plane = self.plane();
        let chunk = rows * plane;
        for sc in 0..self.streams * self.channels {
            let base = sc * self.shape[0] * plane + x0 * plane;
            self.data[base..base + chunk].copy_from_slice(&values[sc * chunk..(sc + 1) * chunk]);
        }
        Ok(())
    }

    fn into_tensor(self, device: &Device) -> Tensor<5> {
        let shape = [
            self.streams,
            self.channels,
            self.shape[0],
            self.shape[1],
            self.shape[2],
        ];
        Tensor::from_data(TensorData::new(self.data, shape), device)
    }
}

/// Slab planning shared by every layer.
struct Slabs<'a> {
    options: &'a StreamOptions,
    device: Device,
    streams: usize,
}

impl Slabs<'_> {
    /// Slab thickness for a layer reading `c_in` and writing `c_out` channels on `shape`.
    fn rows(&self, c_in: usize, c_out: usize, shape: [usize; 3]) -> usize {
        if let Some(rows) = self.options.slab_rows {
            return rows.max(1);
        }
        // Input slab, its channels-last copy inside the convolution, the output, and slack.
        let bytes_per_row = self.streams * (2 * c_in + 2 * c_out) * shape[1] * shape[2] * 4;
        (self.options.slab_budget_mib * 1024 * 1024 / bytes_per_row.max(1)).max(1)
    }

    /// Runs `conv` over all rows; `source(a, b)` supplies input rows `[a, b)` as a tensor.
    fn conv(
        &self,
        conv: &NativeConv,
        collapsed: [bool; 3],
        shape: [usize; 3],
        source: &dyn Fn(usize, usize) -> Result<Tensor<5>>,
    ) -> Result<HostMap> {
        let [c_out, c_in, _, _, _] = conv.weight.dims();
        let mut out = HostMap::zeros(self.streams, c_out, shape);
        let halo = usize::from(!collapsed[0]);
        let step = self.rows(c_in, c_out, shape);
        let mut x0 = 0;
        while x0 < shape[0] {
            let x1 = (x0 + step).min(shape[0]);
            let a = x0.saturating_sub(halo);
            let b = (x1 + halo).min(shape[0]);
            let y = conv.forward(source(a, b)?, collapsed);
            out.write_slab(x0, y.narrow(2, x0 - a, x1 - x0))?;
            x0 = x1;
        }
        Ok(out)
    }

    /// Applies a per-voxel map to every slab of `map`, in place.
    fn map_in_place(&self, map: &mut HostMap, f: &dyn Fn(Tensor<5>) -> Tensor<5>) -> Result<()> {
        let step = self.rows(map.channels, map.channels, map.shape);
        let mut x0 = 0;
        while x0 < map.shape[0] {
            let x1 = (x0 + step).min(map.shape[0]);
            let y = f(map.slab(x0, x1, &self.device));
            map.write_slab(x0, y)?;
            x0 = x1;
        }
        Ok(())
    }

    /// The first convolution of a level's block (raw, before GroupNorm); `source` supplies its
    /// input rows. Kept apart so the caller can free the source maps before the rest runs.
    fn first_conv(
        &self,
        block: &LevelBlock,
        collapsed: [bool; 3],
        shape: [usize; 3],
        source: &dyn Fn(usize, usize) -> Result<Tensor<5>>,
    ) -> Result<HostMap> {
        let conv = block
            .convs
            .first()
            .ok_or_else(|| VisionError::Backend("block without convolutions".into()))?;
        self.conv(conv, collapsed, shape, source)
    }

    /// The rest of a level's block after [`Self::first_conv`]: GroupNorm and SiLU after every
    /// convolution, the remaining convolutions, then ϕ mixing and stream attention in place.
    fn finish_block(
        &self,
        block: &LevelBlock,
        collapsed: [bool; 3],
        shape: [usize; 3],
        phi: Option<&Tensor<2>>,
        first: HostMap,
    ) -> Result<HostMap> {
        let mut map = first;
        for (index, norm) in block.norms.iter().enumerate() {
            if index > 0 {
                let previous = map;
                // `previous` is dropped as soon as the next layer has read it.
                map = self.conv(&block.convs[index], collapsed, shape, &|a, b| {
                    Ok(previous.slab(a, b, &self.device))
                })?;
            }
            let gamma = tensor_values(norm.gamma.as_ref().map(|g| g.val()))?;
            let beta = tensor_values(norm.beta.as_ref().map(|b| b.val()))?;
            group_norm_silu_in_place(&mut map, norm.num_groups, norm.epsilon, &gamma, &beta);
        }
        let conditioning = block.mixing.stream_conditioning(phi);
        self.map_in_place(&mut map, &|t| {
            block
                .attention
                .forward(PhiMixing::forward_conditioned(t, &conditioning))
        })?;
        Ok(map)
    }
}

fn tensor_values(t: Option<Tensor<1>>) -> Result<Option<Vec<f32>>> {
    t.map(|t| {
        t.into_data()
            .try_into_vec::<f32>()
            .map_err(|e| VisionError::Backend(format!("{e:?}")))
    })
    .transpose()
}

/// GroupNorm (statistics over each stream's group of channels and all voxels) then SiLU, in
/// place: the statistics of [`group_stats`], the same formula as the fused op, no second copy.
fn group_norm_silu_in_place(
    map: &mut HostMap,
    groups: usize,
    epsilon: f64,
    gamma: &Option<Vec<f32>>,
    beta: &Option<Vec<f32>>,
) {
    let channels = map.channels;
    let voxels = map.shape[0] * map.plane();
    let shape = NormShape {
        batch: map.streams,
        channels,
        groups,
        voxels,
        epsilon,
    };
    let stats = group_stats(&map.data, &shape);
    let per_group = channels / groups;
    map.data
        .par_chunks_mut(voxels)
        .enumerate()
        .for_each(|(row, values)| {
            let (stream, channel) = (row / channels, row % channels);
            let (mean, rstd) = stats[stream * groups + channel / per_group];
            let g = gamma.as_ref().map_or(1.0, |g| g[channel]);
            let b = beta.as_ref().map_or(0.0, |b| b[channel]);
            for v in values.iter_mut() {
                let y = (*v - mean) * rstd * g + b;
                *v = y / (1.0 + (-y).exp());
            }
        });
}

impl Unet {
    /// [`Unet::forward`] for large volumes: same result, peak memory a few full-resolution
    /// maps instead of dozens (see the module docs). Runs without gradients.
    pub fn forward_streamed(
        &self,
        scans: Tensor<5>,
        spacing_mm: [f64; 3],
        phi: &Tensor<2>,
        options: &StreamOptions,
    ) -> Result<UnetOutput> {
        let net = self.valid();
        let scans = scans.inner();
        let phi = phi.clone().inner();
        let streams = scans.dims()[0];
        check_phi(&phi, streams, self.config.phi_dim)?;
        let side = match &net.side_gate {
            Some(_) => Some(crate::side_gate::SideFrame::of_scans(&scans, spacing_mm)?),
            None => None,
        };
        let device = scans.device();
        let input = prepare_input(scans, spacing_mm, &self.config)?;
        let schedule = &input.schedule;
        let padded_shape = schedule.padded_shape(input.input_shape);
        let slabs = Slabs {
            options,
            device: device.clone(),
            streams,
        };
        let levels = self.config.levels;

        // Encoder: skips[l] holds level l's output until the generator consumes it.
        let mut skips: Vec<Option<HostMap>> = Vec::with_capacity(levels);
        let mut scan_map = Some(HostMap::from_tensor(input.padded)?);
        for level in 0..levels {
            let shape = schedule.level_shape(padded_shape, level);
            let geometry = schedule.level(level);
            let block = &net.encoder.blocks[level];
            let first = match (level, scan_map.take(), skips.last()) {
                (0, Some(scans), _) => {
                    slabs.first_conv(block, geometry.collapsed, shape, &|a, b| {
                        Ok(scans.slab(a, b, &device))
                    })?
                }
                (_, None, Some(Some(previous))) => {
                    let pool = schedule.level(level - 1).pool;
                    slabs.first_conv(block, geometry.collapsed, shape, &|a, b| {
                        let rows = previous.slab(a * pool[0], b * pool[0], &device);
                        Ok(max_pool_x2(rows, pool))
                    })?
                }
                _ => return Err(VisionError::Backend("encoder level out of order".into())),
            };
            let map = slabs.finish_block(block, geometry.collapsed, shape, Some(&phi), first)?;
            skips.push(Some(map));
        }

        let deepest = skips[levels - 1]
            .take()
            .ok_or_else(|| VisionError::Backend("missing bottleneck".into()))?;
        let embedding = net.embedding.forward(global_max(
            deepest_tensor(&deepest, &device),
            schedule,
            input.input_shape,
        ));

        // Generator: level l reads the upsampled level l+1 output and skip l, then frees both.
        let mut decoded = deepest;
        for level in (0..levels - 1).rev() {
            let shape = schedule.level_shape(padded_shape, level);
            let geometry = schedule.level(level);
            let skip = skips[level]
                .take()
                .ok_or_else(|| VisionError::Backend("missing skip features".into()))?;
            let block = &net.generator.blocks[level];
            let pool = geometry.pool;
            let first = {
                let low = &decoded;
                let skip = &skip;
                slabs.first_conv(block, geometry.collapsed, shape, &|a, b| {
                    let up = if pool[0] == 2 {
                        // Low-resolution rows covering [a, b) plus one neighbour each side, so
                        // the interpolation at the slab edges matches the whole-volume one.
                        let lo_a = (a / 2).saturating_sub(1);
                        let lo_b = ((b - 1) / 2 + 2).min(low.shape[0]);
                        upsample_linear_x2(low.slab(lo_a, lo_b, &device), pool).narrow(
                            2,
                            a - 2 * lo_a,
                            b - a,
                        )
                    } else {
                        upsample_linear_x2(low.slab(a, b, &device), pool)
                    };
                    Ok(Tensor::cat(vec![up, skip.slab(a, b, &device)], 1))
                })?
            };
            // Both inputs of this level are consumed: free them before the next convolution.
            drop(skip);
            drop(decoded);
            let map = slabs.finish_block(block, geometry.collapsed, shape, Some(&phi), first)?;
            decoded = map;
        }

        // Head: per-voxel logit, sigmoid, then crop to the caller's grid.
        let mut probabilities = HostMap::zeros(streams, 1, padded_shape);
        let step = slabs.rows(self.config.channels_top, 1, padded_shape);
        let mut x0 = 0;
        while x0 < padded_shape[0] {
            let x1 = (x0 + step).min(padded_shape[0]);
            let mut logits = net.generator.head.forward(decoded.slab(x0, x1, &device));
            if let (Some(gate), Some(frame)) = (&net.side_gate, &side) {
                logits = gate.apply(logits, &phi, frame, x0);
            }
            probabilities.write_slab(x0, sigmoid(logits))?;
            x0 = x1;
        }
        drop(decoded);
        let probabilities =
            crate::unet::crop(probabilities.into_tensor(&device), input.input_shape);
        Ok(UnetOutput {
            probabilities,
            embedding,
        })
    }
}

fn deepest_tensor(map: &HostMap, device: &Device) -> Tensor<5> {
    map.slab(0, map.shape[0], device)
}
