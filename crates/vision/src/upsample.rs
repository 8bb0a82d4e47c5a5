//! Trilinear upsampling by 2 along chosen axes of a 5-D tensor.
//!
//! burn 0.22 interpolates 4-D tensors only, and its bilinear backward is missing on the GPU
//! backends, so each axis is upsampled separately from shifted copies: output 2i is
//! 0.75·x[i] + 0.25·x[i−1] and output 2i+1 is 0.75·x[i] + 0.25·x[i+1], with the neighbours
//! clamped at the edges. That is PyTorch's `interpolate(scale_factor=2, mode="trilinear",
//! align_corners=False)` exactly, and separable, so per-axis passes compose to trilinear.

use burn::tensor::Tensor;

/// Upsamples `x` (`[N, C, X, Y, Z]`) by `factors` (each 1 or 2) per axis, trilinearly.
pub fn upsample_linear_x2(x: Tensor<5>, factors: [usize; 3]) -> Tensor<5> {
    let mut out = x;
    for (axis, factor) in factors.iter().enumerate() {
        if *factor > 1 {
            out = upsample_axis(out, 2 + axis);
        }
    }
    out
}

/// Doubles dimension `dim` of `x` by linear interpolation (half-pixel centres, clamped edges).
fn upsample_axis(x: Tensor<5>, dim: usize) -> Tensor<5> {
    let dims = x.dims();
    let n = dims[dim];
    let (previous, next) = if n == 1 {
        (x.clone(), x.clone())
    } else {
        let first = x.clone().narrow(dim, 0, 1);
        let last = x.clone().narrow(dim, n - 1, 1);
        (
            Tensor::cat(vec![first, x.clone().narrow(dim, 0, n - 1)], dim),
            Tensor::cat(vec![x.clone().narrow(dim, 1, n - 1), last], dim),
        )
    };
    let centre = x.mul_scalar(0.75);
    let even = centre.clone() + previous.mul_scalar(0.25);
    let odd = centre + next.mul_scalar(0.25);
    let mut out_dims = dims;
    out_dims[dim] = 2 * n;
    Tensor::stack::<6>(vec![even, odd], dim + 1).reshape(out_dims)
}
