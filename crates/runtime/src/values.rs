//! The typed handles programs hold: `Volume` (an intensity image), `Mask` (a binary region),
//! `Encoding` (the vision encoder's output) and `Phi` (one bound `<mod>` vector).
//!
//! Every handle is an `Arc` underneath, so copying a variable, putting it in an array or
//! passing it to a function never copies voxels; only library functions create new volumes,
//! and they account for them (see [`crate::Limits::max_live_bytes`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use voxel::{Geometry, Image, Mask};

/// Length of a ϕ vector: the width of the agent's `<mod>` head (DESIGN.md §4).
pub const PHI_DIM: usize = 32;

/// One latent ϕ vector produced by the agent at a `<mod>` position.
pub type Phi = [f32; PHI_DIM];

/// A bound ϕ as a script value (type name `Phi`). Programs never build these; the runtime
/// binds one per `<mod>` marker.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiValue(pub Arc<Phi>);

/// An intensity image (type name `Volume`).
#[derive(Clone, Debug)]
pub struct VolumeHandle(pub Arc<Image>);

/// A binary region of interest (type name `Mask`).
#[derive(Clone, Debug)]
pub struct MaskHandle(pub Arc<Mask>);

/// What `encode` returns (type name `Encoding`): the encoded streams, the ϕ each was encoded
/// with, and whatever the backend keeps to run the generator later (features, tensors).
#[derive(Clone)]
pub struct EncodingHandle {
    streams: Arc<[Arc<Image>]>,
    phi: Arc<[Phi]>,
    payload: Option<Arc<dyn Any + Send + Sync>>,
}

impl EncodingHandle {
    /// An encoding of `streams` (one per input volume) made with `phi` (one per stream, or
    /// none for backends that take no ϕ). `payload` is the backend's own state, retrieved with
    /// [`EncodingHandle::payload`].
    pub fn new(
        streams: Vec<Arc<Image>>,
        phi: Vec<Phi>,
        payload: Option<Arc<dyn Any + Send + Sync>>,
    ) -> EncodingHandle {
        EncodingHandle {
            streams: streams.into(),
            phi: phi.into(),
            payload,
        }
    }

    /// The encoded volumes, one per stream, in call order.
    pub fn streams(&self) -> &[Arc<Image>] {
        &self.streams
    }

    /// Number of streams.
    pub fn num_streams(&self) -> usize {
        self.streams.len()
    }

    /// The ϕ vectors the streams were encoded with (empty when encoded without ϕ).
    pub fn phi(&self) -> &[Phi] {
        &self.phi
    }

    /// The backend's state, downcast to its concrete type, e.g.
    /// `enc.payload::<MyFeatures>()`.
    pub fn payload<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.payload.as_ref().and_then(|p| p.downcast_ref::<T>())
    }
}

impl fmt::Debug for EncodingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodingHandle")
            .field("streams", &self.streams.len())
            .field("phi", &self.phi.len())
            .field("payload", &self.payload.is_some())
            .finish()
    }
}

/// The name of a value's type as programs know it: `Volume`, `Mask`, `Encoding`, `Phi`,
/// `int`, `float`, `string`, `bool`, `char`, `array`, `map`, `nothing`.
pub fn type_label(value: &rhai::Dynamic) -> &'static str {
    if value.is::<VolumeHandle>() {
        "Volume"
    } else if value.is::<MaskHandle>() {
        "Mask"
    } else if value.is::<EncodingHandle>() {
        "Encoding"
    } else if value.is::<PhiValue>() {
        "Phi"
    } else if value.is_int() {
        "int"
    } else if value.is_float() {
        "float"
    } else if value.is_string() {
        "string"
    } else if value.is_bool() {
        "bool"
    } else if value.is_char() {
        "char"
    } else if value.is_array() {
        "array"
    } else if value.is_map() {
        "map"
    } else if value.is_unit() {
        "nothing"
    } else {
        "value"
    }
}

/// Rhai's type names in a signature (`volume (i64)`) rewritten to [`type_label`]'s words.
pub(crate) fn plain_signature(sig: &str) -> String {
    sig.replace("&str | ImmutableString | String", "string")
        .replace("ImmutableString", "string")
        .replace("i64", "int")
        .replace("f64", "float")
}

/// `64x64x64` — shapes in feedback use ASCII so the tokenizer sees plain text.
pub(crate) fn shape_text(g: &Geometry) -> String {
    let s = g.shape();
    format!("{}x{}x{}", s[0], s[1], s[2])
}

/// `1.000x1.000x3.000 mm` with the feedback number format.
pub(crate) fn spacing_text(g: &Geometry) -> String {
    let s = g.spacing_mm();
    format!(
        "{}x{}x{} mm",
        crate::feedback::format_number(s[0]),
        crate::feedback::format_number(s[1]),
        crate::feedback::format_number(s[2])
    )
}

impl VolumeHandle {
    /// One-line description used by `read` and `to_string`:
    /// `Volume 64x64x64 at 1.000x1.000x1.000 mm`.
    pub fn describe(&self) -> String {
        let g = self.0.geometry();
        format!("Volume {} at {}", shape_text(g), spacing_text(g))
    }
}

impl MaskHandle {
    /// One-line description used by `read` and `to_string`:
    /// `Mask 64x64x64 at 1.000x1.000x1.000 mm, 4169 voxels (4.169 mL)`.
    pub fn describe(&self) -> String {
        let g = self.0.geometry();
        let n = self.0.count();
        let ml = voxel::measure::volume_ml(&self.0);
        format!(
            "Mask {} at {}, {n} voxels ({} mL)",
            shape_text(g),
            spacing_text(g),
            crate::feedback::format_number(ml)
        )
    }
}

impl EncodingHandle {
    /// One-line description used by `to_string`: `Encoding (2 streams)`.
    pub fn describe(&self) -> String {
        match self.num_streams() {
            1 => "Encoding (1 stream)".to_string(),
            n => format!("Encoding ({n} streams)"),
        }
    }
}
