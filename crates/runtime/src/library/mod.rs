//! The function library programs call, registered into the sandboxed engine. One file per
//! group: [`measure`] (numbers with units), [`mask_algebra`], [`image_ops`], [`compare`]
//! (change and ratio helpers), [`vision_calls`] (`encode`, `generate`) and [`outputs`]
//! (`read`, `respond`, `show`, `stop`, `fmt`).
//!
//! Every function starts by checking the step deadline, checks its own sizes before allocating,
//! and turns failures into typed refusals the agent sees as feedback. [`LIBRARY`] lists every
//! function with its signature; `docs/runtime-library.md` documents each with an example.

pub mod compare;
pub mod image_ops;
pub mod mask_algebra;
pub mod measure;
pub mod outputs;
pub mod vision_calls;

use crate::context::{halt_limit, refuse, refuse_empty_mask, CallResult, Context, Refusal};
use crate::error::StepErrorKind;
use crate::values::{EncodingHandle, MaskHandle, PhiValue, VolumeHandle};
use rhai::{Dynamic, Engine, EvalAltResult};
use std::sync::Arc;
use voxel::VoxelError;

/// One library function as documented: its name, its signatures and what it returns.
#[derive(Clone, Copy, Debug)]
pub struct FunctionDoc {
    /// The name programs call.
    pub name: &'static str,
    /// Accepted signatures with the return type, e.g. `volume(Mask) -> number (mL)`.
    pub usage: &'static str,
}

/// Every library function, in the order of the documentation page.
pub const LIBRARY: &[FunctionDoc] = &[
    FunctionDoc { name: "encode", usage: "encode(Volume <mod>, ...) -> Encoding (one stream per volume)" },
    FunctionDoc { name: "generate", usage: "generate(Encoding <mod>) or generate(Encoding, \"structure\") -> Mask (one stream) or array of Masks" },
    FunctionDoc { name: "read", usage: "read(value) -> () (adds the value to the step's feedback)" },
    FunctionDoc { name: "respond", usage: "respond(value) -> () (appends a line to the response)" },
    FunctionDoc { name: "show", usage: "show(Volume or Mask, \"name\") -> () (adds a named output volume)" },
    FunctionDoc { name: "stop", usage: "stop() (ends the program)" },
    FunctionDoc { name: "fmt", usage: "fmt(value) -> string (the feedback number format)" },
    FunctionDoc { name: "volume", usage: "volume(Mask) -> number (mL)" },
    FunctionDoc { name: "extents", usage: "extents(Mask) -> [LR, AP, SI] (mm)" },
    FunctionDoc { name: "bbox", usage: "bbox(Mask) -> #{min: [x, y, z], max: [x, y, z]} (world RAS mm)" },
    FunctionDoc { name: "centroid", usage: "centroid(Mask) -> [x, y, z] (world RAS mm)" },
    FunctionDoc { name: "mean", usage: "mean(Volume) or mean(Volume, Mask) -> number (image units)" },
    FunctionDoc { name: "std", usage: "std(Volume) or std(Volume, Mask) -> number (image units)" },
    FunctionDoc { name: "snr", usage: "snr(Volume, Mask) or snr(Volume, Mask, background Mask) -> number (ratio)" },
    FunctionDoc { name: "union", usage: "union(Mask, Mask) -> Mask" },
    FunctionDoc { name: "intersect", usage: "intersect(Mask, Mask) -> Mask" },
    FunctionDoc { name: "subtract", usage: "subtract(Mask, Mask) -> Mask (first without second)" },
    FunctionDoc { name: "largest_component", usage: "largest_component(Mask) -> Mask (26-connected)" },
    FunctionDoc { name: "count_components", usage: "count_components(Mask) or count_components(Mask, min mL) -> integer (26-connected)" },
    FunctionDoc { name: "crop_to", usage: "crop_to(Volume or Mask, Mask) or crop_to(Volume or Mask, Mask, margin mm) -> same type, cropped" },
    FunctionDoc { name: "mask_image", usage: "mask_image(Volume, Mask) -> Volume (zero outside the mask)" },
    FunctionDoc { name: "remove", usage: "remove(Volume, Mask) -> Volume (zero inside the mask)" },
    FunctionDoc { name: "change", usage: "change(before, after) -> number (after - before)" },
    FunctionDoc { name: "percent_change", usage: "percent_change(before, after) -> number (%)" },
    FunctionDoc { name: "ratio", usage: "ratio(a, b) -> number (a / b)" },
    FunctionDoc { name: "asymmetry", usage: "asymmetry(left, right) -> number (%)" },
];

/// The documented usage of a library function, for "function not found" messages.
pub fn usage_of(name: &str) -> Option<&'static str> {
    LIBRARY.iter().find(|f| f.name == name).map(|f| f.usage)
}

/// Registers the handle types and every library function.
pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    engine.register_type_with_name::<VolumeHandle>("Volume");
    engine.register_type_with_name::<MaskHandle>("Mask");
    engine.register_type_with_name::<EncodingHandle>("Encoding");
    engine.register_type_with_name::<PhiValue>("Phi");
    engine.register_type_with_name::<Refusal>("Error");
    for name in ["to_string", "to_debug"] {
        engine.register_fn(name, |v: &mut VolumeHandle| v.describe());
        engine.register_fn(name, |m: &mut MaskHandle| m.describe());
        engine.register_fn(name, |e: &mut EncodingHandle| e.describe());
        engine.register_fn(name, |_: &mut PhiValue| "Phi".to_string());
        engine.register_fn(name, |r: &mut Refusal| {
            format!("{}: {}", r.kind.label(), r.message)
        });
    }
    outputs::register(engine, ctx);
    measure::register(engine, ctx);
    mask_algebra::register(engine, ctx);
    image_ops::register(engine, ctx);
    compare::register(engine, ctx);
    vision_calls::register(engine, ctx);
}

/// A voxel-crate failure inside library function `name`, as the agent should see it: memory
/// limits are uncatchable limits, everything else a refusal of the arguments.
pub(crate) fn voxel_error(name: &str, e: VoxelError) -> Box<EvalAltResult> {
    match e {
        VoxelError::TooLarge(m) => halt_limit(format!("{name}: too large: {m}")),
        VoxelError::GridMismatch(m) => refuse(
            StepErrorKind::Library,
            format!("{name}: the volumes are on different grids ({m}); use volumes derived from the same scan"),
        ),
        e @ VoxelError::EmptyMask(_) => refuse_empty_mask(name, format!("{name}: {e}")),
        other => refuse(StepErrorKind::Library, format!("{name}: {other}")),
    }
}

/// A finite number from an integer or real script value.
pub(crate) fn number_arg(name: &str, what: &str, v: &Dynamic) -> CallResult<f64> {
    let x = if let Ok(f) = v.as_float() {
        f
    } else if let Ok(i) = v.as_int() {
        i as f64
    } else {
        return Err(refuse(
            StepErrorKind::Call,
            format!(
                "{name}: {what} must be a number, not {}",
                crate::values::type_label(v)
            ),
        ));
    };
    if !x.is_finite() {
        return Err(refuse(
            StepErrorKind::Library,
            format!(
                "{name}: {what} is {}, not a finite number",
                crate::feedback::format_number(x)
            ),
        ));
    }
    Ok(x)
}

/// Bytes of a new `f32` image with `voxels` voxels.
pub(crate) fn image_bytes(voxels: usize) -> usize {
    voxels.saturating_mul(std::mem::size_of::<f32>())
}

/// Bytes of a new mask with `voxels` voxels.
pub(crate) fn mask_bytes(voxels: usize) -> usize {
    voxels.saturating_mul(std::mem::size_of::<bool>())
}
