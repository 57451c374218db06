//! The consumer on the in-memory backends under a paused tokio clock: the
//! queue's visibility timeouts, the lock's TTL, the driver's heartbeats and
//! backoffs all read tokio's clock, which jumps to the next timer whenever
//! every task is waiting. Minutes of consumer time pass at once, and every
//! assertion is on tokio's clock, never on the wall clock.
#![cfg(feature = "mock")]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iniesta_core::machine::AbortReason;
use iniesta_core::settings::Settings;
use iniesta_core::{Delivery, Event};
use iniesta_tokio::{ConsumerHandle, InMemory, Iniesta, Stats};
use tokio::time::Instant;

/// Keeps a broken consumer from waiting forever. On a paused clock it is
/// reached as soon as nothing else is left to happen, so a hang fails fast.
const HANG_GUARD: Duration = Duration::from_secs(24 * 3600);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting: {what}"))
}

async fn wait_stats(consumer: &ConsumerHandle, what: &str, done: impl FnMut(&Stats) -> bool) {
    let mut rx = consumer.watch_stats();
    within(what, rx.wait_for(done)).await.unwrap();
}

/// A handler that fails its first `failures` calls and then succeeds,
/// and the count of its calls.
fn failing_first(
    failures: usize,
) -> (
    impl Fn(Delivery) -> FailFirst + Send + Sync + 'static,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |_d: Delivery| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n < failures {
                Err(format!("call {} fails", n + 1))
            } else {
                Ok(())
            }
        }) as FailFirst
    };
    (handler, calls)
}

type FailFirst = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

#[tokio::test(start_paused = true)]
async fn a_failed_message_comes_back_after_the_default_visibility_timeout_at_once() {
    let world = InMemory::new();
    let visibility = world.options().visibility_timeout;
    assert_eq!(visibility, Duration::from_secs(30), "SQS's default");
    let (handler, calls) = failing_first(1);
    let consumer = Iniesta::in_memory(&world)
        .on("Payment.billing", handler)
        .start()
        .await
        .unwrap();

    let start = Instant::now();
    world.publish("Payment.billing", "{}").await.unwrap();
    wait_stats(&consumer, "the retry to succeed", |s| s.succeeded >= 1).await;
    let waited = start.elapsed();
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    assert!(
        waited >= visibility,
        "retried after {waited:?} of tokio time, before the visibility timeout ended"
    );
    assert!(
        waited < visibility + Duration::from_secs(5),
        "retried after {waited:?}: the long poll must wake when the message becomes visible"
    );
    assert_eq!((stats.failed, stats.succeeded), (1, 1));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(world.queue().stats().received, 2, "delivered twice");
    assert!(world.queue().is_empty(), "deleted after the retry");
}

#[tokio::test(start_paused = true)]
async fn failure_backoffs_grow_on_the_paused_clock() {
    let world = InMemory::new();
    let base = Duration::from_secs(60);
    let mut settings = Settings::default();
    settings.failure_backoff_base = Some(base);
    let (handler, calls) = failing_first(3);
    let consumer = Iniesta::in_memory(&world)
        .settings(settings)
        .on("Payment.billing", handler)
        .start()
        .await
        .unwrap();

    let start = Instant::now();
    world.publish("Payment.billing", "{}").await.unwrap();
    wait_stats(&consumer, "the fourth call to succeed", |s| {
        s.succeeded >= 1
    })
    .await;
    let waited = start.elapsed();
    within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    // Hidden 1 min, then 2 min, then 4 min after the three failures.
    let backoffs = base * (1 + 2 + 4);
    assert!(
        waited >= backoffs,
        "succeeded after {waited:?} of tokio time; the backoffs alone take {backoffs:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(world.queue().is_empty());
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_long_handler_locked_and_its_message_hidden() {
    let world = InMemory::new();
    let settings = Settings::default();
    let heartbeat = settings.heartbeat();
    let work = Duration::from_secs(10 * 60);
    let consumer = Iniesta::in_memory(&world)
        .on("Report.analytics", move |_d: Delivery| async move {
            // Far longer than the lock's TTL and the visibility timeout.
            tokio::time::sleep(work).await;
            Ok::<_, String>(())
        })
        .start()
        .await
        .unwrap();

    let start = Instant::now();
    world.publish("Report.analytics", "{}").await.unwrap();
    wait_stats(&consumer, "the long handler to finish", |s| s.deleted >= 1).await;
    let waited = start.elapsed();
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    assert!(waited >= work, "finished after {waited:?} of tokio time");
    // The lock's 2.5 s TTL ran on this clock the whole time: only the
    // heartbeats kept it.
    let world_time = world.clock().now().since_origin();
    assert!(
        world_time >= work,
        "the world's clock moved {world_time:?} while tokio's moved {waited:?}"
    );
    assert_eq!((stats.succeeded, stats.aborted), (1, 0));
    let beats = (work.as_millis() / heartbeat.as_millis()) as u64;
    let extended = world.lock().stats().extended;
    assert!(
        extended + 1 >= beats,
        "{extended} lock extensions in {work:?} with a heartbeat every {heartbeat:?}"
    );
    assert_eq!(
        world.queue().stats().received,
        1,
        "the extended visibility kept the message from being delivered again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_that_cannot_be_extended_expires_and_the_event_is_retried() {
    let world = InMemory::new();
    let settings = Settings::default();
    let lock_timeout = settings.lock_timeout;
    let calls = Arc::new(AtomicUsize::new(0));
    let aborts = Arc::new(Mutex::new(Vec::new()));
    let (c, w, w2, a) = (calls.clone(), world.clone(), world.clone(), aborts.clone());
    let consumer = Iniesta::in_memory(&world)
        .on("Slow.svc", move |_d: Delivery| {
            let (calls, world) = (c.clone(), w.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
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
                a.lock().unwrap().push(*reason);
            }
        })
        .start()
        .await
        .unwrap();

    let start = Instant::now();
    world.publish("Slow.svc", "x").await.unwrap();
    wait_stats(&consumer, "the retry to succeed", |s| s.succeeded >= 1).await;
    let waited = start.elapsed();
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();

    assert_eq!(*aborts.lock().unwrap(), vec![AbortReason::LockExpired]);
    assert!(
        waited >= lock_timeout,
        "the lock expired after {waited:?} of tokio time, before its TTL {lock_timeout:?}"
    );
    assert_eq!((stats.aborted, stats.succeeded), (1, 1));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(world.queue().is_empty());
}
