//! Regression schedules of the handler outcomes: a permanent failure left
//! for the dead-letter queue or deleted, a retry after a delay, a hung
//! handler that only the handler timeout ends.

use std::time::Duration;

use crate::schedule::{Backend, Delay, Fault, Step};
use crate::world::{Ident, World};
use crate::{service, world};

fn apply(world: &mut World, steps: &[Step]) {
    for s in steps {
        if let Err(e) = world.apply(s) {
            panic!("{e}");
        }
    }
}

/// Carries out process 0's first pending call whose `Debug` contains
/// `what` (`Receive`, `Acquire`, `Handler`, `msg-1/1, 0ns)`, …) with
/// `fault`.
fn call(world: &mut World, what: &str, fault: Fault) {
    let Some(op) = world.procs[0]
        .pending
        .iter()
        .position(|c| format!("{c:?}").contains(what))
    else {
        panic!(
            "no {what} pending: {:?}\n{}",
            world.procs[0].pending,
            world.trace.join("\n")
        );
    };
    let op = u8::try_from(op).expect("few calls pending");
    let step = Step::Run {
        proc: 0,
        op,
        fault,
        nodes: 0,
    };
    apply(world, &[step]);
}

/// Carries out each of process 0's calls `whats` without a fault.
fn calls(world: &mut World, whats: &[&str]) {
    for what in whats {
        call(world, what, Fault::None);
    }
}

fn advance(ms: u32) -> Step {
    Step::Advance {
        ms,
        paced: true,
        beats: true,
    }
}

/// The first event published, in the first service.
fn first() -> Ident {
    Ident {
        service: 0,
        id: "sns-1".into(),
    }
}

/// Every delivery fails permanently, one process: it dispatches the
/// message once, hands every later receipt back at once (no visibility
/// timeout to wait for), and the message reaches the dead-letter queue
/// after maxReceiveCount receives, never deleted.
#[test]
fn a_permanent_failure_is_handed_back_until_it_is_dead_lettered() {
    for backend in [Backend::Mock, Backend::Quorum(3)] {
        let mut params = world(10_000, backend, vec![service(&["A.*"], 1)]);
        params.permanent_pct = 100;
        params.services[0].max_receive_count = 3;
        let mut world = World::new(params, true);
        world.settle().unwrap();
        apply(&mut world, &[Step::Publish { event: 0, dup: 0 }]);
        // The handler fails permanently; the message is handed back.
        calls(&mut world, &["Receive", "Acquire", "Handler", "Release"]);
        calls(&mut world, &["msg-1/1, 0ns)"]);
        // Receives 2 and 3 are handed back, the fourth moves it: no time
        // passes, so none of it waits for a visibility timeout.
        calls(&mut world, &["Receive", "msg-1/2, 0ns)"]);
        calls(&mut world, &["Receive", "msg-1/3, 0ns)"]);
        calls(&mut world, &["Receive"]);
        let service = &world.services[0];
        assert_eq!(service.dlq.len(), 1, "dead-lettered");
        assert!(service.queue.is_empty());
        assert_eq!(service.queue.stats().received, 3);
        assert_eq!(world.ledger.dispatches[&first()], 1);
        world.quiesce().map_err(|e| e.to_string()).unwrap();
        assert_eq!(world.ledger.dispatches[&first()], 1);
    }
}

/// With `delete_permanent_failures` the message is recorded and deleted
/// after its one dispatch; an SNS duplicate meets the record.
#[test]
fn a_deleted_permanent_failure_is_recorded() {
    let mut params = world(10_000, Backend::Quorum(3), vec![service(&["A.*"], 1)]);
    params.permanent_pct = 100;
    params.services[0].delete_permanent_failures = true;
    let mut world = World::new(params, true);
    world.settle().unwrap();
    apply(&mut world, &[Step::Publish { event: 0, dup: 1 }]); // two copies
                                                              // The first: the handler fails permanently; recorded, deleted.
    calls(&mut world, &["Receive", "Acquire", "Handler", "Complete"]);
    calls(&mut world, &["Delete"]);
    assert!(world.ledger.told_completed.contains_key(&first()));
    assert_eq!(world.services[0].queue.len(), 1, "the duplicate is left");
    world.quiesce().map_err(|e| e.to_string()).unwrap();
    assert_eq!(world.ledger.dispatches[&first()], 1);
    assert!(world.services[0].queue.is_empty());
    assert!(world.services[0].dlq.is_empty());
}

/// A handler asks to be tried again in 1.5 s: the message comes back after
/// 2 s (SQS's whole seconds), not after the 30 s visibility timeout.
#[test]
fn a_retry_after_hides_the_message_for_its_delay() {
    let params = world(10_000, Backend::Mock, vec![service(&["A.*"], 1)]);
    let mut world = World::new(params, true);
    world.settle().unwrap();
    apply(&mut world, &[Step::Publish { event: 0, dup: 0 }]);
    calls(&mut world, &["Receive", "Acquire"]);
    call(&mut world, "Handler", Fault::RetryAfter(Delay::Ms(1_500)));
    calls(&mut world, &["Release", "msg-1/1, 1.5s, retry after 2s)"]);
    apply(&mut world, &[advance(1_999)]);
    let queue = world.services[0].queue.clone();
    assert_eq!(queue.visible_len(), 0, "hidden for 2 s");
    apply(&mut world, &[advance(1)]);
    assert_eq!(queue.visible_len(), 1, "back after 2 s");
    world.quiesce().map_err(|e| e.to_string()).unwrap();
    assert_eq!(world.ledger.dispatches[&first()], 2);
}

/// A hung handler whose heartbeats keep its lock: the handler timeout
/// (2 s) aborts it, and the message is handled on its next delivery.
#[test]
fn a_hung_handler_is_aborted_at_the_handler_timeout() {
    let mut svc = service(&["A.*"], 1);
    svc.handler_timeout = Some(Duration::from_secs(2));
    let params = world(800, Backend::Quorum(3), vec![svc]);
    let mut world = World::new(params, true);
    world.settle().unwrap();
    apply(&mut world, &[Step::Publish { event: 0, dup: 0 }]);
    calls(&mut world, &["Receive", "Acquire"]);
    call(&mut world, "Handler", Fault::Hang);
    apply(&mut world, &[advance(1_999)]);
    let running = |world: &World| {
        world.procs[0]
            .running
            .values()
            .map(|r| r.aborted)
            .collect::<Vec<bool>>()
    };
    assert_eq!(running(&world), vec![false], "heartbeats keep it running");
    apply(&mut world, &[advance(1)]);
    assert_eq!(running(&world), vec![true], "aborted at 2 s");
    world.quiesce().map_err(|e| e.to_string()).unwrap();
    assert_eq!(world.ledger.dispatches[&first()], 2);
}

/// A second receipt of the message (its visibility ran out while the first
/// ran, before a heartbeat) waits for the lock when the first fails
/// permanently: it gets the lock after the give-up and is handed back, not
/// dispatched again.
#[test]
fn a_receipt_waiting_for_the_lock_is_handed_back_after_a_give_up() {
    let mut svc = service(&["A.*"], 1);
    svc.max_in_flight = 2;
    svc.visibility_timeout = Duration::from_secs(1);
    let params = world(10_000, Backend::Mock, vec![svc]);
    let mut world = World::new(params, true);
    world.settle().unwrap();
    apply(&mut world, &[Step::Publish { event: 0, dup: 0 }]);
    calls(&mut world, &["Receive", "Acquire"]);
    // The first heartbeat is due at 6 s: the message shows again at 1 s.
    apply(&mut world, &[advance(1_500)]);
    calls(&mut world, &["Receive"]);
    call(&mut world, "Handler", Fault::Permanent);
    calls(&mut world, &["Release", "Acquire", "Release"]);
    assert_eq!(world.ledger.dispatches[&first()], 1);
    assert!(
        world
            .trace
            .iter()
            .any(|l| l.contains(r#"(ReceiptHandle("msg-1/2"), 0ns)"#)),
        "the second receipt is handed back at once:\n{}",
        world.trace.join("\n")
    );
    world.quiesce().map_err(|e| e.to_string()).unwrap();
}
