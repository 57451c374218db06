//! FIFO topics and queues against a real moto_server: provisioning makes
//! FIFO resources that verification accepts, publishing carries the group
//! and deduplication ids through SNS to the queue's system attributes, a
//! FIFO topic without a group fails before any call, and verification
//! refuses a topic and a queue of different kinds.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_aws::fifo::FifoError;
use iniesta_aws::{
    provision, verify, AwsError, Check, CheckStatus, ProvisionRequest, Provisioned, SnsTopic,
    SqsQueue, TopicRef, VerificationReport, VerifyRequest,
};
use iniesta_core::message::ATTR_DEDUPLICATION_ID;
use iniesta_core::settings::FifoGroup;
use iniesta_core::{Queue, ReceivedMessage};

use common::aws::{policy, receive_n, receive_request, Moto};

const FILTERS: &[&str] = &["OrderPlaced.orders"];
const EVENT: &str = "OrderPlaced.orders";

/// Provisions FIFO topic `topic` and queue `queue` (with a dead-letter
/// queue), as `iniesta provision` does.
async fn setup_fifo(moto: &Moto, topic: &str, queue: &str) -> Provisioned {
    let mut request = ProvisionRequest::new(TopicRef::Name(topic.into()), queue, policy(FILTERS));
    request.dead_letter_after = Some(5);
    request.visibility_timeout = Some(Duration::from_secs(30));
    provision(&moto.clients, &request)
        .await
        .expect("provisioning FIFO resources against moto works")
}

fn request(topic_arn: &str, queue: &str) -> VerifyRequest {
    VerifyRequest::event_polling(topic_arn, queue, policy(FILTERS))
}

fn failure(report: &VerificationReport, check: Check) -> (String, String) {
    match &report.result(check).expect("the check is reported").status {
        CheckStatus::Failed { reason, fix } => (reason.clone(), fix.clone()),
        other => panic!("{check:?} did not fail: {other:?}\n{report}"),
    }
}

async fn queue_attribute(moto: &Moto, url: &str, name: QueueAttributeName) -> Option<String> {
    let out = moto
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .expect("GetQueueAttributes");
    out.attributes().and_then(|a| a.get(&name)).cloned()
}

fn dedup_id(m: &ReceivedMessage) -> Option<&str> {
    m.attributes
        .other
        .get(ATTR_DEDUPLICATION_ID)
        .map(String::as_str)
}

#[tokio::test]
async fn provision_of_a_fifo_topic_makes_fifo_resources_that_verify_accepts() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup_fifo(&moto, "events.fifo", "orders.fifo").await;
    assert!(p.fifo, "{p:?}");
    assert!(p.topic_arn.ends_with(":events.fifo"), "{p:?}");

    let topic = moto
        .clients
        .sns
        .get_topic_attributes()
        .topic_arn(&p.topic_arn)
        .send()
        .await
        .expect("GetTopicAttributes");
    let attrs = topic.attributes().cloned().unwrap_or_default();
    let is_true = |name: &str| {
        attrs
            .get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    assert!(is_true("FifoTopic"), "{attrs:?}");
    assert!(is_true("ContentBasedDeduplication"), "{attrs:?}");

    let fifo_queue = queue_attribute(&moto, &p.queue_url, QueueAttributeName::FifoQueue).await;
    assert_eq!(fifo_queue.as_deref(), Some("true"));
    let dlq = p
        .dead_letter_queue_arn
        .clone()
        .expect("a dead-letter queue");
    assert!(dlq.ends_with(":orders-dlq.fifo"), "{dlq}");
    let dlq_url = iniesta_aws::resolve_queue_url(&moto.clients.sqs, "orders-dlq.fifo")
        .await
        .expect("the FIFO dead-letter queue exists");
    let fifo_dlq = queue_attribute(&moto, &dlq_url, QueueAttributeName::FifoQueue).await;
    assert_eq!(fifo_dlq.as_deref(), Some("true"));

    let report = verify(&moto.clients, &request(&p.topic_arn, "orders.fifo")).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.queue_is_fifo(), Some(true));
    let subscribed = report.result(Check::Subscribed).expect("check 3");
    assert!(
        subscribed
            .status
            .message()
            .ends_with("(FIFO topic to FIFO queue)"),
        "{report}"
    );

    // Provisioning again changes nothing, and the topic given by ARN works
    // as well as by name.
    let mut again = ProvisionRequest::new(
        TopicRef::Arn(p.topic_arn.clone()),
        "orders.fifo",
        policy(FILTERS),
    );
    again.dead_letter_after = Some(5);
    again.visibility_timeout = Some(Duration::from_secs(30));
    assert_eq!(provision(&moto.clients, &again).await, Ok(p));
}

#[tokio::test]
async fn provision_refuses_to_mix_a_fifo_topic_with_a_standard_queue_before_any_call() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let request = ProvisionRequest::new(
        TopicRef::Name("events.fifo".into()),
        "orders",
        policy(FILTERS),
    );
    let e = provision(&moto.clients, &request).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("set INIESTA_SQS_QUEUE_NAME to orders.fifo"),
        "{e}"
    );
    // Nothing was created on the way.
    let topics = moto.clients.sns.list_topics().send().await.unwrap();
    assert!(topics.topics().is_empty(), "{topics:?}");
}

#[tokio::test]
async fn publish_with_group_and_deduplication_ids_reaches_the_fifo_queue_with_them() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup_fifo(&moto, "events.fifo", "orders.fifo").await;
    let topic = SnsTopic::new(moto.clients.sns.clone(), &p.topic_arn);
    let queue = SqsQueue::new(moto.clients.sqs.clone(), &p.queue_url);

    topic
        .publish_event_in_group(EVENT, r#"{"id": 1}"#, 1, "customer-7", Some("order-1"))
        .await
        .expect("publish in a group with a deduplication id");
    // The same deduplication id again: delivered once.
    topic
        .publish_event_in_group(
            EVENT,
            r#"{"id": 1, "again": true}"#,
            1,
            "customer-7",
            Some("order-1"),
        )
        .await
        .expect("a duplicate is accepted, not delivered");
    // The group from the rule, the deduplication from the topic's
    // content-based deduplication.
    let by_rule = topic
        .clone()
        .with_group_rule(Some(FifoGroup::JsonField("/customer".into())));
    by_rule
        .publish_event(EVENT, r#"{"id": 2, "customer": "c-9"}"#, 1)
        .await
        .expect("publish with the group the rule picks");

    let mut got = receive_n(&queue, 2).await;
    // Nothing more: the duplicate was dropped.
    got.extend(queue.receive(receive_request(1)).await.expect("receive"));
    let groups: BTreeSet<(Option<&str>, Option<&str>)> = got
        .iter()
        .map(|m| (m.attributes.message_group_id(), dedup_id(m)))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        groups.contains(&(Some("customer-7"), Some("order-1"))),
        "{groups:?}"
    );
    let first = got
        .iter()
        .find(|m| m.attributes.message_group_id() == Some("customer-7"))
        .unwrap();
    assert!(
        first
            .attributes
            .sequence_number()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "{first:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.attributes.message_group_id() == Some("c-9")),
        "{got:#?}"
    );
}

#[tokio::test]
async fn publishing_to_a_fifo_topic_without_a_group_fails_before_any_call() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    // No such topic: a call would fail with NotFound, not with this.
    let arn = "arn:aws:sns:us-east-1:123456789012:never-made.fifo";
    let topic = SnsTopic::new(moto.clients.sns.clone(), arn);
    let e = topic.publish_event(EVENT, "{}", 1).await.unwrap_err();
    assert!(
        matches!(&e, AwsError::Fifo(FifoError::NoGroup { topic }) if topic == arn),
        "{e:?}"
    );
    assert!(e.to_string().contains("INIESTA_SNS_FIFO_GROUP"), "{e}");

    let e = topic
        .publish_event_in_group(EVENT, "{}", 1, "g".repeat(129), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has 129 characters"), "{e}");

    // The batch fails each such message on its own, also without a call.
    use iniesta_core::Topic;
    let message = iniesta_core::publish::event_message("iniesta_pass", EVENT, "{}", 1).unwrap();
    let results = topic.publish_batch(vec![message]).await;
    let e = results[0].clone().unwrap_err();
    assert!(e.code.is_none(), "{e:?}");
    assert!(e.message.contains("has no message group"), "{e:?}");
}

#[tokio::test]
async fn verify_fails_a_fifo_topic_feeding_a_standard_queue_and_the_reverse() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup_fifo(&moto, "events.fifo", "orders.fifo").await;
    // A standard queue subscribed to the FIFO topic (SNS allows it; the
    // order of each group is lost on the way).
    let standard = common::aws::setup(&moto, "plain", "audit", FILTERS, false).await;
    moto.clients
        .sns
        .subscribe()
        .topic_arn(&p.topic_arn)
        .protocol("sqs")
        .endpoint(&standard.queue_arn)
        .attributes("FilterPolicy", policy(FILTERS).to_json_string())
        .send()
        .await
        .expect("moto subscribes a standard queue to a FIFO topic");

    let report = verify(&moto.clients, &request(&p.topic_arn, "audit")).await;
    assert!(!report.is_ok(), "{report}");
    assert_eq!(report.queue_is_fifo(), Some(false));
    let (reason, fix) = failure(&report, Check::Subscribed);
    assert_eq!(
        reason,
        format!(
            "topic {} is a FIFO topic but queue {} is a standard queue: the order of each \
             message group would be lost",
            p.topic_arn, standard.queue_arn
        )
    );
    assert!(fix.contains("FIFO queue"), "{fix}");
    let text = report.to_string();
    assert!(
        text.contains("FAIL 3. queue is subscribed to the topic: topic"),
        "{text}"
    );

    // A standard topic and a FIFO queue: SNS refuses the subscription, and
    // the report says why rather than only that there is none.
    let report = verify(&moto.clients, &request(&standard.topic_arn, "orders.fifo")).await;
    let (reason, _) = failure(&report, Check::Subscribed);
    assert!(
        reason.contains("SNS delivers nothing from a standard topic to a FIFO queue"),
        "{report}"
    );
    assert_eq!(report.queue_is_fifo(), Some(true));
}
