//! Mask algebra: `union`, `intersect`, `subtract`, and connected components
//! (`largest_component`, `count_components`, 26-connected so that lesions touching at an edge
//! or corner count as one).

use super::{mask_bytes, number_arg, voxel_error};
use crate::context::{CallResult, Context};
use crate::values::MaskHandle;
use rhai::{Dynamic, Engine};
use std::sync::Arc;
use voxel::components::{self, Connectivity, MinSize};

/// Connectivity used by the component functions.
pub const CONNECTIVITY: Connectivity = Connectivity::TwentySix;

pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    type VoxelOp = fn(bool, bool) -> bool;
    let ops: [(&str, VoxelOp); 3] = [
        ("union", |a, b| a || b),
        ("intersect", |a, b| a && b),
        ("subtract", |a, b| a && !b),
    ];
    for (name, op) in ops {
        let c = ctx.clone();
        engine.register_fn(
            name,
            move |a: MaskHandle, b: MaskHandle| -> CallResult<MaskHandle> {
                c.check_deadline()?;
                c.charge(3 * a.0.data().len(), name)?;
                c.reserve(mask_bytes(a.0.data().len()), name)?;
                let m = a.0.zip_map(&b.0, op).map_err(|e| voxel_error(name, e))?;
                Ok(c.track_mask(m))
            },
        );
    }

    let c = ctx.clone();
    engine.register_fn(
        "largest_component",
        move |m: MaskHandle| -> CallResult<MaskHandle> {
            c.check_deadline()?;
            c.charge(2 * m.0.data().len(), "largest_component")?;
            c.reserve(mask_bytes(m.0.data().len()), "largest_component")?;
            let out = components::largest_component(&m.0, CONNECTIVITY)
                .map_err(|e| voxel_error("largest_component", e))?;
            Ok(c.track_mask(out))
        },
    );

    let c = ctx.clone();
    engine.register_fn(
        "count_components",
        move |m: MaskHandle| -> CallResult<i64> {
            c.check_deadline()?;
            c.charge(m.0.data().len(), "count_components")?;
            let n = components::count_components(&m.0, CONNECTIVITY, None)
                .map_err(|e| voxel_error("count_components", e))?;
            Ok(i64::try_from(n).unwrap_or(i64::MAX))
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "count_components",
        move |m: MaskHandle, min_ml: Dynamic| -> CallResult<i64> {
            c.check_deadline()?;
            c.charge(m.0.data().len(), "count_components")?;
            let min_ml = number_arg("count_components", "the minimum size in mL", &min_ml)?;
            let n = components::count_components(&m.0, CONNECTIVITY, Some(MinSize::Ml(min_ml)))
                .map_err(|e| voxel_error("count_components", e))?;
            Ok(i64::try_from(n).unwrap_or(i64::MAX))
        },
    );
}
