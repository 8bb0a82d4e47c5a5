//! Max pooling by 2 along chosen axes of a 5-D tensor.
//!
//! burn 0.22 has no `max_pool3d` (it arrives in 0.23), so the 3-D pool is two 2-D pools: one
//! over (y, z) with the x-slices folded into the channels, one over x with (y, z) flattened.
//! Both are native `max_pool2d` calls, so the backward pass is burn's own. Swap this helper for
//! `max_pool3d` after an upgrade.

use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::Tensor;

/// Max-pools `x` (`[N, C, X, Y, Z]`) with window and stride `factors` (each 1 or 2) per axis.
///
/// Each pooled size must be divisible by its factor (the network pads its input so it is).
pub fn max_pool_x2(x: Tensor<5>, factors: [usize; 3]) -> Tensor<5> {
    let [n, c, sx, sy, sz] = x.dims();
    let [fx, fy, fz] = factors;
    let mut out = x;
    if fy > 1 || fz > 1 {
        let folded = out.reshape([n, c * sx, sy, sz]);
        let pooled = max_pool2d(folded, MaxPoolOptions::new([fy, fz]));
        out = pooled.reshape([n, c, sx, sy / fy, sz / fz]);
    }
    if fx > 1 {
        let (ty, tz) = (sy / fy, sz / fz);
        let flat = out.reshape([n, c, sx, ty * tz]);
        let pooled = max_pool2d(flat, MaxPoolOptions::new([fx, 1]));
        out = pooled.reshape([n, c, sx / fx, ty, tz]);
    }
    out
}
