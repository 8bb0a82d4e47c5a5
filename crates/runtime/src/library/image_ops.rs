//! Image operations: `crop_to` (bounding box of a mask plus a margin in mm, clipped to the
//! grid), `mask_image` (keep the region) and `remove` (blank the region). None of them
//! resamples: a crop lives on a sub-grid of its source, so `show` can put it back exactly.

use super::{image_bytes, mask_bytes, number_arg, voxel_error};
use crate::context::{halt_limit, refuse, refuse_empty_mask, CallResult, Context};
use crate::error::StepErrorKind;
use crate::values::{MaskHandle, VolumeHandle};
use rhai::{Dynamic, Engine};
use std::sync::Arc;
use voxel::crop::crop_to_mask;

pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    for with_margin in [false, true] {
        let c = ctx.clone();
        let f = move |x: Dynamic, roi: MaskHandle, margin: Dynamic| -> CallResult<Dynamic> {
            c.check_deadline()?;
            let margin_mm = if with_margin {
                number_arg("crop_to", "the margin in mm", &margin)?
            } else {
                0.0
            };
            if margin_mm < 0.0 {
                return Err(refuse(
                    StepErrorKind::Library,
                    "crop_to: the margin must be 0 mm or more",
                ));
            }
            if margin_mm > c.limits.max_margin_mm {
                return Err(halt_limit(format!(
                    "crop_to: a margin of {} mm is over the {} mm allowed",
                    crate::feedback::format_number(margin_mm),
                    crate::feedback::format_number(c.limits.max_margin_mm)
                )));
            }
            crop_to(&c, x, &roi, margin_mm)
        };
        if with_margin {
            engine.register_fn("crop_to", f);
        } else {
            engine.register_fn("crop_to", move |x: Dynamic, roi: MaskHandle| {
                f(x, roi, Dynamic::UNIT)
            });
        }
    }

    let modes: [(&str, bool); 2] = [("mask_image", true), ("remove", false)];
    for (name, keep_inside) in modes {
        let c = ctx.clone();
        engine.register_fn(
            name,
            move |v: VolumeHandle, roi: MaskHandle| -> CallResult<VolumeHandle> {
                c.check_deadline()?;
                c.charge(3 * v.0.data().len(), name)?;
                c.reserve(image_bytes(v.0.data().len()), name)?;
                let out =
                    v.0.zip_map(
                        &roi.0,
                        move |x, inside| if inside == keep_inside { x } else { 0.0 },
                    )
                    .map_err(|e| voxel_error(name, e))?;
                Ok(c.track_image(out))
            },
        );
    }
}

fn crop_to(ctx: &Context, x: Dynamic, roi: &MaskHandle, margin_mm: f64) -> CallResult<Dynamic> {
    ctx.charge(3 * roi.0.data().len(), "crop_to")?;
    if roi.0.is_empty() {
        return Err(refuse_empty_mask(
            "crop_to",
            "crop_to: the mask is empty, so there is nothing to crop to",
        ));
    }
    if let Some(v) = x.read_lock::<VolumeHandle>() {
        // A crop is never larger than its source, so reserving the source size is an upper bound.
        ctx.reserve(image_bytes(v.0.data().len()), "crop_to")?;
        let out = crop_to_mask(&v.0, &roi.0, margin_mm).map_err(|e| voxel_error("crop_to", e))?;
        return Ok(Dynamic::from(ctx.track_image(out)));
    }
    if let Some(m) = x.read_lock::<MaskHandle>() {
        ctx.reserve(mask_bytes(m.0.data().len()), "crop_to")?;
        let out = crop_to_mask(&m.0, &roi.0, margin_mm).map_err(|e| voxel_error("crop_to", e))?;
        return Ok(Dynamic::from(ctx.track_mask(out)));
    }
    Err(refuse(
        StepErrorKind::Call,
        format!(
            "crop_to takes a Volume or a Mask first, not {}: {}",
            crate::values::type_label(&x),
            super::usage_of("crop_to").unwrap_or_default()
        ),
    ))
}
