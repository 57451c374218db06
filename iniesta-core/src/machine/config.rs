//! How a consumer behaves: [`ConsumerConfig`], its validation, and the
//! lock key it gives each message.

use std::time::Duration;

use crate::filters::FilterPolicy;
use crate::message::{Message, ParseConfig};
use crate::ports::LockKey;

use super::*;

/// Exponential visibility backoff after a failed dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failed delivery; doubles with each receive.
    pub base: Duration,
    /// The longest delay (clamped to SQS's 12 hours).
    pub max: Duration,
}

impl Backoff {
    /// The delay for a delivery received `receive_count` times:
    /// `base × 2^(receive_count − 1)`, clamped to `max` and to 12 hours.
    /// The base counts as SQS applies it, in whole seconds (rounded up), so
    /// that the delays SQS applies double too.
    pub fn delay(&self, receive_count: u32) -> Duration {
        let exp = receive_count.saturating_sub(1).min(31);
        let base = crate::sqs::visibility(self.base);
        let d = base.checked_mul(1u32 << exp).unwrap_or(Duration::MAX);
        d.min(self.max).min(MAX_VISIBILITY)
    }
}

/// How a [`Consumer`] behaves. Build it with [`ConsumerConfig::new`] and
/// adjust the public fields; [`Consumer::new`] validates it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// How to parse messages.
    pub parse: ParseConfig,
    /// Whether the queue is a FIFO queue. Then messages of one message
    /// group ([`Message::group_id`](crate::Message::group_id)) are handled
    /// one at a time, in the order received, and a message that does not
    /// succeed sends the messages of its group received behind it back
    /// unhandled, so that the group resumes in order. A standard queue's
    /// group ids (fair queues) order nothing. Default `false`.
    pub fifo: bool,
    /// Most handlers running at once: a message holds one of these slots
    /// from its lock's acquire to its completion record (or its release),
    /// the two round trips a message cannot avoid. Receiving ahead
    /// ([`prefetch`](Self::prefetch)) and deleting afterwards do not hold a
    /// slot.
    pub max_in_flight: usize,
    /// Most messages received ahead, waiting for a slot. A receive goes out
    /// once half of them are taken (at least one, at most
    /// `receive_batch`), so that a busy consumer receives full batches and
    /// its handlers do not wait for a receive's round trip. While they
    /// wait, the visibility heartbeat keeps them hidden as it does running
    /// ones. `None` (the default) means as many as `max_in_flight`; zero
    /// receives only for free slots (nothing waits). On a FIFO queue the
    /// messages waiting behind their group's current one wait for their
    /// group, not a slot, and do not count here (the bound on messages in
    /// progress, twice the slots plus this, still holds them).
    pub prefetch: Option<usize>,
    /// Most messages asked for per receive (1..=10).
    pub receive_batch: u32,
    /// Long-poll wait per receive (0..=20 s on SQS).
    pub wait_time: Duration,
    /// Most receive calls outstanding at once. The consumer starts with
    /// all of them and adapts: each receive that comes back empty allows
    /// one fewer (down to one), each that comes back full one more (up to
    /// this many). An idle queue thus costs a single long poll at a time
    /// once the first long polls have come back empty, and a backlog that
    /// arrives later gets all of them again within a few round trips (the
    /// count doubles per round trip).
    pub concurrent_receives: usize,
    /// Lock time to live, and the span one heartbeat buys.
    pub lock_timeout: Duration,
    /// How often a running dispatch extends its lock (and visibility). Must be
    /// shorter than `lock_timeout`.
    pub heartbeat_interval: Duration,
    /// Visibility each heartbeat sets on a running message; `None` leaves the
    /// visibility alone.
    pub visibility_extension: Option<Duration>,
    /// How long a completion record is kept (duplicates within it are acked
    /// without dispatch).
    pub dedupe_window: Duration,
    /// Visibility backoff after a failed dispatch; `None` leaves the message
    /// to the queue's visibility timeout.
    pub failure_backoff: Option<Backoff>,
    /// How long a handler may run before it is aborted (its future
    /// dropped); that counts as a failure, retried as any other. `None`
    /// lets handlers run as long as their heartbeats keep the lock, which
    /// a hung handler does forever.
    pub handler_timeout: Option<Duration>,
    /// What becomes of a message whose handler failed permanently
    /// ([`Retry::Never`](crate::handler::Retry::Never)): `false` (the
    /// default) leaves it for the dead-letter queue, `true` records it as
    /// done and deletes it.
    pub delete_permanent_failures: bool,
    /// How long a shutdown waits for running handlers before aborting them.
    pub shutdown_grace: Duration,
    /// On shutdown, make messages that were received but not started visible
    /// again at once (instead of after their visibility timeout).
    pub return_unstarted_on_shutdown: bool,
    /// Prefix of lock keys (the original's `sqs:event:`).
    pub lock_key_prefix: String,
    /// The queue this consumer polls (its name), put into the lock key of
    /// every message that came through SNS: see
    /// [`lock_key`](Self::lock_key).
    pub lock_scope: String,
    /// The consumer's own filters (`INIESTA_SQS_CONSUMER_FILTERS`). A
    /// message whose event none of them matches is never dispatched: it
    /// reached the queue without passing the subscription's filter policy
    /// (sent straight to the queue, through another subscription, or under a
    /// policy edited by hand). `None` accepts every event.
    pub filters: Option<FilterPolicy>,
    /// Delete a message whose event the filters refuse, instead of leaving
    /// it in the queue for its dead-letter queue.
    pub delete_unmatched: bool,
    /// How often a failed delete is tried again before giving up (the
    /// completion record then makes the redelivered copy harmless).
    pub delete_retries: u32,
    /// How often a failed complete is tried again (while the lock is valid).
    pub complete_retries: u32,
    /// First delay before retrying a delete or complete; doubles per try.
    pub retry_delay: Duration,
    /// First pause after a failed receive; doubles up to
    /// `receive_backoff_max` and resets after a success.
    pub receive_backoff: Duration,
    /// Longest pause after failed receives.
    pub receive_backoff_max: Duration,
    /// Pause before the next receive when one came back empty before its
    /// long-poll wait was over (short polling, or a backend that answers
    /// early): without it an empty queue would be polled in a busy loop.
    pub empty_receive_pause: Duration,
    /// How long a message ready to be deleted waits for others to share its
    /// batch delete call (a full batch of 10 goes at once). Zero deletes at
    /// once. Fewer calls cost less on SQS and on emulators whose calls scan
    /// the queue.
    pub delete_batch_window: Duration,
}

impl ConsumerConfig {
    /// The defaults of the original (lock timeout 10 s, batches of 10,
    /// 20 s long polls), with `parse` as given, for the queue named
    /// `lock_scope` (see [`lock_key`](Self::lock_key)).
    pub fn new(parse: ParseConfig, lock_scope: impl Into<String>) -> Self {
        let lock_timeout = Duration::from_secs(10);
        ConsumerConfig {
            parse,
            fifo: false,
            max_in_flight: 10,
            prefetch: None,
            receive_batch: 10,
            wait_time: Duration::from_secs(20),
            concurrent_receives: 1,
            lock_timeout,
            heartbeat_interval: lock_timeout.mul_f64(0.6),
            visibility_extension: Some(lock_timeout),
            dedupe_window: Duration::from_secs(24 * 60 * 60),
            failure_backoff: None,
            handler_timeout: None,
            delete_permanent_failures: false,
            shutdown_grace: Duration::from_secs(30),
            return_unstarted_on_shutdown: true,
            lock_key_prefix: "sqs:event:".to_owned(),
            lock_scope: lock_scope.into(),
            filters: None,
            delete_unmatched: false,
            delete_retries: 3,
            complete_retries: 2,
            retry_delay: Duration::from_millis(200),
            receive_backoff: Duration::from_millis(100),
            receive_backoff_max: Duration::from_secs(20),
            empty_receive_pause: Duration::from_millis(100),
            delete_batch_window: Duration::from_millis(10),
        }
    }

    /// The configuration the settings describe, for messages delivered in
    /// `mode` from the queue named `queue`. `concurrent_receives` unset
    /// means one receive per batch of `max_in_flight`, at most 100: enough
    /// for `max_in_flight` messages per round trip, over twice what the
    /// slots can take (a slot lasts two round trips and the handler), and,
    /// as the count adapts to the queue, no cost on an idle one. The
    /// consumer filters, when set, are checked on every message.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        mode: crate::message::DeliveryMode,
        queue: &str,
    ) -> Self {
        let mut c = ConsumerConfig::new(settings.parse_config(mode), queue);
        c.max_in_flight = settings.max_in_flight;
        c.prefetch = settings.prefetch;
        c.receive_batch = settings.receive_max_messages.clamp(1, MAX_BATCH) as u32;
        c.wait_time = settings.receive_wait_time;
        c.concurrent_receives = settings.concurrent_receives.unwrap_or_else(|| {
            settings
                .max_in_flight
                .div_ceil(c.receive_batch as usize)
                .clamp(1, 100)
        });
        c.lock_timeout = settings.lock_timeout;
        c.heartbeat_interval = settings.heartbeat();
        c.visibility_extension = Some(settings.visibility_extension_or_default());
        c.dedupe_window = settings.dedupe_window;
        c.failure_backoff = settings
            .failure_backoff_base
            .filter(|b| !b.is_zero())
            .map(|base| Backoff {
                base,
                max: settings.failure_backoff_max,
            });
        c.handler_timeout = settings.handler_timeout.filter(|t| !t.is_zero());
        c.delete_permanent_failures = settings.delete_permanent_failures;
        c.shutdown_grace = settings.shutdown_grace;
        c.delete_batch_window = settings.delete_batch_window;
        c.return_unstarted_on_shutdown = settings.return_unstarted_on_shutdown;
        c.lock_key_prefix = settings.lock_key_prefix.clone();
        // Settings are validated before they get here, so the filters parse.
        c.filters = settings.filter_policy().ok();
        c.delete_unmatched = settings.delete_unmatched_events;
        c
    }

    /// The lock key of `message`, which is also the key of its completion
    /// record:
    ///
    /// - through SNS (an envelope): `{prefix}{lock_scope}:{SNS MessageId}`.
    ///   SNS gives every subscribed queue the same MessageId, and services
    ///   often share lock servers; scoped to the queue, one service's lock or
    ///   record never swallows another service's copy of the event, while
    ///   SNS duplicates within one queue still meet each other's record.
    /// - raw delivery: `{prefix}{SQS MessageId}`, the original's
    ///   `sqs:event:{id}`. An SQS id names one message of one queue, so the
    ///   key is already scoped; keeping the original's format lets a Python
    ///   Iniesta consumer and this one exclude each other on a shared queue.
    ///
    /// ```
    /// # use iniesta_core::{ConsumerConfig, DeliveryMode, ParseConfig};
    /// # let parse = ParseConfig { mode: DeliveryMode::Raw, event_key: "iniesta_pass".into(), topic_arn: None };
    /// let config = ConsumerConfig::new(parse, "iniesta-prod-users");
    /// assert_eq!(config.lock_key_for(Some("sns-1"), "sqs-1"), "sqs:event:iniesta-prod-users:sns-1");
    /// assert_eq!(config.lock_key_for(None, "sqs-1"), "sqs:event:sqs-1");
    /// ```
    pub fn lock_key(&self, message: &Message) -> LockKey {
        let mut buf = String::new();
        self.write_lock_key(
            &mut buf,
            message.sns_message_id.as_deref(),
            &message.sqs_message_id,
        );
        LockKey::from(buf)
    }

    /// [`lock_key`](Self::lock_key) from the two ids of a message.
    pub fn lock_key_for(&self, sns_message_id: Option<&str>, sqs_message_id: &str) -> LockKey {
        let mut buf = String::new();
        self.write_lock_key(&mut buf, sns_message_id, sqs_message_id);
        LockKey::from(buf)
    }

    /// The one place the key's format is written; `buf` is reused by the
    /// machine so that a key costs one allocation, its own.
    pub(super) fn write_lock_key(
        &self,
        buf: &mut String,
        sns_message_id: Option<&str>,
        sqs_message_id: &str,
    ) {
        buf.clear();
        buf.push_str(&self.lock_key_prefix);
        match sns_message_id {
            Some(sns) => {
                buf.push_str(&self.lock_scope);
                buf.push(':');
                buf.push_str(sns);
            }
            None => buf.push_str(sqs_message_id),
        }
    }

    /// How many messages may wait for a slot: [`prefetch`](Self::prefetch),
    /// or by default `max_in_flight`.
    pub fn prefetch_or_default(&self) -> usize {
        self.prefetch.unwrap_or(self.max_in_flight)
    }

    /// Whether the consumer's own filters let `event` through.
    pub fn accepts(&self, event: &str) -> bool {
        match &self.filters {
            Some(f) => f.filters.iter().any(|filter| filter.matches(event)),
            None => true,
        }
    }

    /// Checks the values fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: String| Err(ConfigError { field, reason });
        if self.max_in_flight == 0 {
            return bad("max_in_flight", "must be at least 1".into());
        }
        if self.receive_batch == 0 || self.receive_batch as usize > MAX_BATCH {
            return bad(
                "receive_batch",
                format!("{} is not in 1..=10", self.receive_batch),
            );
        }
        if self.lock_scope.is_empty() {
            return bad(
                "lock_scope",
                "must name the queue: services on one topic would share lock keys".into(),
            );
        }
        if self.concurrent_receives == 0 {
            return bad("concurrent_receives", "must be at least 1".into());
        }
        if self.lock_timeout.is_zero() {
            return bad("lock_timeout", "must be positive".into());
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.lock_timeout {
            return bad(
                "heartbeat_interval",
                format!(
                    "{:?} must be positive and shorter than the lock timeout {:?}",
                    self.heartbeat_interval, self.lock_timeout
                ),
            );
        }
        if let Some(v) = self.visibility_extension {
            if v.is_zero() || v > MAX_VISIBILITY {
                return bad("visibility_extension", format!("{v:?} is not in (0, 12 h]"));
            }
            // Judged as SQS applies it, in whole seconds: the message must
            // stay hidden until the next heartbeat extends it again.
            let applied = crate::sqs::visibility(v);
            if applied <= self.heartbeat_interval {
                return bad(
                    "visibility_extension",
                    format!(
                        "{v:?} (applied by SQS as {applied:?}) must be longer than the \
                         heartbeat interval {:?}",
                        self.heartbeat_interval
                    ),
                );
            }
        }
        if self.handler_timeout.is_some_and(|t| t.is_zero()) {
            return bad(
                "handler_timeout",
                "must be positive (None runs handlers without a limit)".into(),
            );
        }
        if self.retry_delay.is_zero() || self.receive_backoff.is_zero() {
            return bad("retry_delay", "retry delays must be positive".into());
        }
        Ok(())
    }
}

/// A [`ConsumerConfig`] that does not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consumer setting {field}: {reason}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}
