//! The invariants, checked while a schedule runs and once it has settled.
//!
//! The oracles judge by what the world knows for itself — which event each
//! SQS message carries, what the machines were told, what the handlers did —
//! never by the library's own reading of it (its lock keys, its filters),
//! so that a wrong reading is caught rather than shared. I8 (FIFO order)
//! has its own module, [`crate::fifo`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use iniesta_core::machine::{Event, MessageId};
use iniesta_core::{LockKey, LockToken, Message, Time};

use crate::coverage::{saw, Seen};
use crate::lock::SimLock;
use crate::schedule::DEDUPE;
use crate::world::{note, Check, Ident, Kind, Running, World};

/// A dispatch the machine is responsible for (from `Dispatch` until the
/// handler ends or the machine says `Abort`).
pub struct Active {
    pub generation: u64,
    pub id: MessageId,
    token: LockToken,
    /// The world took its lock away (below a majority): a second dispatch
    /// of the event is the world's doing, not the machine's.
    pub lock_lost: bool,
}

/// A token some acquire wrote.
pub struct TokenInfo {
    key: LockKey,
    generation: u64,
    /// A call with it met a fault, so its lock may linger until its TTL.
    faulted: bool,
    /// Its process crashed.
    orphaned: bool,
}

#[derive(Default)]
pub struct Ledger {
    /// Every key the machines asked to lock.
    pub keys: BTreeSet<LockKey>,
    pub active: HashMap<Ident, Vec<Active>>,
    /// Events whose handler succeeded (at least once).
    pub succeeded: HashSet<Ident>,
    /// When a machine was first told `Completed(Ok)` for each event.
    pub told_completed: HashMap<Ident, Time>,
    pub dispatches: HashMap<Ident, u32>,
    /// The event each lock key was used for.
    pub key_owner: HashMap<LockKey, Ident>,
    pub tokens: HashMap<LockToken, TokenInfo>,
    /// Messages seen in a dead-letter queue.
    pub dead: HashSet<String>,
    /// Messages deleted from their queue, or refused by a service's
    /// filters and being deleted.
    pub deleted: HashSet<String>,
    /// Events whose handler fails permanently on every delivery.
    pub permanent: HashSet<Ident>,
    /// Events given up on (a permanent failure) in a service that records
    /// and deletes them.
    pub given_up: HashSet<Ident>,
    /// Messages returned after a retry-after: hidden until then, and the
    /// delay asked for.
    pub hidden_until: HashMap<String, (Time, Duration)>,
    /// The latest receive count of each message.
    pub latest_receive: HashMap<String, u32>,
    /// Until when each message is hidden, by its latest receive or
    /// visibility change.
    pub hidden: HashMap<String, Time>,
}

impl Ledger {
    /// Ends an active dispatch; whether it was active.
    pub fn end_active(&mut self, ident: &Ident, generation: u64, id: MessageId) -> bool {
        let Some(list) = self.active.get_mut(ident) else {
            return false;
        };
        let before = list.len();
        list.retain(|a| !(a.generation == generation && a.id == id));
        let ended = list.len() < before;
        if list.is_empty() {
            self.active.remove(ident);
        }
        ended
    }

    pub fn orphan(&mut self, generation: u64) {
        for info in self.tokens.values_mut() {
            if info.generation == generation {
                info.orphaned = true;
            }
        }
    }

    pub fn acquired(&mut self, token: &LockToken, key: &LockKey, generation: u64, faulted: bool) {
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                key: key.clone(),
                generation,
                faulted,
                orphaned: false,
            },
        );
    }

    pub fn called(&mut self, token: &LockToken, faulted: bool) {
        if let Some(info) = self.tokens.get_mut(token) {
            info.faulted |= faulted;
        }
    }

    pub fn lock_lost(&mut self, token: &LockToken) {
        for a in self.active.values_mut().flatten() {
            if &a.token == token {
                a.lock_lost = true;
            }
        }
    }

    /// The world lost the completion record of `key` below a majority: the
    /// event may run again, legitimately.
    pub fn record_lost(&mut self, key: &LockKey) {
        if let Some(ident) = self.key_owner.get(key) {
            saw(Seen::RecordLost);
            self.told_completed.remove(ident);
        }
    }

    /// Whether a lock held by `token` is accounted for: by a running
    /// dispatch, a call that met a fault, or a process that crashed.
    pub fn accounted_for(&self, token: &LockToken) -> bool {
        let running = self.active.values().flatten().any(|a| &a.token == token);
        running
            || self
                .tokens
                .get(token)
                .is_some_and(|i| i.faulted || i.orphaned)
    }

    /// A lock of process `generation` still held, and not excused by a
    /// fault.
    pub fn still_held(&self, generation: u64, lock: &dyn SimLock) -> Option<(LockKey, LockToken)> {
        let mut held: Vec<_> = self
            .tokens
            .iter()
            .filter(|(t, i)| {
                i.generation == generation && !i.faulted && lock.held_by(&i.key, t) > 0
            })
            .map(|(t, i)| (i.key.clone(), t.clone()))
            .collect();
        held.sort();
        held.into_iter().next()
    }
}

impl World {
    /// Every running dispatch loses its cover (its heartbeats come late).
    pub fn uncover_all(&mut self) {
        for proc in &mut self.procs {
            for r in proc.running.values_mut() {
                r.covered = false;
            }
        }
    }

    /// A machine dispatches message `id` (carrying `message`) under `token`.
    /// Checks the filters, I1 and I3, and that no two events share a lock
    /// key.
    pub fn on_dispatch(
        &mut self,
        p: usize,
        id: MessageId,
        message: &Message,
        token: LockToken,
    ) -> Check {
        let s = self.procs[p].service;
        let generation = self.procs[p].generation;
        let now = self.clock.now();
        let sqs_id = message.sqs_message_id.clone();
        let Some(msg) = self.msgs.get(&sqs_id) else {
            return Err(self.violation(format!("dispatch of unknown message {sqs_id}")));
        };
        if !self.services[s].matches(&message.event) || !matches!(msg.kind, Kind::Event(_)) {
            let msg = format!(
                "filters: svc{s} dispatched {} ({sqs_id}), outside its filters {:?}",
                message.event, self.services[s].filters
            );
            return Err(self.violation(msg));
        }
        let Kind::Event(ident) = &msg.kind else {
            unreachable!("checked above");
        };
        let ident = ident.clone();
        let Some(key) = self.procs[p].acquired.get(&token).cloned() else {
            let msg =
                format!("{ident} dispatched under {token}, which no acquire of proc {p} gave");
            return Err(self.violation(msg));
        };
        if let Some(other) = self.ledger.key_owner.get(&key) {
            if *other != ident {
                let msg = format!(
                    "I7: {ident} is locked under {key}, the key of {other} too: one service's \
                     lock or completion record would stand in for another's event"
                );
                return Err(self.violation(msg));
            }
        }
        self.ledger.key_owner.insert(key.clone(), ident.clone());
        let actives = self.ledger.active.get(&ident);
        if actives.is_some_and(|l| !l.is_empty() && l.iter().all(|a| a.lock_lost)) {
            saw(Seen::LockLostOverlap);
        }
        if let Some(a) = actives.and_then(|l| l.iter().find(|a| !a.lock_lost)) {
            let msg = format!(
                "I1: {ident} dispatched by proc {p}/g{generation} ({id:?}) while g{} ({:?}) runs it",
                a.generation, a.id
            );
            return Err(self.violation(msg));
        }
        self.check_not_given_up(p, &sqs_id, message.receive_count)?;
        if let Some(t) = self.ledger.told_completed.get(&ident) {
            if now < *t + DEDUPE {
                let msg = format!(
                    "I3: {ident} dispatched again at {now:?}; a machine was told it completed at {t:?}"
                );
                return Err(self.violation(msg));
            }
        }
        let fifo = self.check_fifo_start(p, id, &sqs_id, &ident)?;
        self.ledger
            .active
            .entry(ident.clone())
            .or_default()
            .push(Active {
                generation,
                id,
                token: token.clone(),
                lock_lost: false,
            });
        *self.ledger.dispatches.entry(ident.clone()).or_default() += 1;
        saw(Seen::Dispatch);
        let hb = self.params.lock_timeout.mul_f64(0.6);
        let span = self.procs[p].skew.true_span(hb);
        let delivery = self
            .received_at
            .get(&(sqs_id.clone(), message.receive_count));
        // The latest delivery, hidden past the first heartbeat: by the
        // receive, or by a visibility change since (one that kept it hidden
        // while it waited for a slot may have shortened it).
        let latest = self.ledger.latest_receive.get(&sqs_id) == Some(&message.receive_count);
        let hidden = self.ledger.hidden.get(&sqs_id);
        let covered = delivery.is_some() && latest && hidden.is_some_and(|t| now + span < *t);
        let handle = delivery.map(|(_, h)| h.clone());
        let started = self.local(p);
        if covered {
            saw(Seen::Covered);
        }
        let proc = &mut self.procs[p];
        proc.by_token.insert(token, id);
        if let Some(handle) = &handle {
            proc.by_handle.insert(handle.clone(), id);
        }
        proc.dispatched.insert(id, ident.clone());
        proc.running.insert(
            id,
            Running {
                ident,
                sqs_id,
                aborted: false,
                covered,
                handle,
                started,
                hung: false,
                group: fifo.group,
                rerun: fifo.rerun,
            },
        );
        Ok(())
    }

    /// Visibility (and so the dead-letter queue): a message whose handler
    /// runs with every heartbeat on time is never received again.
    pub fn check_not_covered(&self, s: usize, sqs_id: &str, count: u32) -> Check {
        for (p, proc) in self.procs.iter().enumerate() {
            if proc.service != s {
                continue;
            }
            if let Some(r) = proc
                .running
                .values()
                .find(|r| r.covered && r.sqs_id == sqs_id)
            {
                let msg = format!(
                    "visibility: {sqs_id} of svc{s} ({}) was received again (receive #{count}) \
                     while its handler runs on proc {p} and every heartbeat went out on time and \
                     succeeded (lock timeout {:?}, queue visibility timeout {:?}); after \
                     maxReceiveCount receives it would reach the dead-letter queue",
                    r.ident, self.params.lock_timeout, self.services[s].params.visibility_timeout
                );
                return Err(self.violation(msg));
            }
        }
        Ok(())
    }

    /// A receive of service `s`'s queue moved messages to its dead-letter
    /// queue: none of them may be running with every heartbeat on time.
    pub fn on_dead_lettered(&mut self, s: usize) -> Check {
        for m in self.services[s].dlq.snapshot() {
            if !self.ledger.dead.insert(m.message_id.clone()) {
                continue;
            }
            saw(Seen::DeadLettered);
            if self.services[s].doomed.contains(&m.message_id) {
                saw(Seen::PermanentDeadLettered);
            }
            note!(
                self,
                "    {} moved to svc{s}'s dead-letter queue",
                m.message_id
            );
            for (p, proc) in self.procs.iter().enumerate() {
                if let Some(r) = proc
                    .running
                    .values()
                    .find(|r| r.covered && r.sqs_id == m.message_id)
                {
                    let msg = format!(
                        "DLQ: {} of svc{s} ({}) reached the dead-letter queue while its handler \
                         runs on proc {p} and every heartbeat went out on time and succeeded \
                         (lock timeout {:?}, queue visibility timeout {:?}, maxReceiveCount {})",
                        m.message_id,
                        r.ident,
                        self.params.lock_timeout,
                        self.services[s].params.visibility_timeout,
                        self.services[s].params.max_receive_count
                    );
                    return Err(self.violation(msg));
                }
            }
        }
        Ok(())
    }

    /// I2: a message is deleted only after a successful dispatch of its
    /// event in its own service, or a permanent failure the service deletes
    /// (malformed ones never; foreign ones only when the service deletes
    /// them; those of events that fail on every delivery never, when the
    /// service leaves permanent failures for the dead-letter queue).
    pub fn check_delete(&self, sqs_id: &str) -> Check {
        let Some(m) = self.msgs.get(sqs_id) else {
            return Err(self.violation(format!("delete of unknown message {sqs_id}")));
        };
        let s = m.service;
        match &m.kind {
            Kind::Malformed => {
                Err(self.violation(format!("I2: malformed message {sqs_id} of svc{s} deleted")))
            }
            Kind::Event(ident) if self.services[s].doomed.contains(sqs_id) => {
                Err(self.violation(format!(
                    "permanent: {sqs_id} ({ident}, {}) fails on every delivery and svc{s} does                      not delete permanent failures, but it was deleted instead of reaching the                      dead-letter queue",
                    m.event
                )))
            }
            Kind::Foreign if !self.services[s].params.delete_unmatched => {
                Err(self.violation(format!(
                    "filters: svc{s} deleted {sqs_id} ({}), outside its filters, instead of \
                     leaving it for its dead-letter queue",
                    m.event
                )))
            }
            Kind::Event(ident)
                if !self.ledger.succeeded.contains(ident) && !self.ledger.given_up.contains(ident) =>
            {
                let elsewhere: Vec<String> = self
                    .ledger
                    .succeeded
                    .iter()
                    .filter(|i| i.id == ident.id && i.service != s)
                    .map(|i| i.to_string())
                    .collect();
                // When another service handled the same SNS id, its lock or
                // record most likely stood in for this service's event.
                let (name, hint) = if elsewhere.is_empty() {
                    ("I2", String::new())
                } else {
                    (
                        "I2/I7",
                        format!(
                            " (handled by {}: one service's lock or record stood in for \
                             another's event)",
                            elsewhere.join(", ")
                        ),
                    )
                };
                Err(self.violation(format!(
                    "{name}: {sqs_id} ({ident}, {}) deleted without a successful dispatch in \
                     svc{s}{hint}",
                    m.event
                )))
            }
            _ => Ok(()),
        }
    }

    /// I4: a release answered `Ok` really freed the lock: no majority of the
    /// nodes still holds our token.
    pub fn check_released(&self, key: &LockKey, token: &LockToken) -> Check {
        let held = self.lock.held_by(key, token);
        let n = self.lock.nodes();
        if held > n - self.lock.needed() {
            return Err(self.violation(format!(
                "I4: release of {key} answered Ok, but {token} still holds it on {held} of {n} nodes"
            )));
        }
        Ok(())
    }

    /// I3: a complete is refused only for another owner's live lock (on so
    /// many nodes that no majority can take the record); a key that is free
    /// or expired takes it, or a later copy would run the handler again.
    pub fn check_complete_refused(&self, key: &LockKey, token: &LockToken) -> Check {
        let others: usize = self
            .lock
            .holders(key)
            .iter()
            .filter(|(t, _)| t != token)
            .map(|(_, n)| n)
            .sum();
        let n = self.lock.nodes();
        if others <= n - self.lock.needed() {
            return Err(self.violation(format!(
                "I3: complete of {key} answered NotHeld, but another owner's lock holds it on \
                 only {others} of {n} nodes: no record is kept, so a copy would run again"
            )));
        }
        Ok(())
    }

    /// I6: a finished shutdown left nothing running and no lock of its own;
    /// the process is then restarted, as a supervisor would.
    pub fn check_shutdown(&mut self, p: usize) -> Check {
        if !self.procs[p].consumer.is_stopped() {
            return Ok(());
        }
        let proc = &self.procs[p];
        if !proc.running.is_empty() {
            let msg = format!(
                "I6: proc {p} finished shutdown with handlers running: {:?}",
                proc.running.keys().collect::<Vec<_>>()
            );
            return Err(self.violation(msg));
        }
        if !proc.pending.is_empty() {
            let msg = format!(
                "I6: proc {p} finished shutdown with IO outstanding: {:?}",
                proc.pending
            );
            return Err(self.violation(msg));
        }
        if let Some((key, token)) = self.ledger.still_held(proc.generation, &*self.lock) {
            let msg = format!("I6: proc {p} finished shutdown still holding {key} ({token})");
            return Err(self.violation(msg));
        }
        saw(Seen::ShutdownDone);
        note!(self, "  proc {p} stopped; restarted");
        let (slot, service) = (proc.slot, proc.service);
        self.procs[p] = self.fresh_proc(slot, service);
        Ok(())
    }

    /// Looks at one event of process `p`; whether it was `Stopped`.
    pub fn on_event(
        &mut self,
        p: usize,
        event: Event,
    ) -> Result<bool, proptest::test_runner::TestCaseError> {
        match event {
            Event::Stopped => {
                if !self.procs[p].running.is_empty() {
                    let msg = format!(
                        "I6: proc {p} reported Stopped with handlers running: {:?}",
                        self.procs[p].running.keys().collect::<Vec<_>>()
                    );
                    return Err(self.violation(msg));
                }
                Ok(true)
            }
            Event::GivenUp { message, deleted } => {
                let s = self.procs[p].service;
                if deleted != self.services[s].params.delete_permanent_failures {
                    let msg = format!(
                        "permanent: proc {p} gave {} up with deleted: {deleted}, against its \
                         service's delete_permanent_failures",
                        message.sqs_message_id
                    );
                    return Err(self.violation(msg));
                }
                Ok(false)
            }
            Event::ReturnedForOrder { message, .. } => {
                self.on_returned_for_order(p, &message.sqs_message_id)?;
                Ok(false)
            }
            Event::Unmatched { message, deleted } => {
                saw(Seen::Unmatched);
                if deleted {
                    // Its journey is decided: for I8 it has ended.
                    self.ledger.deleted.insert(message.sqs_message_id.clone());
                }
                let s = self.procs[p].service;
                if self.services[s].matches(&message.event) {
                    let msg = format!(
                        "filters: svc{s} refused {} ({}) although its filters {:?} match it",
                        message.event, message.sqs_message_id, self.services[s].filters
                    );
                    return Err(self.violation(msg));
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}
