//! FIFO topics: creation and subscription rules, what a publish must carry,
//! deduplication, and the ids each subscribed queue gets.

use std::collections::BTreeMap;

use iniesta_core::{parse, DeliveryMode, OutgoingMessage, ParseConfig, ReceivedMessage};

use crate::DEDUPLICATION_INTERVAL;
use crate::{codes, Clock, MockQueue, MockTopic, QueueOptions, SubscribeOptions, TopicOptions};

fn fifo_topic(clock: &Clock, content_based: bool) -> MockTopic {
    MockTopic::with_options(
        "t.fifo",
        clock,
        TopicOptions::default()
            .with_fifo(true)
            .with_content_based_deduplication(content_based),
    )
}

fn fifo_queue(clock: &Clock, name: &str) -> MockQueue {
    MockQueue::with_options(name, clock, QueueOptions::default().with_fifo(true))
}

fn raw() -> SubscribeOptions {
    SubscribeOptions::default().with_raw_delivery(true)
}

fn msg(body: &str, group: &str, dedup: &str) -> OutgoingMessage {
    OutgoingMessage::new(body, BTreeMap::new())
        .with_group_id(group)
        .with_deduplication_id(dedup)
}

fn code(r: Result<impl std::fmt::Debug, iniesta_core::BackendError>) -> String {
    r.unwrap_err().code.unwrap_or_default()
}

fn other<'a>(m: &'a ReceivedMessage, name: &str) -> Option<&'a str> {
    m.attributes.other.get(name).map(String::as_str)
}

#[test]
fn a_fifo_topic_needs_a_fifo_name_and_only_it_deduplicates_by_content() {
    let clock = Clock::virtual_clock();
    let fifo = TopicOptions::default().with_fifo(true);
    let bad = codes::INVALID_PARAMETER;
    assert_eq!(
        code(MockTopic::try_with_options("t", &clock, fifo.clone())),
        bad
    );
    assert_eq!(
        code(MockTopic::try_with_options(
            "t.fifo",
            &clock,
            TopicOptions::default()
        )),
        bad
    );
    let content = TopicOptions::default().with_content_based_deduplication(true);
    assert_eq!(code(MockTopic::try_with_options("t", &clock, content)), bad);
    let topic = MockTopic::try_with_options("t.fifo", &clock, fifo).unwrap();
    assert!(topic.arn().ends_with(":t.fifo"));
}

#[test]
fn a_fifo_queue_cannot_subscribe_to_a_standard_topic() {
    let clock = Clock::virtual_clock();
    let topic = MockTopic::new("t", &clock);
    let q = fifo_queue(&clock, "q.fifo");
    assert_eq!(
        code(topic.try_subscribe(&q, raw())),
        codes::INVALID_PARAMETER
    );
    assert!(topic.subscriptions().is_empty());
}

#[test]
fn a_fifo_publish_needs_a_group_and_a_deduplication_id() {
    let clock = Clock::virtual_clock();
    let topic = fifo_topic(&clock, false);
    let q = fifo_queue(&clock, "q.fifo");
    topic.subscribe(&q, raw());
    let bad = codes::INVALID_PARAMETER;
    let no_group = OutgoingMessage::new("a", BTreeMap::new()).with_deduplication_id("d");
    assert_eq!(code(topic.publish_now(no_group)), bad);
    let no_dedup = OutgoingMessage::new("a", BTreeMap::new()).with_group_id("g");
    assert_eq!(code(topic.publish_now(no_dedup)), bad);
    assert_eq!(code(topic.publish_now(msg("a", "bad group", "d"))), bad);
    assert_eq!(
        code(topic.publish_now(msg("a", "g", &"d".repeat(129)))),
        bad
    );
    assert_eq!(topic.stats().published, 0);
    assert!(q.is_empty());
}

#[test]
fn a_standard_topic_passes_a_group_id_on_and_refuses_a_deduplication_id() {
    let clock = Clock::virtual_clock();
    let topic = MockTopic::new("t", &clock);
    let q = MockQueue::new("q", &clock);
    topic.subscribe(&q, raw());
    assert_eq!(
        code(topic.publish_now(msg("a", "g", "d"))),
        codes::INVALID_PARAMETER
    );
    let grouped = OutgoingMessage::new("a", BTreeMap::new()).with_group_id("tenant-1");
    topic.publish_now(grouped).unwrap();
    let got = q.receive_now(10, None);
    assert_eq!(got[0].attributes.message_group_id(), Some("tenant-1"));
    assert_eq!(other(&got[0], "MessageDeduplicationId"), None);
}

#[test]
fn a_duplicate_publish_answers_the_first_id_and_delivers_nothing() {
    let clock = Clock::virtual_clock();
    let topic = fifo_topic(&clock, false);
    let q = fifo_queue(&clock, "q.fifo");
    topic.subscribe(&q, raw());
    let first = topic.publish_now(msg("a", "g", "d-1")).unwrap();
    clock.advance(DEDUPLICATION_INTERVAL - std::time::Duration::from_secs(1));
    assert_eq!(topic.publish_now(msg("b", "g", "d-1")).unwrap(), first);
    assert_eq!(topic.stats().deduplicated, 1);
    assert_eq!(topic.stats().delivered, 1);
    assert_eq!(q.stats().sent, 1);
    clock.advance(std::time::Duration::from_secs(1));
    assert_ne!(topic.publish_now(msg("c", "g", "d-1")).unwrap(), first);
    assert_eq!(q.len(), 2);
}

#[test]
fn content_based_deduplication_reaches_a_queue_without_it() {
    let clock = Clock::virtual_clock();
    let topic = fifo_topic(&clock, true);
    let q = fifo_queue(&clock, "q.fifo"); // no content-based deduplication
    topic.subscribe(&q, raw());
    let publish = |body: &str| {
        topic
            .publish_now(OutgoingMessage::new(body, BTreeMap::new()).with_group_id("g"))
            .unwrap()
    };
    let first = publish("hello");
    assert_eq!(publish("hello"), first);
    publish("world");
    let got = q.receive_now(10, None);
    assert_eq!(got.len(), 2);
    assert_eq!(
        other(&got[0], "MessageDeduplicationId"),
        Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
}

#[test]
fn fifo_queues_get_the_ids_in_raw_and_envelope_delivery_with_one_sns_id() {
    let clock = Clock::virtual_clock();
    let topic = fifo_topic(&clock, false);
    let raw_q = fifo_queue(&clock, "raw.fifo");
    let env_q = fifo_queue(&clock, "env.fifo");
    topic.subscribe(&raw_q, raw());
    topic.subscribe(&env_q, SubscribeOptions::default());
    let sent = iniesta_core::publish::event_message("iniesta_pass", "A.svc", "{}", 1)
        .unwrap()
        .with_group_id("g-1")
        .with_deduplication_id("d-1");
    let id = topic.publish_now(sent.clone()).unwrap();
    let from_raw = raw_q.receive_now(10, None).remove(0);
    let from_env = env_q.receive_now(10, None).remove(0);
    for m in [&from_raw, &from_env] {
        assert_eq!(m.attributes.message_group_id(), Some("g-1"));
        assert_eq!(other(m, "MessageDeduplicationId"), Some("d-1"));
        assert!(m.attributes.sequence_number().is_some());
    }
    assert_eq!(from_raw.body, sent.body);
    let envelope: serde_json::Value = serde_json::from_str(&from_env.body).unwrap();
    assert_eq!(envelope["MessageId"], id.as_str());
    let seq = envelope["SequenceNumber"]
        .as_str()
        .expect("a SequenceNumber");
    assert_eq!(seq.len(), 20);
    let config = ParseConfig {
        mode: DeliveryMode::Envelope,
        event_key: "iniesta_pass".into(),
        topic_arn: Some(topic.arn().to_owned()),
    };
    let parsed = parse(&from_env, &config).unwrap();
    assert_eq!(parsed.key(), id, "the SNS message id, as in every queue");
    assert_eq!(parsed.group_id.as_deref(), Some("g-1"));
}

#[test]
fn a_standard_queue_on_a_fifo_topic_gets_no_fifo_ids() {
    let clock = Clock::virtual_clock();
    let topic = fifo_topic(&clock, false);
    let q = MockQueue::new("standard", &clock);
    topic.subscribe(&q, raw());
    topic.publish_now(msg("a", "g", "d")).unwrap();
    topic.publish_now(msg("a", "g", "d")).unwrap(); // a duplicate: dropped
    let got = q.receive_now(10, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attributes.message_group_id(), None);
    assert_eq!(other(&got[0], "MessageDeduplicationId"), None);
}

#[test]
fn a_duplicated_delivery_is_dropped_by_the_fifo_queue() {
    let clock = Clock::virtual_clock();
    let topic = fifo_topic(&clock, false);
    let q = fifo_queue(&clock, "q.fifo");
    topic.subscribe(&q, raw());
    topic.duplicate_next(1);
    topic.publish_now(msg("a", "g", "d")).unwrap();
    assert_eq!(topic.stats().delivered, 2, "SNS sent it twice");
    assert_eq!(q.len(), 1, "the queue deduplicated the second copy");
    assert_eq!(q.stats().deduplicated, 1);
}
