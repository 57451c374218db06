//! The consumer state machine, step by step: each test feeds inputs by hand
//! and checks the actions that come out.

use std::time::Duration;

use iniesta_core::machine::{
    AbortReason, Action, Backoff, DispatchOutcome, Event, HandlerId, Input, Route,
};
use iniesta_core::{AcquireOutcome, BackendError, LockError, ReceiveRequest};

mod common;
use common::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[test]
fn success_completes_then_deletes() {
    let mut c = consumer(config());
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let [(id, m)] = &dispatches(&after)[..] else {
        panic!("expected a dispatch: {after:?}");
    };
    let id = *id;
    assert_eq!(m.key(), "m1");
    assert_eq!(
        after,
        [Action::Dispatch {
            id,
            route: Route::Event,
            handler: HandlerId(0),
            message: m.clone(),
            token: tok(),
        }]
    );
    c.handle_input(
        t(5),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::Succeeded,
        },
    );
    // No delete before the completion record is written.
    let a = actions(&mut c);
    let complete = batch(&a[0]);
    assert_eq!(
        a,
        [Action::Complete {
            batch: complete,
            entries: vec![(key("m1"), tok())],
            keep_for: DAY,
        }]
    );
    c.handle_input(
        t(6),
        Input::Completed {
            batch: complete,
            index: 0,
            result: Ok(()),
        },
    );
    let a = actions(&mut c);
    let delete = batch(&a[0]);
    assert_eq!(
        a,
        [Action::Delete {
            batch: delete,
            handles: vec![handle("m1")],
        }]
    );
    c.handle_input(
        t(7),
        Input::Deleted {
            batch: delete,
            index: 0,
            result: Ok(()),
        },
    );
    assert_eq!(c.in_flight(), 0);
    assert!(events(&mut c).contains(&Event::Deleted { message: m.clone() }));
}

#[test]
fn handlers_that_end_together_share_one_complete_call() {
    let mut c = consumer(config());
    let after = receive_and_lock(
        &mut c,
        vec![message("m1", "E.svc"), message("m2", "E.svc")],
        acquired(),
    );
    let ids: Vec<_> = dispatches(&after).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 2, "{after:?}");
    for &id in &ids {
        c.handle_input(
            t(5),
            Input::HandlerFinished {
                id,
                outcome: DispatchOutcome::Succeeded,
            },
        );
    }
    let a = actions(&mut c);
    let both = batch(&a[0]);
    assert_eq!(
        a,
        [Action::Complete {
            batch: both,
            entries: vec![(key("m1"), tok()), (key("m2"), tok())],
            keep_for: DAY,
        }],
        "one complete for both"
    );
    // Answered one by one, in any order: a failure of one entry is retried
    // alone.
    c.handle_input(
        t(6),
        Input::Completed {
            batch: both,
            index: 1,
            result: Err(LockError::Unavailable("blip".into())),
        },
    );
    c.handle_input(
        t(6),
        Input::Completed {
            batch: both,
            index: 0,
            result: Ok(()),
        },
    );
    let a = actions(&mut c);
    assert_eq!(
        a,
        [Action::Delete {
            batch: batch(&a[0]),
            handles: vec![handle("m1")],
        }],
        "the retry waits for its delay"
    );
    c.handle_timeout(t(60_000));
    let a = actions(&mut c);
    assert_eq!(
        a,
        [Action::Complete {
            batch: batch(&a[0]),
            entries: vec![(key("m2"), tok())],
            keep_for: DAY,
        }]
    );
}

#[test]
fn an_answer_counts_once_and_only_for_its_own_batch() {
    let mut c = consumer(config());
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let [(id, _)] = dispatches(&after)[..] else {
        panic!("expected a dispatch: {after:?}");
    };
    c.handle_input(
        t(5),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::Succeeded,
        },
    );
    let complete = batch(&actions(&mut c)[0]);
    // A delete answer naming the complete is not the complete's answer.
    c.handle_input(
        t(6),
        Input::Deleted {
            batch: complete,
            index: 0,
            result: Ok(()),
        },
    );
    assert!(actions(&mut c).is_empty());
    let fail = Input::Completed {
        batch: complete,
        index: 0,
        result: Err(LockError::NotHeld),
    };
    c.handle_input(t(6), fail.clone());
    let a = actions(&mut c);
    assert!(matches!(&a[..], [Action::Delete { .. }]), "{a:?}");
    // A repeated answer, or one for an entry the batch never had, changes
    // nothing.
    c.handle_input(t(7), fail);
    c.handle_input(
        t(7),
        Input::Completed {
            batch: complete,
            index: 1,
            result: Ok(()),
        },
    );
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.in_flight(), 1, "still waiting for its delete");
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
        let mut c = consumer(config());
        let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], outcome.clone());
        let expected = if expect_delete {
            vec![Action::Delete {
                batch: batch(&after[0]),
                handles: vec![handle("m1")],
            }]
        } else {
            Vec::new()
        };
        assert_eq!(after, expected, "{outcome:?}: no dispatch");
    }
}

#[test]
fn failure_releases_and_backs_off() {
    let mut cfg = config();
    cfg.failure_backoff = Some(Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(60),
    });
    let mut c = consumer(cfg);
    let mut m = message("m1", "E.svc");
    m.attributes.receive_count = Some(3);
    let after = receive_and_lock(&mut c, vec![m], acquired());
    let [(id, _)] = dispatches(&after)[..] else {
        panic!("expected a dispatch: {after:?}");
    };
    c.handle_input(
        t(1),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::Panicked("boom".into()),
        },
    );
    assert_eq!(
        actions(&mut c),
        [Action::Release {
            id,
            key: key("m1"),
            token: tok(),
        }]
    );
    c.handle_input(t(2), Input::Released { id, result: Ok(()) });
    let a = actions(&mut c);
    // 2 s × 2^(3-1) = 8 s.
    assert_eq!(
        a,
        [Action::ChangeVisibility {
            batch: batch(&a[0]),
            entries: vec![(handle("m1"), Duration::from_secs(8))],
        }]
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
    let mut c = consumer(config());
    let after = receive_and_lock(&mut c, vec![message("m1", "Unknown.x")], acquired());
    let [Action::Release { id, .. }] = after[..] else {
        panic!("expected a release: {after:?}");
    };
    assert_eq!(
        after,
        [Action::Release {
            id,
            key: key("m1"),
            token: tok(),
        }]
    );
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::NoHandler { .. })));
}

#[test]
fn malformed_messages_are_reported_and_left() {
    let mut c = consumer(config());
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
        .any(|e| matches!(e, Event::Malformed { sqs_message_id, .. } if sqs_message_id == "m1")));
    assert_eq!(c.in_flight(), 0, "the slot is free again");
}

#[test]
fn heartbeat_extends_lock_and_visibility_and_lock_expiry_aborts() {
    let mut c = consumer(config());
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let [(id, _)] = dispatches(&after)[..] else {
        panic!("expected a dispatch: {after:?}");
    };
    // Heartbeat at 0.6 × 10 s.
    assert_eq!(c.poll_timeout(), Some(t(6_000)));
    c.handle_timeout(t(6_000));
    let a = actions(&mut c);
    assert_eq!(
        a,
        [
            Action::Extend {
                id,
                key: key("m1"),
                token: tok(),
                ttl: Duration::from_secs(10),
            },
            Action::ChangeVisibility {
                batch: batch(&a[1]),
                entries: vec![(handle("m1"), Duration::from_secs(10))],
            },
        ]
    );
    // The extend is never answered: at the end of the validity the handler
    // is aborted.
    c.handle_timeout(t(10_000));
    assert_eq!(
        actions(&mut c),
        [Action::Abort {
            id,
            reason: AbortReason::LockExpired
        }]
    );
    c.handle_input(
        t(10_001),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::Aborted,
        },
    );
    assert!(matches!(&actions(&mut c)[..], [Action::Release { .. }]));
}

#[test]
fn receive_errors_back_off_exponentially() {
    let mut c = consumer(config());
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
fn invalid_configuration_is_refused() {
    let mut cfg = config();
    cfg.heartbeat_interval = cfg.lock_timeout;
    let err = iniesta_core::Consumer::new(cfg, &handlers(), t(0)).unwrap_err();
    assert_eq!(err.field, "heartbeat_interval");
    let mut cfg = config();
    cfg.max_in_flight = 0;
    assert!(iniesta_core::Consumer::new(cfg, &handlers(), t(0)).is_err());
}

#[test]
fn an_empty_short_poll_pauses_the_next_receive() {
    let mut cfg = config();
    cfg.wait_time = Duration::ZERO;
    let mut c = consumer(cfg);
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
    let a = actions(&mut c);
    let [Action::Receive { id, .. }] = a[..] else {
        panic!("expected a receive: {a:?}");
    };
    assert_eq!(
        a,
        [Action::Receive {
            id,
            request: ReceiveRequest {
                max_messages: 2,
                wait_time: Duration::ZERO,
                visibility_timeout: None,
            },
        }]
    );
}
