//! The side gate (`side_gate`): ϕ offsets the logits on either side of the head's midline. It
//! starts as the network without it, finds the midline of a head wherever it lies, can erase
//! one side of a mask and leave the other, learns from zero, streams like the whole-volume
//! pass and round-trips.

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use vision::side_gate::{SideFrame, SIDE_GATE_GAIN, SIDE_STEP_MM};
use vision::{Unet, UnetConfig};

use crate::common::{
    assert_learns_from_zero, assert_same_as_plain_when_fresh, assert_streams_like_whole,
    assert_upgrade_keeps_function_and_round_trips, device, random5, tiny,
};

fn tiny_gated() -> UnetConfig {
    UnetConfig {
        side_gate: true,
        ..tiny()
    }
}

/// A `[S, 1, X, Y, Z]` volume that is 1 in the box `x0..x1` (all of Y and Z), 0 elsewhere.
fn slab_phantom(streams: &[(usize, usize)], shape: [usize; 3]) -> Tensor<5> {
    let [sx, sy, sz] = shape;
    let mut values = Vec::with_capacity(streams.len() * sx * sy * sz);
    for &(x0, x1) in streams {
        for x in 0..sx {
            let v = if (x0..x1).contains(&x) { 1.0f32 } else { 0.0 };
            values.extend(std::iter::repeat_n(v, sy * sz));
        }
    }
    Tensor::from_data(
        TensorData::new(values, [streams.len(), 1, sx, sy, sz]),
        &device(),
    )
}

/// `net` whose gate gives ϕ's first component the right side's offset `right` and its second
/// the left side's `left` (offsets, after the gain).
fn with_gate(mut net: Unet, left: f32, right: f32) -> Unet {
    let phi_dim = net.config().phi_dim;
    let gain = SIDE_GATE_GAIN as f32;
    let mut weight = vec![0.0f32; phi_dim * 2];
    weight[1] = right / gain; // row 0 (ϕ₀), column 1 (right)
    weight[2] = left / gain; // row 1 (ϕ₁), column 0 (left)
    let tensor = Tensor::from_data(TensorData::new(weight, [phi_dim, 2]), &device());
    net.side_gate.as_mut().expect("a gated network").weight = Param::from_tensor(tensor);
    net
}

#[test]
fn the_gate_starts_as_the_network_without_it() {
    assert!(Unet::new(&tiny(), 5, &device())
        .unwrap()
        .side_gate
        .is_none());
    assert_same_as_plain_when_fresh(&tiny_gated());
}

/// The midline is the centre of the head along x wherever the head lies in the field of view,
/// and the grid's centre for a blank stream; the step's width is 1 mm in voxels.
#[test]
fn the_midline_is_the_heads_centre_along_x() {
    let frame =
        SideFrame::of_scans(&slab_phantom(&[(4, 12), (10, 20), (0, 0)], [24, 3, 2]), 2.0).unwrap();
    let expected = [7.5, 14.5, 11.5];
    for (got, want) in frame.midline_voxels.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{:?}", frame.midline_voxels);
    }
    assert_eq!(frame.step_voxels, SIDE_STEP_MM / 2.0);
    assert!(SideFrame::of_scans(&slab_phantom(&[(0, 1)], [2, 2, 2]), 0.0).is_err());
}

/// With a large negative right-side offset for ϕ₀, the mask keeps its left side (what the
/// network without the gate gives there) and loses its right side, on either side of where
/// the head's midline lies; ϕ₁'s offset on the left side does the same to the left.
#[test]
fn a_gate_erases_one_side_of_a_mask() {
    let device = device();
    let plain = Unet::new(&tiny(), 5, &device).unwrap();
    let gated = with_gate(Unet::new(&tiny_gated(), 5, &device).unwrap(), -40.0, -40.0);
    // A head in x 3..18 of 24 voxels (midline near 10), at 1 mm: a voxel 4 voxels off the
    // midline is 98 % on its side, 8 voxels 99.97 %.
    let scans = slab_phantom(&[(3, 18)], [24, 6, 5]) + random5([1, 1, 24, 6, 5], 3, &device);
    let frame = SideFrame::of_scans(&scans, 1.0).unwrap();
    let midline = frame.midline_voxels[0];
    let mut phi_values = vec![0.0f32; 32];
    phi_values[0] = 1.0;
    let right_off = Tensor::<2>::from_data(TensorData::new(phi_values.clone(), [1, 32]), &device);
    phi_values.swap(0, 1);
    let left_off = Tensor::<2>::from_data(TensorData::new(phi_values, [1, 32]), &device);
    for (phi, erased_right) in [(right_off, true), (left_off, false)] {
        let want = plain
            .forward(scans.clone(), [1.0; 3], &phi)
            .unwrap()
            .probabilities;
        let got = gated
            .forward(scans.clone(), [1.0; 3], &phi)
            .unwrap()
            .probabilities;
        let want = want.into_data().try_to_vec::<f32>().unwrap();
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        let plane = 6 * 5;
        for x in 0..24 {
            let offset = x as f64 - midline;
            let on_erased_side = if erased_right {
                offset > 0.0
            } else {
                offset < 0.0
            };
            for k in x * plane..(x + 1) * plane {
                if on_erased_side && offset.abs() >= 4.0 {
                    // The logit moved by at least 40 · 0.98.
                    assert!(
                        got[k] <= want[k] * 1e-16 + 1e-30,
                        "x {x}: {} from {}",
                        got[k],
                        want[k]
                    );
                } else if !on_erased_side && offset.abs() >= 8.0 {
                    // By at most 40 · σ(−8) = 0.013.
                    assert!(
                        (got[k] / want[k] - 1.0).abs() < 0.015,
                        "x {x}: {} from {}",
                        got[k],
                        want[k]
                    );
                }
            }
        }
    }
}

#[test]
fn the_gate_learns_from_zero() {
    assert_learns_from_zero(&tiny_gated(), |net| {
        vec![net.side_gate.as_ref().unwrap().weight.val()]
    });
}

#[test]
fn the_gate_streams_like_the_whole_volume_pass() {
    let net = with_gate(Unet::new(&tiny_gated(), 5, &device()).unwrap(), 3.0, -2.0);
    assert_streams_like_whole(&net, [21, 13, 10], [1.5, 1.0, 1.0], 3);
}

#[test]
fn a_network_given_a_gate_keeps_its_function_and_round_trips() {
    assert_upgrade_keeps_function_and_round_trips(
        |plain| {
            let upgraded = plain.with_side_gate();
            assert!(upgraded.config().side_gate);
            upgraded
        },
        |upgraded| with_gate(upgraded, 1.5, -2.5),
    );
    assert!(!tiny().to_json().contains("side_gate"));
    assert!(tiny_gated().to_json().contains("\"side_gate\": true"));
}
