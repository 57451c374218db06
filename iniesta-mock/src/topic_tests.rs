//! The topic's SNS semantics: raw and envelope delivery, duplicate
//! deliveries, filter policies, faults, limits, subscriptions and batches.

use std::collections::BTreeMap;

use iniesta_core::publish::event_message;
use iniesta_core::{parse, AttributeValue, DeliveryMode, ParseConfig};

use super::*;

fn setup() -> (Clock, MockTopic) {
    let clock = Clock::virtual_clock();
    let topic = MockTopic::new("global", &clock);
    (clock, topic)
}

fn event(name: &str, body: &str) -> OutgoingMessage {
    event_message("iniesta_pass", name, body, 1).unwrap()
}

fn policy(filters: &[&str]) -> Option<FilterPolicy> {
    Some(FilterPolicy::from_filters("iniesta_pass", filters).unwrap())
}

fn config(topic: &MockTopic, mode: DeliveryMode) -> ParseConfig {
    ParseConfig {
        mode,
        event_key: "iniesta_pass".into(),
        topic_arn: Some(topic.arn().to_owned()),
    }
}

#[test]
fn arn_names_the_topic() {
    let (_, topic) = setup();
    assert_eq!(topic.arn(), "arn:aws:sns:us-east-1:000000000000:global");
    assert_eq!(topic.name(), "global");
}

#[test]
fn raw_delivery_passes_body_and_attributes() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    topic.subscribe(
        &q,
        SubscribeOptions {
            raw_delivery: true,
            filter_policy: None,
        },
    );
    let sent = event("A.svc", r#"{"n":1}"#);
    topic.publish_now(sent.clone()).unwrap();
    let got = q.receive_now(10, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, sent.body);
    assert_eq!(got[0].message_attributes, sent.attributes);
    let m = parse(&got[0], &config(&topic, DeliveryMode::Raw)).unwrap();
    assert_eq!(m.event, "A.svc");
}

#[test]
fn envelope_delivery_wraps_the_message() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    topic.subscribe(&q, SubscribeOptions::default());
    let sent = event("A.svc", "plain text");
    let id = topic.publish_now(sent.clone()).unwrap();
    let got = q.receive_now(10, None);
    assert_eq!(got.len(), 1);
    assert!(got[0].message_attributes.is_empty());
    let envelope: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(envelope["TopicArn"], topic.arn());
    assert_eq!(envelope["MessageId"], id.as_str());
    let m = parse(&got[0], &config(&topic, DeliveryMode::Envelope)).unwrap();
    assert_eq!(m.event, "A.svc");
    assert_eq!(m.body, "plain text");
    assert_eq!(m.key(), id);
    assert_eq!(m.attributes, sent.attributes);
}

#[test]
fn duplicate_next_delivers_two_copies_with_one_sns_id() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    topic.subscribe(&q, SubscribeOptions::default());
    topic.duplicate_next(1);
    let id = topic.publish_now(event("A.svc", "{}")).unwrap();
    topic.publish_now(event("B.svc", "{}")).unwrap();
    let got = q.receive_now(10, None);
    assert_eq!(got.len(), 3, "two copies of the first, one of the second");
    let cfg = config(&topic, DeliveryMode::Envelope);
    let first = parse(&got[0], &cfg).unwrap();
    let second = parse(&got[1], &cfg).unwrap();
    assert_eq!(first.key(), id);
    assert_eq!(second.key(), id);
    assert_ne!(first.sqs_message_id, second.sqs_message_id);
    assert_eq!(parse(&got[2], &cfg).unwrap().event, "B.svc");
    assert_eq!(topic.stats().delivered, 3);
}

#[test]
fn filter_policy_drops_non_matching_events() {
    let (clock, topic) = setup();
    let users = MockQueue::new("users", &clock);
    let all = MockQueue::new("all", &clock);
    topic.subscribe(
        &users,
        SubscribeOptions {
            raw_delivery: true,
            filter_policy: policy(&["User.*", "Order.placed"]),
        },
    );
    topic.subscribe(&all, SubscribeOptions::default());
    for name in ["User.created", "Order.placed", "Order.shipped", "Userx"] {
        topic.publish_now(event(name, "{}")).unwrap();
    }
    // No event-name attribute at all: a policy on it cannot match.
    topic
        .publish_now(OutgoingMessage {
            body: "x".into(),
            attributes: BTreeMap::from([(
                "other".to_string(),
                AttributeValue::String("User.created".into()),
            )]),
            ..Default::default()
        })
        .unwrap();
    let events: Vec<String> = users
        .receive_now(10, None)
        .iter()
        .map(|m| {
            m.message_attributes["iniesta_pass"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(events, vec!["User.created", "Order.placed"]);
    assert_eq!(all.len(), 5);
    assert_eq!(topic.stats().filtered_out, 3);
}

#[test]
fn fail_publishes_delivers_nothing() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    topic.subscribe(&q, SubscribeOptions::default());
    topic.fail_publishes(1);
    let e = topic.publish_now(event("A.svc", "{}")).unwrap_err();
    assert_eq!(e.code.as_deref(), Some(codes::INTERNAL_ERROR));
    assert!(q.is_empty());
    topic.publish_now(event("A.svc", "{}")).unwrap();
    assert_eq!(q.len(), 1);
}

#[test]
fn empty_or_oversized_messages_are_rejected() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    topic.subscribe(&q, SubscribeOptions::default());
    let mut m = event("A.svc", "");
    let e = topic.publish_now(m.clone()).unwrap_err();
    assert_eq!(e.code.as_deref(), Some(codes::INVALID_PARAMETER));
    m.body = "x".repeat(MAX_MESSAGE_BYTES);
    let e = topic.publish_now(m).unwrap_err();
    assert_eq!(e.code.as_deref(), Some(codes::INVALID_PARAMETER));
    assert!(q.is_empty());
}

#[test]
fn subscribe_is_idempotent_and_unsubscribe_stops_delivery() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    let arn = topic.subscribe(&q, SubscribeOptions::default());
    assert!(arn.starts_with(topic.arn()));
    let again = topic.subscribe(
        &q,
        SubscribeOptions {
            raw_delivery: true,
            filter_policy: None,
        },
    );
    assert_eq!(arn, again);
    let subs = topic.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].endpoint, q.arn());
    assert!(subs[0].options.raw_delivery, "options replaced");

    topic.publish_now(event("A.svc", "{}")).unwrap();
    assert_eq!(q.len(), 1);
    assert!(topic.unsubscribe(&arn));
    assert!(!topic.unsubscribe(&arn));
    topic.publish_now(event("A.svc", "{}")).unwrap();
    assert_eq!(q.len(), 1);
}

#[test]
fn publish_batch_through_the_trait() {
    let (clock, topic) = setup();
    let q = MockQueue::new("q", &clock);
    topic.subscribe(&q, SubscribeOptions::default());
    let ids = futures::executor::block_on(
        topic.publish_batch(vec![event("A.svc", "1"), event("B.svc", "2")]),
    );
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0].as_ref().unwrap(), ids[1].as_ref().unwrap());
    assert_eq!(q.len(), 2);
    let too_many = (0..11).map(|i| event("A.svc", &i.to_string())).collect();
    let results = futures::executor::block_on(topic.publish_batch(too_many));
    assert!(results.iter().all(|r| r
        .as_ref()
        .is_err_and(|e| e.code.as_deref() == Some(codes::TOO_MANY_ENTRIES_IN_BATCH_REQUEST))));
    assert_eq!(q.len(), 2);
}
