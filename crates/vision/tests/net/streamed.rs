//! Memory-bounded full-resolution inference equals the whole-volume forward pass.

use crate::common::{assert_streams_like_whole, device, tiny_net};

fn check(shape: [usize; 3], spacing_mm: [f64; 3], slab_rows: usize) {
    assert_streams_like_whole(&tiny_net(&device()), shape, spacing_mm, slab_rows);
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
