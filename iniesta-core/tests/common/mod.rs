//! Helpers shared by the machine's step-by-step tests: a small raw-delivery
//! configuration, one message, draining a machine's outputs, and the parts
//! of actions a test cannot know in advance.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::time::Duration;

use iniesta_core::machine::{Action, BatchId, Consumer, ConsumerConfig, Event, Input, MessageId};
use iniesta_core::{
    AcquireOutcome, AttributeValue, DeliveryMode, HandlerRegistry, LockKey, LockToken, ParseConfig,
    ReceiptHandle, ReceivedMessage, SharedMessage, SystemAttributes, Time,
};

pub mod fifo;
pub mod runtime;

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

/// A consumer with `config` and [`handlers`], at time zero.
pub fn consumer(config: ConsumerConfig) -> Consumer {
    Consumer::new(config, &handlers(), t(0)).unwrap()
}

pub fn message(id: &str, event: &str) -> ReceivedMessage {
    ReceivedMessage {
        sqs_message_id: id.into(),
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
    let Some(Action::Acquire { batch, keys, .. }) =
        acquire.iter().find(|a| matches!(a, Action::Acquire { .. }))
    else {
        panic!("expected an acquire, got {acquire:?}");
    };
    for (index, key) in keys.iter().enumerate() {
        assert!(key.starts_with("sqs:event:"), "{key}");
        c.handle_input(
            t(0),
            Input::Acquired {
                batch: *batch,
                index,
                outcome: outcome.clone(),
            },
        );
    }
    actions(c)
}

/// The token [`acquired`] hands out.
pub fn tok() -> LockToken {
    LockToken::new("tok")
}

pub fn acquired() -> AcquireOutcome {
    AcquireOutcome::Acquired {
        token: tok(),
        validity: Duration::from_secs(10),
    }
}

/// The lock key of the raw message `id`.
pub fn key(id: &str) -> LockKey {
    LockKey::from(format!("sqs:event:{id}"))
}

/// The receipt handle [`message`] gives `id`.
pub fn handle(id: &str) -> ReceiptHandle {
    ReceiptHandle::new(format!("rh-{id}"))
}

/// The batch a batch action names.
pub fn batch(action: &Action) -> BatchId {
    match action {
        Action::Acquire { batch, .. }
        | Action::Complete { batch, .. }
        | Action::Delete { batch, .. }
        | Action::ChangeVisibility { batch, .. } => *batch,
        other => panic!("not a batch action: {other:?}"),
    }
}

/// The message and content of every dispatch among `actions`.
pub fn dispatches(actions: &[Action]) -> Vec<(MessageId, SharedMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch { id, message, .. } => Some((*id, message.clone())),
            _ => None,
        })
        .collect()
}
