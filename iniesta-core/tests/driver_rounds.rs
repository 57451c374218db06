//! The driver's rounds on a work-stealing runtime: handlers that finish
//! together answer in one round, so their completion records go out as
//! one batch call.
//!
//! On tokio's multi-thread runtime a task woken by the task running on a
//! worker runs next (the worker's LIFO slot): the first handler to finish
//! wakes the driver ahead of the handlers woken with it. A driver that
//! handled its inputs at once would send a completion call per handler;
//! one that lets the ready tasks run first sends one or two.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iniesta_core::{
    AcquireOutcome, AttributeValue, Consumer, ConsumerConfig, DeliveryMode, Driver, Event,
    HandlerRegistry, LockBackend, LockError, LockKey, LockToken, ParseConfig, Runtime,
};
use iniesta_mock::{Clock, MockLock, MockQueue};

mod common;
use common::runtime::Tokio;

const EVENT: &str = "Together.svc";
const MESSAGES: usize = 20;

/// The in-memory lock, counting the complete calls and their entries.
struct Counting {
    inner: MockLock,
    complete_calls: AtomicUsize,
    completed: AtomicUsize,
}

impl Counting {
    fn new(clock: &Clock) -> Self {
        Counting {
            inner: MockLock::new(clock),
            complete_calls: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl LockBackend for Counting {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        self.inner.acquire(keys, ttl).await
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        self.inner.extend(key, token, ttl).await
    }

    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        self.complete_calls.fetch_add(1, Ordering::SeqCst);
        self.completed.fetch_add(entries.len(), Ordering::SeqCst);
        self.inner.complete(entries, keep_for).await
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        self.inner.release(key, token).await
    }
}

/// A queue of `n` messages of [`EVENT`], raw delivery.
fn queue(clock: &Clock, n: usize) -> MockQueue {
    let queue = MockQueue::new("q", clock);
    for i in 0..n {
        let attrs = BTreeMap::from([(
            "iniesta_pass".to_owned(),
            AttributeValue::String(EVENT.into()),
        )]);
        queue.send(format!("{i}"), attrs);
    }
    queue
}

fn config(max_in_flight: usize) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".into(),
            topic_arn: None,
        },
        "q",
    );
    config.max_in_flight = max_in_flight;
    config.wait_time = Duration::from_millis(100);
    config
}

/// tokio's multi-thread runtime with one worker thread: no other thread
/// steals a task, so the order the worker runs its tasks in is the
/// runtime's, and the tests repeatable.
fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `handlers` on `queue` and `lock` as a task on `rt`'s worker until
/// `messages` are deleted (20 s at most); returns the stats.
fn drain<L: LockBackend>(
    rt: &tokio::runtime::Runtime,
    config: ConsumerConfig,
    handlers: HandlerRegistry,
    queue: MockQueue,
    lock: Arc<L>,
    messages: usize,
) -> iniesta_core::Stats {
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
    let mut done_tx = Some(done_tx);
    let mut deleted = 0;
    let observer = move |e: &Event| {
        if matches!(e, Event::Deleted { .. }) {
            deleted += 1;
            if deleted == messages {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    };
    rt.block_on(rt.spawn(async move {
        let runtime = Tokio::new();
        let consumer = Consumer::new(config, &handlers, runtime.now()).unwrap();
        let driver = Driver::new(consumer, handlers, Arc::new(queue), lock, runtime);
        let shutdown = async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), done_rx).await;
        };
        driver.run(shutdown, observer).await
    }))
    .unwrap()
}

#[test]
fn handlers_that_finish_together_complete_in_one_or_two_calls() {
    // One worker thread: no other thread steals a task, so the order the
    // worker runs its tasks in is the runtime's, and the test repeatable.
    let rt = one_worker();
    let clock = Clock::real();
    let queue = queue(&clock, MESSAGES);
    let lock = Arc::new(Counting::new(&clock));

    // Every handler waits until all have started; the last one to start
    // opens the gate, which wakes the others at once.
    let (gate, opened) = tokio::sync::watch::channel(false);
    let started = Arc::new(AtomicUsize::new(0));
    let mut handlers = HandlerRegistry::new();
    handlers
        .on(EVENT, move |_d: iniesta_core::Delivery| {
            let (gate, mut opened, started) = (gate.clone(), opened.clone(), started.clone());
            async move {
                if started.fetch_add(1, Ordering::SeqCst) + 1 == MESSAGES {
                    gate.send_replace(true);
                } else {
                    let _ = opened.wait_for(|open| *open).await;
                }
                Ok::<_, String>(())
            }
        })
        .unwrap();

    let stats = drain(
        &rt,
        config(MESSAGES),
        handlers,
        queue,
        lock.clone(),
        MESSAGES,
    );

    assert_eq!(stats.deleted, MESSAGES as u64, "{stats:?}");
    assert_eq!(lock.completed.load(Ordering::SeqCst), MESSAGES);
    let calls = lock.complete_calls.load(Ordering::SeqCst);
    assert!(
        calls <= 2,
        "{MESSAGES} handlers that finished together were completed in {calls} calls"
    );
}
