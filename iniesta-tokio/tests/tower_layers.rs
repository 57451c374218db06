//! Tower layers around the handlers of a running consumer (`Iniesta::layer`)
//! on the in-memory backends: a timeout makes a slow handler a failure that
//! is retried, and a concurrency limit holds across the deliveries the
//! consumer runs at once; and the message span as a layer (`TraceLayer`).
#![cfg(all(feature = "tower", feature = "mock"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iniesta_core::handler::Retry;
use iniesta_core::{Delivery, DispatchOutcome, Event};
use iniesta_tokio::{Iniesta, Stats};
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;

mod common;
use common::*;

/// How long a delivery may run before the timeout layer fails it.
const TIMEOUT: Duration = Duration::from_millis(300);

/// Deliveries of `Job.svc` published before the consumer starts, so that it
/// receives them together and would run them at once.
const FAST_JOBS: usize = 4;

/// How many handlers run at once, and the most that ever did.
#[derive(Clone, Default)]
struct Concurrency {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Concurrency {
    fn enter(&self) -> Running {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Running(self.running.clone())
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// One handler running; dropped when it returns or is cut off by the
/// timeout.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a run of the jobs did.
struct Outcome {
    stats: Stats,
    peak: usize,
    slow_calls: usize,
    failures: Vec<(String, Retry, String)>,
}

/// Runs [`FAST_JOBS`] quick jobs and one slow job (slow only the first
/// time) on a consumer made by `build` from a builder with the handler and
/// an observer of failures, until every job is done.
async fn run_jobs(build: impl FnOnce(Iniesta) -> Iniesta) -> Outcome {
    let world = quick_world();
    world.publish("Job.svc", "slow").await.unwrap();
    for i in 0..FAST_JOBS {
        world.publish("Job.svc", format!("fast {i}")).await.unwrap();
    }

    let concurrency = Concurrency::default();
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let (c, s, f) = (concurrency.clone(), slow_calls.clone(), failures.clone());
    let builder = Iniesta::in_memory(&world)
        .on("Job.svc", move |d: Delivery| {
            let (concurrency, slow_calls) = (c.clone(), s.clone());
            async move {
                let _running = concurrency.enter();
                let slow =
                    d.message.body == "slow" && slow_calls.fetch_add(1, Ordering::SeqCst) == 0;
                let work = if slow {
                    Duration::from_secs(3600)
                } else {
                    Duration::from_millis(30)
                };
                tokio::time::sleep(work).await;
                Ok::<_, std::io::Error>(())
            }
        })
        .observer(move |e: &Event| {
            if let Event::Failed {
                message,
                outcome: DispatchOutcome::Failed { error, retry },
                ..
            } = e
            {
                let failure = (message.body.to_string(), *retry, error.to_string());
                f.lock().unwrap().push(failure);
            }
        });
    let consumer = build(builder).start().await.unwrap();

    let jobs = FAST_JOBS as u64 + 1;
    wait_stats(&consumer, "every job done", |s| s.deleted >= jobs).await;
    let stats = within("shutdown", consumer.shutdown_and_wait())
        .await
        .unwrap();
    assert!(world.queue().is_empty(), "every job was deleted");
    let failures = failures.lock().unwrap().clone();
    Outcome {
        stats,
        peak: concurrency.peak(),
        slow_calls: slow_calls.load(Ordering::SeqCst),
        failures,
    }
}

// On tokio's paused clock (which the in-memory backends follow): the
// timeout, the jobs' work and the visibility timeout pass in order, however
// loaded the machine is.
#[tokio::test(start_paused = true)]
async fn a_slow_handler_times_out_and_is_retried_one_handler_at_a_time() {
    let outcome = run_jobs(|b| {
        b.layer(TimeoutLayer::new(TIMEOUT))
            .layer(ConcurrencyLimitLayer::new(1))
    })
    .await;

    assert_eq!(
        outcome.failures,
        [(
            "slow".to_owned(),
            Retry::Backoff,
            "request timed out".to_owned()
        )],
        "the slow job timed out once, as a failure that retries"
    );
    assert_eq!(outcome.slow_calls, 2, "and ran again");
    assert_eq!(outcome.stats.failed, 1);
    assert_eq!(outcome.stats.succeeded, FAST_JOBS as u64 + 1);
    assert_eq!(outcome.peak, 1, "never two handlers at once");
}

/// The control of the test above: without the limit the same jobs overlap,
/// so a peak of one there is the limit's doing.
#[tokio::test(start_paused = true)]
async fn without_the_limit_the_same_jobs_overlap() {
    let outcome = run_jobs(|b| b.layer(TimeoutLayer::new(TIMEOUT))).await;

    assert!(outcome.peak > 1, "peak {}", outcome.peak);
    assert_eq!(outcome.stats.failed, 1, "{:?}", outcome.failures);
    assert_eq!(outcome.slow_calls, 2);
}

#[tokio::test]
async fn the_trace_layer_runs_a_handler_in_its_message_span() {
    // A subscriber for this thread; the current-thread runtime polls the
    // handler here.
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
    let span_seen = Arc::new(Mutex::new(None));
    let s = span_seen.clone();
    let mut handlers = iniesta_core::HandlerRegistry::new();
    handlers
        .on("Traced.svc", move || {
            let s = s.clone();
            async move {
                let span = tracing::Span::current();
                *s.lock().unwrap() = span.metadata().map(|m| {
                    let fields: Vec<String> = m.fields().iter().map(|f| f.to_string()).collect();
                    (m.name(), fields)
                });
            }
        })
        .unwrap();
    let traced = handlers.layer(iniesta_tokio::observe::TraceLayer::new());
    let delivery = iniesta_core::handler::DeliveryBuilder::new("Traced.svc").build();
    traced.run(delivery).await.unwrap();

    let (name, fields) = span_seen.lock().unwrap().clone().expect("a span");
    assert_eq!(name, "iniesta.message");
    assert_eq!(fields, ["event", "message_id", "key", "receive_count"]);
}
