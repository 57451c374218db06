//! Live counts: [`StatsObserver`] keeps them, a [`StatsWatch`] reads them.

use iniesta_core::{Event, Observer, Stats};
use tokio::sync::watch;

/// Keeps a live [`Stats`] that other tasks can read while the consumer runs
/// (a health endpoint, a test waiting for work to be done), through the
/// [`StatsWatch`] it is created with.
///
/// ```
/// use iniesta_core::{Event, Observer};
/// use iniesta_tokio::StatsObserver;
///
/// let (mut observer, stats) = StatsObserver::new();
/// observer.on_event(&Event::Received { count: 3 });
/// assert_eq!(stats.get().received, 3);
/// ```
#[derive(Debug)]
pub struct StatsObserver {
    tx: watch::Sender<Stats>,
}

impl StatsObserver {
    /// The observer and a [`StatsWatch`] that sees every update.
    pub fn new() -> (Self, StatsWatch) {
        let (tx, rx) = watch::channel(Stats::default());
        (StatsObserver { tx }, StatsWatch { rx })
    }
}

impl Observer for StatsObserver {
    fn on_event(&mut self, event: &Event) {
        // `send_modify` updates even when no receiver is left.
        self.tx.send_modify(|s| s.record(event));
    }
}

/// A live view of a consumer's [`Stats`]: read them, or wait until they
/// meet a condition. Cheap to clone.
///
/// Only copies of the counts are handed out, never a borrow of the shared
/// value, so a reader can never hold up the consumer.
#[derive(Debug, Clone)]
pub struct StatsWatch {
    rx: watch::Receiver<Stats>,
}

/// The consumer stopped before the stats met the condition waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the consumer stopped before the awaited condition was met ({0})")]
pub struct ConsumerStopped(pub Stats);

impl StatsWatch {
    /// The counts now.
    pub fn get(&self) -> Stats {
        *self.rx.borrow()
    }

    /// Waits until `done` holds for the counts (checked at once, then after
    /// every event) and returns them. Fails with the last counts when the
    /// consumer stops first.
    ///
    /// ```
    /// use iniesta_core::{Event, Observer};
    /// use iniesta_tokio::StatsObserver;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (mut observer, mut stats) = StatsObserver::new();
    /// observer.on_event(&Event::Received { count: 2 });
    /// assert_eq!(stats.wait_for(|s| s.received >= 2).await.unwrap().received, 2);
    /// drop(observer); // the consumer stopped
    /// assert!(stats.wait_for(|s| s.received >= 5).await.is_err());
    /// # }
    /// ```
    pub async fn wait_for(
        &mut self,
        mut done: impl FnMut(&Stats) -> bool,
    ) -> Result<Stats, ConsumerStopped> {
        // Copy out of the borrow at once: the observer needs the write lock.
        let result = self.rx.wait_for(|s| done(s)).await.map(|s| *s);
        result.map_err(|_| ConsumerStopped(self.get()))
    }
}
