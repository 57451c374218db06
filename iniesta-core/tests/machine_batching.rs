//! How the machine paces its calls: receives run ahead of the handler
//! slots and wait for half the prefetch, and deletes wait for company
//! within their batch window.

use std::time::Duration;

use iniesta_core::machine::{Action, Input};
use iniesta_core::AcquireOutcome;

mod common;
use common::*;

/// Answers every receive among `acts` with as many messages as it asked
/// for, numbered from `*n`; returns how many.
fn fill(c: &mut iniesta_core::Consumer, acts: &[Action], n: &mut usize) -> usize {
    let mut sent = 0;
    for a in acts {
        if let Action::Receive { id, request } = a {
            let msgs: Vec<_> = (0..request.max_messages)
                .map(|_| {
                    *n += 1;
                    message(&format!("m{n}"), "E.svc")
                })
                .collect();
            sent += msgs.len();
            c.handle_input(
                t(0),
                Input::Received {
                    id: *id,
                    result: Ok(msgs),
                },
            );
        }
    }
    sent
}

fn asked(acts: &[Action]) -> Vec<u32> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Receive { request, .. } => Some(request.max_messages),
            _ => None,
        })
        .collect()
}

fn acquired_keys(acts: &[Action]) -> usize {
    acts.iter()
        .map(|a| match a {
            Action::Acquire { keys, .. } => keys.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn receives_run_ahead_of_the_slots_and_wait_for_half_the_prefetch() {
    let mut cfg = config();
    cfg.max_in_flight = 50;
    cfg.concurrent_receives = 5;
    let mut c = consumer(cfg);
    let mut n = 0;
    // The prefetch (50 by default) is asked for at once.
    let a = actions(&mut c);
    assert_eq!(asked(&a), [10; 5]);
    assert_eq!(fill(&mut c, &a, &mut n), 50);
    // All 50 take a slot (one acquire), and the prefetch is asked for
    // again: received ahead while they run.
    let a = actions(&mut c);
    assert_eq!(acquired_keys(&a), 50, "{a:?}");
    let Some(Action::Acquire { batch: locks, .. }) = a
        .iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
        .cloned()
    else {
        panic!("{a:?}");
    };
    assert_eq!(asked(&a), [10; 5], "{a:?}");
    // Those 50 wait: every slot is taken. Nothing more is received.
    fill(&mut c, &a, &mut n);
    let a = actions(&mut c);
    assert_eq!(acquired_keys(&a), 0, "no free slot: {a:?}");
    assert!(asked(&a).is_empty(), "prefetch full: {a:?}");
    let busy = |c: &mut iniesta_core::Consumer, index| {
        c.handle_input(
            t(1),
            Input::Acquired {
                batch: locks,
                index,
                outcome: AcquireOutcome::Busy,
            },
        )
    };
    // Four end (Busy): four waiting messages take their slots, and four
    // free places in the prefetch are fewer than half of it (a receive
    // asks for at least a full batch of 10 here): no receive yet.
    for index in 0..4 {
        busy(&mut c, index);
    }
    let a = actions(&mut c);
    assert_eq!(acquired_keys(&a), 4, "{a:?}");
    assert!(asked(&a).is_empty(), "4 of 50 free: no receive yet: {a:?}");
    // Six more: ten free places, one full receive.
    for index in 4..10 {
        busy(&mut c, index);
    }
    let a = actions(&mut c);
    assert_eq!(acquired_keys(&a), 6, "{a:?}");
    assert_eq!(asked(&a), [10], "{a:?}");
}

#[test]
fn deletes_wait_for_the_batch_window_unless_a_batch_is_full() {
    let mut cfg = config();
    cfg.delete_batch_window = Duration::from_millis(10);
    cfg.max_in_flight = 12;
    let mut c = consumer(cfg);
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive")
    };
    let msgs = (0..10)
        .map(|i| message(&format!("m{i}"), "E.svc"))
        .collect();
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(msgs),
        },
    );
    let Some(Action::Acquire { batch: locks, .. }) = actions(&mut c)
        .into_iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
    else {
        panic!("expected an acquire")
    };
    // All ten are duplicates of finished work: acked without dispatch.
    let done = |index| Input::Acquired {
        batch: locks,
        index,
        outcome: AcquireOutcome::Done,
    };
    for index in 0..9 {
        c.handle_input(t(1), done(index));
    }
    assert!(
        !actions(&mut c)
            .iter()
            .any(|a| matches!(a, Action::Delete { .. })),
        "nine deletes wait for company"
    );
    assert_eq!(c.poll_timeout(), Some(t(11)));
    c.handle_input(t(2), done(9));
    let a = actions(&mut c);
    assert_eq!(
        a,
        [Action::Delete {
            batch: batch(&a[0]),
            handles: (0..10).map(|i| handle(&format!("m{i}"))).collect(),
        }],
        "a full batch goes at once"
    );

    // A lone delete goes out when the window has passed.
    let mut cfg = config();
    cfg.delete_batch_window = Duration::from_millis(10);
    let mut c = consumer(cfg);
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], AcquireOutcome::Done);
    assert!(after.is_empty(), "{after:?}");
    c.handle_timeout(t(10));
    assert!(matches!(&actions(&mut c)[..], [Action::Delete { .. }]));
}

#[test]
fn a_slot_is_free_once_the_record_is_written_not_when_the_delete_answers() {
    let mut cfg = config();
    cfg.max_in_flight = 1;
    cfg.delete_batch_window = Duration::from_millis(10);
    let mut c = consumer(cfg);
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive")
    };
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(vec![message("m1", "E.svc"), message("m2", "E.svc")]),
        },
    );
    let a = actions(&mut c);
    let Some(Action::Acquire { batch, keys, .. }) = a
        .iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
        .cloned()
    else {
        panic!("{a:?}")
    };
    assert_eq!(keys, [key("m1")], "one slot: m2 waits");
    c.handle_input(
        t(1),
        Input::Acquired {
            batch,
            index: 0,
            outcome: acquired(),
        },
    );
    let [(m1, _)] = dispatches(&actions(&mut c))[..] else {
        panic!()
    };
    c.handle_input(
        t(2),
        Input::HandlerFinished {
            id: m1,
            outcome: iniesta_core::DispatchOutcome::Succeeded,
        },
    );
    let a = actions(&mut c);
    let Some(Action::Complete { batch, .. }) = a.first().cloned() else {
        panic!("{a:?}")
    };
    assert_eq!(acquired_keys(&a), 0, "the slot is held until the record");
    c.handle_input(
        t(3),
        Input::Completed {
            batch,
            index: 0,
            result: Ok(()),
        },
    );
    // m1's delete waits for its batch window; m2 takes the slot meanwhile.
    let a = actions(&mut c);
    assert!(
        !a.iter().any(|a| matches!(a, Action::Delete { .. })),
        "{a:?}"
    );
    let keys: Vec<_> = a
        .iter()
        .flat_map(|a| match a {
            Action::Acquire { keys, .. } => keys.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(keys, [key("m2")], "{a:?}");
}

#[test]
fn a_message_waiting_for_a_slot_is_kept_hidden_by_the_heartbeat() {
    let mut cfg = config();
    cfg.max_in_flight = 1;
    let mut c = consumer(cfg);
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive")
    };
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(vec![message("m1", "E.svc"), message("m2", "E.svc")]),
        },
    );
    let a = actions(&mut c);
    let Some(Action::Acquire { batch, .. }) = a
        .iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
        .cloned()
    else {
        panic!("{a:?}")
    };
    c.handle_input(
        t(0),
        Input::Acquired {
            batch,
            index: 0,
            outcome: acquired(),
        },
    );
    let _ = actions(&mut c);
    // The first heartbeat (6 s): m1's lock and visibility, and m2's
    // visibility though it does not run yet.
    assert_eq!(c.poll_timeout(), Some(t(6_000)));
    c.handle_timeout(t(6_000));
    let a = actions(&mut c);
    let hidden: Vec<_> = a
        .iter()
        .flat_map(|a| match a {
            Action::ChangeVisibility { entries, .. } => entries.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        hidden,
        [
            (handle("m1"), Duration::from_secs(10)),
            (handle("m2"), Duration::from_secs(10))
        ],
        "{a:?}"
    );
    assert!(a.iter().any(|a| matches!(a, Action::Extend { .. })));
}

#[test]
fn a_shutdown_returns_the_messages_waiting_for_a_slot_at_once() {
    let mut cfg = config();
    cfg.max_in_flight = 1;
    let mut c = consumer(cfg);
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive")
    };
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(vec![message("m1", "E.svc"), message("m2", "E.svc")]),
        },
    );
    let _ = actions(&mut c);
    c.shutdown(t(1));
    let a = actions(&mut c);
    let returned: Vec<_> = a
        .iter()
        .flat_map(|a| match a {
            Action::ChangeVisibility { entries, .. } => entries.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(returned, [(handle("m2"), Duration::ZERO)], "{a:?}");
    assert_eq!(acquired_keys(&a), 0, "m2 never takes a slot: {a:?}");
}

/// Answers every receive among `acts` with nothing, at `now`.
fn answer_empty(c: &mut iniesta_core::Consumer, acts: &[Action], now: u64) -> usize {
    let mut n = 0;
    for a in acts {
        if let Action::Receive { id, .. } = a {
            n += 1;
            c.handle_input(
                t(now),
                Input::Received {
                    id: *id,
                    result: Ok(Vec::new()),
                },
            );
        }
    }
    n
}

#[test]
fn an_idle_queue_keeps_one_long_poll_and_a_backlog_brings_the_others_back() {
    let mut cfg = config();
    cfg.max_in_flight = 100;
    cfg.concurrent_receives = 4;
    let wait = cfg.wait_time.as_millis() as u64;
    let mut c = consumer(cfg);
    // At start, all four go out.
    let a = actions(&mut c);
    assert_eq!(asked(&a), [10; 4], "{a:?}");
    // All four come back empty after their full wait: one long poll is
    // left, not four.
    assert_eq!(answer_empty(&mut c, &a, wait), 4);
    let a = actions(&mut c);
    assert_eq!(asked(&a), [10], "an idle queue: one receive: {a:?}");
    // It keeps coming back empty: still one.
    answer_empty(&mut c, &a, 2 * wait);
    let a = actions(&mut c);
    assert_eq!(asked(&a), [10], "{a:?}");
    // A full one: two go out (one to replace it, one more).
    let mut n = 0;
    fill(&mut c, &a, &mut n);
    let a = actions(&mut c);
    assert_eq!(asked(&a), [10; 2], "a full receive adds one: {a:?}");
    // Both full: four (two to replace them, two more; four at most).
    fill(&mut c, &a, &mut n);
    let a = actions(&mut c);
    assert_eq!(asked(&a), [10; 4], "{a:?}");
    fill(&mut c, &a, &mut n);
    let a = actions(&mut c);
    assert!(
        asked(&a).len() <= 4,
        "never more than concurrent_receives: {a:?}"
    );
}

/// Answers handed over together (`handle_inputs`) are handled as one at a
/// time would be, except that the work after them runs once: the waiting
/// messages take the same slots, and the free room goes out as one receive
/// instead of one as soon as half the prefetch is free.
#[test]
fn answers_handed_over_together_take_the_same_slots_and_one_receive() {
    let run = |together: bool| {
        let mut cfg = config();
        cfg.max_in_flight = 10;
        cfg.concurrent_receives = 2;
        let mut c = consumer(cfg);
        let mut n = 0;
        // Ten run (one acquire), ten more wait for a slot.
        let a = actions(&mut c);
        assert_eq!(fill(&mut c, &a, &mut n), 10, "{a:?}");
        let a = actions(&mut c);
        let Some(Action::Acquire { batch, .. }) = a
            .iter()
            .find(|a| matches!(a, Action::Acquire { .. }))
            .cloned()
        else {
            panic!("{a:?}");
        };
        assert_eq!(fill(&mut c, &a, &mut n), 10, "{a:?}");
        assert!(actions(&mut c).is_empty());
        // Seven of the ten are busy elsewhere: their slots go to seven of
        // the waiting messages.
        let busy = (0..7).map(|index| Input::Acquired {
            batch,
            index,
            outcome: AcquireOutcome::Busy,
        });
        if together {
            c.handle_inputs(t(1), busy);
        } else {
            busy.for_each(|input| c.handle_input(t(1), input));
        }
        let a = actions(&mut c);
        let keys: Vec<_> = a
            .iter()
            .flat_map(|a| match a {
                Action::Acquire { keys, .. } => keys.clone(),
                _ => Vec::new(),
            })
            .collect();
        (keys, asked(&a))
    };
    let (one_by_one, asked_one_by_one) = run(false);
    let (together, asked_together) = run(true);
    assert_eq!(one_by_one.len(), 7, "{one_by_one:?}");
    assert_eq!(together, one_by_one, "the same messages take the slots");
    assert_eq!(asked_one_by_one, [5], "half the prefetch free: a receive");
    assert_eq!(asked_together, [7], "all the room in one receive");
}
