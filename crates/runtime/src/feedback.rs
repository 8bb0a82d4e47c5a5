//! What a step's `read(...)` calls hand back to the agent, and the one number format used for
//! every number the agent or the user sees.
//!
//! # Number format
//!
//! The agent learns from this text, so it must not vary. The rules, applied by
//! [`format_number`] to every real number (and by `read`, `respond`, `fmt`, string
//! concatenation and `${...}` interpolation):
//!
//! | value | text | example |
//! |---|---|---|
//! | 0 (either sign) | `0.000` | `0.000` |
//! | 0.001 ≤ \|x\| < 10¹⁵ | fixed, 3 decimals, no grouping | `4.189`, `-12.500`, `1234.567` |
//! | 0 < \|x\| < 0.001 or \|x\| ≥ 10¹⁵ | scientific, 3 significant digits | `4.19e-4`, `1.00e15` |
//! | not a number | `nan` | |
//! | ±infinity | `inf`, `-inf` | |
//!
//! Integers print as integers (`42`), booleans as `true`/`false`, strings as themselves at
//! the top level and double-quoted inside arrays and maps. Arrays print as `[a, b, c]`, maps as
//! `{key: value, ...}` in key order, volumes and masks as one-line descriptions (see
//! [`crate::values`]).

use crate::values::{EncodingHandle, MaskHandle, PhiValue, VolumeHandle};
use rhai::Dynamic;

pub use protocol::FeedbackItem;

/// The feedback of a whole step as text: items joined by newlines.
pub fn feedback_text(items: &[FeedbackItem]) -> String {
    items
        .iter()
        .map(FeedbackItem::as_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Formats a real number by the documented rule (see the module docs).
///
/// ```
/// use runtime::feedback::format_number;
/// assert_eq!(format_number(4.18879), "4.189");
/// assert_eq!(format_number(-0.0), "0.000");
/// assert_eq!(format_number(0.000_418_9), "4.19e-4");
/// assert_eq!(format_number(f64::NAN), "nan");
/// ```
pub fn format_number(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return "0.000".into();
    }
    let a = x.abs();
    if (1e-3..1e15).contains(&a) {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

/// Formats any script value as feedback text (see the module docs).
pub fn format_value(value: &Dynamic) -> String {
    let mut out = String::new();
    write_value(&mut out, value, true, usize::MAX);
    out
}

/// [`format_value`], or `None` as soon as the text would exceed `max_bytes` (so a huge nested
/// value is never formatted in full).
pub fn format_value_within(value: &Dynamic, max_bytes: usize) -> Option<String> {
    let mut out = String::new();
    write_value(&mut out, value, true, max_bytes);
    (out.len() <= max_bytes).then_some(out)
}

fn write_value(out: &mut String, value: &Dynamic, top: bool, max_bytes: usize) {
    if out.len() > max_bytes {
        return;
    }
    if let Ok(f) = value.as_float() {
        out.push_str(&format_number(f));
    } else if let Ok(i) = value.as_int() {
        out.push_str(&i.to_string());
    } else if let Ok(b) = value.as_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if value.is_string() {
        let s = value.clone().into_string().unwrap_or_default();
        if top {
            out.push_str(&s);
        } else {
            out.push_str(&format!("{s:?}"));
        }
    } else if let Ok(c) = value.as_char() {
        out.push(c);
    } else if value.is_unit() {
        out.push_str("()");
    } else if value.is_array() {
        if let Some(arr) = value.read_lock::<rhai::Array>() {
            out.push('[');
            for (n, v) in arr.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_value(out, v, false, max_bytes);
            }
            out.push(']');
        }
    } else if value.is_map() {
        if let Some(map) = value.read_lock::<rhai::Map>() {
            out.push('{');
            for (n, (k, v)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                write_value(out, v, false, max_bytes);
            }
            out.push('}');
        }
    } else if let Some(v) = value.read_lock::<VolumeHandle>() {
        out.push_str(&v.describe());
    } else if let Some(m) = value.read_lock::<MaskHandle>() {
        out.push_str(&m.describe());
    } else if let Some(e) = value.read_lock::<EncodingHandle>() {
        out.push_str(&e.describe());
    } else if let Some(r) = value.read_lock::<crate::context::Refusal>() {
        out.push_str(&format!("error ({}): {}", r.kind.label(), r.message));
    } else if value.is::<PhiValue>() {
        out.push_str("Phi");
    } else {
        out.push_str(crate::values::type_label(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_format_follows_the_documented_table() {
        let cases = [
            (0.0, "0.000"),
            (-0.0, "0.000"),
            (1.0, "1.000"),
            (4.18879, "4.189"),
            (-12.5, "-12.500"),
            (1234.5674, "1234.567"),
            (0.001, "0.001"),
            (0.000_999_6, "1.00e-3"),
            (0.000_418_9, "4.19e-4"),
            (-0.000_418_9, "-4.19e-4"),
            (1e15, "1.00e15"),
            (999_999_999_999.5, "999999999999.500"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(format_number(x), want, "formatting {x:e}");
        }
    }

    #[test]
    fn values_format_recursively() {
        let arr: rhai::Array = vec![
            Dynamic::from_float(1.5),
            Dynamic::from_int(2),
            Dynamic::from("a"),
        ];
        let mut map = rhai::Map::new();
        map.insert("b".into(), Dynamic::from_array(arr.clone()));
        map.insert("a".into(), Dynamic::from_bool(true));
        assert_eq!(format_value(&Dynamic::from_array(arr)), "[1.500, 2, \"a\"]");
        assert_eq!(
            format_value(&Dynamic::from_map(map)),
            "{a: true, b: [1.500, 2, \"a\"]}"
        );
        assert_eq!(format_value(&Dynamic::from("plain")), "plain");
    }
}
