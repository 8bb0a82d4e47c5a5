//! One module per subcommand.

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

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `--quiet`: progress and informational lines on stderr are left out (results on
/// stdout and errors are not).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns progress output off for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
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
