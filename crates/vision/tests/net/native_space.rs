//! Native-space convolution: thick-slice scans are convolved per slice with the central slice
//! of the same 3×3×3 kernel.

use burn::module::Param;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use vision::conv::native_conv3d;
use vision::{NativeSchedule, Unet};

use crate::common::{device, max_abs_diff, random2, random5, tiny};

#[test]
fn a_1x1x5_mm_scan_takes_the_2d_path_with_the_central_kernel_slice() {
    let device = device();
    let schedule = NativeSchedule::new([1.0, 1.0, 5.0], 3, 2.0).unwrap();
    let collapsed = schedule.level(0).collapsed;
    assert_eq!(collapsed, [false, false, true]);

    let (n, c_in, c_out, [sx, sy, sz]) = (2, 3, 4, [6, 7, 5]);
    let x = random5([n, c_in, sx, sy, sz], 1, &device);
    let weight = random5([c_out, c_in, 3, 3, 3], 2, &device);
    let bias = Tensor::<1>::from_data(TensorData::new(vec![0.1f32, -0.2, 0.3, 0.0], [4]), &device);
    let ours = native_conv3d(x.clone(), weight.clone(), Some(bias.clone()), collapsed);

    // Independent route: fold the z-slices into the batch and run burn's 2-D convolution with
    // the kernel's central z-slice.
    let slices = x.permute([0, 4, 1, 2, 3]).reshape([n * sz, c_in, sx, sy]);
    let central = weight.narrow(4, 1, 1).reshape([c_out, c_in, 3, 3]);
    let reference = conv2d(
        slices,
        central,
        Some(bias),
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    )
    .reshape([n, sz, c_out, sx, sy])
    .permute([0, 2, 3, 4, 1]);
    assert!(max_abs_diff(ours, reference) < 1e-5);
}

/// Multiplies every 3×3×3 kernel of `net` by a mask that keeps only its central z-slice.
fn keep_central_z_slice(net: &mut Unet) {
    let device = device();
    let mask = Tensor::<5>::from_data(
        TensorData::new(vec![0.0f32, 1.0, 0.0], [1, 1, 1, 1, 3]),
        &device,
    );
    let blocks = net
        .encoder
        .blocks
        .iter_mut()
        .chain(net.generator.blocks.iter_mut());
    for block in blocks {
        for conv in block.convs.iter_mut() {
            conv.weight = Param::from_tensor(conv.weight.val() * mask.clone());
        }
    }
}

#[test]
fn a_network_on_thick_slices_never_reads_the_outer_kernel_slices() {
    let device = device();
    let config = tiny();
    let scans = random5([1, 1, 12, 12, 5], 3, &device);
    let phi = random2([1, 32], 4, &device);
    // 9 mm slices stay coarse at every level of the 3-level net (ω = 9, 4.5, 2.25).
    let thick = [1.0, 1.0, 9.0];
    let schedule = NativeSchedule::new(thick, config.levels, config.anisotropy_ratio).unwrap();
    assert!((0..config.levels).all(|l| schedule.level(l).collapsed == [false, false, true]));

    let net = Unet::new(&config, 8, &device).unwrap();
    let mut masked = Unet::new(&config, 8, &device).unwrap();
    keep_central_z_slice(&mut masked);
    let thick_full = net
        .forward(scans.clone(), thick, &phi)
        .unwrap()
        .probabilities;
    let thick_masked = masked
        .forward(scans.clone(), thick, &phi)
        .unwrap()
        .probabilities;
    assert_eq!(max_abs_diff(thick_full, thick_masked), 0.0);

    // Control: at 1 mm isotropic the outer slices matter, so the check above could fail.
    let iso_full = net
        .forward(scans.clone(), [1.0; 3], &phi)
        .unwrap()
        .probabilities;
    let iso_masked = masked.forward(scans, [1.0; 3], &phi).unwrap().probabilities;
    assert!(max_abs_diff(iso_full, iso_masked) > 1e-4);
}
