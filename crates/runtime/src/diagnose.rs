//! Turning interpreter errors into [`StepError`]s the agent can act on: the right
//! [`StepErrorKind`], a message that names the limit or the expected signature, and the
//! position in the code as written (before `<mod>` rewriting).

use crate::context::Refusal;
use crate::error::{StepError, StepErrorKind};
use crate::feedback::format_value;
use crate::library::usage_of;
use crate::phi_binding::Rewritten;
use crate::sandbox::{Halt, Limits};
use rhai::{EvalAltResult, LexError, ParseErrorType, Position};

/// What an interpreter error means for the step: `None` when it is the normal end by `stop()`.
pub(crate) fn step_error(
    err: &EvalAltResult,
    limits: &Limits,
    code: &Rewritten,
) -> Option<StepError> {
    let (kind, message, pos) = classify(err, limits)?;
    let mut e = StepError::new(kind, message);
    if let Some(refusal) = library_refusal(err) {
        e.empty_mask_in = refusal.empty_mask_in;
        e.undefined_in = refusal.undefined_in;
    }
    if let (Some(line), Some(col)) = (pos.line(), pos.position()) {
        e.line = Some(line);
        e.column = Some(code.original_column(line, col));
    } else if let Some(line) = pos.line() {
        e.line = Some(line);
    }
    Some(e)
}

/// The library refusal `err` is or wraps (also from inside a script function), if it is one.
fn library_refusal(err: &EvalAltResult) -> Option<Refusal> {
    match err {
        EvalAltResult::ErrorRuntime(d, _) => d.clone().try_cast::<Refusal>(),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => library_refusal(inner),
        _ => None,
    }
}

/// A parse error as a step error.
pub(crate) fn parse_error(err: &rhai::ParseError, code: &Rewritten) -> StepError {
    let ParseErrorType::BadInput(lex) = err.err_type() else {
        let kind = match err.err_type() {
            ParseErrorType::ExprTooDeep | ParseErrorType::TooManyFunctions => StepErrorKind::Limit,
            _ => StepErrorKind::Syntax,
        };
        return positioned(kind, parse_message(err.err_type()), err.position(), code);
    };
    let message = match lex {
        LexError::ImproperSymbol(s, _) if s == "eval" => {
            "`eval` is not available in the sandbox; write the code directly".to_string()
        }
        other => other.to_string(),
    };
    positioned(StepErrorKind::Syntax, message, err.position(), code)
}

fn positioned(kind: StepErrorKind, message: String, pos: Position, code: &Rewritten) -> StepError {
    let mut e = StepError::new(kind, message);
    e.line = pos.line();
    e.column = match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => Some(code.original_column(l, c)),
        _ => None,
    };
    e
}

fn parse_message(t: &ParseErrorType) -> String {
    match t {
        ParseErrorType::Reserved(s) if s == "import" || s == "export" => {
            format!("`{s}` is not available: programs cannot load modules or files")
        }
        ParseErrorType::Reserved(s) if s == "eval" => {
            "`eval` is not available in the sandbox; write the code directly".into()
        }
        ParseErrorType::VariableUndefined(v) => {
            format!("unknown variable `{v}`; define it with `let {v} = ...` first")
        }
        ParseErrorType::ExprTooDeep => "expressions or blocks are nested too deeply".into(),
        ParseErrorType::TooManyFunctions => "too many script functions defined".into(),
        other => other.to_string(),
    }
}

fn classify(err: &EvalAltResult, limits: &Limits) -> Option<(StepErrorKind, String, Position)> {
    use StepErrorKind as K;
    let pos = err.position();
    Some(match err {
        EvalAltResult::ErrorTerminated(d, _) => match d.clone().try_cast::<Halt>() {
            Some(Halt::Stop) => return None,
            Some(Halt::Deadline) => (
                K::Limit,
                format!(
                    "the step ran longer than its time limit of {} ms; avoid long loops",
                    limits.step_deadline_ms
                ),
                pos,
            ),
            Some(Halt::Limit(m)) => (K::Limit, m, pos),
            None => (K::Limit, "the step was terminated".into(), pos),
        },
        EvalAltResult::ErrorRuntime(d, _) => match d.clone().try_cast::<Refusal>() {
            Some(r) => (r.kind, r.message, pos),
            None => (
                K::Script,
                format!("the program threw {}", format_value(d)),
                pos,
            ),
        },
        EvalAltResult::ErrorInFunctionCall(name, _, inner, outer) => {
            let (kind, message, p) = classify(inner, limits)?;
            let p = if p.is_none() { *outer } else { p };
            (kind, format!("in function `{name}`: {message}"), p)
        }
        EvalAltResult::ErrorTooManyOperations(_) => (
            K::Limit,
            format!(
                "the step ran more than {} operations; avoid long or endless loops",
                limits.max_operations
            ),
            pos,
        ),
        EvalAltResult::ErrorStackOverflow(_) => (
            K::Limit,
            format!(
                "function calls are nested deeper than {} levels",
                limits.max_call_levels
            ),
            pos,
        ),
        EvalAltResult::ErrorTooManyVariables(_) => (
            K::Limit,
            format!("more than {} variables at once", limits.max_variables),
            pos,
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => (
            K::Limit,
            format!(
                "{what} is over the limit (strings {} bytes, arrays {} elements, maps {} entries)",
                limits.max_string_bytes, limits.max_array_len, limits.max_map_len
            ),
            pos,
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split([' ', '(']).next().unwrap_or(sig);
            let sig = crate::values::plain_signature(sig);
            let message = match usage_of(name) {
                Some(usage) => format!("no function {sig}; expected {usage}"),
                None => format!("no function {sig} in the sandbox library"),
            };
            (K::Call, message, pos)
        }
        EvalAltResult::ErrorMismatchDataType(want, got, _) => {
            let (want, got) = (
                crate::values::plain_signature(want),
                crate::values::plain_signature(got),
            );
            (
                K::Call,
                format!("expected a value of type {want}, got {got}"),
                pos,
            )
        }
        EvalAltResult::ErrorParsing(p, _) => (K::Syntax, parse_message(p), pos),
        other => {
            // Rhai appends " (line L, position C)"; positions are reported separately.
            let text = other.to_string();
            let suffix = format!(" ({pos})");
            let text = text
                .strip_suffix(&suffix)
                .map(str::to_string)
                .unwrap_or(text);
            (K::Script, text, pos)
        }
    })
}
