//! The signal a running handler gets when its lock is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

/// Fires when the lock a handler runs under is lost: the backend said it is
/// no longer ours, or its validity ran out before a heartbeat could extend
/// it. Another consumer may then take the key and run the same event.
///
/// The consumer aborts the handler's future at the same moment, so an async
/// handler simply stops at its next `.await`. The signal is for what the
/// abort cannot reach: work the handler spawned, a blocking section, or a
/// write about to be committed elsewhere. Such work SHOULD check
/// [`is_lost`](Self::is_lost) (or await [`lost`](Self::lost)) before it
/// commits, and a handler that writes to another store SHOULD make those
/// writes conditional on the event's key (`delivery.message.key()`), since a
/// Redlock gives no fencing token that the other store could check.
///
/// Cheap to clone; every clone sees the same signal.
///
/// ```
/// # futures::executor::block_on(async {
/// use iniesta_core::LockLost;
///
/// let signal = LockLost::new();
/// let seen = signal.clone();
/// assert!(!seen.is_lost());
/// signal.fire();
/// seen.lost().await; // returns at once: the lock is gone
/// assert!(seen.is_lost());
/// # });
/// ```
#[derive(Clone, Default)]
pub struct LockLost(Arc<Inner>);

#[derive(Default)]
struct Inner {
    lost: AtomicBool,
    event: event_listener::Event,
    /// The driver's order to stop the handler (see [`LockLost::abort`]):
    /// kept here so that a dispatch allocates one shared signal, not a
    /// second one for the abort.
    aborted: AtomicBool,
    /// The handler's task, woken when it is aborted.
    abort_waker: AtomicWaker,
}

impl LockLost {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the lock is lost.
    pub fn is_lost(&self) -> bool {
        self.0.lost.load(Ordering::Acquire)
    }

    /// Completes once the lock is lost (at once if it already is).
    pub async fn lost(&self) {
        loop {
            if self.is_lost() {
                return;
            }
            let listener = self.0.event.listen();
            // Checked again after listening, so a fire in between is seen.
            if self.is_lost() {
                return;
            }
            listener.await;
        }
    }

    /// Fires the signal: every waiter wakes, and `is_lost` answers `true`
    /// from now on. Drivers call it; a test of a handler may too.
    pub fn fire(&self) {
        self.0.lost.store(true, Ordering::Release);
        self.0.event.notify(usize::MAX);
    }

    /// Orders the handler running under this signal to stop: the future
    /// [`poll_guarded`](Self::poll_guarded) guards ends at its next poll.
    /// The driver calls it for every abort (a lost lock, a timeout, the end
    /// of a shutdown's grace); unlike [`fire`](Self::fire), a handler does
    /// not see it.
    pub(crate) fn abort(&self) {
        self.0.aborted.store(true, Ordering::Release);
        self.0.abort_waker.wake();
    }

    /// Polls `fut` unless [`abort`](Self::abort) was called: then
    /// `Ready(None)`, and `fut` MUST NOT be polled again. The same contract
    /// as `futures::future::Abortable`, without an allocation of its own
    /// (the caller pins `fut` where it lives, in the handler's task).
    pub(crate) fn poll_guarded<F: std::future::Future>(
        &self,
        cx: &mut Context<'_>,
        fut: std::pin::Pin<&mut F>,
    ) -> Poll<Option<F::Output>> {
        if self.0.aborted.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        if let Poll::Ready(out) = fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        self.0.abort_waker.register(cx.waker());
        // Checked again after registering, so an abort in between is seen.
        if self.0.aborted.load(Ordering::Acquire) {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl std::fmt::Debug for LockLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LockLost").field(&self.is_lost()).finish()
    }
}
