//! Stand-ins for the library's tokio runtime and tracing observer, used
//! until those are part of `iniesta_tokio`'s public API.

use futures::future::BoxFuture;
use iniesta_core::{Event, Observer, Runtime, Time};
use tokio::time::Instant;

/// The driver's clock, timers and spawning on tokio.
#[derive(Debug, Clone, Copy)]
pub struct TokioRuntime {
    origin: Instant,
}

impl TokioRuntime {
    /// A runtime whose `Time::ZERO` is now.
    pub fn new() -> Self {
        TokioRuntime {
            origin: Instant::now(),
        }
    }
}

impl Runtime for TokioRuntime {
    fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()> {
        const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
        let at = self
            .origin
            .checked_add(deadline.since_origin().min(CENTURY))
            .unwrap_or_else(|| Instant::now() + CENTURY);
        Box::pin(tokio::time::sleep_until(at))
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        drop(tokio::spawn(future));
    }
}

/// Logs every consumer event.
#[derive(Debug, Default)]
pub struct TracingObserver;

impl TracingObserver {
    /// The observer.
    pub fn new() -> Self {
        TracingObserver
    }
}

impl Observer for TracingObserver {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Malformed { .. }
            | Event::Failed { .. }
            | Event::LockUnavailable { .. }
            | Event::NoHandler { .. }
            | Event::ReceiveFailed { .. }
            | Event::DeleteFailed { .. } => tracing::warn!(?event, "consumer"),
            _ => tracing::debug!(?event, "consumer"),
        }
    }
}
