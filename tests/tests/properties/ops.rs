//! The IO the machines ask for: recorded as pending calls when asked, and
//! carried out (with a fault, or none) when the schedule says so, in any
//! order. Batch calls are split into one call per entry where the real
//! service answers per entry, so that the answers come in any order too;
//! each answer names its batch and entry, as the machine asks. Which
//! message an entry stands for is the machine's business: the world finds
//! it by what it handed out itself (the lock token of a dispatch, the
//! receipt handle of a delivery) where a check needs it.

use std::fmt;
use std::time::Duration;

use iniesta_core::machine::{AbortReason, Action, BatchId, Input, MessageId, ReceiveId};
use iniesta_core::{
    BackendError, LockError, LockKey, LockToken, ReceiptHandle, ReceivedMessage, Time,
};

use crate::coverage::{saw, Seen};
use crate::lock::Faults;
use crate::schedule::Fault;
use crate::world::{note, Check, Kind, World};

pub enum Op {
    Receive {
        id: ReceiveId,
        max: u32,
    },
    Acquire {
        batch: BatchId,
        keys: Vec<LockKey>,
        ttl: Duration,
    },
    Handler {
        id: MessageId,
    },
    Extend {
        id: MessageId,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    },
    Complete {
        batch: BatchId,
        index: usize,
        /// The dispatch whose record this is.
        id: MessageId,
        key: LockKey,
        token: LockToken,
        keep_for: Duration,
    },
    Release {
        id: MessageId,
        key: LockKey,
        token: LockToken,
    },
    Delete {
        batch: BatchId,
        index: usize,
        handle: ReceiptHandle,
    },
    Visibility {
        batch: BatchId,
        index: usize,
        handle: ReceiptHandle,
        timeout: Duration,
        /// The running message this is a heartbeat's extension of (else a
        /// return).
        heartbeat: Option<MessageId>,
        /// A return after a retry-after: the delay the queue must then keep
        /// the message hidden for.
        not_before: Option<Duration>,
    },
}

impl Op {
    /// The message whose heartbeat this call is, if it is one.
    pub fn heartbeat_of(&self) -> Option<MessageId> {
        match self {
            Op::Extend { id, .. } => Some(*id),
            Op::Visibility { heartbeat, .. } => *heartbeat,
            _ => None,
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Receive { id, max } => write!(f, "Receive({}, max {max})", id.0),
            Op::Acquire { batch, keys, .. } => {
                let keys: Vec<_> = keys.iter().map(LockKey::as_str).collect();
                write!(f, "Acquire({}){keys:?}", batch.0)
            }
            Op::Handler { id } => write!(f, "Handler({})", id.0),
            Op::Extend { id, .. } => write!(f, "Extend({})", id.0),
            Op::Complete {
                batch, index, id, ..
            } => write!(f, "Complete({}/{index}, {})", batch.0, id.0),
            Op::Release { id, .. } => write!(f, "Release({})", id.0),
            Op::Delete {
                batch,
                index,
                handle,
            } => write!(f, "Delete({}/{index}, {handle})", batch.0),
            Op::Visibility {
                batch,
                index,
                handle,
                timeout,
                heartbeat,
                not_before,
            } => {
                write!(f, "Visibility({}/{index}, {handle}, {timeout:?}", batch.0)?;
                match (heartbeat, not_before) {
                    (Some(id), _) => write!(f, ", heartbeat of {})", id.0),
                    (None, Some(d)) => write!(f, ", retry after {d:?})"),
                    (None, None) => write!(f, ")"),
                }
            }
        }
    }
}

/// A call the machine made, and when (on its own clock) it made it.
pub struct Pending {
    pub op: Op,
    pub sent: Time,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.op.fmt(f)
    }
}

fn injected(what: &str) -> BackendError {
    BackendError::new("InternalError", format!("injected: {what}"))
}

impl World {
    /// Records what process `p`'s machine asks for. Answers that are due at
    /// once go to `deferred`; calls carried out at once (heartbeats while
    /// they are answered promptly) to `prompt`.
    pub fn on_action(
        &mut self,
        p: usize,
        action: Action,
        deferred: &mut Vec<Input>,
        prompt: &mut Vec<Pending>,
    ) -> Check {
        let sent = self.local(p);
        note!(
            self,
            "  proc{p}/g{} -> {action:?}",
            self.procs[p].generation
        );
        let beats = self.beats;
        let proc = &mut self.procs[p];
        let push = |proc: &mut crate::world::Proc, op: Op| proc.pending.push(Pending { op, sent });
        match action {
            Action::Receive { id, request } => push(
                proc,
                Op::Receive {
                    id,
                    max: request.max_messages,
                },
            ),
            Action::CancelReceive { id } => {
                let i = proc
                    .pending
                    .iter()
                    .position(|c| matches!(c.op, Op::Receive { id: r, .. } if r == id));
                if let Some(i) = i {
                    proc.pending.remove(i);
                    deferred.push(Input::Received {
                        id,
                        result: Ok(Vec::new()),
                    });
                }
            }
            Action::Acquire { batch, keys, ttl } => {
                self.ledger.keys.extend(keys.iter().cloned());
                push(proc, Op::Acquire { batch, keys, ttl });
            }
            Action::Dispatch {
                id, message, token, ..
            } => {
                self.on_dispatch(p, id, &message, token)?;
                self.procs[p].pending.push(Pending {
                    op: Op::Handler { id },
                    sent,
                });
            }
            Action::Abort { id, reason } => {
                if reason == AbortReason::TimedOut {
                    self.check_timed_out(p, id)?;
                }
                let proc = &mut self.procs[p];
                let generation = proc.generation;
                if let Some(r) = proc.running.get_mut(&id) {
                    if !r.aborted {
                        saw(Seen::Aborted);
                        r.aborted = true;
                        r.covered = false;
                        let ident = r.ident.clone();
                        self.ledger.end_active(&ident, generation, id);
                    }
                }
            }
            Action::Extend {
                id,
                key,
                token,
                ttl,
            } => {
                let op = Op::Extend {
                    id,
                    key,
                    token,
                    ttl,
                };
                if beats {
                    prompt.push(Pending { op, sent });
                } else {
                    push(proc, op);
                }
            }
            Action::Complete {
                batch,
                entries,
                keep_for,
            } => {
                for (index, (key, token)) in entries.into_iter().enumerate() {
                    let Some(&id) = proc.by_token.get(&token) else {
                        let msg = format!("I3: a completion record for {key} under {token}, which no dispatch of proc {p} held");
                        return Err(self.violation(msg));
                    };
                    proc.owed_complete.remove(&id);
                    push(
                        proc,
                        Op::Complete {
                            batch,
                            index,
                            id,
                            key,
                            token,
                            keep_for,
                        },
                    );
                }
            }
            Action::Release { id, key, token } => {
                if proc.owed_complete.contains(&id) {
                    let msg = format!(
                        "I3/permanent: {id:?} on proc {p} owes a completion record (a success, or \
                         a permanent failure its service deletes), but its lock is released \
                         instead"
                    );
                    return Err(self.violation(msg));
                }
                proc.owed_release.remove(&id);
                push(proc, Op::Release { id, key, token });
            }
            Action::Delete { batch, handles } => {
                for (index, handle) in handles.into_iter().enumerate() {
                    self.check_given_up_delete(p, &handle)?;
                    // Only a dispatched message can owe a release or a
                    // completion record.
                    if let Some(&id) = self.procs[p].by_handle.get(&handle) {
                        if self.procs[p].owed_release.contains(&id) {
                            let msg = format!("I4: failed dispatch {id:?} is being deleted");
                            return Err(self.violation(msg));
                        }
                        if self.procs[p].owed_complete.contains(&id) {
                            let msg = format!(
                                "I3: {id:?} is being deleted after a successful dispatch (or a \
                                 permanent failure its service deletes) without a completion \
                                 record asked for: a copy would run it again"
                            );
                            return Err(self.violation(msg));
                        }
                    }
                    self.procs[p].pending.push(Pending {
                        op: Op::Delete {
                            batch,
                            index,
                            handle,
                        },
                        sent,
                    });
                }
            }
            Action::ChangeVisibility { batch, entries } => {
                for (index, (handle, timeout)) in entries.into_iter().enumerate() {
                    let proc = &self.procs[p];
                    let heartbeat = proc
                        .by_handle
                        .get(&handle)
                        .copied()
                        .filter(|id| proc.running.get(id).is_some_and(|r| !r.aborted));
                    let not_before = match heartbeat {
                        Some(_) => None,
                        None => self.check_return(p, &handle, timeout)?,
                    };
                    let op = Op::Visibility {
                        batch,
                        index,
                        handle,
                        timeout,
                        heartbeat,
                        not_before,
                    };
                    if beats && heartbeat.is_some() {
                        prompt.push(Pending { op, sent });
                    } else {
                        push(&mut self.procs[p], op);
                    }
                }
            }
            other => {
                let msg = format!("unexpected action {other:?}");
                return Err(self.violation(msg));
            }
        }
        Ok(())
    }

    /// Answers every heartbeat call still pending, at once and successfully.
    pub fn answer_heartbeats(&mut self) -> Check {
        for p in 0..self.procs.len() {
            while let Some(i) = self.procs[p]
                .pending
                .iter()
                .position(|c| c.op.heartbeat_of().is_some())
            {
                let pending = self.procs[p].pending.remove(i);
                self.run_op(p, pending, Faults::NONE)?;
            }
        }
        self.settle()
    }

    /// Carries out one call of process `p` with faults `f`, and hands the
    /// machine its answer.
    pub fn run_op(&mut self, p: usize, pending: Pending, f: Faults) -> Check {
        let now = self.local(p);
        let elapsed = now.saturating_duration_since(pending.sent);
        note!(self, "  proc{p} runs {:?} with {:?}", pending.op, f);
        let s = self.procs[p].service;
        let generation = self.procs[p].generation;
        let fault = f.fault;
        let sent = pending.sent;
        let inputs: Vec<Input> = match pending.op {
            Op::Receive { id, max } => {
                let result = if fault == Fault::Fail {
                    Err(injected("ReceiveMessage"))
                } else {
                    let queue = &self.services[s].queue;
                    let moved = queue.stats().dead_lettered;
                    let got = queue.receive_now(max, None);
                    if queue.stats().dead_lettered != moved {
                        self.on_dead_lettered(s)?;
                    }
                    self.on_received(s, &got)?;
                    if fault != Fault::Lose {
                        self.owe_hand_backs(p, &got);
                    }
                    if fault == Fault::Lose {
                        Err(injected("ReceiveMessage reply lost"))
                    } else {
                        Ok(got)
                    }
                };
                vec![Input::Received { id, result }]
            }
            Op::Acquire { batch, keys, ttl } => {
                let mut inputs = Vec::with_capacity(keys.len());
                for (index, key) in keys.into_iter().enumerate() {
                    let a = self.lock.acquire(&key, ttl, elapsed, f);
                    if let Some(token) = &a.token {
                        self.ledger.acquired(token, &key, generation, a.faulted);
                        self.procs[p].acquired.insert(token.clone(), key.clone());
                    }
                    note!(self, "    {key}: {:?}", a.outcome);
                    inputs.push(Input::Acquired {
                        batch,
                        index,
                        outcome: a.outcome,
                    });
                }
                inputs
            }
            Op::Handler { id } => {
                if self.keeps_running(p, id, fault) {
                    let op = Op::Handler { id };
                    self.procs[p].pending.push(Pending { op, sent });
                    return Ok(());
                }
                let Some(r) = self.procs[p].running.remove(&id) else {
                    return Ok(());
                };
                if !r.aborted && !self.ledger.end_active(&r.ident, generation, id) {
                    let msg = format!(
                        "I1 bookkeeping: {} ended by {id:?} but is not active",
                        r.ident
                    );
                    return Err(self.violation(msg));
                }
                let outcome = self.handler_outcome(p, &r, fault);
                note!(self, "    {}: {outcome:?}", r.ident);
                self.on_handler_outcome(p, id, r, &outcome);
                vec![Input::HandlerFinished { id, outcome }]
            }
            Op::Extend {
                id,
                key,
                token,
                ttl,
            } => {
                let (result, faulted) = self.lock.extend(&key, &token, ttl, elapsed, f);
                if faulted || result.is_err() {
                    self.uncover(p, id);
                }
                vec![Input::Extended { id, result }]
            }
            Op::Complete {
                batch,
                index,
                id,
                key,
                token,
                keep_for,
            } => {
                let (result, faulted) = self.lock.complete(&key, &token, keep_for, f);
                self.ledger.called(&token, faulted);
                if result == Err(LockError::NotHeld) && !faulted {
                    self.check_complete_refused(&key, &token)?;
                }
                if result.is_ok() {
                    saw(Seen::ToldCompleted);
                    if let Some(ident) = self.procs[p].dispatched.get(&id) {
                        let t = self.clock.now();
                        self.ledger.told_completed.entry(ident.clone()).or_insert(t);
                    }
                }
                vec![Input::Completed {
                    batch,
                    index,
                    result,
                }]
            }
            Op::Release { id, key, token } => {
                let (result, faulted) = self.lock.release(&key, &token, f);
                self.ledger.called(&token, faulted);
                if let Some(owed) = self.procs[p].owed_return.get_mut(&id) {
                    owed.released = true;
                }
                if result.is_ok() {
                    self.check_released(&key, &token)?;
                }
                vec![Input::Released { id, result }]
            }
            Op::Delete {
                batch,
                index,
                handle,
            } => {
                let result = match fault {
                    Fault::Fail => Err(injected("DeleteMessage")),
                    Fault::Lose => Ok(()),
                    _ => {
                        let sqs_id = handle.as_str().split('/').next().unwrap_or_default();
                        self.check_delete(sqs_id)?;
                        let before = self.services[s].queue.len();
                        let r = self.services[s].queue.delete_now(&handle);
                        if self.services[s].queue.len() < before {
                            saw(Seen::Deleted);
                            self.ledger.deleted.insert(sqs_id.to_owned());
                            if matches!(self.msgs.get(sqs_id).map(|m| &m.kind), Some(Kind::Foreign))
                            {
                                self.services[s].leftovers -= 1;
                            }
                        }
                        r
                    }
                };
                vec![Input::Deleted {
                    batch,
                    index,
                    result,
                }]
            }
            Op::Visibility {
                batch,
                index,
                handle,
                timeout,
                heartbeat,
                not_before,
            } => {
                let queue = &self.services[s].queue;
                let (applied, result) = match fault {
                    Fault::Fail => (false, Err(injected("ChangeMessageVisibility"))),
                    Fault::Lose => {
                        let applied = queue.change_visibility_now(&handle, timeout).is_ok();
                        let lost = injected("ChangeMessageVisibility reply lost");
                        (applied, Err(lost))
                    }
                    _ => {
                        let r = queue.change_visibility_now(&handle, timeout);
                        (r.is_ok(), r)
                    }
                };
                let (sqs_id, _) = crate::outcomes::delivery_of(&handle);
                let sqs_id = sqs_id.to_owned();
                if applied {
                    let until = self.clock.now() + iniesta_core::sqs::visibility(timeout);
                    self.ledger.hidden.insert(sqs_id.clone(), until);
                }
                if let Some(delay) = not_before.filter(|_| applied) {
                    self.returned(&sqs_id, delay);
                }
                // Only a fault takes the cover away: an error without one
                // (a stale handle, a message no longer in flight) means the
                // visibility already lapsed, which the cover exists to catch.
                if let Some(id) = heartbeat.filter(|_| matches!(fault, Fault::Fail | Fault::Lose)) {
                    self.uncover(p, id);
                }
                vec![Input::VisibilityChanged {
                    batch,
                    index,
                    result,
                }]
            }
        };
        for input in inputs {
            self.procs[p].consumer.handle_input(now, input);
        }
        Ok(())
    }

    fn uncover(&mut self, p: usize, id: MessageId) {
        if let Some(r) = self.procs[p].running.get_mut(&id) {
            r.covered = false;
        }
    }

    /// A receive returned `got` from service `s`'s queue.
    fn on_received(&mut self, s: usize, got: &[ReceivedMessage]) -> Check {
        let now = self.clock.now();
        for m in got {
            note!(
                self,
                "    received {} #{}",
                m.sqs_message_id,
                m.receive_count()
            );
            self.check_not_covered(s, &m.sqs_message_id, m.receive_count())?;
            self.on_receipt(&m.sqs_message_id, m.receive_count())?;
            let until = now + self.services[s].params.visibility_timeout;
            self.ledger.hidden.insert(m.sqs_message_id.clone(), until);
            let delivery = (m.sqs_message_id.clone(), m.receive_count());
            self.received_at
                .insert(delivery, (now, m.receipt_handle.clone()));
        }
        Ok(())
    }
}
