//! FIFO groups at their edges, driven by hand: a holder that times out or
//! loses its lock, a shutdown with members parked behind their group, a
//! failed message received again before its return is answered, and one
//! busy group beside idle slots.

use std::time::Duration;

use iniesta_core::machine::{Action, DispatchOutcome, Input};
use iniesta_core::{LockError, ReceiptHandle};

mod common;
use common::fifo::*;
use common::*;

#[test]
fn a_holder_that_times_out_sends_its_group_back_and_frees_it() {
    let mut cfg = fifo(2);
    cfg.handler_timeout = Some(Duration::from_millis(1000));
    let mut h = Harness::new(cfg);
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("a3", "A"),
    ]);
    h.answer_acquires(|_| acquired());
    assert_eq!(h.running(), ["a1"]);
    h.at(1500);
    assert!(
        h.pending.iter().any(|a| matches!(a, Action::Abort { .. })),
        "{:?}",
        h.pending
    );
    h.answer_aborts();
    assert_eq!(h.returned_for_order(), back(&["a2", "a3"], "a1"));
    h.settle_all();
    assert_eq!(h.c.in_flight(), 0, "{:?}", h.c);
    // Redelivered whole, in order: goes on.
    h.receive(vec![grouped("a1", "A"), grouped("a2", "A")]);
    assert_eq!(h.acquiring(), keys(&["a1"]));
}

#[test]
fn a_shutdown_with_members_parked_and_returns_off_still_stops() {
    let mut cfg = fifo(4);
    cfg.return_unstarted_on_shutdown = false;
    let mut h = Harness::new(cfg);
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("b1", "B"),
        grouped("a3", "A"),
    ]);
    h.answer_acquires(|_| acquired());
    h.c.shutdown(t(100));
    h.drain();
    h.receive(Vec::new());
    h.finish("a1", DispatchOutcome::failed_with("x"));
    h.succeed("b1");
    h.settle_all();
    assert!(h.c.is_stopped(), "{:?} {:?}", h.pending, h.c);
}

#[test]
fn a_holder_whose_lock_is_lost_sends_its_group_back() {
    let mut cfg = fifo(2);
    cfg.lock_timeout = Duration::from_secs(10);
    cfg.heartbeat_interval = Duration::from_secs(2);
    let mut h = Harness::new(cfg);
    h.receive(vec![grouped("a1", "A"), grouped("a2", "A")]);
    h.answer_acquires(|_| acquired());
    h.at(2500);
    let id = h.take("an extend", |a| match a {
        Action::Extend { id, .. } => Some(*id),
        _ => None,
    });
    h.input(Input::Extended {
        id,
        result: Err(LockError::NotHeld),
    });
    h.answer_aborts();
    assert_eq!(h.returned_for_order(), back(&["a2"], "a1"));
    h.settle_all();
    assert_eq!(h.c.in_flight(), 0);
}

#[test]
fn parked_members_wait_for_their_group_not_in_the_prefetch() {
    let mut cfg = fifo(1);
    cfg.prefetch = Some(4);
    let mut h = Harness::new(cfg);
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("a3", "A"),
        grouped("a4", "A"),
    ]);
    h.answer_acquires(|_| acquired());
    // a1 runs, a2..a4 wait for their group, not for a slot: the prefetch
    // is free, and the bound on messages in progress (2 × 1 slot + 4 = 6,
    // 4 in progress) lets a receive of 2 go out.
    assert_eq!(h.running(), ["a1"]);
    assert_eq!(h.receive_sizes(), [2], "{:?}", h.pending);
    // Another group's two arrive: one waits for the slot, and the bound is
    // reached: nothing more is received.
    h.receive(vec![grouped("b1", "B"), grouped("b2", "B")]);
    assert!(h.receive_sizes().is_empty(), "{:?}", h.pending);
}

/// A failed message released with a zero backoff is visible again at once;
/// a receive already out brings it back before its return is answered
/// (its failed hold lasts until then): it is sent back "behind" itself,
/// unhandled, burning a receive count.
#[test]
fn a_failed_message_received_again_is_not_sent_back_behind_itself() {
    let mut cfg = fifo(2);
    cfg.prefetch = Some(0);
    cfg.concurrent_receives = 2;
    cfg.failure_backoff = Some(iniesta_core::machine::Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
    });
    let mut h = Harness::new(cfg);
    h.receive(vec![grouped("a1", "A")]);
    h.answer_acquires(|_| acquired());
    h.finish("a1", DispatchOutcome::failed_with("boom"));
    let id = h.take("a release", |a| match a {
        Action::Release { id, .. } => Some(*id),
        _ => None,
    });
    h.input(Input::Released { id, result: Ok(()) });
    // a1's return (visibility 0) is out, not answered: SQS has made it
    // visible, and the other receive gets it.
    assert!(h
        .visibility_changes()
        .contains(&(handle("a1"), Duration::ZERO)));
    let mut again = grouped("a1", "A");
    again.receipt_handle = ReceiptHandle::new("rh-a1-second");
    again.attributes.receive_count = Some(2);
    h.receive(vec![again]);
    assert_eq!(
        h.returned_for_order(),
        Vec::<(String, String, String)>::new(),
        "a1 was sent back behind itself, never handled"
    );
}

/// SQS hands out a FIFO group's messages together. Parked members count as
/// received ahead, so one busy group fills the prefetch and no receive goes
/// out while three of four slots stand idle: other groups wait on it.
#[test]
fn one_busy_group_does_not_stop_the_receives_for_idle_slots() {
    let mut cfg = fifo(4);
    cfg.prefetch = None; // the default: max_in_flight
    let mut h = Harness::new(cfg);
    h.receive(vec![
        grouped("a1", "A"),
        grouped("a2", "A"),
        grouped("a3", "A"),
        grouped("a4", "A"),
    ]);
    h.answer_acquires(|_| acquired());
    assert_eq!(h.running(), ["a1"]);
    // Three slots are free: a receive goes out for the other groups.
    assert_eq!(h.receive_sizes(), [4], "{:?}", h.pending);
    h.receive(vec![grouped("b1", "B"), grouped("c1", "C")]);
    h.answer_acquires(|_| acquired());
    let mut running = h.running();
    running.sort();
    assert_eq!(running, ["a1", "b1", "c1"]);
}
