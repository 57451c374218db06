//! Batch routes in the driver: dispatches of one batch route gathered into
//! one call of its batch handler, and the call's outcomes answered member
//! by member.
//!
//! The machine still dispatches, times and settles each message on its
//! own; only the driver knows that several dispatches share one call. The
//! rules:
//!
//! - a batch fills until it has `max_size` members (cut to the consumer's
//!   `max_in_flight`, since each member holds a slot), or until `max_wait`
//!   (at most half the handler timeout, which the wait counts against)
//!   has passed since its first member arrived, or until shutdown begins;
//!   it then runs at once;
//! - each member is answered with its own outcome; a panic answers every
//!   member [`DispatchOutcome::Panicked`];
//! - an abort of a member still being gathered takes it out and answers it
//!   [`DispatchOutcome::Aborted`] at once. An abort of a member of a running
//!   call stops the whole call: its future is dropped, since the machine
//!   counts the member stopped once answered and the call could still
//!   touch it. The members asked to abort are answered `Aborted`, the
//!   others a failure that says why (retried after the backoff; their own
//!   locks were fine, so only their run is repeated).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::future::{AbortHandle, Abortable};
use futures::FutureExt;

use super::execute::panic_text;
use super::*;
use crate::handler::{fit_results, Delivery};
use crate::machine::{AbortReason, DispatchOutcome};
use crate::registry::{BatchRoute, HandlerId};

/// A batch route's dispatches waiting for their call.
pub(super) struct Gathering {
    route: HandlerId,
    members: Vec<(MessageId, Delivery)>,
    /// The most members it takes.
    max: usize,
    /// When it runs, full or not.
    deadline: Time,
}

/// A running handler: how to stop it, its lock-lost signal, and for a
/// member of a batch call, the call's shared record of aborts and the
/// member's place in it.
pub(super) struct Running {
    pub(super) stop: Stop,
    pub(super) lock_lost: LockLost,
    pub(super) batch: Option<(Arc<Aborts>, usize)>,
}

/// Where a running handler runs, to stop it there.
pub(super) enum Stop {
    /// A single handler, on this worker.
    Worker(usize),
    /// A batch call, on a task of its own.
    Call(AbortHandle),
}

/// Which members of one batch call were asked to abort, and why.
pub(super) struct Aborts {
    /// The members' SQS message ids, to name them in the others' failure.
    names: Vec<String>,
    asked: Mutex<Vec<Option<AbortReason>>>,
}

impl Aborts {
    fn ask(&self, member: usize, reason: AbortReason) {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked[member].get_or_insert(reason);
    }

    /// The outcome of each member of a call that was stopped.
    fn outcomes(&self) -> Vec<DispatchOutcome> {
        let asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        let first = asked
            .iter()
            .enumerate()
            .find_map(|(i, a)| a.map(|r| (i, r)));
        asked
            .iter()
            .map(|a| match (a, first) {
                (Some(_), _) => DispatchOutcome::Aborted,
                (None, Some((i, reason))) => DispatchOutcome::failed_with(format!(
                    "the batch call this message was in was aborted because its member {} \
                     was ({}); the message itself did not fail and is retried",
                    self.names[i],
                    reason_text(reason)
                )),
                (None, None) => DispatchOutcome::failed_with(
                    "the batch call this message was in was aborted; the message is retried",
                ),
            })
            .collect()
    }
}

fn reason_text(reason: AbortReason) -> &'static str {
    match reason {
        AbortReason::LockExpired => "its lock expired",
        AbortReason::LockLost => "its lock was lost",
        AbortReason::ShutdownGrace => "shutdown's grace ran out",
        AbortReason::TimedOut => "it outlived the handler timeout",
        // A reason added later.
        #[allow(unreachable_patterns)]
        _ => "aborted",
    }
}

impl<Q, L, R> Driver<Q, L, R>
where
    Q: Queue + ?Sized,
    L: LockBackend + ?Sized,
    R: Runtime,
{
    /// Adds a dispatch of the batch route `route` to its gathering batch
    /// (starting one), and runs the batch if that filled it.
    pub(super) fn gather(&mut self, id: MessageId, route: HandlerId, delivery: Delivery) {
        let Some(options) = self.handlers.batch(route).map(|b| b.options) else {
            // Not a batch route after all: run it as a single handler.
            return self.dispatch(id, route, delivery);
        };
        let at = match self.gathering.iter().position(|g| g.route == route) {
            Some(at) => at,
            None => {
                let config = self.consumer.config();
                let cap = config.max_in_flight;
                // The wait counts against each member's handler timeout:
                // at most half of it, so the call keeps time to run (a
                // wait as long as the timeout would abort a lone member
                // while it gathers, every time it comes back).
                let wait = match config.handler_timeout {
                    Some(timeout) => options.max_wait.min(timeout / 2),
                    None => options.max_wait,
                };
                self.gathering.push(Gathering {
                    route,
                    members: Vec::new(),
                    max: options.max_size.min(cap).max(1),
                    deadline: self.runtime.now() + wait,
                });
                self.gathering.len() - 1
            }
        };
        let g = &mut self.gathering[at];
        g.members.push((id, delivery));
        if g.members.len() >= g.max {
            let g = self.gathering.swap_remove(at);
            self.launch(g);
        }
    }

    /// Runs every gathering batch whose wait is over at `now`, or every one
    /// once shutdown has begun; returns the earliest deadline left.
    pub(super) fn launch_due(&mut self, now: Time) -> Option<Time> {
        let all = self.consumer.is_shutting_down();
        let mut i = 0;
        while i < self.gathering.len() {
            if all || self.gathering[i].deadline <= now {
                let g = self.gathering.swap_remove(i);
                self.launch(g);
            } else {
                i += 1;
            }
        }
        self.gathering.iter().map(|g| g.deadline).min()
    }

    /// Takes `id` out of its gathering batch, if it is in one, and answers
    /// it aborted. Whether it was there.
    pub(super) fn abort_gathered(&mut self, id: MessageId, reason: AbortReason) -> bool {
        for (at, g) in self.gathering.iter_mut().enumerate() {
            if let Some(i) = g.members.iter().position(|(m, _)| *m == id) {
                let (_, delivery) = g.members.remove(i);
                if g.members.is_empty() {
                    self.gathering.swap_remove(at);
                }
                if matches!(reason, AbortReason::LockExpired | AbortReason::LockLost) {
                    delivery.lock_lost.fire();
                }
                let outcome = DispatchOutcome::Aborted;
                self.inbox.push(Input::HandlerFinished { id, outcome });
                return true;
            }
        }
        false
    }

    /// Stops the handler `run` stands for: a single handler on its
    /// worker, or the batch call it is a member of, on behalf of that
    /// member (see the module docs).
    pub(super) fn abort_running(&self, run: &Running, reason: AbortReason) {
        if matches!(reason, AbortReason::LockExpired | AbortReason::LockLost) {
            run.lock_lost.fire();
        }
        if let Some((aborts, member)) = &run.batch {
            aborts.ask(*member, reason);
        }
        match &run.stop {
            Stop::Worker(worker) => self.workers.stop(*worker),
            Stop::Call(handle) => handle.abort(),
        }
    }

    /// Spawns one call of the batch handler on `g`'s members.
    fn launch(&mut self, g: Gathering) {
        let ids: Vec<MessageId> = g.members.iter().map(|(id, _)| *id).collect();
        let Some(BatchRoute { handler, .. }) = self.handlers.batch(g.route).cloned() else {
            let outcome = DispatchOutcome::failed_with(format!(
                "no batch handler {} in the driver's registry",
                g.route.index()
            ));
            let inputs = ids.into_iter().map(|id| Input::HandlerFinished {
                id,
                outcome: outcome.clone(),
            });
            self.inbox.push_all(inputs);
            return;
        };
        let n = ids.len();
        let aborts = Arc::new(Aborts {
            names: g
                .members
                .iter()
                .map(|(_, d)| d.message.sqs_message_id.clone())
                .collect(),
            asked: Mutex::new(vec![None; n]),
        });
        let (handle, reg) = AbortHandle::new_pair();
        for (member, (id, delivery)) in g.members.iter().enumerate() {
            let run = Running {
                stop: Stop::Call(handle.clone()),
                lock_lost: delivery.lock_lost.clone(),
                batch: Some((aborts.clone(), member)),
            };
            self.running.insert(*id, run);
        }
        let deliveries: Vec<Delivery> = g.members.into_iter().map(|(_, d)| d).collect();
        let inbox = self.inbox.clone();
        self.runtime.spawn(async move {
            let call = AssertUnwindSafe(async move { handler.handle_batch(deliveries).await });
            let outcomes = match Abortable::new(call.catch_unwind(), reg).await {
                Err(_aborted) => aborts.outcomes(),
                Ok(Err(panic)) => vec![DispatchOutcome::Panicked(panic_text(&*panic)); n],
                Ok(Ok(results)) => fit_results(results, n)
                    .into_iter()
                    .map(|r| match r {
                        Ok(()) => DispatchOutcome::Succeeded,
                        Err(f) => DispatchOutcome::Failed {
                            error: f.chain().clone(),
                            retry: f.retry(),
                        },
                    })
                    .collect(),
            };
            let answers = ids
                .into_iter()
                .zip(outcomes)
                .map(|(id, outcome)| Input::HandlerFinished { id, outcome });
            inbox.push_all(answers);
        });
    }
}
