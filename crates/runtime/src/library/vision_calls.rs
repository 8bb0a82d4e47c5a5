//! `encode` and `generate`: the program's way to the vision network, with their `<mod>`
//! arguments checked. After the rewrite in [`crate::phi_binding`], `encode(a <mod>, b <mod>)`
//! arrives as `encode(a, ϕ0, b, ϕ1)` and `generate(e <mod>)` as `generate(e, ϕ2)`.

use super::{mask_bytes, usage_of};
use crate::context::{halt_limit, refuse, CallResult, Context};
use crate::error::StepErrorKind;
use crate::phi_binding::PHI_FN;
use crate::sandbox::MAX_STREAMS;
use crate::values::{EncodingHandle, PhiValue, VolumeHandle};
use rhai::{Array, Dynamic, Engine, ImmutableString, NativeCallContext};
use std::any::TypeId;
use std::sync::Arc;
use std::time::Instant;
use voxel::Image;

/// Probabilities at or above this are inside the generated mask.
pub const MASK_THRESHOLD: f32 = 0.5;

pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    let c = ctx.clone();
    engine.register_fn(PHI_FN, move |n: i64| -> CallResult<PhiValue> {
        let st = c.state();
        usize::try_from(n)
            .ok()
            .and_then(|i| st.phi.get(i))
            .map(|p| PhiValue(Arc::new(*p)))
            .ok_or_else(|| {
                refuse(
                    StepErrorKind::Mod,
                    format!("no ϕ vector number {n} in this step"),
                )
            })
    });

    // `encode` takes any mix of volumes and ϕ, checked in `encode`, so one raw function per
    // arity up to a volume and a ϕ for each of the most streams.
    for arity in 0..=2 * MAX_STREAMS {
        let c = ctx.clone();
        engine.register_raw_fn(
            "encode",
            vec![TypeId::of::<Dynamic>(); arity],
            move |_: NativeCallContext, args: &mut [&mut Dynamic]| {
                let args: Vec<Dynamic> = args.iter().map(|a| (**a).clone()).collect();
                encode(&c, &args)
            },
        );
    }
    for arity in 0..=4 {
        let c = ctx.clone();
        engine.register_raw_fn(
            "generate",
            vec![TypeId::of::<Dynamic>(); arity],
            move |_: NativeCallContext, args: &mut [&mut Dynamic]| {
                let args: Vec<Dynamic> = args.iter().map(|a| (**a).clone()).collect();
                generate(&c, &args)
            },
        );
    }
}

fn mod_error(message: String) -> Box<rhai::EvalAltResult> {
    refuse(StepErrorKind::Mod, message)
}

fn encode(ctx: &Context, args: &[Dynamic]) -> CallResult<EncodingHandle> {
    ctx.check_deadline()?;
    let usage = usage_of("encode").unwrap_or_default();
    let mut volumes: Vec<Arc<Image>> = Vec::new();
    let mut phi: Vec<Option<[f32; crate::values::PHI_DIM]>> = Vec::new();
    for (n, a) in args.iter().enumerate() {
        if let Some(v) = a.read_lock::<VolumeHandle>() {
            volumes.push(v.0.clone());
            phi.push(None);
        } else if let Some(p) = a.read_lock::<PhiValue>() {
            match phi.last_mut() {
                Some(slot @ None) => *slot = Some(*p.0),
                _ => {
                    return Err(mod_error(format!(
                        "encode: argument {} is a <mod> that does not follow a volume; write one <mod> after each volume: {usage}",
                        n + 1
                    )))
                }
            }
        } else {
            return Err(refuse(
                StepErrorKind::Call,
                format!(
                    "encode: argument {} is a {}, but encode takes volumes: {usage}",
                    n + 1,
                    crate::values::type_label(a)
                ),
            ));
        }
    }
    if volumes.is_empty() {
        return Err(refuse(
            StepErrorKind::Call,
            format!("encode needs at least one volume: {usage}"),
        ));
    }
    if volumes.len() > ctx.limits.max_streams {
        return Err(halt_limit(format!(
            "encode: {} volumes, but at most {} streams are allowed",
            volumes.len(),
            ctx.limits.max_streams
        )));
    }
    let given = phi.iter().filter(|p| p.is_some()).count();
    let phi: Vec<[f32; crate::values::PHI_DIM]> = phi.into_iter().flatten().collect();
    if given != 0 && given != volumes.len() {
        return Err(mod_error(format!(
            "encode: {} volumes but {given} <mod>; write one <mod> after each volume",
            volumes.len()
        )));
    }
    if given == 0 && ctx.backend.requires_phi() {
        return Err(mod_error(format!(
            "encode: no <mod> after the volume arguments; the {} vision network needs one <mod> after each volume",
            ctx.backend.name()
        )));
    }
    ctx.count_vision_call("encode")?;
    ctx.charge(volumes.iter().map(|v| v.data().len()).sum(), "encode")?;
    let started = Instant::now();
    let result = ctx.backend.encode(&volumes, &phi);
    ctx.clock.extend(started.elapsed());
    result.map_err(|e| refuse(StepErrorKind::Vision, format!("encode: {e}")))
}

fn generate(ctx: &Context, args: &[Dynamic]) -> CallResult<Dynamic> {
    ctx.check_deadline()?;
    let usage = usage_of("generate").unwrap_or_default();
    let Some(enc) = args
        .first()
        .and_then(|a| a.read_lock::<EncodingHandle>().map(|e| e.clone()))
    else {
        let what = args
            .first()
            .map(|a| crate::values::type_label(a))
            .unwrap_or("nothing");
        return Err(refuse(
            StepErrorKind::Call,
            format!("generate: the first argument is {what}, but generate takes an Encoding from encode(...): {usage}"),
        ));
    };
    ctx.count_vision_call("generate")?;
    ctx.charge(
        2 * enc.streams().iter().map(|v| v.data().len()).sum::<usize>(),
        "generate",
    )?;
    let started = Instant::now();
    let result = match &args[1..] {
        [p] if p.is::<PhiValue>() => {
            let phi = p.read_lock::<PhiValue>().map(|p| *p.0).unwrap_or([0.0; crate::values::PHI_DIM]);
            ctx.backend.generate(&enc, &phi)
        }
        [s] if s.is_string() => {
            let name: ImmutableString = s.clone().into_immutable_string().unwrap_or_default();
            ctx.backend.generate_named(&enc, &name)
        }
        [] => {
            return Err(mod_error(format!(
                "generate: no <mod> after the encoding; write generate(enc <mod>), or name the structure in hand-written programs: {usage}"
            )))
        }
        more if more.iter().all(|a| a.is::<PhiValue>()) => {
            return Err(mod_error(format!(
                "generate: {} <mod> after the encoding, but generate takes exactly one",
                more.len()
            )))
        }
        other => {
            let types: Vec<&str> = other.iter().map(|a| crate::values::type_label(a)).collect();
            return Err(refuse(
                StepErrorKind::Call,
                format!("generate: unexpected arguments after the encoding ({}): {usage}", types.join(", ")),
            ));
        }
    };
    ctx.clock.extend(started.elapsed());
    let probs = result.map_err(|e| refuse(StepErrorKind::Vision, format!("generate: {e}")))?;
    if probs.len() != enc.num_streams() {
        return Err(refuse(
            StepErrorKind::Vision,
            format!(
                "generate: the backend returned {} maps for {} streams",
                probs.len(),
                enc.num_streams()
            ),
        ));
    }
    let mut masks = Array::new();
    for (p, s) in probs.iter().zip(enc.streams()) {
        if !p.geometry().same_grid(s.geometry(), 1e-3) {
            return Err(refuse(
                StepErrorKind::Vision,
                "generate: the backend returned a map that is not on its stream's grid",
            ));
        }
        ctx.reserve(mask_bytes(p.data().len()), "generate")?;
        masks.push(Dynamic::from(
            ctx.track_mask(p.map(|v| v >= MASK_THRESHOLD)),
        ));
    }
    Ok(if masks.len() == 1 {
        masks.pop().unwrap_or_default()
    } else {
        Dynamic::from_array(masks)
    })
}
