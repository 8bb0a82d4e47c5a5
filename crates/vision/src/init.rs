//! Seeded weight initialisation.
//!
//! burn's initialisers draw from one process-wide generator, so two networks built on parallel
//! threads would race for it. Drawing from our own seeded generator makes `Unet::new(config, seed)`
//! reproducible regardless of what else runs.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A deterministic source of initial weights.
#[derive(Debug)]
pub(crate) struct SeededInit {
    rng: StdRng,
}

impl SeededInit {
    /// A generator for `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A parameter drawn uniformly from [-bound, bound].
    pub(crate) fn uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        bound: f64,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let count: usize = shape.iter().product();
        let bound = bound as f32;
        let values: Vec<f32> = (0..count)
            .map(|_| self.rng.random_range(-bound..=bound))
            .collect();
        Param::from_data(TensorData::new(values, shape), device)
    }

    /// He-uniform weights for a layer followed by a SiLU-like nonlinearity (bound √(6 / fan_in)).
    pub(crate) fn he_uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        fan_in: usize,
        device: &Device,
    ) -> Param<Tensor<D>> {
        self.uniform(shape, (6.0 / fan_in.max(1) as f64).sqrt(), device)
    }

    /// Weights of a linear map with unit-variance-preserving scale (bound √(3 / fan_in)).
    pub(crate) fn linear_uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        fan_in: usize,
        device: &Device,
    ) -> Param<Tensor<D>> {
        self.uniform(shape, (3.0 / fan_in.max(1) as f64).sqrt(), device)
    }

    /// A constant parameter (biases: 0, GroupNorm scales: 1).
    pub(crate) fn constant<const D: usize>(
        shape: [usize; D],
        value: f32,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let count: usize = shape.iter().product();
        Param::from_data(TensorData::new(vec![value; count], shape), device)
    }
}
