//! Helpers shared by the machine's step-by-step tests: a small raw-delivery
//! configuration, one message, and draining a machine's outputs.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::time::Duration;

use iniesta_core::machine::{Action, Consumer, ConsumerConfig, Event, Input};
use iniesta_core::{
    AcquireOutcome, AttributeValue, DeliveryMode, HandlerRegistry, LockToken, ParseConfig,
    ReceiptHandle, ReceivedMessage, SystemAttributes, Time,
};

pub fn config() -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        ParseConfig {
            mode: DeliveryMode::Raw,
            event_key: "iniesta_pass".into(),
            topic_arn: None,
        },
        "q",
    );
    c.max_in_flight = 2;
    c.receive_batch = 10;
    c.concurrent_receives = 1;
    c.delete_batch_window = Duration::ZERO;
    c
}

pub fn handlers() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.on_sync("E.svc", |_d| Ok::<_, String>(())).unwrap();
    r
}

pub fn message(id: &str, event: &str) -> ReceivedMessage {
    ReceivedMessage {
        message_id: id.into(),
        receipt_handle: ReceiptHandle::new(format!("rh-{id}")),
        body: "{}".into(),
        attributes: SystemAttributes {
            receive_count: Some(1),
            ..SystemAttributes::default()
        },
        message_attributes: BTreeMap::from([(
            "iniesta_pass".into(),
            AttributeValue::String(event.into()),
        )])
        .into(),
    }
}

pub fn actions(c: &mut Consumer) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

pub fn events(c: &mut Consumer) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

pub fn t(ms: u64) -> Time {
    Time::from_millis(ms)
}

/// Receives `msgs` and answers their acquire with `outcome`; returns the
/// actions that follow.
pub fn receive_and_lock(
    c: &mut Consumer,
    msgs: Vec<ReceivedMessage>,
    outcome: AcquireOutcome,
) -> Vec<Action> {
    let Some(Action::Receive { id, request }) = actions(c).into_iter().next() else {
        panic!("expected a receive first");
    };
    assert_eq!(request.max_messages, 2, "asks only for free slots");
    c.handle_input(
        t(0),
        Input::Received {
            id,
            result: Ok(msgs),
        },
    );
    let acquire = actions(c);
    let Some(Action::Acquire { entries, .. }) =
        acquire.iter().find(|a| matches!(a, Action::Acquire { .. }))
    else {
        panic!("expected an acquire, got {acquire:?}");
    };
    for (id, key) in entries.clone() {
        assert!(key.starts_with("sqs:event:"), "{key}");
        c.handle_input(
            t(0),
            Input::Acquired {
                id,
                outcome: outcome.clone(),
            },
        );
    }
    actions(c)
}

pub fn acquired() -> AcquireOutcome {
    AcquireOutcome::Acquired {
        token: LockToken::new("tok"),
        validity: Duration::from_secs(10),
    }
}
