//! Message groups in the world: how messages get their group (and a FIFO
//! queue its deduplication ids), and the invariant I8 that judges them.
//!
//! I8, FIFO: within a message group, order is kept and no two messages are
//! in flight together.
//!
//! In a FIFO world ([`Params::fifo`](crate::schedule::Params::fifo)) the
//! topic and every queue are FIFO and the messages are spread over a few
//! groups. The world judges by the order in which it sent each group's
//! messages to each queue ([`World::group_order`], the order SQS gives its
//! sequence numbers), never by the consumer's reading of the group
//! attributes. Whenever a machine dispatches message `m` of group `g` in
//! service `s`:
//!
//! - **exclusive**: no other message of `g` in `s` is active (dispatched,
//!   its handler not ended, and the machine has not said `Abort`: the
//!   machine's responsibility for a handler ends there, as for I1), on any
//!   process;
//! - **in order**: every message sent to `s` in `g` before `m` has *ended*:
//!   its event was handled (a handler returned `Ok`, here or on any
//!   process, for this copy or another copy of the event: a later copy then
//!   meets the completion record), or given up on and recorded where the
//!   service deletes permanent failures, or the message was deleted (or,
//!   an event outside the service's filters, refused for deletion), or it
//!   reached the dead-letter queue.
//!
//! Why "ended" and not "the starts are in sequence order": under
//! redelivery a message runs again after its failure (m1, m1, m2 is the
//! order kept), a message the redrive policy moved away lets its group go
//! on without it (SQS does the same), and an operator's redrive sends it
//! back as a new message at the end of its group. A start after every
//! earlier message ended implies that the first successful runs of a
//! group follow the send order, and that nothing of a group overtakes a
//! failed message still waiting to be tried again, which is what a FIFO
//! consumer promises. Handler *starts* are judged, not deletes: the next
//! message may start while the previous one's delete is still on its way,
//! once its completion record is written.
//!
//! Excused, as the other invariants excuse them: a message whose event was
//! handled before it started (a run again after the world lost the
//! completion record; I3 judges it), and an overlap with a dispatch whose
//! lock the world took away. Both are the world's doing, not the
//! machine's.

use std::collections::{BTreeMap, HashSet};

use iniesta_core::machine::MessageId;
use iniesta_core::{AttributeValue, OutgoingMessage, ReceivedMessage};

use crate::coverage::{saw, Seen};
use crate::world::{Check, Ident, Kind, World};

/// A dispatch's standing for I8: its group, and whether I8 excuses it.
pub struct Start {
    pub group: Option<String>,
    pub rerun: bool,
}

impl World {
    /// The group of the next message sent, if the world has groups: the
    /// groups take the messages in turn.
    pub fn next_group(&mut self) -> Option<String> {
        let groups = u64::from(self.params.groups);
        if !self.params.fifo && groups < 2 {
            return None;
        }
        self.sends += 1;
        Some(format!("g{}", self.sends % groups.max(1)))
    }

    /// Sends `body` to service `s`'s queue in `group`, and notes its place
    /// in the group's order; returns the SQS id and the group. Every send
    /// of a FIFO world has its own deduplication id: a copy of a message
    /// stands for SNS delivering it again after the deduplication window,
    /// which the model is there to exercise.
    pub fn enqueue(
        &mut self,
        s: usize,
        body: String,
        attrs: BTreeMap<String, AttributeValue>,
        group: Option<String>,
    ) -> (String, Option<String>) {
        let Some(group) = group else {
            return (self.services[s].queue.send(body, attrs), None);
        };
        let mut out = OutgoingMessage::new(body, attrs).with_group_id(group.clone());
        if self.params.fifo {
            self.dedups += 1;
            out = out.with_deduplication_id(format!("d{}", self.dedups));
        }
        let queue = &self.services[s].queue;
        let id = queue.send_message(out).expect("a valid message");
        self.group_order
            .entry((s, group.clone()))
            .or_default()
            .push(id.clone());
        (id, Some(group))
    }

    /// Puts `m`, received from service `s`'s FIFO dead-letter queue and
    /// staying there, back at the end of its group in that queue (as a new
    /// message: only the count of what stays is judged), so that the
    /// operator's next receive gets past it.
    pub fn requeue_dead(&mut self, s: usize, m: ReceivedMessage) {
        let dlq = self.services[s].dlq.clone();
        let Some(group) = m.attributes.message_group_id().map(str::to_owned) else {
            return;
        };
        self.dedups += 1;
        let out = OutgoingMessage::new(m.body, m.message_attributes.into_map())
            .with_group_id(group)
            .with_deduplication_id(format!("d{}", self.dedups));
        if dlq.send_message(out).is_ok() {
            let _ = dlq.delete_now(&m.receipt_handle);
        }
    }

    /// Whether a receive of service `s`'s queue would find something. On a
    /// FIFO queue a visible message waits while a message of its group is
    /// in flight (a retry-after may hold a group for hours): receiving in
    /// vain would keep the world from letting that time pass.
    pub fn deliverable(&self, s: usize) -> bool {
        let queue = &self.services[s].queue;
        if queue.visible_len() == 0 {
            return false;
        }
        if !self.params.fifo {
            return true;
        }
        let snapshot = queue.snapshot();
        let blocked: HashSet<&str> = snapshot
            .iter()
            .filter(|m| !m.visible && !m.deleted)
            .filter_map(|m| m.group_id.as_deref())
            .collect();
        snapshot
            .iter()
            .any(|m| m.visible && !m.group_id.as_deref().is_some_and(|g| blocked.contains(g)))
    }

    /// I8 for a dispatch by process `p` (as message `id`) of SQS message
    /// `sqs_id`, carrying `ident`.
    pub fn check_fifo_start(
        &self,
        p: usize,
        id: MessageId,
        sqs_id: &str,
        ident: &Ident,
    ) -> Result<Start, proptest::test_runner::TestCaseError> {
        let group = self.msgs.get(sqs_id).and_then(|m| m.group.clone());
        let rerun = self.ledger.succeeded.contains(ident) || self.ledger.given_up.contains(ident);
        let start = Start {
            group: group.clone(),
            rerun,
        };
        let Some(group) = group.filter(|_| self.params.fifo && !rerun) else {
            return Ok(start);
        };
        let s = self.procs[p].service;
        for (q, proc) in self.procs.iter().enumerate() {
            if proc.service != s {
                continue;
            }
            for (rid, r) in &proc.running {
                if r.aborted || r.rerun || r.group.as_deref() != Some(&group) {
                    continue;
                }
                let lost = self.ledger.active.get(&r.ident).is_some_and(|list| {
                    list.iter()
                        .any(|a| a.generation == proc.generation && a.id == *rid && a.lock_lost)
                });
                if lost {
                    continue;
                }
                let msg = format!(
                    "I8: {sqs_id} ({ident}) of group {group} in svc{s} dispatched by proc {p} \
                     ({id:?}) while {} ({}) of the same group runs on proc {q} ({rid:?}): a \
                     group runs one message at a time",
                    r.sqs_id, r.ident
                );
                return Err(self.violation(msg));
            }
        }
        let order = &self.group_order[&(s, group.clone())];
        let at = order.iter().position(|m| m == sqs_id).unwrap_or(0);
        if let Some(e) = order[..at].iter().find(|e| !self.fifo_ended(e)) {
            let before = order.iter().position(|m| m == e).unwrap_or(0);
            let what = match self.msgs.get(e).map(|m| &m.kind) {
                Some(Kind::Event(i)) => i.to_string(),
                Some(Kind::Foreign) => "foreign".into(),
                Some(Kind::Malformed) => "malformed".into(),
                None => "unknown".into(),
            };
            let msg = format!(
                "I8: {sqs_id} ({ident}), message #{at} of group {group} in svc{s}, dispatched by \
                 proc {p} ({id:?}) while message #{before} of the group, {e} ({what}), is \
                 neither handled, nor deleted, nor in the dead-letter queue: a group is \
                 handled in order"
            );
            return Err(self.violation(msg));
        }
        if at > 0 {
            saw(Seen::FifoBehind);
        }
        Ok(start)
    }

    /// Whether SQS message `sqs_id` has ended, for I8: its event handled
    /// (or given up on and recorded), it deleted, or it dead-lettered.
    fn fifo_ended(&self, sqs_id: &str) -> bool {
        let handled = match self.msgs.get(sqs_id).map(|m| &m.kind) {
            Some(Kind::Event(i)) => {
                self.ledger.succeeded.contains(i) || self.ledger.given_up.contains(i)
            }
            _ => false,
        };
        handled || self.ledger.deleted.contains(sqs_id) || self.ledger.dead.contains(sqs_id)
    }

    /// A process sent a message back for its group's order: only a FIFO
    /// world's consumers may (a standard queue's group ids order nothing).
    pub fn on_returned_for_order(&self, p: usize, sqs_id: &str) -> Check {
        if !self.params.fifo {
            let msg = format!(
                "I8: proc {p} sent {sqs_id} back for its group's order, but its queue is a \
                 standard queue, whose group ids order nothing"
            );
            return Err(self.violation(msg));
        }
        saw(Seen::ReturnedForOrder);
        Ok(())
    }
}
