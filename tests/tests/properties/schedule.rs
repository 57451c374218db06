//! What a world and a schedule are made of, and how proptest draws them.
//!
//! A case is a [`Params`] (the world: services, their queues and consumers,
//! the lock backend, the consumers' clocks) and a list of [`Step`]s. Every
//! field shrinks towards the simplest world and the shortest schedule, so a
//! failure is reported as small as it can be made.

use std::time::Duration;

use proptest::prelude::*;

/// The topic every service is subscribed to.
pub const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:global";
/// The attribute that names the event.
pub const EVENT_KEY: &str = "iniesta_pass";
/// The events publishers send.
pub const EVENTS: [&str; 5] = ["A.x", "A.y", "B.x", "B.y", "C.z"];
/// The filters a service may subscribe with (exact names and prefixes).
pub const FILTERS: [&str; 6] = ["A.*", "A.x", "B.x", "B.*", "C.z", "A.y"];
/// How long completion records are kept.
pub const DEDUPE: Duration = Duration::from_secs(24 * 3600);
/// The most services, and consumer processes per service.
pub const MAX_SERVICES: usize = 3;
pub const MAX_CONSUMERS: usize = 3;

/// A fault applied to one IO call (or the way a handler ends). The
/// handler's own outcomes (`Panic` and after it) are `None` for any other
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call works; a handler succeeds.
    None,
    /// The call fails and changes nothing; a handler returns an error
    /// (retried after the backoff).
    Fail,
    /// The call is applied but its reply is lost (a delete: answered `Ok`
    /// but not applied); a handler succeeds — also after it was told to
    /// abort (it got there first).
    Lose,
    /// A handler panics.
    Panic,
    /// A handler fails and asks to be tried again after a delay
    /// (`Retry::After`).
    RetryAfter(Delay),
    /// A handler fails permanently on this delivery (`Retry::Never`).
    Permanent,
    /// A handler hangs: in a service with a handler timeout it never ends
    /// until it is aborted; elsewhere it is merely slow (this run does not
    /// end it).
    Hang,
}

/// The delay a handler asks for, around the timings that matter; the world
/// turns it into a duration for the service at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// This many milliseconds (under a second: SQS rounds it up to one).
    Ms(u16),
    /// The lock timeout, give or take this many milliseconds.
    Lock(i16),
    /// The queue's visibility timeout, give or take this many milliseconds.
    Visibility(i16),
    /// Minutes: longer than any step of a schedule.
    Minutes(u8),
    /// More than SQS's 12 hours, which the consumer caps it to.
    OverCap,
}

/// The lock backend all services share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The in-memory `MockLock` (one node).
    Mock,
    /// Redlock's quorum rules over this many in-memory nodes.
    Quorum(usize),
}

/// One consumer process's clock: it runs at `1 + ppm / 10⁶` times the true
/// rate, from its own origin.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    pub ppm: i32,
    pub origin_ms: u64,
}

impl std::fmt::Debug for Skew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:+}ppm from {}ms", self.ppm, self.origin_ms)
    }
}

/// One service: a queue subscribed to the topic and the consumer processes
/// that poll it.
#[derive(Debug, Clone)]
pub struct ServiceParams {
    /// Raw delivery (the key is the SQS id) instead of SNS envelopes.
    pub raw: bool,
    /// Some of [`FILTERS`]: the subscription's filter policy and the
    /// consumers' own filters.
    pub filters: Vec<&'static str>,
    /// Handlers are registered per filter; with this, a default handler too.
    pub default_handler: bool,
    pub consumers: usize,
    pub max_in_flight: usize,
    pub receive_batch: u32,
    pub concurrent_receives: usize,
    pub backoff: bool,
    pub return_unstarted: bool,
    pub delete_batch_window: Duration,
    /// The queue's visibility timeout, whole seconds.
    pub visibility_timeout: Duration,
    /// The redrive policy's maxReceiveCount.
    pub max_receive_count: u32,
    /// Delete events outside the filters instead of leaving them.
    pub delete_unmatched: bool,
    /// `ConsumerConfig::handler_timeout`.
    pub handler_timeout: Option<Duration>,
    /// `ConsumerConfig::delete_permanent_failures`: a permanent failure is
    /// recorded and deleted instead of left for the dead-letter queue.
    pub delete_permanent_failures: bool,
}

#[derive(Debug, Clone)]
pub struct Params {
    /// `INIESTA_LOCK_TIMEOUT`; heartbeats every 0.6 × this, visibility
    /// extended by this.
    pub lock_timeout: Duration,
    pub backend: Backend,
    pub services: Vec<ServiceParams>,
    /// One per process slot (service-major order), for each slot.
    pub skews: Vec<Skew>,
    /// The share (in percent) of events whose handler fails permanently on
    /// every delivery (an undecodable payload), picked per event by a hash
    /// of its identity.
    pub permanent_pct: u8,
    /// A FIFO world: the topic and every queue are FIFO, and the consumers
    /// know it (`ConsumerConfig::fifo`).
    pub fifo: bool,
    /// How many message groups the messages are spread over (in turn, by
    /// the order they are sent). In a standard world, more than one sends
    /// group ids to the standard queues too (SQS's fair queues), where
    /// they must order nothing.
    pub groups: u8,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// A publish of an event; SNS fans it out to every service whose filters
    /// match. Bit `i` of `dup` delivers a second copy to service `i`.
    Publish { event: u8, dup: u8 },
    /// One more copy of an earlier publish to one of its services (a late
    /// SNS duplicate).
    Duplicate { nth: u8, service: u8 },
    /// A message sent straight to a queue with an event outside the
    /// service's filters.
    Foreign { service: u8, event: u8 },
    /// A message that cannot be parsed.
    Garbage { service: u8 },
    /// Complete one pending IO call of one process (or end one running
    /// handler). `nodes` picks which lock nodes a faulted lock call hits.
    Run {
        proc: u8,
        op: u8,
        fault: Fault,
        nodes: u8,
    },
    /// True time moves on. `paced`: every process wakes at each of its
    /// deadlines on the way (else the whole jump passes at once, as for a
    /// paused process). `beats`: heartbeat calls are answered at once.
    Advance { ms: u32, paced: bool, beats: bool },
    /// A process dies (a fresh one takes its place).
    Crash { proc: u8 },
    /// A process is asked to shut down gracefully (and restarted when done).
    Shutdown { proc: u8 },
    /// The backend loses a key (a lock or a completion record): on one node
    /// (the `nth`, modulo the nodes) or on all.
    LoseKey { nth: u8, all: bool },
}

impl Delay {
    /// A delay from 16 random bits: 3 in 11 each sub-second-ish, around
    /// the lock timeout, around the visibility timeout; 1 in 11 each
    /// minutes, over the cap. Zero bits (where shrinking goes) are no
    /// delay at all.
    fn from_bits(x: u16) -> Delay {
        let v = x / 11;
        let around = || (v % 3_001) as i16 - 1_500;
        match x % 11 {
            0..=2 => Delay::Ms(v % 2_501),
            3..=5 => Delay::Lock(around()),
            6..=8 => Delay::Visibility(around()),
            9 => Delay::Minutes(1 + (v % 20) as u8),
            _ => Delay::OverCap,
        }
    }
}

/// Drawn as two numbers rather than a union of strategies: a union forks
/// a random generator per alternative for every value, which would make
/// generating the schedules cost more than running them.
fn fault() -> impl Strategy<Value = Fault> {
    (0u8..12, any::<u16>()).prop_map(|(k, x)| match k {
        0..=3 => Fault::None,
        4 | 5 => Fault::Fail,
        6 | 7 => Fault::Lose,
        8 => Fault::Panic,
        9 => Fault::RetryAfter(Delay::from_bits(x)),
        10 => Fault::Permanent,
        _ => Fault::Hang,
    })
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..5, prop_oneof![4 => Just(0u8), 1 => any::<u8>()])
            .prop_map(|(event, dup)| Step::Publish { event, dup }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(nth, service)| Step::Duplicate { nth, service }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(service, event)| Step::Foreign { service, event }),
        1 => any::<u8>().prop_map(|service| Step::Garbage { service }),
        20 => (any::<u8>(), any::<u8>(), fault(), any::<u8>())
            .prop_map(|(proc, op, fault, nodes)| Step::Run { proc, op, fault, nodes }),
        4 => (
            prop_oneof![3 => 0u32..2_000, 1 => 2_000u32..16_000],
            prop_oneof![3 => Just(true), 1 => Just(false)],
            prop_oneof![3 => Just(true), 1 => Just(false)],
        )
            .prop_map(|(ms, paced, beats)| Step::Advance { ms, paced, beats }),
        1 => any::<u8>().prop_map(|proc| Step::Crash { proc }),
        1 => any::<u8>().prop_map(|proc| Step::Shutdown { proc }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(nth, all)| Step::LoseKey { nth, all }),
    ]
}

fn service() -> impl Strategy<Value = ServiceParams> {
    (
        (
            prop_oneof![4 => Just(false), 1 => Just(true)],
            proptest::collection::btree_set(0..FILTERS.len(), 1..=3),
            any::<bool>(),
            1..=MAX_CONSUMERS,
            // Mostly few slots (so that they fill up); now and then enough
            // that a receive waits for a tenth of them to free up.
            prop_oneof![4 => 1usize..=4, 1 => 10usize..=24],
            1u32..=3,
            1usize..=2,
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(Duration::ZERO), Just(Duration::from_millis(10))],
            prop_oneof![2 => Just(30u64), 1 => 1u64..=30],
            3u32..=5,
            prop_oneof![3 => Just(false), 1 => Just(true)],
            prop_oneof![
                2 => Just(None),
                1 => (300u64..=20_000).prop_map(|ms| Some(Duration::from_millis(ms))),
            ],
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (raw, filters, default_handler, consumers, max_in_flight, receive_batch, conc),
                (
                    backoff,
                    return_unstarted,
                    window,
                    vis,
                    max_receive_count,
                    delete_unmatched,
                    handler_timeout,
                    delete_permanent_failures,
                ),
            )| ServiceParams {
                raw,
                filters: filters.into_iter().map(|f| FILTERS[f]).collect(),
                default_handler,
                consumers,
                max_in_flight,
                receive_batch,
                concurrent_receives: conc,
                backoff,
                return_unstarted,
                delete_batch_window: window,
                visibility_timeout: Duration::from_secs(vis),
                max_receive_count,
                delete_unmatched,
                handler_timeout,
                delete_permanent_failures,
            },
        )
}

fn skew() -> impl Strategy<Value = Skew> {
    (
        prop_oneof![1 => Just(0i32), 3 => -10_000i32..=10_000],
        prop_oneof![1 => Just(0u64), 1 => 0u64..10_000_000],
    )
        .prop_map(|(ppm, origin_ms)| Skew { ppm, origin_ms })
}

pub fn params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![
            2 => Just(10_000u64),
            2 => Just(800u64),
            3 => 800u64..=10_000,
        ],
        prop_oneof![
            2 => Just(Backend::Mock),
            2 => Just(Backend::Quorum(3)),
            1 => Just(Backend::Quorum(5)),
        ],
        prop_oneof![1 => proptest::collection::vec(service(), 1), 4 => proptest::collection::vec(service(), 2..=MAX_SERVICES)],
        proptest::collection::vec(skew(), MAX_SERVICES * MAX_CONSUMERS),
        prop_oneof![2 => Just(0u8), 1 => 1u8..=50],
        // One world in four is FIFO; a false and one group shrink to the
        // standard world as it was before FIFO.
        (prop_oneof![3 => Just(false), 1 => Just(true)], 1u8..=3),
    )
        .prop_map(
            |(lock_ms, backend, services, mut skews, permanent_pct, (fifo, groups))| {
                skews.truncate(services.iter().map(|s| s.consumers).sum());
                Params {
                    lock_timeout: Duration::from_millis(lock_ms),
                    backend,
                    services,
                    skews,
                    permanent_pct,
                    fifo,
                    groups,
                }
            },
        )
}
