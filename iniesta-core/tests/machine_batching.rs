//! How the machine paces its calls: receives wait for a tenth of the slots,
//! and deletes wait for company within their batch window.

use std::time::Duration;

use iniesta_core::machine::{Action, Input};
use iniesta_core::AcquireOutcome;

mod common;
use common::*;

#[test]
fn with_many_slots_a_receive_waits_for_a_tenth_of_them() {
    let mut cfg = config();
    cfg.max_in_flight = 50;
    cfg.concurrent_receives = 5;
    let mut c = consumer(cfg);
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
    let a = actions(&mut c);
    let [Action::Acquire {
        batch: locks,
        ref keys,
        ..
    }] = a[..]
    else {
        panic!("one acquire for all: {a:?}");
    };
    assert_eq!(keys.len(), 50);
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
    // Four end (Busy: not dispatched, forgotten): four free slots are
    // fewer than a tenth of 50, so no receive yet.
    for index in 0..4 {
        busy(&mut c, index);
    }
    let a = actions(&mut c);
    assert!(a.is_empty(), "4 of 50 free: no receive yet: {a:?}");
    // The fifth frees a tenth: one receive, for the five free slots.
    busy(&mut c, 4);
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
