//! The side gate (`side_gate`): ϕ offsets the logits on either side of the head's midline. It
//! starts as the network without it, finds the midline of a head wherever it lies, can erase
//! one side of a mask and leave the other, learns from zero, streams like the whole-volume
//! pass and round-trips.

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use vision::side_gate::{SideFrame, LOGISTIC_START_BIAS, SIDE_GATE_GAIN, SIDE_SUPPRESSION_LOGITS};
use vision::{Unet, UnetConfig};

use crate::common::{
    assert_learns_from_zero, assert_same_as_plain_when_fresh, assert_streams_like_whole,
    assert_upgrade_keeps_function_and_round_trips, device, max_abs_diff, random2, random5, tiny,
};

fn tiny_gated() -> UnetConfig {
    UnetConfig {
        side_gate: true,
        ..tiny()
    }
}

/// A `[S, 1, Z, Y, X]` head per stream (x, the left-right axis, last, as the network takes
/// scans) on a grid of `shape` = `[X, Y, Z]`, mirror symmetric about x = `centre` voxels (a tent
/// profile along x, 1 at the centre, 0 from `X / 3` voxels off it, the same at every y and z);
/// `None`: a blank stream.
fn head_phantom(streams: &[Option<f64>], shape: [usize; 3]) -> Tensor<5> {
    let [sx, sy, sz] = shape;
    let half_width = sx as f64 / 3.0;
    let mut values = Vec::with_capacity(streams.len() * sx * sy * sz);
    for centre in streams {
        let row: Vec<f32> = (0..sx)
            .map(|x| {
                centre.map_or(0.0, |c| (1.0 - (x as f64 - c).abs() / half_width).max(0.0)) as f32
            })
            .collect();
        for _ in 0..sy * sz {
            values.extend_from_slice(&row);
        }
    }
    Tensor::from_data(
        TensorData::new(values, [streams.len(), 1, sz, sy, sx]),
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

/// The plane is the head's mirror plane wherever the head lies in the field of view, and the
/// grid's centre for a blank stream (the plane's search itself: `vision::midplane`).
#[test]
fn the_plane_is_the_heads_mirror_plane() {
    let frame = SideFrame::of_scans(
        &head_phantom(&[Some(7.5), Some(14.5), None], [24, 6, 5]),
        [2.0; 3],
    )
    .unwrap();
    let expected_mm = [15.0, 29.0, 23.0];
    for (got, want) in frame.planes.iter().zip(expected_mm) {
        assert!(
            (got.x_at_centre_mm - want).abs() <= 0.5
                && got.slope_y.abs() <= 0.02
                && got.slope_z.abs() <= 0.02,
            "{:?}",
            frame.planes
        );
    }
    assert_eq!(frame.spacing_mm, [2.0; 3]);
    assert!(SideFrame::of_scans(&head_phantom(&[None], [2, 2, 2]), [1.0, 0.0, 1.0]).is_err());
}

/// With a large negative right-side offset for ϕ₀, the mask keeps its left side (what the
/// network without the gate gives there) and loses its right side, on either side of where
/// the head's midline lies; ϕ₁'s offset on the left side does the same to the left.
#[test]
fn a_gate_erases_one_side_of_a_mask() {
    let device = device();
    let plain = Unet::new(&tiny(), 5, &device).unwrap();
    let gated = with_gate(Unet::new(&tiny_gated(), 5, &device).unwrap(), -40.0, -40.0);
    // A head about x = 10.5 of 24 voxels, with texture, at 1 mm: a voxel 4 mm off the plane
    // is 98 % on its side, 8 mm 99.97 %.
    let scans = head_phantom(&[Some(10.5)], [24, 6, 5])
        + random5([1, 1, 5, 6, 24], 3, &device).mul_scalar(0.2);
    let frame = SideFrame::of_scans(&scans, [1.0; 3]).unwrap();
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
        for (k, (&got, &want)) in got.iter().zip(&want).enumerate() {
            let (x, y, z) = (k % 24, k / 24 % 6, k / 144);
            let offset = frame.signed_distance_mm(0, [x, y, z]);
            let on_erased_side = if erased_right {
                offset > 0.0
            } else {
                offset < 0.0
            };
            if on_erased_side && offset.abs() >= 4.0 {
                // The logit moved by at least 40 · 0.98.
                assert!(got <= want * 1e-16 + 1e-30, "x {x}: {got} from {want}");
            } else if !on_erased_side && offset.abs() >= 8.0 {
                // By at most 40 · σ(−8) = 0.013.
                assert!((got / want - 1.0).abs() < 0.015, "x {x}: {got} from {want}");
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

fn tiny_logistic() -> UnetConfig {
    UnetConfig {
        side_gate: true,
        side_gate_logistic: true,
        ..tiny()
    }
}

/// `net` (a logistic gate) whose exclusion logits are `bias` plus ϕ₀ on the right side and ϕ₁
/// on the left (before the gain).
fn with_logistic_gate(mut net: Unet, bias: [f32; 2]) -> Unet {
    let phi_dim = net.config().phi_dim;
    let gain = SIDE_GATE_GAIN as f32;
    let mut weight = vec![0.0f32; phi_dim * 2];
    weight[1] = 1.0 / gain; // row 0 (ϕ₀), column 1 (right)
    weight[2] = 1.0 / gain; // row 1 (ϕ₁), column 0 (left)
    let gate = net.side_gate.as_mut().expect("a gated network");
    gate.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weight, [phi_dim, 2]),
        &device(),
    ));
    gate.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias.to_vec(), [2]),
        &device(),
    )));
    net
}

/// The logistic gate's offsets are `−SIDE_SUPPRESSION_LOGITS · σ(gain·ϕ·W + b)`: at the start
/// (zero weight, bias −6) −0.03 logits on both sides whatever ϕ; a side whose exclusion logit
/// is high gets the whole suppression, one far below 0 nothing, and the linear gate's offsets
/// are still `gain·ϕ·W`.
#[test]
fn the_logistic_gate_says_yes_or_no_per_side() {
    let device = device();
    let fresh = Unet::new(&tiny_logistic(), 5, &device).unwrap();
    let gate = fresh.side_gate.as_ref().unwrap();
    assert!(gate.is_logistic());
    let phi = random2([3, 32], 4, &device).mul_scalar(5.0);
    let start = gate.offsets(&phi).into_data().try_to_vec::<f32>().unwrap();
    let expected = -SIDE_SUPPRESSION_LOGITS / (1.0 + (-LOGISTIC_START_BIAS).exp());
    for o in start {
        assert!(
            (f64::from(o) - expected).abs() < 1e-6,
            "{o} against {expected}"
        );
    }
    assert!(expected.abs() < 0.04);

    let net = with_logistic_gate(
        Unet::new(&tiny_logistic(), 5, &device).unwrap(),
        [-6.0, -6.0],
    );
    let mut values = vec![0.0f32; 2 * 32];
    values[0] = 20.0; // row 0: ϕ₀ = 20, the right side's exclusion logit 14
    values[32 + 1] = -20.0; // row 1: ϕ₁ = −20, the left side's −26
    let phi = Tensor::<2>::from_data(TensorData::new(values, [2, 32]), &device);
    let gate = net.side_gate.as_ref().unwrap();
    let z = gate
        .exclusion_logits(&phi)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(z, vec![-6.0, 14.0, -26.0, -6.0]);
    let o = gate.offsets(&phi).into_data().try_to_vec::<f32>().unwrap();
    let sigma = |z: f64| 1.0 / (1.0 + (-z).exp());
    for (got, z) in o.iter().zip([-6.0, 14.0, -26.0, -6.0]) {
        let want = -SIDE_SUPPRESSION_LOGITS * sigma(z);
        assert!(
            (f64::from(*got) - want).abs() < 1e-4,
            "{got} against {want}"
        );
    }
    assert!(o[1] < -11.9 && o[2].abs() < 1e-9);

    let linear = with_gate(Unet::new(&tiny_gated(), 5, &device).unwrap(), 2.0, -3.0);
    let gate = linear.side_gate.as_ref().unwrap();
    assert!(!gate.is_logistic() && gate.exclusion_logits(&phi).is_none());
    let mut values = vec![0.0f32; 32];
    values[0] = 1.0;
    values[1] = 1.0;
    let phi = Tensor::<2>::from_data(TensorData::new(values, [1, 32]), &device);
    let o = gate.offsets(&phi).into_data().try_to_vec::<f32>().unwrap();
    assert!(
        (o[0] - 2.0).abs() < 1e-5 && (o[1] + 3.0).abs() < 1e-5,
        "{o:?}"
    );
}

/// A logistic gate that excludes the right side erases it as the linear gate does, and its
/// weight and bias learn from the start.
#[test]
fn a_logistic_gate_erases_one_side_and_learns() {
    let device = device();
    let plain = Unet::new(&tiny(), 5, &device).unwrap();
    // ϕ₀ = 20 gives the right side the exclusion logit 14 (offset −12); the left gets −6.
    let gated = with_logistic_gate(
        Unet::new(&tiny_logistic(), 5, &device).unwrap(),
        [-6.0, -6.0],
    );
    let scans = head_phantom(&[Some(10.5)], [24, 6, 5])
        + random5([1, 1, 5, 6, 24], 3, &device).mul_scalar(0.2);
    let frame = SideFrame::of_scans(&scans, [1.0; 3]).unwrap();
    let mut phi_values = vec![0.0f32; 32];
    phi_values[0] = 20.0;
    let phi = Tensor::<2>::from_data(TensorData::new(phi_values, [1, 32]), &device);
    let logits = |net: &Unet| {
        let p = net
            .forward(scans.clone(), [1.0; 3], &phi)
            .unwrap()
            .probabilities
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        p.iter()
            .map(|&p| (f64::from(p) / (1.0 - f64::from(p))).ln())
            .collect::<Vec<f64>>()
    };
    let (want, got) = (logits(&plain), logits(&gated));
    let left_offset = -SIDE_SUPPRESSION_LOGITS / (1.0 + 6f64.exp());
    for (k, (got, want)) in got.iter().zip(&want).enumerate() {
        let (x, y, z) = (k % 24, k / 24 % 6, k / 144);
        let d = frame.signed_distance_mm(0, [x, y, z]);
        if d >= 8.0 {
            assert!((got - want + 12.0).abs() < 0.05, "x {x}: {got} from {want}");
        } else if d <= -8.0 {
            assert!(
                (got - want - left_offset).abs() < 0.01,
                "x {x}: {got} from {want}"
            );
        }
    }
    assert_learns_from_zero(&tiny_logistic(), |net| {
        vec![net.side_gate.as_ref().unwrap().weight.val()]
    });
    // The bias (1-D) learns from its start as well.
    let device = device.autodiff();
    let net = Unet::new(&tiny_logistic(), 5, &device).unwrap();
    let scans = random5([2, 1, 8, 9, 7], 1, &device);
    let phi = random2([2, 32], 3, &device);
    let p = net.forward(scans, [1.0; 3], &phi).unwrap().probabilities;
    let grads = p.mean().backward();
    let bias = net.side_gate.as_ref().unwrap().bias.as_ref().unwrap().val();
    let g = bias.grad(&grads).expect("the bias has a gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
}

/// A network with a linear gate or none is given a logistic one that starts at −0.03 logits,
/// says so in its configuration, and round-trips; one that has it is left as it is.
#[test]
fn a_network_given_a_logistic_gate_round_trips() {
    let device = device();
    let scans = random5([1, 1, 9, 8, 7], 6, &device);
    let phi = random2([1, 32], 7, &device);
    let linear = with_gate(Unet::new(&tiny_gated(), 5, &device).unwrap(), 1.5, -2.5);
    let upgraded = linear.with_logistic_side_gate();
    assert!(upgraded.config().side_gate && upgraded.config().side_gate_logistic);
    assert!(upgraded.side_gate.as_ref().unwrap().is_logistic());
    let plain = Unet::new(&tiny(), 5, &device).unwrap();
    let a = plain.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let b = upgraded.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let shift = -SIDE_SUPPRESSION_LOGITS / (1.0 + (-LOGISTIC_START_BIAS).exp());
    // σ moves by at most |shift| / 4 where its slope is steepest.
    assert!(f64::from(max_abs_diff(a.probabilities, b.probabilities)) <= shift.abs() / 4.0 + 1e-6);

    let trained = with_logistic_gate(upgraded, [0.5, -1.0]);
    let again = trained.clone().with_logistic_side_gate();
    let dir = tempfile::tempdir().unwrap();
    vision::checkpoint::save(&again, dir.path()).unwrap();
    let loaded: Unet = vision::checkpoint::load(dir.path(), &device).unwrap();
    assert!(loaded.config().side_gate_logistic);
    let x = trained.forward(scans.clone(), [1.0; 3], &phi).unwrap();
    let y = loaded.forward(scans, [1.0; 3], &phi).unwrap();
    assert_eq!(max_abs_diff(x.probabilities, y.probabilities), 0.0);
    assert!(tiny_logistic()
        .to_json()
        .contains("\"side_gate_logistic\": true"));
    assert!(!tiny_gated().to_json().contains("side_gate_logistic"));
}
