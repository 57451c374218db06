//! Core throughput: the per-message cost of the consumer state machine and
//! the async driver, on the in-memory queue and lock, with a no-op handler.
//!
//! Everything runs on ONE thread (a tokio `current_thread` runtime): the
//! driver, the spawned handlers, the mock queue and lock. The numbers are
//! messages per second on one core and heap allocations per message, counted
//! by a wrapper around the allocator over the drain only (pre-loading the
//! queue is not counted) in one extra run per scenario, so that counting
//! does not slow the timed runs.
//!
//! The allocator is the system's (glibc malloc), or with the `mimalloc`
//! feature mimalloc, the one the `iniesta` binary uses:
//!
//! ```text
//! cargo bench -p iniesta-tests --bench core_throughput
//! cargo bench -p iniesta-tests --bench core_throughput --features mimalloc
//! ```
//!
//! Environment:
//! - `INIESTA_BENCH_MESSAGES`: messages per run (default 200000);
//! - `INIESTA_BENCH_RUNS`: runs per scenario; the table shows the median and
//!   the range (default 5);
//! - `INIESTA_BENCH_ONLY`: run only the scenarios whose name contains this
//!   text (`raw 100/10`, `envelope`, …), e.g. for a run under callgrind.

use iniesta_tests::env_u64;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use iniesta_core::driver::{Driver, Runtime};
use iniesta_core::machine::{Consumer, ConsumerConfig, Event};
use iniesta_core::publish::envelope_json;
use iniesta_core::{AttributeValue, DeliveryMode, HandlerRegistry, ParseConfig, Stats, Time};
use iniesta_mock::{Clock, MockLock, MockQueue, QueueOptions};

// ----- allocation counting ------------------------------------------------

/// The allocator under test: the system's, or mimalloc with the feature.
#[cfg(not(feature = "mimalloc"))]
const ALLOCATOR: std::alloc::System = std::alloc::System;
#[cfg(not(feature = "mimalloc"))]
const ALLOCATOR_NAME: &str = "system (glibc malloc)";
#[cfg(feature = "mimalloc")]
const ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "mimalloc")]
const ALLOCATOR_NAME: &str = "mimalloc";

/// [`ALLOCATOR`], counting allocations (and reallocations, which may move)
/// and the bytes they ask for while [`COUNTING`] is on. The timed runs leave
/// it off, so the counters' atomic adds are not in the time; one extra run
/// per scenario counts.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        ALLOCATOR.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        ALLOCATOR.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        ALLOCATOR.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATOR.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn alloc_counts() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

// ----- a single-threaded runtime for the driver ---------------------------

/// The driver's [`Runtime`] on the current tokio `current_thread` runtime:
/// handlers are spawned on the same thread as the driver.
struct LocalTokio {
    origin: Instant,
}

impl Runtime for LocalTokio {
    fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    fn sleep_until(&self, deadline: Time) -> BoxFuture<'static, ()> {
        let at = self
            .origin
            .checked_add(deadline.since_origin())
            .unwrap_or_else(|| self.origin + Duration::from_secs(365 * 24 * 3600));
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(at)))
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::spawn(future));
    }
}

// ----- scenarios ------------------------------------------------------------

const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:iniesta-global";
const EVENT: &str = "BenchHappened.bench";
const PAYLOAD: &str = r#"{"user_id":12345,"name":"bench"}"#;

#[derive(Clone, Copy)]
struct Scenario {
    mode: DeliveryMode,
    max_in_flight: usize,
    concurrent_receives: usize,
}

impl Scenario {
    fn name(&self) -> String {
        let mode = match self.mode {
            DeliveryMode::Raw => "raw",
            DeliveryMode::Envelope => "envelope",
        };
        format!("{mode} {}/{}", self.max_in_flight, self.concurrent_receives)
    }
}

struct Measured {
    seconds: f64,
    allocs: u64,
    bytes: u64,
    stats: Stats,
}

fn attributes() -> BTreeMap<String, AttributeValue> {
    BTreeMap::from([
        (
            "iniesta_pass".to_owned(),
            AttributeValue::String(EVENT.to_owned()),
        ),
        ("version".to_owned(), AttributeValue::Number("1".to_owned())),
    ])
}

fn run_once(scenario: Scenario, n: u64, counting: bool) -> Measured {
    // The queue and lock run on a virtual clock that stays at zero: no
    // visibility timeout or lock expires during a drain, and a long poll on
    // the drained queue waits until shutdown cancels it. The driver's timers
    // (heartbeats) run on wall time through the runtime.
    let clock = Clock::virtual_clock();
    let queue = Arc::new(MockQueue::with_options(
        "iniesta-bench-core",
        &clock,
        QueueOptions::default().with_retain_deleted(false),
    ));
    let lock = Arc::new(MockLock::new(&clock));
    let attrs = attributes();
    for i in 0..n {
        match scenario.mode {
            DeliveryMode::Raw => {
                queue.send(PAYLOAD, attrs.clone());
            }
            DeliveryMode::Envelope => {
                let body = envelope_json(TOPIC, &format!("sns-{i}"), PAYLOAD, &attrs);
                queue.send(body, BTreeMap::new());
            }
        }
    }

    let mut handlers = HandlerRegistry::new();
    handlers.on(EVENT, || async {}).expect("one handler");
    let mut config = ConsumerConfig::new(
        ParseConfig {
            mode: scenario.mode,
            event_key: "iniesta_pass".to_owned(),
            topic_arn: Some(TOPIC.to_owned()),
        },
        "bench",
    );
    config.max_in_flight = scenario.max_in_flight;
    config.concurrent_receives = scenario.concurrent_receives;
    // Long polls (the default 20 s) on a clock that never moves: a receive
    // on the drained queue parks until shutdown cancels it, instead of
    // returning empty at once and spinning.
    config.wait_time = Duration::from_secs(20);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let runtime = LocalTokio {
        origin: Instant::now(),
    };

    // Shut down once every message was deleted.
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);
    let mut deleted = 0u64;
    let observer = move |event: &Event| {
        if let Event::Deleted { .. } = event {
            deleted += 1;
            if deleted == n {
                if let Some(tx) = stop_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    };
    let shutdown = stop_rx.map(|_| ());

    let consumer =
        Consumer::new(config, &handlers, runtime.now()).expect("valid consumer configuration");
    COUNTING.store(counting, Ordering::Relaxed);
    let (a0, b0) = alloc_counts();
    let start = Instant::now();
    let driver = Driver::new(consumer, handlers, queue.clone(), lock.clone(), runtime);
    let stats = rt.block_on(driver.run(shutdown, observer));
    let seconds = start.elapsed().as_secs_f64();
    let (a1, b1) = alloc_counts();
    COUNTING.store(false, Ordering::Relaxed);
    assert_eq!(stats.deleted, n, "every message is deleted");
    assert_eq!(stats.dispatched, n, "every message is dispatched once");
    assert!(queue.is_empty(), "the queue is drained");
    Measured {
        seconds,
        allocs: a1 - a0,
        bytes: b1 - b0,
        stats,
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn main() {
    let n = env_u64("INIESTA_BENCH_MESSAGES", 200_000).max(1);
    let runs = env_u64("INIESTA_BENCH_RUNS", 5).max(1);
    let only = std::env::var("INIESTA_BENCH_ONLY").ok();
    let scenarios = [
        (DeliveryMode::Raw, 100, 10),
        (DeliveryMode::Raw, 10, 1),
        (DeliveryMode::Raw, 1000, 100),
        (DeliveryMode::Envelope, 100, 10),
    ]
    .map(|(mode, max_in_flight, concurrent_receives)| Scenario {
        mode,
        max_in_flight,
        concurrent_receives,
    });

    println!(
        "core throughput: {n} messages per run, {runs} runs per scenario, one thread, \
         allocator: {ALLOCATOR_NAME}"
    );
    println!(
        "{:<34} {:>12} {:>22} {:>12} {:>12}",
        "scenario (mode in-flight/receives)", "msgs/s", "range", "allocs/msg", "bytes/msg"
    );
    for scenario in scenarios {
        let name = scenario.name();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut rates = Vec::new();
        for _ in 0..runs {
            let m = run_once(scenario, n, false);
            debug_assert_eq!(m.stats.succeeded, n);
            rates.push(n as f64 / m.seconds);
        }
        rates.sort_by(f64::total_cmp);
        // One more run, counting: the same drain, so the same allocations.
        let counted = run_once(scenario, n, true);
        println!(
            "{:<34} {:>12.0} {:>22} {:>12.2} {:>12.0}",
            name,
            median(&rates),
            format!("{:.0}..{:.0}", rates[0], rates[rates.len() - 1]),
            counted.allocs as f64 / n as f64,
            counted.bytes as f64 / n as f64,
        );
    }
}
