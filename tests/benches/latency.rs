//! Scaling under latency: how the consumer's throughput grows with
//! `max_in_flight` when every queue and lock call costs a network round trip,
//! and what one slow handler in a hundred does to the others.
//!
//! The queue and lock are the in-memory ones (`iniesta-mock`) on a real
//! clock, wrapped in adapters that sleep one round trip before each call
//! (a long poll still waits on top of it). Handlers sleep too. So the numbers
//! measure how well the consumer overlaps waiting, not CPU cost (see the
//! `core_throughput` bench for that).
//!
//! ```text
//! cargo bench -p iniesta-tests --bench latency
//! ```
//!
//! Environment (all optional):
//! - `LATENCY_MS`: round trip of every queue and lock call (default 20, as
//!   AWS documents for SQS);
//! - `HANDLER_MS`: time a normal handler takes (default 5);
//! - `SLOW_HANDLER_MS`: time a slow handler takes (default 10000);
//! - `LATENCY_MSGS_PER_SLOT`: messages per run per unit of `max_in_flight`
//!   (default 40, about 3.5 s per run with the defaults);
//! - `LATENCY_MAX_MESSAGES`: upper bound of messages per run (default 40000);
//! - `LATENCY_RUNS`: runs per point; the table shows the median (default 3);
//! - `LATENCY_MAX_SECS`: a run is stopped after this long even if the queue
//!   is not drained (default 120);
//! - `LATENCY_IN_FLIGHT`: the `max_in_flight` values, comma separated
//!   (default `1,10,100,1000`);
//! - `LATENCY_SVG`: where to write the plot (default `docs/bench/latency.svg`
//!   in the workspace; empty: no plot).
//!
//! Two scenarios per `max_in_flight`:
//! - **uniform**: every handler takes `HANDLER_MS`;
//! - **1 % slow**: message 0, 100, 200, … takes `SLOW_HANDLER_MS` instead.
//!   The fast messages' rate and the run's time show that a slow handler
//!   holds only its own slot: no batch waits for it.

use iniesta_tests::{env_list, env_u64};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use iniesta_core::driver::{Driver, Runtime};
use iniesta_core::machine::{Consumer, ConsumerConfig, Event};
use iniesta_core::message::{ReceiptHandle, ReceivedMessage};
use iniesta_core::ports::{
    AcquireOutcome, BackendError, EntryResult, LockBackend, LockError, LockKey, LockToken, Queue,
    ReceiveRequest,
};
use iniesta_core::{AttributeValue, DeliveryMode, HandlerRegistry, ParseConfig, Stats};
use iniesta_mock::{Clock, MockLock, MockQueue, QueueOptions};
use iniesta_tokio::TokioRuntime;

const EVENT: &str = "BenchHappened.bench";
const SLOW_EVERY: usize = 100;
const SLOW_MARK: &str = "slow";

// ----- settings ---------------------------------------------------------------

#[derive(Debug, Clone)]
struct Settings {
    latency: Duration,
    handler: Duration,
    slow_handler: Duration,
    msgs_per_slot: usize,
    max_messages: usize,
    runs: usize,
    max_run: Duration,
    in_flight: Vec<usize>,
    svg: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Self {
        let in_flight = env_list("LATENCY_IN_FLIGHT", &[1, 10, 100, 1000], |n| n > 0);
        let svg = match std::env::var("LATENCY_SVG") {
            Ok(v) if v.is_empty() => None,
            Ok(v) => Some(PathBuf::from(v)),
            Err(_) => {
                Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/bench/latency.svg"))
            }
        };
        Settings {
            latency: Duration::from_millis(env_u64("LATENCY_MS", 20)),
            handler: Duration::from_millis(env_u64("HANDLER_MS", 5)),
            slow_handler: Duration::from_millis(env_u64("SLOW_HANDLER_MS", 10_000)),
            msgs_per_slot: env_u64("LATENCY_MSGS_PER_SLOT", 40).max(1) as usize,
            max_messages: env_u64("LATENCY_MAX_MESSAGES", 40_000).max(1) as usize,
            runs: env_u64("LATENCY_RUNS", 3).max(1) as usize,
            max_run: Duration::from_secs(env_u64("LATENCY_MAX_SECS", 120).max(1)),
            in_flight,
            svg,
        }
    }

    fn messages(&self, max_in_flight: usize) -> usize {
        (self.msgs_per_slot * max_in_flight).min(self.max_messages)
    }
}

// ----- ports with a round trip ------------------------------------------------

/// A port that waits one round trip before every call, as a remote service
/// would. The wait is a timer, so many calls wait at once (as many requests
/// in flight on a connection pool would).
struct Remote<T> {
    inner: T,
    round_trip: Duration,
}

impl<T> Remote<T> {
    async fn trip(&self) {
        if !self.round_trip.is_zero() {
            tokio::time::sleep(self.round_trip).await;
        }
    }
}

#[async_trait]
impl<Q: Queue> Queue for Remote<Q> {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        self.trip().await;
        self.inner.receive(request).await
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        self.trip().await;
        self.inner.delete_batch(handles).await
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        self.trip().await;
        self.inner.change_visibility_batch(entries).await
    }
}

#[async_trait]
impl<L: LockBackend> LockBackend for Remote<L> {
    async fn acquire(&self, keys: Vec<LockKey>, ttl: Duration) -> Vec<AcquireOutcome> {
        // One round trip for the batch: Redlock pipelines a batch's keys to
        // each node and asks the nodes in parallel.
        self.trip().await;
        self.inner.acquire(keys, ttl).await
    }

    async fn extend(
        &self,
        key: LockKey,
        token: LockToken,
        ttl: Duration,
    ) -> Result<Duration, LockError> {
        self.trip().await;
        self.inner.extend(key, token, ttl).await
    }

    async fn complete(
        &self,
        entries: Vec<(LockKey, LockToken)>,
        keep_for: Duration,
    ) -> Vec<Result<(), LockError>> {
        // One round trip for the batch, as for acquire.
        self.trip().await;
        self.inner.complete(entries, keep_for).await
    }

    async fn release(&self, key: LockKey, token: LockToken) -> Result<(), LockError> {
        self.trip().await;
        self.inner.release(key, token).await
    }
}

// ----- one run ------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Uniform,
    OneInHundredSlow,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Uniform => "uniform",
            Scenario::OneInHundredSlow => "1 % slow",
        }
    }
}

/// What the observer saw, shared with the bench.
#[derive(Default)]
struct Progress {
    deleted: usize,
    fast_deleted: usize,
    slow_deleted: usize,
    last_fast: Option<Instant>,
    last_any: Option<Instant>,
    duplicates: u64,
    target: usize,
    done: Option<futures::channel::oneshot::Sender<()>>,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    messages: usize,
    slow: usize,
    /// All messages deleted.
    drained: bool,
    /// Time until the last message was deleted (or the run was stopped).
    elapsed: Duration,
    /// Time until the last fast message was deleted.
    fast_elapsed: Duration,
    fast_deleted: usize,
    /// The share of `max_in_flight` that slow handlers held on average while
    /// the fast messages drained.
    slow_share: f64,
    stats: Stats,
    duplicates: u64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.deleted() as f64 / self.elapsed.as_secs_f64()
    }

    fn deleted(&self) -> usize {
        self.stats.deleted as usize
    }

    fn fast_rate(&self) -> f64 {
        self.fast_deleted as f64 / self.fast_elapsed.as_secs_f64()
    }
}

fn run_once(rt: &tokio::runtime::Runtime, s: &Settings, mif: usize, scenario: Scenario) -> Outcome {
    let messages = s.messages(mif);
    let clock = Clock::real();
    let queue = MockQueue::with_options(
        "iniesta-bench-latency",
        &clock,
        QueueOptions::default().with_retain_deleted(false),
    );
    let mut slow = 0;
    for i in 0..messages {
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "iniesta_pass".to_owned(),
            AttributeValue::String(EVENT.to_owned()),
        );
        let body = if scenario == Scenario::OneInHundredSlow && i % SLOW_EVERY == 0 {
            slow += 1;
            format!("{SLOW_MARK} {i}")
        } else {
            format!("fast {i}")
        };
        queue.send(body, attributes);
    }
    let lock = MockLock::new(&clock);
    let queue = Arc::new(Remote {
        inner: queue,
        round_trip: s.latency,
    });
    let lock = Arc::new(Remote {
        inner: lock,
        round_trip: s.latency,
    });

    let mut handlers = HandlerRegistry::new();
    let (fast, slow_time) = (s.handler, s.slow_handler);
    // When each slow handler ran, to tell how many slots they held.
    let slow_spans: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let spans = slow_spans.clone();
    handlers
        .on(EVENT, move |d: iniesta_core::Delivery| {
            let spans = spans.clone();
            async move {
                if d.message.body.starts_with(SLOW_MARK) {
                    let began = Instant::now();
                    tokio::time::sleep(slow_time).await;
                    spans.lock().unwrap().push((began, Instant::now()));
                } else {
                    tokio::time::sleep(fast).await;
                }
                Ok::<_, String>(())
            }
        })
        .expect("one handler");

    let mut config = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".to_owned(),
            topic_arn: None,
        },
        "bench",
    );
    config.max_in_flight = mif;
    config.concurrent_receives = mif.div_ceil(10).min(100);
    // Keep the defaults otherwise: 20 s long polls, 10 s lock timeout with a
    // heartbeat every 6 s (which keeps a 10 s handler's lock and visibility).

    let (tx, rx) = futures::channel::oneshot::channel();
    let progress = Arc::new(Mutex::new(Progress {
        target: messages,
        done: Some(tx),
        ..Progress::default()
    }));
    let seen = progress.clone();
    let observer = move |event: &Event| match event {
        Event::Deleted { message } => {
            let now = Instant::now();
            let mut p = seen.lock().unwrap();
            p.deleted += 1;
            if message.body.starts_with(SLOW_MARK) {
                p.slow_deleted += 1;
            } else {
                p.fast_deleted += 1;
                p.last_fast = Some(now);
            }
            p.last_any = Some(now);
            if p.deleted >= p.target {
                if let Some(tx) = p.done.take() {
                    let _ = tx.send(());
                }
            }
        }
        Event::Duplicate { .. } => seen.lock().unwrap().duplicates += 1,
        _ => {}
    };

    let max_run = s.max_run;
    let (stats, start) = rt.block_on(async move {
        let runtime = TokioRuntime::new();
        let consumer =
            Consumer::new(config, &handlers, runtime.now()).expect("a valid configuration");
        let driver = Driver::new(consumer, handlers, queue, lock, runtime);
        let shutdown = async move {
            tokio::select! {
                _ = rx => {}
                _ = tokio::time::sleep(max_run) => {}
            }
        };
        let start = Instant::now();
        let stats = driver.run(shutdown, observer).await;
        (stats, start)
    });

    let p = progress.lock().unwrap();
    let end = p.last_any.unwrap_or_else(Instant::now);
    let fast_end = p.last_fast.unwrap_or(end);
    let fast_elapsed = fast_end.saturating_duration_since(start);
    let slow_time_in_window: f64 = slow_spans
        .lock()
        .unwrap()
        .iter()
        .map(|&(a, b)| {
            b.min(fast_end)
                .saturating_duration_since(a.max(start))
                .as_secs_f64()
        })
        .sum();
    Outcome {
        messages,
        slow,
        drained: p.deleted >= messages,
        elapsed: end.saturating_duration_since(start),
        fast_elapsed,
        fast_deleted: p.fast_deleted,
        slow_share: slow_time_in_window / fast_elapsed.as_secs_f64().max(1e-9) / mif as f64,
        stats,
        duplicates: p.duplicates,
    }
}

// ----- report -------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Debug, Clone)]
struct Point {
    mif: usize,
    receives: usize,
    messages: usize,
    slow: usize,
    /// Median msgs/s over all messages.
    rate: f64,
    /// Median msgs/s of the fast messages.
    fast_rate: f64,
    /// Median share of `max_in_flight` held by slow handlers.
    slow_share: f64,
    /// Median time until the last message was deleted, s.
    elapsed: f64,
    all_drained: bool,
    rates: Vec<f64>,
}

fn measure(rt: &tokio::runtime::Runtime, s: &Settings, mif: usize, scenario: Scenario) -> Point {
    let mut outcomes = Vec::new();
    for i in 0..s.runs {
        let o = run_once(rt, s, mif, scenario);
        eprintln!(
            "  {:>9} max_in_flight {mif:>5} run {}: {} msgs ({} slow) in {:.2} s, {:.1} msgs/s, fast {:.1} msgs/s{}{}",
            scenario.name(),
            i + 1,
            o.deleted(),
            o.slow,
            o.elapsed.as_secs_f64(),
            o.rate(),
            o.fast_rate(),
            if o.drained { "" } else { " (NOT DRAINED: stopped by the time bound)" },
            if o.duplicates + o.stats.failed + o.stats.aborted > 0 {
                format!(
                    " [duplicates {}, failed {}, aborted {}]",
                    o.duplicates, o.stats.failed, o.stats.aborted
                )
            } else {
                String::new()
            },
        );
        outcomes.push(o);
    }
    Point {
        mif,
        receives: mif.div_ceil(10).min(100),
        messages: outcomes[0].messages,
        slow: outcomes[0].slow,
        rate: median(outcomes.iter().map(Outcome::rate).collect()),
        fast_rate: median(outcomes.iter().map(Outcome::fast_rate).collect()),
        slow_share: median(outcomes.iter().map(|o| o.slow_share).collect()),
        elapsed: median(outcomes.iter().map(|o| o.elapsed.as_secs_f64()).collect()),
        all_drained: outcomes.iter().all(|o| o.drained),
        rates: outcomes.iter().map(Outcome::rate).collect(),
    }
}

/// The most a consumer can do when each slot of `max_in_flight` is held for
/// four round trips (receive, acquire, complete, delete) plus the handler.
fn slot_bound(s: &Settings, mif: usize) -> f64 {
    mif as f64 / (4.0 * s.latency.as_secs_f64() + s.handler.as_secs_f64())
}

/// The shortest time a consumer that waits for a whole receive batch before
/// receiving again would need for the slow messages alone: each receive loop
/// meets its share of slow messages one batch after another.
fn batch_barrier_bound(p: &Point, slow_handler: Duration) -> f64 {
    (p.slow.div_ceil(p.receives)) as f64 * slow_handler.as_secs_f64()
}

fn print_tables(s: &Settings, uniform: &[Point], slow: &[Point]) {
    println!();
    println!(
        "Round trip {} ms per queue/lock call, handler {} ms, {} run(s) per point (median), \
         tokio multi-thread runtime on {} core(s).",
        s.latency.as_millis(),
        s.handler.as_millis(),
        s.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!();
    println!("Uniform handlers:");
    println!();
    println!("| max_in_flight | concurrent receives | messages | msgs/s (median) | runs (msgs/s) | time, s | slot bound, msgs/s | of bound |");
    println!("|---:|---:|---:|---:|---|---:|---:|---:|");
    for p in uniform {
        println!(
            "| {} | {} | {} | {:.1} | {} | {:.2}{} | {:.0} | {:.0} % |",
            p.mif,
            p.receives,
            p.messages,
            p.rate,
            p.rates
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            p.elapsed,
            if p.all_drained { "" } else { " (not drained)" },
            slot_bound(s, p.mif),
            100.0 * p.rate / slot_bound(s, p.mif),
        );
    }
    println!();
    println!(
        "One handler in every {SLOW_EVERY} takes {} s:",
        s.slow_handler.as_secs_f64()
    );
    println!();
    println!("| max_in_flight | messages (slow) | fast msgs/s | vs uniform | slots held by slow handlers | uniform × free slots | fast vs that | time, s | uniform time + one slow handler, s | batch-at-a-time needs ≥, s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (p, u) in slow.iter().zip(uniform) {
        let expected = u.rate * (1.0 - p.slow_share);
        println!(
            "| {} | {} ({}) | {:.1} | {:.0} % | {:.0} % | {:.1} | {:.0} % | {:.2}{} | {:.2} | {:.0} |",
            p.mif,
            p.messages,
            p.slow,
            p.fast_rate,
            100.0 * p.fast_rate / u.rate,
            100.0 * p.slow_share,
            expected,
            100.0 * p.fast_rate / expected,
            p.elapsed,
            if p.all_drained { "" } else { " (not drained)" },
            u.elapsed + s.slow_handler.as_secs_f64(),
            batch_barrier_bound(p, s.slow_handler),
        );
    }
    println!();
}

// ----- plot ---------------------------------------------------------------------

#[path = "latency/plot.rs"]
mod plot;
use plot::plot;

// ----- main ---------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too:
    // keep that quick by measuring one small point once.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut s = Settings::from_env();
    if quick {
        s.in_flight = vec![10];
        s.msgs_per_slot = 2;
        s.runs = 1;
        s.slow_handler = s.handler;
        s.svg = None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    eprintln!("latency bench: {s:?}");

    let uniform: Vec<Point> = s
        .in_flight
        .iter()
        .map(|&mif| measure(&rt, &s, mif, Scenario::Uniform))
        .collect();
    let slow: Vec<Point> = s
        .in_flight
        .iter()
        .map(|&mif| measure(&rt, &s, mif, Scenario::OneInHundredSlow))
        .collect();
    print_tables(&s, &uniform, &slow);
    if let Some(path) = &s.svg {
        match plot(path, &s, &uniform, &slow) {
            Ok(()) => println!("Plot written to {}", path.display()),
            Err(e) => eprintln!("no plot: {e}"),
        }
    }
}
