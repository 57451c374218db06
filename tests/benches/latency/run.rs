//! One run of the latency bench: pre-load the queue, drain it through the
//! driver with remote-like ports, and say what the observer saw.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iniesta_core::driver::{Driver, Runtime};
use iniesta_core::machine::{Consumer, ConsumerConfig, Event};
use iniesta_core::{AttributeValue, HandlerRegistry, Stats};
use iniesta_mock::{Clock, MockLock, MockQueue, QueueOptions};
use iniesta_tokio::TokioRuntime;

use super::cpu::{cpu_share, cpu_time};
use super::ports::{CallTimes, Remote, SlotMeter};
use super::runqueue::{Depth, Sampler};
use super::{Settings, EVENT, SLOW_EVERY, SLOW_MARK};

/// What the handlers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Uniform,
    OneInHundredSlow,
}

impl Scenario {
    pub fn name(self) -> &'static str {
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
    /// Handler run times, summed, and how many.
    handler_secs: f64,
    handled: u64,
    /// When a tenth, and nine tenths, of the messages were deleted.
    tenth: Option<Instant>,
    nine_tenths: Option<Instant>,
    duplicates: u64,
    target: usize,
    done: Option<futures::channel::oneshot::Sender<()>>,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub messages: usize,
    pub slow: usize,
    /// All messages deleted.
    pub drained: bool,
    /// Time until the last message was deleted (or the run was stopped).
    pub elapsed: Duration,
    /// Time until the last fast message was deleted.
    pub fast_elapsed: Duration,
    pub fast_deleted: usize,
    /// The share of `max_in_flight` that slow handlers held on average while
    /// the fast messages drained.
    pub slow_share: f64,
    /// msgs/s between a tenth and nine tenths of the messages deleted: the
    /// rate without the first receive's and the last delete's waits.
    pub steady_rate: Option<f64>,
    /// Slots held on average over the run, and the mean time a message
    /// held one.
    pub slots_held: f64,
    pub slot_time: Duration,
    /// Per message, the mean acquire and complete call, and handler run.
    pub calls: CallTimes,
    pub handler_time: Duration,
    /// Share of a core the bench process used during the run.
    pub cpu: Option<f64>,
    pub stats: Stats,
    pub duplicates: u64,
    /// The injection queue's depth, when sampled (`LATENCY_SAMPLE_QUEUE`).
    pub queue_depth: Option<Depth>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.deleted() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn deleted(&self) -> usize {
        self.stats.deleted as usize
    }

    pub fn fast_rate(&self) -> f64 {
        self.fast_deleted as f64 / self.fast_elapsed.as_secs_f64()
    }
}

/// Pre-loads the queue (`s.messages` for the configuration's
/// `max_in_flight`), drains it with `config`, and reports.
pub fn run_once(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    config: ConsumerConfig,
    scenario: Scenario,
) -> Outcome {
    let mif = config.max_in_flight;
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
        timer: s.timer,
        slots: None,
    });
    let meter = Arc::new(SlotMeter::new());
    let lock = Arc::new(Remote {
        inner: lock,
        round_trip: s.latency,
        timer: s.timer,
        slots: Some(meter.clone()),
    });

    let mut handlers = HandlerRegistry::new();
    let (fast, slow_time, timer) = (s.handler, s.slow_handler, s.timer);
    // When each slow handler ran, to tell how many slots they held.
    let slow_spans: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let spans = slow_spans.clone();
    handlers
        .on(EVENT, move |d: iniesta_core::Delivery| {
            let spans = spans.clone();
            async move {
                if d.message.body.starts_with(SLOW_MARK) {
                    let began = Instant::now();
                    timer.sleep(slow_time).await;
                    spans.lock().unwrap().push((began, Instant::now()));
                } else {
                    timer.sleep(fast).await;
                }
                Ok::<_, String>(())
            }
        })
        .expect("one handler");

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
            if p.deleted == p.target.div_ceil(10) {
                p.tenth = Some(now);
            }
            if p.deleted == (p.target * 9).div_ceil(10) {
                p.nine_tenths = Some(now);
            }
            if p.deleted >= p.target {
                if let Some(tx) = p.done.take() {
                    let _ = tx.send(());
                }
            }
        }
        Event::Duplicate { .. } => seen.lock().unwrap().duplicates += 1,
        Event::Succeeded { elapsed, .. } => {
            let mut p = seen.lock().unwrap();
            p.handler_secs += elapsed.as_secs_f64();
            p.handled += 1;
        }
        _ => {}
    };

    let max_run = s.max_run;
    let cpu_before = cpu_time(std::process::id());
    // The driver runs as a task on a worker, as `Iniesta::start` runs it,
    // not on this thread in `block_on` (whose wake-ups go through a park of
    // its own, and whose spawns reach the workers through the shared queue).
    let sampler = s.sample_queue.then(|| Sampler::start(rt.handle().clone()));
    let (stats, start) = rt
        .block_on(rt.spawn(async move {
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
        }))
        .expect("the driver task");
    let queue_depth = sampler.map(Sampler::stop);

    let p = progress.lock().unwrap();
    let end = p.last_any.unwrap_or_else(Instant::now);
    let cpu = cpu_share(
        cpu_before,
        cpu_time(std::process::id()),
        end.saturating_duration_since(start),
    );
    // The messages between the two marks, over the time between them.
    let steady_rate = match (p.tenth, p.nine_tenths) {
        (Some(a), Some(b)) if b > a => Some(
            ((messages * 9).div_ceil(10) - messages.div_ceil(10)) as f64
                / b.duration_since(a).as_secs_f64(),
        ),
        _ => None,
    };
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
    let elapsed = end.saturating_duration_since(start);
    let slot_seconds = meter.slot_seconds();
    Outcome {
        messages,
        slow,
        drained: p.deleted >= messages,
        elapsed,
        fast_elapsed,
        fast_deleted: p.fast_deleted,
        slow_share: slow_time_in_window / fast_elapsed.as_secs_f64().max(1e-9) / mif as f64,
        steady_rate,
        slots_held: slot_seconds / elapsed.as_secs_f64().max(1e-9),
        slot_time: Duration::from_secs_f64(slot_seconds / (stats.deleted.max(1) as f64)),
        calls: meter.call_times(),
        handler_time: Duration::from_secs_f64(p.handler_secs / p.handled.max(1) as f64),
        cpu,
        stats,
        duplicates: p.duplicates,
        queue_depth,
    }
}
