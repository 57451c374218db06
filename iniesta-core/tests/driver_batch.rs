//! The driver's batch routes on the in-memory queue and lock: batches fill
//! to their size or run when their wait is over, partial failures are
//! retried alone, a panic or an abort stops the call and not the consumer,
//! and shutdown does not wait out a batch's wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iniesta_core::handler::{
    Batch, BatchHandler, BatchOptions, BatchOutcome, HandlerError, ItemFailure,
};
use iniesta_core::{
    AttributeValue, Backoff, Consumer, ConsumerConfig, Delivery, DeliveryMode, DispatchOutcome,
    Driver, Event, HandlerRegistry, LockLost, ParseConfig, Runtime, SharedMessage, Stats,
};
use iniesta_mock::{Clock, MockLock, MockQueue};

mod common;
use common::runtime::Tokio;

const EVENT: &str = "Order.svc";

#[derive(Debug, Clone, serde::Deserialize)]
struct Order {
    n: u32,
}

/// A queue holding `count` orders `{"n": i}`, raw delivery, and the lock.
struct World {
    queue: MockQueue,
    lock: MockLock,
}

fn world(count: u32) -> World {
    let clock = Clock::real();
    let queue = MockQueue::new("q", &clock);
    for n in 0..count {
        let attrs = BTreeMap::from([(
            "iniesta_pass".to_owned(),
            AttributeValue::String(EVENT.into()),
        )]);
        queue.send(format!(r#"{{"n": {n}}}"#), attrs);
    }
    World {
        lock: MockLock::new(&clock),
        queue,
    }
}

fn config() -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".into(),
            topic_arn: None,
        },
        "q",
    );
    c.wait_time = Duration::from_millis(200);
    c.empty_receive_pause = Duration::from_millis(20);
    // A failed message is visible again at once.
    c.failure_backoff = Some(Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
    });
    c.shutdown_grace = Duration::from_secs(5);
    c
}

/// The events seen, shared with the test.
type Seen = Arc<Mutex<Vec<Event>>>;

/// Runs a consumer until `done(events)` holds (or 20 s pass: a failure),
/// then shuts it down; returns the stats and every event.
async fn run(
    world: &World,
    config: ConsumerConfig,
    handlers: HandlerRegistry,
    done: impl Fn(&[Event]) -> bool + Send + 'static,
) -> (Stats, Vec<Event>) {
    let runtime = Tokio {
        origin: Instant::now(),
    };
    let consumer = Consumer::new(config, &handlers, runtime.now()).unwrap();
    let driver = Driver::new(
        consumer,
        handlers,
        Arc::new(world.queue.clone()),
        Arc::new(world.lock.clone()),
        runtime,
    );
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);
    let observer = move |e: &Event| {
        let mut seen = s.lock().unwrap();
        seen.push(e.clone());
        if stop_tx.is_some() && done(&seen) {
            let _ = stop_tx.take().unwrap().send(());
        }
    };
    let shutdown = async move {
        let _ = tokio::time::timeout(Duration::from_secs(20), stop_rx).await;
    };
    let stats = tokio::time::timeout(Duration::from_secs(40), driver.run(shutdown, observer))
        .await
        .expect("the driver did not stop");
    let events = seen.lock().unwrap().clone();
    (stats, events)
}

fn deleted(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Deleted { .. }))
        .count()
}

fn failures(events: &[Event]) -> Vec<(String, DispatchOutcome)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Failed {
                message, outcome, ..
            } => Some((message.body.clone(), outcome.clone())),
            _ => None,
        })
        .collect()
}

/// Each call's batch, as the `n`s of its orders.
type Calls = Arc<Mutex<Vec<Vec<u32>>>>;

#[tokio::test]
async fn full_batches_run_at_once_and_only_their_failed_items_are_retried() {
    let w = world(6);
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let mut handlers = HandlerRegistry::new();
    // A wait far beyond the test's patience: only filling runs a batch.
    let options = BatchOptions::new()
        .max_size(3)
        .max_wait(Duration::from_secs(60));
    handlers
        .on_batch_with(EVENT, options, move |batch: Batch<Order>| {
            let calls = c.clone();
            async move {
                calls
                    .lock()
                    .unwrap()
                    .push(batch.payloads().map(|o| o.n).collect());
                let mut outcome = BatchOutcome::all_ok();
                for item in &batch {
                    // Odd orders fail on their first delivery.
                    if item.payload.n % 2 == 1 && item.receive_count() == 1 {
                        outcome.fail(item, "odd orders fail once");
                    }
                }
                outcome
            }
        })
        .unwrap();
    let mut config = config();
    config.max_in_flight = 6;
    config.receive_batch = 6;
    let (stats, events) = run(&w, config, handlers, |e| deleted(e) == 6).await;
    assert!(w.queue.is_empty(), "{stats}");

    let calls = calls.lock().unwrap().clone();
    let mut handled: HashMap<u32, usize> = HashMap::new();
    for n in calls.iter().flatten() {
        *handled.entry(*n).or_default() += 1;
    }
    for n in 0..6 {
        let want = if n % 2 == 1 { 2 } else { 1 };
        assert_eq!(handled.get(&n), Some(&want), "order {n}; calls {calls:?}");
    }
    assert_eq!(calls[0].len(), 3, "the first batch fills to 3: {calls:?}");
    assert_eq!(stats.succeeded, 6);
    let failed = failures(&events);
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed
        .iter()
        .all(|(_, o)| matches!(o, DispatchOutcome::Failed { .. })));
}

#[tokio::test]
async fn a_batch_that_does_not_fill_runs_when_its_wait_is_over() {
    let w = world(2);
    let started = Instant::now();
    let calls: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let c = calls.clone();
    let mut handlers = HandlerRegistry::new();
    let wait = Duration::from_millis(400);
    handlers
        .on_batch_with(
            EVENT,
            BatchOptions::new().max_size(10).max_wait(wait),
            move |batch: Batch<Order>| {
                c.lock().unwrap().push((batch.len(), started.elapsed()));
                async {}
            },
        )
        .unwrap();
    let mut config = config();
    // Nothing else wakes the driver meanwhile (a long poll, no heartbeat
    // due): the batch runs on its own timer or not at all.
    config.wait_time = Duration::from_secs(20);
    let (_, _) = run(&w, config, handlers, |e| deleted(e) == 2).await;
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, 2, "both in one batch: {calls:?}");
    assert!(
        calls[0].1 >= wait,
        "ran before its wait was over: {calls:?}"
    );
    assert!(
        calls[0].1 < wait + Duration::from_secs(2),
        "ran long after its wait was over: {calls:?}"
    );
}

#[tokio::test]
async fn a_batch_is_never_larger_than_max_in_flight() {
    let w = world(4);
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch_with(
            EVENT,
            BatchOptions::new()
                .max_size(10)
                .max_wait(Duration::from_secs(60)),
            move |batch: Batch<Order>| {
                c.lock()
                    .unwrap()
                    .push(batch.payloads().map(|o| o.n).collect());
                async {}
            },
        )
        .unwrap();
    let mut config = config();
    config.max_in_flight = 2;
    // With a wait of a minute, the batches ran because they were full at 2.
    let started = Instant::now();
    let (_, _) = run(&w, config, handlers, |e| deleted(e) == 4).await;
    let calls = calls.lock().unwrap().clone();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the batches waited for more than max_in_flight deliveries: {calls:?}"
    );
    assert!(calls.iter().all(|b| b.len() == 2), "{calls:?}");
    assert_eq!(calls.len(), 2);
}

#[tokio::test]
async fn a_panic_fails_every_member_and_the_consumer_goes_on() {
    let w = world(3);
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch_with(
            EVENT,
            BatchOptions::new().max_size(3),
            move |_batch: Batch<Order>| {
                let first = {
                    let mut calls = c.lock().unwrap();
                    *calls += 1;
                    *calls == 1
                };
                async move {
                    if first {
                        panic!("the batch handler broke");
                    }
                }
            },
        )
        .unwrap();
    let (stats, events) = run(&w, config(), handlers, |e| deleted(e) == 3).await;
    let failed = failures(&events);
    assert_eq!(failed.len(), 3, "{failed:?}");
    for (_, outcome) in &failed {
        assert_eq!(
            *outcome,
            DispatchOutcome::Panicked("the batch handler broke".into())
        );
    }
    assert_eq!(stats.succeeded, 3);
    assert!(w.queue.is_empty());
}

/// A batch handler that hangs on its first call, keeping each delivery's
/// message and lock-lost signal; it succeeds at once from its second call
/// on.
#[derive(Clone, Default)]
struct Hangs {
    seen: Arc<Mutex<Vec<(SharedMessage, LockLost)>>>,
    calls: Arc<Mutex<u32>>,
}

#[iniesta_core::async_trait]
impl BatchHandler for Hangs {
    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), ItemFailure>> {
        let first = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls == 1
        };
        if first {
            self.seen.lock().unwrap().extend(
                deliveries
                    .iter()
                    .map(|d| (d.message.clone(), d.lock_lost.clone())),
            );
            std::future::pending::<()>().await;
        }
        vec![Ok(()); deliveries.len()]
    }
}

fn is_order_1(message: &SharedMessage) -> bool {
    message.body.contains('1')
}

#[tokio::test]
async fn an_abort_of_one_member_stops_the_call_and_fails_the_others() {
    let w = world(3);
    let hangs = Hangs::default();
    let mut handlers = HandlerRegistry::new();
    handlers
        .add_batch(EVENT, BatchOptions::new().max_size(3), hangs.clone())
        .unwrap();
    let mut config = config();
    config.heartbeat_interval = Duration::from_millis(100);
    config.visibility_extension = Some(Duration::from_secs(2));
    // Once the call runs, the lock of order 1 is taken away: its next
    // heartbeat finds it lost, and the machine aborts that member alone.
    let (lock, seen, keys) = (w.lock.clone(), hangs.seen.clone(), config.clone());
    tokio::spawn(async move {
        let message = loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let found = seen
                .lock()
                .unwrap()
                .iter()
                .find(|(m, _)| is_order_1(m))
                .map(|(m, _)| m.clone());
            if let Some(m) = found {
                break m;
            }
        };
        let key = keys.lock_key(&message);
        assert!(lock.expire(key.as_str()), "no lock held on {key}");
    });
    let (stats, events) = run(&w, config, handlers, |e| deleted(e) == 3).await;
    let failed = failures(&events);
    assert_eq!(failed.len(), 3, "{failed:?}");
    for (body, outcome) in &failed {
        if body.contains('1') {
            assert_eq!(*outcome, DispatchOutcome::Aborted, "{body}");
        } else {
            let DispatchOutcome::Failed { error, .. } = outcome else {
                panic!("{body}: {outcome:?}");
            };
            let text = error.to_string();
            assert!(text.contains("batch call"), "{text}");
            assert!(text.contains("its lock was lost"), "{text}");
        }
    }
    // Only the member whose lock went was told so.
    for (message, signal) in hangs.seen.lock().unwrap().iter() {
        assert_eq!(signal.is_lost(), is_order_1(message), "{}", message.body);
    }
    assert_eq!(stats.succeeded, 3);
}

#[tokio::test]
async fn a_member_aborted_while_gathered_is_answered_at_once_without_a_call() {
    let w = world(2);
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch_with(
            EVENT,
            BatchOptions::new()
                .max_size(10)
                .max_wait(Duration::from_secs(30)),
            move |_b: Batch<Order>| {
                *c.lock().unwrap() += 1;
                async {}
            },
        )
        .unwrap();
    let mut config = config();
    // The members' locks run out long before the batch's wait: once they
    // are gathered, every lock call fails, the heartbeat cannot extend, and
    // the machine aborts each member when its lock expires.
    config.lock_timeout = Duration::from_millis(600);
    config.heartbeat_interval = Duration::from_millis(100);
    let lock = w.lock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lock.fail_next(u32::MAX);
    });
    let started = Instant::now();
    let (_, events) = run(&w, config, handlers, |e| failures(e).len() >= 2).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let failed = failures(&events);
    assert!(
        failed.iter().all(|(_, o)| *o == DispatchOutcome::Aborted),
        "{failed:?}"
    );
    // Shutdown ran what was gathered again meanwhile, if anything; the two
    // aborted members never were in a call.
    assert!(*calls.lock().unwrap() <= 1);
}

#[tokio::test]
async fn shutdown_runs_a_gathering_batch_at_once() {
    let w = world(3);
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch_with(
            EVENT,
            BatchOptions::new()
                .max_size(10)
                .max_wait(Duration::from_secs(60)),
            |_b: Batch<Order>| async {},
        )
        .unwrap();
    let started = Instant::now();
    let started_3 = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::HandlerStarted { .. }))
            .count()
            == 3
    };
    let (stats, _) = run(&w, config(), handlers, started_3).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited out the batch's wait"
    );
    assert_eq!(stats.succeeded, 3, "{stats}");
    assert!(w.queue.is_empty());
}

/// Answers one result, whatever the batch.
struct AnswersOne;

#[iniesta_core::async_trait]
impl BatchHandler for AnswersOne {
    async fn handle_batch(&self, _deliveries: Vec<Delivery>) -> Vec<Result<(), ItemFailure>> {
        vec![Err(ItemFailure::from(HandlerError::permanent("first")))]
    }
}

#[tokio::test]
async fn members_an_answer_misses_fail_and_are_retried() {
    let w = world(3);
    let mut handlers = HandlerRegistry::new();
    handlers
        .add_batch(EVENT, BatchOptions::new().max_size(3), AnswersOne)
        .unwrap();
    let mut config = config();
    config.delete_permanent_failures = true;
    let stop = |e: &[Event]| failures(e).len() >= 3;
    let (_, events) = run(&w, config, handlers, stop).await;
    let failed = failures(&events);
    let texts: Vec<String> = failed
        .iter()
        .take(3)
        .map(|(_, o)| match o {
            DispatchOutcome::Failed { error, retry } => format!("{retry:?}: {error}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(texts[0].starts_with("Never: first"), "{texts:?}");
    for text in &texts[1..] {
        assert!(text.starts_with("Backoff: "), "{text}");
        assert!(
            text.contains("answered 1 outcomes for 3 deliveries"),
            "{text}"
        );
    }
}
