//! The readiness rules, the watched queue and the lock probe, without a
//! server (tests/http.rs serves them over real HTTP).

use std::sync::Arc;
use std::time::Duration;

use iniesta_core::{LockBackend, LockKey, Queue, ReceiveRequest};
use iniesta_mock::{Clock, MockLock, MockQueue};
use tokio_util::sync::CancellationToken;

use super::lock_probe::probe;
use super::readiness::{LockHealth, Readiness};
use super::watched_queue::WatchedQueue;
use super::{RECEIVE_FAILURES_NOT_READY, RECEIVE_STALL_GRACE};

/// A readiness whose consumer runs, its lock reachable: ready.
fn ready() -> (Readiness, CancellationToken) {
    let readiness = Readiness::default();
    let token = CancellationToken::new();
    readiness.running(token.clone());
    readiness.lock_known("in-memory lock");
    readiness.lock_probed(LockHealth::Reachable);
    assert_eq!(readiness.reasons(), Vec::<String>::new());
    (readiness, token)
}

fn request(wait_secs: u64) -> ReceiveRequest {
    ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_secs(wait_secs),
        visibility_timeout: None,
    }
}

fn has_reason(readiness: &Readiness, prefix: &str) -> bool {
    readiness.reasons().iter().any(|r| r.starts_with(prefix))
}

#[test]
fn not_ready_while_starting_shutting_down_or_stopped() {
    let readiness = Readiness::default();
    assert!(has_reason(&readiness, "starting:"));

    let (readiness, token) = ready();
    token.cancel();
    assert!(has_reason(&readiness, "shutting down:"));
    readiness.stopped();
    assert_eq!(readiness.reasons().len(), 1);
    assert!(has_reason(&readiness, "stopped:"));
}

#[test]
fn the_lock_must_have_answered_a_probe() {
    let (readiness, _token) = ready();
    readiness.lock_probed(LockHealth::Unreachable("connection refused".into()));
    assert_eq!(
        readiness.reasons(),
        ["lock: the lock backend (in-memory lock) is unreachable: connection refused"]
    );
    readiness.lock_known("in-memory lock");
    assert!(has_reason(&readiness, "lock: the first probe"));
    readiness.lock_probed(LockHealth::Reachable);
    assert!(readiness.reasons().is_empty());

    // A backend given to the builder is not described: its errors say.
    readiness.lock_known("given");
    assert_eq!(
        readiness.reasons(),
        ["lock: the first probe of the lock backend has not answered yet"]
    );
}

#[tokio::test]
async fn a_streak_of_failed_receives_and_only_a_streak_is_not_ready() {
    let (readiness, _token) = ready();
    let mock = MockQueue::new("q", &Clock::real());
    let queue = WatchedQueue {
        inner: Arc::new(mock.clone()),
        readiness: readiness.clone(),
    };
    mock.fail_receives(RECEIVE_FAILURES_NOT_READY - 1);
    for _ in 1..RECEIVE_FAILURES_NOT_READY {
        assert!(queue.receive(request(0)).await.is_err());
    }
    assert!(readiness.reasons().is_empty(), "a blip is still ready");

    // An empty answer ends the streak: the queue answers.
    assert!(queue.receive(request(0)).await.unwrap().is_empty());
    mock.fail_receives(RECEIVE_FAILURES_NOT_READY);
    for _ in 0..RECEIVE_FAILURES_NOT_READY {
        assert!(queue.receive(request(0)).await.is_err());
    }
    let reasons = readiness.reasons();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with(&format!(
            "receive: the last {RECEIVE_FAILURES_NOT_READY} receive calls failed, the latest with: "
        )),
        "{reasons:?}"
    );

    assert!(queue.receive(request(0)).await.is_ok());
    assert!(readiness.reasons().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_receive_unanswered_past_its_long_poll_and_the_grace_is_not_ready() {
    let (readiness, _token) = ready();
    let id = readiness.receive_sent(Duration::from_secs(20));
    tokio::time::advance(Duration::from_secs(20) + RECEIVE_STALL_GRACE).await;
    assert!(readiness.reasons().is_empty(), "still within its time");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        readiness.reasons(),
        ["receive: a receive call has had no answer for 52 s (its long poll is 20 s)"]
    );
    // Cancelled by a shutdown: no longer waiting, and no failure either.
    readiness.receive_done(id, None);
    assert!(readiness.reasons().is_empty());
}

#[tokio::test]
async fn a_dropped_receive_is_not_waiting_any_more() {
    let (readiness, _token) = ready();
    let mock = MockQueue::new("q", &Clock::real());
    let queue = WatchedQueue {
        inner: Arc::new(mock),
        readiness: readiness.clone(),
    };
    // A long poll on an empty queue, cancelled after it was sent.
    let poll = queue.receive(request(20));
    let cancelled = tokio::time::timeout(Duration::from_millis(20), poll).await;
    assert!(cancelled.is_err(), "the long poll was still waiting");
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(readiness.reasons().is_empty(), "{:?}", readiness.reasons());
}

#[tokio::test]
async fn the_probe_reads_the_lock_backend() {
    let lock = MockLock::new(&Clock::real());
    let key = LockKey::from("iniesta:probe:readyz:q:1".to_owned());
    assert!(matches!(probe(&lock, &key).await, LockHealth::Reachable));
    assert_eq!(lock.locked_len(), 0, "the probe released its lock");

    lock.fail_next(1);
    match probe(&lock, &key).await {
        LockHealth::Unreachable(e) => assert!(!e.is_empty()),
        other => panic!("a failing backend probed as {other:?}"),
    }

    // Held by someone else: the backend answered.
    let busy: Arc<dyn LockBackend> = Arc::new(lock.clone());
    let held = lock.acquire_now(&key, Duration::from_secs(60));
    assert!(matches!(
        held,
        iniesta_core::AcquireOutcome::Acquired { .. }
    ));
    assert!(matches!(
        probe(busy.as_ref(), &key).await,
        LockHealth::Reachable
    ));
}

#[tokio::test(start_paused = true)]
async fn a_probe_with_no_answer_times_out() {
    struct Hangs;
    #[async_trait::async_trait]
    impl LockBackend for Hangs {
        async fn acquire(&self, _: Vec<LockKey>, _: Duration) -> Vec<iniesta_core::AcquireOutcome> {
            std::future::pending().await
        }
        async fn extend(
            &self,
            _: LockKey,
            _: iniesta_core::LockToken,
            _: Duration,
        ) -> Result<Duration, iniesta_core::LockError> {
            std::future::pending().await
        }
        async fn complete(
            &self,
            _: Vec<(LockKey, iniesta_core::LockToken)>,
            _: Duration,
        ) -> Vec<Result<(), iniesta_core::LockError>> {
            std::future::pending().await
        }
        async fn release(
            &self,
            _: LockKey,
            _: iniesta_core::LockToken,
        ) -> Result<(), iniesta_core::LockError> {
            std::future::pending().await
        }
    }
    let key = LockKey::from("k".to_owned());
    match probe(&Hangs, &key).await {
        LockHealth::Unreachable(e) => assert!(e.contains("no answer within"), "{e}"),
        other => panic!("a hung backend probed as {other:?}"),
    }
}

/// The only test of this binary that touches the global recorder (no other
/// unit test listens): it installs another one, as a service with its own
/// exporter would, and `/metrics` cannot be served from it.
#[test]
fn a_recorder_installed_by_other_code_is_refused_with_a_clear_error() {
    let theirs = metrics_util::debugging::DebuggingRecorder::new();
    metrics::set_global_recorder(theirs).expect("no recorder in this test binary yet");
    let err = super::prometheus::handle().expect_err("theirs is installed");
    assert!(matches!(err, super::HttpError::RecorderTaken), "{err:?}");
    assert!(
        err.to_string()
            .contains("another metrics recorder is already installed"),
        "{err}"
    );
}
