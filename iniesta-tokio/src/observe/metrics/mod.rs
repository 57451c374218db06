//! [`MetricsObserver`]: counters, a gauge and histograms through the
//! [`metrics`] facade.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use iniesta_core::{Event, HandlerRegistry, Message, Observer};
use metrics::{counter, histogram};

mod in_flight;
mod labels;
pub mod names;
#[cfg(test)]
mod tests;

pub use self::names::describe_metrics;

use self::in_flight::InFlight;
use self::labels::{error_kind, outcome_label, shared, EventLabels};

/// Records the consumer's [`Event`]s as metrics through the [`metrics`]
/// facade; install any recorder (Prometheus exporter, …) to collect them.
/// The series are listed in the [crate docs](crate#metrics) and in
/// [`names`].
///
/// **The `event` label** names the route that takes a message, never the
/// event itself: `UserCreated.users` for an event with a handler of its
/// own, `Order.*` for one its prefix route takes, `default` for anything
/// else (the default handler's events). Event names are chosen by whoever
/// publishes to the topic; routes are chosen by this service, so a flood of
/// foreign names cannot multiply the series. Build the observer with the
/// registry's routes ([`for_registry`](Self::for_registry)); without them
/// ([`new`](Self::new)) every message is labelled `default`.
///
/// **In flight** ([`names::IN_FLIGHT`]) counts handlers from their start
/// until they have stopped, whether they succeeded, failed, panicked or were
/// aborted, and cannot drift: see the bookkeeping it keeps per message.
///
/// **Message age** ([`names::MESSAGE_AGE_SECONDS`]) is recorded when a
/// handler starts: the wall clock minus the message's `SentTimestamp`
/// (0 when the queue's clock is ahead of ours).
///
/// **Buckets**: a [`metrics`] histogram has none; give the exporter
/// [`names::HANDLER_SECONDS_BUCKETS`] and
/// [`names::MESSAGE_AGE_SECONDS_BUCKETS`] (or loop over
/// [`names::HISTOGRAM_BUCKETS`]).
///
/// ```
/// use iniesta_core::HandlerRegistry;
/// use iniesta_tokio::MetricsObserver;
///
/// let mut handlers = HandlerRegistry::new();
/// handlers.on("Order.*", || async {}).unwrap();
/// let observer = MetricsObserver::for_registry(&handlers);
/// # drop(observer);
/// ```
pub struct MetricsObserver {
    labels: EventLabels,
    in_flight: InFlight,
    /// Now, in ms since the Unix epoch (the unit of `SentTimestamp`).
    wall_clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl MetricsObserver {
    /// A metrics observer that knows no routes: every message is labelled
    /// `event="default"`. It describes its metrics (help texts, units) to
    /// the recorder installed at this moment, if any.
    pub fn new() -> Self {
        Self::for_routes(std::iter::empty::<&str>())
    }

    /// A metrics observer whose `event` label is the route of `registry`
    /// that takes the message (or `default`).
    pub fn for_registry(registry: &HandlerRegistry) -> Self {
        Self::for_routes(registry.events())
    }

    /// A metrics observer whose `event` label is one of `routes`, names as
    /// [`HandlerRegistry::events`] lists them (`Event.svc`, or a prefix as
    /// `Event.*`; the longest matching prefix wins, as in the registry), or
    /// `default`. It describes its metrics to the recorder installed at this
    /// moment, if any.
    pub fn for_routes<S: AsRef<str>>(routes: impl IntoIterator<Item = S>) -> Self {
        describe_metrics();
        let labels = EventLabels::new(routes);
        labels.all().for_each(in_flight::register);
        MetricsObserver {
            labels,
            in_flight: InFlight::default(),
            wall_clock: Box::new(epoch_millis),
        }
    }

    /// Reads message ages against `now_millis` (now, in ms since the Unix
    /// epoch) instead of the system clock. Only a test needs it: one whose
    /// time is not the wall clock's, such as tokio's paused clock, on which
    /// the in-memory queue stamps `SentTimestamp` (read it as the queue
    /// does: `move || clock.unix_millis(clock.now())`, with `clock` the
    /// world's, `InMemory::clock`).
    pub fn with_wall_clock(mut self, now_millis: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.wall_clock = Box::new(now_millis);
        self
    }

    /// How long `message` has been in the queue, in seconds, if it says
    /// when it was sent.
    fn age_seconds(&self, message: &Message) -> Option<f64> {
        let sent = message.sent_timestamp?;
        let waited_ms = (self.wall_clock)().saturating_sub(sent);
        Some(waited_ms as f64 / 1000.0)
    }
}

/// Now, in ms since the Unix epoch (the scale of SQS's `SentTimestamp`).
fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Default for MetricsObserver {
    fn default() -> Self {
        MetricsObserver::new()
    }
}

impl fmt::Debug for MetricsObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsObserver")
            .field("labels", &self.labels)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Drop for MetricsObserver {
    /// Handlers still counted will not report their end to this observer:
    /// take them off the gauge rather than leave it up for good.
    fn drop(&mut self) {
        self.in_flight.clear();
    }
}

impl Observer for MetricsObserver {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Received { count } => counter!(names::RECEIVED).increment(*count as u64),
            Event::ReceiveFailed { error, .. } => {
                counter!(names::RECEIVE_FAILURES, "kind" => error_kind(error)).increment(1);
            }
            Event::HandlerStarted { message } => {
                let label = self.labels.of(&message.event);
                counter!(names::DISPATCHED, "event" => shared(label)).increment(1);
                if let Some(age) = self.age_seconds(message) {
                    histogram!(names::MESSAGE_AGE_SECONDS, "event" => shared(label)).record(age);
                }
                self.in_flight.started(&message.sqs_message_id, label);
            }
            Event::Succeeded { message, elapsed } => {
                self.in_flight.finished(&message.sqs_message_id);
                let label = self.labels.of(&message.event);
                counter!(names::SUCCEEDED, "event" => shared(label)).increment(1);
                histogram!(names::HANDLER_SECONDS, "event" => shared(label), "outcome" => "ok")
                    .record(elapsed.as_secs_f64());
            }
            Event::Failed {
                message,
                elapsed,
                outcome,
            } => {
                self.in_flight.finished(&message.sqs_message_id);
                let label = self.labels.of(&message.event);
                let outcome = outcome_label(outcome);
                counter!(names::FAILED, "event" => shared(label), "outcome" => outcome)
                    .increment(1);
                histogram!(names::HANDLER_SECONDS, "event" => shared(label), "outcome" => outcome)
                    .record(elapsed.as_secs_f64());
            }
            Event::Stopped => self.in_flight.clear(),
            Event::Deleted { .. } => counter!(names::DELETED).increment(1),
            Event::DeleteFailed { will_retry, .. } => {
                let will_retry = if *will_retry { "true" } else { "false" };
                counter!(names::DELETE_FAILURES, "will_retry" => will_retry).increment(1);
            }
            Event::GivenUp { deleted, .. } => {
                let deleted = if *deleted { "true" } else { "false" };
                counter!(names::GIVEN_UP, "deleted" => deleted).increment(1);
            }
            Event::Skipped { .. } => counter!(names::SKIPPED_BUSY).increment(1),
            Event::Duplicate { .. } => counter!(names::DUPLICATES_ACKED).increment(1),
            Event::LockUnavailable { .. } => counter!(names::LOCK_UNAVAILABLE).increment(1),
            Event::Malformed { .. } => counter!(names::MALFORMED).increment(1),
            Event::NoHandler { .. } => counter!(names::NO_HANDLER).increment(1),
            Event::Unmatched { .. } => counter!(names::UNMATCHED).increment(1),
            Event::ReturnedForOrder { .. } => counter!(names::RETURNED_FOR_ORDER).increment(1),
            _ => {}
        }
    }
}
