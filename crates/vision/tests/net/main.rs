//! Integration tests of the vision network, one module per property. One test binary keeps the
//! link time of the burn-heavy test suite down.

mod baseline;
mod bias_silu;
mod checkpoint;
mod common;
mod conditioning;
mod conv_op;
mod equivariance;
mod film;
mod gradients;
mod native_space;
mod norm_op;
mod resampling;
mod shapes;
mod side_gate;
mod streamed;
