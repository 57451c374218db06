//! The builder inside a service, on the in-memory backends: a shutdown
//! signal of the service's own, the handle awaited directly, and backends
//! passed by value.
#![cfg(feature = "mock")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use iniesta_core::settings::Settings;
use iniesta_core::{Delivery, DeliveryMode};
use iniesta_tokio::{InMemory, Iniesta};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signal_starts_a_graceful_shutdown_that_lets_handlers_finish() {
    let world = InMemory::new();
    let (started_tx, started) = oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let (stop, stopped) = oneshot::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    // The handler finishes only once the shutdown has begun: it is running
    // when the signal fires, whatever the machine's speed.
    let shutdown_began = Arc::new(tokio::sync::Notify::new());
    let (go, began) = (shutdown_began.clone(), shutdown_began);
    let consumer = Iniesta::in_memory(&world)
        .on("A.svc", move |_d: Delivery| {
            let started_tx = started_tx.clone();
            let done = done.clone();
            let began = began.clone();
            async move {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                began.notified().await;
                done.store(true, Ordering::SeqCst);
            }
        })
        .observer(move |e: &iniesta_core::Event| {
            if matches!(e, iniesta_core::Event::ShutdownStarted { .. }) {
                go.notify_one();
            }
        })
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .start()
        .await
        .unwrap();

    world.publish("A.svc", "1").await.unwrap();
    within("the handler starts", started).await.unwrap();
    assert!(!consumer.is_finished());
    stop.send(()).unwrap();

    let stats = within("the consumer stops", consumer).await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the running handler was not let finish"
    );
    assert_eq!(stats.succeeded, 1, "{stats}");
    assert_eq!(stats.aborted, 0, "{stats}");
    assert!(world.queue().is_empty(), "the handled message was deleted");
}

#[tokio::test]
async fn without_the_signal_the_consumer_keeps_running() {
    let world = InMemory::new();
    let (_stop, stopped) = oneshot::channel::<()>();
    let consumer = Iniesta::in_memory(&world)
        .on("A.svc", || async {})
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .start()
        .await
        .unwrap();

    world.publish("A.svc", "1").await.unwrap();
    within(
        "the event is handled",
        consumer.watch_stats().wait_for(|s| s.deleted == 1),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!consumer.is_finished(), "stopped without a signal");
    consumer.shutdown();
    within("shutdown", consumer).await.unwrap();
}

#[tokio::test]
async fn a_shutdown_from_the_handle_drops_the_pending_signal() {
    let world = InMemory::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let consumer = Iniesta::in_memory(&world)
        .on("A.svc", || async {})
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .start()
        .await
        .unwrap();

    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(stats.received, 0, "{stats}");
    // The signal lived in the consumer's task and went with it.
    assert!(stop.is_canceled(), "the signal outlived the consumer");
}

#[tokio::test]
async fn backends_are_taken_by_value() {
    let world = InMemory::new();
    let mut settings = Settings::default();
    settings.queue_name = Some(world.queue().name().to_owned());
    let consumer = Iniesta::new()
        .settings(settings)
        .queue(world.queue().clone())
        .lock(world.lock().clone())
        .delivery_mode(DeliveryMode::Envelope)
        .on("A.svc", || async {})
        .start()
        .await
        .unwrap();
    world.publish("A.svc", "1").await.unwrap();
    within(
        "the event is handled",
        consumer.watch_stats().wait_for(|s| s.deleted == 1),
    )
    .await
    .unwrap();
    consumer.shutdown();
    let stats = within("shutdown", consumer).await.unwrap();
    assert_eq!(stats.succeeded, 1, "{stats}");
}
