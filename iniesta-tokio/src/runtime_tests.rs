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
