//! Helpers for longitudinal and left-right questions, on plain numbers (usually volumes in mL):
//! `change(before, after)`, `percent_change(before, after)`, `ratio(a, b)` and
//! `asymmetry(left, right)`. They exist so that programs say what they compute, and so that
//! the division-by-zero and sign conventions are fixed in one place.

use super::number_arg;
use crate::context::{refuse, refuse_undefined, CallResult, Context};
use crate::error::StepErrorKind;
use rhai::{Dynamic, Engine};
use std::sync::Arc;

/// `after - before`.
pub fn change(before: f64, after: f64) -> f64 {
    after - before
}

/// `100 · (after - before) / |before|`; `None` when `before` is 0.
pub fn percent_change(before: f64, after: f64) -> Option<f64> {
    (before != 0.0).then(|| 100.0 * (after - before) / before.abs())
}

/// `a / b`; `None` when `b` is 0.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// Asymmetry index in percent, `100 · (left - right) / ((left + right) / 2)` (voxel's
/// [`voxel::measure::asymmetry_index`] × 100): positive when the left is larger, 0 for perfect
/// symmetry, ±200 when one side is empty. `None` when it is undefined (left + right = 0).
pub fn asymmetry(left: f64, right: f64) -> Option<f64> {
    voxel::measure::asymmetry_index(left, right)
        .ok()
        .map(|a| 100.0 * a)
}

type Binary = fn(f64, f64) -> Option<f64>;

pub(crate) fn register(engine: &mut Engine, ctx: &Arc<Context>) {
    let fns: [(&'static str, Binary, &'static str); 4] = [
        ("change", |a, b| Some(change(a, b)), ""),
        (
            "percent_change",
            percent_change,
            "the first value (before) is 0, so a percentage change is undefined",
        ),
        (
            "ratio",
            ratio,
            "the second value is 0, so the ratio is undefined",
        ),
        (
            "asymmetry",
            asymmetry,
            "both values are 0, so the asymmetry is undefined",
        ),
    ];
    for (name, f, undefined) in fns {
        let c = ctx.clone();
        engine.register_fn(name, move |a: Dynamic, b: Dynamic| -> CallResult<f64> {
            c.check_deadline()?;
            let a = number_arg(name, "the first value", &a)?;
            let b = number_arg(name, "the second value", &b)?;
            match f(a, b) {
                Some(v) if v.is_finite() => Ok(v),
                Some(_) => Err(refuse(
                    StepErrorKind::Library,
                    format!("{name}: the result is not a finite number"),
                )),
                None => Err(refuse_undefined(name, format!("{name}: {undefined}"))),
            }
        });
    }
}
