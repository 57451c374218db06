//! FIFO message groups ([`ConsumerConfig::fifo`]): one message of a group
//! at a time, in the order received, and a message that does not succeed
//! sends the members of its group received behind it back to the queue.
//!
//! A group is *held* by the entry that left `Waiting` for it, from its
//! acquire to the end of its handling: its completion record written (then
//! it is only being deleted, and its handler's place in the order is
//! taken), or the end of its journey after anything else (a failure and
//! its release and return, a `Busy` or `Unavailable` lock). Only the head
//! of a group that nobody holds sits in the consumer's `waiting` deque; the
//! members behind it are *parked* here, so that `fill_slots` never has to
//! step over a blocked group's entries: every entry in `waiting` can start,
//! and the deque stays first received first.
//!
//! The first time a holding entry ends without success, its group
//! *fails*: every parked member goes back at once (a visibility change to
//! zero, no lock, no dispatch), and so does any member that arrives while
//! the failed hold lasts. SQS delivers no message of a FIFO group while an
//! earlier one is in flight, so once the failed message becomes visible
//! again the group comes back whole and in order, the failed one first.

use std::collections::HashMap;
use std::time::Duration;

use crate::message::{Message, ReceiptHandle, SharedMessage};
use crate::ports::LockKey;

use super::*;

/// How an entry holds its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Hold {
    /// It does not (not started, no group, not a FIFO queue, or its hold
    /// is over).
    #[default]
    No,
    /// It holds its group.
    Held,
    /// It holds its group and did not succeed: members received behind it
    /// are sent back.
    Failed,
}

/// One message group with an entry in progress.
#[derive(Debug, Default)]
struct Group {
    /// Entries holding the group: at most one, but for a copy received
    /// again while another consumer's lock kept it from running here.
    holders: u32,
    /// The SQS message id of the holder that did not succeed, while its
    /// failed hold lasts.
    failed: Option<Box<str>>,
    /// The member in the consumer's `waiting` deque (only when nobody
    /// holds the group).
    head: Option<MessageId>,
    /// The members waiting behind the holder or the head, first received
    /// first.
    parked: VecDeque<MessageId>,
}

/// The message groups with entries in progress. Group ids come from the
/// messages' publishers, so the map keeps the standard hasher (resistant to
/// hash flooding), unlike the machine's [`IdMap`]s.
#[derive(Debug, Default)]
pub(super) struct Groups {
    map: HashMap<Box<str>, Group>,
    /// Entries parked in all groups (they count as received ahead).
    pub(super) parked: usize,
    /// Groups with a message that did not succeed while the current receive
    /// was taken in (unparseable, refused by the filters, given up on), and
    /// its SQS id: their members later in the same receive go back.
    intake_failed: Vec<(Box<str>, Box<str>)>,
}

impl Groups {
    /// Forgets every group and returns the parked entries (a shutdown
    /// returns every waiting entry; the heads are in `waiting`).
    fn clear(&mut self) -> Vec<MessageId> {
        self.parked = 0;
        self.intake_failed.clear();
        self.map.drain().flat_map(|(_, g)| g.parked).collect()
    }
}

impl Consumer {
    /// The group that orders `message`, on a FIFO queue.
    fn group_of<'m>(&self, message: &'m Message) -> Option<&'m str> {
        if self.config.fifo {
            message.group_id.as_deref()
        } else {
            None
        }
    }

    /// The group of entry `id`, on a FIFO queue, as an owned key.
    fn entry_group(&self, id: MessageId) -> Option<Box<str>> {
        match &self.entries.get(&id)?.content {
            Content::Parsed(m) => self.group_of(m).map(Box::from),
            Content::Malformed { .. } => None,
        }
    }

    /// A message of `group` did not succeed while the current receive was
    /// taken in: its members later in the receive go back.
    pub(super) fn intake_failed(&mut self, group: Option<&str>, sqs_message_id: &str) {
        if let Some(group) = group.filter(|_| self.config.fifo) {
            self.groups
                .intake_failed
                .push((group.into(), sqs_message_id.into()));
        }
    }

    /// The receive is taken in.
    pub(super) fn intake_over(&mut self) {
        self.groups.intake_failed.clear();
    }

    /// If `message` must go back because a member of its group ahead of it
    /// did not succeed, the SQS id of that member.
    pub(super) fn behind_failure(&self, message: &Message) -> Option<Box<str>> {
        let group = self.group_of(message)?;
        if let Some(g) = self.groups.map.get(group) {
            // The failed member itself may come back while its hold lasts
            // (returned with no delay, received again before the return
            // is answered): it is the group's next, not behind itself.
            let failed = g.failed.as_ref();
            if let Some(failed) = failed.filter(|f| ***f != *message.sqs_message_id) {
                return Some(failed.clone());
            }
        }
        self.groups
            .intake_failed
            .iter()
            .find(|(g, _)| **g == *group)
            .map(|(_, id)| id.clone())
    }

    /// Message `id`, just received and waiting, takes its place: the
    /// `waiting` deque, or behind its group's holder or head.
    pub(super) fn enqueue_waiting(&mut self, id: MessageId) {
        let Some(group) = self.entry_group(id) else {
            self.waiting.push_back(id);
            return;
        };
        let g = self.groups.map.entry(group).or_default();
        if g.holders == 0 && g.head.is_none() {
            g.head = Some(id);
            self.waiting.push_back(id);
        } else {
            g.parked.push_back(id);
            self.groups.parked += 1;
        }
    }

    /// Waiting message `id` leaves `waiting` for its acquire: it holds its
    /// group.
    pub(super) fn take_group(&mut self, id: MessageId) {
        let Some(group) = self.entry_group(id) else {
            return;
        };
        let g = self.groups.map.entry(group).or_default();
        if g.head == Some(id) {
            g.head = None;
        }
        g.holders += 1;
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.hold = Hold::Held;
        }
    }

    /// Entry `id` did not succeed (the first time only): its group's
    /// parked members go back at once.
    pub(super) fn fail_group(&mut self, id: MessageId) {
        if !self.config.fifo {
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.hold != Hold::Held {
            return;
        }
        entry.hold = Hold::Failed;
        let behind: Box<str> = entry.sqs_message_id().into();
        let Some(group) = self.entry_group(id) else {
            return;
        };
        let Some(g) = self.groups.map.get_mut(&group) else {
            return;
        };
        g.failed = Some(behind.clone());
        let back: Vec<MessageId> = g
            .head
            .take()
            .into_iter()
            .chain(g.parked.drain(..))
            .collect();
        self.groups.parked -= back.len().min(self.groups.parked);
        for member in back {
            self.return_for_order(member, &group, &behind);
        }
    }

    /// Entry `id`'s handling is over (`success`: its completion record is
    /// written, or it was a duplicate): the next member of its group may
    /// start.
    pub(super) fn end_group_hold(&mut self, id: MessageId, success: bool) {
        if !self.config.fifo {
            return;
        }
        if !success {
            self.fail_group(id);
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if std::mem::take(&mut entry.hold) == Hold::No {
            return;
        }
        let Some(group) = self.entry_group(id) else {
            return;
        };
        let Some(g) = self.groups.map.get_mut(&group) else {
            return;
        };
        g.holders = g.holders.saturating_sub(1);
        if g.holders > 0 {
            return;
        }
        g.failed = None;
        if g.head.is_none() {
            if let Some(next) = g.parked.pop_front() {
                self.groups.parked -= 1;
                g.head = Some(next);
                // Ids grow with receipt, and `waiting` is kept in their
                // order: the head goes to its place among them.
                let at = self.waiting.partition_point(|w| *w < next);
                self.waiting.insert(at, next);
            }
        }
        if g.head.is_none() && g.parked.is_empty() {
            self.groups.map.remove(&group);
        }
    }

    /// Sends waiting message `id` back to the queue unprocessed: it is
    /// behind `behind` in `group`, which did not succeed.
    fn return_for_order(&mut self, id: MessageId, group: &str, behind: &str) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        if !matches!(entry.state, State::Waiting { .. }) {
            return;
        }
        self.events.push_back(Event::ReturnedForOrder {
            message: entry.msg(),
            group: group.to_owned(),
            behind: behind.to_owned(),
        });
        self.return_or_forget(id, Duration::ZERO);
    }

    /// A message received behind a member of its group that did not
    /// succeed: back to the queue at once, never locked or dispatched.
    pub(super) fn send_back_on_arrival(
        &mut self,
        id: MessageId,
        message: SharedMessage,
        handle: ReceiptHandle,
        behind: &str,
    ) {
        let group = message.group_id.clone().unwrap_or_default();
        self.events.push_back(Event::ReturnedForOrder {
            message: message.clone(),
            group,
            behind: behind.to_owned(),
        });
        let state = State::Acquiring { sent_at: self.now };
        let entry = Entry::new(handle, Content::Parsed(message), LockKey::from(""), state);
        self.entries.insert(id, entry);
        self.return_or_forget(id, Duration::ZERO);
    }

    /// The waiting entries parked behind their groups (a shutdown returns
    /// them with the rest); the groups are forgotten.
    pub(super) fn drain_parked(&mut self) -> Vec<MessageId> {
        let mut ids = self.groups.clear();
        ids.sort_unstable();
        ids
    }
}
