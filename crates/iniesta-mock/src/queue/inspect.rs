//! What a test can read off a [`MockQueue`](super::MockQueue): its messages
//! and its counters.

use iniesta_core::{Attributes, Time};

/// A message as the queue holds it, for inspection
/// ([`MockQueue::snapshot`](super::MockQueue::snapshot)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedMessage {
    /// The SQS message id.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// The SQS message attributes.
    pub message_attributes: Attributes,
    /// How often the message was received, counting the receives of the
    /// queue it was moved from (SQS keeps the count on a redrive).
    pub receive_count: u32,
    /// When it was sent (to the source queue, for a moved message: SQS keeps
    /// a standard queue's enqueue time on a redrive).
    pub sent_at: Time,
    /// When it was first received, if ever.
    pub first_received_at: Option<Time>,
    /// When it is (or was, or becomes) visible to receives.
    pub visible_at: Time,
    /// Whether a receive would return it now (false when in flight or deleted).
    pub visible: bool,
    /// Whether it was deleted.
    pub deleted: bool,
    /// The ARN of the queue whose redrive policy moved the message here
    /// (SQS's `DeadLetterQueueSourceArn`); `None` for a message sent here.
    pub dead_letter_source_arn: Option<String>,
}

/// Counters of what happened on a queue
/// ([`MockQueue::stats`](super::MockQueue::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Messages sent.
    pub sent: u64,
    /// Receive calls (sync and async, including failed and empty ones).
    pub receive_calls: u64,
    /// Deliveries returned by receives (a redelivery counts again).
    pub received: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// Deletes that succeeded but deleted nothing: a stale handle, or the
    /// handle of a message moved to the dead-letter queue.
    pub stale_deletes: u64,
    /// Successful visibility changes.
    pub visibility_changes: u64,
    /// Calls or entries answered by an injected fault (failed or lost).
    pub injected_faults: u64,
    /// Messages this queue's redrive policy moved to its dead-letter queue.
    pub dead_lettered: u64,
    /// Messages that arrived here from a source queue's redrive policy (not
    /// counted in `sent`).
    pub dead_letter_arrivals: u64,
}
