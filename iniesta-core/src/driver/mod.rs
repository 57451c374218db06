//! A runtime-agnostic async driver: runs a [`Consumer`] against real ports.
//!
//! The driver owns the machine and one task's worth of IO futures (receives,
//! lock calls, deletes), which it polls itself; handlers are spawned on the
//! runtime so they run in parallel and a panic stays inside its task. The
//! only things it needs from a runtime are in [`Runtime`]: spawn, sleep and a
//! monotonic clock. `iniesta-tokio` implements it for tokio; tests implement
//! it for other executors.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use futures::{FutureExt, StreamExt};

use crate::lock_lost::LockLost;
use crate::machine::{
    AbortReason, Action, Consumer, DispatchOutcome, Event, IdMap, Input, MessageId,
};
use crate::message::ReceiptHandle;
use crate::ports::{
    AcquireOutcome, EntryResult, LockBackend, LockError, LockKey, LockToken, Queue,
};
use crate::stats::Stats;
use crate::time::Time;
use std::time::Duration;

/// What the driver needs from an async runtime.
pub trait Runtime: Send + Sync + 'static {
    /// Now, on a monotonic clock. The origin is the runtime's choice.
    fn now(&self) -> Time;
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()>;
    /// Runs `future` to completion in the background. Generic, so that a
    /// runtime that boxes its tasks anyway (tokio does) boxes each handler
    /// once, not twice.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// Sees every [`Event`] the machine reports (logging, metrics).
pub trait Observer: Send {
    /// Called once per event, in order, on the driver's task. Keep it cheap.
    fn on_event(&mut self, event: &Event);
}

impl Observer for () {
    fn on_event(&mut self, _event: &Event) {}
}

impl<F: FnMut(&Event) + Send> Observer for F {
    fn on_event(&mut self, event: &Event) {
        self(event)
    }
}

/// What one IO future answers: one input (single calls), or a batch call's
/// entry list and results. The entry list is the action's own (the backend
/// got copies of its keys or handles, which are shared text); it is turned
/// into one input per entry only when handed to the machine, so no
/// `Vec<Input>` is built per batch.
enum Answer {
    One(Input),
    Acquired(Vec<(MessageId, LockKey)>, Vec<AcquireOutcome>),
    Completed(
        Vec<(MessageId, LockKey, LockToken)>,
        Vec<Result<(), LockError>>,
    ),
    Deleted(Vec<(MessageId, ReceiptHandle)>, Vec<EntryResult>),
    VisibilityChanged(Vec<(MessageId, ReceiptHandle, Duration)>, Vec<EntryResult>),
}

impl Answer {
    /// Appends the inputs this answer stands for to `inputs`.
    fn push_into(self, inputs: &mut Vec<Input>) {
        /// One input per entry: the entry's id with its result.
        fn each<E, R>(
            inputs: &mut Vec<Input>,
            entries: &[E],
            results: Vec<R>,
            input: impl Fn(&E, R) -> Input,
        ) {
            inputs.extend(entries.iter().zip(results).map(|(e, r)| input(e, r)));
        }
        match self {
            Answer::One(input) => inputs.push(input),
            Answer::Acquired(entries, outcomes) => {
                each(inputs, &entries, outcomes, |&(id, _), outcome| {
                    Input::Acquired { id, outcome }
                })
            }
            Answer::Completed(entries, results) => {
                each(inputs, &entries, results, |&(id, ..), result| {
                    Input::Completed { id, result }
                })
            }
            Answer::Deleted(entries, results) => {
                each(inputs, &entries, results, |&(id, _), result| {
                    Input::Deleted { id, result }
                })
            }
            Answer::VisibilityChanged(entries, results) => {
                each(inputs, &entries, results, |&(id, ..), result| {
                    Input::VisibilityChanged { id, result }
                })
            }
        }
    }
}

type Io = FuturesUnordered<BoxFuture<'static, Answer>>;

/// Where answers that do not come back as an IO future's result are left
/// for the driver: spawned handlers' [`Input::Dispatched`], and acquire
/// answers handed over as each key is decided. A shared list and the
/// driver's waker (no allocation per message, unlike a channel that
/// allocates a node per send).
#[derive(Default)]
struct Inbox {
    inputs: Mutex<Vec<Input>>,
    waker: AtomicWaker,
}

impl Inbox {
    fn push(&self, input: Input) {
        self.push_all(std::iter::once(input));
    }

    fn push_all(&self, inputs: impl IntoIterator<Item = Input>) {
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(inputs);
        self.waker.wake();
    }

    /// Moves what arrived into `into`, after registering the waker (so an
    /// input pushed after the check still wakes the driver).
    fn drain_into(&self, cx: &mut std::task::Context<'_>, into: &mut Vec<Input>) {
        self.waker.register(cx.waker());
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut inputs);
    }
}

/// Runs `consumer` against `queue` and `lock` until `shutdown` completes and
/// the graceful shutdown has finished (or until the machine finishes on its
/// own). Returns the counts of what happened.
///
/// When this returns, no handler runs and every message that was in progress
/// has been completed and deleted, or released (and returned to the queue if
/// so configured).
pub async fn run<Q, L, R, S, O>(
    mut consumer: Consumer,
    queue: Arc<Q>,
    lock: Arc<L>,
    runtime: R,
    shutdown: S,
    mut observer: O,
) -> Stats
where
    Q: Queue + ?Sized,
    L: LockBackend + ?Sized,
    R: Runtime,
    S: Future<Output = ()> + Send,
    O: Observer,
{
    let mut stats = Stats::default();
    let mut io: Io = FuturesUnordered::new();
    let inbox = Arc::new(Inbox::default());
    let mut running: IdMap<MessageId, (AbortHandle, LockLost)> = IdMap::default();
    let mut receiving: IdMap<crate::machine::ReceiveId, AbortHandle> = IdMap::default();
    let mut shutdown = Box::pin(shutdown.fuse());
    let mut shutdown_seen = false;
    let mut sleep: Option<(Time, BoxFuture<'static, ()>)> = None;
    // Reused from round to round.
    let mut inputs: Vec<Input> = Vec::new();

    let mut rounds: u32 = 0;
    loop {
        // Give the executor a turn now and then: when answers keep arriving
        // at once (an in-memory backend), the loop would otherwise never
        // return to the executor, starving other tasks on its thread and
        // exhausting tokio's cooperative budget (which hides a shutdown).
        rounds = rounds.wrapping_add(1);
        if rounds % 64 == 0 {
            yield_now().await;
        }
        while let Some(action) = consumer.poll_action() {
            execute(
                action,
                &queue,
                &lock,
                &runtime,
                &inbox,
                &mut io,
                &mut running,
                &mut receiving,
            );
        }
        while let Some(event) = consumer.poll_event() {
            stats.record(&event);
            observer.on_event(&event);
        }
        if consumer.is_finished() {
            break;
        }
        match consumer.poll_timeout() {
            Some(t) if sleep.as_ref().map(|(at, _)| *at) != Some(t) => {
                sleep = Some((t, runtime.sleep_until(t)));
            }
            None => sleep = None,
            _ => {}
        }
        let timer_fired = futures::future::poll_fn(|cx| {
            if !shutdown_seen && shutdown.as_mut().poll(cx).is_ready() {
                shutdown_seen = true;
                inputs.push(Input::Shutdown);
            }
            inbox.drain_into(cx, &mut inputs);
            while let Poll::Ready(Some(answer)) = io.poll_next_unpin(cx) {
                answer.push_into(&mut inputs);
            }
            let fired = match &mut sleep {
                Some((_, s)) => s.as_mut().poll(cx).is_ready(),
                None => false,
            };
            if inputs.is_empty() && !fired {
                Poll::Pending
            } else {
                Poll::Ready(fired)
            }
        })
        .await;
        let now = runtime.now();
        for input in inputs.drain(..) {
            match &input {
                Input::Dispatched { id, .. } => {
                    running.remove(id);
                }
                Input::Received { id, .. } => {
                    receiving.remove(id);
                }
                _ => {}
            }
            consumer.handle_input(now, input);
        }
        if timer_fired {
            sleep = None;
        }
        consumer.handle_timeout(now);
    }
    stats
}

// The ports are called on `Q` and `L` themselves (`Q::receive(&**q, ..)`),
// not on the `Arc` around them: the `Arc` forwarding impls would box every
// call's future once more.
#[allow(clippy::too_many_arguments)]
fn execute<Q, L, R>(
    action: Action,
    queue: &Arc<Q>,
    lock: &Arc<L>,
    runtime: &R,
    inbox: &Arc<Inbox>,
    io: &mut Io,
    running: &mut IdMap<MessageId, (AbortHandle, LockLost)>,
    receiving: &mut IdMap<crate::machine::ReceiveId, AbortHandle>,
) where
    Q: Queue + ?Sized,
    L: LockBackend + ?Sized,
    R: Runtime,
{
    match action {
        Action::Receive { id, request } => {
            let q = queue.clone();
            let (handle, reg) = AbortHandle::new_pair();
            receiving.insert(id, handle);
            io.push(Box::pin(async move {
                let result = match Abortable::new(Q::receive(&*q, request), reg).await {
                    Ok(r) => r,
                    Err(_aborted) => Ok(Vec::new()),
                };
                Answer::One(Input::Received { id, result })
            }));
        }
        Action::CancelReceive { id } => {
            if let Some(h) = receiving.get(&id) {
                h.abort();
            }
        }
        Action::Acquire { entries, ttl } => {
            let l = lock.clone();
            let inbox = inbox.clone();
            io.push(Box::pin(async move {
                let keys = entries.iter().map(|(_, key)| key.clone()).collect();
                let mut answered = vec![false; entries.len()];
                // Each group of decided keys goes to the machine at once,
                // through the inbox, while the backend retries the rest.
                L::acquire_each(&*l, keys, ttl, &mut |decided| {
                    let inputs = decided.into_iter().filter_map(|(i, outcome)| {
                        let first = !std::mem::replace(answered.get_mut(i)?, true);
                        first.then(|| Input::Acquired {
                            id: entries[i].0,
                            outcome,
                        })
                    });
                    inbox.push_all(inputs);
                })
                .await;
                // A key the backend left unanswered breaks its contract;
                // treat it as unavailable (no dispatch, no delete).
                let missing: Vec<_> = entries
                    .into_iter()
                    .zip(answered)
                    .filter(|(_, answered)| !answered)
                    .map(|(entry, _)| entry)
                    .collect();
                let outcomes = vec![
                    AcquireOutcome::Unavailable(LockError::Unavailable(
                        "lock backend left the key unanswered".into(),
                    ));
                    missing.len()
                ];
                Answer::Acquired(missing, outcomes)
            }));
        }
        Action::Dispatch {
            id,
            handler,
            delivery,
        } => {
            let (handle, reg) = AbortHandle::new_pair();
            running.insert(id, (handle, delivery.lock_lost.clone()));
            let inbox = inbox.clone();
            runtime.spawn(async move {
                // The call itself inside the guarded future too: a handler
                // may panic before it returns its future.
                let fut =
                    AssertUnwindSafe(async move { handler.handle(delivery).await }).catch_unwind();
                let outcome = match Abortable::new(fut, reg).await {
                    Err(_aborted) => DispatchOutcome::Aborted,
                    Ok(Err(panic)) => DispatchOutcome::Panicked(panic_text(&*panic)),
                    Ok(Ok(Err(e))) => DispatchOutcome::Failed(e.to_string()),
                    Ok(Ok(Ok(()))) => DispatchOutcome::Succeeded,
                };
                inbox.push(Input::Dispatched { id, outcome });
            });
        }
        Action::Abort { id, reason } => {
            if let Some((handle, lock_lost)) = running.get(&id) {
                if matches!(reason, AbortReason::LockExpired | AbortReason::LockLost) {
                    lock_lost.fire();
                }
                handle.abort();
            }
        }
        Action::Extend {
            id,
            key,
            token,
            ttl,
        } => {
            let l = lock.clone();
            io.push(Box::pin(async move {
                Answer::One(Input::Extended {
                    id,
                    result: L::extend(&*l, key, token, ttl).await,
                })
            }));
        }
        Action::Complete { entries, keep_for } => {
            let l = lock.clone();
            io.push(Box::pin(async move {
                let pairs = entries
                    .iter()
                    .map(|(_, key, token)| (key.clone(), token.clone()))
                    .collect();
                let mut results = L::complete(&*l, pairs, keep_for).await;
                // Too few answers break the backend's contract; the missing
                // ones are failures (the machine retries or deletes anyway).
                results.resize(
                    entries.len(),
                    Err(LockError::Unavailable(
                        "lock backend returned too few answers".into(),
                    )),
                );
                Answer::Completed(entries, results)
            }));
        }
        Action::Release { id, key, token } => {
            let l = lock.clone();
            io.push(Box::pin(async move {
                Answer::One(Input::Released {
                    id,
                    result: L::release(&*l, key, token).await,
                })
            }));
        }
        Action::Delete { entries } => {
            let q = queue.clone();
            io.push(Box::pin(async move {
                let handles = entries.iter().map(|(_, h)| h.clone()).collect();
                let results = pad(Q::delete_batch(&*q, handles).await, entries.len());
                Answer::Deleted(entries, results)
            }));
        }
        Action::ChangeVisibility { entries } => {
            let q = queue.clone();
            io.push(Box::pin(async move {
                let rest = entries.iter().map(|(_, h, d)| (h.clone(), *d)).collect();
                let results = pad(Q::change_visibility_batch(&*q, rest).await, entries.len());
                Answer::VisibilityChanged(entries, results)
            }));
        }
    }
}

/// Pads a batch answer that is too short (a backend bug) with errors, so that
/// every entry is answered.
fn pad(mut results: Vec<EntryResult>, n: usize) -> Vec<EntryResult> {
    results.resize(
        n,
        Err(crate::ports::BackendError::message(
            "queue returned too few batch results",
        )),
    );
    results
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_owned()
    }
}

/// Returns `Pending` once (after asking to be polled again), so the task
/// goes back to its executor for a turn.
async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
