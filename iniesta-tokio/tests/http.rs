//! `/metrics`, `/healthz` and `/readyz` of `Iniesta::listen`, asked over
//! real HTTP (a plain TCP request) of a consumer on the in-memory backends.
//!
//! Every test of this file shares the process's one Prometheus recorder,
//! and they run at once: each reads the series of its own event route, and
//! compares counts before and after.
#![cfg(all(feature = "http", feature = "mock"))]

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::Delivery;
use iniesta_tokio::http::{HttpError, LOCK_PROBE_INTERVAL};
use iniesta_tokio::{Error, InMemory, Iniesta};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// Only keeps a broken consumer from hanging the run; generous beside the
/// lock probe's interval, which readiness changes wait for.
const PATIENCE: Duration = Duration::from_secs(30);

const LOCALHOST_ANY_PORT: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

async fn within<T>(what: &str, fut: impl IntoFuture<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting: {what}"))
}

/// An answer: status code, `Content-Type` (if any), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// `GET path` over a fresh connection (HTTP/1.0: the server closes it and
/// sends no chunks).
async fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers, then a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let content_type = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_owned())
    });
    Answer {
        status,
        content_type,
        body: body.to_owned(),
    }
}

/// Asks `path` until `done` holds for the answer; returns that answer.
async fn wait_until(addr: SocketAddr, path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = get(addr, path).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting on {path}; last answer: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample `series` (name and labels, as rendered) in a
/// scrape; 0 when the series is not there yet.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            Some(
                value
                    .trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("{series}: {value:?} is not a number: {e}")),
            )
        })
        .unwrap_or(0.0)
}

/// A consumer of `event` on `world`, listening on a free port.
async fn listening(
    world: &InMemory,
    event: &'static str,
) -> (iniesta_tokio::ConsumerHandle, SocketAddr) {
    let consumer = Iniesta::in_memory(world)
        .on(event, |_d: Delivery| async {})
        .listen(LOCALHOST_ANY_PORT)
        .start()
        .await
        .expect("the consumer starts");
    let addr = consumer.listen_addr().expect("it listens");
    assert_ne!(addr.port(), 0, "the address has the port chosen");
    (consumer, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_handled_events_and_readiness_follows_the_consumer() {
    const EVENT: &str = "HttpMetrics.tests";
    let world = InMemory::new();
    // The handler of the last message waits for a permit, so that the
    // shutdown below has a handler to wait for.
    let gate = Arc::new(Semaphore::new(3));
    let permits = gate.clone();
    let consumer = Iniesta::in_memory(&world)
        .on(EVENT, move |_d: Delivery| {
            let permits = permits.clone();
            async move {
                permits.acquire().await.unwrap().forget();
            }
        })
        .listen(LOCALHOST_ANY_PORT)
        .start()
        .await
        .unwrap();
    let addr = consumer.listen_addr().unwrap();

    let health = get(addr, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = wait_until(addr, "/readyz", |a| a.status == 200).await;
    assert_eq!(ready.body, "ready\n");
    assert_eq!(get(addr, "/nothing").await.status, 404);

    let succeeded = format!("iniesta_messages_succeeded_total{{event=\"{EVENT}\"}}");
    let dispatched = format!("iniesta_messages_dispatched_total{{event=\"{EVENT}\"}}");
    let before = get(addr, "/metrics").await;
    assert_eq!(before.status, 200);
    assert_eq!(
        before.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // The in-flight gauge of every route is there from the start.
    assert!(
        before.body.contains(&format!(
            "iniesta_handlers_in_flight{{event=\"{EVENT}\"}} 0"
        )),
        "{}",
        before.body
    );

    for n in 0..3 {
        world
            .publish(EVENT, format!("{{\"n\": {n}}}"))
            .await
            .unwrap();
    }
    let mut stats = consumer.watch_stats();
    within("three handled", stats.wait_for(|s| s.deleted == 3))
        .await
        .unwrap();

    let after = get(addr, "/metrics").await.body;
    assert_eq!(
        sample(&after, &succeeded) - sample(&before.body, &succeeded),
        3.0
    );
    assert_eq!(
        sample(&after, &dispatched) - sample(&before.body, &dispatched),
        3.0
    );
    assert!(sample(&after, "iniesta_messages_deleted_total") >= 3.0);
    // The histograms are exported with the buckets of `names`, up to
    // 15 min for handlers and 14 days for message ages.
    let handler_le_900 =
        format!("iniesta_handler_seconds_bucket{{event=\"{EVENT}\",outcome=\"ok\",le=\"900\"}}");
    assert_eq!(sample(&after, &handler_le_900), 3.0, "{after}");
    let age_le_14d =
        format!("iniesta_message_age_seconds_bucket{{event=\"{EVENT}\",le=\"1209600\"}}");
    assert_eq!(sample(&after, &age_le_14d), 3.0, "{after}");
    assert!(
        after.contains("# TYPE iniesta_handler_seconds histogram"),
        "{after}"
    );

    // A handler that waits, then the shutdown: not ready while it drains.
    world.publish(EVENT, "{\"n\": 3}").await.unwrap();
    within(
        "the fourth handler starts",
        stats.wait_for(|s| s.dispatched == 4),
    )
    .await
    .unwrap();
    let in_flight = get(addr, "/metrics").await.body;
    assert_eq!(
        sample(
            &in_flight,
            &format!("iniesta_handlers_in_flight{{event=\"{EVENT}\"}}")
        ),
        1.0
    );
    consumer.shutdown();
    let draining = get(addr, "/readyz").await;
    assert_eq!(draining.status, 503, "{draining:?}");
    assert!(draining.body.starts_with("shutting down:"), "{draining:?}");
    assert_eq!(
        get(addr, "/healthz").await.status,
        200,
        "alive while draining"
    );

    gate.add_permits(1);
    let stats = within("the consumer stops", consumer).await.unwrap();
    assert_eq!(stats.succeeded, 4);
    // The server stopped with the consumer: the port is closed.
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening on {addr} after the consumer stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_the_lock_backend_fails() {
    let world = InMemory::new();
    let (consumer, addr) = listening(&world, "HttpLock.tests").await;
    wait_until(addr, "/readyz", |a| a.status == 200).await;

    // Every lock operation fails from now on: the next probe sees it.
    world.lock().fail_next(u32::MAX);
    let failing = wait_until(addr, "/readyz", |a| a.status == 503).await;
    assert_eq!(
        failing.body,
        "lock: the lock backend (in-memory lock) is unreachable: injected fault\n",
    );
    assert_eq!(get(addr, "/healthz").await.status, 200);

    world.lock().clear_faults();
    let back = tokio::time::Instant::now();
    wait_until(addr, "/readyz", |a| a.status == 200).await;
    assert!(back.elapsed() <= LOCK_PROBE_INTERVAL + Duration::from_secs(2));
    within("the consumer stops", consumer.shutdown_and_wait())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_receives_fail_in_a_row() {
    let world = InMemory::new();
    // Short long polls: a fault is met, and a recovery seen, within a
    // second instead of the default 20 s (a streak ends when a call answers).
    let consumer = Iniesta::in_memory(&world)
        .on("HttpReceive.tests", |_d: Delivery| async {})
        .configure(|c| c.wait_time = Duration::from_secs(1))
        .listen(LOCALHOST_ANY_PORT)
        .start()
        .await
        .unwrap();
    let addr = consumer.listen_addr().unwrap();
    wait_until(addr, "/readyz", |a| a.status == 200).await;

    world.queue().fail_receives(u32::MAX);
    let failing = wait_until(addr, "/readyz", |a| a.status == 503).await;
    assert!(
        failing
            .body
            .starts_with("receive: the last 3 receive calls failed"),
        "{failing:?}"
    );

    world.queue().clear_faults();
    wait_until(addr, "/readyz", |a| a.status == 200).await;
    within("the consumer stops", consumer.shutdown_and_wait())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_one_process_share_the_recorder_but_not_a_port() {
    let world = InMemory::new();
    let (first, addr) = listening(&world, "HttpFirst.tests").await;
    let (second, other) = listening(&world, "HttpSecond.tests").await;
    assert_ne!(addr, other);
    // One recorder: each server shows both consumers' series.
    for at in [addr, other] {
        let scrape = get(at, "/metrics").await.body;
        for event in ["HttpFirst.tests", "HttpSecond.tests"] {
            let gauge = format!("iniesta_handlers_in_flight{{event=\"{event}\"}} 0");
            assert!(scrape.contains(&gauge), "{at} lacks {gauge}:\n{scrape}");
        }
    }

    // A taken port fails the start, and says which address.
    let taken = Iniesta::in_memory(&world)
        .on("HttpThird.tests", |_d: Delivery| async {})
        .listen(addr)
        .start()
        .await
        .expect_err("the port is taken");
    assert!(
        matches!(&taken, Error::Http(HttpError::Bind { addr: a, .. }) if *a == addr),
        "{taken:?}"
    );
    assert!(
        taken
            .to_string()
            .contains(&format!("cannot listen on {addr}")),
        "{taken}"
    );

    within("both stop", async {
        first.shutdown_and_wait().await.unwrap();
        second.shutdown_and_wait().await.unwrap();
    })
    .await;
}
