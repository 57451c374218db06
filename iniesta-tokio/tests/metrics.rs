//! The consumer's metrics, through a recorder installed for this test
//! binary only (a process has one global recorder, so this file holds a
//! single test).
#![cfg(feature = "mock")]

use std::collections::HashMap;
use std::time::Duration;

use iniesta_tokio::observe::names;
use iniesta_tokio::{Delivery, InMemory, Iniesta};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

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

    let mut stats = consumer.watch_stats();
    tokio::time::timeout(
        Duration::from_secs(60),
        stats.wait_for(|s| s.succeeded == 2 && s.failed == 1 && s.no_handler == 1),
    )
    .await
    .expect("gave up waiting for the run")
    .unwrap();
    consumer.shutdown_and_wait().await.unwrap();

    let mut counters: HashMap<String, u64> = HashMap::new();
    let mut handler_seconds = Vec::new();
    for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        match value {
            DebugValue::Counter(n) => {
                counters.insert(name, n);
            }
            DebugValue::Histogram(values) if key.name() == names::HANDLER_SECONDS => {
                handler_seconds = values;
            }
            _ => {}
        }
    }
    let count = |name: &str| counters.get(name).copied().unwrap_or(0);
    assert_eq!(count(names::RECEIVED), 4, "{counters:?}");
    assert_eq!(count(names::DISPATCHED), 3, "{counters:?}");
    assert_eq!(count(names::SUCCEEDED), 2, "{counters:?}");
    assert_eq!(
        count("iniesta_messages_failed_total{outcome=error}"),
        1,
        "{counters:?}"
    );
    assert_eq!(count(names::NO_HANDLER), 1, "{counters:?}");
    assert_eq!(count(names::DUPLICATES_ACKED), 0, "{counters:?}");
    assert_eq!(handler_seconds.len(), 3, "one duration per handler run");
}
