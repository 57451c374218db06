use super::*;
use std::time::Duration;

#[tokio::test]
async fn far_deadlines_do_not_overflow() {
    let rt = TokioRuntime::new();
    let sleep = rt.sleep_until(Time::MAX);
    // Polling once must not panic; the sleep is simply pending.
    let polled = futures::poll!(sleep);
    assert!(polled.is_pending());
}

#[tokio::test]
async fn past_deadlines_complete_at_once() {
    let rt = TokioRuntime::new();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let sleep = rt.sleep_until(Time::ZERO);
    // Generous bound only to keep a broken timer from hanging the test.
    let done = tokio::time::timeout(Duration::from_secs(30), sleep).await;
    assert!(done.is_ok(), "a past deadline must complete");
}

#[tokio::test]
async fn spawned_futures_run() {
    let rt = TokioRuntime::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(Box::pin(async move {
        let _ = tx.send(7);
    }));
    assert_eq!(rx.await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn time_is_tokios_clock_and_follows_it_when_paused() {
    let rt = TokioRuntime::new();
    assert_eq!(rt.now(), Time::ZERO, "a paused clock has not moved");
    tokio::time::advance(Duration::from_secs(90)).await;
    assert_eq!(rt.now(), Time::from_millis(90_000), "moved by hand");
}

#[tokio::test(start_paused = true)]
async fn timers_are_tokio_timers_that_a_paused_clock_jumps_to() {
    let rt = TokioRuntime::new();
    let start = tokio::time::Instant::now();
    let hour = Duration::from_secs(3600);
    // Nothing else is running: the paused runtime moves its clock straight
    // to this timer instead of waiting an hour.
    rt.sleep_until(Time::ZERO + hour).await;
    assert!(rt.now() >= Time::ZERO + hour, "woke at {:?}", rt.now());
    // tokio's timers tick in milliseconds; the clock jumps to the tick.
    let moved = start.elapsed();
    assert!(
        moved >= hour && moved < hour + Duration::from_secs(1),
        "tokio's clock moved {moved:?} for a one-hour timer"
    );
}
