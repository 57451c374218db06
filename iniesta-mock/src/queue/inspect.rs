//! What a test can read off a [`MockQueue`]: its messages and its
//! counters.

use iniesta_core::{Attributes, Time};

use super::handles::{message_id, message_number};
use super::store::{Gone, Stored};
use super::MockQueue;

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
    /// The message group (`MessageGroupId`): a FIFO queue's order key, or
    /// a standard (fair) queue's tenant.
    pub group_id: Option<String>,
    /// A FIFO message's `MessageDeduplicationId` (the body's SHA-256 under
    /// content-based deduplication).
    pub deduplication_id: Option<String>,
    /// A FIFO message's `SequenceNumber` in this queue.
    pub sequence_number: Option<String>,
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
    /// Sends a FIFO queue accepted without enqueueing them: their
    /// deduplication id was seen within the last five minutes.
    pub deduplicated: u64,
}

impl MockQueue {
    /// Messages not deleted (visible or in flight), not counting those moved
    /// to the dead-letter queue.
    pub fn len(&self) -> usize {
        self.state().messages.len()
    }

    /// Whether every message sent was deleted (or moved to the dead-letter
    /// queue).
    pub fn is_empty(&self) -> bool {
        self.state().messages.is_empty()
    }

    /// Messages a receive would find visible now (including those the
    /// redrive policy will move instead of delivering, and on a FIFO queue
    /// those whose group is blocked by a message in flight).
    pub fn visible_len(&self) -> usize {
        let now = self.inner.clock.now();
        let st = self.state();
        st.messages.values().filter(|m| m.visible_at <= now).count()
    }

    /// Messages received and still hidden.
    pub fn in_flight_len(&self) -> usize {
        let now = self.inner.clock.now();
        let st = self.state();
        st.messages.values().filter(|m| m.visible_at > now).count()
    }

    /// Messages deleted so far.
    pub fn deleted_count(&self) -> u64 {
        self.state().stats.deleted
    }

    /// Counters of sends, receives, deletes, faults and dead-letter moves.
    pub fn stats(&self) -> QueueStats {
        self.state().stats
    }

    /// Every message the queue holds, in send order: live ones and, when
    /// [`QueueOptions::retain_deleted`](super::QueueOptions::retain_deleted)
    /// is on, deleted ones. Messages moved to the dead-letter queue are
    /// listed there, not here.
    pub fn snapshot(&self) -> Vec<QueuedMessage> {
        let now = self.inner.clock.now();
        let st = self.state();
        let live = st.messages.iter().map(|(n, m)| (*n, &**m, false));
        let gone = st.gone.iter().filter_map(|(n, g)| match g {
            Gone::Kept { message, .. } => Some((*n, &**message, true)),
            Gone::Dropped { .. } | Gone::Moved { .. } => None,
        });
        let mut all: Vec<(u64, &Stored, bool)> = live.chain(gone).collect();
        all.sort_by_key(|(n, _, _)| *n);
        all.into_iter()
            .map(|(n, m, deleted)| QueuedMessage {
                message_id: message_id(n),
                body: m.body.clone(),
                message_attributes: m.attributes.clone(),
                receive_count: m.receive_count,
                sent_at: m.sent_at,
                first_received_at: m.first_received_at,
                visible_at: m.visible_at,
                visible: !deleted && m.visible_at <= now,
                deleted,
                dead_letter_source_arn: m.source_arn.as_deref().map(str::to_owned),
                group_id: m.group_id.as_deref().map(str::to_owned),
                deduplication_id: m.fifo.as_ref().map(|f| f.deduplication_id.to_string()),
                sequence_number: m.fifo.as_ref().map(|f| f.sequence.to_string()),
            })
            .collect()
    }

    /// When a deleted message was deleted, if the queue still knows (only
    /// with
    /// [`QueueOptions::retain_deleted`](super::QueueOptions::retain_deleted)).
    pub fn deleted_at(&self, message_id: &str) -> Option<Time> {
        let n = message_number(message_id)?;
        match self.state().gone.get(&n)? {
            Gone::Kept { deleted_at, .. } => Some(*deleted_at),
            Gone::Dropped { .. } | Gone::Moved { .. } => None,
        }
    }
}
