//! The queue's storage: live messages, deleted or moved ones, the order in
//! which receives take them, and pending injected faults.

use std::sync::Arc;

use iniesta_core::{Attributes, Time};
use rustc_hash::FxHashMap;

use super::fifo::{FifoIds, FifoState};
use super::inspect::QueueStats;
use super::ready::Ready;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Faults {
    pub(super) fail_receives: u32,
    pub(super) fail_deletes: u32,
    pub(super) lose_deletes: u32,
    pub(super) fail_visibility_changes: u32,
}

/// Consumes one injected fault, if one is pending.
pub(super) fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

/// The receive counts whose handles a queue issued for one message:
/// `(arrived, count]`. A message moved here by a redrive arrives with the
/// source's count, and the source's handles are not this queue's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Issued {
    /// The receive count when the message came to this queue (0 if sent).
    pub(super) arrived: u32,
    /// The receive count now.
    pub(super) count: u32,
}

impl Issued {
    /// Whether this queue issued the handle of the `k`-th receive.
    pub(super) fn contains(self, k: u32) -> bool {
        k > self.arrived && k <= self.count
    }
}

pub(super) struct Stored {
    pub(super) body: String,
    /// Shared with every delivery of the message (no copy per receive).
    pub(super) attributes: Attributes,
    pub(super) receive_count: u32,
    /// See [`Issued::arrived`].
    pub(super) arrived_count: u32,
    pub(super) sent_at: Time,
    pub(super) first_received_at: Option<Time>,
    pub(super) visible_at: Time,
    /// The source queue's ARN, for a message a redrive moved here.
    pub(super) source_arn: Option<Arc<str>>,
    /// `MessageGroupId`: the order key of a FIFO queue; a standard queue
    /// only carries it back (SQS's fair queues).
    pub(super) group_id: Option<Arc<str>>,
    /// A FIFO message's deduplication id and sequence number.
    pub(super) fifo: Option<FifoIds>,
}

impl Stored {
    /// A message just sent at `now`: visible at once, never received.
    pub(super) fn sent(
        body: String,
        attributes: Attributes,
        now: Time,
        group_id: Option<Arc<str>>,
        fifo: Option<FifoIds>,
    ) -> Box<Stored> {
        Box::new(Stored {
            body,
            attributes,
            receive_count: 0,
            arrived_count: 0,
            sent_at: now,
            first_received_at: None,
            visible_at: now,
            source_arn: None,
            group_id,
            fifo,
        })
    }

    pub(super) fn issued(&self) -> Issued {
        Issued {
            arrived: self.arrived_count,
            count: self.receive_count,
        }
    }
}

/// A message no longer live: deleted (kept whole, or only its receive
/// counts) or moved to the dead-letter queue. Messages are boxed in the maps
/// so that the tables stay small: growing them then moves pointers, not
/// whole messages.
pub(super) enum Gone {
    Kept {
        message: Box<Stored>,
        deleted_at: Time,
    },
    Dropped {
        issued: Issued,
    },
    /// Moved by the redrive policy. Its handles are still recognised here,
    /// as stale ones.
    Moved {
        issued: Issued,
    },
}

impl Gone {
    pub(super) fn issued(&self) -> Issued {
        match self {
            Gone::Kept { message, .. } => message.issued(),
            Gone::Dropped { issued } | Gone::Moved { issued } => *issued,
        }
    }
}

#[derive(Default)]
pub(super) struct State {
    /// Live messages by number.
    pub(super) messages: FxHashMap<u64, Box<Stored>>,
    /// (visible_at, number) of every live message, earliest first: receives
    /// take from the top, so the oldest-visible message comes first, then
    /// send order. Entries are not removed when a message is deleted or its
    /// visibility changes; such a stale entry (its message gone, or its time
    /// no longer the message's) is skipped when it reaches the top. That
    /// keeps deletes and visibility changes out of it (see [`Ready`]).
    pub(super) ready: Ready,
    /// Messages no longer live, by number.
    pub(super) gone: FxHashMap<u64, Gone>,
    pub(super) faults: Faults,
    pub(super) stats: QueueStats,
    /// Scratch space of `take_visible`, kept between receives.
    pub(super) taken: Vec<u64>,
    pub(super) handle_buf: String,
    /// Message groups and deduplication ids (FIFO queues only).
    pub(super) fifo: FifoState,
}

impl State {
    /// Whether the queue holds or held message `n`.
    pub(super) fn knows(&self, n: u64) -> bool {
        self.messages.contains_key(&n) || self.gone.contains_key(&n)
    }
}
