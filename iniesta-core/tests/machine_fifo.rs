//! FIFO message groups, driven by hand: one message of a group at a time in
//! the order received, groups in parallel, and a message that does not
//! succeed sending the members of its group behind it back to the queue.
//! On a standard queue, group ids change nothing.

use std::time::Duration;

use iniesta_core::machine::{Action, DispatchOutcome, Event, Input};
use iniesta_core::{AcquireOutcome, LockError, LockKey, Retry};

mod common;
use common::fifo::*;
use common::*;

#[test]
fn a_group_runs_one_at_a_time_in_the_order_received() {
    let mut h = Harness::new(fifo(4));
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("a3", "A"),
    ]);
    assert_eq!(h.acquiring(), keys(&["a1"]), "only the group's first");
    h.answer_acquires(|_| acquired());
    assert_eq!(h.running(), ["a1"]);
    h.finish("a1", DispatchOutcome::Succeeded);
    assert!(
        h.acquiring().is_empty(),
        "the next waits for the record: {:?}",
        h.pending
    );
    h.settle_all();
    assert_eq!(h.acquiring(), keys(&["a2"]), "the record is written");
    h.answer_acquires(|_| acquired());
    h.succeed("a2");
    h.answer_acquires(|_| acquired());
    assert_eq!(h.running(), ["a3"]);
    let started: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::HandlerStarted { message } => Some(message.sqs_message_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["a1", "a2", "a3"]);
}

#[test]
fn the_next_of_a_group_may_run_while_the_previous_is_being_deleted() {
    let mut h = Harness::new(fifo(4));
    h.receive(vec![grouped("a1", "A"), grouped("a2", "A")]);
    h.answer_acquires(|_| acquired());
    h.finish("a1", DispatchOutcome::Succeeded);
    let (batch, n) = h.take("a complete", |a| match a {
        Action::Complete { batch, entries, .. } => Some((*batch, entries.len())),
        _ => None,
    });
    assert_eq!(n, 1);
    h.input(Input::Completed {
        batch,
        index: 0,
        result: Ok(()),
    });
    assert!(
        h.pending.iter().any(|a| matches!(a, Action::Delete { .. })),
        "{:?}",
        h.pending
    );
    assert_eq!(
        h.acquiring(),
        keys(&["a2"]),
        "before a1's delete is answered"
    );
}

#[test]
fn groups_run_in_parallel_and_a_busy_group_holds_back_only_itself() {
    let mut h = Harness::new(fifo(3));
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("b1", "B"),
        grouped("c1", "C"),
        grouped("c2", "C"),
        grouped("d1", "D"),
    ]);
    assert_eq!(h.acquiring(), keys(&["a1", "b1", "c1"]));
    h.answer_acquires(|_| acquired());
    assert_eq!(h.running(), ["a1", "b1", "c1"]);
    // b1's slot goes to d1, the first received that can start.
    h.succeed("b1");
    assert_eq!(h.acquiring(), keys(&["d1"]));
    h.answer_acquires(|_| acquired());
    // c1's goes to c2, received before a2's group is free.
    h.succeed("c1");
    assert_eq!(h.acquiring(), keys(&["c2"]));
    h.answer_acquires(|_| acquired());
    h.succeed("a1");
    assert_eq!(h.acquiring(), keys(&["a2"]));
}

#[test]
fn first_received_first_when_a_group_frees_up_behind_later_groups() {
    let mut h = Harness::new(fifo(1));
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("b1", "B"),
    ]);
    h.answer_acquires(|_| acquired());
    // a1's record frees both the slot and group A: a2 came before b1.
    h.succeed("a1");
    assert_eq!(h.acquiring(), keys(&["a2"]));
    h.answer_acquires(|_| acquired());
    h.succeed("a2");
    assert_eq!(h.acquiring(), keys(&["b1"]));
}

/// Receives a1, a2, a3 of group A and b1 of group B, and starts a1 and b1.
fn a1_running() -> Harness {
    let mut cfg = fifo(4);
    cfg.failure_backoff = Some(iniesta_core::machine::Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(60),
    });
    let mut h = Harness::new(cfg);
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("b1", "B"),
        grouped("a3", "A"),
    ]);
    assert_eq!(h.acquiring(), keys(&["a1", "b1"]));
    h
}

/// Checks that a2 and a3 went back at once behind a1, never locked, and
/// that group B went on.
fn assert_sent_back_behind_a1(h: &mut Harness) {
    assert_eq!(h.returned_for_order(), back(&["a2", "a3"], "a1"));
    let vis = h.visibility_changes();
    for id in ["a2", "a3"] {
        assert!(
            vis.contains(&(handle(id), Duration::ZERO)),
            "{id} made visible at once: {vis:?}"
        );
    }
    h.settle_all();
    let acquired_ever: Vec<LockKey> = h.acquiring();
    assert!(
        !acquired_ever.contains(&key("a2")) && !acquired_ever.contains(&key("a3")),
        "{acquired_ever:?}"
    );
    assert!(
        !h.events.iter().any(|e| matches!(e,
            Event::HandlerStarted { message } if message.sqs_message_id != "a1"
                && message.sqs_message_id != "b1")),
        "{:?}",
        h.events
    );
    assert_eq!(h.stats().returned_for_order, 2);
}

#[test]
fn a_failure_sends_the_group_behind_it_back_at_once() {
    let mut h = a1_running();
    h.answer_acquires(|_| acquired());
    h.finish("a1", DispatchOutcome::failed_with("boom"));
    // At once: before a1's release is even answered.
    assert!(h
        .pending
        .iter()
        .any(|a| matches!(a, Action::Release { .. })));
    assert_sent_back_behind_a1(&mut h);
    let returned: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Returned {
                sqs_message_id,
                delay,
            } => Some((sqs_message_id.as_str(), *delay)),
            _ => None,
        })
        .collect();
    assert!(
        returned.contains(&("a1", Duration::from_secs(5))),
        "a1 with its backoff: {returned:?}"
    );
    // Group B was not held back.
    assert_eq!(h.running(), ["b1"]);
}

#[test]
fn an_abort_or_a_permanent_failure_holds_the_group_too() {
    for outcome in [
        DispatchOutcome::Aborted,
        DispatchOutcome::Panicked("oops".into()),
        DispatchOutcome::Failed {
            error: iniesta_core::ErrorChain::message("never"),
            retry: Retry::Never,
        },
        DispatchOutcome::Failed {
            error: iniesta_core::ErrorChain::message("later"),
            retry: Retry::After(Duration::from_secs(30)),
        },
    ] {
        let mut h = a1_running();
        h.answer_acquires(|_| acquired());
        h.finish("a1", outcome.clone());
        assert_eq!(
            h.returned_for_order(),
            back(&["a2", "a3"], "a1"),
            "{outcome:?}"
        );
    }
}

#[test]
fn a_permanent_failure_recorded_and_deleted_lets_the_group_go_on() {
    let mut h = Harness::new({
        let mut c = fifo(4);
        c.delete_permanent_failures = true;
        c
    });
    h.receive(vec![grouped("a1", "A"), grouped("a2", "A")]);
    h.answer_acquires(|_| acquired());
    h.finish(
        "a1",
        DispatchOutcome::Failed {
            error: iniesta_core::ErrorChain::message("never"),
            retry: Retry::Never,
        },
    );
    h.settle_all();
    assert!(h.returned_for_order().is_empty());
    assert_eq!(h.acquiring(), keys(&["a2"]));
}

#[test]
fn a_busy_lock_sends_the_group_behind_it_back() {
    let mut h = a1_running();
    h.answer_acquires(|k| {
        if *k == key("a1") {
            AcquireOutcome::Busy
        } else {
            acquired()
        }
    });
    assert_sent_back_behind_a1(&mut h);
    assert_eq!(h.running(), ["b1"]);
}

#[test]
fn an_unavailable_lock_sends_the_group_behind_it_back() {
    let mut h = a1_running();
    h.answer_acquires(|k| {
        if *k == key("a1") {
            AcquireOutcome::Unavailable(LockError::Unavailable("no quorum".into()))
        } else {
            acquired()
        }
    });
    assert_sent_back_behind_a1(&mut h);
    assert_eq!(h.running(), ["b1"]);
}

#[test]
fn a_done_lock_is_a_success_and_the_group_goes_on() {
    let mut h = a1_running();
    h.answer_acquires(|k| {
        if *k == key("a1") {
            AcquireOutcome::Done
        } else {
            acquired()
        }
    });
    assert!(h.returned_for_order().is_empty());
    // a2's acquire went out after a1's answer (and was answered in turn).
    assert_eq!(h.running(), ["b1", "a2"]);
    assert!(
        h.pending.iter().any(|a| matches!(a,
            Action::Delete { handles, .. } if handles.contains(&handle("a1")))),
        "the duplicate is deleted: {:?}",
        h.pending
    );
}

#[test]
fn an_unparseable_message_holds_the_rest_of_its_group_in_the_receive() {
    let mut h = Harness::new(fifo(4));
    let mut bad = grouped("a1", "A");
    bad.message_attributes = Default::default(); // no event name: unparseable
    h.receive(vec![
        bad,
        grouped("a2", "A"),
        grouped("b1", "B"),
        grouped("a3", "A"),
    ]);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Malformed { .. })));
    assert_eq!(h.returned_for_order(), back(&["a2", "a3"], "a1"));
    assert_eq!(h.acquiring(), keys(&["b1"]));
}

#[test]
fn a_member_arriving_while_a_failed_member_is_released_goes_back() {
    let mut cfg = fifo(2);
    cfg.prefetch = Some(0);
    cfg.concurrent_receives = 2;
    let mut h = Harness::new(cfg);
    h.receive(vec![grouped("a1", "A")]);
    h.answer_acquires(|_| acquired());
    h.finish("a1", DispatchOutcome::failed_with("boom"));
    // a1's release is not answered yet: its group is still held, failed.
    assert!(h
        .pending
        .iter()
        .any(|a| matches!(a, Action::Release { .. })));
    h.receive(vec![grouped("a2", "A"), grouped("b1", "B")]);
    assert_eq!(h.returned_for_order(), back(&["a2"], "a1"));
    assert_eq!(h.acquiring(), keys(&["b1"]));
}

#[test]
fn shutdown_returns_the_members_waiting_behind_their_group() {
    let mut h = a1_running();
    h.answer_acquires(|_| acquired());
    h.c.shutdown(t(100));
    h.drain();
    let vis = h.visibility_changes();
    for id in ["a2", "a3"] {
        assert!(vis.contains(&(handle(id), Duration::ZERO)), "{id}: {vis:?}");
    }
    h.receive(Vec::new()); // the cancelled receive
    h.succeed("a1");
    h.succeed("b1");
    h.settle_all();
    assert!(
        h.returned_for_order().is_empty(),
        "a shutdown, not an order"
    );
    assert!(h.c.is_stopped(), "{:?}", h.pending);
}

#[test]
fn a_standard_queue_ignores_group_ids() {
    let mut cfg = fifo(4);
    cfg.fifo = false;
    let mut h = Harness::new(cfg);
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("a3", "A"),
    ]);
    assert_eq!(h.acquiring(), keys(&["a1", "a2", "a3"]));
    h.answer_acquires(|k| {
        if *k == key("a1") {
            AcquireOutcome::Busy
        } else {
            acquired()
        }
    });
    h.finish("a2", DispatchOutcome::failed_with("boom"));
    h.settle_all();
    assert!(h.returned_for_order().is_empty());
    assert_eq!(h.running(), ["a3"]);
    assert_eq!(h.stats().returned_for_order, 0);
}
