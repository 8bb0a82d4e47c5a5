//! Weight averaging: the Polyak (exponential moving) average that a training run keeps of its
//! weights, and the uniform average of several checkpoints of one run (`voxelprompt average`).
//!
//! Why: with a few thousand noisy samples per session, two checkpoints 75 steps apart differed
//! more than any session's progress (session 11: 7 against 2 end-to-end successes of 136, McNemar
//! p 0.008 between them). An average of the recent weights follows the trend without the last
//! steps' noise; it is what is validated, kept as the best and shipped, while the optimiser
//! goes on from the raw weights.
//!
//! Parameters are matched by their path in the module tree (`agent.layers.0.attention…`), so
//! models loaded from different files average as long as they share a configuration.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::JointNet;

/// Every float parameter of a module, flattened, by path.
struct Collect {
    path: Vec<String>,
    params: HashMap<String, Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.params.insert(self.path.join("."), value.reshape([n]));
    }
}

/// Moves every float parameter of the base module toward the other's by `t`.
struct Blend {
    path: Vec<String>,
    other: HashMap<String, Tensor<1>>,
    t: f64,
    /// Parameters the other module lacks or has in another shape.
    mismatched: Vec<String>,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some(other) = self.other.remove(&path) else {
            self.mismatched.push(path);
            return param;
        };
        let t = self.t;
        let mut mismatched = false;
        let param = param.map(|base| {
            let shape = base.shape();
            if other.shape().num_elements() != shape.num_elements() {
                mismatched = true;
                return base;
            }
            let other: Tensor<D> = other.reshape(shape);
            // base + t·(other − base): exact at t = 0 and t = 1.
            if t == 1.0 {
                other
            } else {
                base.clone().add(other.sub(base).mul_scalar(t))
            }
        });
        if mismatched {
            self.mismatched.push(path);
        }
        param
    }
}

/// `base + t·(other − base)` for every float parameter (`t` in [0, 1]): `t = 1/(k+1)` adds a
/// (k+1)-th model to the mean of k, `t = 1 − decay` is one step of a moving average. Both
/// modules must have the same parameters (paths and sizes); the result lives where `base`
/// does, without autodiff state.
pub fn lerp(base: JointNet, other: &JointNet, t: f64) -> Result<JointNet> {
    if !(0.0..=1.0).contains(&t) {
        return Err(TrainError::Backend(format!(
            "weight blend factor {t} is outside [0, 1]"
        )));
    }
    let base = base.valid();
    let device = base.agent.device();
    let mut collect = Collect {
        path: Vec::new(),
        params: HashMap::new(),
    };
    other.valid().visit(&mut collect);
    let other = collect
        .params
        .into_iter()
        .map(|(path, tensor)| (path, tensor.to_device(&device)))
        .collect();
    let mut blend = Blend {
        path: Vec::new(),
        other,
        t,
        mismatched: Vec::new(),
    };
    let out = base.map(&mut blend);
    let mut problems = blend.mismatched;
    problems.extend(blend.other.into_keys());
    if !problems.is_empty() {
        problems.sort();
        return Err(TrainError::Backend(format!(
            "cannot average networks of different shapes: parameters {} differ",
            problems.join(", ")
        )));
    }
    Ok(out)
}

/// The uniform mean of `nets` (all of one configuration).
pub fn mean(nets: &[JointNet]) -> Result<JointNet> {
    let (first, rest) = nets
        .split_first()
        .ok_or_else(|| TrainError::Backend("no networks to average".into()))?;
    let mut out = first.valid();
    for (k, net) in rest.iter().enumerate() {
        out = lerp(out, net, 1.0 / (k as f64 + 2.0))?;
    }
    Ok(out)
}

/// The decay actually applied at the `updates`-th update (0-based) of an average with nominal
/// `decay`: `min(decay, (1 + n)/(10 + n))`, as TensorFlow's `ExponentialMovingAverage` with
/// `num_updates`, so an average started from one set of weights forgets that start quickly
/// instead of carrying it for ~1/(1 − decay) steps.
pub fn effective_decay(decay: f64, updates: u64) -> f64 {
    let n = updates as f64;
    decay.min((1.0 + n) / (10.0 + n))
}

/// Progress of a run's moving average, saved with its checkpoint (the averaged weights are
/// saved beside it as a model of their own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AverageState {
    /// Updates since the average was started (from the weights of that step).
    pub updates: u64,
    /// The optimiser step the average was started at.
    pub started_at_step: u64,
}

impl AverageState {
    /// The progress of an average started from the weights of optimiser step `step`.
    pub fn start(step: u64) -> AverageState {
        AverageState {
            updates: 0,
            started_at_step: step,
        }
    }

    /// `average` moved one update toward `current` with nominal `decay`
    /// ([`effective_decay`]).
    pub fn update(
        &mut self,
        average: JointNet,
        current: &JointNet,
        decay: f64,
    ) -> Result<JointNet> {
        let d = effective_decay(decay, self.updates);
        let out = lerp(average, current, 1.0 - d)?;
        self.updates += 1;
        Ok(out)
    }
}
