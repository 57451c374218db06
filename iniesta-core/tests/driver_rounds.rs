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

use iniesta_core::{
    AttributeValue, Consumer, ConsumerConfig, DeliveryMode, Driver, Event, HandlerRegistry,
    ParseConfig, Runtime,
};
use iniesta_mock::{Clock, MockLock, MockQueue};

mod common;
use common::runtime::Tokio;

const EVENT: &str = "Together.svc";
const MESSAGES: usize = 20;

#[test]
fn handlers_that_finish_together_complete_in_one_or_two_calls() {
    let clock = Clock::real();
    let queue = MockQueue::new("q", &clock);
    for i in 0..MESSAGES {
        let attrs = BTreeMap::from([(
            "iniesta_pass".to_owned(),
            AttributeValue::String(EVENT.into()),
        )]);
        queue.send(format!("{i}"), attrs);
    }
    let lock = MockLock::new(&clock);
    let mut config = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".into(),
            topic_arn: None,
        },
        "q",
    );
    config.max_in_flight = MESSAGES;
    config.wait_time = Duration::from_millis(100);

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

    // Stop once every message is deleted (20 s at most).
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
    let mut done_tx = Some(done_tx);
    let mut deleted = 0;
    let observer = move |e: &Event| {
        if matches!(e, Event::Deleted { .. }) {
            deleted += 1;
            if deleted == MESSAGES {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    };
    // One worker thread, so that no other thread steals a task: the order
    // the worker runs its tasks in is the runtime's, and the test
    // repeatable. The driver runs as a task on it, as `Iniesta::start`
    // runs it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (q, l) = (Arc::new(queue), Arc::new(lock.clone()));
    let stats = rt
        .block_on(rt.spawn(async move {
            let runtime = Tokio::new();
            let consumer = Consumer::new(config, &handlers, runtime.now()).unwrap();
            let driver = Driver::new(consumer, handlers, q, l, runtime);
            let shutdown = async move {
                let _ = tokio::time::timeout(Duration::from_secs(20), done_rx).await;
            };
            driver.run(shutdown, observer).await
        }))
        .unwrap();

    assert_eq!(stats.deleted, MESSAGES as u64, "{stats:?}");
    let s = lock.stats();
    assert_eq!(s.completed, MESSAGES as u64, "{s:?}");
    assert!(
        s.complete_calls <= 2,
        "{MESSAGES} handlers that finished together were completed in {} calls",
        s.complete_calls
    );
}
