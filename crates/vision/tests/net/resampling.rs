//! Max pooling and trilinear upsampling against direct per-voxel formulas.

use burn::tensor::Tensor;
use vision::pool::max_pool_x2;
use vision::upsample::upsample_linear_x2;

use crate::common::{device, random5, values};

fn index(shape: [usize; 5], i: [usize; 5]) -> usize {
    (((i[0] * shape[1] + i[1]) * shape[2] + i[2]) * shape[3] + i[3]) * shape[4] + i[4]
}

fn host(t: Tensor<5>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn max_pool_matches_the_window_maximum() {
    let device = device();
    let shape = [2, 3, 4, 6, 2];
    let x = random5(shape, 9, &device);
    let data = values(shape.iter().product(), 9);
    for factors in [[2, 2, 2], [2, 2, 1], [1, 2, 2], [2, 1, 1]] {
        let out = host(max_pool_x2(x.clone(), factors));
        let out_shape = [2, 3, 4 / factors[0], 6 / factors[1], 2 / factors[2]];
        assert_eq!(out.len(), out_shape.iter().product::<usize>());
        for n in 0..2 {
            for c in 0..3 {
                for i in 0..out_shape[2] {
                    for j in 0..out_shape[3] {
                        for k in 0..out_shape[4] {
                            let mut best = f32::MIN;
                            for di in 0..factors[0] {
                                for dj in 0..factors[1] {
                                    for dk in 0..factors[2] {
                                        let src = [
                                            n,
                                            c,
                                            i * factors[0] + di,
                                            j * factors[1] + dj,
                                            k * factors[2] + dk,
                                        ];
                                        best = best.max(data[index(shape, src)]);
                                    }
                                }
                            }
                            assert_eq!(out[index(out_shape, [n, c, i, j, k])], best);
                        }
                    }
                }
            }
        }
    }
}

/// PyTorch's `align_corners=False` source coordinate for output `o` of a ×2 upsampling of `n`.
fn taps(o: usize, n: usize) -> (usize, usize, f32) {
    let src = ((o as f32 + 0.5) / 2.0 - 0.5).max(0.0);
    let i0 = src.floor() as usize;
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, src - i0 as f32)
}

#[test]
fn upsampling_is_trilinear_with_half_pixel_centres() {
    let device = device();
    let shape = [1, 2, 3, 1, 4];
    let x = random5(shape, 4, &device);
    let data = values(shape.iter().product(), 4);
    let out = host(upsample_linear_x2(x, [2, 2, 2]));
    let out_shape = [1, 2, 6, 2, 8];
    for c in 0..2 {
        for i in 0..6 {
            for j in 0..2 {
                for k in 0..8 {
                    let (i0, i1, wi) = taps(i, 3);
                    let (j0, j1, wj) = taps(j, 1);
                    let (k0, k1, wk) = taps(k, 4);
                    let mut expected = 0.0;
                    for (ii, fi) in [(i0, 1.0 - wi), (i1, wi)] {
                        for (jj, fj) in [(j0, 1.0 - wj), (j1, wj)] {
                            for (kk, fk) in [(k0, 1.0 - wk), (k1, wk)] {
                                expected += fi * fj * fk * data[index(shape, [0, c, ii, jj, kk])];
                            }
                        }
                    }
                    let got = out[index(out_shape, [0, c, i, j, k])];
                    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
                }
            }
        }
    }
}

#[test]
fn the_fused_upsampling_equals_the_composed_one_with_gradients() {
    use crate::common::max_abs_diff;
    use vision::upsample::upsample_linear_x2_composed;
    let plain = device();
    let ad = plain.clone().autodiff();
    // Odd sizes, a size-1 axis and every pattern of doubled axes the schedules produce.
    let shape = [2, 3, 5, 1, 4];
    for factors in [[2, 2, 2], [2, 2, 1], [1, 2, 2], [2, 1, 1], [1, 1, 2]] {
        let x = random5(shape, 7, &plain);
        // The same arithmetic in the same order: equal to the bit.
        assert_eq!(
            host(upsample_linear_x2(x.clone(), factors)),
            host(upsample_linear_x2_composed(x, factors)),
            "{factors:?}"
        );
        let out_shape = [2, 3, 5 * factors[0], factors[1], 4 * factors[2]];
        let weights = random5(out_shape, 8, &ad);
        let grad = |fused: bool| {
            let x = random5(shape, 7, &ad).detach().require_grad();
            let y = if fused {
                upsample_linear_x2(x.clone(), factors)
            } else {
                upsample_linear_x2_composed(x.clone(), factors)
            };
            let grads = (y * weights.clone()).sum().backward();
            x.grad(&grads).unwrap()
        };
        assert!(max_abs_diff(grad(true), grad(false)) < 1e-5, "{factors:?}");
    }
    // Nothing doubled: the input itself.
    let x = random5(shape, 3, &plain);
    assert_eq!(host(upsample_linear_x2(x.clone(), [1, 1, 1])), host(x));
}
