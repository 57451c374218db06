//! tokio as the driver's runtime, for the driver's tests.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use iniesta_core::{Runtime, Time};

/// tokio's timers and tasks; time counted from `origin`.
pub struct Tokio {
    pub origin: Instant,
}

impl Tokio {
    /// A runtime whose time starts now.
    pub fn new() -> Self {
        Tokio {
            origin: Instant::now(),
        }
    }
}

impl Runtime for Tokio {
    fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()> {
        let wait = deadline
            .saturating_duration_since(self.now())
            .min(Duration::from_secs(86_400));
        tokio::time::sleep(wait).boxed()
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::spawn(future));
    }
}
