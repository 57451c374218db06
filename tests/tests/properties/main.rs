//! Property tests of the consumer's invariants (I1–I8 of the design) over
//! random worlds and schedules.
//!
//! The world is as wide as production: two or three services subscribed to
//! one topic (SNS fans each publish out, with one SNS id, to every queue
//! whose filters match; envelope or raw delivery), one to three consumer
//! processes per service, all sharing one lock backend — the `MockLock`, or
//! Redlock's quorum rules over three or five in-memory nodes with faults per
//! node. Lock timeouts run from 0.8 s to 10 s; each process's clock runs at
//! its own rate (within the 1 % the lock allows for) from its own origin.
//!
//! The machines are driven synchronously on a virtual clock. A schedule is a
//! list of [`Step`](schedule::Step)s: publish events (SNS duplicates, late
//! duplicates, foreign events, garbage), carry out one pending IO call of one
//! process (possibly with a fault; a handler may also finish after it was
//! told to abort), let time pass (paced or in one jump, heartbeats answered
//! at once or not), crash a process, shut one down, make the lock backend
//! lose a key. A handler succeeds, fails (retried after the backoff, or after
//! a delay it asks for: around the lock and visibility timeouts, minutes,
//! more than SQS's 12 hours), fails permanently, panics, or hangs; some
//! events fail permanently on every delivery (a share of them per world,
//! picked by a hash of the event). Some services delete permanent failures,
//! the others leave them for the dead-letter queue; some have a handler
//! timeout. Every step is followed by the invariant checks ([`oracles`],
//! [`outcomes`]); after the schedule, faults stop (an operator moves what
//! reached a dead-letter queue back, but for events that fail on every
//! delivery) and the world is driven to quiescence to check liveness
//! ([`quiesce`]).
//!
//! The checks, each named in its failure message:
//! - I1: never two dispatches of one event of one service at once (unless
//!   the world took the first one's lock away);
//! - I2: a message is deleted only after a successful dispatch of its event
//!   in its own service ("I2/I7" when another service handled that SNS id);
//! - I3: no dispatch after a machine was told `Completed(Ok)` for the event
//!   (unless the world lost the record); a successful dispatch asks for its
//!   record before its delete; a complete is refused only for another
//!   owner's live lock;
//! - I4: a failed dispatch is released, never deleted, and a release
//!   answered `Ok` really freed the lock on the backend;
//! - I5: at quiescence every event is handled and deleted (or, failing on
//!   every delivery, recorded and deleted, or left in the dead-letter queue
//!   by its service), every lock still held is excused (a faulted call, a crashed process), none outlives its
//!   TTL;
//! - I6: a finished shutdown (and `Stopped`) leaves nothing running and no
//!   lock of its own;
//! - I7: every service handles every event published to it; no two events
//!   share a lock key;
//! - visibility / DLQ: while a handler runs with every heartbeat on time,
//!   its message is neither received again nor moved to the dead-letter
//!   queue;
//! - filters: no event outside a service's filters is dispatched, or
//!   deleted unless the service deletes such events;
//! - retry-after: a failure that asks to be tried again after a delay is
//!   released and returned with that delay (as SQS applies it), and the
//!   queue does not show the message again before it is over;
//! - permanent: a permanent failure is recorded before its delete where the
//!   service deletes them (never released); elsewhere it is released and
//!   handed back at once, the process never dispatches that SQS message
//!   again, hands back every later receipt of it at once and never deletes
//!   it, and an event that fails on every delivery ends in the dead-letter
//!   queue;
//! - timeout: a handler still running at its handler timeout has been told
//!   to abort, and none is aborted as timed out earlier;
//! - I8: in a FIFO world (a FIFO topic and FIFO queues, messages spread
//!   over a few groups), a message starts only when no other message of
//!   its group is active and every earlier one of its group has been
//!   handled, deleted or dead-lettered ([`fifo`] says why exactly that);
//!   in a standard world, group ids order nothing.
//!
//! Deterministic: the runner is seeded (`INIESTA_PROPTEST_SEED`, printed),
//! failures shrink to a minimal world and schedule and are replayed with a
//! trace, and `INIESTA_PROPTEST_CASES` sets the number of cases.

mod clock;
mod coverage;
mod fifo;
mod lock;
mod ops;
mod oracles;
mod outcome_cases;
mod outcomes;
mod quiesce;
mod schedule;
mod world;

use std::cell::Cell;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

use coverage::Seen;
use schedule::{Backend, Fault, Params, ServiceParams, Skew, Step};
use world::{Check, World};

fn run_schedule(params: &Params, steps: &[Step], tracing: bool) -> Check {
    coverage::saw(Seen::Case);
    if params.lock_timeout < Duration::from_secs(1) {
        coverage::saw(Seen::SubSecondLock);
    }
    if matches!(params.backend, Backend::Quorum(_)) {
        coverage::saw(Seen::QuorumBackend);
    }
    if params.fifo {
        coverage::saw(Seen::FifoCase);
    }
    let mut world = World::new(params.clone(), tracing);
    world.settle()?;
    for step in steps {
        world.apply(step)?;
    }
    world.quiesce()
}

fn cases() -> u32 {
    std::env::var("INIESTA_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn seed() -> u64 {
    std::env::var("INIESTA_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_127)
}

fn runner(name: &str) -> TestRunner {
    let seed = seed();
    let cases = cases();
    eprintln!(
        "{name}: {cases} cases, seed {seed} (INIESTA_PROPTEST_SEED={seed} \
         INIESTA_PROPTEST_CASES=N to reproduce or run longer)"
    );
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Panics with the seed, the minimal world and schedule, and the reason
/// with a trace of the minimal case replayed.
fn report(name: &str, result: Result<(), TestError<(Params, Vec<Step>)>>) {
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (params, steps))) => {
            let replayed = match run_schedule(&params, &steps, true) {
                Err(e) => e.to_string(),
                Ok(()) => format!("{reason} (the replay passed)"),
            };
            panic!(
                "{name} failed with seed {} — minimal world and schedule:\n{params:#?}\n\
                 {steps:#?}\n{replayed}",
                seed()
            );
        }
        Err(e) => panic!("{name} stopped with seed {}: {e}", seed()),
    }
}

#[test]
fn invariants_hold_over_random_schedules() {
    let mut runner = runner("invariants");
    let strategy = (
        schedule::params(),
        proptest::collection::vec(schedule::step(), 1..120),
    );
    let start = Instant::now();
    // Which case failed first, before shrinking (which runs many more).
    let ran = Cell::new(0u32);
    let first_failure = Cell::new(None);
    let result = runner.run(&strategy, |(params, steps)| {
        ran.set(ran.get() + 1);
        let outcome = run_schedule(&params, &steps, false);
        if outcome.is_err() && first_failure.get().is_none() {
            first_failure.set(Some(ran.get()));
        }
        outcome
    });
    if let Some(n) = first_failure.get() {
        eprintln!("invariants: the first failure came at case {n}");
    }
    let took = start.elapsed();
    if result.is_ok() {
        eprintln!(
            "invariants: {} cases in {took:.1?} ({:.0} cases/s); reached (all tests of this \
             run):\n{}",
            cases(),
            f64::from(cases()) / took.as_secs_f64(),
            coverage::summary()
        );
    }
    report("invariants", result);
}

/// A service of the regression schedules below: envelope delivery, one
/// slot per consumer, no batching.
fn service(filters: &[&'static str], consumers: usize) -> ServiceParams {
    ServiceParams {
        raw: false,
        filters: filters.to_vec(),
        default_handler: false,
        consumers,
        max_in_flight: 1,
        receive_batch: 1,
        concurrent_receives: 1,
        backoff: false,
        return_unstarted: true,
        delete_batch_window: Duration::ZERO,
        visibility_timeout: Duration::from_secs(30),
        max_receive_count: 5,
        delete_unmatched: false,
        handler_timeout: None,
        delete_permanent_failures: false,
    }
}

fn world(lock_ms: u64, backend: Backend, services: Vec<ServiceParams>) -> Params {
    let processes = services.iter().map(|s| s.consumers).sum();
    Params {
        lock_timeout: Duration::from_millis(lock_ms),
        backend,
        services,
        skews: vec![
            Skew {
                ppm: 0,
                origin_ms: 0
            };
            processes
        ],
        permanent_pct: 0,
        fifo: false,
        groups: 1,
    }
}

fn run(proc: u8, fault: Fault) -> Step {
    Step::Run {
        proc,
        op: 0,
        fault,
        nodes: 0,
    }
}

fn replay(params: &Params, steps: &[Step]) {
    if let Err(e) = run_schedule(params, steps, true) {
        panic!("{e}");
    }
}

/// The original's flaw: the handler succeeds, the delete fails, the message
/// comes back; it must be acked without a second dispatch.
#[test]
fn redelivery_after_failed_delete_is_not_dispatched_again() {
    let params = world(10_000, Backend::Mock, vec![service(&["A.*"], 1)]);
    let mut world = World::new(params, true);
    world.settle().unwrap();
    let mut steps = vec![
        Step::Publish { event: 0, dup: 0 },
        run(0, Fault::None), // receive
        run(0, Fault::None), // acquire
        run(0, Fault::None), // handler succeeds
        run(0, Fault::None), // complete
    ];
    // The delete fails on every try (the first and three retries).
    for _ in 0..4 {
        steps.push(run(0, Fault::Fail));
        steps.push(Step::Advance {
            ms: 2_000,
            paced: true,
            beats: true,
        });
    }
    for s in &steps {
        world.apply(s).map_err(|e| e.to_string()).unwrap();
    }
    let queue = world.services[0].queue.clone();
    assert_eq!(
        queue.len(),
        1,
        "the delete failed, so the message is still there"
    );
    let ident = world::Ident {
        service: 0,
        id: "sns-1".into(),
    };
    assert_eq!(world.ledger.dispatches[&ident], 1);
    // The visibility timeout passes: the message comes back and meets the
    // completion record (a second dispatch would fail check I3).
    world
        .apply(&Step::Advance {
            ms: 31_000,
            paced: true,
            beats: true,
        })
        .map_err(|e| e.to_string())
        .unwrap();
    world.quiesce().map_err(|e| e.to_string()).unwrap();
    assert_eq!(
        world.ledger.dispatches[&ident], 1,
        "dispatched a second time"
    );
    assert!(queue.is_empty());
    assert!(
        queue.stats().received >= 2,
        "the message was delivered twice"
    );
}

/// Two services subscribed to one topic get the same SNS message id and
/// share the lock backend: each must handle the event (I7).
#[test]
fn two_services_on_one_topic_each_handle_the_event() {
    for backend in [Backend::Mock, Backend::Quorum(3)] {
        let params = world(
            10_000,
            backend,
            vec![service(&["A.*"], 1), service(&["A.x"], 1)],
        );
        // svc0 takes it first and completes it; then svc1 receives its copy.
        let steps = [
            Step::Publish { event: 0, dup: 0 },
            run(0, Fault::None), // svc0 receives
            run(0, Fault::None), // svc0 acquires and dispatches
            run(0, Fault::None), // svc0's handler succeeds
            run(0, Fault::None), // svc0 completes
            run(1, Fault::None), // svc1 receives
            run(1, Fault::None), // svc1 acquires
        ];
        replay(&params, &steps);
        // Both hold their locks at once.
        let steps = [
            Step::Publish { event: 0, dup: 0 },
            run(0, Fault::None), // svc0 receives
            run(0, Fault::None), // svc0 acquires and dispatches
            run(1, Fault::None), // svc1 receives
            run(1, Fault::None), // svc1 acquires
        ];
        replay(&params, &steps);
    }
}

/// A lock timeout under a second: heartbeats every 0.48 s extend the
/// visibility by 0.8 s, which SQS takes in whole seconds. Rounded down it
/// would be 0 and the running message would be received again (and, after
/// maxReceiveCount receives, reach the dead-letter queue).
#[test]
fn sub_second_lock_timeout_keeps_a_running_message_hidden() {
    for backend in [Backend::Mock, Backend::Quorum(3)] {
        let params = world(800, backend, vec![service(&["A.*"], 2)]);
        let mut steps = vec![
            Step::Publish { event: 0, dup: 0 },
            run(0, Fault::None), // proc 0 receives
            run(0, Fault::None), // proc 0 acquires and dispatches
        ];
        for _ in 0..6 {
            steps.push(Step::Advance {
                ms: 700,
                paced: true,
                beats: true,
            });
            steps.push(run(1, Fault::None)); // proc 1 polls
        }
        replay(&params, &steps);
    }
}

/// A message dispatched on its last allowed receive (maxReceiveCount 3, the
/// first two deliveries met a lock outage) with a lock timeout under a
/// second: while its heartbeats keep it hidden, no receive may move it to
/// the dead-letter queue.
#[test]
fn a_running_message_never_reaches_the_dead_letter_queue() {
    for backend in [Backend::Mock, Backend::Quorum(3)] {
        let mut svc = service(&["A.*"], 2);
        svc.visibility_timeout = Duration::from_secs(1);
        svc.max_receive_count = 3;
        let params = world(800, backend, vec![svc]);
        let pass = Step::Advance {
            ms: 1_000,
            paced: true,
            beats: true,
        };
        let mut steps = vec![Step::Publish { event: 0, dup: 0 }];
        for _ in 0..2 {
            steps.push(run(0, Fault::None)); // proc 0 receives
            steps.push(run(0, Fault::Fail)); // the lock backend is down
            steps.push(pass.clone());
        }
        steps.push(run(0, Fault::None)); // receive #3
        steps.push(run(0, Fault::None)); // acquired and dispatched
        for _ in 0..4 {
            steps.push(Step::Advance {
                ms: 700,
                paced: true,
                beats: true,
            });
            steps.push(run(1, Fault::None)); // proc 1 polls
        }
        replay(&params, &steps);
    }
}
