//! The machine's vocabulary: the [`Input`]s a driver hands in, the
//! [`Action`]s it carries out, and the [`Event`]s it reports.

use std::sync::Arc;
use std::time::Duration;

use crate::message::{ParseError, ReceiptHandle, ReceivedMessage, SharedMessage};
use crate::ports::{
    AcquireOutcome, BackendError, EntryResult, LockError, LockKey, LockToken, ReceiveRequest,
};
use crate::registry::{Delivery, Handler};

/// Identifies one message in progress inside one [`Consumer`](super::Consumer). Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Identifies one outstanding receive call. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiveId(pub u64);

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

/// Something the driver learned, to hand to [`Consumer::handle_input`](super::Consumer::handle_input).
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
