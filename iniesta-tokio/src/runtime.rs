//! [`TokioRuntime`]: what the core's driver needs from tokio.

use futures::future::BoxFuture;
use iniesta_core::{Runtime, Time};
use std::future::Future;
use tokio::time::Instant;

/// The tokio implementation of [`iniesta_core::Runtime`]: the driver's
/// clock, timers and task spawning.
///
/// Time is monotonic and measured from the moment the runtime value was
/// created (the driver only ever compares instants, so the origin does not
/// matter). Timers are `tokio::time` timers, and the driver's handler
/// workers and batch calls are spawned with `tokio::spawn`, so handlers run
/// in parallel on a multi-threaded runtime; a handler's panic is caught by
/// the worker that ran it.
///
/// Both the time and the timers are tokio's ([`tokio::time::Instant`],
/// [`tokio::time::sleep_until`]), never the OS clock read directly: under a
/// paused clock (`#[tokio::test(start_paused = true)]`) the driver's
/// heartbeats, backoffs and shutdown grace pass as soon as every task is
/// waiting, in step with the visibility timeouts and lock TTLs of the
/// in-memory backends (`InMemory`), which read the same clock.
///
/// It must be created and used inside a tokio runtime (with the `time`
/// driver enabled, as `#[tokio::main]` does).
///
/// ```
/// use std::time::Duration;
/// use iniesta_core::Runtime;
/// use iniesta_tokio::TokioRuntime;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let runtime = TokioRuntime::new();
/// let start = runtime.now();
/// runtime.sleep_until(start + Duration::from_millis(5)).await;
/// assert!(runtime.now() >= start + Duration::from_millis(5));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioRuntime {
    origin: Instant,
}

impl TokioRuntime {
    /// A runtime whose [`Time::ZERO`] is now.
    pub fn new() -> Self {
        TokioRuntime {
            origin: Instant::now(),
        }
    }

    fn instant(&self, time: Time) -> Instant {
        // `Time::MAX` ("never") would overflow an Instant; a deadline a
        // century away is the same thing for a consumer.
        const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
        let offset = time.since_origin().min(CENTURY);
        self.origin
            .checked_add(offset)
            .unwrap_or_else(|| Instant::now() + CENTURY)
    }
}

impl Default for TokioRuntime {
    fn default() -> Self {
        TokioRuntime::new()
    }
}

impl Runtime for TokioRuntime {
    fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(self.instant(deadline)))
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // The driver learns the outcome through its own channel; the join
        // handle is not needed.
        drop(tokio::spawn(future));
    }
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
