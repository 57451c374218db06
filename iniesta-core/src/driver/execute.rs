//! Carrying out the machine's actions, and the answers they come back
//! with.

use futures::future::{AbortHandle, Abortable};

use super::*;
use crate::handler::Delivery;
use crate::machine::{Action, BatchId, DispatchOutcome};
use crate::ports::{AcquireOutcome, BackendError, EntryResult, LockError};

/// What one IO future answers: one input (single calls), or a batch call's
/// results by entry. They become inputs only when handed to the machine,
/// into the driver's reused list, so no `Vec<Input>` is built per batch.
pub(super) enum Answer {
    One(Input),
    /// An acquire's outcomes went to the inbox as each key was decided;
    /// this tells which keys got one.
    Acquired {
        batch: BatchId,
        answered: Vec<bool>,
    },
    Completed {
        batch: BatchId,
        n: usize,
        results: Vec<Result<(), LockError>>,
    },
    Deleted {
        batch: BatchId,
        n: usize,
        results: Vec<EntryResult>,
    },
    VisibilityChanged {
        batch: BatchId,
        n: usize,
        results: Vec<EntryResult>,
    },
}

impl Answer {
    /// Appends the inputs this answer stands for to `inputs`: one per
    /// entry of a batch, every entry answered.
    pub(super) fn push_into(self, inputs: &mut Vec<Input>) {
        /// The backend's results by entry, then [`pad`]'s for the entries
        /// it left out.
        fn each<R>(
            inputs: &mut Vec<Input>,
            n: usize,
            results: Vec<R>,
            missing: fn() -> R,
            input: impl Fn(usize, R) -> Input,
        ) {
            let got = results.len().min(n);
            let answers = results.into_iter().take(n).enumerate();
            inputs.extend(answers.map(|(index, r)| input(index, r)));
            if got < n {
                let left_out = pad(n, |i| i < got, missing);
                inputs.extend(left_out.map(|(index, r)| input(index, r)));
            }
        }
        match self {
            Answer::One(input) => inputs.push(input),
            Answer::Acquired { batch, answered } => {
                let missing = || {
                    AcquireOutcome::Unavailable(LockError::Unavailable(
                        "lock backend left the key unanswered".into(),
                    ))
                };
                let left_out = pad(answered.len(), |i| answered[i], missing);
                inputs.extend(left_out.map(|(index, outcome)| Input::Acquired {
                    batch,
                    index,
                    outcome,
                }));
            }
            Answer::Completed { batch, n, results } => {
                let missing = || {
                    Err(LockError::Unavailable(
                        "lock backend returned too few answers".into(),
                    ))
                };
                each(inputs, n, results, missing, |index, result| {
                    Input::Completed {
                        batch,
                        index,
                        result,
                    }
                })
            }
            Answer::Deleted { batch, n, results } => {
                each(inputs, n, results, queue_missing, |index, result| {
                    Input::Deleted {
                        batch,
                        index,
                        result,
                    }
                })
            }
            Answer::VisibilityChanged { batch, n, results } => {
                each(inputs, n, results, queue_missing, |index, result| {
                    Input::VisibilityChanged {
                        batch,
                        index,
                        result,
                    }
                })
            }
        }
    }
}

/// The entries of a batch call of `n` that the backend left unanswered
/// (`answered(i)` is false), each with `missing()` as its answer. A backend
/// that answers fewer entries than it was given breaks its contract, but
/// the machine must still hear about every entry, or its message would wait
/// forever; the missing ones count as failures (no dispatch, no delete, a
/// retry where the machine retries). Every batch kind is made whole here.
fn pad<R>(
    n: usize,
    answered: impl Fn(usize) -> bool,
    missing: impl Fn() -> R,
) -> impl Iterator<Item = (usize, R)> {
    (0..n)
        .filter(move |&i| !answered(i))
        .map(move |i| (i, missing()))
}

fn queue_missing() -> EntryResult {
    Err(BackendError::message(
        "queue returned too few batch results",
    ))
}

impl<Q, L, R> Driver<Q, L, R>
where
    Q: Queue + ?Sized,
    L: LockBackend + ?Sized,
    R: Runtime,
{
    // The ports are called on `Q` and `L` themselves (`Q::receive(&*q, ..)`),
    // not on the `Arc` around them: the `Arc` forwarding impls would box
    // every call's future once more.
    pub(super) fn execute(&mut self, action: Action) {
        match action {
            Action::Receive { id, request } => {
                let q = self.queue.clone();
                let (handle, reg) = AbortHandle::new_pair();
                self.receiving.insert(id, handle);
                self.io.push(Box::pin(async move {
                    let result = match Abortable::new(Q::receive(&*q, request), reg).await {
                        Ok(r) => r,
                        Err(_aborted) => Ok(Vec::new()),
                    };
                    Answer::One(Input::Received { id, result })
                }));
            }
            Action::CancelReceive { id } => {
                if let Some(h) = self.receiving.get(&id) {
                    h.abort();
                }
            }
            Action::Acquire { batch, keys, ttl } => {
                let l = self.lock.clone();
                let inbox = self.inbox.clone();
                self.io.push(Box::pin(async move {
                    let mut answered = vec![false; keys.len()];
                    // Each group of decided keys goes to the machine at
                    // once, through the inbox, while the backend retries
                    // the rest.
                    L::acquire_each(&*l, keys, ttl, &mut |decided| {
                        let inputs = decided.into_iter().filter_map(|(index, outcome)| {
                            let first = !std::mem::replace(answered.get_mut(index)?, true);
                            first.then_some(Input::Acquired {
                                batch,
                                index,
                                outcome,
                            })
                        });
                        inbox.push_all(inputs);
                    })
                    .await;
                    Answer::Acquired { batch, answered }
                }));
            }
            Action::Dispatch {
                id,
                handler,
                message,
                token,
                ..
            } => {
                // Built field by field: `Delivery::new` would allocate an
                // empty state map only to drop it for the registry's.
                let delivery = Delivery {
                    message,
                    token,
                    lock_lost: LockLost::new(),
                    state: self.handlers.state_map().clone(),
                };
                if self.handlers.batch(handler).is_some() {
                    self.gather(id, handler, delivery)
                } else {
                    self.dispatch(id, handler, delivery)
                }
            }
            Action::Abort { id, reason } => {
                if let Some(run) = self.running.get(&id) {
                    self.abort_running(run, reason);
                } else {
                    self.abort_gathered(id, reason);
                }
            }
            Action::Extend {
                id,
                key,
                token,
                ttl,
            } => {
                let l = self.lock.clone();
                self.io.push(Box::pin(async move {
                    Answer::One(Input::Extended {
                        id,
                        result: L::extend(&*l, key, token, ttl).await,
                    })
                }));
            }
            Action::Complete {
                batch,
                entries,
                keep_for,
            } => {
                let l = self.lock.clone();
                self.io.push(Box::pin(async move {
                    let n = entries.len();
                    let results = L::complete(&*l, entries, keep_for).await;
                    Answer::Completed { batch, n, results }
                }));
            }
            Action::Release { id, key, token } => {
                let l = self.lock.clone();
                self.io.push(Box::pin(async move {
                    Answer::One(Input::Released {
                        id,
                        result: L::release(&*l, key, token).await,
                    })
                }));
            }
            Action::Delete { batch, handles } => {
                let q = self.queue.clone();
                self.io.push(Box::pin(async move {
                    let n = handles.len();
                    let results = Q::delete_batch(&*q, handles).await;
                    Answer::Deleted { batch, n, results }
                }));
            }
            Action::ChangeVisibility { batch, entries } => {
                let q = self.queue.clone();
                self.io.push(Box::pin(async move {
                    let n = entries.len();
                    let results = Q::change_visibility_batch(&*q, entries).await;
                    Answer::VisibilityChanged { batch, n, results }
                }));
            }
        }
    }

    /// Runs the handler `handler` names on `delivery`, on a worker.
    pub(super) fn dispatch(
        &mut self,
        id: MessageId,
        handler: crate::HandlerId,
        delivery: Delivery,
    ) {
        let Some(handler) = self.handlers.handler(handler).cloned() else {
            // The machine routed with another registry than this one.
            let outcome = DispatchOutcome::failed_with(format!(
                "no handler {} in the driver's registry",
                handler.index()
            ));
            self.inbox.push(Input::HandlerFinished { id, outcome });
            return;
        };
        let lock_lost = delivery.lock_lost.clone();
        let worker = self
            .workers
            .run(&self.runtime, &self.inbox, id, handler, delivery);
        let run = Running {
            stop: Stop::Worker(worker),
            lock_lost,
            batch: None,
        };
        self.running.insert(id, run);
    }
}

pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_owned()
    }
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
