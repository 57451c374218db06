//! [`TracingObserver`]: every consumer event as a log line, at the level an
//! operator expects.

use iniesta_core::{machine::AbortReason, DispatchOutcome, Event, Observer, Retry};
use tracing::Level;

use super::LOG_TARGET;

/// Logs each [`Event`] through `tracing`, at the level an operator expects.
///
/// | level | events |
/// |---|---|
/// | `info` | shutdown started, consumer stopped |
/// | `warn` | handler failed (with the error's whole source chain), panicked, aborted or timed out; permanent failure given up; handler being aborted (lock expired or lost, shutdown grace over); no handler; malformed message (with its message id and the parse error); lock backend unavailable; failed receive, lock extension, completion record, release, delete or visibility change |
/// | `debug` | messages received (counts), handler started (with the message body), handler succeeded, skipped because busy elsewhere, duplicate acked, deleted, returned to the queue, a permanently failed message handed back |
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
            | Event::GivenUp { .. }
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

pub(super) fn outcome_text(outcome: &DispatchOutcome) -> (&'static str, String) {
    match outcome {
        DispatchOutcome::Failed { error, .. } => ("error", error.to_string()),
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
        AbortReason::TimedOut => "the handler ran longer than INIESTA_HANDLER_TIMEOUT",
        #[allow(unreachable_patterns)]
        _ => "unknown reason",
    }
}

/// Logs to [`LOG_TARGET`] at `$level`, one of the levels
/// [`TracingObserver::level`] gives (info, warn or debug), with the fields
/// and message of `tracing`'s macros.
macro_rules! log {
    ($level:expr, $($args:tt)+) => {
        match $level {
            Level::INFO => tracing::info!(target: LOG_TARGET, $($args)+),
            Level::WARN => tracing::warn!(target: LOG_TARGET, $($args)+),
            _ => tracing::debug!(target: LOG_TARGET, $($args)+),
        }
    };
}

/// [`log!`] with the fields that name `$message` first: its `event`,
/// `message_id` and `key`.
macro_rules! log_message {
    ($level:expr, $message:ident, $($args:tt)+) => {
        log!(
            $level,
            event = %$message.event, message_id = %$message.sqs_message_id, key = %$message.key(),
            $($args)+
        )
    };
}

impl Observer for TracingObserver {
    fn on_event(&mut self, event: &Event) {
        let level = Self::level(event);
        match event {
            Event::Received { count } => {
                log!(level, count, "received {count} message(s)")
            }
            Event::ReceiveFailed { error, retry_in } => log!(
                level,
                %error, retry_in = ?retry_in,
                "receiving from the queue failed; trying again in {retry_in:?}"
            ),
            Event::Malformed {
                sqs_message_id,
                receive_count,
                error,
            } => log!(
                level,
                message_id = %sqs_message_id, receive_count, %error,
                "could not parse a message; it stays in the queue (a dead-letter queue ends its journey)"
            ),
            Event::Skipped { message } => log_message!(
                level,
                message,
                "skipped: another consumer holds this event's lock"
            ),
            Event::Duplicate { message } => log_message!(
                level,
                message,
                "duplicate of an event already handled; deleting it without running the handler"
            ),
            Event::LockUnavailable { message, error } => log_message!(
                level, message,
                %error,
                "the lock backend is unavailable; the message is left for redelivery"
            ),
            Event::Unmatched { message, deleted } => log_message!(
                level,
                message,
                deleted = *deleted,
                "the event does not match this consumer's filters (INIESTA_SQS_CONSUMER_FILTERS): \
                 not dispatched; {}",
                if *deleted {
                    "deleted (INIESTA_DELETE_UNMATCHED_EVENTS)"
                } else {
                    "left in the queue for its dead-letter queue"
                }
            ),
            Event::NoHandler { message } => log_message!(
                level,
                message,
                "no handler for this event and no default handler; the message stays in the queue"
            ),
            Event::HandlerStarted { message } => log_message!(
                level, message,
                receive_count = message.receive_count, body = %message.body,
                "handler started"
            ),
            Event::Succeeded { message, elapsed } => log_message!(
                level, message,
                elapsed = ?elapsed,
                "handler succeeded"
            ),
            Event::Failed {
                message,
                elapsed,
                outcome,
            } => {
                let (kind, text) = outcome_text(outcome);
                let then = match outcome {
                    DispatchOutcome::Failed {
                        retry: Retry::Never,
                        ..
                    } => "it is not retried".to_owned(),
                    DispatchOutcome::Failed {
                        retry: Retry::After(delay),
                        ..
                    } => format!("it is retried in {delay:?}"),
                    _ => "the message is left for redelivery".to_owned(),
                };
                log_message!(
                    level, message,
                    receive_count = message.receive_count,
                    elapsed = ?elapsed, outcome = kind, error = %text,
                    "handler failed ({kind}): {text}; {then}"
                );
            }
            Event::GivenUp { message, deleted } => log_message!(
                level,
                message,
                receive_count = message.receive_count,
                deleted = *deleted,
                "the handler failed permanently: never dispatched again; {}",
                if *deleted {
                    "recorded as done and deleted (INIESTA_DELETE_PERMANENT_FAILURES)"
                } else {
                    "handed back at once until SQS moves it to the dead-letter queue"
                }
            ),
            Event::HandedBack { message } => log_message!(
                level,
                message,
                receive_count = message.receive_count,
                "received again a message whose handler failed permanently: handed back \
                 undispatched, for the dead-letter queue"
            ),
            Event::Aborting { message, reason } => log_message!(
                level, message,
                reason = ?reason,
                "aborting the handler: {}", reason_text(reason)
            ),
            Event::ExtendFailed { message, error } => log_message!(
                level, message,
                %error,
                "could not extend the lock of a running handler; trying again"
            ),
            Event::CompleteFailed { message, error } => log_message!(
                level, message,
                %error,
                "could not write the completion record; deleting the message anyway"
            ),
            Event::ReleaseFailed { message, error } => log_message!(
                level, message,
                %error,
                "could not release the lock; it expires by its time to live"
            ),
            Event::Deleted { message } => log_message!(level, message, "deleted from the queue"),
            Event::DeleteFailed {
                message,
                error,
                will_retry,
            } => log_message!(
                level, message,
                %error, will_retry,
                "deleting the message failed{}",
                if *will_retry {
                    "; trying again"
                } else {
                    "; giving up (the completion record makes the redelivered copy harmless)"
                }
            ),
            Event::VisibilityChangeFailed {
                sqs_message_id,
                error,
            } => log!(
                level,
                message_id = %sqs_message_id, %error,
                "changing the visibility timeout of a message failed"
            ),
            Event::Returned {
                sqs_message_id,
                delay,
            } => log!(
                level,
                message_id = %sqs_message_id, delay = ?delay,
                "message returned to the queue; visible again in {delay:?}"
            ),
            Event::ReturnedForOrder {
                message,
                group,
                behind,
            } => log_message!(
                level, message,
                group = %group, behind = %behind,
                "sent back unhandled: message {behind} ahead of it in FIFO group {group} did \
                 not succeed, and SQS redelivers the group in order"
            ),
            Event::ShutdownStarted { in_flight } => log!(
                level,
                in_flight,
                "shutdown started: no new messages; waiting for {in_flight} message(s) in progress"
            ),
            Event::Stopped => {
                log!(
                    level,
                    "consumer stopped: no handler runs and nothing is in progress"
                )
            }
            #[allow(unreachable_patterns)]
            other => log!(level, event = ?other, "consumer event"),
        }
    }
}
