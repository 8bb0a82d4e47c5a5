//! Seeded randomness: one ChaCha stream per purpose, so adding a draw in one place does not
//! change every later subject, and normal variates without an extra dependency.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A deterministic generator for `(seed, stream)`; distinct streams are independent.
pub fn stream(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(mix(seed, stream))
}

/// SplitMix64-style mixing of two words, used to derive sub-seeds.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal variate (Box–Muller; one of the pair is discarded for simplicity).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Uniform in `[lo, hi)`; `lo` when the range is empty.
pub fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// A fast counter-based uniform in `[0, 1)` for per-voxel noise: reproducible for any
/// thread split because it depends only on `(key, index)`.
#[inline]
pub fn hash_unit(key: u64, index: u64) -> f32 {
    (mix(key, index) >> 40) as f32 / (1u64 << 24) as f32
}

/// An approximately standard normal variate at `(key, index)`: the sum of four 16-bit uniforms
/// of one hash (Irwin–Hall), rescaled to unit variance. Tails stop at ±3.46, which is fine for
/// image noise and several times cheaper than Box–Muller per voxel.
#[inline]
pub fn hash_normal(key: u64, index: u64) -> f32 {
    let h = mix(key, index);
    let s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
    // s < 2¹⁸: through i32 the conversion is exact and one instruction (u64 → f32 is not).
    (s as i32 as f32 / 65536.0 - 2.0) * 1.732_050_8
}
