//! Handler workers: the tasks single handlers run on.
//!
//! A task spawned per message costs its allocation, its registration with
//! the runtime and its teardown (with its abort handle, 6 % of the
//! instructions per message on the in-memory backends with mimalloc, 10 %
//! with glibc, whose aligned allocation of the task is slow). A worker is a
//! task that runs one handler at a time and then waits for the next: the
//! driver spawns one when a dispatch finds none idle, so there are never
//! more workers than handlers that ran at once (at most `max_in_flight`),
//! and they still run in parallel on a runtime with several threads.
//!
//! The contract between the driver and its workers:
//!
//! - The driver MUST hand a worker a job only while the worker is idle:
//!   once the driver has taken the [`Input::HandlerFinished`] of the
//!   worker's last job out of the inbox.
//! - A worker MUST answer every job it takes with exactly one
//!   [`Input::HandlerFinished`], and MUST NOT touch the job after it.
//! - A stop asked for a job ends its handler's future before its next poll
//!   (the future is dropped), and the job is answered
//!   [`DispatchOutcome::Aborted`], as an abort of a task would.
//! - A panic of the handler (in the call or in its future) is caught and
//!   answered [`DispatchOutcome::Panicked`]; the worker goes on.
//! - When the driver is dropped, idle workers end; a busy one ends after
//!   its job.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures::task::AtomicWaker;
use futures::FutureExt;

use super::execute::panic_text;
use super::inbox::Inbox;
use super::Runtime;
use crate::handler::{Delivery, Handler};
use crate::machine::{DispatchOutcome, Input, MessageId};

/// The driver's workers, and which of them wait for a job.
#[derive(Default)]
pub(super) struct Workers {
    all: Vec<Arc<Slot>>,
    idle: Vec<usize>,
}

/// One dispatch for a worker.
struct Job {
    id: MessageId,
    handler: Arc<dyn Handler>,
    delivery: Delivery,
}

/// Where the driver and one worker meet.
#[derive(Default)]
struct Slot {
    job: Mutex<Option<Job>>,
    /// The running job is asked to stop.
    stop: AtomicBool,
    /// The driver is gone: no job will come.
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl Workers {
    /// Hands `handler` on `delivery` to an idle worker (spawning one on
    /// `runtime` when none is), and returns the worker's number, which
    /// [`stop`](Self::stop) and [`free`](Self::free) take.
    pub(super) fn run<R: Runtime>(
        &mut self,
        runtime: &R,
        inbox: &Arc<Inbox>,
        id: MessageId,
        handler: Arc<dyn Handler>,
        delivery: Delivery,
    ) -> usize {
        let worker = match self.idle.pop() {
            Some(worker) => worker,
            None => {
                let slot = Arc::new(Slot::default());
                runtime.spawn(work(slot.clone(), inbox.clone()));
                self.all.push(slot);
                self.all.len() - 1
            }
        };
        let slot = &self.all[worker];
        // Cleared before the job is seen: a stop asked for the previous
        // job after it answered must not stop this one.
        slot.stop.store(false, Ordering::Relaxed);
        *slot.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job {
            id,
            handler,
            delivery,
        });
        slot.waker.wake();
        worker
    }

    /// Asks the job running on `worker` to stop.
    pub(super) fn stop(&self, worker: usize) {
        if let Some(slot) = self.all.get(worker) {
            slot.stop.store(true, Ordering::Release);
            slot.waker.wake();
        }
    }

    /// `worker` answered its job: it may take another.
    pub(super) fn free(&mut self, worker: usize) {
        self.idle.push(worker);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for slot in &self.all {
            slot.closed.store(true, Ordering::Release);
            slot.waker.wake();
        }
    }
}

/// A worker: takes the jobs of `slot` one by one until the driver is gone.
async fn work(slot: Arc<Slot>, inbox: Arc<Inbox>) {
    while let Some(Job {
        id,
        handler,
        delivery,
    }) = next_job(&slot).await
    {
        // The call itself inside the guarded future too: a handler may
        // panic before it returns its future.
        let call = AssertUnwindSafe(async move { handler.handle(delivery).await }).catch_unwind();
        let outcome = match unless_stopped(&slot, call).await {
            None => DispatchOutcome::Aborted,
            Some(Err(panic)) => DispatchOutcome::Panicked(panic_text(&*panic)),
            Some(Ok(Err(e))) => DispatchOutcome::failed(&e),
            Some(Ok(Ok(()))) => DispatchOutcome::Succeeded,
        };
        inbox.push(Input::HandlerFinished { id, outcome });
    }
}

/// The next job of `slot`, or `None` once the driver is gone.
async fn next_job(slot: &Slot) -> Option<Job> {
    futures::future::poll_fn(|cx| {
        // Registered before looking, so a job left after the look wakes us.
        slot.waker.register(cx.waker());
        if let Some(job) = slot.job.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Poll::Ready(Some(job));
        }
        if slot.closed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// `future`'s output, or `None` if a stop is asked first: the future is
/// then dropped without another poll.
async fn unless_stopped<F: std::future::Future>(slot: &Slot, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    futures::future::poll_fn(|cx| {
        slot.waker.register(cx.waker());
        if slot.stop.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        future.as_mut().poll(cx).map(Some)
    })
    .await
}

#[cfg(test)]
#[path = "workers_tests.rs"]
mod tests;
