//! Memory-bounded full-resolution inference equals the whole-volume forward pass.

use vision::StreamOptions;

use crate::common::{device, max_abs_diff, random2, random5, tiny_net};

fn check(shape: [usize; 3], spacing_mm: [f64; 3], slab_rows: usize) {
    let device = device();
    let net = tiny_net(&device);
    let scans = random5([2, 1, shape[0], shape[1], shape[2]], 31, &device);
    let phi = random2([2, 32], 32, &device);
    let whole = net.forward(scans.clone(), spacing_mm, &phi).unwrap();
    let options = StreamOptions {
        slab_rows: Some(slab_rows),
        ..StreamOptions::default()
    };
    let streamed = net
        .forward_streamed(scans, spacing_mm, &phi, &options)
        .unwrap();
    assert_eq!(streamed.probabilities.dims(), whole.probabilities.dims());
    let diff = max_abs_diff(whole.probabilities, streamed.probabilities);
    assert!(diff < 1e-5, "probabilities differ by {diff}");
    assert!(max_abs_diff(whole.embedding, streamed.embedding) < 1e-4);
}

#[test]
fn thin_slabs_reproduce_the_whole_volume_pass() {
    // 3-row slabs cut every level (21 → 24 padded, 12 and 6 rows below) at several places.
    check([21, 13, 10], [1.0; 3], 3);
}

#[test]
fn slabs_along_a_thick_slice_axis_reproduce_the_whole_volume_pass() {
    // 4 mm x-spacing: x is coarse at level 0 (no halo, central kernel slice) and fine below.
    check([6, 14, 11], [4.0, 1.0, 1.0], 1);
}
