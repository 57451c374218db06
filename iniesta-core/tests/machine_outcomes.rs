//! What the machine does with each way a handler can end: a retry after a
//! delay it asks for, a permanent failure (left for the dead-letter queue
//! or deleted), and a handler that outlives the handler timeout.

use std::time::Duration;

use iniesta_core::machine::{AbortReason, Action, Consumer, DispatchOutcome, Event, Input};
use iniesta_core::{ErrorChain, HandlerError, LockKey, MessageId, ReceiptHandle, Retry};

mod common;
use common::*;

/// Runs `m1` up to its dispatch on `c`; the dispatch's id.
fn dispatch_one(c: &mut Consumer) -> MessageId {
    dispatch_one_noting(c).0
}

/// [`dispatch_one`], with every action up to the dispatch.
fn dispatch_one_noting(c: &mut Consumer) -> (MessageId, Vec<Action>) {
    let Some(Action::Receive { id: rid, .. }) = actions(c).into_iter().next() else {
        panic!("expected a receive first");
    };
    c.handle_input(
        t(0),
        Input::Received {
            id: rid,
            result: Ok(vec![message("m1", "E.svc")]),
        },
    );
    let mut seen = actions(c);
    let Some(Action::Acquire { batch, .. }) =
        seen.iter().find(|a| matches!(a, Action::Acquire { .. }))
    else {
        panic!("expected an acquire: {seen:?}");
    };
    c.handle_input(
        t(0),
        Input::Acquired {
            batch: *batch,
            index: 0,
            outcome: acquired(),
        },
    );
    seen.extend(actions(c));
    let [(id, _)] = dispatches(&seen)[..] else {
        panic!("expected a dispatch: {seen:?}");
    };
    events(c);
    (id, seen)
}

fn failed(retry: Retry) -> DispatchOutcome {
    DispatchOutcome::Failed {
        error: ErrorChain::message("no"),
        retry,
    }
}

/// The visibility changes among `acts`: (handle, delay).
fn returns(acts: &[Action]) -> Vec<(ReceiptHandle, Duration)> {
    acts.iter()
        .flat_map(|a| match a {
            Action::ChangeVisibility { entries, .. } => entries.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// Answers every release among `acts` with success; the keys released.
fn answer_releases(c: &mut Consumer, acts: &[Action]) -> Vec<LockKey> {
    let mut keys = Vec::new();
    for a in acts {
        if let Action::Release { id, key, .. } = a {
            keys.push(key.clone());
            c.handle_input(
                t(0),
                Input::Released {
                    id: *id,
                    result: Ok(()),
                },
            );
        }
    }
    keys
}

#[test]
fn a_retry_after_hides_the_message_for_the_delay_it_asks() {
    let mut c = consumer(config());
    let id = dispatch_one(&mut c);
    c.handle_input(
        t(10),
        Input::HandlerFinished {
            id,
            outcome: failed(Retry::After(Duration::from_secs(300))),
        },
    );
    let acts = actions(&mut c);
    assert_eq!(answer_releases(&mut c, &acts), [key("m1")]);
    assert_eq!(
        returns(&actions(&mut c)),
        [(handle("m1"), Duration::from_secs(300))]
    );
}

#[test]
fn a_retry_after_longer_than_sqs_allows_is_capped_at_twelve_hours() {
    let mut c = consumer(config());
    let id = dispatch_one(&mut c);
    c.handle_input(
        t(10),
        Input::HandlerFinished {
            id,
            outcome: failed(Retry::After(Duration::from_secs(48 * 3600))),
        },
    );
    let acts = actions(&mut c);
    answer_releases(&mut c, &acts);
    assert_eq!(
        returns(&actions(&mut c)),
        [(handle("m1"), Duration::from_secs(12 * 3600))]
    );
}

#[test]
fn a_permanent_failure_is_handed_back_at_once_and_never_dispatched_again() {
    let mut c = consumer(config());
    let (id, mut seen) = dispatch_one_noting(&mut c);
    c.handle_input(
        t(10),
        Input::HandlerFinished {
            id,
            outcome: failed(Retry::Never),
        },
    );
    let evs = events(&mut c);
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::GivenUp { deleted: false, .. })),
        "{evs:?}"
    );
    let acts = actions(&mut c);
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Complete { .. })),
        "no completion record: the dead-letter queue keeps it: {acts:?}"
    );
    assert_eq!(answer_releases(&mut c, &acts), [key("m1")]);
    let back = actions(&mut c);
    assert_eq!(returns(&back), [(handle("m1"), Duration::ZERO)]);
    c.handle_input(
        t(11),
        Input::VisibilityChanged {
            batch: batch(&back[0]),
            index: 0,
            result: Ok(()),
        },
    );
    seen.extend(acts);
    seen.extend(back);
    seen.extend(actions(&mut c));

    // Received again (receive count 2): handed back, never locked.
    let mut again = message("m1", "E.svc");
    again.attributes.receive_count = Some(2);
    let receive = seen.iter().find_map(|a| match a {
        Action::Receive { id, .. } => Some(*id),
        _ => None,
    });
    let rid = receive.unwrap_or_else(|| panic!("a receive for the free slot: {seen:?}"));
    c.handle_input(
        t(20),
        Input::Received {
            id: rid,
            result: Ok(vec![again]),
        },
    );
    let acts = actions(&mut c);
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Acquire { .. })),
        "a message given up on is not locked again: {acts:?}"
    );
    assert_eq!(returns(&acts), [(handle("m1"), Duration::ZERO)]);
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::HandedBack { .. })));
}

#[test]
fn a_permanent_failure_is_recorded_and_deleted_when_configured() {
    let mut cfg = config();
    cfg.delete_permanent_failures = true;
    let mut c = consumer(cfg);
    let id = dispatch_one(&mut c);
    c.handle_input(
        t(10),
        Input::HandlerFinished {
            id,
            outcome: failed(Retry::Never),
        },
    );
    let acts = actions(&mut c);
    let Some(Action::Complete { batch, entries, .. }) =
        acts.iter().find(|a| matches!(a, Action::Complete { .. }))
    else {
        panic!("expected a completion record: {acts:?}");
    };
    assert_eq!(entries[0].0, key("m1"));
    c.handle_input(
        t(11),
        Input::Completed {
            batch: *batch,
            index: 0,
            result: Ok(()),
        },
    );
    let acts = actions(&mut c);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Delete { handles, .. } if handles == &[handle("m1")])),
        "{acts:?}"
    );
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::GivenUp { deleted: true, .. })));
}

#[test]
fn a_handler_past_the_timeout_is_aborted_and_retried() {
    let mut cfg = config();
    cfg.handler_timeout = Some(Duration::from_secs(3));
    let mut c = consumer(cfg);
    let id = dispatch_one(&mut c);
    // Heartbeats keep the lock alive (every 6 s), so only the timeout
    // stops a hung handler.
    assert_eq!(c.poll_timeout(), Some(t(3_000)));
    c.handle_timeout(t(3_000));
    assert_eq!(
        actions(&mut c),
        [Action::Abort {
            id,
            reason: AbortReason::TimedOut
        }]
    );
    assert!(events(&mut c).iter().any(|e| matches!(
        e,
        Event::Aborting {
            reason: AbortReason::TimedOut,
            ..
        }
    )));
    c.handle_input(
        t(3_001),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::Aborted,
        },
    );
    let acts = actions(&mut c);
    assert_eq!(answer_releases(&mut c, &acts), [key("m1")]);
}

#[test]
fn without_a_timeout_a_running_handler_wakes_the_machine_only_for_heartbeats() {
    let mut c = consumer(config());
    dispatch_one(&mut c);
    assert_eq!(c.poll_timeout(), Some(t(6_000)));
}

#[test]
fn a_zero_handler_timeout_is_refused() {
    let mut cfg = config();
    cfg.handler_timeout = Some(Duration::ZERO);
    let err = Consumer::new(cfg, &handlers(), t(0)).unwrap_err();
    assert_eq!(err.field, "handler_timeout");
}

#[test]
fn a_failed_outcome_carries_the_whole_error_chain_and_the_retry() {
    let inner = std::io::Error::other("connection refused");
    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Query(#[source] std::io::Error);
    let e = HandlerError::retry_after(Duration::from_secs(5), Query(inner));
    let DispatchOutcome::Failed { error, retry } = DispatchOutcome::failed(&e) else {
        panic!()
    };
    assert_eq!(retry, Retry::After(Duration::from_secs(5)));
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        ["query failed", "connection refused"]
    );
    assert_eq!(format!("{e:#}"), "query failed: connection refused");
}

#[test]
fn a_message_given_up_on_and_received_many_times_waits_instead_of_spinning() {
    let mut cfg = config();
    cfg.failure_backoff = Some(iniesta_core::Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(60),
    });
    let mut c = consumer(cfg);
    let (id, mut seen) = dispatch_one_noting(&mut c);
    c.handle_input(
        t(10),
        Input::HandlerFinished {
            id,
            outcome: failed(Retry::Never),
        },
    );
    let acts = actions(&mut c);
    answer_releases(&mut c, &acts);
    let back = actions(&mut c);
    c.handle_input(
        t(11),
        Input::VisibilityChanged {
            batch: batch(&back[0]),
            index: 0,
            result: Ok(()),
        },
    );
    seen.extend(acts);
    seen.extend(actions(&mut c));
    let rid = seen
        .iter()
        .find_map(|a| match a {
            Action::Receive { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a receive");
    // Received for the 11th time: no redrive policy took it, so it waits.
    let mut again = message("m1", "E.svc");
    again.attributes.receive_count = Some(11);
    c.handle_input(
        t(20),
        Input::Received {
            id: rid,
            result: Ok(vec![again]),
        },
    );
    let acts = actions(&mut c);
    assert!(!acts.iter().any(|a| matches!(a, Action::Acquire { .. })));
    let delays: Vec<Duration> = returns(&acts).into_iter().map(|(_, d)| d).collect();
    assert_eq!(delays.len(), 1, "{acts:?}");
    assert!(delays[0] >= Duration::from_secs(60), "{delays:?}");
}

#[test]
fn without_a_prefetch_only_free_slots_are_received() {
    let mut cfg = config();
    cfg.max_in_flight = 2;
    cfg.prefetch = Some(0);
    let mut c = consumer(cfg);
    let a = actions(&mut c);
    let Some(Action::Receive { id, request }) = a.first().cloned() else {
        panic!("{a:?}")
    };
    assert_eq!(request.max_messages, 2);
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(vec![message("m1", "E.svc"), message("m2", "E.svc")]),
        },
    );
    let a = actions(&mut c);
    assert!(
        !a.iter().any(|a| matches!(a, Action::Receive { .. })),
        "both slots taken, nothing received ahead: {a:?}"
    );
}

#[test]
fn a_second_receipt_locked_after_the_first_failed_permanently_is_handed_back() {
    let mut cfg = config();
    cfg.max_in_flight = 2;
    let mut c = consumer(cfg);
    let Some(Action::Receive { id: r1, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive")
    };
    c.handle_input(
        t(0),
        Input::Received {
            id: r1,
            result: Ok(vec![message("m1", "E.svc")]),
        },
    );
    let a = actions(&mut c);
    let Some(Action::Acquire { batch: first, .. }) = a
        .iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
        .cloned()
    else {
        panic!("{a:?}")
    };
    let r2 = a
        .iter()
        .find_map(|a| match a {
            Action::Receive { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a receive ahead");
    c.handle_input(
        t(0),
        Input::Acquired {
            batch: first,
            index: 0,
            outcome: acquired(),
        },
    );
    let [(running, _)] = dispatches(&actions(&mut c))[..] else {
        panic!("m1 runs")
    };
    // SQS hands m1 out again (its visibility ran out) while it runs; this
    // receipt waits for its lock.
    let mut again = message("m1", "E.svc");
    again.receipt_handle = ReceiptHandle::new("rh-m1-again");
    again.attributes.receive_count = Some(2);
    c.handle_input(
        t(1),
        Input::Received {
            id: r2,
            result: Ok(vec![again]),
        },
    );
    let a = actions(&mut c);
    let Some(Action::Acquire { batch: second, .. }) = a
        .iter()
        .find(|a| matches!(a, Action::Acquire { .. }))
        .cloned()
    else {
        panic!("{a:?}")
    };
    // The first run fails for good and releases the lock; the second
    // receipt's acquire then succeeds.
    c.handle_input(
        t(2),
        Input::HandlerFinished {
            id: running,
            outcome: failed(Retry::Never),
        },
    );
    let a = actions(&mut c);
    answer_releases(&mut c, &a);
    c.handle_input(
        t(3),
        Input::Acquired {
            batch: second,
            index: 0,
            outcome: acquired(),
        },
    );
    let a = actions(&mut c);
    assert!(dispatches(&a).is_empty(), "dispatched again: {a:?}");
    assert!(
        a.iter().any(|a| matches!(a, Action::Release { .. })),
        "{a:?}"
    );
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::HandedBack { .. })));
}
