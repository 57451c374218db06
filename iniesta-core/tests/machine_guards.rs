//! The machine's guards against losing or misrouting messages in ordinary
//! deployments: lock keys scoped to the queue (several services on one
//! topic, one lock server), the consumer's own filters, a shutdown that
//! waits for running handlers and reports `Stopped` only when nothing is
//! left, and a handler that outlives its lock.

use std::collections::BTreeMap;
use std::time::Duration;

use iniesta_core::machine::{
    AbortReason, Action, Consumer, ConsumerConfig, DispatchOutcome, Event, Input,
};
use iniesta_core::publish::envelope_json;
use iniesta_core::{
    AttributeValue, DeliveryMode, FilterPolicy, HandlerRegistry, LockKey, ParseConfig,
    ReceiptHandle, ReceivedMessage, SystemAttributes,
};

mod common;
use common::*;

const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:global";

fn envelope_config(queue: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Envelope,
            event_key: "iniesta_pass".into(),
            topic_arn: Some(TOPIC.into()),
        },
        queue,
    );
    c.max_in_flight = 2;
    c.concurrent_receives = 1;
    c.delete_batch_window = Duration::ZERO;
    c
}

/// One SNS message as SNS delivers it to a queue (an envelope): the SNS id
/// is the same in every subscribed queue, the SQS id is the queue's own.
fn envelope(sqs_id: &str, sns_id: &str, event: &str) -> ReceivedMessage {
    let attrs = BTreeMap::from([(
        "iniesta_pass".to_string(),
        AttributeValue::String(event.into()),
    )]);
    ReceivedMessage {
        sqs_message_id: sqs_id.into(),
        receipt_handle: ReceiptHandle::new(format!("rh-{sqs_id}")),
        body: envelope_json(TOPIC, sns_id, "{}", &attrs),
        attributes: SystemAttributes {
            receive_count: Some(1),
            ..SystemAttributes::default()
        },
        message_attributes: BTreeMap::new().into(),
    }
}

/// Receives `msgs` on a fresh consumer and returns the keys it asks to lock.
fn acquired_keys(config: ConsumerConfig, msgs: Vec<ReceivedMessage>) -> Vec<LockKey> {
    let mut c = consumer(config);
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive first");
    };
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(msgs),
        },
    );
    locked_keys(&actions(&mut c))
}

/// The keys of every acquire among `acts`, in order.
fn locked_keys(acts: &[Action]) -> Vec<LockKey> {
    acts.iter()
        .flat_map(|a| match a {
            Action::Acquire { keys, .. } => keys.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn two_services_never_share_a_lock_key_for_one_sns_message() {
    let a = acquired_keys(
        envelope_config("iniesta-prod-users"),
        vec![envelope("sqs-a", "sns-1", "E.svc")],
    );
    let b = acquired_keys(
        envelope_config("iniesta-prod-orders"),
        vec![envelope("sqs-b", "sns-1", "E.svc")],
    );
    assert_eq!(a, ["sqs:event:iniesta-prod-users:sns-1"]);
    assert_eq!(b, ["sqs:event:iniesta-prod-orders:sns-1"]);
    // An SNS duplicate within one queue still meets its twin's key.
    let dup = acquired_keys(
        envelope_config("iniesta-prod-users"),
        vec![envelope("sqs-a2", "sns-1", "E.svc")],
    );
    assert_eq!(dup, a);
}

#[test]
fn raw_delivery_keeps_the_original_key_of_the_sqs_id() {
    let keys = acquired_keys(config(), vec![message("m-1", "E.svc")]);
    assert_eq!(keys, ["sqs:event:m-1"]);
}

#[test]
fn an_unnamed_queue_is_refused() {
    let err = Consumer::new(envelope_config(""), &handlers(), t(0)).unwrap_err();
    assert_eq!(err.field, "lock_scope");
}

fn filtered(delete_unmatched: bool) -> ConsumerConfig {
    let mut c = config();
    c.max_in_flight = 4;
    c.filters = Some(FilterPolicy::from_filters("iniesta_pass", ["E.svc", "Order.*"]).unwrap());
    c.delete_unmatched = delete_unmatched;
    c
}

fn everything() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.on_default(|| async {}).unwrap();
    r
}

/// Receives three messages, one of them outside the filters, and returns
/// the actions and events that follow.
fn receive_mixed(config: ConsumerConfig) -> (Vec<Action>, Vec<Event>) {
    let mut c = Consumer::new(config, &everything(), t(0)).unwrap();
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive first");
    };
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(vec![
                message("m-1", "E.svc"),
                message("m-2", "Order.paid"),
                message("m-3", "Secret.other"),
            ]),
        },
    );
    (actions(&mut c), events(&mut c))
}

#[test]
fn events_outside_the_filters_are_never_locked_nor_dispatched() {
    let (acts, evs) = receive_mixed(filtered(false));
    assert_eq!(locked_keys(&acts), ["sqs:event:m-1", "sqs:event:m-2"]);
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::Delete { .. } | Action::ChangeVisibility { .. })),
        "the foreign message is left as it is, for its dead-letter queue: {acts:?}"
    );
    let unmatched: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Unmatched { message, deleted } => Some((message.event.clone(), *deleted)),
            _ => None,
        })
        .collect();
    assert_eq!(unmatched, [("Secret.other".to_string(), false)]);
}

#[test]
fn events_outside_the_filters_are_deleted_when_configured() {
    let (acts, evs) = receive_mixed(filtered(true));
    let deleted: Vec<String> = acts
        .iter()
        .flat_map(|a| match a {
            Action::Delete { handles, .. } => handles.iter().map(|h| h.to_string()).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(deleted, ["rh-m-3"]);
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::Unmatched { deleted: true, .. })));
}

#[test]
fn shutdown_cancels_receives_waits_for_handlers_and_returns_unstarted() {
    let mut cfg = config();
    cfg.max_in_flight = 3;
    let mut c = consumer(cfg);
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
    let [Action::Receive {
        id: outstanding,
        request,
    }, Action::Acquire { batch: locks, .. }] = a[..]
    else {
        panic!("a receive ahead, and an acquire: {a:?}")
    };
    assert_eq!(
        request.max_messages, 3,
        "the whole prefetch, received ahead"
    );
    c.handle_input(
        t(0),
        Input::Acquired {
            batch: locks,
            index: 0,
            outcome: acquired(),
        },
    );
    let [(running, _)] = dispatches(&actions(&mut c))[..] else {
        panic!("m1 runs")
    };
    c.shutdown(t(1));
    assert_eq!(actions(&mut c), [Action::CancelReceive { id: outstanding }]);
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
            batch: locks,
            index: 1,
            outcome: acquired(),
        },
    );
    let a = actions(&mut c);
    let [Action::Release { id: m2, .. }] = a[..] else {
        panic!("m2 is released: {a:?}");
    };
    assert_eq!(
        a,
        [Action::Release {
            id: m2,
            key: key("m2"),
            token: tok(),
        }]
    );
    c.handle_input(
        t(2),
        Input::Released {
            id: m2,
            result: Ok(()),
        },
    );
    let a = actions(&mut c);
    let back = batch(&a[0]);
    assert_eq!(
        a,
        [Action::ChangeVisibility {
            batch: back,
            entries: vec![(handle("m2"), Duration::ZERO)],
        }]
    );
    c.handle_input(
        t(3),
        Input::VisibilityChanged {
            batch: back,
            index: 0,
            result: Ok(()),
        },
    );
    assert!(
        actions(&mut c).is_empty(),
        "no new receive while shutting down"
    );
    assert!(!c.is_stopped(), "m1's handler still runs");
    // Grace (30 s) runs out: the handler is aborted.
    assert_eq!(
        c.poll_timeout(),
        Some(t(6_000)),
        "the heartbeat comes first"
    );
    c.handle_timeout(t(30_001));
    let a = actions(&mut c);
    assert!(
        a.contains(&Action::Abort {
            id: running,
            reason: AbortReason::ShutdownGrace
        }),
        "{a:?}"
    );
    c.handle_input(
        t(30_002),
        Input::HandlerFinished {
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
    let a = actions(&mut c);
    let [Action::ChangeVisibility { batch: back, .. }] = a[..] else {
        panic!("m1 goes back to the queue: {a:?}");
    };
    c.handle_input(
        t(30_004),
        Input::VisibilityChanged {
            batch: back,
            index: 0,
            result: Ok(()),
        },
    );
    assert!(c.is_stopped());
    assert!(events(&mut c).contains(&Event::Stopped));
}

#[test]
fn the_grace_wakes_the_machine_only_while_a_handler_runs() {
    let mut cfg = config();
    cfg.shutdown_grace = Duration::from_secs(2);
    let mut c = consumer(cfg);
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let [(id, _)] = dispatches(&after)[..] else {
        panic!("expected a dispatch: {after:?}");
    };
    c.shutdown(t(1_000));
    let _ = actions(&mut c);
    assert_eq!(
        c.poll_timeout(),
        Some(t(3_000)),
        "the grace, before the heartbeat"
    );
    c.handle_input(
        t(1_500),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::failed_with("no"),
        },
    );
    let _ = actions(&mut c);
    assert_eq!(c.poll_timeout(), None, "nothing runs: nothing to wake for");
}

#[test]
fn stopped_waits_for_the_messages_a_cancelled_receive_brought() {
    let mut c = consumer(config());
    let Some(Action::Receive { id, .. }) = actions(&mut c).into_iter().next() else {
        panic!("expected a receive first");
    };
    c.shutdown(t(1));
    assert_eq!(actions(&mut c), [Action::CancelReceive { id }]);
    events(&mut c);
    // The cancelled receive still brings a message.
    c.handle_input(
        t(2),
        Input::Received {
            id,
            result: Ok(vec![message("m-1", "E.svc")]),
        },
    );
    let evs = events(&mut c);
    assert!(
        !evs.iter().any(|e| matches!(e, Event::Stopped)),
        "Stopped while a message is still in progress: {evs:?}"
    );
    assert!(!c.is_stopped());
    let a = actions(&mut c);
    let back = batch(&a[0]);
    assert_eq!(
        a,
        [Action::ChangeVisibility {
            batch: back,
            entries: vec![(handle("m-1"), Duration::ZERO)],
        }],
        "the unstarted message goes back to the queue"
    );
    c.handle_input(
        t(3),
        Input::VisibilityChanged {
            batch: back,
            index: 0,
            result: Ok(()),
        },
    );
    assert!(events(&mut c).contains(&Event::Stopped));
    assert!(c.is_stopped());
}

#[test]
fn a_handler_that_outlives_its_lock_is_aborted_and_its_success_still_completes() {
    let mut c = consumer(config());
    let after = receive_and_lock(&mut c, vec![message("m1", "E.svc")], acquired());
    let [(id, _)] = dispatches(&after)[..] else {
        panic!("expected a dispatch: {after:?}");
    };
    // Heartbeats go unanswered; the validity (10 s) runs out.
    c.handle_timeout(t(10_001));
    let acts = actions(&mut c);
    assert!(
        acts.contains(&Action::Abort {
            id,
            reason: AbortReason::LockExpired
        }),
        "{acts:?}"
    );
    // The handler ignored the abort and finished: the work is done, so a
    // completion record is still written (the backend takes a free key).
    c.handle_input(
        t(10_002),
        Input::HandlerFinished {
            id,
            outcome: DispatchOutcome::Succeeded,
        },
    );
    let acts = actions(&mut c);
    assert_eq!(
        acts,
        [Action::Complete {
            batch: batch(&acts[0]),
            entries: vec![(key("m1"), tok())],
            keep_for: Duration::from_secs(24 * 60 * 60),
        }]
    );
}

#[test]
fn the_visibility_extension_is_judged_in_whole_seconds_as_sqs_applies_it() {
    // A sub-second lock: 0.8 s, heartbeats every 0.48 s. SQS applies the
    // 0.8 s extension as 1 s, which outlasts the heartbeat interval.
    let mut c = config();
    c.lock_timeout = Duration::from_millis(800);
    c.heartbeat_interval = Duration::from_millis(480);
    c.visibility_extension = Some(Duration::from_millis(800));
    assert!(Consumer::new(c.clone(), &handlers(), t(0)).is_ok());
    // 1.5 s is applied as 2 s: still hidden at the 1.8 s heartbeat.
    c.lock_timeout = Duration::from_secs(3);
    c.heartbeat_interval = Duration::from_millis(1_800);
    c.visibility_extension = Some(Duration::from_millis(1_500));
    assert!(Consumer::new(c.clone(), &handlers(), t(0)).is_ok());
    // 1 s is applied as 1 s: visible again before the 1.8 s heartbeat.
    c.visibility_extension = Some(Duration::from_secs(1));
    let err = Consumer::new(c, &handlers(), t(0)).unwrap_err();
    assert_eq!(err.field, "visibility_extension");
}
