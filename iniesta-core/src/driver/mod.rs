//! A runtime-agnostic async driver: runs a [`Consumer`] against real ports.
//!
//! The [`Driver`] owns the machine, the handler objects (the machine only
//! names them, by [`HandlerId`](crate::HandlerId)) and one task's worth of
//! IO futures (receives, lock calls, deletes), which it polls itself;
//! handlers run on worker tasks it spawns on the runtime (see `workers`),
//! so they run in parallel and a panic stays with its handler. A dispatch
//! of a batch route is gathered with others of its route into one call of
//! its batch handler (see `gather`).
//! The only things it needs from a runtime are in
//! [`Runtime`]: spawn, sleep and a monotonic clock. `iniesta-tokio`
//! implements it for tokio; tests implement it for other executors.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use futures::future::{AbortHandle, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use crate::lock_lost::LockLost;
use crate::machine::{Consumer, Event, IdMap, Input, MessageId, ReceiveId};
use crate::ports::{LockBackend, Queue};
use crate::registry::HandlerRegistry;
use crate::stats::Stats;
use crate::time::Time;

mod execute;
mod gather;
mod inbox;
mod workers;

use execute::Answer;
use gather::{Gathering, Running, Stop};
use inbox::Inbox;
use workers::Workers;

/// What the driver needs from an async runtime.
pub trait Runtime: Send + Sync + 'static {
    /// Now, on a monotonic clock. The origin is the runtime's choice.
    fn now(&self) -> Time;
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()>;
    /// Runs `future` to completion in the background. Generic, so that a
    /// runtime that boxes its tasks anyway (tokio does) boxes each worker
    /// and batch call once, not twice.
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

/// Runs a [`Consumer`] against a queue and a lock backend on a
/// [`Runtime`], running the handlers of the registry the consumer routes
/// with.
///
/// ```
/// use std::future::Future;
/// use std::sync::Arc;
/// use iniesta_core::{
///     ConfigError, Consumer, ConsumerConfig, Driver, HandlerRegistry, LockBackend, Queue,
///     Runtime, Stats,
/// };
///
/// async fn consume(
///     config: ConsumerConfig,
///     handlers: HandlerRegistry,
///     queue: Arc<dyn Queue>,
///     lock: Arc<dyn LockBackend>,
///     runtime: impl Runtime,
///     shutdown: impl Future<Output = ()> + Send,
/// ) -> Result<Stats, ConfigError> {
///     let consumer = Consumer::new(config, &handlers, runtime.now())?;
///     let driver = Driver::new(consumer, handlers, queue, lock, runtime);
///     Ok(driver.run(shutdown, ()).await)
/// }
/// ```
pub struct Driver<Q: ?Sized, L: ?Sized, R> {
    consumer: Consumer,
    handlers: HandlerRegistry,
    queue: Arc<Q>,
    lock: Arc<L>,
    runtime: R,
    /// The IO calls out: each answers once.
    io: FuturesUnordered<BoxFuture<'static, Answer>>,
    /// Answers that arrive outside `io`: handlers' ends, acquire answers
    /// as each key is decided.
    inbox: Arc<Inbox>,
    /// Handlers running: how to stop each, and its lock-lost signal.
    running: IdMap<MessageId, Running>,
    /// The tasks single handlers run on.
    workers: Workers,
    /// Batch routes' dispatches waiting for their call, a few routes at
    /// most.
    gathering: Vec<Gathering>,
    /// Receives out, to cancel on shutdown.
    receiving: IdMap<ReceiveId, AbortHandle>,
}

impl<Q: ?Sized, L: ?Sized, R> std::fmt::Debug for Driver<Q, L, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("consumer", &self.consumer)
            .field("handlers", &self.handlers)
            .field("io", &self.io.len())
            .field("running", &self.running.len())
            .field("gathering", &self.gathering.len())
            .field("receiving", &self.receiving.len())
            .finish()
    }
}

impl<Q, L, R> Driver<Q, L, R>
where
    Q: Queue + ?Sized,
    L: LockBackend + ?Sized,
    R: Runtime,
{
    /// A driver for `consumer`, which MUST route with the routes of
    /// `handlers` (built with `Consumer::new(config, &handlers, now)`): a
    /// dispatch names its handler by its place in that registry. A handler
    /// the registry lacks fails its dispatch.
    pub fn new(
        consumer: Consumer,
        handlers: HandlerRegistry,
        queue: Arc<Q>,
        lock: Arc<L>,
        runtime: R,
    ) -> Self {
        Driver {
            consumer,
            handlers,
            queue,
            lock,
            runtime,
            io: FuturesUnordered::new(),
            inbox: Arc::new(Inbox::default()),
            running: IdMap::default(),
            workers: Workers::default(),
            gathering: Vec::new(),
            receiving: IdMap::default(),
        }
    }

    /// Runs the consumer until `shutdown` completes and the graceful
    /// shutdown is over (or until the machine stops on its own), telling
    /// `observer` every event. Returns the counts of what happened.
    ///
    /// When this returns, no handler runs and every message that was in
    /// progress has been completed and deleted, or released (and returned
    /// to the queue if so configured).
    pub async fn run<S, O>(mut self, shutdown: S, mut observer: O) -> Stats
    where
        S: Future<Output = ()> + Send,
        O: Observer,
    {
        let mut stats = Stats::default();
        let mut shutdown = Box::pin(shutdown.fuse());
        let mut shutdown_seen = false;
        let mut sleep: Option<(Time, BoxFuture<'static, ()>)> = None;
        // The earliest end of a batch route's wait to fill a batch.
        let mut gather_sleep: Option<(Time, BoxFuture<'static, ()>)> = None;
        let mut gather_fired: Option<Time> = None;
        // Reused from round to round.
        let mut inputs: Vec<Input> = Vec::new();

        let mut rounds: u32 = 0;
        loop {
            // Give the executor a turn now and then: when answers keep
            // arriving at once (an in-memory backend), the loop would
            // otherwise never return to the executor, starving other tasks
            // on its thread and exhausting tokio's cooperative budget (which
            // hides a shutdown).
            rounds = rounds.wrapping_add(1);
            if rounds % 64 == 0 {
                yield_now().await;
            }
            while let Some(action) = self.consumer.poll_action() {
                self.execute(action);
            }
            // Batches due run after every dispatch of the round, so a wait
            // of zero gathers what was dispatched together. The instant a
            // timer fired counts as passed even if the runtime's clock lags.
            let fired_at = gather_fired.take();
            if self.gathering.is_empty() {
                gather_sleep = None;
            } else {
                let now = self.runtime.now().max(fired_at.unwrap_or(Time::ZERO));
                match self.launch_due(now) {
                    Some(t) if gather_sleep.as_ref().map(|(at, _)| *at) != Some(t) => {
                        gather_sleep = Some((t, self.runtime.sleep_until(t)));
                    }
                    None => gather_sleep = None,
                    _ => {}
                }
            }
            while let Some(event) = self.consumer.poll_event() {
                stats.record(&event);
                observer.on_event(&event);
            }
            if self.consumer.is_stopped() {
                break;
            }
            match self.consumer.poll_timeout() {
                Some(t) if sleep.as_ref().map(|(at, _)| *at) != Some(t) => {
                    sleep = Some((t, self.runtime.sleep_until(t)));
                }
                None => sleep = None,
                _ => {}
            }
            let mut shutdown_now = false;
            let (inbox, io) = (&self.inbox, &mut self.io);
            let timer_fired = futures::future::poll_fn(|cx| {
                if !shutdown_seen && shutdown.as_mut().poll(cx).is_ready() {
                    shutdown_seen = true;
                    shutdown_now = true;
                }
                collect_answers(cx, inbox, io, &mut inputs);
                let fired = match &mut sleep {
                    Some((_, s)) => s.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if let Some((at, s)) = &mut gather_sleep {
                    if s.as_mut().poll(cx).is_ready() {
                        gather_fired = Some(*at);
                    }
                }
                if inputs.is_empty() && !fired && !shutdown_now && gather_fired.is_none() {
                    Poll::Pending
                } else {
                    Poll::Ready(fired)
                }
            })
            .await;
            // Handlers that finish together (woken by the same IO or timer)
            // answer together: the first answer wakes the driver, which on
            // a work-stealing runtime runs next, before the others have
            // been polled. Letting the ready tasks run once first puts
            // their answers in this round, so their completion records go
            // out as one batch call, not one call per handler or two (in
            // the latency bench, 20 ms round trips: 1.6-1.9 records per
            // call without, 7.6-9.7 with at 300 in flight; 2.5-3.2 and
            // 15-18 at 1,000). Only then: a round of acquire answers is
            // not held up, nor a handler that finishes alone.
            let finished = inputs
                .iter()
                .filter(|i| matches!(i, Input::HandlerFinished { .. }))
                .count();
            if finished > 0 && self.running.len() > finished {
                yield_now().await;
                let (inbox, io) = (&self.inbox, &mut self.io);
                futures::future::poll_fn(|cx| {
                    collect_answers(cx, inbox, io, &mut inputs);
                    Poll::Ready(())
                })
                .await;
            }
            let now = self.runtime.now();
            if shutdown_now {
                self.consumer.shutdown(now);
            }
            for input in &inputs {
                match input {
                    Input::HandlerFinished { id, .. } => {
                        if let Some(Running {
                            stop: Stop::Worker(worker),
                            ..
                        }) = self.running.remove(id)
                        {
                            self.workers.free(worker);
                        }
                    }
                    Input::Received { id, .. } => {
                        self.receiving.remove(id);
                    }
                    _ => {}
                }
            }
            self.consumer.handle_inputs(now, inputs.drain(..));
            if timer_fired {
                sleep = None;
            }
            if gather_fired.is_some() {
                // A finished sleep is never polled again.
                gather_sleep = None;
            }
            self.consumer.handle_timeout(now);
        }
        stats
    }
}

/// Moves the answers that arrived, in the inbox and from the IO calls out,
/// into `inputs`, registering `cx` to be woken for the next ones.
///
/// The inbox first, so an acquire call's answers, which it hands to the
/// inbox while it is polled here, wait for the driver's next poll (on
/// tokio, after the tasks queued on its worker): there they share a round
/// with the handlers' answers that come meanwhile. The other order takes
/// them in this poll: measured, it cut a message's own turnaround in the
/// latency bench by 0.2 ms at 300 in flight and 1 ms at 1,000 but moved
/// no rate, and cost the in-memory drain 2.5 % (mimalloc) and 4.2 %
/// (glibc) more instructions per message for its extra rounds.
fn collect_answers(
    cx: &mut std::task::Context<'_>,
    inbox: &Inbox,
    io: &mut FuturesUnordered<BoxFuture<'static, Answer>>,
    inputs: &mut Vec<Input>,
) {
    inbox.drain_into(cx, inputs);
    while let Poll::Ready(Some(answer)) = io.poll_next_unpin(cx) {
        answer.push_into(inputs);
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
