//! Permanent failures: a message whose handler said it can never succeed
//! is never dispatched again by this consumer. It is left for the
//! dead-letter queue, or deleted when so configured.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use crate::message::{ReceiptHandle, SharedMessage};
use crate::ports::{LockKey, LockToken};
use crate::time::Time;

use super::*;

/// The SQS ids of the messages this consumer gave up on, the newest
/// [`GivenUp::CAPACITY`]: each is handed back at once whenever it is
/// received again, so that its receive count passes the redrive policy's
/// `maxReceiveCount` within a few receives and SQS moves it to the
/// dead-letter queue. Bounded, so that a flood of failures cannot grow it
/// without end; a message pushed out is merely dispatched again.
#[derive(Debug, Default)]
pub(super) struct GivenUp {
    ids: HashSet<Box<str>>,
    order: VecDeque<Box<str>>,
}

impl GivenUp {
    /// How many ids are kept.
    const CAPACITY: usize = 4096;

    /// Up to this receive count a message given up on is handed back at
    /// once, which takes it past any usual `maxReceiveCount` (3 to 10)
    /// within seconds. Past it the queue may have no redrive policy at all
    /// (or a large limit): handing back at once would then spin through a
    /// receive and a visibility change per poll, forever. It waits for the
    /// failure backoff (or its visibility timeout) instead, so a large
    /// limit is still reached, only more slowly.
    const HAND_BACK_AT_ONCE_UP_TO: u32 = 10;

    fn insert(&mut self, sqs_message_id: &str) {
        if self.ids.contains(sqs_message_id) {
            return;
        }
        if self.order.len() == Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(sqs_message_id.into());
        self.order.push_back(sqs_message_id.into());
    }

    pub(super) fn contains(&self, sqs_message_id: &str) -> bool {
        self.ids.contains(sqs_message_id)
    }
}

impl Consumer {
    /// Message `id`'s handler failed permanently: record it as done and
    /// delete it, or release its lock and hand it back at once for the
    /// dead-letter queue.
    pub(super) fn give_up(&mut self, id: MessageId, token: LockToken, valid_until: Time) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let message = entry.msg();
        let deleted = self.config.delete_permanent_failures;
        self.events.push_back(Event::GivenUp {
            message: message.clone(),
            deleted,
        });
        if deleted {
            // As after a success: the record makes copies of the event
            // (SNS duplicates, a redelivery after a failed delete) acked
            // without a dispatch.
            self.start_complete(id, token, valid_until);
        } else {
            self.given_up.insert(&message.sqs_message_id);
            self.release(id, token, Some(Duration::ZERO));
        }
    }

    /// A message just received that this consumer gave up on: handed
    /// back, never dispatched.
    pub(super) fn hand_back(
        &mut self,
        id: MessageId,
        message: SharedMessage,
        handle: ReceiptHandle,
    ) {
        self.events.push_back(Event::HandedBack {
            message: message.clone(),
        });
        // Left for the dead-letter queue: its group cannot go on past it.
        self.intake_failed(message.group_id.as_deref(), &message.sqs_message_id);
        let receive_count = message.receive_count;
        let state = State::Acquiring { sent_at: self.now };
        let entry = Entry::new(handle, Content::Parsed(message), LockKey::from(""), state);
        self.entries.insert(id, entry);
        if receive_count <= GivenUp::HAND_BACK_AT_ONCE_UP_TO {
            self.return_or_forget(id, Duration::ZERO);
        } else {
            // Maybe no redrive policy: wait as any failure does.
            match self.config.failure_backoff {
                Some(b) => self.return_or_forget(id, b.delay(receive_count)),
                None => self.settle(id),
            }
        }
    }
}
