//! Observability: logs ([`TracingObserver`]), metrics ([`MetricsObserver`]),
//! live counts ([`StatsObserver`], read through a [`StatsWatch`]), a fan-out of several observers
//! ([`FanOut`]) and a span per message around each handler
//! ([`traced_handlers`]).
//!
//! The driver reports every [`Event`] of the consumer to one
//! [`Observer`]; these types turn the events into what an operator looks at.
//! The [`Iniesta`](crate::Iniesta) builder installs all of them by default.

use std::sync::Arc;

use async_trait::async_trait;
use iniesta_core::{
    machine::AbortReason, Delivery, DispatchOutcome, Event, Handler, HandlerError, HandlerRegistry,
    Observer, Stats,
};
use tokio::sync::watch;
use tracing::{Instrument, Level};

/// Several observers as one: each event goes to each, in the order they
/// were added.
///
/// ```
/// use iniesta_tokio::{FanOut, MetricsObserver, TracingObserver};
///
/// let observer = FanOut::new()
///     .with(TracingObserver::new())
///     .with(MetricsObserver::new())
///     .with(|event: &iniesta_core::Event| println!("{event:?}"));
/// assert_eq!(observer.len(), 3);
/// ```
#[derive(Default)]
pub struct FanOut {
    observers: Vec<Box<dyn Observer>>,
}

impl FanOut {
    /// No observers yet.
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Adds `observer` (builder style).
    pub fn with(mut self, observer: impl Observer + 'static) -> Self {
        self.push(observer);
        self
    }

    /// Adds `observer`.
    pub fn push(&mut self, observer: impl Observer + 'static) {
        self.observers.push(Box::new(observer));
    }

    /// Adds an observer that is already boxed.
    pub fn push_boxed(&mut self, observer: Box<dyn Observer>) {
        self.observers.push(observer);
    }

    /// How many observers there are.
    pub fn len(&self) -> usize {
        self.observers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }
}

impl From<Vec<Box<dyn Observer>>> for FanOut {
    fn from(observers: Vec<Box<dyn Observer>>) -> Self {
        FanOut { observers }
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl Observer for FanOut {
    fn on_event(&mut self, event: &Event) {
        for o in &mut self.observers {
            o.on_event(event);
        }
    }
}

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

/// Logs each [`Event`] through `tracing`, at the level an operator expects.
///
/// | level | events |
/// |---|---|
/// | `info` | shutdown started, consumer stopped |
/// | `warn` | handler failed, panicked or aborted; handler being aborted (lock expired or lost, shutdown grace over); no handler; malformed message (with its message id and the parse error); lock backend unavailable; failed receive, lock extension, completion record, release, delete or visibility change |
/// | `debug` | messages received (counts), handler started (with the message body), handler succeeded, skipped because busy elsewhere, duplicate acked, deleted, returned to the queue |
///
/// Message bodies are only ever logged at `debug`: they may hold personal
/// data. Every line is a sentence an operator can read, with the message's
/// `event`, `message_id` and `key` as fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver {
    _priv: (),
}

impl TracingObserver {
    /// A tracing observer (target `iniesta_tokio::observe`).
    pub fn new() -> Self {
        TracingObserver::default()
    }

    /// The level `event` is logged at.
    ///
    /// ```
    /// use iniesta_core::Event;
    /// use iniesta_tokio::TracingObserver;
    /// use tracing::Level;
    ///
    /// assert_eq!(TracingObserver::level(&Event::Stopped), Level::INFO);
    /// assert_eq!(TracingObserver::level(&Event::Received { count: 1 }), Level::DEBUG);
    /// ```
    pub fn level(event: &Event) -> Level {
        match event {
            Event::ShutdownStarted { .. } | Event::Stopped => Level::INFO,
            Event::ReceiveFailed { .. }
            | Event::Malformed { .. }
            | Event::LockUnavailable { .. }
            | Event::NoHandler { .. }
            | Event::Unmatched { .. }
            | Event::Failed { .. }
            | Event::Aborting { .. }
            | Event::ExtendFailed { .. }
            | Event::CompleteFailed { .. }
            | Event::ReleaseFailed { .. }
            | Event::DeleteFailed { .. }
            | Event::VisibilityChangeFailed { .. } => Level::WARN,
            _ => Level::DEBUG,
        }
    }
}

fn outcome_text(outcome: &DispatchOutcome) -> (&'static str, String) {
    match outcome {
        DispatchOutcome::Failed(e) => ("error", e.clone()),
        DispatchOutcome::Panicked(p) => ("panic", p.clone()),
        DispatchOutcome::Aborted => ("aborted", "aborted".to_owned()),
        DispatchOutcome::Succeeded => ("ok", String::new()),
        #[allow(unreachable_patterns)]
        _ => ("error", format!("{outcome:?}")),
    }
}

fn reason_text(reason: &AbortReason) -> &'static str {
    match reason {
        AbortReason::LockExpired => {
            "the handler outlived its lock (the lock could not be extended in time)"
        }
        AbortReason::LockLost => "the lock backend says the lock is no longer ours",
        AbortReason::ShutdownGrace => "the shutdown grace period ran out",
        #[allow(unreachable_patterns)]
        _ => "unknown reason",
    }
}

impl Observer for TracingObserver {
    fn on_event(&mut self, event: &Event) {
        use tracing::{debug, info, warn};
        match event {
            Event::Received { count } => debug!(count, "received {count} message(s)"),
            Event::ReceiveFailed { error, retry_in } => warn!(
                %error, retry_in = ?retry_in,
                "receiving from the queue failed; trying again in {retry_in:?}"
            ),
            Event::Malformed {
                message_id,
                receive_count,
                error,
            } => warn!(
                message_id = %message_id, receive_count, %error,
                "could not parse a message; it stays in the queue (a dead-letter queue ends its journey)"
            ),
            Event::Skipped { message } => debug!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                "skipped: another consumer holds this event's lock"
            ),
            Event::Duplicate { message } => debug!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                "duplicate of an event already handled; deleting it without running the handler"
            ),
            Event::LockUnavailable { message, error } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                %error,
                "the lock backend is unavailable; the message is left for redelivery"
            ),
            Event::Unmatched { message, deleted } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                deleted = *deleted,
                "the event does not match this consumer's filters (INIESTA_SQS_CONSUMER_FILTERS): \
                 not dispatched; {}",
                if *deleted { "deleted (INIESTA_DELETE_UNMATCHED_EVENTS)" } else { "left in the queue for its dead-letter queue" }
            ),
            Event::NoHandler { message } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                "no handler for this event and no default handler; the message stays in the queue"
            ),
            Event::Dispatched { message } => debug!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                receive_count = message.receive_count, body = %message.body,
                "handler started"
            ),
            Event::Succeeded { message, elapsed } => debug!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                elapsed = ?elapsed,
                "handler succeeded"
            ),
            Event::Failed {
                message,
                elapsed,
                outcome,
            } => {
                let (kind, text) = outcome_text(outcome);
                warn!(
                    event = %message.event, message_id = %message.sqs_message_id,
                    key = %message.key(), receive_count = message.receive_count,
                    elapsed = ?elapsed, outcome = kind, error = %text,
                    "handler failed ({kind}); the message is left for redelivery"
                );
            }
            Event::Aborting { message, reason } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                reason = ?reason,
                "aborting the handler: {}", reason_text(reason)
            ),
            Event::ExtendFailed { message, error } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                %error,
                "could not extend the lock of a running handler; trying again"
            ),
            Event::CompleteFailed { message, error } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                %error,
                "could not write the completion record; deleting the message anyway"
            ),
            Event::ReleaseFailed { message, error } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                %error,
                "could not release the lock; it expires by its time to live"
            ),
            Event::Deleted { message } => debug!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                "deleted from the queue"
            ),
            Event::DeleteFailed {
                message,
                error,
                will_retry,
            } => warn!(
                event = %message.event, message_id = %message.sqs_message_id, key = %message.key(),
                %error, will_retry,
                "deleting the message failed{}",
                if *will_retry {
                    "; trying again"
                } else {
                    "; giving up (the completion record makes the redelivered copy harmless)"
                }
            ),
            Event::VisibilityChangeFailed { message_id, error } => warn!(
                message_id = %message_id, %error,
                "changing the visibility timeout of a message failed"
            ),
            Event::Returned { message_id, delay } => debug!(
                message_id = %message_id, delay = ?delay,
                "message returned to the queue; visible again in {delay:?}"
            ),
            Event::ShutdownStarted { in_flight } => info!(
                in_flight,
                "shutdown started: no new messages; waiting for {in_flight} message(s) in progress"
            ),
            Event::Stopped => info!("consumer stopped: no handler runs and nothing is in progress"),
            #[allow(unreachable_patterns)]
            other => debug!(event = ?other, "consumer event"),
        }
    }
}

/// Records the consumer's [`Event`]s as metrics through the [`metrics`]
/// facade; install any recorder (Prometheus exporter, …) to collect them.
/// See the [crate docs](crate#metrics) for the names.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsObserver {
    _priv: (),
}

/// The metric names [`MetricsObserver`] records.
pub mod names {
    /// Counter: messages received from the queue.
    pub const RECEIVED: &str = "iniesta_messages_received_total";
    /// Counter: handlers started.
    pub const DISPATCHED: &str = "iniesta_messages_dispatched_total";
    /// Counter: handlers that returned `Ok`.
    pub const SUCCEEDED: &str = "iniesta_messages_succeeded_total";
    /// Counter, label `outcome` = `error` | `panic` | `aborted`: handlers that
    /// did not succeed.
    pub const FAILED: &str = "iniesta_messages_failed_total";
    /// Counter: messages skipped because another consumer held the lock.
    pub const SKIPPED_BUSY: &str = "iniesta_messages_skipped_busy_total";
    /// Counter: duplicates of finished work, deleted without dispatch.
    pub const DUPLICATES_ACKED: &str = "iniesta_duplicates_acked_total";
    /// Counter: failed delete attempts.
    pub const DELETE_FAILURES: &str = "iniesta_delete_failures_total";
    /// Counter: messages left because the lock backend was unavailable.
    pub const LOCK_UNAVAILABLE: &str = "iniesta_lock_unavailable_total";
    /// Counter: messages that could not be parsed.
    pub const MALFORMED: &str = "iniesta_messages_malformed_total";
    /// Counter: messages without a handler.
    pub const NO_HANDLER: &str = "iniesta_no_handler_total";
    /// Counter: messages whose event the consumer's own filters refuse.
    pub const UNMATCHED: &str = "iniesta_unmatched_events_total";
    /// Histogram, seconds: how long handlers ran (every outcome).
    pub const HANDLER_SECONDS: &str = "iniesta_handler_seconds";
}

impl MetricsObserver {
    /// A metrics observer. It describes its metrics (help texts, units) to
    /// the recorder installed at this moment, if any.
    pub fn new() -> Self {
        describe_metrics();
        MetricsObserver::default()
    }
}

/// Describes every metric (help text, unit) to the installed recorder, so
/// exporters can show it. [`MetricsObserver::new`] calls it; call it again
/// after installing a recorder later.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(names::RECEIVED, "Messages received from the queue.");
    describe_counter!(names::DISPATCHED, "Handlers started.");
    describe_counter!(names::SUCCEEDED, "Handlers that succeeded.");
    describe_counter!(
        names::FAILED,
        "Handlers that failed, by outcome (error, panic, aborted); the message is left for redelivery."
    );
    describe_counter!(
        names::SKIPPED_BUSY,
        "Messages skipped because another consumer held the event's lock."
    );
    describe_counter!(
        names::DUPLICATES_ACKED,
        "Duplicates of already handled events, deleted without running the handler."
    );
    describe_counter!(names::DELETE_FAILURES, "Failed delete attempts.");
    describe_counter!(
        names::LOCK_UNAVAILABLE,
        "Messages left for redelivery because the lock backend was unavailable."
    );
    describe_counter!(
        names::MALFORMED,
        "Messages that could not be parsed (left in the queue)."
    );
    describe_counter!(
        names::NO_HANDLER,
        "Messages whose event has no handler and no default handler (left in the queue)."
    );
    describe_counter!(
        names::UNMATCHED,
        "Messages whose event does not match the consumer's filters (never dispatched)."
    );
    describe_histogram!(
        names::HANDLER_SECONDS,
        Unit::Seconds,
        "How long handlers ran, whatever their outcome."
    );
}

impl Observer for MetricsObserver {
    fn on_event(&mut self, event: &Event) {
        use metrics::{counter, histogram};
        match event {
            Event::Received { count } => counter!(names::RECEIVED).increment(*count as u64),
            Event::Dispatched { .. } => counter!(names::DISPATCHED).increment(1),
            Event::Succeeded { elapsed, .. } => {
                counter!(names::SUCCEEDED).increment(1);
                histogram!(names::HANDLER_SECONDS).record(elapsed.as_secs_f64());
            }
            Event::Failed {
                elapsed, outcome, ..
            } => {
                let (kind, _) = outcome_text(outcome);
                counter!(names::FAILED, "outcome" => kind).increment(1);
                histogram!(names::HANDLER_SECONDS).record(elapsed.as_secs_f64());
            }
            Event::Skipped { .. } => counter!(names::SKIPPED_BUSY).increment(1),
            Event::Duplicate { .. } => counter!(names::DUPLICATES_ACKED).increment(1),
            Event::DeleteFailed { .. } => counter!(names::DELETE_FAILURES).increment(1),
            Event::LockUnavailable { .. } => counter!(names::LOCK_UNAVAILABLE).increment(1),
            Event::Malformed { .. } => counter!(names::MALFORMED).increment(1),
            Event::NoHandler { .. } => counter!(names::NO_HANDLER).increment(1),
            Event::Unmatched { .. } => counter!(names::UNMATCHED).increment(1),
            _ => {}
        }
    }
}

/// A handler that runs inside a span describing its message.
struct Traced {
    inner: Arc<dyn Handler>,
}

#[async_trait]
impl Handler for Traced {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let m = &delivery.message;
        let span = tracing::info_span!(
            "iniesta.message",
            event = %m.event,
            message_id = %m.sqs_message_id,
            key = %m.key(),
            receive_count = m.receive_count,
        );
        self.inner.handle(delivery).instrument(span).await
    }
}

/// The same routes as `registry`, each handler (and the default handler)
/// wrapped so it runs inside an `iniesta.message` span with the fields
/// `event`, `message_id` (SQS), `key` (idempotency key) and
/// `receive_count`. Everything a handler logs then carries them.
///
/// ```
/// use iniesta_core::HandlerRegistry;
///
/// let mut handlers = HandlerRegistry::new();
/// handlers.on("A.svc", |_d| async { Ok::<_, String>(()) }).unwrap();
/// handlers.on_default(|_d| async { Ok::<_, String>(()) }).unwrap();
/// let traced = iniesta_tokio::observe::traced_handlers(&handlers);
/// assert_eq!(traced.events(), vec!["A.svc"]);
/// assert!(traced.has_default());
/// ```
pub fn traced_handlers(registry: &HandlerRegistry) -> HandlerRegistry {
    registry.map_handlers(|h| Arc::new(Traced { inner: h.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_levels() {
        use iniesta_core::BackendError;
        assert_eq!(
            TracingObserver::level(&Event::ShutdownStarted { in_flight: 0 }),
            Level::INFO
        );
        assert_eq!(
            TracingObserver::level(&Event::ReceiveFailed {
                error: BackendError::message("x"),
                retry_in: std::time::Duration::ZERO
            }),
            Level::WARN
        );
        assert_eq!(
            TracingObserver::level(&Event::Returned {
                message_id: "m".into(),
                delay: std::time::Duration::ZERO
            }),
            Level::DEBUG
        );
    }

    #[test]
    fn fan_out_reaches_every_observer_in_order() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, b) = (seen.clone(), seen.clone());
        let mut fan = FanOut::new()
            .with(move |_e: &Event| a.lock().unwrap().push("a"))
            .with(move |_e: &Event| b.lock().unwrap().push("b"));
        fan.on_event(&Event::Stopped);
        fan.on_event(&Event::Stopped);
        assert_eq!(*seen.lock().unwrap(), vec!["a", "b", "a", "b"]);
    }
}
