//! What the consumer tests on the in-memory backends share: a bound that
//! only keeps a broken consumer from hanging the run, a world whose failed
//! messages come back after a second, and waiting for the stats.
#![allow(dead_code)] // each test file uses its own subset

use std::future::IntoFuture;
use std::time::Duration;

use iniesta_tokio::{ConsumerHandle, InMemory, InMemoryOptions, Stats};

/// Only keeps a broken consumer from hanging the test run; no assertion
/// depends on timing.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// `fut`, or a panic naming `what` after [`HANG_GUARD`].
pub async fn within<T>(what: &str, fut: impl IntoFuture<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting: {what}"))
}

/// An in-memory world whose failed messages come back after a second (the
/// queue's visibility timeout), not the default 30.
pub fn quick_world() -> InMemory {
    let mut options = InMemoryOptions::default();
    options.visibility_timeout = Duration::from_secs(1);
    InMemory::with_options(options).unwrap()
}

/// Waits until the consumer's stats satisfy `done`.
pub async fn wait_stats(consumer: &ConsumerHandle, what: &str, done: impl FnMut(&Stats) -> bool) {
    let mut rx = consumer.watch_stats();
    within(what, rx.wait_for(done)).await.unwrap();
}
