//! Where each message in progress stands.

use std::time::Duration;

use crate::message::{ReceiptHandle, SharedMessage};
use crate::ports::{LockKey, LockToken};
use crate::time::Time;

use super::groups::Hold;

#[derive(Debug)]
pub(super) enum State {
    /// Received ahead, waiting for a handler slot; kept hidden by the
    /// visibility heartbeat, next at `next_upkeep`.
    Waiting { next_upkeep: Time },
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
    /// The journey is over; waiting only for heartbeat calls still out.
    Settling,
}

#[derive(Debug)]
pub(super) struct Running {
    pub(super) token: LockToken,
    pub(super) valid_until: Time,
    pub(super) started: Time,
    pub(super) next_heartbeat: Time,
    /// When the handler timeout aborts it, if there is one.
    pub(super) timeout_at: Option<Time>,
    pub(super) aborting: bool,
    pub(super) lock_expired: bool,
}

/// What the machine knows of a message's content.
#[derive(Debug)]
pub(super) enum Content {
    /// Parsed.
    Parsed(SharedMessage),
    /// Unparseable: only ever returned to the queue, and named in events by
    /// its SQS message id.
    Malformed { sqs_message_id: String },
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) handle: ReceiptHandle,
    pub(super) content: Content,
    pub(super) lock_key: LockKey,
    pub(super) state: State,
    /// The entry's deadline in the timer table.
    pub(super) timer: Option<Time>,
    /// When the outstanding heartbeat extend was sent, if one is out.
    pub(super) extend_sent_at: Option<Time>,
    /// Heartbeat visibility changes still out.
    pub(super) heartbeat_vis: u32,
    /// Whether it holds one of the `max_in_flight` slots (from its acquire
    /// to its completion record or release).
    pub(super) holds_slot: bool,
    /// Whether it holds its FIFO message group.
    pub(super) hold: Hold,
}

impl Entry {
    /// A message just received, in `state`, with no timer and no heartbeat
    /// call out.
    pub(super) fn new(
        handle: ReceiptHandle,
        content: Content,
        lock_key: LockKey,
        state: State,
    ) -> Self {
        Entry {
            handle,
            content,
            lock_key,
            state,
            timer: None,
            extend_sent_at: None,
            heartbeat_vis: 0,
            holds_slot: false,
            hold: Hold::No,
        }
    }

    /// The SQS message id of this delivery.
    pub(super) fn sqs_message_id(&self) -> &str {
        match &self.content {
            Content::Parsed(m) => &m.sqs_message_id,
            Content::Malformed { sqs_message_id } => sqs_message_id,
        }
    }

    /// The parsed message. Only malformed messages lack one, and they never
    /// leave the `Returning` state, where it is not asked for.
    pub(super) fn msg(&self) -> SharedMessage {
        match &self.content {
            Content::Parsed(m) => m.clone(),
            Content::Malformed { .. } => {
                unreachable!("a message past parsing has its parsed form")
            }
        }
    }
}
