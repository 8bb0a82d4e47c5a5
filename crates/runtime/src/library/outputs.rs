//! What a program hands back: `read` (feedback for the agent), `respond` (the answer for the
//! user), `show` (named output volumes), `stop` (the end), and `fmt` plus the number-format
//! hooks that make `"text " + x` and `${x}` print numbers the way feedback does.

use super::{image_bytes, mask_bytes};
use crate::context::{halt_limit, refuse, CallResult, Context, OutputData, OutputVolume};
use crate::error::StepErrorKind;
use crate::feedback::{format_number, format_value_within, FeedbackItem};
use crate::grid::{is_subgrid, place_on_grid};
use crate::sandbox::Halt;
use crate::values::{EncodingHandle, MaskHandle, VolumeHandle};
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Position};
use std::sync::Arc;
use std::time::Instant;
use voxel::{Geometry, Mask};

/// Longest output name; names become file stems.
const MAX_NAME_LEN: usize = 64;

pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    let c = ctx.clone();
    engine.register_fn("read", move |x: Dynamic| read(&c, x));
    let c = ctx.clone();
    engine.register_fn("respond", move |x: Dynamic| respond(&c, x));
    let c = ctx.clone();
    engine.register_fn("show", move |x: Dynamic, name: ImmutableString| {
        show(&c, x, &name)
    });
    let c = ctx.clone();
    engine.register_fn("stop", move || -> CallResult<()> {
        c.state().stopped = true;
        Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(Halt::Stop),
            Position::NONE,
        )))
    });
    let max = ctx.limits.max_string_bytes;
    engine.register_fn("fmt", move |x: Dynamic| -> CallResult<String> {
        format_value_within(&x, max)
            .ok_or_else(|| halt_limit(format!("fmt: the text exceeds {max} bytes")))
    });

    // One number format everywhere: string building and interpolation go through these.
    engine.register_fn("to_string", |x: f64| format_number(x));
    engine.register_fn("to_debug", |x: f64| format_number(x));
    engine.register_fn("+", |s: ImmutableString, x: f64| {
        format!("{s}{}", format_number(x))
    });
    engine.register_fn("+", |x: f64, s: ImmutableString| {
        format!("{}{s}", format_number(x))
    });
    // The reduced string package has no string + int; labels like "lesion " + n need it.
    engine.register_fn("+", |s: ImmutableString, x: i64| format!("{s}{x}"));
    engine.register_fn("+", |x: i64, s: ImmutableString| format!("{x}{s}"));
    engine.register_fn("+", |s: ImmutableString, x: bool| format!("{s}{x}"));
    engine.register_fn("+", |x: bool, s: ImmutableString| format!("{x}{s}"));
}

fn read(ctx: &Context, x: Dynamic) -> CallResult<()> {
    ctx.check_deadline()?;
    let item = if let Some(enc) = x.read_lock::<EncodingHandle>() {
        ctx.count_vision_call("read")?;
        let started = Instant::now();
        let streams = ctx.backend.embedding(&enc);
        ctx.clock.extend(started.elapsed());
        let streams = streams.map_err(|e| refuse(StepErrorKind::Vision, format!("read: {e}")))?;
        FeedbackItem::Encoding { streams }
    } else {
        let text = format_value_within(&x, ctx.limits.max_feedback_bytes).ok_or_else(|| {
            halt_limit(format!(
                "read: the value's text exceeds {} bytes",
                ctx.limits.max_feedback_bytes
            ))
        })?;
        FeedbackItem::Text(text)
    };
    let mut st = ctx.state();
    st.reads += 1;
    if st.reads > ctx.limits.max_reads_per_step {
        return Err(halt_limit(format!(
            "read: more than {} reads in one step; read fewer, larger values",
            ctx.limits.max_reads_per_step
        )));
    }
    if let FeedbackItem::Text(t) = &item {
        st.feedback_bytes += t.len();
        if st.feedback_bytes > ctx.limits.max_feedback_bytes {
            return Err(halt_limit(format!(
                "read: feedback of this step exceeds {} bytes",
                ctx.limits.max_feedback_bytes
            )));
        }
    }
    st.feedback.push(item);
    Ok(())
}

fn respond(ctx: &Context, x: Dynamic) -> CallResult<()> {
    ctx.check_deadline()?;
    let text = format_value_within(&x, ctx.limits.max_response_bytes).ok_or_else(|| {
        halt_limit(format!(
            "respond: the text exceeds {} bytes",
            ctx.limits.max_response_bytes
        ))
    })?;
    let mut st = ctx.state();
    let extra = text.len() + usize::from(!st.response.is_empty());
    if st.response.len() + extra > ctx.limits.max_response_bytes {
        return Err(halt_limit(format!(
            "respond: the response would exceed {} bytes",
            ctx.limits.max_response_bytes
        )));
    }
    if !st.response.is_empty() {
        st.response.push('\n');
    }
    st.response.push_str(&text);
    Ok(())
}

/// Output names become file names, so only a conservative alphabet is allowed: no path
/// separators, no leading dot, nothing a shell or file system treats specially.
fn check_name(name: &str) -> CallResult<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && ok_chars
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(refuse(
            StepErrorKind::Library,
            format!("show: the name {name:?} is not allowed; use 1-{MAX_NAME_LEN} letters, digits, '_', '-' or '.', starting with a letter or digit"),
        ))
    }
}

fn show(ctx: &Context, x: Dynamic, name: &str) -> CallResult<()> {
    ctx.check_deadline()?;
    let geometry = if let Some(v) = x.read_lock::<VolumeHandle>() {
        v.0.geometry().clone()
    } else if let Some(m) = x.read_lock::<MaskHandle>() {
        m.0.geometry().clone()
    } else {
        return Err(refuse(
            StepErrorKind::Call,
            format!(
                "show takes a Volume or a Mask and a name, not {}",
                crate::values::type_label(&x)
            ),
        ));
    };
    check_name(name)?;
    {
        let st = ctx.state();
        if st.outputs.len() >= ctx.limits.max_outputs && !st.outputs.iter().any(|o| o.name == name)
        {
            return Err(halt_limit(format!(
                "show: at most {} named outputs",
                ctx.limits.max_outputs
            )));
        }
    }
    let (grid_of, target) = input_grid_of(ctx, &geometry).ok_or_else(|| {
        refuse(
            StepErrorKind::Library,
            "show: the volume is not on the grid of any input scan (or a crop of one)",
        )
    })?;
    ctx.charge(target.num_voxels(), "show")?;
    let data = if let Some(v) = x.read_lock::<VolumeHandle>() {
        if v.0.geometry().same_grid(&target, 1e-3) {
            OutputData::Image(v.0.clone())
        } else {
            ctx.reserve(image_bytes(target.num_voxels()), "show")?;
            let placed = place_on_grid(&v.0, &target, 0.0f32);
            let placed =
                placed.ok_or_else(|| refuse(StepErrorKind::Library, "show: grid mismatch"))?;
            OutputData::Image(
                ctx.track_image(placed.map_err(|e| super::voxel_error("show", e))?)
                    .0,
            )
        }
    } else if let Some(m) = x.read_lock::<MaskHandle>() {
        ctx.state().shown_masks.push(Arc::downgrade(&m.0));
        if m.0.geometry().same_grid(&target, 1e-3) {
            OutputData::Mask(m.0.clone())
        } else {
            ctx.reserve(mask_bytes(target.num_voxels()), "show")?;
            let placed = place_on_grid(&m.0, &target, false);
            let placed =
                placed.ok_or_else(|| refuse(StepErrorKind::Library, "show: grid mismatch"))?;
            OutputData::Mask(
                ctx.track_mask(placed.map_err(|e| super::voxel_error("show", e))?)
                    .0,
            )
        }
    } else {
        return Err(refuse(StepErrorKind::Call, "show takes a Volume or a Mask"));
    };
    let out = OutputVolume {
        name: name.to_string(),
        grid_of,
        data,
    };
    let mut st = ctx.state();
    match st.outputs.iter_mut().find(|o| o.name == name) {
        Some(existing) => *existing = out,
        None => st.outputs.push(out),
    }
    Ok(())
}

/// The input scan an output on `geometry` belongs to, with that scan's grid: the first input
/// whose grid it is, else the first it is a crop of. Outputs are written on their input's grid.
pub(crate) fn input_grid_of(ctx: &Context, geometry: &Geometry) -> Option<(String, Geometry)> {
    ctx.inputs
        .iter()
        .find(|(_, img)| img.geometry().same_grid(geometry, 1e-3))
        .or_else(|| {
            ctx.inputs
                .iter()
                .find(|(_, img)| is_subgrid(img.geometry(), geometry))
        })
        .map(|(n, img)| (n.clone(), img.geometry().clone()))
}

/// `mask` on the grid of its input scan ([`input_grid_of`]), or `None` when it is on no input's
/// grid. For the host (evidence), not a program: no step budget is charged.
pub(crate) fn mask_on_input_grid(ctx: &Context, mask: &Arc<Mask>) -> Option<(String, Arc<Mask>)> {
    let (grid_of, target) = input_grid_of(ctx, mask.geometry())?;
    if mask.geometry().same_grid(&target, 1e-3) {
        return Some((grid_of, mask.clone()));
    }
    let placed = place_on_grid(mask, &target, false)?.ok()?;
    Some((grid_of, Arc::new(placed)))
}
