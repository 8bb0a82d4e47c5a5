//! Wall-time per operation class, for finding where the network spends its time.
//!
//! Off by default (one relaxed atomic load per instrumented call). The CPU backend runs every
//! operation eagerly, so the time around a call is the time of its work. Backward passes run
//! inside burn's autodiff engine; only our own convolution backward is timed there
//! (`conv backward`), the rest shows up as the difference to the total.
//!
//! ```
//! vision::profile::enable(true);
//! // … run the network …
//! for (class, seconds, calls) in vision::profile::take() {
//!     println!("{class:20} {seconds:8.3} s  {calls} calls");
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TOTALS: Mutex<BTreeMap<&'static str, (f64, u64)>> = Mutex::new(BTreeMap::new());

/// Turns timing on or off for the whole process.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Returns the accumulated (class, seconds, calls), largest first, and resets them.
pub fn take() -> Vec<(&'static str, f64, u64)> {
    let mut totals = TOTALS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut out: Vec<_> = totals.iter().map(|(k, (s, n))| (*k, *s, *n)).collect();
    totals.clear();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Runs `f`, adding its wall time to `class` when profiling is on.
pub(crate) fn time<T>(class: &'static str, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let seconds = start.elapsed().as_secs_f64();
    let mut totals = TOTALS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let entry = totals.entry(class).or_insert((0.0, 0));
    entry.0 += seconds;
    entry.1 += 1;
    out
}
