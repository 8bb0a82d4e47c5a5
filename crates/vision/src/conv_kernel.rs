//! CPU kernels of the size-preserving 3-D convolution: forward, input gradient, weight gradient.
//!
//! Pure functions on contiguous f32 slices, `[N, C, D, H, W]` row-major, stride 1, zero padding
//! `k / 2` on each side of an axis with kernel extent k (1 or 3). Each works tile by tile (one
//! depth plane, a band of rows): the tile's im2col matrix `[C_in·k³, rows·W]` is built from
//! contiguous row copies, then one matrix product with the `gemm` crate does the arithmetic.
//!
//! Why not burn-flex's own convolution: its backward pass computes the weight gradient as a
//! convolution whose "kernel" is the whole output gradient (an im2col as large as 27 copies of
//! the input) and the input gradient through a transposed convolution; on this network that
//! made the backward pass 5× the forward. Here all three passes are the same im2col + GEMM, the
//! input gradient being the forward kernel applied to the output gradient with the kernel
//! flipped and transposed.

use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// im2col bytes per tile in the forward pass (and the input gradient): about L2-sized.
const FORWARD_TILE_BYTES: usize = 2 << 20;
/// im2col bytes per tile for the weight gradient, whose product sums over the tile's positions:
/// longer sums amortise the accumulator's reads and writes.
const WEIGHT_GRAD_TILE_BYTES: usize = 8 << 20;

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size N (streams).
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Spatial size (D, H, W), the same for input and output.
    pub spatial: [usize; 3],
    /// Kernel extent per axis (1 or 3).
    pub kernel: [usize; 3],
}

impl ConvShape {
    fn voxels(&self) -> usize {
        self.spatial.iter().product()
    }

    fn kernel_volume(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Rows of the im2col matrix: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.c_in * self.kernel_volume()
    }

    /// Image rows per tile so that one im2col tile stays near `tile_bytes`.
    fn rows_per_tile(&self, tile_bytes: usize) -> usize {
        let [_, h, w] = self.spatial;
        let per_row = self.taps() * w * 4;
        (tile_bytes / per_row.max(1)).clamp(1, h.max(1))
    }

    /// Tiles as (batch, depth, first row, last row + 1), each im2col near `tile_bytes`.
    fn tiles(&self, tile_bytes: usize) -> Vec<(usize, usize, usize, usize)> {
        let [d, h, _] = self.spatial;
        let rows = self.rows_per_tile(tile_bytes);
        let mut tiles = Vec::new();
        for n in 0..self.batch {
            for z in 0..d {
                let mut h0 = 0;
                while h0 < h {
                    let h1 = (h0 + rows).min(h);
                    tiles.push((n, z, h0, h1));
                    h0 = h1;
                }
            }
        }
        tiles
    }
}

/// A raw pointer that tiles may share because each writes a disjoint part of the buffer.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every tile writes only its own (batch, depth, rows) block of the output.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the whole `Send + Sync` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// The kernels support stride-1 "same" convolutions with extents 1 or 3 per axis (im2col's
/// shifts), on non-empty shapes.
fn check_shape(s: &ConvShape) {
    assert!(
        s.kernel.iter().all(|&k| k == 1 || k == 3),
        "conv3d kernel extents must be 1 or 3, got {:?}",
        s.kernel
    );
    assert!(
        s.spatial.iter().all(|&n| n > 0) && s.c_in > 0 && s.c_out > 0,
        "conv3d shapes must be non-empty: {:?}",
        s.spatial
    );
}

/// Scratch memory of one worker thread, reused across its tiles.
#[derive(Default)]
struct TileBuffers {
    col: Vec<f32>,
    block: Vec<f32>,
}

/// Fills `col` (`[taps, (h1 − h0)·W]`) with the input patches of tile (n, z, h0..h1).
fn im2col(x: &[f32], s: &ConvShape, n: usize, z: usize, h0: usize, h1: usize, col: &mut [f32]) {
    let [d, h, w] = s.spatial;
    let [kd, kh, kw] = s.kernel;
    let (pd, ph, pw) = (kd / 2, kh / 2, kw / 2);
    let positions = (h1 - h0) * w;
    let plane = h * w;
    for ci in 0..s.c_in {
        let channel = &x[(n * s.c_in + ci) * d * plane..][..d * plane];
        for a in 0..kd {
            for b in 0..kh {
                for c in 0..kw {
                    let row = ((ci * kd + a) * kh + b) * kw + c;
                    let dst = &mut col[row * positions..(row + 1) * positions];
                    let sz = z as isize + a as isize - pd as isize;
                    if sz < 0 || sz >= d as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src_plane = &channel[sz as usize * plane..][..plane];
                    let shift = c as isize - pw as isize;
                    for (r, y) in (h0..h1).enumerate() {
                        let out = &mut dst[r * w..(r + 1) * w];
                        let sy = y as isize + b as isize - ph as isize;
                        if sy < 0 || sy >= h as isize {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &src_plane[sy as usize * w..][..w];
                        match shift {
                            0 => out.copy_from_slice(src),
                            -1 => {
                                out[0] = 0.0;
                                out[1..].copy_from_slice(&src[..w - 1]);
                            }
                            1 => {
                                out[..w - 1].copy_from_slice(&src[1..]);
                                out[w - 1] = 0.0;
                            }
                            _ => unreachable!("kernel extents are 1 or 3"),
                        }
                    }
                }
            }
        }
    }
}

/// `out = conv(x, weight) + bias`; `weight` is `[c_out, c_in, kd, kh, kw]`.
///
/// # Panics
/// When a slice is shorter or longer than `s` says (checked in every build: the kernel hands
/// raw pointers to `gemm`, so a wrong length must never reach it).
pub(crate) fn conv3d_forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
) -> Vec<f32> {
    let voxels = s.voxels();
    let [_, h, w] = s.spatial;
    let taps = s.taps();
    check_shape(s);
    assert_eq!(x.len(), s.batch * s.c_in * voxels, "conv3d input length");
    assert_eq!(weight.len(), s.c_out * taps, "conv3d weight length");
    if let Some(b) = bias {
        assert_eq!(b.len(), s.c_out, "conv3d bias length");
    }
    let mut out = vec![0.0f32; s.batch * s.c_out * voxels];
    let out_ptr = SharedMut(out.as_mut_ptr());
    s.tiles(FORWARD_TILE_BYTES).into_par_iter().for_each_init(
        TileBuffers::default,
        |buffers, (n, z, h0, h1)| {
            let positions = (h1 - h0) * w;
            buffers.col.resize(taps * positions, 0.0);
            buffers.block.resize(s.c_out * positions, 0.0);
            im2col(x, s, n, z, h0, h1, &mut buffers.col);
            // The product goes to a contiguous block first: written straight into the output,
            // its rows would lie `voxels` floats apart, a power of two that maps every row to
            // the same cache sets.
            // SAFETY: block is [c_out, positions], weight [c_out, taps], col [taps, positions].
            unsafe {
                gemm(
                    s.c_out,
                    positions,
                    taps,
                    buffers.block.as_mut_ptr(),
                    1,
                    positions as isize,
                    false,
                    weight.as_ptr(),
                    1,
                    taps as isize,
                    buffers.col.as_ptr(),
                    1,
                    positions as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            let offset = n * s.c_out * voxels + z * h * w + h0 * w;
            for co in 0..s.c_out {
                let b = bias.map_or(0.0, |bias| bias[co]);
                let src = &buffers.block[co * positions..(co + 1) * positions];
                // SAFETY: row co of this tile, [offset + co·voxels, … + positions), is written
                // by this tile only and lies inside `out`.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(
                        out_ptr.get().add(offset + co * voxels),
                        positions,
                    )
                };
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = v + b;
                }
            }
        },
    );
    out
}

/// Gradient of the loss with respect to the input, from the output gradient `grad_out`.
///
/// A stride-1 "same" convolution's input gradient is the same convolution of the output
/// gradient with every kernel flipped in space and the channel axes swapped.
pub(crate) fn conv3d_input_grad(grad_out: &[f32], weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let kernel_volume = s.kernel_volume();
    check_shape(s);
    assert_eq!(
        weight.len(),
        s.c_out * s.c_in * kernel_volume,
        "conv3d weight length"
    );
    let mut flipped = vec![0.0f32; weight.len()];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            let src = &weight[(co * s.c_in + ci) * kernel_volume..][..kernel_volume];
            let dst = &mut flipped[(ci * s.c_out + co) * kernel_volume..][..kernel_volume];
            for (k, value) in src.iter().enumerate() {
                dst[kernel_volume - 1 - k] = *value;
            }
        }
    }
    let transposed = ConvShape {
        c_in: s.c_out,
        c_out: s.c_in,
        ..*s
    };
    conv3d_forward(grad_out, &flipped, None, &transposed)
}

/// Gradient with respect to the weight, `[c_out, c_in, kd, kh, kw]`.
pub(crate) fn conv3d_weight_grad(x: &[f32], grad_out: &[f32], s: &ConvShape) -> Vec<f32> {
    let voxels = s.voxels();
    let [_, h, w] = s.spatial;
    let taps = s.taps();
    check_shape(s);
    assert_eq!(x.len(), s.batch * s.c_in * voxels, "conv3d input length");
    assert_eq!(
        grad_out.len(),
        s.batch * s.c_out * voxels,
        "conv3d output-gradient length"
    );
    let size = s.c_out * taps;
    // Fixed chunks of tiles, summed in order afterwards: the result does not depend on how
    // rayon schedules the work, so training runs are reproducible.
    let tiles = s.tiles(WEIGHT_GRAD_TILE_BYTES);
    let chunk = tiles.len().div_ceil(32).max(1);
    let partials: Vec<Vec<f32>> = tiles
        .par_chunks(chunk)
        .map(|chunk| {
            let mut acc = vec![0.0f32; size];
            let mut col = Vec::new();
            let mut block = Vec::new();
            for &(n, z, h0, h1) in chunk {
                let positions = (h1 - h0) * w;
                col.resize(taps * positions, 0.0);
                im2col(x, s, n, z, h0, h1, &mut col);
                // A contiguous copy of the tile's output gradient (see `conv3d_forward`).
                let offset = n * s.c_out * voxels + z * h * w + h0 * w;
                block.clear();
                for co in 0..s.c_out {
                    let start = offset + co * voxels;
                    block.extend_from_slice(&grad_out[start..start + positions]);
                }
                // dWᵀ [taps, c_out] += im2col [taps, positions] · grad_outᵀ [positions, c_out]:
                // the large operand is then read row by row, as it was written.
                // SAFETY: lhs is the tile's im2col, rhs the transposed gradient block
                // [positions, c_out], dst the [taps, c_out] accumulator; all in bounds.
                unsafe {
                    gemm(
                        taps,
                        s.c_out,
                        positions,
                        acc.as_mut_ptr(),
                        1,
                        s.c_out as isize,
                        true,
                        col.as_ptr(),
                        1,
                        positions as isize,
                        block.as_ptr(),
                        positions as isize,
                        1,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            }
            acc
        })
        .collect();
    let mut transposed = vec![0.0f32; size];
    for partial in &partials {
        transposed
            .iter_mut()
            .zip(partial)
            .for_each(|(t, p)| *t += p);
    }
    // [taps, c_out] → [c_out, taps] (the weight's own layout).
    let mut grad = vec![0.0f32; size];
    for t in 0..taps {
        for co in 0..s.c_out {
            grad[co * taps + t] = transposed[t * s.c_out + co];
        }
    }
    grad
}

/// Gradient with respect to the bias: the output gradient summed over batch and space.
pub(crate) fn conv3d_bias_grad(grad_out: &[f32], s: &ConvShape) -> Vec<f32> {
    let voxels = s.voxels();
    assert_eq!(
        grad_out.len(),
        s.batch * s.c_out * voxels,
        "conv3d output-gradient length"
    );
    (0..s.c_out)
        .into_par_iter()
        .map(|co| {
            (0..s.batch)
                .map(|n| {
                    grad_out[(n * s.c_out + co) * voxels..][..voxels]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>()
                })
                .sum::<f64>() as f32
        })
        .collect()
}
