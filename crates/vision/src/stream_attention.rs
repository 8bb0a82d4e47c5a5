//! Stream attention: at every voxel the S streams (contrasts, sessions) exchange information.
//!
//! With A ∈ R^{S×c} the stacked stream vectors of one voxel, B = f(softmax(QKᵀ/√b)·V) + A, where
//! Q, K, V map c → b channels and f maps b → c. All four are per-voxel linear maps, so they run
//! as batched matrix products over the whole volume; the S×S scores are formed one query stream
//! at a time, which keeps the extra memory at S·b values per voxel instead of S²·b.

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::conv::Pointwise;
use crate::init::SeededInit;

/// Attention across streams at every voxel, with a residual connection.
#[derive(Module, Debug)]
pub struct StreamAttention {
    /// Queries, c → b.
    pub query: Pointwise,
    /// Keys, c → b.
    pub key: Pointwise,
    /// Values, c → b.
    pub value: Pointwise,
    /// Output map f, b → c.
    pub output: Pointwise,
    /// Attention width b.
    pub width: usize,
}

impl StreamAttention {
    /// Attention over `channels`-wide features with queries, keys and values of `width`.
    pub(crate) fn new(
        channels: usize,
        width: usize,
        init: &mut SeededInit,
        device: &Device,
    ) -> Self {
        Self {
            query: Pointwise::new(channels, width, init, device),
            key: Pointwise::new(channels, width, init, device),
            value: Pointwise::new(channels, width, init, device),
            output: Pointwise::new(width, channels, init, device),
            width,
        }
    }

    /// Applies attention to `a` (`[S, c, X, Y, Z]`, streams on the first axis).
    ///
    /// With one stream the softmax over streams is exactly 1, so the result is f(V·a) + a and Q,
    /// K are never computed.
    pub fn forward(&self, a: Tensor<5>) -> Tensor<5> {
        let [streams, _, sx, sy, sz] = a.dims();
        let values = self.value.forward(a.clone());
        if streams == 1 {
            return self.output.forward(values) + a;
        }
        let voxels = sx * sy * sz;
        let flat = |t: Tensor<5>| t.reshape([streams, self.width, voxels]);
        let queries =
            flat(self.query.forward(a.clone())).mul_scalar(1.0 / (self.width as f64).sqrt());
        let keys = flat(self.key.forward(a.clone()));
        let values = flat(values);
        let mut mixed = Vec::with_capacity(streams);
        for s in 0..streams {
            let query = queries.clone().narrow(0, s, 1);
            // Scores of query stream s against every key stream: [S, 1, V].
            let scores = (query * keys.clone()).sum_dim(1);
            let weights = softmax(scores, 0);
            mixed.push((weights * values.clone()).sum_dim(0));
        }
        let attended = Tensor::cat(mixed, 0).reshape([streams, self.width, sx, sy, sz]);
        self.output.forward(attended) + a
    }
}
