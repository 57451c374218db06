//! The end of a schedule: faults stop, an operator moves what reached a
//! dead-letter queue back, and the world runs to quiescence, where
//! liveness is judged (I5, I7, and the dead-letter queue of permanent
//! failures).

use std::time::Duration;

use iniesta_core::{AcquireOutcome, LockKey, Time};

use crate::coverage::{saw, Seen};
use crate::ops::Op;
use crate::world::{note, Check, Ident, Kind, Msg, World};

impl World {
    /// As an operator does after an incident: moves the events in each
    /// dead-letter queue back to their queue (as new messages; in raw
    /// delivery that makes them new events), all but those that fail on
    /// every delivery. Whether anything moved.
    fn redrive(&mut self) -> bool {
        let mut moved = false;
        for s in 0..self.services.len() {
            // Each message is looked at once: what stays hides for an hour,
            // so that the next receive finds the rest. A FIFO dead-letter
            // queue delivers nothing of a group with a message in flight,
            // so there what stays goes to the end of its group instead.
            let mut left = self.services[s].dlq.len();
            while left > 0 {
                let dlq = self.services[s].dlq.clone();
                let got = dlq.receive_now(10, Some(Duration::from_secs(3600)));
                if got.is_empty() {
                    break;
                }
                left = left.saturating_sub(got.len());
                let mut stays = Vec::new();
                for m in got {
                    let Some(Msg {
                        kind: Kind::Event(ident),
                        event,
                        ..
                    }) = self.msgs.get(&m.sqs_message_id)
                    else {
                        stays.push(m);
                        continue;
                    };
                    if self.services[s].doomed.contains(&m.sqs_message_id) {
                        stays.push(m);
                        continue;
                    }
                    let (old, event) = (ident.clone(), *event);
                    let _ = dlq.delete_now(&m.receipt_handle);
                    // Back at the end of its group, as a new message.
                    let group = m.attributes.message_group_id().map(str::to_owned);
                    let attrs = m.message_attributes.clone().into_map();
                    let (id, group) = self.enqueue(s, m.body.clone(), attrs, group);
                    let ident = if self.services[s].params.raw {
                        let new = Ident {
                            service: s,
                            id: id.clone(),
                        };
                        let targets = if self.settled(&old) {
                            self.expected.get(&old).cloned()
                        } else {
                            self.expected.remove(&old)
                        };
                        if self.ledger.permanent.contains(&old) {
                            self.ledger.permanent.insert(new.clone());
                        }
                        self.expected
                            .insert(new.clone(), targets.unwrap_or_default());
                        new
                    } else {
                        old
                    };
                    note!(self, "  redrove {} to svc{s} as {id}", m.sqs_message_id);
                    saw(Seen::Redriven);
                    moved = true;
                    self.msgs.insert(
                        id,
                        Msg {
                            service: s,
                            event,
                            kind: Kind::Event(ident),
                            group,
                        },
                    );
                }
                if self.params.fifo {
                    for m in stays {
                        self.requeue_dead(s, m);
                    }
                }
            }
        }
        moved
    }

    /// Faults stop; the world runs until every event is handled and every
    /// queue holds only what must stay, then checks I5, I7 and that
    /// permanent failures reached their dead-letter queue. When nothing is
    /// left to do, time moves on by half a second, or, when the queues hide
    /// a message, to the first moment a process or a queue has something
    /// to do (a retry-after may hide a message for hours).
    pub fn quiesce(&mut self) -> Check {
        note!(self, "--- faults stop ---");
        self.beats = true;
        self.answer_heartbeats()?;
        let mut idle = 0;
        for _ in 0..200_000 {
            // Once every event got where it must, the calls still out are
            // carried out (a release after an abort, after a lock that came
            // too late), but no more receives.
            let done = self.all_done();
            // Real work first (but no hung handler before it is aborted); a
            // receive only when its queue has something.
            let pick = (0..self.procs.len()).find_map(|p| {
                let proc = &self.procs[p];
                let visible = !done && self.deliverable(proc.service);
                proc.pending
                    .iter()
                    .position(|c| match c.op {
                        Op::Receive { .. } => visible,
                        Op::Handler { id } => {
                            !proc.running.get(&id).is_some_and(|r| r.hung && !r.aborted)
                        }
                        _ => true,
                    })
                    .map(|i| (p, i))
            });
            match pick {
                Some((p, i)) => {
                    idle = 0;
                    let pending = self.procs[p].pending.remove(i);
                    self.run_op(p, pending, crate::lock::Faults::NONE)?;
                    self.settle()?;
                }
                None if done => break,
                None if self.redrive() => {}
                None => {
                    idle += 1;
                    if idle > 300 {
                        break;
                    }
                    let half = Duration::from_millis(500);
                    let now = self.clock.now();
                    let wake = self
                        .procs
                        .iter()
                        .filter_map(|p| p.consumer.poll_timeout().map(|t| p.skew.true_time(t)))
                        .min();
                    let step = match (self.next_visible(), wake) {
                        (None, _) => half,
                        (Some(v), w) => w
                            .map_or(v, |w| w.min(v))
                            .saturating_duration_since(now)
                            .max(half),
                    };
                    self.advance(step, true, true)?;
                }
            }
        }
        self.check_quiescent()
    }

    /// When the next hidden message of a queue (not a dead-letter queue)
    /// becomes visible.
    fn next_visible(&self) -> Option<Time> {
        self.services
            .iter()
            .filter(|s| s.queue.visible_len() < s.queue.len())
            .flat_map(|s| s.queue.snapshot())
            .filter(|m| !m.visible && !m.deleted)
            .map(|m| m.visible_at)
            .min()
    }

    /// Whether `ident` got where it must: handled, or given up on in a
    /// service that records and deletes permanent failures, or (failing on
    /// every delivery) left for the dead-letter queue.
    pub fn settled(&self, ident: &Ident) -> bool {
        self.ledger.succeeded.contains(ident)
            || self.ledger.given_up.contains(ident)
            || (self.ledger.permanent.contains(ident)
                && !self.services[ident.service]
                    .params
                    .delete_permanent_failures)
    }

    fn all_done(&self) -> bool {
        self.expected.keys().all(|i| self.settled(i))
            && self.services.iter().all(|s| {
                s.queue.len() + s.dlq.len() == s.leftovers + s.doomed.len()
                    && s.doomed.iter().all(|id| self.ledger.dead.contains(id))
            })
    }

    /// I5 and I7 at quiescence.
    fn check_quiescent(&mut self) -> Check {
        let shared = self.services.len() > 1;
        for (ident, targets) in &self.expected {
            if self.settled(ident) {
                continue;
            }
            let msg =
                if shared && targets.len() > 1 {
                    format!(
                    "I7: svc{} never handled {ident}; its publish went to {:?}, which share one \
                     lock backend ({} dispatches)",
                    ident.service,
                    targets.iter().map(|s| format!("svc{s}")).collect::<Vec<_>>(),
                    self.ledger.dispatches.get(ident).unwrap_or(&0)
                )
                } else {
                    format!(
                        "I5: {ident} was never dispatched successfully ({} dispatches)",
                        self.ledger.dispatches.get(ident).unwrap_or(&0)
                    )
                };
            return Err(self.violation(msg));
        }
        self.check_doomed()?;
        for (s, service) in self.services.iter().enumerate() {
            let stay = service.leftovers + service.doomed.len();
            if service.queue.len() + service.dlq.len() != stay {
                let msg = format!(
                    "I5: {} messages left in svc{s}'s queue and {} in its dead-letter queue, {} \
                     of them malformed or foreign, {} failing on every delivery",
                    service.queue.len(),
                    service.dlq.len(),
                    service.leftovers,
                    service.doomed.len()
                );
                return Err(self.violation(msg));
            }
        }
        // Every lock still held belongs to a running dispatch, to a call
        // that met a fault, or to a process that crashed.
        for key in &self.ledger.keys {
            for (token, nodes) in self.lock.holders(key) {
                if !self.ledger.accounted_for(&token) {
                    let msg = format!(
                        "I5: at quiescence {key} is still locked by {token} on {nodes} node(s), \
                         for no running dispatch, no faulted call and no crashed process"
                    );
                    return Err(self.violation(msg));
                }
            }
        }
        self.clock
            .advance(self.params.lock_timeout + Duration::from_millis(1));
        if self.lock.locked() != 0 {
            let msg = format!("I5: {} locks outlived their TTL", self.lock.locked());
            return Err(self.violation(msg));
        }
        // And as a consumer sees it: an acquire of every key, with every
        // lock's TTL over, is never refused as busy (a record may answer
        // `Done`). The look inside above has its own expiry check; this one
        // goes through the backend's.
        let keys: Vec<LockKey> = self.ledger.keys.iter().cloned().collect();
        for key in keys {
            let ttl = self.params.lock_timeout;
            let got = self
                .lock
                .acquire(&key, ttl, Duration::ZERO, crate::lock::Faults::NONE);
            if matches!(got.outcome, AcquireOutcome::Busy) {
                let msg = format!(
                    "I5: after every lock's TTL, an acquire of {key} still answers Busy: the \
                     message could never be handled again"
                );
                return Err(self.violation(msg));
            }
        }
        Ok(())
    }
}
