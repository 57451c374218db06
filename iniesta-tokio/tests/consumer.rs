//! The builder and the runtime binding on the in-memory backends: every
//! event handled once, handlers in parallel up to the limit, panics and
//! lock expiry as failed dispatches, graceful shutdown, clear start-up
//! errors.
#![cfg(feature = "mock")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iniesta_core::machine::AbortReason;
use iniesta_core::settings::Settings;
use iniesta_core::{Delivery, DeliveryMode, DispatchOutcome, Event, LockBackend, Queue};
use iniesta_tokio::{Error, InMemory, Iniesta, TracingObserver};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_handled_once_and_duplicates_are_acked() {
    let world = quick_world();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    let consumer = Iniesta::in_memory(&world)
        .on(["A.svc", "B.svc"], move |d: Delivery| {
            let seen = s1.clone();
            async move {
                seen.lock().unwrap().push(d.message.key().to_owned());
                Ok::<_, String>(())
            }
        })
        .default_handler(move |d: Delivery| {
            let seen = s2.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(format!("default:{}", d.message.key()));
                Ok::<_, String>(())
            }
        })
        .start()
        .await
        .unwrap();

    let a = world.publish("A.svc", "1").await.unwrap();
    world.topic().duplicate_next(1);
    let b = world.publish("B.svc", "2").await.unwrap();
    let c = world.publish("Other.elsewhere", "3").await.unwrap();
    let copies = world.topic().stats().delivered;
    assert_eq!(copies, 4, "B is delivered twice");

    wait_stats(&consumer, "all copies deleted", |s| s.deleted >= copies).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let mut expected = vec![a, b, format!("default:{c}")];
    expected.sort();
    assert_eq!(seen, expected, "each event handled exactly once");
    assert_eq!(stats.succeeded, 3);
    assert_eq!(stats.acked_duplicates, 1);
    assert!(world.queue().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failed_dispatch_and_the_consumer_goes_on() {
    let world = quick_world();
    let consumer = Iniesta::in_memory(&world)
        .on("Boom.svc", |_d: Delivery| async move {
            if true {
                panic!("handler bug");
            }
            Ok::<_, String>(())
        })
        .on("Next.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .configure(|c| c.max_in_flight = 1)
        .start()
        .await
        .unwrap();

    world.publish("Boom.svc", "x").await.unwrap();
    wait_stats(&consumer, "the panic", |s| s.panicked >= 1).await;
    world.publish("Next.svc", "y").await.unwrap();
    wait_stats(&consumer, "the next message", |s| s.succeeded >= 1).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    assert!(stats.panicked >= 1);
    assert_eq!(stats.succeeded, 1);
    // The panicked event stays in the queue for redelivery; the other is gone.
    let left: Vec<_> = world
        .queue()
        .snapshot()
        .into_iter()
        .filter(|m| !m.deleted)
        .collect();
    assert_eq!(left.len(), 1, "only the panicked message is left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_concurrently_up_to_max_in_flight() {
    const LIMIT: usize = 4;
    let world = InMemory::new();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // Each handler waits until LIMIT handlers are running at once: with
    // fewer in parallel, the barrier never opens and the test fails.
    let barrier = Arc::new(tokio::sync::Barrier::new(LIMIT));
    let (r, p, b) = (running.clone(), peak.clone(), barrier.clone());
    let mut settings = Settings::default();
    settings.max_in_flight = LIMIT;
    let consumer = Iniesta::in_memory(&world)
        .settings(settings)
        .on("Work.svc", move |_d: Delivery| {
            let (running, peak, barrier) = (r.clone(), p.clone(), b.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                barrier.wait().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        })
        .start()
        .await
        .unwrap();

    for i in 0..2 * LIMIT {
        world.publish("Work.svc", i.to_string()).await.unwrap();
    }
    wait_stats(&consumer, "all handled", |s| s.deleted >= 2 * LIMIT as u64).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(stats.succeeded, 2 * LIMIT as u64);
    assert_eq!(
        peak.load(Ordering::SeqCst),
        LIMIT,
        "never more than the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_outlives_its_lock_is_aborted_and_retried() {
    let world = quick_world();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let w = world.clone();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let w2 = world.clone();
    let mut settings = Settings::default();
    settings.lock_timeout = Duration::from_secs(1);
    let (signalled_tx, signalled_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let mut signalled_rx = signalled_rx;
    let consumer = Iniesta::in_memory(&world)
        .settings(settings)
        .on("Slow.svc", move |d: Delivery| {
            let (calls, world, signalled) = (c.clone(), w.clone(), signalled_tx.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Work the handler started elsewhere, which the abort
                    // cannot reach: it hears of the lost lock by the signal.
                    let lost = d.lock_lost.clone();
                    tokio::spawn(async move {
                        lost.lost().await;
                        let _ = signalled.send(lost.is_lost());
                    });
                    // The lock backend goes away: no heartbeat can extend
                    // the lock, so this handler outlives it.
                    world.lock().fail_next(u32::MAX);
                    std::future::pending::<()>().await;
                }
                Ok::<_, String>(())
            }
        })
        .observer(move |e: &Event| {
            if let Event::Aborting { reason, .. } = e {
                // The backend comes back, so the redelivery can succeed.
                w2.lock().clear_faults();
                ev.lock()
                    .unwrap()
                    .push((*reason, TracingObserver::level(e)));
            }
            if let Event::Failed { outcome, .. } = e {
                assert_eq!(*outcome, DispatchOutcome::Aborted);
            }
        })
        .start()
        .await
        .unwrap();

    world.publish("Slow.svc", "x").await.unwrap();
    assert_eq!(
        within("the lock-lost signal", signalled_rx.recv()).await,
        Some(true),
        "the spawned work heard that the lock was lost"
    );
    wait_stats(&consumer, "the retry to succeed", |s| s.succeeded >= 1).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    assert_eq!(
        *events.lock().unwrap(),
        vec![(AbortReason::LockExpired, tracing::Level::WARN)],
        "aborted once because the lock expired, reported at warn"
    );
    assert_eq!(stats.aborted, 1);
    assert_eq!(stats.succeeded, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(world.queue().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_handler_finish() {
    let world = InMemory::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(Mutex::new(Some(started_tx)));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = Iniesta::in_memory(&world)
        .observer(move |e: &Event| {
            if let Event::ShutdownStarted { in_flight } = e {
                let _ = shutdown_tx.send(*in_flight);
            }
        })
        .on("Job.svc", move |_d: Delivery| {
            let (started, mut release, finished) =
                (started_tx.clone(), release_rx.clone(), f.clone());
            async move {
                if let Some(tx) = started.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                // Runs until the test lets it go, after shutdown began.
                let _ = release.wait_for(|go| *go).await;
                finished.store(true, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        })
        .start()
        .await
        .unwrap();

    world.publish("Job.svc", "x").await.unwrap();
    within("the handler to start", started_rx).await.unwrap();
    consumer.shutdown();
    let in_flight = within("shutdown to begin", shutdown_rx.recv()).await;
    assert_eq!(in_flight, Some(1));
    assert!(!consumer.is_finished(), "shutdown waits for the handler");
    release_tx.send(true).unwrap();
    let stats = within("shutdown", consumer.wait()).await.unwrap();

    assert!(finished.load(Ordering::SeqCst));
    assert_eq!(stats.succeeded, 1);
    assert_eq!(stats.deleted, 1);
    assert!(
        world.queue().is_empty(),
        "completed and deleted before stopping"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_aborts_a_handler_still_running_when_the_grace_ends() {
    let world = InMemory::new();
    let mut settings = Settings::default();
    settings.shutdown_grace = Duration::from_millis(100);
    let consumer = Iniesta::in_memory(&world)
        .settings(settings)
        .on("Stuck.svc", |_d: Delivery| async {
            std::future::pending::<()>().await;
            Ok::<_, String>(())
        })
        .start()
        .await
        .unwrap();

    world.publish("Stuck.svc", "x").await.unwrap();
    wait_stats(&consumer, "dispatch", |s| s.dispatched >= 1).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(stats.aborted, 1);
    assert_eq!(world.queue().len(), 1, "left for redelivery, not lost");
    assert_eq!(world.lock().locked_len(), 0, "the lock was released");
}

#[tokio::test(flavor = "current_thread")]
async fn each_handler_runs_in_a_span_describing_its_message() {
    // A subscriber for this thread; the current-thread runtime polls every
    // task here.
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
    let world = InMemory::new();
    let span_seen = Arc::new(Mutex::new(None));
    let s = span_seen.clone();
    let consumer = Iniesta::in_memory(&world)
        .on("Traced.svc", move |_d: Delivery| {
            let s = s.clone();
            async move {
                let span = tracing::Span::current();
                let meta = span.metadata().map(|m| {
                    let fields: Vec<String> = m.fields().iter().map(|f| f.to_string()).collect();
                    (m.name(), fields)
                });
                *s.lock().unwrap() = meta;
                Ok::<_, String>(())
            }
        })
        .start()
        .await
        .unwrap();
    world.publish("Traced.svc", "x").await.unwrap();
    wait_stats(&consumer, "handled", |s| s.succeeded >= 1).await;
    within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    let (name, fields) = span_seen.lock().unwrap().clone().expect("a span");
    assert_eq!(name, "iniesta.message");
    assert_eq!(fields, ["event", "message_id", "key", "receive_count"]);
}

#[tokio::test]
async fn explicit_backends_win() {
    // Without in_memory_backends: the queue and lock given are used, and the
    // environment is not read.
    let world = InMemory::new();
    let queue: Arc<dyn Queue> = Arc::new(world.queue().clone());
    let lock: Arc<dyn LockBackend> = Arc::new(world.lock().clone());
    // Lock keys are scoped to the queue, so a queue given this way is named
    // by the settings.
    let mut settings = Settings::default();
    settings.queue_name = Some(world.queue().name().to_owned());
    let consumer = Iniesta::new()
        .settings(settings)
        .queue(queue)
        .lock(lock)
        .delivery_mode(DeliveryMode::Envelope)
        .on("A.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap();
    world.publish("A.svc", "x").await.unwrap();
    wait_stats(&consumer, "handled", |s| s.deleted >= 1).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert_eq!(stats.succeeded, 1);
}

#[tokio::test]
async fn a_refused_registration_is_reported_at_start() {
    let world = InMemory::new();
    let err = Iniesta::in_memory(&world)
        .on("A.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .on("A.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Handlers(_)), "{err}");
    assert!(
        err.to_string().contains("\"A.svc\" already has a handler"),
        "{err}"
    );
}

#[tokio::test]
async fn no_handlers_is_an_error() {
    let err = Iniesta::in_memory(&InMemory::new())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoHandlers), "{err}");
}

#[tokio::test]
async fn a_given_queue_needs_a_name() {
    let world = InMemory::new();
    let queue: Arc<dyn Queue> = Arc::new(world.queue().clone());
    let lock: Arc<dyn LockBackend> = Arc::new(world.lock().clone());
    let err = Iniesta::new()
        .settings(Settings::default())
        .queue(queue)
        .lock(lock)
        .on("A.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoQueueName), "{err}");
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn every_settings_problem_is_reported_at_once() {
    use iniesta_core::settings::InitializationType;
    let mut settings = Settings::default();
    settings
        .initialization_types
        .insert(InitializationType::EventPolling);
    let err = Iniesta::new()
        .settings(settings)
        .on("A.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap_err();
    let Error::Settings(problems) = &err else {
        panic!("expected a settings error, got {err}");
    };
    for var in [
        "INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
        "INIESTA_SQS_CONSUMER_FILTERS",
        "SERVICE_NAME",
    ] {
        assert!(problems.mentions(var), "{var} missing from:\n{err}");
    }
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn a_consumer_needs_a_polling_initialization_type() {
    let err = Iniesta::new()
        .settings(Settings::default())
        .on("A.svc", |_d: Delivery| async { Ok::<_, String>(()) })
        .start()
        .await
        .unwrap_err();
    let Error::Settings(problems) = &err else {
        panic!("expected a settings error, got {err}");
    };
    assert!(problems.mentions("INIESTA_INITIALIZATION_TYPE"), "{err}");
    assert!(err.to_string().contains("EVENT_POLLING"), "{err}");
}
