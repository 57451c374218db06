//! Scaling under latency: how the consumer's throughput grows with
//! `max_in_flight` when every queue and lock call costs a network round
//! trip, and what one slow handler in a hundred does to the others.
//!
//! The queue and lock are the in-memory ones (`iniesta-mock`) on a real
//! clock, wrapped in adapters that sleep one round trip before each call
//! (a long poll still waits on top of it). Handlers sleep too, on the same
//! clock: a timer thread that wakes each wait at its deadline, since tokio's
//! timer rounds every sleep up to the next millisecond and would simulate a
//! slower network than the one named (`latency/timer.rs`). The driver runs
//! as a task on a worker, as `Iniesta::start` runs it. So the numbers
//! measure how well the consumer overlaps waiting, not CPU cost (see the
//! `core_throughput` bench for that).
//!
//! The consumer is configured as `iniesta consume` configures it
//! (`ConsumerConfig::from_settings`, the defaults, `INIESTA_MAX_IN_FLIGHT`
//! set to the point's value), so that the bench judges the defaults:
//! concurrent receives, prefetch and the delete window are derived as for
//! users.
//!
//! ```text
//! cargo bench -p iniesta-tests --bench latency
//! # on mimalloc, the allocator of the `iniesta` binary
//! cargo bench -p iniesta-tests --bench latency --features mimalloc
//! ```
//!
//! Environment (all optional):
//! - `LATENCY_MS`: round trip of every queue and lock call (default 20, as
//!   AWS documents for SQS);
//! - `HANDLER_MS`: time a normal handler takes (default 5);
//! - `SLOW_HANDLER_MS`: time a slow handler takes (default 10000);
//! - `LATENCY_MSGS_PER_SLOT`: messages per run per unit of `max_in_flight`
//!   (default 40, about 2 s per run with the defaults);
//! - `LATENCY_MAX_MESSAGES`: upper bound of messages per run (default 40000);
//! - `LATENCY_RUNS`: runs per point; the table shows the median (default 3);
//! - `LATENCY_MAX_SECS`: a run is stopped after this long even if the queue
//!   is not drained (default 120);
//! - `LATENCY_IN_FLIGHT`: the `max_in_flight` values, comma separated
//!   (default `1,10,100,300,1000`);
//! - `LATENCY_CONSUMERS`: consumer variants to compare, `;`-separated lists
//!   of `INIESTA_*=value` or `receives_cap=N` (default `defaults`; see
//!   `benches/common/variants.rs`). Their runs alternate, so that a noisy
//!   machine disturbs them alike; the slow scenario runs the first only;
//! - `LATENCY_TIMER`: the clock of the simulated waits, `precise` (default:
//!   a thread of its own wakes each at its deadline) or `tokio` (tokio's
//!   timer, which rounds each sleep up to the next millisecond: a 20 ms
//!   round trip takes ~21.5 ms); see `latency/timer.rs`;
//! - `LATENCY_SAMPLE_QUEUE`: `1` logs, per run, how many woken tasks waited
//!   in tokio's injection queue (mean and peak, sampled every 200 µs by a
//!   thread of its own; `latency/runqueue.rs`) and how late the precise
//!   timer answered its waits. Off by default;
//! - `LATENCY_SVG`: where to write the plot (default `docs/bench/latency.svg`
//!   in the workspace; empty: no plot).
//!
//! Two scenarios per `max_in_flight`:
//! - **uniform**: every handler takes `HANDLER_MS`;
//! - **1 % slow**: message 0, 100, 200, … takes `SLOW_HANDLER_MS` instead.
//!   The fast messages' rate and the run's time show that a slow handler
//!   holds only its own slot: no batch waits for it.

/// With the `mimalloc` feature, the allocator the `iniesta` binary uses.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use iniesta_tests::{env_list, env_u64};
use std::path::PathBuf;
use std::time::Duration;

use iniesta_core::machine::ConsumerConfig;
use iniesta_core::DeliveryMode;

#[path = "common/cpu.rs"]
mod cpu;
#[path = "latency/plot.rs"]
mod plot;
#[path = "latency/ports.rs"]
mod ports;
#[path = "latency/report.rs"]
mod report;
#[path = "latency/run.rs"]
mod run;
#[path = "latency/runqueue.rs"]
mod runqueue;
#[path = "common/report.rs"]
mod stats;
#[path = "latency/timer.rs"]
mod timer;
#[path = "common/variants.rs"]
mod variants;

use run::{run_once, Outcome, Scenario};
use stats::median;
use variants::Variant;

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
    consumers: Vec<Variant>,
    svg: Option<PathBuf>,
    timer: timer::Timer,
    /// `LATENCY_SAMPLE_QUEUE`: log the depth of tokio's injection queue.
    sample_queue: bool,
}

impl Settings {
    fn from_env() -> Self {
        let in_flight = env_list("LATENCY_IN_FLIGHT", &[1, 10, 100, 300, 1000], |n| n > 0);
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
            consumers: variants::variants_from_env("LATENCY_CONSUMERS"),
            svg,
            timer: timer::Timer::from_env(),
            sample_queue: env_u64("LATENCY_SAMPLE_QUEUE", 0) != 0,
        }
    }

    fn messages(&self, max_in_flight: usize) -> usize {
        (self.msgs_per_slot * max_in_flight).min(self.max_messages)
    }

    /// The consumer of `variant` with `max_in_flight` slots, as `iniesta
    /// consume` would configure it (raw delivery).
    fn config(&self, variant: &Variant, max_in_flight: usize) -> ConsumerConfig {
        variant
            .config(Some(max_in_flight), DeliveryMode::Raw, "bench")
            .unwrap_or_else(|e| panic!("LATENCY_CONSUMERS: {e}"))
    }
}

// ----- bounds ---------------------------------------------------------------------

/// The most a consumer can do when a slot is held for the two round trips
/// a message cannot avoid (its lock's acquire and its completion record)
/// plus the handler: what the consumer aims at, since receiving ahead and
/// deleting afterwards happen outside the slot.
fn two_trip_bound(s: &Settings, mif: usize) -> f64 {
    mif as f64 / (2.0 * s.latency.as_secs_f64() + s.handler.as_secs_f64())
}

/// The older bound, when a slot was held from receive to delete: four
/// round trips (receive, acquire, complete, delete) plus the handler.
fn four_trip_bound(s: &Settings, mif: usize) -> f64 {
    mif as f64 / (4.0 * s.latency.as_secs_f64() + s.handler.as_secs_f64())
}

/// The most the receives can bring: every outstanding receive returns a
/// full batch once per round trip.
fn receive_bound(s: &Settings, config: &ConsumerConfig) -> f64 {
    (config.concurrent_receives * config.receive_batch as usize) as f64
        / s.latency.as_secs_f64().max(1e-9)
}

// ----- measuring ------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Point {
    mif: usize,
    /// Index into `Settings::consumers`.
    variant: usize,
    config: ConsumerConfig,
    messages: usize,
    slow: usize,
    /// Median msgs/s over all messages.
    rate: f64,
    /// Median msgs/s from a tenth to nine tenths of the messages.
    steady_rate: f64,
    /// Median share of a core the bench used.
    cpu: Option<f64>,
    /// Median share of the slots held over the run.
    slots_held: f64,
    /// Median time a message held its slot, ms, and of that the acquire
    /// call, the handler and the complete call (medians of run means).
    slot_ms: f64,
    acquire_ms: f64,
    handler_ms: f64,
    complete_ms: f64,
    /// Median msgs/s of the fast messages.
    fast_rate: f64,
    /// Median share of `max_in_flight` held by slow handlers.
    slow_share: f64,
    /// Median time until the last message was deleted, s.
    elapsed: f64,
    all_drained: bool,
    rates: Vec<f64>,
}

fn log_run(mif: usize, label: &str, scenario: Scenario, i: usize, o: &Outcome) {
    eprintln!(
        "  {:>9} max_in_flight {mif:>5} [{label}] run {}: {} msgs ({} slow) in {:.2} s, {:.1} msgs/s, fast {:.1} msgs/s, {:.1} keys per acquire, {:.1} per complete{}{}{}",
        scenario.name(),
        i + 1,
        o.deleted(),
        o.slow,
        o.elapsed.as_secs_f64(),
        o.rate(),
        o.fast_rate(),
        o.calls.keys_per_acquire,
        o.calls.entries_per_complete,
        if o.drained { "" } else { " (NOT DRAINED: stopped by the time bound)" },
        o.queue_depth.map_or(String::new(), |d| format!(
            ", injection queue depth mean {:.1} max {}{}",
            d.mean,
            d.max,
            d.timer_late.map_or(String::new(), |late| format!(
                ", timer late by {} µs on average",
                late.as_micros()
            ))
        )),
        if o.duplicates + o.stats.failed + o.stats.aborted > 0 {
            format!(
                " [duplicates {}, failed {}, aborted {}]",
                o.duplicates, o.stats.failed, o.stats.aborted
            )
        } else {
            String::new()
        },
    );
}

/// The median over `outcomes` of `secs`, in milliseconds.
fn median_ms(outcomes: &[Outcome], secs: impl Fn(&Outcome) -> f64) -> f64 {
    1000.0 * median(outcomes.iter().map(secs).collect())
}

fn point(mif: usize, variant: usize, config: ConsumerConfig, outcomes: &[Outcome]) -> Point {
    Point {
        mif,
        variant,
        config,
        messages: outcomes[0].messages,
        slow: outcomes[0].slow,
        rate: median(outcomes.iter().map(Outcome::rate).collect()),
        steady_rate: median(outcomes.iter().filter_map(|o| o.steady_rate).collect()),
        slots_held: median(outcomes.iter().map(|o| o.slots_held / mif as f64).collect()),
        slot_ms: median_ms(outcomes, |o| o.slot_time.as_secs_f64()),
        acquire_ms: median_ms(outcomes, |o| o.calls.acquire),
        handler_ms: median_ms(outcomes, |o| o.handler_time.as_secs_f64()),
        complete_ms: median_ms(outcomes, |o| o.calls.complete),
        cpu: {
            let cpu: Vec<f64> = outcomes.iter().filter_map(|o| o.cpu).collect();
            (!cpu.is_empty()).then(|| median(cpu))
        },
        fast_rate: median(outcomes.iter().map(Outcome::fast_rate).collect()),
        slow_share: median(outcomes.iter().map(|o| o.slow_share).collect()),
        elapsed: median(outcomes.iter().map(|o| o.elapsed.as_secs_f64()).collect()),
        all_drained: outcomes.iter().all(|o| o.drained),
        rates: outcomes.iter().map(Outcome::rate).collect(),
    }
}

/// Every variant at `mif`, their runs alternating.
fn measure(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    mif: usize,
    scenario: Scenario,
) -> Vec<Point> {
    let variants: &[Variant] = match scenario {
        Scenario::Uniform => &s.consumers,
        Scenario::OneInHundredSlow => &s.consumers[..1],
    };
    let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); variants.len()];
    for i in 0..s.runs {
        for (v, variant) in variants.iter().enumerate() {
            let o = run_once(rt, s, s.config(variant, mif), scenario);
            log_run(mif, &variant.label(), scenario, i, &o);
            outcomes[v].push(o);
        }
    }
    variants
        .iter()
        .enumerate()
        .map(|(v, variant)| point(mif, v, s.config(variant, mif), &outcomes[v]))
        .collect()
}

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
        s.consumers.truncate(1);
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
        .flat_map(|&mif| measure(&rt, &s, mif, Scenario::Uniform))
        .collect();
    let slow: Vec<Point> = s
        .in_flight
        .iter()
        .flat_map(|&mif| measure(&rt, &s, mif, Scenario::OneInHundredSlow))
        .collect();
    report::print_tables(&s, &uniform, &slow);
    if let Some(path) = &s.svg {
        match plot::plot(path, &s, &uniform, &slow) {
            Ok(()) => println!("Plot written to {}", path.display()),
            Err(e) => eprintln!("no plot: {e}"),
        }
    }
}
