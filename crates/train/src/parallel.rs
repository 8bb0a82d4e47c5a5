//! Independent jobs on worker threads, results in job order.
//!
//! The evaluation answers one sample at a time on about one core (the agent decodes token by
//! token, and the vision network's forward kernels on a 64³ grid are too small to spread):
//! measured on 34 samples, one at a time 111 s with one rayon thread and 114 s with two, but
//! 64 s with two samples side by side. So it runs whole samples side by side.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::error::Result;

/// Worker threads for sample-level parallelism: the size of the global rayon pool, so the one
/// `voxelprompt --threads N` (or `RAYON_NUM_THREADS`) limits every kind of parallelism.
pub fn default_threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Runs `job(j, emit)` for every `j < jobs` on `threads` worker threads; each job calls `emit`
/// for every item it produces, in its own order. `on_item(j, &item)` sees every item on the
/// calling thread as it arrives (progress). Returns each job's items, jobs in order, so the
/// result does not depend on the thread count. The first error stops the other jobs at their
/// next item and is returned.
pub fn ordered_jobs<T: Send>(
    jobs: usize,
    threads: usize,
    job: impl Fn(usize, &mut dyn FnMut(T)) -> Result<()> + Sync,
    on_item: impl FnMut(usize, &T),
) -> Result<Vec<Vec<T>>> {
    let workers = vec![(); threads.clamp(1, jobs.max(1))];
    ordered_jobs_with(workers, jobs, |_, j, emit| job(j, emit), on_item)
}

/// [`ordered_jobs`] with one worker thread per element of `workers`, each job getting its
/// thread's element (e.g. a model replica of its own).
pub fn ordered_jobs_with<S: Send, T: Send>(
    workers: Vec<S>,
    jobs: usize,
    job: impl Fn(&mut S, usize, &mut dyn FnMut(T)) -> Result<()> + Sync,
    mut on_item: impl FnMut(usize, &T),
) -> Result<Vec<Vec<T>>> {
    let mut out: Vec<Vec<T>> = (0..jobs).map(|_| Vec::new()).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut first_error = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<(usize, Result<T>)>();
        for mut worker in workers {
            let sender = sender.clone();
            let (job, next, failed) = (&job, &next, &failed);
            scope.spawn(move || loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs || failed.load(Ordering::Relaxed) {
                    break;
                }
                let mut emit = |item: T| {
                    // A closed channel means the caller has gone; nothing to do then.
                    let _ = sender.send((j, Ok(item)));
                };
                if let Err(e) = job(&mut worker, j, &mut emit) {
                    failed.store(true, Ordering::Relaxed);
                    let _ = sender.send((j, Err(e)));
                    break;
                }
            });
        }
        drop(sender);
        for (j, item) in receiver {
            match item {
                Ok(item) => {
                    on_item(j, &item);
                    out[j].push(item);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TrainError;

    #[test]
    fn results_come_back_in_job_order_whatever_the_threads() {
        let run = |threads| {
            let mut seen = 0;
            let out = ordered_jobs(
                7,
                threads,
                |j, emit| {
                    for k in 0..j % 3 + 1 {
                        // Later jobs finish first, so arrival order differs from job order.
                        std::thread::sleep(std::time::Duration::from_millis((7 - j as u64) * 2));
                        emit(j * 10 + k);
                    }
                    Ok(())
                },
                |_, _| seen += 1,
            )
            .unwrap();
            (out, seen)
        };
        let (one, seen_one) = run(1);
        let (four, seen_four) = run(4);
        assert_eq!(one, four);
        assert_eq!(one[4], vec![40, 41]);
        assert_eq!(seen_one, one.iter().map(Vec::len).sum::<usize>());
        assert_eq!(seen_four, seen_one);
    }

    #[test]
    fn the_first_error_is_returned() {
        let e = ordered_jobs(
            5,
            2,
            |j, emit| {
                if j == 2 {
                    return Err(TrainError::Sampler("job 2 failed".into()));
                }
                emit(j);
                Ok(())
            },
            |_, _: &usize| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("job 2 failed"), "{e}");
    }
}
