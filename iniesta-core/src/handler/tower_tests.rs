use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::util::{MapErrLayer, MapRequestLayer};

use super::*;
use crate::handler::{DeliveryBuilder, ErrorChain, State};

/// Keeps a broken layer from hanging the test run; no assertion depends on
/// it.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting: {what}"))
}

fn delivery(event: &str) -> Delivery {
    DeliveryBuilder::new(event).build()
}

/// A service that is not `Clone` and keeps state in `&mut self`: it must
/// be asked `poll_ready` before each call, and it gives up (permanently) on
/// deliveries received more than three times.
struct Strict {
    ready: bool,
    calls: Arc<AtomicUsize>,
}

impl Service<Delivery> for Strict {
    type Response = ();
    type Error = HandlerError;
    type Future = BoxFuture<'static, Result<(), HandlerError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), HandlerError>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, d: Delivery) -> Self::Future {
        assert!(self.ready, "called without poll_ready");
        self.ready = false;
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if d.message.receive_count > 3 {
                return Err(HandlerError::permanent("gave up"));
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_service_is_a_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut r = HandlerRegistry::new();
    r.service(
        "Job.svc",
        Strict {
            ready: false,
            calls: calls.clone(),
        },
    )
    .unwrap();
    for _ in 0..3 {
        r.run(delivery("Job.svc")).await.unwrap();
    }
    let e = r
        .run(DeliveryBuilder::new("Job.svc").receive_count(4).build())
        .await
        .unwrap_err();
    assert_eq!(e.retry(), Retry::Never);
    assert_eq!(e.to_string(), "gave up");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_service_is_locked_only_until_the_call_is_made() {
    // Both responses wait for each other: if the lock were held while a
    // response runs, the second call could not be made and both would hang.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let svc = tower::service_fn(move |_d: Delivery| {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            Ok::<_, HandlerError>(())
        }
    });
    let h = ServiceHandler::new(svc);
    let (a, b) = within(
        "two responses at once",
        futures::future::join(h.handle(delivery("A.svc")), h.handle(delivery("A.svc"))),
    )
    .await;
    a.unwrap();
    b.unwrap();
}

#[derive(Clone)]
struct Db;

#[tokio::test]
async fn a_layer_wraps_every_route_including_the_default() {
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut r = HandlerRegistry::new();
    for event in ["A.svc", "Order.*"] {
        let ran = ran.clone();
        r.on(event, move |d: Delivery| {
            let ran = ran.clone();
            async move { ran.lock().unwrap().push(d.message.event.clone()) }
        })
        .unwrap();
    }
    let seen = ran.clone();
    r.on_default(move |d: Delivery, State(_db): State<Db>| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(format!("default:{}", d.message.event))
        }
    })
    .unwrap();
    r.state(Db);

    let counted = Arc::new(AtomicUsize::new(0));
    let c = counted.clone();
    let layered = r.layer(MapRequestLayer::new(move |d: Delivery| {
        c.fetch_add(1, Ordering::SeqCst);
        d
    }));

    for event in ["A.svc", "Order.paid", "Other.x"] {
        layered.run(delivery(event)).await.unwrap();
    }
    assert_eq!(
        counted.load(Ordering::SeqCst),
        3,
        "every route went through the layer"
    );
    assert_eq!(
        *ran.lock().unwrap(),
        ["A.svc", "Order.paid", "default:Other.x"],
        "and on to its own handler"
    );
    assert_eq!(layered.events(), r.events());
    assert!(layered.has_default());
    layered.check_state().unwrap();

    let mut needs = Vec::new();
    layered.get("Other.x").unwrap().state_needs(&mut needs);
    assert_eq!(
        needs.len(),
        1,
        "the wrapper forwards the state its handler reads"
    );
    assert_eq!(needs[0].type_name(), std::any::type_name::<Db>());
}

/// A layer's own error around the handler's, as middleware that adds
/// context does.
#[derive(Debug)]
struct WhileHandling(HandlerServiceError);

impl std::fmt::Display for WhileHandling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("while handling")
    }
}

impl std::error::Error for WhileHandling {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn failing(retry: Retry) -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.on("Order.placed", move || async move {
        let cause = std::io::Error::other("no row 7");
        Err(HandlerError::new(cause).with_retry(retry))
    })
    .unwrap();
    r
}

#[tokio::test]
async fn a_permanent_error_survives_a_layer() {
    let long = TimeoutLayer::new(Duration::from_secs(3600));
    for retry in [
        Retry::Never,
        Retry::After(Duration::from_secs(60)),
        Retry::Backoff,
    ] {
        // Timeout boxes the handler's error.
        let e = failing(retry)
            .layer(long.clone())
            .run(delivery("Order.placed"))
            .await
            .unwrap_err();
        assert_eq!(e.retry(), retry, "through Timeout");
        assert_eq!(e.chain(), ErrorChain::message("no row 7"));

        // A layer of its own wraps it: its context stays, the kind too.
        let e = failing(retry)
            .layer(MapErrLayer::new(WhileHandling))
            .layer(long.clone())
            .run(delivery("Order.placed"))
            .await
            .unwrap_err();
        assert_eq!(e.retry(), retry, "through a wrapping layer");
        assert_eq!(e.to_string(), "while handling");
        assert_eq!(format!("{e:#}"), "while handling: no row 7");
    }
}

#[tokio::test]
async fn a_timeout_turns_a_slow_handler_into_a_retryable_failure() {
    let mut r = HandlerRegistry::new();
    r.on("Slow.svc", || async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .unwrap();
    let r = r.layer(TimeoutLayer::new(Duration::from_millis(20)));
    let e = within("the timeout", r.run(delivery("Slow.svc")))
        .await
        .unwrap_err();
    assert_eq!(e.retry(), Retry::Backoff);
    assert!(
        e.error().is::<tower::timeout::error::Elapsed>(),
        "the timeout's own error: {e:#}"
    );
}

/// A registry whose handlers note how many of them run at once.
fn measured(
    events: &[&str],
    running: &Arc<AtomicUsize>,
    peak: &Arc<AtomicUsize>,
) -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    for event in events {
        let (running, peak) = (running.clone(), peak.clone());
        r.on(*event, move || {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
    r
}

#[tokio::test]
async fn a_concurrency_limit_holds_across_concurrent_runs() {
    let (running, peak) = (Arc::default(), Arc::default());
    let r = measured(&["Work.svc"], &running, &peak).layer(ConcurrencyLimitLayer::new(2));
    let runs = (0..6).map(|_| r.run(delivery("Work.svc")));
    for outcome in within("six runs", join_all(runs)).await {
        outcome.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2, "two at a time, never more");
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn each_route_gets_a_service_of_its_own() {
    let (running, peak) = (Arc::default(), Arc::default());
    let r = measured(&["A.svc", "B.svc"], &running, &peak).layer(ConcurrencyLimitLayer::new(1));
    let runs = ["A.svc", "B.svc", "A.svc", "B.svc"].map(|e| r.run(delivery(e)));
    for outcome in within("four runs", join_all(runs)).await {
        outcome.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2, "one at a time per route");
}

#[test]
fn a_handler_service_is_always_ready_and_reads_as_the_handler_error() {
    let fails = Arc::new(AtomicBool::new(true));
    let f = fails.clone();
    let handler: Arc<dyn Handler> = Arc::new(crate::handler::FnHandler::new(move || {
        let fail = f.load(Ordering::SeqCst);
        async move {
            if fail {
                let cause = std::io::Error::other("connection refused");
                return Err(HandlerError::retry_after(
                    Duration::from_secs(5),
                    QueryFailed(cause),
                ));
            }
            Ok(())
        }
    }));
    let mut svc = HandlerService::new(handler);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));

    let e = futures::executor::block_on(svc.call(delivery("Q.svc"))).unwrap_err();
    assert_eq!(e.retry(), Retry::After(Duration::from_secs(5)));
    assert_eq!(
        ErrorChain::of(&e).to_string(),
        "query failed: connection refused",
        "its text and sources are the handler error's, once each"
    );
    fails.store(false, Ordering::SeqCst);
    futures::executor::block_on(svc.clone().call(delivery("Q.svc"))).unwrap();
}

#[derive(Debug)]
struct QueryFailed(std::io::Error);

impl std::fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query failed")
    }
}

impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
