//! What becomes of a message after each way its handler can end, on the
//! in-memory backends: a permanent failure reaches the dead-letter queue
//! (or is deleted when so configured) and runs once; a retry after a delay
//! comes back after it; a handler past the handler timeout is aborted and
//! retried; a handler that needs state nobody gave stops the start.
#![cfg(feature = "mock")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iniesta_core::handler::{HandlerError, Json, State};
use iniesta_core::settings::Settings;
use iniesta_core::{AttributeValue, Delivery, DeliveryMode, Event};
use iniesta_mock::{MockQueue, QueueOptions, Redrive};
use iniesta_tokio::{Error, Iniesta};

mod common;
use common::*;

fn event(name: &str) -> BTreeMap<String, AttributeValue> {
    BTreeMap::from([(
        "iniesta_pass".to_owned(),
        AttributeValue::String(name.to_owned()),
    )])
}

#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_runs_once_and_reaches_the_dead_letter_queue() {
    let world = quick_world();
    let dlq = MockQueue::new("dlq", world.clock());
    let mut options = QueueOptions::default();
    options.visibility_timeout = Duration::from_secs(1);
    options.redrive = Some(Redrive::new(&dlq, 3));
    let queue = MockQueue::with_options("q", world.clock(), options);
    let calls = Calls::default();
    let mut settings = Settings::default();
    settings.queue_name = Some("q".into());
    let consumer = Iniesta::in_memory(&world)
        .settings(settings)
        .queue(queue.clone())
        .delivery_mode(DeliveryMode::Raw)
        .state(calls.clone())
        .on("Poison.svc", |State(calls): State<Calls>| async move {
            calls.0.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(HandlerError::permanent("this order can never be shipped"))
        })
        .on("Good.svc", || async {})
        .start()
        .await
        .unwrap();

    queue.send("{}", event("Poison.svc"));
    queue.send("{}", event("Good.svc"));
    wait_stats(&consumer, "good deleted, poison given up", |s| {
        s.deleted == 1 && s.given_up == 1
    })
    .await;
    within("the poison in the dead-letter queue", async {
        while dlq.len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "never retried");
    assert!(queue.is_empty(), "nothing left in the queue");
    assert!(stats.handed_back >= 1, "{stats}");
    assert_eq!((stats.failed, stats.succeeded), (1, 1), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_payload_is_deleted_when_permanent_failures_are() {
    #[derive(serde::Deserialize)]
    struct Order {
        #[allow(dead_code)]
        id: u64,
    }
    let world = quick_world();
    let calls = Calls::default();
    let mut settings = Settings::default();
    settings.delete_permanent_failures = true;
    let c = calls.clone();
    let consumer = Iniesta::in_memory(&world)
        .settings(settings)
        .on("Order.svc", move |Json(_): Json<Order>| {
            let c = c.clone();
            async move {
                c.0.fetch_add(1, Ordering::SeqCst);
            }
        })
        .start()
        .await
        .unwrap();
    world.publish("Order.svc", "not json").await.unwrap();
    world.publish("Order.svc", r#"{"id": 1}"#).await.unwrap();
    wait_stats(&consumer, "both deleted", |s| s.deleted == 2).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "only the good one ran");
    assert_eq!((stats.given_up, stats.failed, stats.succeeded), (1, 1, 1));
    assert!(world.queue().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_returns_the_message_after_the_delay_it_asks() {
    let world = quick_world();
    let returned = Arc::new(Mutex::new(Vec::new()));
    let r = returned.clone();
    let calls = Calls::default();
    let consumer = Iniesta::in_memory(&world)
        .state(calls.clone())
        .on("Mail.svc", |State(calls): State<Calls>| async move {
            if calls.0.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(HandlerError::retry_after(
                    Duration::from_millis(1500),
                    "the mail API says: slow down",
                ));
            }
            Ok(())
        })
        .observer(move |e: &Event| {
            if let Event::Returned { delay, .. } = e {
                r.lock().unwrap().push(*delay);
            }
        })
        .start()
        .await
        .unwrap();
    world.publish("Mail.svc", "{}").await.unwrap();
    wait_stats(&consumer, "handled on the retry", |s| s.deleted == 1).await;
    within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(calls.0.load(Ordering::SeqCst), 2);
    assert_eq!(*returned.lock().unwrap(), [Duration::from_millis(1500)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_is_aborted_by_the_handler_timeout_and_retried() {
    let world = quick_world();
    let calls = Calls::default();
    let consumer = Iniesta::in_memory(&world)
        .handler_timeout(Duration::from_millis(300))
        .state(calls.clone())
        .on("Slow.svc", |State(calls): State<Calls>| async move {
            if calls.0.fetch_add(1, Ordering::SeqCst) == 0 {
                // Hung: only the timeout ends it.
                std::future::pending::<()>().await;
            }
        })
        .start()
        .await
        .unwrap();
    world.publish("Slow.svc", "{}").await.unwrap();
    wait_stats(&consumer, "handled on the retry", |s| s.deleted == 1).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!((stats.timed_out, stats.aborted, stats.succeeded), (1, 1, 1));
}

#[tokio::test]
async fn a_handler_that_needs_state_nobody_gave_stops_the_start() {
    let world = quick_world();
    let err = Iniesta::in_memory(&world)
        .on("A.svc", |State(_): State<Calls>| async {})
        .start()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Handlers(_)) && text.contains("Calls"),
        "{text}"
    );
}

#[tokio::test]
async fn the_error_chain_reaches_the_observers() {
    #[derive(Debug, thiserror::Error)]
    #[error("saving the user failed")]
    struct Save(#[source] std::io::Error);
    let world = quick_world();
    let chains = Arc::new(Mutex::new(Vec::new()));
    let ch = chains.clone();
    let consumer = Iniesta::in_memory(&world)
        .on("A.svc", |_d: Delivery| async {
            Err::<(), _>(Save(std::io::Error::other("disk full")))
        })
        .observer(move |e: &Event| {
            if let Event::Failed {
                outcome: iniesta_core::DispatchOutcome::Failed { error, .. },
                ..
            } = e
            {
                ch.lock().unwrap().push(error.to_string());
            }
        })
        .start()
        .await
        .unwrap();
    world.publish("A.svc", "{}").await.unwrap();
    wait_stats(&consumer, "a failure", |s| s.failed >= 1).await;
    within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(
        chains.lock().unwrap()[0],
        "saving the user failed: disk full"
    );
}
