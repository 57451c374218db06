//! Receiving: how many to ask for and when, and what each message received
//! becomes (parsed, checked against the filters, queued for its lock).

use std::sync::Arc;
use std::time::Duration;

use crate::message::{parse_owned, ReceiptHandle, ReceivedMessage, SharedMessage};
use crate::ports::{BackendError, LockKey, ReceiveRequest};

use super::*;

impl Consumer {
    pub(super) fn fill_receives(&mut self) {
        if self.shutting_down() || self.timers.receive_resume.is_some() {
            return;
        }
        let least = self.least_receive();
        let prefetch = self.config.prefetch_or_default();
        // Every message in progress is one of: holding a slot, waiting for
        // one (at most `prefetch`), or settling after its slot (deletes,
        // returns): those may be as many as the slots, and no more, so that
        // a slow queue holds back the receives instead of growing the
        // entries without end. Saturating: `INIESTA_MAX_IN_FLIGHT` takes
        // any count, and a huge one must not wrap this bound to a small one.
        let most = self
            .config
            .max_in_flight
            .saturating_mul(2)
            .saturating_add(prefetch);
        while self.receives.len() < self.receive_target {
            // Members parked behind their FIFO group's current message wait
            // for their group, not for a slot: counted as received ahead,
            // one busy group would hold back every other group's receives
            // while slots stand idle. They still count in `in_progress`.
            let ahead = self.waiting.len() + self.reserved;
            let in_progress = self.entries.len() + self.reserved;
            // Without a prefetch, only as many as the free slots.
            let buffer = match prefetch {
                0 => self.config.max_in_flight.saturating_sub(self.slots),
                n => n,
            };
            let free = buffer
                .saturating_sub(ahead)
                .min(most.saturating_sub(in_progress));
            if free < least {
                break;
            }
            let max = free.min(self.config.receive_batch as usize) as u32;
            let id = ReceiveId(self.fresh_id());
            self.receives.insert(id, (max, self.now));
            self.reserved += max as usize;
            self.actions.push_back(Action::Receive {
                id,
                request: ReceiveRequest {
                    max_messages: max,
                    wait_time: self.config.wait_time,
                    visibility_timeout: None,
                },
            });
        }
    }

    /// The fewest messages a receive asks for: half the prefetch (without
    /// one, a tenth of the slots), at most a full batch. Receiving as soon
    /// as one message is taken would, under a backlog, fetch one or two
    /// messages per call (every call is billed, and each is a round trip);
    /// waiting for half lets a busy consumer receive full batches while the
    /// other half keeps its handlers busy.
    pub(super) fn least_receive(&self) -> usize {
        let least = match self.config.prefetch_or_default() {
            0 => self.config.max_in_flight / 10,
            n => n / 2,
        };
        least.clamp(1, self.config.receive_batch as usize)
    }

    /// Gives waiting messages the free slots, first received first: each
    /// goes to its lock's acquire. (On a FIFO queue, the members of a group
    /// behind its first are parked apart, so every entry here can start.)
    pub(super) fn fill_slots(&mut self) {
        if self.shutting_down() {
            return;
        }
        while self.slots < self.config.max_in_flight {
            let Some(id) = self.waiting.pop_front() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if !matches!(entry.state, State::Waiting { .. }) {
                continue;
            }
            entry.state = State::Acquiring { sent_at: self.now };
            entry.holds_slot = true;
            self.slots += 1;
            self.batches.acquire.push(id, entry.lock_key.clone());
            self.timers.update(id, entry);
            if self.config.fifo {
                self.take_group(id);
            }
        }
    }

    /// Message `id` no longer needs its slot (its handler's journey is
    /// over, or it never ran): the slot goes to the next waiting message.
    pub(super) fn free_slot(&mut self, id: MessageId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            if std::mem::take(&mut entry.holds_slot) {
                self.slots -= 1;
            }
        }
    }

    pub(super) fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn on_received(
        &mut self,
        id: ReceiveId,
        result: Result<Vec<ReceivedMessage>, BackendError>,
    ) {
        self.take_received(id, result);
        // A cancelled receive may be the last thing a shutdown waits for;
        // asked only now, after the messages it brought are in progress.
        self.report_if_stopped();
    }

    pub(super) fn take_received(
        &mut self,
        id: ReceiveId,
        result: Result<Vec<ReceivedMessage>, BackendError>,
    ) {
        let Some((reserved, sent_at)) = self.receives.remove(&id) else {
            return;
        };
        self.reserved -= reserved as usize;
        let messages = match result {
            Ok(m) => {
                self.receive_failures = 0;
                self.adapt_receives(m.len(), reserved as usize);
                m
            }
            Err(error) => {
                let exp = self.receive_failures.min(16);
                self.receive_failures += 1;
                let retry_in = self
                    .config
                    .receive_backoff
                    .checked_mul(1 << exp)
                    .unwrap_or(Duration::MAX)
                    .min(self.config.receive_backoff_max);
                self.timers.receive_resume = Some(self.now + retry_in);
                self.events
                    .push_back(Event::ReceiveFailed { error, retry_in });
                return;
            }
        };
        if messages.is_empty() {
            let waited = self.now.saturating_duration_since(sent_at);
            let early = waited < self.config.wait_time || self.config.wait_time.is_zero();
            if early && !self.shutting_down() {
                let resume = self.now + self.config.empty_receive_pause;
                let timers = &mut self.timers;
                timers.receive_resume =
                    Some(timers.receive_resume.map_or(resume, |t| t.max(resume)));
            }
            return;
        }
        self.events.push_back(Event::Received {
            count: messages.len(),
        });
        for raw in messages {
            self.on_message(raw);
        }
        self.intake_over();
    }

    /// A receive that asked for `asked` brought `got`: a full one says
    /// there is more, so one more receive may go out; an empty one says
    /// the queue is (nearly) idle, so one fewer. A partly filled one
    /// changes nothing. The count thus doubles per round trip under a
    /// backlog and falls back to a single long poll on an idle queue.
    fn adapt_receives(&mut self, got: usize, asked: usize) {
        let most = self.config.concurrent_receives;
        if got == 0 {
            self.receive_target = self.receive_target.saturating_sub(1).max(1);
        } else if got >= asked {
            self.receive_target = (self.receive_target + 1).min(most);
        }
    }

    pub(super) fn on_message(&mut self, raw: ReceivedMessage) {
        let (message, handle) = match parse_owned(raw, &self.config.parse) {
            Ok((m, handle)) => (Arc::new(m), handle),
            Err((error, raw)) => {
                let receive_count = raw.receive_count();
                // Its group cannot go on past it: the group id is read from
                // the raw attributes, as the body may be what failed.
                self.intake_failed(raw.attributes.message_group_id(), &raw.sqs_message_id);
                self.events.push_back(Event::Malformed {
                    sqs_message_id: raw.sqs_message_id.clone(),
                    receive_count,
                    error,
                });
                // Left in the queue; a backoff keeps it from spinning, and a
                // redrive policy moves it to the dead-letter queue.
                if let Some(b) = self.config.failure_backoff {
                    let id = MessageId(self.fresh_id());
                    let state = State::Acquiring { sent_at: self.now };
                    let content = Content::Malformed {
                        sqs_message_id: raw.sqs_message_id,
                    };
                    self.entries.insert(
                        id,
                        Entry::new(raw.receipt_handle, content, LockKey::from(""), state),
                    );
                    self.return_or_forget(id, b.delay(receive_count));
                }
                return;
            }
        };
        let id = MessageId(self.fresh_id());
        if let Some(behind) = self.behind_failure(&message) {
            self.send_back_on_arrival(id, message, handle, &behind);
            return;
        }
        if !self.config.accepts(&message.event) {
            self.on_unmatched(id, message, handle);
            return;
        }
        if self.given_up.contains(&message.sqs_message_id) {
            self.hand_back(id, message, handle);
            return;
        }
        // Built in a reused buffer: one allocation, the shared key's own.
        self.config.write_lock_key(
            &mut self.key_buf,
            message.sns_message_id.as_deref(),
            &message.sqs_message_id,
        );
        let lock_key = LockKey::from(self.key_buf.as_str());
        let next_upkeep = self.now + self.config.heartbeat_interval;
        let state = State::Waiting { next_upkeep };
        let content = Content::Parsed(message);
        self.entries
            .insert(id, Entry::new(handle, content, lock_key, state));
        if self.shutting_down() {
            self.return_or_forget(id, Duration::ZERO);
        } else {
            self.enqueue_waiting(id);
            self.reschedule(id);
        }
    }

    /// A message whose event the consumer's own filters refuse: never
    /// dispatched. Deleted if so configured, else left in the queue (hidden
    /// for the failure backoff, if one is set) for its dead-letter queue.
    pub(super) fn on_unmatched(
        &mut self,
        id: MessageId,
        message: SharedMessage,
        handle: ReceiptHandle,
    ) {
        let delete = self.config.delete_unmatched;
        let receive_count = message.receive_count;
        if !delete {
            // Left in the queue: its group cannot go on past it.
            self.intake_failed(message.group_id.as_deref(), &message.sqs_message_id);
        }
        self.events.push_back(Event::Unmatched {
            message: message.clone(),
            deleted: delete,
        });
        let state = State::Acquiring { sent_at: self.now };
        let content = Content::Parsed(message);
        self.entries
            .insert(id, Entry::new(handle, content, LockKey::from(""), state));
        match self.config.failure_backoff {
            _ if delete => self.start_delete(id),
            Some(b) => self.return_or_forget(id, b.delay(receive_count)),
            None => self.settle(id),
        }
    }
}

#[cfg(test)]
#[path = "receive_tests.rs"]
mod tests;
