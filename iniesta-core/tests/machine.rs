//! The consumer state machine, step by step: each test feeds inputs by hand
//! and checks the actions that come out.

use std::time::Duration;

use iniesta_core::machine::{
    AbortReason, Action, Backoff, Consumer, DispatchOutcome, Event, Input,
};
use iniesta_core::{AcquireOutcome, BackendError, LockError, LockToken, ReceiptHandle};

mod common;
use common::*;

#[test]
fn success_completes_then_deletes() {
    let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let Some(Action::Dispatch { id, delivery, .. }) = after
        .into_iter()
        .find(|a| matches!(a, Action::Dispatch { .. }))
    else {
        panic!("expected a dispatch");
    };
    assert_eq!(delivery.message.key(), "m1");
    assert_eq!(delivery.token, LockToken::new("tok"));
    c.handle_input(
        t(5),
        Input::Dispatched {
            id,
            outcome: DispatchOutcome::Succeeded,
        },
    );
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::Complete { entries, .. }] if entries.len() == 1 && entries[0].1 == "sqs:event:m1"),
        "{a:?}"
    );
    assert!(
        !a.iter().any(|a| matches!(a, Action::Delete { .. })),
        "no delete before the completion record is written"
    );
    c.handle_input(t(6), Input::Completed { id, result: Ok(()) });
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::Delete { entries }] if entries[0].1 == ReceiptHandle("rh-m1".into())),
        "{a:?}"
    );
    c.handle_input(t(7), Input::Deleted { id, result: Ok(()) });
    assert_eq!(c.in_flight(), 0);
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::Deleted { .. })));
}

#[test]
fn handlers_that_end_together_share_one_complete_call() {
    let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
    let after = receive_and_lock(
        &mut c,
        vec![message("m1", "E.svc"), message("m2", "E.svc")],
        acquired(),
    );
    let ids: Vec<_> = after
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2, "{after:?}");
    for &id in &ids {
        c.handle_input(
            t(5),
            Input::Dispatched {
                id,
                outcome: DispatchOutcome::Succeeded,
            },
        );
    }
    let a = actions(&mut c);
    let [Action::Complete { entries, .. }] = &a[..] else {
        panic!("expected one complete for both, got {a:?}");
    };
    let keys: Vec<&str> = entries.iter().map(|(_, key, _)| key.as_str()).collect();
    assert_eq!(keys, ["sqs:event:m1", "sqs:event:m2"]);
    // Answered one by one: a failure of one entry is retried alone.
    c.handle_input(
        t(6),
        Input::Completed {
            id: ids[0],
            result: Ok(()),
        },
    );
    c.handle_input(
        t(6),
        Input::Completed {
            id: ids[1],
            result: Err(LockError::Unavailable("blip".into())),
        },
    );
    let a = actions(&mut c);
    assert!(
        a.iter().all(|a| !matches!(a, Action::Complete { .. })),
        "the retry waits for its delay: {a:?}"
    );
    c.handle_timeout(t(60_000));
    let a = actions(&mut c);
    let retried: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Complete { entries, .. } => {
                Some(entries.iter().map(|e| e.0).collect::<Vec<_>>())
            }
            _ => None,
        })
        .collect();
    assert_eq!(retried, vec![vec![ids[1]]], "{a:?}");
}

#[test]
fn busy_is_skipped_done_is_acked_unavailable_is_left() {
    for (outcome, expect_delete) in [
        (AcquireOutcome::Busy, false),
        (AcquireOutcome::Done, true),
        (
            AcquireOutcome::Unavailable(LockError::Unavailable("down".into())),
            false,
        ),
    ] {
        let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
        let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], outcome.clone());
        assert!(
            !after.iter().any(|a| matches!(a, Action::Dispatch { .. })),
            "{outcome:?}: no dispatch"
        );
        assert_eq!(
            after.iter().any(|a| matches!(a, Action::Delete { .. })),
            expect_delete,
            "{outcome:?}: {after:?}"
        );
    }
}

#[test]
fn failure_releases_and_backs_off() {
    let mut cfg = config();
    cfg.failure_backoff = Some(Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(60),
    });
    let mut c = Consumer::new(cfg, handlers(), t(0)).unwrap();
    let mut m = message("m1", "E.svc");
    m.attributes.receive_count = Some(3);
    let after = receive_and_lock(&mut c, vec![m], acquired());
    let Some(Action::Dispatch { id, .. }) = after
        .into_iter()
        .find(|a| matches!(a, Action::Dispatch { .. }))
    else {
        panic!("expected a dispatch");
    };
    c.handle_input(
        t(1),
        Input::Dispatched {
            id,
            outcome: DispatchOutcome::Panicked("boom".into()),
        },
    );
    let a = actions(&mut c);
    assert!(matches!(&a[..], [Action::Release { .. }]), "{a:?}");
    c.handle_input(t(2), Input::Released { id, result: Ok(()) });
    let a = actions(&mut c);
    // 2 s × 2^(3-1) = 8 s.
    assert!(
        matches!(&a[..], [Action::ChangeVisibility { entries }] if entries[0].2 == Duration::from_secs(8)),
        "{a:?}"
    );
}

#[test]
fn backoff_is_exponential_and_clamped() {
    let b = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(100),
    };
    assert_eq!(b.delay(1), Duration::from_secs(1));
    assert_eq!(b.delay(4), Duration::from_secs(8));
    assert_eq!(b.delay(60), Duration::from_secs(100));
    let huge = Backoff {
        base: Duration::from_secs(3600),
        max: Duration::MAX,
    };
    assert_eq!(
        huge.delay(u32::MAX),
        Duration::from_secs(12 * 3600),
        "SQS's 12 h limit"
    );
}

#[test]
fn no_handler_is_released_not_deleted() {
    let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
    let after = receive_and_lock(&mut c, vec![message("m1", "Unknown.x")], acquired());
    assert!(matches!(&after[..], [Action::Release { .. }]), "{after:?}");
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::NoHandler { .. })));
}

#[test]
fn malformed_messages_are_reported_and_left() {
    let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
    let mut bad = message("m1", "E.svc");
    bad.message_attributes.to_mut().clear();
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!()
    };
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(vec![bad]),
        },
    );
    let a = actions(&mut c);
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Delete { .. } | Action::Acquire { .. })),
        "{a:?}"
    );
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::Malformed { message_id, .. } if message_id == "m1")));
    assert_eq!(c.in_flight(), 0, "the slot is free again");
}

#[test]
fn heartbeat_extends_lock_and_visibility_and_lock_expiry_aborts() {
    let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let Some(Action::Dispatch { id, .. }) = after
        .into_iter()
        .find(|a| matches!(a, Action::Dispatch { .. }))
    else {
        panic!()
    };
    // Heartbeat at 0.6 × 10 s.
    assert_eq!(c.poll_timeout(), Some(t(6_000)));
    c.handle_timeout(t(6_000));
    let a = actions(&mut c);
    assert!(
        a.iter().any(|a| matches!(a, Action::Extend { .. })),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ChangeVisibility { .. })),
        "{a:?}"
    );
    // The extend is never answered: at the end of the validity the handler is aborted.
    c.handle_timeout(t(10_000));
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::Abort { id: aborted, reason: AbortReason::LockExpired }] if *aborted == id),
        "{a:?}"
    );
    c.handle_input(
        t(10_001),
        Input::Dispatched {
            id,
            outcome: DispatchOutcome::Aborted,
        },
    );
    assert!(matches!(&actions(&mut c)[..], [Action::Release { .. }]));
}

#[test]
fn receive_errors_back_off_exponentially() {
    let mut c = Consumer::new(config(), handlers(), t(0)).unwrap();
    let mut last = t(0);
    let mut pauses = Vec::new();
    for _ in 0..4 {
        let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
            panic!("no receive")
        };
        c.handle_input(
            last,
            Input::Received {
                id,
                result: Err(BackendError::new("InternalError", "x")),
            },
        );
        assert!(actions(&mut c).is_empty(), "no receive during the pause");
        let resume = c.poll_timeout().expect("a pause");
        pauses.push(resume.saturating_duration_since(last));
        c.handle_timeout(resume);
        last = resume;
    }
    assert_eq!(pauses, [100, 200, 400, 800].map(Duration::from_millis));
}

#[test]
fn shutdown_cancels_receives_waits_for_handlers_and_returns_unstarted() {
    let mut cfg = config();
    cfg.max_in_flight = 3;
    let mut c = Consumer::new(cfg, handlers(), t(0)).unwrap();
    let Some(Action::Receive { id: rid, .. }) = actions(&mut c).into_iter().next() else {
        panic!()
    };
    c.handle_input(
        t(0),
        Input::Received {
            id: rid,
            result: Ok(vec![message("m1", "E.svc"), message("m2", "E.svc")]),
        },
    );
    let a = actions(&mut c);
    let Some(Action::Acquire { entries, .. }) =
        a.iter().find(|a| matches!(a, Action::Acquire { .. }))
    else {
        panic!()
    };
    let entries = entries.clone();
    let Some(Action::Receive {
        id: outstanding,
        request,
    }) = a.iter().find(|a| matches!(a, Action::Receive { .. }))
    else {
        panic!("a receive for the free slot: {a:?}")
    };
    assert_eq!(request.max_messages, 1);
    let outstanding = *outstanding;
    c.handle_input(
        t(0),
        Input::Acquired {
            id: entries[0].0,
            outcome: acquired(),
        },
    );
    let running = entries[0].0;
    let _ = actions(&mut c);
    c.handle_input(t(1), Input::Shutdown);
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::CancelReceive { id }] if *id == outstanding),
        "{a:?}"
    );
    // The cancelled receive is still answered (here: nothing arrived).
    c.handle_input(
        t(1),
        Input::Received {
            id: outstanding,
            result: Ok(vec![]),
        },
    );
    // m2's lock arrives after shutdown began: released and returned, not run.
    c.handle_input(
        t(1),
        Input::Acquired {
            id: entries[1].0,
            outcome: acquired(),
        },
    );
    let a = actions(&mut c);
    assert!(matches!(&a[..], [Action::Release { .. }]), "{a:?}");
    c.handle_input(
        t(2),
        Input::Released {
            id: entries[1].0,
            result: Ok(()),
        },
    );
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::ChangeVisibility { entries }] if entries[0].2 == Duration::ZERO),
        "{a:?}"
    );
    c.handle_input(
        t(3),
        Input::VisibilityChanged {
            id: entries[1].0,
            result: Ok(()),
        },
    );
    assert!(
        actions(&mut c).is_empty(),
        "no new receive while shutting down"
    );
    assert!(!c.is_finished(), "m1's handler still runs");
    // Grace (30 s) runs out: the handler is aborted.
    assert_eq!(
        c.poll_timeout(),
        Some(t(6_000)),
        "the heartbeat comes first"
    );
    c.handle_timeout(t(30_001));
    let a = actions(&mut c);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Abort { id, reason: AbortReason::ShutdownGrace } if *id == running)),
        "{a:?}"
    );
    c.handle_input(
        t(30_002),
        Input::Dispatched {
            id: running,
            outcome: DispatchOutcome::Aborted,
        },
    );
    let _ = actions(&mut c);
    c.handle_input(
        t(30_003),
        Input::Released {
            id: running,
            result: Ok(()),
        },
    );
    let _ = actions(&mut c);
    c.handle_input(
        t(30_004),
        Input::VisibilityChanged {
            id: running,
            result: Ok(()),
        },
    );
    assert!(c.is_finished());
    assert!(events(&mut c).iter().any(|e| matches!(e, Event::Stopped)));
}

#[test]
fn invalid_configuration_is_refused() {
    let mut cfg = config();
    cfg.heartbeat_interval = cfg.lock_timeout;
    let err = Consumer::new(cfg, handlers(), t(0)).unwrap_err();
    assert_eq!(err.field, "heartbeat_interval");
    let mut cfg = config();
    cfg.max_in_flight = 0;
    assert!(Consumer::new(cfg, handlers(), t(0)).is_err());
}

#[test]
fn with_many_slots_a_receive_waits_for_a_tenth_of_them() {
    let mut cfg = config();
    cfg.max_in_flight = 50;
    cfg.concurrent_receives = 5;
    let mut c = Consumer::new(cfg, handlers(), t(0)).unwrap();
    let receives: Vec<_> = actions(&mut c)
        .into_iter()
        .filter_map(|a| match a {
            Action::Receive { id, request } => Some((id, request.max_messages)),
            _ => None,
        })
        .collect();
    assert_eq!(
        receives.iter().map(|r| r.1).sum::<u32>(),
        50,
        "{receives:?}"
    );
    // Every receive comes back: 50 messages, every slot taken.
    let mut n = 0;
    for (id, max) in receives {
        let msgs = (0..max)
            .map(|_| {
                n += 1;
                message(&format!("m{n}"), "E.svc")
            })
            .collect();
        c.handle_input(
            t(0),
            Input::Received {
                id,
                result: Ok(msgs),
            },
        );
    }
    let lock = actions(&mut c);
    let keys: Vec<_> = lock
        .iter()
        .flat_map(|a| match a {
            Action::Acquire { entries, .. } => entries.iter().map(|e| e.0).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(keys.len(), 50);
    // Four end (Busy: not dispatched, forgotten): four free slots are
    // fewer than a tenth of 50, so no receive yet.
    for &id in &keys[..4] {
        c.handle_input(
            t(1),
            Input::Acquired {
                id,
                outcome: AcquireOutcome::Busy,
            },
        );
    }
    let a = actions(&mut c);
    assert!(
        !a.iter().any(|a| matches!(a, Action::Receive { .. })),
        "4 of 50 free: no receive yet: {a:?}"
    );
    // The fifth frees a tenth: one receive, for the five free slots.
    c.handle_input(
        t(1),
        Input::Acquired {
            id: keys[4],
            outcome: AcquireOutcome::Busy,
        },
    );
    let a = actions(&mut c);
    let asked: Vec<u32> = a
        .iter()
        .filter_map(|a| match a {
            Action::Receive { request, .. } => Some(request.max_messages),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![5], "{a:?}");
}

#[test]
fn an_empty_short_poll_pauses_the_next_receive() {
    let mut cfg = config();
    cfg.wait_time = Duration::ZERO;
    let mut c = Consumer::new(cfg, handlers(), t(0)).unwrap();
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive")
    };
    c.handle_input(
        t(5),
        Input::Received {
            id,
            result: Ok(vec![]),
        },
    );
    assert!(actions(&mut c).is_empty(), "no busy loop on an empty queue");
    assert_eq!(c.poll_timeout(), Some(t(105)));
    c.handle_timeout(t(105));
    assert!(matches!(&actions(&mut c)[..], [Action::Receive { .. }]));
}

#[test]
fn deletes_wait_for_the_batch_window_unless_a_batch_is_full() {
    let mut cfg = config();
    cfg.delete_batch_window = Duration::from_millis(10);
    cfg.max_in_flight = 12;
    let mut c = Consumer::new(cfg, handlers(), t(0)).unwrap();
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
    let Some(Action::Acquire { entries, .. }) = actions(&mut c)
        .into_iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
    else {
        panic!("expected an acquire")
    };
    // All ten are duplicates of finished work: acked without dispatch.
    for (id, _) in &entries[..9] {
        c.handle_input(
            t(1),
            Input::Acquired {
                id: *id,
                outcome: AcquireOutcome::Done,
            },
        );
    }
    assert!(
        !actions(&mut c)
            .iter()
            .any(|a| matches!(a, Action::Delete { .. })),
        "nine deletes wait for company"
    );
    assert_eq!(c.poll_timeout(), Some(t(11)));
    c.handle_input(
        t(2),
        Input::Acquired {
            id: entries[9].0,
            outcome: AcquireOutcome::Done,
        },
    );
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::Delete { entries }] if entries.len() == 10),
        "a full batch goes at once: {a:?}"
    );

    // A lone delete goes out when the window has passed.
    let mut cfg = config();
    cfg.delete_batch_window = Duration::from_millis(10);
    let mut c = Consumer::new(cfg, handlers(), t(0)).unwrap();
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], AcquireOutcome::Done);
    assert!(
        !after.iter().any(|a| matches!(a, Action::Delete { .. })),
        "{after:?}"
    );
    c.handle_timeout(t(10));
    assert!(matches!(&actions(&mut c)[..], [Action::Delete { .. }]));
}
