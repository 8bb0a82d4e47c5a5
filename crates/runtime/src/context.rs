//! What library functions may touch while a step runs: the limits and deadline, the vision
//! backend, the input scans, the ϕ vectors bound for this step, and the step's and session's
//! outputs (feedback, response, named volumes, log). Shared between the engine's native
//! functions and the [`crate::Session`] that owns them.

use crate::error::StepErrorKind;
use crate::feedback::FeedbackItem;
use crate::sandbox::{Clock, Halt, Limits};
use crate::values::{MaskHandle, Phi, VolumeHandle};
use crate::vision::VisionBackend;
use rhai::{Dynamic, EvalAltResult, Position};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use voxel::{Image, Mask};

/// Result of a library function as Rhai wants it.
pub(crate) type CallResult<T> = Result<T, Box<EvalAltResult>>;

/// A library function's refusal of its arguments, carried in a (catchable) Rhai runtime error
/// so that programs may `try`/`catch` an empty mask, and so that the session can recover the
/// error kind.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    pub kind: StepErrorKind,
    pub message: String,
    /// The library function that refused a mask with no voxel, when that is the refusal.
    pub empty_mask_in: Option<String>,
    /// The library function whose result is undefined for the values it was given (a zero
    /// denominator), when that is the refusal.
    pub undefined_in: Option<String>,
}

/// A catchable refusal of kind `kind`.
pub(crate) fn refuse(kind: StepErrorKind, message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(Refusal {
            kind,
            message: message.into(),
            empty_mask_in: None,
            undefined_in: None,
        }),
        Position::NONE,
    ))
}

/// A catchable library refusal by `function` of a mask with no voxel (what it would measure
/// is undefined).
pub(crate) fn refuse_empty_mask(function: &str, message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(Refusal {
            kind: StepErrorKind::Library,
            message: message.into(),
            empty_mask_in: Some(function.to_string()),
            undefined_in: None,
        }),
        Position::NONE,
    ))
}

/// A catchable library refusal by `function` of values for which its result is undefined
/// (`ratio(a, 0)`): like an empty mask, a dead end that writing the step again cannot mend.
pub(crate) fn refuse_undefined(function: &str, message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(Refusal {
            kind: StepErrorKind::Library,
            message: message.into(),
            empty_mask_in: None,
            undefined_in: Some(function.to_string()),
        }),
        Position::NONE,
    ))
}

/// An uncatchable refusal: a resource limit. `try`/`catch` cannot swallow it, so a loop cannot
/// retry its way around the limit.
pub(crate) fn halt_limit(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(Halt::Limit(message.into())),
        Position::NONE,
    ))
}

/// A named output volume, already placed on the grid of the input scan it came from.
#[derive(Clone, Debug)]
pub struct OutputVolume {
    /// The name given to `show` (letters, digits, `_`, `-`, `.`), used as the file stem.
    pub name: String,
    /// The input scan whose grid the volume is on.
    pub grid_of: String,
    /// The voxels.
    pub data: OutputData,
}

/// The voxels of an output volume.
#[derive(Clone, Debug)]
pub enum OutputData {
    /// An intensity image.
    Image(Arc<Image>),
    /// A binary mask.
    Mask(Arc<Mask>),
}

/// A volume made by a library call, tracked weakly so it stops counting once the program drops
/// it.
enum Live {
    Image(Weak<Image>),
    Mask(Weak<Mask>),
}

impl Live {
    fn alive(&self) -> bool {
        match self {
            Live::Image(w) => w.strong_count() > 0,
            Live::Mask(w) => w.strong_count() > 0,
        }
    }
}

/// Mutable state of the running session.
#[derive(Default)]
pub(crate) struct State {
    /// ϕ vectors bound to this step's `<mod>` markers, in order.
    pub phi: Vec<Phi>,
    /// This step's `read` results.
    pub feedback: Vec<FeedbackItem>,
    /// Bytes of text feedback so far this step.
    pub feedback_bytes: usize,
    /// `read` calls so far this step.
    pub reads: usize,
    /// The response text so far (whole session).
    pub response: String,
    /// Named output volumes (whole session), latest `show` of a name wins.
    pub outputs: Vec<OutputVolume>,
    /// The masks given to `show` this turn, as the program held them (before placement on an
    /// input grid): they are not evidence ([`crate::Session::end_turn`]). A weak reference keeps
    /// the allocation, so a later mask cannot reuse the address and pass for a shown one.
    pub shown_masks: Vec<Weak<Mask>>,
    /// Set by `stop()`.
    pub stopped: bool,
    /// `print`/`debug` text this step.
    pub log: String,
    /// Voxels visited by library calls this step.
    pub work: u64,
    /// Vision backend calls this step.
    pub vision_calls: usize,
    /// Volumes made by library calls with their sizes; `live_bytes` is the sum over entries,
    /// some of which may have died since the last prune.
    live: Vec<(Live, usize)>,
    live_bytes: usize,
    /// Length of `live` after the last prune; pruning again once it doubles keeps tracking
    /// amortised O(1) per call.
    live_len_after_prune: usize,
}

impl State {
    fn prune_live(&mut self) {
        self.live.retain(|(l, _)| l.alive());
        self.live_bytes = self.live.iter().map(|(_, b)| *b).sum();
        self.live_len_after_prune = self.live.len();
    }

    fn push_live(&mut self, live: Live, bytes: usize) {
        self.live.push((live, bytes));
        self.live_bytes = self.live_bytes.saturating_add(bytes);
        if self.live.len() > 2 * self.live_len_after_prune.max(16) {
            self.prune_live();
        }
    }
}

/// Shared by every native function of one session.
pub(crate) struct Context {
    pub limits: Limits,
    /// The effective live-memory budget (see [`Limits::max_live_bytes`]).
    pub live_budget: usize,
    /// The effective per-step voxel-work budget (see [`Limits::max_voxel_work`]).
    pub work_budget: u64,
    pub clock: Arc<Clock>,
    pub backend: Arc<dyn VisionBackend>,
    /// The input scans by variable name, in order.
    pub inputs: Vec<(String, Arc<Image>)>,
    state: Mutex<State>,
}

impl Context {
    pub(crate) fn new(
        limits: Limits,
        clock: Arc<Clock>,
        backend: Arc<dyn VisionBackend>,
        inputs: Vec<(String, Arc<Image>)>,
    ) -> Context {
        let input_bytes: usize = inputs
            .iter()
            .map(|(_, i)| std::mem::size_of_val(i.data()))
            .sum();
        let live_budget = limits
            .max_live_bytes
            .max(input_bytes.saturating_mul(limits.live_bytes_per_input_byte));
        let largest = inputs
            .iter()
            .map(|(_, i)| i.data().len() as u64)
            .max()
            .unwrap_or(0);
        let work_budget = limits
            .max_voxel_work
            .max(largest.saturating_mul(limits.voxel_work_per_input_voxel));
        Context {
            limits,
            live_budget,
            work_budget,
            clock,
            backend,
            inputs,
            state: Mutex::new(State::default()),
        }
    }

    /// The state. A panic inside a library call would poison the lock; the state itself stays
    /// consistent (every update is a single assignment or push), so the poison is ignored.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every library function starts here: the deadline is only checked between interpreter
    /// operations, so a loop of expensive calls must also be stopped at call entry.
    pub(crate) fn check_deadline(&self) -> CallResult<()> {
        if self.clock.expired() {
            Err(Box::new(EvalAltResult::ErrorTerminated(
                Dynamic::from(Halt::Deadline),
                Position::NONE,
            )))
        } else {
            Ok(())
        }
    }

    /// Counts `voxels` visits by library function `what` against the step's work budget.
    pub(crate) fn charge(&self, voxels: usize, what: &str) -> CallResult<()> {
        let mut st = self.state();
        st.work = st.work.saturating_add(voxels as u64);
        if st.work > self.work_budget {
            return Err(halt_limit(format!(
                "{what}: this step has processed more than {} million voxels in library calls; do less per step (fewer calls in loops)",
                self.work_budget / 1_000_000
            )));
        }
        Ok(())
    }

    /// Counts one call into the vision backend by `what` against the step's limit.
    pub(crate) fn count_vision_call(&self, what: &str) -> CallResult<()> {
        let mut st = self.state();
        st.vision_calls += 1;
        if st.vision_calls > self.limits.max_vision_calls_per_step {
            return Err(halt_limit(format!(
                "{what}: more than {} vision calls in one step",
                self.limits.max_vision_calls_per_step
            )));
        }
        Ok(())
    }

    /// Fails unless `bytes` more can be allocated within the live-memory budget. Called
    /// before computing a new volume, so the refusal comes before the allocation.
    pub(crate) fn reserve(&self, bytes: usize, what: &str) -> CallResult<()> {
        let mut st = self.state();
        if st.live_bytes.saturating_add(bytes) > self.live_budget {
            st.prune_live();
        }
        let live = st.live_bytes;
        if live.saturating_add(bytes) > self.live_budget {
            return Err(halt_limit(format!(
                "{what} would need {} MiB but volumes made by this program already hold {} MiB of the {} MiB allowed; drop volumes you no longer need",
                bytes.div_ceil(1 << 20),
                live.div_ceil(1 << 20),
                self.live_budget >> 20
            )));
        }
        Ok(())
    }

    /// Wraps a new image as a handle and starts counting its memory.
    pub(crate) fn track_image(&self, image: Image) -> VolumeHandle {
        let bytes = std::mem::size_of_val(image.data());
        let arc = Arc::new(image);
        self.state()
            .push_live(Live::Image(Arc::downgrade(&arc)), bytes);
        VolumeHandle(arc)
    }

    /// Wraps a new mask as a handle and starts counting its memory.
    pub(crate) fn track_mask(&self, mask: Mask) -> MaskHandle {
        let bytes = std::mem::size_of_val(mask.data());
        let arc = Arc::new(mask);
        self.state()
            .push_live(Live::Mask(Arc::downgrade(&arc)), bytes);
        MaskHandle(arc)
    }
}
