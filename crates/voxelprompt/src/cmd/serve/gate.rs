//! One model call at a time: a single-permit semaphore in front of `spawn_blocking`, with a
//! bounded number of callers allowed to wait; beyond that, callers are told the server is busy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Why a gated call did not return a value.
#[derive(Debug)]
pub enum GateError {
    /// The running call and the queue are full.
    Busy {
        /// Calls admitted (running or waiting) when this one was refused.
        admitted: usize,
    },
    /// The call panicked or was cancelled.
    Failed(String),
}

/// The gate: `1 + queue` callers admitted, one running.
pub struct Gate {
    permit: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

/// Counts an admitted caller until dropped (in the blocking task once it starts, so a client
/// that goes away does not free the slot of a call that is still running).
struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// A gate that lets `queue` callers wait behind the running one.
    pub fn new(queue: usize) -> Gate {
        Gate {
            permit: Arc::new(Semaphore::new(1)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: queue + 1,
        }
    }

    /// Calls admitted now (running or waiting).
    pub fn load(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }

    /// Runs `f` on a blocking thread when no other gated call runs, or refuses at once when
    /// the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateError> {
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket(self.admitted.clone());
        if before >= self.capacity {
            return Err(GateError::Busy { admitted: before });
        }
        let permit = self
            .permit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| GateError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _ticket = ticket;
            f()
        })
        .await
        .map_err(|e| {
            let why = if e.is_panic() {
                let p = e.into_panic();
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into())
            } else {
                "cancelled".into()
            };
            GateError::Failed(format!("the model call failed: {why}"))
        })
    }
}
