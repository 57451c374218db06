//! The consumer state machine.
//!
//! [`Consumer`] decides everything about consuming a queue and does nothing
//! itself: it never awaits, never reads a clock and never draws randomness.
//! Time and the results of IO come in as [`Input`]s; the IO it wants comes
//! out as [`Action`]s; what happened comes out as [`Event`]s for logs and
//! metrics. A driver (such as [`crate::driver`]) runs it against real ports;
//! tests run it against in-memory ones, step by step, on a virtual clock.
//!
//! # Lifecycle of one message
//!
//! **receive → parse → acquire → dispatch → complete → delete**, or on the way:
//!
//! | lock answer | what the machine does |
//! |---|---|
//! | `Acquired` | dispatch to the handler (heartbeat extends lock and visibility while it runs) |
//! | `Busy` | skip: no dispatch, no delete (another consumer works on it) |
//! | `Done` | ack: delete without dispatch (a copy of finished work) |
//! | `Unavailable` | leave: no dispatch, no delete; the redelivery tries again |
//!
//! After a successful dispatch the lock becomes a completion record
//! (`Complete`) *before* the message is deleted, so a copy that comes back
//! after a failed delete meets the record and is acked without running the
//! handler again. After a failed dispatch the lock is released and the message
//! is left for redelivery (optionally hidden for an exponential backoff).
//! Unparseable messages are reported and left in the queue (a dead-letter
//! queue ends their journey), never deleted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::filters::FilterPolicy;
use crate::message::{
    parse_owned, Message, ParseConfig, ParseError, ReceiptHandle, ReceivedMessage, SharedMessage,
};
use crate::ports::{
    AcquireOutcome, BackendError, EntryResult, LockError, LockKey, LockToken, ReceiveRequest,
};
use crate::registry::{Delivery, Handler, HandlerRegistry};
use crate::time::Time;

pub use crate::sqs::{MAX_BATCH, MAX_VISIBILITY};

/// A map keyed by the machine's own counters ([`MessageId`], [`ReceiveId`]).
/// They are never chosen by anyone outside, so the map needs no protection
/// against hash flooding, only speed: the Fx hash (one multiplication per
/// key).
pub(crate) type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// Identifies one message in progress inside one [`Consumer`]. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Identifies one outstanding receive call. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiveId(pub u64);

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
pub struct ConsumerConfig {
    /// How to parse messages.
    pub parse: ParseConfig,
    /// Most messages in progress at once (received and not yet finished).
    /// A receive goes out once a tenth of these slots are free (at least
    /// one, at most `receive_batch`), so that a busy consumer receives full
    /// batches instead of one message per call.
    pub max_in_flight: usize,
    /// Most messages asked for per receive (1..=10).
    pub receive_batch: u32,
    /// Long-poll wait per receive (0..=20 s on SQS).
    pub wait_time: Duration,
    /// Most receive calls outstanding at once.
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
            max_in_flight: 10,
            receive_batch: 10,
            wait_time: Duration::from_secs(20),
            concurrent_receives: 1,
            lock_timeout,
            heartbeat_interval: lock_timeout.mul_f64(0.6),
            visibility_extension: Some(lock_timeout),
            dedupe_window: Duration::from_secs(24 * 60 * 60),
            failure_backoff: None,
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
    /// means one receive per batch of `max_in_flight`, at most 16. The
    /// consumer filters, when set, are checked on every message.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        mode: crate::message::DeliveryMode,
        queue: &str,
    ) -> Self {
        let mut c = ConsumerConfig::new(settings.parse_config(mode), queue);
        c.max_in_flight = settings.max_in_flight;
        c.receive_batch = settings.receive_max_messages.clamp(1, MAX_BATCH) as u32;
        c.wait_time = settings.receive_wait_time;
        c.concurrent_receives = settings.concurrent_receives.unwrap_or_else(|| {
            settings
                .max_in_flight
                .div_ceil(c.receive_batch as usize)
                .clamp(1, 16)
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
    fn write_lock_key(&self, buf: &mut String, sns_message_id: Option<&str>, sqs_message_id: &str) {
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

/// How a dispatch ended, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchOutcome {
    /// The handler returned `Ok`.
    Succeeded,
    /// The handler returned `Err` (the error's text).
    Failed(String),
    /// The handler panicked (the panic's text).
    Panicked(String),
    /// The handler was aborted after [`Action::Abort`] and has stopped.
    Aborted,
}

/// Something the driver learned, to hand to [`Consumer::handle_input`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// A [`Action::Receive`] finished. A cancelled receive MUST still be
    /// answered (with the messages that did arrive, or none).
    Received {
        /// Which receive.
        id: ReceiveId,
        /// Its result.
        result: Result<Vec<ReceivedMessage>, BackendError>,
    },
    /// One key of an [`Action::Acquire`] was answered.
    Acquired {
        /// Which message.
        id: MessageId,
        /// The backend's answer.
        outcome: AcquireOutcome,
    },
    /// A [`Action::Dispatch`] ended: the handler has stopped running.
    Dispatched {
        /// Which message.
        id: MessageId,
        /// How it ended.
        outcome: DispatchOutcome,
    },
    /// An [`Action::Extend`] was answered.
    Extended {
        /// Which message.
        id: MessageId,
        /// The new validity, counted from when the extend was sent.
        result: Result<Duration, LockError>,
    },
    /// One entry of an [`Action::Complete`] was answered.
    Completed {
        /// Which message.
        id: MessageId,
        /// The backend's answer.
        result: Result<(), LockError>,
    },
    /// An [`Action::Release`] was answered.
    Released {
        /// Which message.
        id: MessageId,
        /// The backend's answer.
        result: Result<(), LockError>,
    },
    /// One entry of an [`Action::Delete`] was answered.
    Deleted {
        /// Which message.
        id: MessageId,
        /// The queue's answer.
        result: EntryResult,
    },
    /// One entry of an [`Action::ChangeVisibility`] was answered.
    VisibilityChanged {
        /// Which message.
        id: MessageId,
        /// The queue's answer.
        result: EntryResult,
    },
    /// Begin a graceful shutdown.
    Shutdown,
}

/// IO the machine wants done. Every action MUST be carried out and answered
/// with the matching [`Input`] (one per message for batch actions), except
/// [`Action::CancelReceive`] and [`Action::Abort`], which are answered by the
/// input of the receive or dispatch they stop.
#[derive(Clone)]
#[must_use = "every action must be carried out and answered"]
#[non_exhaustive]
pub enum Action {
    /// Receive messages; answer with [`Input::Received`].
    Receive {
        /// Which receive.
        id: ReceiveId,
        /// Its parameters.
        request: ReceiveRequest,
    },
    /// Stop a receive early (shutdown); it is still answered with
    /// [`Input::Received`].
    CancelReceive {
        /// Which receive.
        id: ReceiveId,
    },
    /// Acquire locks (one backend call for all); answer with one
    /// [`Input::Acquired`] per entry.
    Acquire {
        /// The messages and their lock keys.
        entries: Vec<(MessageId, LockKey)>,
        /// Lock time to live.
        ttl: Duration,
    },
    /// Run a handler; answer with [`Input::Dispatched`] when it has stopped.
    /// A panic is [`DispatchOutcome::Panicked`], not a crash.
    Dispatch {
        /// Which message.
        id: MessageId,
        /// The handler to run.
        handler: Arc<dyn Handler>,
        /// What it gets.
        delivery: Delivery,
    },
    /// Stop a running handler (its lock is about to expire, or shutdown's
    /// grace ran out). The driver MUST stop it (drop its future) and then
    /// answer its dispatch with [`DispatchOutcome::Aborted`] (or the outcome
    /// it reached first).
    Abort {
        /// Which message.
        id: MessageId,
        /// Why. For [`AbortReason::LockExpired`] and
        /// [`AbortReason::LockLost`] the driver MUST also fire the
        /// delivery's [`LockLost`](crate::LockLost) signal, so that work
        /// the handler started elsewhere can stop.
        reason: AbortReason,
    },
    /// Extend a lock; answer with [`Input::Extended`].
    Extend {
        /// Which message.
        id: MessageId,
        /// Lock key.
        key: LockKey,
        /// Our token.
        token: LockToken,
        /// New time to live.
        ttl: Duration,
    },
    /// Change visibility timeouts (one batch call); answer with one
    /// [`Input::VisibilityChanged`] per entry.
    ChangeVisibility {
        /// The messages, their receipt handles and new timeouts.
        entries: Vec<(MessageId, ReceiptHandle, Duration)>,
    },
    /// Turn locks into completion records (one backend call for all);
    /// answer with one [`Input::Completed`] per entry.
    Complete {
        /// The messages, their lock keys and our tokens.
        entries: Vec<(MessageId, LockKey, LockToken)>,
        /// How long to keep the records.
        keep_for: Duration,
    },
    /// Release a lock; answer with [`Input::Released`].
    Release {
        /// Which message.
        id: MessageId,
        /// Lock key.
        key: LockKey,
        /// Our token.
        token: LockToken,
    },
    /// Delete messages (one batch call); answer with one [`Input::Deleted`]
    /// per entry.
    Delete {
        /// The messages and their receipt handles.
        entries: Vec<(MessageId, ReceiptHandle)>,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Receive { id, request } => f
                .debug_struct("Receive")
                .field("id", id)
                .field("request", request)
                .finish(),
            Action::CancelReceive { id } => {
                f.debug_struct("CancelReceive").field("id", id).finish()
            }
            Action::Acquire { entries, ttl } => f
                .debug_struct("Acquire")
                .field("entries", entries)
                .field("ttl", ttl)
                .finish(),
            Action::Dispatch { id, delivery, .. } => f
                .debug_struct("Dispatch")
                .field("id", id)
                .field("event", &delivery.message.event)
                .field("key", &delivery.message.key())
                .finish(),
            Action::Abort { id, reason } => f
                .debug_struct("Abort")
                .field("id", id)
                .field("reason", reason)
                .finish(),
            Action::Extend { id, key, .. } => f
                .debug_struct("Extend")
                .field("id", id)
                .field("key", key)
                .finish(),
            Action::ChangeVisibility { entries } => f
                .debug_struct("ChangeVisibility")
                .field("entries", entries)
                .finish(),
            Action::Complete { entries, keep_for } => f
                .debug_struct("Complete")
                .field(
                    "entries",
                    &entries
                        .iter()
                        .map(|(id, key, _)| (id, key))
                        .collect::<Vec<_>>(),
                )
                .field("keep_for", keep_for)
                .finish(),
            Action::Release { id, key, .. } => f
                .debug_struct("Release")
                .field("id", id)
                .field("key", key)
                .finish(),
            Action::Delete { entries } => {
                f.debug_struct("Delete").field("entries", entries).finish()
            }
        }
    }
}

/// Why a running handler was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// The lock's validity ran out (the handler outlived its lock).
    LockExpired,
    /// The lock backend said the lock is no longer ours.
    LockLost,
    /// Shutdown's grace period ran out.
    ShutdownGrace,
}

/// What happened, for logs and metrics. Each event names the message it is
/// about.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A receive returned messages.
    Received {
        /// How many.
        count: usize,
    },
    /// A receive failed; the next is delayed.
    ReceiveFailed {
        /// The queue's error.
        error: BackendError,
        /// The pause before the next receive.
        retry_in: Duration,
    },
    /// A message could not be parsed; it stays in the queue.
    Malformed {
        /// The SQS message id.
        message_id: String,
        /// Receive count of the delivery.
        receive_count: u32,
        /// Why.
        error: ParseError,
    },
    /// Someone else holds the lock: skipped (not dispatched, not deleted).
    Skipped {
        /// The message.
        message: SharedMessage,
    },
    /// A completion record exists: a duplicate of finished work, deleted
    /// without dispatch.
    Duplicate {
        /// The message.
        message: SharedMessage,
    },
    /// The lock backend could not answer; the message is left for
    /// redelivery.
    LockUnavailable {
        /// The message.
        message: SharedMessage,
        /// The backend's error.
        error: LockError,
    },
    /// The event does not match the consumer's own filters: never
    /// dispatched; deleted if so configured, else left in the queue for its
    /// dead-letter queue.
    Unmatched {
        /// The message.
        message: SharedMessage,
        /// Whether it is being deleted (else it is left in the queue).
        deleted: bool,
    },
    /// No handler and no default handler: left for redelivery.
    NoHandler {
        /// The message.
        message: SharedMessage,
    },
    /// A handler started.
    Dispatched {
        /// The message.
        message: SharedMessage,
    },
    /// A handler returned `Ok`.
    Succeeded {
        /// The message.
        message: SharedMessage,
        /// How long it ran.
        elapsed: Duration,
    },
    /// A handler failed, panicked or was aborted; the message is left for
    /// redelivery.
    Failed {
        /// The message.
        message: SharedMessage,
        /// How long it ran.
        elapsed: Duration,
        /// How it ended.
        outcome: DispatchOutcome,
    },
    /// A running handler is being aborted.
    Aborting {
        /// The message.
        message: SharedMessage,
        /// Why.
        reason: AbortReason,
    },
    /// A heartbeat could not extend the lock (transient); retried soon.
    ExtendFailed {
        /// The message.
        message: SharedMessage,
        /// The backend's error.
        error: LockError,
    },
    /// The completion record could not be written; the message is deleted
    /// anyway (its handler succeeded).
    CompleteFailed {
        /// The message.
        message: SharedMessage,
        /// The backend's error.
        error: LockError,
    },
    /// A release failed; the lock expires by its TTL.
    ReleaseFailed {
        /// The message.
        message: SharedMessage,
        /// The backend's error.
        error: LockError,
    },
    /// The message was deleted from the queue.
    Deleted {
        /// The message.
        message: SharedMessage,
    },
    /// A delete failed.
    DeleteFailed {
        /// The message.
        message: SharedMessage,
        /// The queue's error.
        error: BackendError,
        /// Whether it will be tried again (else the completion record makes
        /// the redelivered copy harmless).
        will_retry: bool,
    },
    /// A visibility change failed.
    VisibilityChangeFailed {
        /// The SQS message id.
        message_id: String,
        /// The queue's error.
        error: BackendError,
    },
    /// A message was made visible again after a failure (backoff) or on
    /// shutdown.
    Returned {
        /// The SQS message id.
        message_id: String,
        /// After how long it becomes visible.
        delay: Duration,
    },
    /// Shutdown began.
    ShutdownStarted {
        /// Messages in progress at that moment.
        in_flight: usize,
    },
    /// Shutdown finished: nothing runs and nothing is in progress.
    Stopped,
}

#[derive(Debug)]
enum State {
    /// Waiting for the lock answer.
    Acquiring { sent_at: Time },
    /// The handler runs.
    Running(Running),
    /// Waiting for the completion record to be written.
    Completing {
        token: LockToken,
        valid_until: Time,
        attempts: u32,
        retry_at: Option<Time>,
    },
    /// Waiting for (or retrying) the delete.
    Deleting {
        attempts: u32,
        retry_at: Option<Time>,
        queued: bool,
    },
    /// Waiting for the release; then maybe return the message.
    Releasing { return_after: Option<Duration> },
    /// Waiting for a visibility change that ends this message's journey
    /// (`sent` is false while a heartbeat's visibility change is still out:
    /// the return waits for it, so the two cannot arrive out of order).
    Returning { delay: Duration, sent: bool },
    /// Done; waiting only for heartbeat calls still out.
    Finished,
}

#[derive(Debug)]
struct Running {
    token: LockToken,
    valid_until: Time,
    started: Time,
    next_heartbeat: Time,
    aborting: bool,
    lock_expired: bool,
}

#[derive(Debug)]
struct Entry {
    handle: ReceiptHandle,
    /// The SQS message id of a malformed message; a parsed one carries it in
    /// `message`.
    malformed_id: Option<String>,
    /// `None` for a malformed message (only ever returned to the queue).
    message: Option<SharedMessage>,
    lock_key: LockKey,
    state: State,
    /// The entry's position in the timer set.
    timer: Option<Time>,
    /// When the outstanding heartbeat extend was sent, if one is out.
    extend_sent_at: Option<Time>,
    /// Heartbeat visibility changes still out.
    heartbeat_vis: u32,
}

impl Entry {
    /// A message just received, in `state`, with no timer and no heartbeat
    /// call out.
    fn new(
        handle: ReceiptHandle,
        message: Option<SharedMessage>,
        malformed_id: Option<String>,
        lock_key: LockKey,
        state: State,
    ) -> Self {
        Entry {
            handle,
            malformed_id,
            message,
            lock_key,
            state,
            timer: None,
            extend_sent_at: None,
            heartbeat_vis: 0,
        }
    }

    /// The SQS message id of this delivery.
    fn sqs_id(&self) -> String {
        match (&self.message, &self.malformed_id) {
            (Some(m), _) => m.sqs_message_id.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => String::new(),
        }
    }

    /// The parsed message. Only malformed messages lack one, and they never
    /// leave the `Returning` state, where it is not asked for.
    fn msg(&self) -> SharedMessage {
        self.message
            .clone()
            .expect("a message past parsing has its parsed form")
    }
}

/// The consumer state machine. See the [module docs](self) for the rules.
///
/// # Driving contract
///
/// 1. Create it with [`Consumer::new`], passing the current time.
/// 2. Loop:
///    - Drain [`poll_action`](Self::poll_action) until `None`, carrying out
///      every action (concurrently is fine, and intended). Every action except
///      `CancelReceive` and `Abort` MUST eventually be answered through
///      [`handle_input`](Self::handle_input), exactly once per message or
///      receive it names.
///    - Drain [`poll_event`](Self::poll_event) (logging, metrics); dropping
///      events is allowed.
///    - If [`is_finished`](Self::is_finished), stop.
///    - Wait until the earliest of: an answer arrives, or the instant
///      [`poll_timeout`](Self::poll_timeout) returns. Then call
///      `handle_input` for each answer and/or
///      [`handle_timeout`](Self::handle_timeout), with the current time.
/// 3. To shut down, hand it [`Input::Shutdown`] and keep driving until
///    `is_finished`.
///
/// Time passed in MUST NOT go backwards (a smaller time is treated as the
/// last one seen). Answers for messages the machine no longer tracks are
/// ignored, so a late answer is harmless.
pub struct Consumer {
    config: ConsumerConfig,
    handlers: HandlerRegistry,
    now: Time,
    next_id: u64,
    entries: IdMap<MessageId, Entry>,
    /// (deadline, message), earliest on top. An entry is live while its
    /// message is tracked with exactly that deadline (`Entry::timer`);
    /// rescheduling or forgetting a message leaves the old entry behind,
    /// stale, instead of searching for it. Stale entries are dropped when
    /// they reach the top, after every input and timeout, so the top is
    /// always live when [`Consumer::poll_timeout`] reads it.
    timers: BinaryHeap<Reverse<(Time, MessageId)>>,
    /// Whether an entry of `timers` went stale since the last clean-up.
    timers_stale: bool,
    /// Outstanding receives: slots reserved, and when each was sent.
    receives: IdMap<ReceiveId, (u32, Time)>,
    reserved: usize,
    receive_failures: u32,
    receive_resume_at: Option<Time>,
    pending_acquire: Vec<(MessageId, LockKey)>,
    /// Scratch space for building lock keys.
    key_buf: String,
    /// Completion records to write, sent as one batch per round.
    pending_complete: Vec<(MessageId, LockKey, LockToken)>,
    pending_delete: VecDeque<MessageId>,
    /// When the oldest pending delete must go out, full batch or not.
    delete_due: Option<Time>,
    pending_visibility: Vec<(MessageId, ReceiptHandle, Duration)>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    shutdown_deadline: Option<Time>,
    stopped_reported: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("now", &self.now)
            .field("in_flight", &self.entries.len())
            .field("receives", &self.receives.len())
            .field("shutting_down", &self.shutdown_deadline.is_some())
            .finish()
    }
}

impl Consumer {
    /// A consumer that routes to `handlers`, starting at `now`.
    pub fn new(
        config: ConsumerConfig,
        handlers: HandlerRegistry,
        now: Time,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut c = Consumer {
            config,
            handlers,
            now,
            next_id: 0,
            entries: IdMap::default(),
            timers: BinaryHeap::new(),
            timers_stale: false,
            receives: IdMap::default(),
            reserved: 0,
            receive_failures: 0,
            receive_resume_at: None,
            pending_acquire: Vec::new(),
            key_buf: String::new(),
            pending_complete: Vec::new(),
            pending_delete: VecDeque::new(),
            delete_due: None,
            pending_visibility: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            shutdown_deadline: None,
            stopped_reported: false,
        };
        c.fill_receives();
        Ok(c)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Messages in progress (received and not finished).
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// Whether a shutdown has finished: no receive outstanding, no message in
    /// progress, no handler running, nothing left to do.
    pub fn is_finished(&self) -> bool {
        self.shutdown_deadline.is_some()
            && self.entries.is_empty()
            && self.receives.is_empty()
            && self.actions.is_empty()
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.flush();
        self.actions.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) at the latest,
    /// if no input arrives first. `None`: only an input can make progress.
    pub fn poll_timeout(&self) -> Option<Time> {
        let mut t = self.timers.peek().map(|Reverse((t, _))| *t);
        for other in [
            self.receive_resume_at,
            self.shutdown_deadline.filter(|_| self.any_running()),
            self.delete_due,
        ] {
            t = match (t, other) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        t
    }

    /// Time has passed: run every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        if self.receive_resume_at.is_some_and(|t| t <= self.now) {
            self.receive_resume_at = None;
        }
        if self.shutdown_deadline.is_some_and(|t| t <= self.now) {
            let running: Vec<MessageId> = self
                .entries
                .iter()
                .filter(|(_, e)| matches!(&e.state, State::Running(r) if !r.aborting))
                .map(|(id, _)| *id)
                .collect();
            for id in running {
                self.abort(id, AbortReason::ShutdownGrace);
            }
        }
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > self.now {
                break;
            }
            self.timers.pop();
            match self.entries.get_mut(&id) {
                Some(e) if e.timer == Some(t) => e.timer = None,
                _ => continue, // stale, and now gone
            }
            self.on_deadline(id);
        }
        self.drop_stale_timers();
        self.fill_receives();
    }

    /// An IO answer (or a shutdown request) arrived at `now`.
    pub fn handle_input(&mut self, now: Time, input: Input) {
        self.advance(now);
        match input {
            Input::Received { id, result } => self.on_received(id, result),
            Input::Acquired { id, outcome } => self.on_acquired(id, outcome),
            Input::Dispatched { id, outcome } => self.on_dispatched(id, outcome),
            Input::Extended { id, result } => self.on_extended(id, result),
            Input::Completed { id, result } => self.on_completed(id, result),
            Input::Released { id, result } => self.on_released(id, result),
            Input::Deleted { id, result } => self.on_deleted(id, result),
            Input::VisibilityChanged { id, result } => self.on_visibility_changed(id, result),
            Input::Shutdown => self.on_shutdown(),
        }
        self.drop_stale_timers();
        self.fill_receives();
    }

    fn advance(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    fn any_running(&self) -> bool {
        self.entries
            .values()
            .any(|e| matches!(&e.state, State::Running(r) if !r.aborting))
    }

    // ----- receiving -------------------------------------------------------

    fn fill_receives(&mut self) {
        if self.shutdown_deadline.is_some() || self.receive_resume_at.is_some() {
            return;
        }
        let least = self.least_receive();
        while self.receives.len() < self.config.concurrent_receives {
            let used = self.entries.len() + self.reserved;
            let free = self.config.max_in_flight.saturating_sub(used);
            if free < least {
                break;
            }
            let max = free.min(self.config.receive_batch as usize) as u32;
            let id = ReceiveId(self.fresh_id());
            self.receives.insert(id, (max, self.now));
            self.reserved += max as usize;
            self.actions.push_back(Action::Receive {
                id,
                request: ReceiveRequest {
                    max_messages: max,
                    wait_time: self.config.wait_time,
                    visibility_timeout: None,
                },
            });
        }
    }

    /// The fewest messages a receive asks for: a tenth of `max_in_flight`,
    /// at most a full batch. Receiving as soon as one slot frees up would,
    /// under a backlog, fetch one or two messages per call (every call is
    /// billed, and each is a round trip); waiting for a tenth of the slots
    /// keeps at least nine tenths busy and lets a busy consumer receive full
    /// batches. With fewer than 20 slots it is 1: receive as soon as one
    /// frees up.
    fn least_receive(&self) -> usize {
        (self.config.max_in_flight / 10).clamp(1, self.config.receive_batch as usize)
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn on_received(&mut self, id: ReceiveId, result: Result<Vec<ReceivedMessage>, BackendError>) {
        self.take_received(id, result);
        // A cancelled receive may be the last thing a shutdown waits for;
        // asked only now, after the messages it brought are in progress.
        self.report_if_stopped();
    }

    fn take_received(&mut self, id: ReceiveId, result: Result<Vec<ReceivedMessage>, BackendError>) {
        let Some((reserved, sent_at)) = self.receives.remove(&id) else {
            return;
        };
        self.reserved -= reserved as usize;
        let messages = match result {
            Ok(m) => {
                self.receive_failures = 0;
                m
            }
            Err(error) => {
                let exp = self.receive_failures.min(16);
                self.receive_failures += 1;
                let retry_in = self
                    .config
                    .receive_backoff
                    .checked_mul(1 << exp)
                    .unwrap_or(Duration::MAX)
                    .min(self.config.receive_backoff_max);
                self.receive_resume_at = Some(self.now + retry_in);
                self.events
                    .push_back(Event::ReceiveFailed { error, retry_in });
                return;
            }
        };
        if messages.is_empty() {
            let waited = self.now.saturating_duration_since(sent_at);
            let early = waited < self.config.wait_time || self.config.wait_time.is_zero();
            if early && self.shutdown_deadline.is_none() {
                let resume = self.now + self.config.empty_receive_pause;
                self.receive_resume_at =
                    Some(self.receive_resume_at.map_or(resume, |t| t.max(resume)));
            }
            return;
        }
        self.events.push_back(Event::Received {
            count: messages.len(),
        });
        for raw in messages {
            self.on_message(raw);
        }
    }

    fn on_message(&mut self, raw: ReceivedMessage) {
        let (message, handle) = match parse_owned(raw, &self.config.parse) {
            Ok((m, handle)) => (Arc::new(m), handle),
            Err((error, raw)) => {
                let receive_count = raw.receive_count();
                self.events.push_back(Event::Malformed {
                    message_id: raw.message_id.clone(),
                    receive_count,
                    error,
                });
                // Left in the queue; a backoff keeps it from spinning, and a
                // redrive policy moves it to the dead-letter queue.
                if let Some(b) = self.config.failure_backoff {
                    let id = MessageId(self.fresh_id());
                    let state = State::Acquiring { sent_at: self.now };
                    self.entries.insert(
                        id,
                        Entry::new(
                            raw.receipt_handle,
                            None,
                            Some(raw.message_id),
                            LockKey::from(""),
                            state,
                        ),
                    );
                    self.return_or_forget(id, b.delay(receive_count));
                }
                return;
            }
        };
        let id = MessageId(self.fresh_id());
        if !self.config.accepts(&message.event) {
            self.on_unmatched(id, message, handle);
            return;
        }
        // Built in a reused buffer: one allocation, the shared key's own.
        self.config.write_lock_key(
            &mut self.key_buf,
            message.sns_message_id.as_deref(),
            &message.sqs_message_id,
        );
        let lock_key = LockKey::from(self.key_buf.as_str());
        let shutting_down = self.shutdown_deadline.is_some();
        let state = State::Acquiring { sent_at: self.now };
        let acquire_key = (!shutting_down).then(|| lock_key.clone());
        self.entries
            .insert(id, Entry::new(handle, Some(message), None, lock_key, state));
        match acquire_key {
            None => self.return_or_forget(id, Duration::ZERO),
            Some(key) => self.pending_acquire.push((id, key)),
        }
    }

    /// A message whose event the consumer's own filters refuse: never
    /// dispatched. Deleted if so configured, else left in the queue (hidden
    /// for the failure backoff, if one is set) for its dead-letter queue.
    fn on_unmatched(&mut self, id: MessageId, message: SharedMessage, handle: ReceiptHandle) {
        let delete = self.config.delete_unmatched;
        let receive_count = message.receive_count;
        self.events.push_back(Event::Unmatched {
            message: message.clone(),
            deleted: delete,
        });
        let state = State::Acquiring { sent_at: self.now };
        self.entries.insert(
            id,
            Entry::new(handle, Some(message), None, LockKey::from(""), state),
        );
        match self.config.failure_backoff {
            _ if delete => self.start_delete(id),
            Some(b) => self.return_or_forget(id, b.delay(receive_count)),
            None => self.finish(id),
        }
    }

    // ----- locking and dispatch --------------------------------------------

    fn on_acquired(&mut self, id: MessageId, outcome: AcquireOutcome) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let State::Acquiring { sent_at } = entry.state else {
            return;
        };
        let message = entry.msg();
        match outcome {
            AcquireOutcome::Busy => {
                self.events.push_back(Event::Skipped { message });
                self.finish(id);
            }
            AcquireOutcome::Done => {
                self.events.push_back(Event::Duplicate { message });
                self.start_delete(id);
            }
            AcquireOutcome::Unavailable(error) => {
                self.events
                    .push_back(Event::LockUnavailable { message, error });
                if self.shutdown_deadline.is_some() {
                    self.return_or_forget(id, Duration::ZERO);
                } else {
                    self.finish(id);
                }
            }
            AcquireOutcome::Acquired { token, validity } => {
                let valid_until = sent_at + validity;
                if self.shutdown_deadline.is_some() {
                    self.release(id, token, self.shutdown_return());
                    return;
                }
                if valid_until <= self.now {
                    // Acquired too late to use: treat as unavailable.
                    self.events.push_back(Event::LockUnavailable {
                        message,
                        error: LockError::Unavailable(
                            "lock validity ran out before it arrived".into(),
                        ),
                    });
                    self.release(id, token, None);
                    return;
                }
                let Some(handler) = self.handlers.get(&message.event).cloned() else {
                    self.events.push_back(Event::NoHandler {
                        message: message.clone(),
                    });
                    let back = self
                        .config
                        .failure_backoff
                        .map(|b| b.delay(message.receive_count));
                    self.release(id, token, back);
                    return;
                };
                let next_heartbeat = self.now + self.config.heartbeat_interval;
                let entry = self.entries.get_mut(&id).expect("entry exists");
                entry.state = State::Running(Running {
                    token: token.clone(),
                    valid_until,
                    started: self.now,
                    next_heartbeat,
                    aborting: false,
                    lock_expired: false,
                });
                self.events.push_back(Event::Dispatched {
                    message: message.clone(),
                });
                self.actions.push_back(Action::Dispatch {
                    id,
                    handler,
                    delivery: Delivery::new(message, token),
                });
                self.reschedule(id);
            }
        }
    }

    fn on_dispatched(&mut self, id: MessageId, outcome: DispatchOutcome) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let State::Running(run) = &entry.state else {
            return;
        };
        let message = entry.msg();
        let elapsed = self.now.saturating_duration_since(run.started);
        let token = run.token.clone();
        let valid_until = run.valid_until;
        match outcome {
            DispatchOutcome::Succeeded => {
                self.events.push_back(Event::Succeeded { message, elapsed });
                let entry = self.entries.get_mut(&id).expect("entry exists");
                entry.state = State::Completing {
                    token: token.clone(),
                    valid_until,
                    attempts: 0,
                    retry_at: None,
                };
                self.pending_complete
                    .push((id, entry.lock_key.clone(), token));
                self.reschedule(id);
            }
            outcome => {
                self.events.push_back(Event::Failed {
                    message: message.clone(),
                    elapsed,
                    outcome,
                });
                let back = if self.shutdown_deadline.is_some() {
                    self.shutdown_return()
                } else {
                    self.config
                        .failure_backoff
                        .map(|b| b.delay(message.receive_count))
                };
                self.release(id, token, back);
            }
        }
    }

    fn on_extended(&mut self, id: MessageId, result: Result<Duration, LockError>) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Some(sent_at) = entry.extend_sent_at.take() else {
            return;
        };
        let message = entry.msg();
        let State::Running(run) = &mut entry.state else {
            self.forget_if_quiet(id);
            return;
        };
        match result {
            Ok(validity) => {
                if !run.lock_expired {
                    run.valid_until = run.valid_until.max(sent_at + validity);
                }
            }
            Err(LockError::NotHeld) => {
                self.events.push_back(Event::ExtendFailed {
                    message,
                    error: LockError::NotHeld,
                });
                self.abort(id, AbortReason::LockLost);
            }
            Err(error) => {
                // Try again soon, while the lock is still valid.
                let soon = self.now + self.config.heartbeat_interval / 4;
                run.next_heartbeat = run.next_heartbeat.min(soon);
                self.events
                    .push_back(Event::ExtendFailed { message, error });
            }
        }
        self.reschedule(id);
    }

    fn abort(&mut self, id: MessageId, reason: AbortReason) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let State::Running(run) = &mut entry.state else {
            return;
        };
        if matches!(reason, AbortReason::LockExpired | AbortReason::LockLost) {
            run.lock_expired = true;
        }
        if run.aborting {
            return;
        }
        run.aborting = true;
        let message = entry.msg();
        self.events.push_back(Event::Aborting { message, reason });
        self.actions.push_back(Action::Abort { id, reason });
        self.reschedule(id);
    }

    // ----- finishing ------------------------------------------------------

    fn on_completed(&mut self, id: MessageId, result: Result<(), LockError>) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let State::Completing {
            valid_until,
            attempts,
            retry_at,
            ..
        } = &mut entry.state
        else {
            return;
        };
        if retry_at.is_some() {
            return;
        }
        match result {
            Ok(()) => self.start_delete(id),
            // A transient failure: try again while the lock is still ours.
            Err(LockError::Unavailable(_))
                if *attempts < self.config.complete_retries
                    && self.now + self.config.retry_delay < *valid_until =>
            {
                *attempts += 1;
                *retry_at = Some(self.now + self.config.retry_delay * *attempts);
                self.reschedule(id);
            }
            Err(error) => {
                // The handler succeeded: delete anyway. Without the record a
                // redelivery after a failed delete would run it again.
                let message = entry.msg();
                self.events
                    .push_back(Event::CompleteFailed { message, error });
                self.start_delete(id);
            }
        }
    }

    fn start_delete(&mut self, id: MessageId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.state = State::Deleting {
                attempts: 0,
                retry_at: None,
                queued: true,
            };
            self.queue_delete(id);
            self.reschedule(id);
        }
    }

    fn on_deleted(&mut self, id: MessageId, result: EntryResult) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let message = entry.msg();
        let State::Deleting {
            attempts,
            retry_at,
            queued,
        } = &mut entry.state
        else {
            return;
        };
        if *queued || retry_at.is_some() {
            return;
        }
        match result {
            Ok(()) => {
                self.events.push_back(Event::Deleted { message });
                self.finish(id);
            }
            Err(error) => {
                let will_retry = *attempts < self.config.delete_retries;
                if will_retry {
                    let delay = self
                        .config
                        .retry_delay
                        .checked_mul(1 << (*attempts).min(16))
                        .unwrap_or(MAX_VISIBILITY);
                    *attempts += 1;
                    *retry_at = Some(self.now + delay);
                }
                self.events.push_back(Event::DeleteFailed {
                    message,
                    error,
                    will_retry,
                });
                if will_retry {
                    self.reschedule(id);
                } else {
                    self.finish(id);
                }
            }
        }
    }

    fn release(&mut self, id: MessageId, token: LockToken, return_after: Option<Duration>) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = State::Releasing { return_after };
        self.actions.push_back(Action::Release {
            id,
            key: entry.lock_key.clone(),
            token,
        });
        self.reschedule(id);
    }

    fn on_released(&mut self, id: MessageId, result: Result<(), LockError>) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let State::Releasing { return_after } = entry.state else {
            return;
        };
        if let Err(error) = result {
            if error != LockError::NotHeld {
                let message = entry.msg();
                self.events
                    .push_back(Event::ReleaseFailed { message, error });
            }
        }
        match return_after {
            Some(delay) => self.return_or_forget(id, delay),
            None => self.finish(id),
        }
    }

    fn shutdown_return(&self) -> Option<Duration> {
        self.config
            .return_unstarted_on_shutdown
            .then_some(Duration::ZERO)
    }

    /// Hides (or shows) the message for `delay` and ends its journey, or
    /// just ends it when returning is off during shutdown.
    fn return_or_forget(&mut self, id: MessageId, delay: Duration) {
        if self.shutdown_deadline.is_some()
            && !self.config.return_unstarted_on_shutdown
            && delay.is_zero()
        {
            self.finish(id);
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let delay = delay.min(MAX_VISIBILITY);
        let sent = entry.heartbeat_vis == 0;
        entry.state = State::Returning { delay, sent };
        if sent {
            self.pending_visibility
                .push((id, entry.handle.clone(), delay));
        }
        self.reschedule(id);
    }

    fn on_visibility_changed(&mut self, id: MessageId, result: EntryResult) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let message_id = entry.sqs_id();
        if let State::Returning { delay, sent: true } = entry.state {
            match result {
                Ok(()) => self.events.push_back(Event::Returned { message_id, delay }),
                Err(error) => self
                    .events
                    .push_back(Event::VisibilityChangeFailed { message_id, error }),
            }
            self.finish(id);
            return;
        }
        // A heartbeat's visibility extension.
        let Some(left) = entry.heartbeat_vis.checked_sub(1) else {
            return;
        };
        entry.heartbeat_vis = left;
        if let (Err(error), State::Running(_)) = (result, &entry.state) {
            self.events
                .push_back(Event::VisibilityChangeFailed { message_id, error });
        }
        match entry.state {
            State::Returning { delay, sent: false } if left == 0 => {
                entry.state = State::Returning { delay, sent: true };
                self.pending_visibility
                    .push((id, entry.handle.clone(), delay));
            }
            State::Finished => self.forget_if_quiet(id),
            _ => {}
        }
    }

    /// Ends a message's journey: forgets it, or parks it until the heartbeat
    /// calls still out are answered (so that nothing is in flight when a
    /// shutdown finishes).
    fn finish(&mut self, id: MessageId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = State::Finished;
        self.reschedule(id);
        self.forget_if_quiet(id);
    }

    fn forget_if_quiet(&mut self, id: MessageId) {
        if let Some(e) = self.entries.get(&id) {
            if matches!(e.state, State::Finished)
                && e.extend_sent_at.is_none()
                && e.heartbeat_vis == 0
            {
                self.forget(id);
            }
        }
    }

    fn forget(&mut self, id: MessageId) {
        if let Some(e) = self.entries.remove(&id) {
            // Its timer entry, if any, is stale from now on.
            self.timers_stale |= e.timer.is_some();
        }
        self.report_if_stopped();
    }

    /// Reports [`Event::Stopped`] once, when a shutdown has nothing left.
    fn report_if_stopped(&mut self) {
        if self.shutdown_deadline.is_some()
            && self.entries.is_empty()
            && self.receives.is_empty()
            && !self.stopped_reported
        {
            self.stopped_reported = true;
            self.events.push_back(Event::Stopped);
        }
    }

    // ----- shutdown -------------------------------------------------------

    fn on_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(self.now + self.config.shutdown_grace);
        self.receive_resume_at = None;
        self.events.push_back(Event::ShutdownStarted {
            in_flight: self.entries.len(),
        });
        let mut ids: Vec<ReceiveId> = self.receives.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.actions.push_back(Action::CancelReceive { id });
        }
        if self.entries.is_empty() && self.receives.is_empty() {
            self.stopped_reported = true;
            self.events.push_back(Event::Stopped);
        }
    }

    // ----- timers ---------------------------------------------------------

    fn deadline_of(&self, entry: &Entry) -> Option<Time> {
        match &entry.state {
            State::Running(r) if !r.aborting => {
                let hb = if entry.extend_sent_at.is_none() {
                    Some(r.next_heartbeat)
                } else {
                    None
                };
                Some(hb.map_or(r.valid_until, |h| h.min(r.valid_until)))
            }
            State::Completing { retry_at, .. } | State::Deleting { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    fn reschedule(&mut self, id: MessageId) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let new = self.deadline_of(entry);
        if new == entry.timer {
            return;
        }
        // The old entry (if any) goes stale: `timer` no longer names it.
        self.timers_stale |= entry.timer.is_some();
        if let Some(t) = new {
            self.timers.push(Reverse((t, id)));
        }
        self.entries.get_mut(&id).expect("entry exists").timer = new;
    }

    /// Drops stale entries from the top of the timer heap (see
    /// [`Consumer::timers`]), and all of them when they outnumber the live
    /// ones, so the heap stays in proportion to the messages in progress.
    fn drop_stale_timers(&mut self) {
        if !std::mem::take(&mut self.timers_stale) {
            return;
        }
        let entries = &self.entries;
        let live = |&Reverse((t, id)): &Reverse<(Time, MessageId)>| {
            entries.get(&id).is_some_and(|e| e.timer == Some(t))
        };
        if self.timers.len() > 2 * entries.len() + 64 {
            self.timers.retain(live);
        }
        while let Some(top) = self.timers.peek() {
            if live(top) {
                break;
            }
            self.timers.pop();
        }
    }

    fn on_deadline(&mut self, id: MessageId) {
        let now = self.now;
        let hb = self.config.heartbeat_interval;
        let ttl = self.config.lock_timeout;
        let vis = self.config.visibility_extension;
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        match &mut entry.state {
            State::Running(run) if !run.aborting => {
                if run.valid_until <= now {
                    self.abort(id, AbortReason::LockExpired);
                    return;
                }
                if entry.extend_sent_at.is_none() && run.next_heartbeat <= now {
                    entry.extend_sent_at = Some(now);
                    run.next_heartbeat = now + hb;
                    self.actions.push_back(Action::Extend {
                        id,
                        key: entry.lock_key.clone(),
                        token: run.token.clone(),
                        ttl,
                    });
                    if let Some(v) = vis {
                        entry.heartbeat_vis += 1;
                        self.pending_visibility.push((id, entry.handle.clone(), v));
                    }
                }
            }
            State::Completing {
                token, retry_at, ..
            } if retry_at.is_some_and(|t| t <= now) => {
                *retry_at = None;
                self.pending_complete
                    .push((id, entry.lock_key.clone(), token.clone()));
            }
            State::Deleting {
                retry_at, queued, ..
            } if retry_at.is_some_and(|t| t <= now) => {
                *retry_at = None;
                *queued = true;
                self.queue_delete(id);
            }
            _ => {}
        }
        self.reschedule(id);
    }

    // ----- batching -------------------------------------------------------

    /// Queues a delete for the next batch.
    fn queue_delete(&mut self, id: MessageId) {
        self.pending_delete.push_back(id);
        if self.delete_due.is_none() {
            self.delete_due = Some(self.now + self.config.delete_batch_window);
        }
    }

    /// Turns pending per-message wishes into batch actions. Deletes go out
    /// in full batches at once, and the rest when the oldest has waited the
    /// batch window (at once while shutting down).
    fn flush(&mut self) {
        if let Some(entries) = take_batch(&mut self.pending_acquire) {
            self.actions.push_back(Action::Acquire {
                entries,
                ttl: self.config.lock_timeout,
            });
        }
        if let Some(entries) = take_batch(&mut self.pending_complete) {
            self.actions.push_back(Action::Complete {
                entries,
                keep_for: self.config.dedupe_window,
            });
        }
        let due =
            self.delete_due.is_some_and(|t| t <= self.now) || self.shutdown_deadline.is_some();
        while self.pending_delete.len() >= MAX_BATCH || (due && !self.pending_delete.is_empty()) {
            let n = self.pending_delete.len().min(MAX_BATCH);
            let mut entries = Vec::with_capacity(n);
            for id in self.pending_delete.drain(..n) {
                if let Some(e) = self.entries.get_mut(&id) {
                    if let State::Deleting { queued, .. } = &mut e.state {
                        *queued = false;
                        entries.push((id, e.handle.clone()));
                    }
                }
            }
            if !entries.is_empty() {
                self.actions.push_back(Action::Delete { entries });
            }
        }
        if self.pending_delete.is_empty() {
            self.delete_due = None;
        }
        while !self.pending_visibility.is_empty() {
            let n = self.pending_visibility.len().min(MAX_BATCH);
            let entries: Vec<_> = self.pending_visibility.drain(..n).collect();
            self.actions.push_back(Action::ChangeVisibility { entries });
        }
    }
}

/// The pending entries of a batch call, if any, leaving room for as many in
/// their place: the next batch is likely as large, so it gets its room at
/// once instead of by doubling.
fn take_batch<T>(pending: &mut Vec<T>) -> Option<Vec<T>> {
    if pending.is_empty() {
        return None;
    }
    let room = Vec::with_capacity(pending.len());
    Some(std::mem::replace(pending, room))
}
