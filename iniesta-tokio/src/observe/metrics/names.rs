//! The series [`MetricsObserver`](super::MetricsObserver) records: their
//! names, help texts and histogram buckets.

/// Counter: messages received from the queue.
pub const RECEIVED: &str = "iniesta_messages_received_total";
/// Counter, label `kind` (see [`RECEIVE_FAILURE_KINDS`]): receive calls
/// that failed. Each is followed by a pause before the next receive, so a
/// steady rate here means the consumer is not consuming.
pub const RECEIVE_FAILURES: &str = "iniesta_receive_failures_total";
/// Counter, label `event`: handlers started.
pub const DISPATCHED: &str = "iniesta_messages_dispatched_total";
/// Counter, label `event`: handlers that returned `Ok`.
pub const SUCCEEDED: &str = "iniesta_messages_succeeded_total";
/// Counter, labels `event` and `outcome` = `error` | `panic` | `aborted`:
/// handlers that did not succeed.
pub const FAILED: &str = "iniesta_messages_failed_total";
/// Gauge, label `event`: handlers running now, aborted ones included until
/// they have stopped.
pub const IN_FLIGHT: &str = "iniesta_handlers_in_flight";
/// Counter, label `deleted` = `true` | `false`: messages this consumer gave
/// up on (a permanent failure, or a message it gave up on received again),
/// deleted or left for the dead-letter queue.
pub const GIVEN_UP: &str = "iniesta_messages_given_up_total";
/// Counter: messages skipped because another consumer held the lock.
pub const SKIPPED_BUSY: &str = "iniesta_messages_skipped_busy_total";
/// Counter: duplicates of finished work, deleted without dispatch.
pub const DUPLICATES_ACKED: &str = "iniesta_duplicates_acked_total";
/// Counter: messages deleted from the queue (handled, duplicates, and
/// unmatched events when they are deleted).
pub const DELETED: &str = "iniesta_messages_deleted_total";
/// Counter, label `will_retry` = `true` | `false`: failed delete attempts.
/// `false` means the message will be redelivered; its completion record
/// makes that copy harmless.
pub const DELETE_FAILURES: &str = "iniesta_delete_failures_total";
/// Counter: messages left because the lock backend was unavailable.
pub const LOCK_UNAVAILABLE: &str = "iniesta_lock_unavailable_total";
/// Counter: messages that could not be parsed.
pub const MALFORMED: &str = "iniesta_messages_malformed_total";
/// Counter: messages without a handler.
pub const NO_HANDLER: &str = "iniesta_no_handler_total";
/// Counter: messages whose event the consumer's own filters refuse.
pub const UNMATCHED: &str = "iniesta_unmatched_events_total";
/// Counter: messages of a FIFO queue sent back unhandled because a message
/// ahead of them in their group did not succeed (SQS then redelivers the
/// group in order).
pub const RETURNED_FOR_ORDER: &str = "iniesta_messages_returned_for_order_total";
/// Histogram, seconds, labels `event` and `outcome` = `ok` | `error` |
/// `panic` | `aborted`: how long handlers ran. Export it with
/// [`HANDLER_SECONDS_BUCKETS`].
pub const HANDLER_SECONDS: &str = "iniesta_handler_seconds";
/// Histogram, seconds, label `event`: how long a message waited in the
/// queue before its handler started (now minus its `SentTimestamp`;
/// redeliveries count from the first send). Export it with
/// [`MESSAGE_AGE_SECONDS_BUCKETS`].
pub const MESSAGE_AGE_SECONDS: &str = "iniesta_message_age_seconds";

/// The values of the `kind` label of [`RECEIVE_FAILURES`], from the queue's
/// error code: `throttled` (the service asks to slow down), `credentials`
/// (expired, unknown or badly signed credentials), `access_denied` (the
/// credentials lack a permission), `queue_missing` (the queue does not
/// exist), `network` (no error code: the call got no answer — connection,
/// timeout, DNS), `other` (every other code).
pub const RECEIVE_FAILURE_KINDS: &[&str] = &[
    "throttled",
    "credentials",
    "access_denied",
    "queue_missing",
    "network",
    "other",
];

/// The buckets (upper bounds, seconds) to export [`HANDLER_SECONDS`] with.
///
/// A [`metrics`] histogram carries raw values; the exporter chooses the
/// buckets, and most default to ones made for web requests (up to 10 s).
/// Handlers run from milliseconds up to the minutes a heartbeat-extended
/// lock allows, so these go from 5 ms to 15 minutes. With
/// `metrics-exporter-prometheus`:
///
/// ```text
/// PrometheusBuilder::new()
///     .set_buckets_for_metric(Matcher::Full(names::HANDLER_SECONDS.into()), names::HANDLER_SECONDS_BUCKETS)?
/// ```
///
/// or every histogram at once with [`HISTOGRAM_BUCKETS`].
pub const HANDLER_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The buckets (upper bounds, seconds) to export [`MESSAGE_AGE_SECONDS`]
/// with: from 100 ms (a consumer keeping up) to 14 days (SQS's longest
/// retention: a message about to be lost).
pub const MESSAGE_AGE_SECONDS_BUCKETS: &[f64] = &[
    0.1,
    0.5,
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3_600.0,
    14_400.0,
    86_400.0,
    345_600.0,
    1_209_600.0,
];

/// Every histogram with its buckets, for an exporter's set-up loop.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (HANDLER_SECONDS, HANDLER_SECONDS_BUCKETS),
    (MESSAGE_AGE_SECONDS, MESSAGE_AGE_SECONDS_BUCKETS),
];

/// Describes every metric (help text, unit) to the installed recorder, so
/// exporters can show it. [`MetricsObserver::new`](super::MetricsObserver::new)
/// calls it; call it again after installing a recorder later.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(RECEIVED, "Messages received from the queue.");
    describe_counter!(
        RECEIVE_FAILURES,
        "Failed receive calls, by kind (throttled, credentials, access_denied, queue_missing, network, other)."
    );
    describe_counter!(DISPATCHED, "Handlers started, by event route.");
    describe_counter!(SUCCEEDED, "Handlers that succeeded, by event route.");
    describe_counter!(
        FAILED,
        "Handlers that failed, by event route and outcome (error, panic, aborted); the message is left for redelivery."
    );
    describe_gauge!(IN_FLIGHT, "Handlers running now, by event route.");
    describe_counter!(
        GIVEN_UP,
        "Messages given up on (permanent failures), by whether they were deleted or left for the dead-letter queue."
    );
    describe_counter!(
        SKIPPED_BUSY,
        "Messages skipped because another consumer held the event's lock."
    );
    describe_counter!(
        DUPLICATES_ACKED,
        "Duplicates of already handled events, deleted without running the handler."
    );
    describe_counter!(DELETED, "Messages deleted from the queue.");
    describe_counter!(
        DELETE_FAILURES,
        "Failed delete attempts, by whether the delete will be tried again."
    );
    describe_counter!(
        LOCK_UNAVAILABLE,
        "Messages left for redelivery because the lock backend was unavailable."
    );
    describe_counter!(
        MALFORMED,
        "Messages that could not be parsed (left in the queue)."
    );
    describe_counter!(
        NO_HANDLER,
        "Messages whose event has no handler and no default handler (left in the queue)."
    );
    describe_counter!(
        UNMATCHED,
        "Messages whose event does not match the consumer's filters (never dispatched)."
    );
    describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "How long handlers ran, by event route and outcome (ok, error, panic, aborted)."
    );
    describe_histogram!(
        MESSAGE_AGE_SECONDS,
        Unit::Seconds,
        "How long a message was in the queue (since its SentTimestamp) when its handler started, by event route."
    );
}
