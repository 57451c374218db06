//! The consumer's metrics on the in-memory backends. A process has one
//! global recorder, so this binary installs one for all its tests; they take
//! turns, and each reads what moved during its own run (counters as the
//! difference from before it, histograms as the values recorded since,
//! gauges as they stand).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use iniesta_core::Stats;
use iniesta_tokio::observe::names;
use iniesta_tokio::{ConsumerHandle, Delivery, InMemory, Iniesta, MetricsObserver};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::sync::{Mutex, MutexGuard, Semaphore};

/// The recorder of this test binary.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this test binary");
        snapshotter
    })
}

/// Held for a whole test: the tests share the recorder, so they run one at
/// a time.
async fn my_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::const_new(());
    let turn = TURN.lock().await;
    snapshotter();
    turn
}

/// `name{label=value,…}`, labels sorted; `name` alone without labels.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// One series' value since the recorder was installed.
#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

/// Every series at one moment, since the recorder was installed.
///
/// A snapshot of the debugging recorder consumes what it reads (counters
/// and gauges go back to 0, histograms are emptied), so every read is
/// added to running totals here; the gauges only move by increments, so
/// their totals are their values.
#[derive(Clone)]
struct Series(BTreeMap<String, Value>);

impl Series {
    fn read() -> Self {
        static TOTALS: std::sync::Mutex<BTreeMap<String, Value>> =
            std::sync::Mutex::new(BTreeMap::new());
        let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
        for (k, _, _, value) in snapshotter().snapshot().into_vec() {
            let k = k.key();
            let labels: Vec<(&str, &str)> = k.labels().map(|l| (l.key(), l.value())).collect();
            let name = key(k.name(), &labels);
            match (totals.get_mut(&name), value) {
                (Some(Value::Counter(n)), DebugValue::Counter(m)) => *n += m,
                (Some(Value::Gauge(v)), DebugValue::Gauge(w)) => *v += w.into_inner(),
                (Some(Value::Histogram(v)), DebugValue::Histogram(w)) => {
                    v.extend(w.iter().map(|x| x.into_inner()))
                }
                (None, DebugValue::Counter(m)) => {
                    totals.insert(name, Value::Counter(m));
                }
                (None, DebugValue::Gauge(w)) => {
                    totals.insert(name, Value::Gauge(w.into_inner()));
                }
                (None, DebugValue::Histogram(w)) => {
                    totals.insert(
                        name,
                        Value::Histogram(w.iter().map(|x| x.into_inner()).collect()),
                    );
                }
                (Some(total), value) => panic!("{name} changed kind: {total:?}, then {value:?}"),
            }
        }
        Series(totals.clone())
    }

    fn counter(&self, key: &str) -> u64 {
        match self.0.get(key) {
            Some(Value::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{key} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, key: &str) -> f64 {
        match self.0.get(key) {
            Some(Value::Gauge(v)) => *v,
            other => panic!("no gauge {key}: {other:?}; series: {:?}", self.keys()),
        }
    }

    fn histogram(&self, key: &str) -> &[f64] {
        match self.0.get(key) {
            Some(Value::Histogram(v)) => v,
            None => &[],
            Some(other) => panic!("{key} is not a histogram: {other:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// How much counter `key` moved between `before` and `after`.
fn moved(before: &Series, after: &Series, key: &str) -> u64 {
    after.counter(key) - before.counter(key)
}

/// The values histogram `key` recorded between `before` and `after`.
fn recorded(before: &Series, after: &Series, key: &str) -> Vec<f64> {
    after.histogram(key)[before.histogram(key).len()..].to_vec()
}

async fn wait_stats(consumer: &ConsumerHandle, what: &str, done: impl FnMut(&Stats) -> bool) {
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        consumer.watch_stats().wait_for(done),
    )
    .await;
    match waited {
        Ok(Ok(_)) => {}
        Ok(Err(stopped)) => panic!("waiting for {what}: {stopped}"),
        Err(_) => panic!("gave up waiting for {what}: {}", consumer.stats()),
    }
}

async fn stop(consumer: ConsumerHandle) -> Stats {
    tokio::time::timeout(Duration::from_secs(60), consumer.shutdown_and_wait())
        .await
        .expect("shutdown within a minute")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_counted() {
    let _turn = my_turn().await;
    let before = Series::read();
    let world = InMemory::new();
    let consumer = Iniesta::in_memory(&world)
        .on("Ok.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .on("Bad.svc", |_d: Delivery| async { Err::<(), _>("refused") })
        .start()
        .await
        .unwrap();
    world.publish("Ok.svc", "1").await.unwrap();
    world.publish("Ok.svc", "2").await.unwrap();
    world.publish("Bad.svc", "3").await.unwrap();
    world.publish("Nobody.svc", "4").await.unwrap();
    wait_stats(&consumer, "the run", |s| {
        s.deleted == 2 && s.failed >= 1 && s.no_handler >= 1
    })
    .await;
    let stats = stop(consumer).await;
    let after = Series::read();

    let ok = [("event", "Ok.svc")];
    let bad = [("event", "Bad.svc")];
    let count = |name, labels: &[(&str, &str)]| moved(&before, &after, &key(name, labels));
    assert_eq!(count(names::RECEIVED, &[]), stats.received);
    assert_eq!(count(names::DISPATCHED, &ok), 2);
    assert_eq!(count(names::DISPATCHED, &bad), stats.dispatched - 2);
    assert_eq!(count(names::SUCCEEDED, &ok), 2);
    let bad_error = [("event", "Bad.svc"), ("outcome", "error")];
    assert_eq!(count(names::FAILED, &bad_error), stats.failed);
    assert_eq!(count(names::NO_HANDLER, &[]), stats.no_handler);
    assert_eq!(count(names::DELETED, &[]), 2);
    assert_eq!(count(names::DUPLICATES_ACKED, &[]), 0);
    let ok_ok = [("event", "Ok.svc"), ("outcome", "ok")];
    let seconds =
        |labels: &[(&str, &str)]| recorded(&before, &after, &key(names::HANDLER_SECONDS, labels));
    assert_eq!(seconds(&ok_ok).len(), 2);
    assert_eq!(seconds(&bad_error).len() as u64, stats.failed);
    assert_eq!(after.gauge(&key(names::IN_FLIGHT, &ok)), 0.0);
    assert_eq!(after.gauge(&key(names::IN_FLIGHT, &bad)), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_receives_are_counted() {
    let _turn = my_turn().await;
    let before = Series::read();
    let world = InMemory::new();
    world.queue().fail_receives(2);
    let consumer = Iniesta::in_memory(&world)
        .on("Ok.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .configure(|c| c.receive_backoff = Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    world.publish("Ok.svc", "1").await.unwrap();
    wait_stats(&consumer, "the message after two failed receives", |s| {
        s.receive_errors == 2 && s.deleted == 1
    })
    .await;
    stop(consumer).await;
    let after = Series::read();

    // The in-memory queue fails with InternalError: neither throttling,
    // nor credentials, nor a missing queue.
    let failures = key(names::RECEIVE_FAILURES, &[("kind", "other")]);
    assert_eq!(moved(&before, &after, &failures), 2, "{:?}", after.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_counted_with_whether_a_failed_one_is_retried() {
    let _turn = my_turn().await;
    let before = Series::read();
    let retried = key(names::DELETE_FAILURES, &[("will_retry", "true")]);
    let given_up = key(names::DELETE_FAILURES, &[("will_retry", "false")]);

    // A failed delete tried again, then done.
    let world = InMemory::new();
    world.queue().fail_deletes(1);
    let consumer = Iniesta::in_memory(&world)
        .on("Ok.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .configure(|c| c.retry_delay = Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    world.publish("Ok.svc", "1").await.unwrap();
    wait_stats(&consumer, "the delete", |s| s.deleted == 1).await;
    stop(consumer).await;
    let middle = Series::read();
    assert_eq!(moved(&before, &middle, &key(names::DELETED, &[])), 1);
    assert_eq!(moved(&before, &middle, &retried), 1);
    assert_eq!(moved(&before, &middle, &given_up), 0);

    // A failed delete not tried again: the message stays for redelivery.
    let world = InMemory::new();
    world.queue().fail_deletes(1);
    let consumer = Iniesta::in_memory(&world)
        .on("Ok.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .configure(|c| c.delete_retries = 0)
        .start()
        .await
        .unwrap();
    world.publish("Ok.svc", "1").await.unwrap();
    wait_stats(&consumer, "the failed delete", |s| s.delete_failures == 1).await;
    stop(consumer).await;
    let after = Series::read();
    assert_eq!(moved(&middle, &after, &key(names::DELETED, &[])), 0);
    assert_eq!(moved(&middle, &after, &retried), 0);
    assert_eq!(moved(&middle, &after, &given_up), 1);
}

/// Reads the gauge `key` until it is `want` (the driver's task updates it
/// on its own time).
async fn gauge_reaches(key: &str, want: f64) {
    let read = async {
        loop {
            if Series::read().gauge(key) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .is_err()
    {
        panic!("{key} is {}, not {want}", Series::read().gauge(key));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_goes_up_and_comes_down_after_a_panic_and_an_abort() {
    let _turn = my_turn().await;
    let before = Series::read();
    let world = InMemory::new();
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let panicked = Arc::new(AtomicBool::new(false));
    let p = panicked.clone();
    let consumer = Iniesta::in_memory(&world)
        .on("Boom.svc", move |_d: Delivery| {
            let (gate, panicked) = (g.clone(), p.clone());
            async move {
                // Once: a redelivery just succeeds.
                if !panicked.swap(true, Ordering::SeqCst) {
                    let _permit = gate.acquire().await;
                    panic!("handler bug");
                }
                Ok::<_, String>(())
            }
        })
        .on("Stuck.svc", |_d: Delivery| async {
            std::future::pending::<()>().await;
            Ok::<_, String>(())
        })
        .configure(|c| c.shutdown_grace = Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let boom = key(names::IN_FLIGHT, &[("event", "Boom.svc")]);
    let stuck = key(names::IN_FLIGHT, &[("event", "Stuck.svc")]);

    world.publish("Boom.svc", "1").await.unwrap();
    gauge_reaches(&boom, 1.0).await;
    gate.add_permits(1);
    wait_stats(&consumer, "the panic", |s| s.panicked == 1).await;
    gauge_reaches(&boom, 0.0).await;

    world.publish("Stuck.svc", "2").await.unwrap();
    gauge_reaches(&stuck, 1.0).await;
    // Shutdown's grace runs out: the handler is aborted.
    let stats = stop(consumer).await;
    assert_eq!(stats.aborted, 1);
    let after = Series::read();
    assert_eq!(after.gauge(&stuck), 0.0);
    assert_eq!(after.gauge(&boom), 0.0);
    let count = |event, outcome| {
        let k = key(names::FAILED, &[("event", event), ("outcome", outcome)]);
        moved(&before, &after, &k)
    };
    assert_eq!(count("Boom.svc", "panic"), 1);
    assert_eq!(count("Stuck.svc", "aborted"), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn message_age_is_recorded_when_the_handler_starts() {
    let _turn = my_turn().await;
    let before = Series::read();
    let world = InMemory::new();
    world.publish("Order.placed", "1").await.unwrap();
    // Tokio's clock is paused: the world's clock jumps exactly this far.
    tokio::time::sleep(Duration::from_secs(90)).await;
    // The queue stamps SentTimestamp in Unix time on that clock, while the
    // wall clock hardly moved: the observer reads "now" on it too.
    let clock = world.clock().clone();
    let metrics = MetricsObserver::for_routes(["Order.*"])
        .with_wall_clock(move || clock.unix_millis(clock.now()));
    let consumer = Iniesta::in_memory(&world)
        .metrics(false)
        .observer(metrics)
        .on("Order.*", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap();
    wait_stats(&consumer, "the message", |s| s.succeeded == 1).await;
    stop(consumer).await;
    let after = Series::read();

    let ages = recorded(
        &before,
        &after,
        &key(names::MESSAGE_AGE_SECONDS, &[("event", "Order.*")]),
    );
    assert_eq!(ages.len(), 1, "one age per handler start: {ages:?}");
    assert!(
        (90.0..91.0).contains(&ages[0]),
        "the message waited 90 s, measured on the queue's clock: {ages:?}"
    );
}

/// On a running clock the built-in observer needs nothing: the queue
/// stamps `SentTimestamp` in ms since the Unix epoch, as SQS does, and the
/// age is the wall clock minus it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_age_is_read_on_the_wall_clock() {
    let _turn = my_turn().await;
    let before = Series::read();
    let world = InMemory::new();
    world.publish("Order.placed", "1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let consumer = Iniesta::in_memory(&world)
        .on("Order.*", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap();
    wait_stats(&consumer, "the message", |s| s.succeeded == 1).await;
    stop(consumer).await;
    let after = Series::read();

    let ages = recorded(
        &before,
        &after,
        &key(names::MESSAGE_AGE_SECONDS, &[("event", "Order.*")]),
    );
    assert_eq!(ages.len(), 1, "one age per handler start: {ages:?}");
    // At least the wait (a slow machine only adds to it).
    assert!(
        (1.2..120.0).contains(&ages[0]),
        "the message waited 1.2 s or more: {ages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_label_is_a_route_or_default() {
    let _turn = my_turn().await;
    let before = Series::read();
    let world = InMemory::new();
    let consumer = Iniesta::in_memory(&world)
        .on("Order.*", |_d: Delivery| async { Ok::<_, String>(()) })
        .on("UserCreated.users", |_d: Delivery| async {
            Ok::<_, String>(())
        })
        .default_handler(|_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap();
    for event in [
        "Order.placed",
        "Order.paid",
        "UserCreated.users",
        "Spam1.elsewhere",
        "Spam2.elsewhere",
    ] {
        world.publish(event, "{}").await.unwrap();
    }
    wait_stats(&consumer, "every message", |s| s.deleted == 5).await;
    stop(consumer).await;
    let after = Series::read();

    let dispatched = |event| {
        moved(
            &before,
            &after,
            &key(names::DISPATCHED, &[("event", event)]),
        )
    };
    assert_eq!(dispatched("Order.*"), 2);
    assert_eq!(dispatched("UserCreated.users"), 1);
    assert_eq!(dispatched("default"), 2);
    let foreign: Vec<&str> = after
        .keys()
        .into_iter()
        .filter(|k| k.contains("Spam") || k.contains("Order.p"))
        .collect();
    assert!(
        foreign.is_empty(),
        "event names are not labels: {foreign:?}"
    );
    let ages = |event| {
        let k = key(names::MESSAGE_AGE_SECONDS, &[("event", event)]);
        recorded(&before, &after, &k).len()
    };
    assert_eq!((ages("Order.*"), ages("default")), (2, 2));
}
