//! Our convolution op against burn's `conv3d`: forward values and all three gradients.

use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use vision::conv_op::conv3d_same;

use crate::common::{device, max_abs_diff, random5};

#[test]
fn matches_burn_conv3d_and_its_gradients() {
    let plain = device();
    let ad = plain.clone().autodiff();
    for (kernel, c_in, c_out) in [
        ([3, 3, 3], 3, 5),
        ([3, 3, 1], 4, 2),
        ([1, 3, 3], 2, 3),
        ([1, 1, 3], 1, 4),
    ] {
        let shape = [2, c_in, 5, 7, 6];
        let w_shape = [c_out, c_in, kernel[0], kernel[1], kernel[2]];
        let bias = || {
            Tensor::<1>::from_data(
                random5([1, 1, 1, 1, c_out], 3, &plain)
                    .reshape([c_out])
                    .into_data(),
                &ad,
            )
        };
        let options = ConvOptions::new([1, 1, 1], kernel.map(|k| k / 2), [1, 1, 1], 1);

        // Forward without autodiff.
        let ours = conv3d_same(random5(shape, 1, &plain), random5(w_shape, 2, &plain), None);
        let theirs = conv3d(
            random5(shape, 1, &plain),
            random5(w_shape, 2, &plain),
            None,
            options.clone(),
        );
        assert!(max_abs_diff(ours, theirs) < 1e-4);

        // Forward and backward with autodiff, against a random output gradient.
        let grad_out = random5([2, c_out, 5, 7, 6], 4, &ad);
        let run = |use_ours: bool| {
            let x = random5(shape, 1, &ad).require_grad();
            let w = random5(w_shape, 2, &ad).require_grad();
            let b = bias().require_grad();
            let y = if use_ours {
                conv3d_same(x.clone(), w.clone(), Some(b.clone()))
            } else {
                conv3d(x.clone(), w.clone(), Some(b.clone()), options.clone())
            };
            let grads = (y.clone() * grad_out.clone()).sum().backward();
            (
                y.inner(),
                x.grad(&grads).unwrap(),
                w.grad(&grads).unwrap(),
                b.grad(&grads).unwrap(),
            )
        };
        let (y1, dx1, dw1, db1) = run(true);
        let (y2, dx2, dw2, db2) = run(false);
        assert!(max_abs_diff(y1, y2) < 1e-4, "forward {kernel:?}");
        assert!(max_abs_diff(dx1, dx2) < 1e-4, "input gradient {kernel:?}");
        assert!(max_abs_diff(dw1, dw2) < 1e-3, "weight gradient {kernel:?}");
        assert!(max_abs_diff(db1, db2) < 1e-3, "bias gradient {kernel:?}");
    }
}

#[test]
fn pointwise_as_a_unit_convolution_matches_the_matrix_product_with_gradients() {
    use crate::common::random2;
    use vision::conv::{pointwise, pointwise_matmul};
    let plain = device();
    let ad = plain.clone().autodiff();
    let (c_in, c_out) = (6, 4);
    let shape = [2, c_in, 5, 3, 4];
    let x = random5(shape, 1, &plain);
    let w = random2([c_out, c_in], 2, &plain);
    assert!(
        max_abs_diff(
            pointwise(x.clone(), w.clone(), None),
            pointwise_matmul(x, w, None)
        ) < 1e-5
    );
    let grad_out = random5([2, c_out, 5, 3, 4], 4, &ad);
    let run = |unit_conv: bool| {
        let x = random5(shape, 1, &ad).require_grad();
        let w = random2([c_out, c_in], 2, &ad).require_grad();
        let b = random2([1, c_out], 3, &ad).reshape([c_out]).require_grad();
        let y = if unit_conv {
            pointwise(x.clone(), w.clone(), Some(b.clone()))
        } else {
            pointwise_matmul(x.clone(), w.clone(), Some(b.clone()))
        };
        let grads = (y.clone() * grad_out.clone()).sum().backward();
        (
            y.inner(),
            x.grad(&grads).unwrap(),
            w.grad(&grads).unwrap(),
            b.grad(&grads).unwrap(),
        )
    };
    let (y1, dx1, dw1, db1) = run(true);
    let (y2, dx2, dw2, db2) = run(false);
    assert!(max_abs_diff(y1, y2) < 1e-5);
    assert!(max_abs_diff(dx1, dx2) < 1e-5);
    assert!(max_abs_diff(dw1, dw2) < 1e-4);
    assert!(max_abs_diff(db1, db2) < 1e-4);
}
