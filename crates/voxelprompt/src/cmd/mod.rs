//! One module per subcommand.

pub mod args;
pub mod average;
pub mod baseline;
pub mod batch;
pub mod chat;
pub mod demo;
pub mod eval;
pub mod example;
pub mod exec;
pub mod exit;
pub mod info;
pub mod measure;
pub mod render;
pub mod run;
pub mod scan_input;
pub mod serve;
pub mod ship;
pub mod synth;
pub mod tasks;
pub mod train;

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `--quiet`: progress and informational lines on stderr are left out (results on
/// stdout and errors are not).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Set by `--json`: stdout holds only machine-readable output (one JSON document, or JSON
/// Lines for `chat`); every line meant for a person goes to stderr.
static JSON: AtomicBool = AtomicBool::new(false);

/// Turns progress output off for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Switches stdout to JSON for the rest of the process.
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether `--json` was given.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Prints `value` as pretty JSON on stdout (the one document a `--json` command prints).
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a progress or informational line on stderr unless `--quiet`.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::cmd::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use note;

/// Prints a result line for a person: on stdout, or under `--json` (where stdout is for the
/// JSON alone) on stderr like a [`note!`], so `--quiet` drops it.
macro_rules! say {
    ($($arg:tt)*) => {
        if $crate::cmd::json() {
            $crate::cmd::note!($($arg)*);
        } else {
            println!($($arg)*);
        }
    };
}
pub(crate) use say;
