//! FIFO message groups, driven by hand: one message of a group at a time in
//! the order received, groups in parallel, and a message that does not
//! succeed sending the members of its group behind it back to the queue.
//! On a standard queue, group ids change nothing.

use std::time::Duration;

use iniesta_core::machine::{Action, Consumer, ConsumerConfig, DispatchOutcome, Event, Input};
use iniesta_core::message::ATTR_MESSAGE_GROUP_ID;
use iniesta_core::{
    AcquireOutcome, LockError, LockKey, ReceiptHandle, ReceivedMessage, Retry, Stats,
};

mod common;
use common::*;

/// A raw message `id` of group `group`.
fn grouped(id: &str, group: &str) -> ReceivedMessage {
    let mut m = message(id, "E.svc");
    m.attributes
        .other
        .insert(ATTR_MESSAGE_GROUP_ID.into(), group.into());
    m
}

fn fifo(max_in_flight: usize) -> ConsumerConfig {
    let mut c = config();
    c.fifo = true;
    c.max_in_flight = max_in_flight;
    c.prefetch = Some(10);
    c
}

/// A consumer and the actions it asked for and nobody answered yet; every
/// event is kept, in order.
struct Harness {
    c: Consumer,
    pending: Vec<Action>,
    events: Vec<Event>,
    now: u64,
}

impl Harness {
    fn new(config: ConsumerConfig) -> Self {
        let mut h = Harness {
            c: consumer(config),
            pending: Vec::new(),
            events: Vec::new(),
            now: 0,
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        self.pending.extend(actions(&mut self.c));
        self.events.extend(events(&mut self.c));
    }

    fn input(&mut self, input: Input) {
        self.now += 1;
        self.c.handle_input(t(self.now), input);
        self.drain();
    }

    /// Takes the first pending action `pick` accepts.
    fn take<T>(&mut self, what: &str, pick: impl Fn(&Action) -> Option<T>) -> T {
        let Some(at) = self.pending.iter().position(|a| pick(a).is_some()) else {
            panic!("expected {what}, pending: {:?}", self.pending);
        };
        pick(&self.pending.remove(at)).expect("picked")
    }

    fn receive(&mut self, msgs: Vec<ReceivedMessage>) {
        let id = self.take("a receive", |a| match a {
            Action::Receive { id, .. } => Some(*id),
            _ => None,
        });
        self.input(Input::Received {
            id,
            result: Ok(msgs),
        });
    }

    /// The keys of every pending acquire, in order (not answered).
    fn acquiring(&self) -> Vec<LockKey> {
        self.pending
            .iter()
            .flat_map(|a| match a {
                Action::Acquire { keys, .. } => keys.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Answers every pending acquire, key by key, with `outcome(key)`.
    fn answer_acquires(&mut self, outcome: impl Fn(&LockKey) -> AcquireOutcome) {
        while let Some(at) = self
            .pending
            .iter()
            .position(|a| matches!(a, Action::Acquire { .. }))
        {
            let Action::Acquire { batch, keys, .. } = self.pending.remove(at) else {
                unreachable!()
            };
            for (index, key) in keys.iter().enumerate() {
                let outcome = outcome(key);
                self.input(Input::Acquired {
                    batch,
                    index,
                    outcome,
                });
            }
        }
    }

    /// Finishes the running handler of SQS message `sqs_id`.
    fn finish(&mut self, sqs_id: &str, outcome: DispatchOutcome) {
        let id = self.take("a dispatch", |a| match a {
            Action::Dispatch { id, message, .. } if message.sqs_message_id == sqs_id => Some(*id),
            _ => None,
        });
        self.input(Input::HandlerFinished { id, outcome });
    }

    /// Answers every pending completion record, release, delete and
    /// visibility change successfully, until none is left.
    fn settle_all(&mut self) {
        loop {
            let Some(at) = self.pending.iter().position(|a| {
                matches!(
                    a,
                    Action::Complete { .. }
                        | Action::Release { .. }
                        | Action::Delete { .. }
                        | Action::ChangeVisibility { .. }
                )
            }) else {
                return;
            };
            match self.pending.remove(at) {
                Action::Complete { batch, entries, .. } => {
                    for index in 0..entries.len() {
                        self.input(Input::Completed {
                            batch,
                            index,
                            result: Ok(()),
                        });
                    }
                }
                Action::Release { id, .. } => self.input(Input::Released { id, result: Ok(()) }),
                Action::Delete { batch, handles } => {
                    for index in 0..handles.len() {
                        self.input(Input::Deleted {
                            batch,
                            index,
                            result: Ok(()),
                        });
                    }
                }
                Action::ChangeVisibility { batch, entries } => {
                    for index in 0..entries.len() {
                        self.input(Input::VisibilityChanged {
                            batch,
                            index,
                            result: Ok(()),
                        });
                    }
                }
                _ => unreachable!(),
            }
        }
    }

    /// Succeeds `sqs_id`'s handler and writes its record.
    fn succeed(&mut self, sqs_id: &str) {
        self.finish(sqs_id, DispatchOutcome::Succeeded);
        self.settle_all();
    }

    /// The SQS ids of the pending dispatches, in order.
    fn running(&self) -> Vec<String> {
        self.pending
            .iter()
            .filter_map(|a| match a {
                Action::Dispatch { message, .. } => Some(message.sqs_message_id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every visibility change pending, not answered.
    fn visibility_changes(&self) -> Vec<(ReceiptHandle, Duration)> {
        self.pending
            .iter()
            .flat_map(|a| match a {
                Action::ChangeVisibility { entries, .. } => entries.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The messages sent back for order, and whom they were behind.
    fn returned_for_order(&self) -> Vec<(String, String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ReturnedForOrder {
                    message,
                    group,
                    behind,
                } => Some((
                    message.sqs_message_id.clone(),
                    group.clone(),
                    behind.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    fn stats(&self) -> Stats {
        let mut s = Stats::default();
        self.events.iter().for_each(|e| s.record(e));
        s
    }
}

fn keys(ids: &[&str]) -> Vec<LockKey> {
    ids.iter().map(|id| key(id)).collect()
}

fn back(ids: &[&str], behind: &str) -> Vec<(String, String, String)> {
    ids.iter()
        .map(|id| (id.to_string(), "A".to_string(), behind.to_string()))
        .collect()
}

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
