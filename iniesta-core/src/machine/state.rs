//! Where each message in progress stands.

use std::time::Duration;

use crate::message::{ReceiptHandle, SharedMessage};
use crate::ports::{LockKey, LockToken};
use crate::time::Time;

#[derive(Debug)]
pub(super) enum State {
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
pub(super) struct Running {
    pub(super) token: LockToken,
    pub(super) valid_until: Time,
    pub(super) started: Time,
    pub(super) next_heartbeat: Time,
    pub(super) aborting: bool,
    pub(super) lock_expired: bool,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) handle: ReceiptHandle,
    /// The SQS message id of a malformed message; a parsed one carries it in
    /// `message`.
    pub(super) malformed_id: Option<String>,
    /// `None` for a malformed message (only ever returned to the queue).
    pub(super) message: Option<SharedMessage>,
    pub(super) lock_key: LockKey,
    pub(super) state: State,
    /// The entry's position in the timer set.
    pub(super) timer: Option<Time>,
    /// When the outstanding heartbeat extend was sent, if one is out.
    pub(super) extend_sent_at: Option<Time>,
    /// Heartbeat visibility changes still out.
    pub(super) heartbeat_vis: u32,
}

impl Entry {
    /// A message just received, in `state`, with no timer and no heartbeat
    /// call out.
    pub(super) fn new(
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
    pub(super) fn sqs_id(&self) -> String {
        match (&self.message, &self.malformed_id) {
            (Some(m), _) => m.sqs_message_id.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => String::new(),
        }
    }

    /// The parsed message. Only malformed messages lack one, and they never
    /// leave the `Returning` state, where it is not asked for.
    pub(super) fn msg(&self) -> SharedMessage {
        self.message
            .clone()
            .expect("a message past parsing has its parsed form")
    }
}
