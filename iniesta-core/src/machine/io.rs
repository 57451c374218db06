//! The machine's vocabulary: the [`Input`]s a driver hands in, the
//! [`Action`]s it carries out, and the [`Event`]s it reports.

use std::time::Duration;

use crate::handler::{ErrorChain, HandlerError, Retry};
use crate::message::{ParseError, ReceiptHandle, ReceivedMessage, SharedMessage};
use crate::ports::{
    AcquireOutcome, BackendError, EntryResult, LockError, LockKey, LockToken, ReceiveRequest,
};
use crate::registry::{HandlerId, Route};

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
    /// The handler returned `Err`.
    Failed {
        /// The error and its sources, as text.
        error: ErrorChain,
        /// Whether and when to try again.
        retry: Retry,
    },
    /// The handler panicked (the panic's text).
    Panicked(String),
    /// The handler was aborted after [`Action::Abort`] and has stopped.
    Aborted,
}

impl DispatchOutcome {
    /// The outcome of a handler that returned `error`.
    pub fn failed(error: &HandlerError) -> Self {
        DispatchOutcome::Failed {
            error: error.chain(),
            retry: error.retry(),
        }
    }

    /// A failure to retry after the backoff, with one text.
    pub fn failed_with(text: impl Into<String>) -> Self {
        DispatchOutcome::Failed {
            error: ErrorChain::message(text),
            retry: Retry::Backoff,
        }
    }
}

/// Identifies one batch call ([`Action::Acquire`], [`Action::Complete`],
/// [`Action::Delete`], [`Action::ChangeVisibility`]). Never reused. Its
/// answers come back entry by entry, as `(batch, index)`: the machine knows
/// which message each entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

/// An IO answer, to hand to [`Consumer::handle_input`](super::Consumer::handle_input).
/// Commands (such as a shutdown) are methods of the
/// [`Consumer`](super::Consumer) instead.
///
/// The answers to a batch call come one per entry, each naming the batch
/// and the entry's index in the action's list, in any order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// A [`Action::Receive`] returned. A cancelled receive MUST still be
    /// answered (with the messages that did arrive, or none).
    Received {
        /// Which receive.
        id: ReceiveId,
        /// Its result.
        result: Result<Vec<ReceivedMessage>, BackendError>,
    },
    /// One key of an [`Action::Acquire`] was answered.
    Acquired {
        /// Which acquire.
        batch: BatchId,
        /// The key's index in [`Action::Acquire::keys`].
        index: usize,
        /// The backend's answer.
        outcome: AcquireOutcome,
    },
    /// A handler started by [`Action::Dispatch`] has finished: it is no
    /// longer running.
    HandlerFinished {
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
        /// Which complete.
        batch: BatchId,
        /// The entry's index in [`Action::Complete::entries`].
        index: usize,
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
        /// Which delete.
        batch: BatchId,
        /// The entry's index in [`Action::Delete::handles`].
        index: usize,
        /// The queue's answer.
        result: EntryResult,
    },
    /// One entry of an [`Action::ChangeVisibility`] was answered.
    VisibilityChanged {
        /// Which visibility change.
        batch: BatchId,
        /// The entry's index in [`Action::ChangeVisibility::entries`].
        index: usize,
        /// The queue's answer.
        result: EntryResult,
    },
}

/// IO the machine wants done. Every action MUST be carried out and answered
/// with the matching [`Input`] (one per entry for batch actions), except
/// [`Action::CancelReceive`] and [`Action::Abort`], which are answered by the
/// input of the receive or handler they stop.
///
/// Batch actions carry only what the backend needs, and a [`BatchId`]: the
/// driver hands the list to the backend as it is, and answers each entry as
/// `(batch, index)`.
#[derive(Debug, Clone, PartialEq)]
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
    /// [`Input::Acquired`] per key.
    Acquire {
        /// Which acquire.
        batch: BatchId,
        /// The lock keys.
        keys: Vec<LockKey>,
        /// Lock time to live.
        ttl: Duration,
    },
    /// Run the handler `handler` names with a
    /// [`Delivery`](crate::Delivery) of `message` under `token`; answer
    /// with [`Input::HandlerFinished`] when it has stopped. A panic is
    /// [`DispatchOutcome::Panicked`], not a crash.
    Dispatch {
        /// Which message.
        id: MessageId,
        /// How the handler was found.
        route: Route,
        /// The handler to run, in the registry the routes came from.
        handler: HandlerId,
        /// What the handler gets.
        message: SharedMessage,
        /// The token of the lock it runs under.
        token: LockToken,
    },
    /// Stop a running handler (its lock is about to expire, or shutdown's
    /// grace ran out). The driver MUST stop it (drop its future) and then
    /// answer with [`Input::HandlerFinished`] and
    /// [`DispatchOutcome::Aborted`] (or the outcome it reached first).
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
        /// Which visibility change.
        batch: BatchId,
        /// Receipt handles and their new timeouts.
        entries: Vec<(ReceiptHandle, Duration)>,
    },
    /// Turn locks into completion records (one backend call for all);
    /// answer with one [`Input::Completed`] per entry.
    Complete {
        /// Which complete.
        batch: BatchId,
        /// Lock keys and our tokens.
        entries: Vec<(LockKey, LockToken)>,
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
    /// per handle.
    Delete {
        /// Which delete.
        batch: BatchId,
        /// The receipt handles.
        handles: Vec<ReceiptHandle>,
    },
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
    /// The handler ran longer than
    /// [`handler_timeout`](super::ConsumerConfig::handler_timeout).
    TimedOut,
}

/// What happened, for logs and metrics. Each event names the message it is
/// about.
#[derive(Debug, Clone, PartialEq)]
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
        sqs_message_id: String,
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
    /// A completion record exists: a duplicate of completed work, deleted
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
    HandlerStarted {
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
    /// A handler failed permanently ([`Retry::Never`]): the message is
    /// left for the dead-letter queue (made visible at once, and
    /// [handed back](Event::HandedBack) whenever this consumer receives it
    /// again, so that its receive count reaches the redrive policy's
    /// limit), or recorded as done and deleted when so configured. Never
    /// dispatched again by this consumer.
    GivenUp {
        /// The message.
        message: SharedMessage,
        /// Whether it is being deleted (else it is left for the dead-letter
        /// queue).
        deleted: bool,
    },
    /// A message this consumer [gave up on](Event::GivenUp) was received
    /// again: made visible again at once, not dispatched.
    HandedBack {
        /// The message.
        message: SharedMessage,
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
        sqs_message_id: String,
        /// The queue's error.
        error: BackendError,
    },
    /// A message was made visible again after a failure (backoff) or on
    /// shutdown.
    Returned {
        /// The SQS message id.
        sqs_message_id: String,
        /// After how long it becomes visible.
        delay: Duration,
    },
    /// On a FIFO queue, a message was sent back to the queue unprocessed
    /// (visible again at once; never locked or dispatched here) because a
    /// message of its group ahead of it did not succeed: SQS delivers the
    /// group again in order once that one is visible again. An
    /// [`Event::Returned`] follows when the queue has taken it back.
    ReturnedForOrder {
        /// The message sent back.
        message: SharedMessage,
        /// Its message group.
        group: String,
        /// The SQS message id of the message of the group that did not
        /// succeed.
        behind: String,
    },
    /// Shutdown began.
    ShutdownStarted {
        /// Messages in progress at that moment.
        in_flight: usize,
    },
    /// Shutdown is over ([`Consumer::is_stopped`](super::Consumer::is_stopped)):
    /// nothing runs and nothing is in progress.
    Stopped,
}
