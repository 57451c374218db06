//! [`MetricsObserver`]: counters and a histogram through the [`metrics`]
//! facade.

use iniesta_core::{Event, Observer};

use super::logs::outcome_text;

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
            Event::HandlerStarted { .. } => counter!(names::DISPATCHED).increment(1),
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
