//! The public FIFO conformance suite (`iniesta_mock::conformance::fifo`)
//! against moto_server: an SNS FIFO topic with content-based
//! deduplication, and an SQS FIFO queue subscribed to it in raw delivery,
//! driven through the SQS and SNS adapters (`SqsQueue`, `SnsTopic`, which
//! sends each message's group and deduplication id).
//!
//! The mock follows SQS and SNS, not moto. Where moto differs, the check is
//! still run, and its outcome is printed with the difference (see
//! [`MOTO_DIFFERS`]); every other check must pass. The check of the
//! deduplication window's end sleeps five minutes on real time: it is left
//! out here, with a printed reason, and runs against the mock on a
//! virtual clock (iniesta-mock's tests/conformance_fifo.rs).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_aws::{SnsTopic, SqsQueue};
use iniesta_mock::conformance::fifo::{FifoConformance, FIFO_CHECKS};
use iniesta_mock::conformance::{Check, WallClock};
use iniesta_tests::servers::moto::MotoServer;

/// The checks where moto (5.x) answers otherwise than SQS and SNS, and why.
/// They run and their outcome is printed; they do not fail this test.
const MOTO_DIFFERS: &[(&str, &str)] = &[
    (
        "duplicate_answers_first_id",
        "moto's SNS does not deduplicate: a duplicate publish gets a new message id (only the \
         FIFO queue drops the copy)",
    ),
    (
        "duplicate_after_delete_dropped",
        "moto's SQS compares a deduplication id with the messages still in the queue, so a \
         deleted message's id is free at once; SQS remembers it for 5 minutes",
    ),
    (
        "sequence_numbers_increase",
        "moto's SQS gives each message 20 random digits as its SequenceNumber; SQS's increase",
    ),
];

#[tokio::test]
async fn sns_and_sqs_fifo_on_moto_conform() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let clients = moto.clients();
    let topic_arn = clients
        .sns
        .create_topic()
        .name("conformance.fifo")
        .attributes("FifoTopic", "true")
        .attributes("ContentBasedDeduplication", "true")
        .send()
        .await
        .expect("create the FIFO topic on moto")
        .topic_arn()
        .expect("a topic ARN")
        .to_owned();
    // Content-based deduplication on the queue too: real SNS hands its
    // hash on as the deduplication id, moto hands none, and its FIFO queue
    // then refuses the message unless it hashes the body itself.
    let attributes = HashMap::from([
        (QueueAttributeName::FifoQueue, "true".to_owned()),
        (
            QueueAttributeName::ContentBasedDeduplication,
            "true".to_owned(),
        ),
        (QueueAttributeName::VisibilityTimeout, "30".to_owned()),
    ]);
    let queue_url = clients
        .sqs
        .create_queue()
        .queue_name("conformance.fifo")
        .set_attributes(Some(attributes))
        .send()
        .await
        .expect("create the FIFO queue on moto")
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    let queue_arn = format!(
        "arn:aws:sqs:{}:{}:conformance.fifo",
        MotoServer::REGION,
        MotoServer::ACCOUNT
    );
    clients
        .sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe the FIFO queue");

    let topic = SnsTopic::new(clients.sns.clone(), topic_arn);
    let queue = SqsQueue::new(clients.sqs.clone(), queue_url);
    let (timed, untimed): (Vec<&Check>, Vec<&Check>) = FIFO_CHECKS.iter().partition(|c| c.timed);
    for c in &timed {
        eprintln!(
            "left out on moto: {} ({}): it waits 5 minutes of real time; it runs against the \
             mock on a virtual clock",
            c.name, c.rule
        );
    }
    let started = Instant::now();
    let report = FifoConformance::new()
        .only(untimed.iter().map(|c| c.name))
        .poll(Duration::from_secs(1))
        .run(&topic, &queue, &WallClock)
        .await;
    eprintln!("{report}");
    eprintln!("FIFO conformance on moto: {:?}", started.elapsed());
    let mut unexpected = Vec::new();
    for r in report.results() {
        match (
            MOTO_DIFFERS.iter().find(|(name, _)| *name == r.name),
            &r.failure,
        ) {
            (Some((_, why)), outcome) => eprintln!(
                "moto differs from SQS/SNS on {}: {why}; here it {}",
                r.name,
                outcome
                    .as_deref()
                    .map_or("passed".to_owned(), |f| format!("failed: {f}"))
            ),
            (None, Some(failure)) => unexpected.push(format!("{}: {failure}", r.name)),
            (None, None) => {}
        }
    }
    assert!(
        unexpected.is_empty(),
        "checks moto should pass failed:\n{}",
        unexpected.join("\n")
    );
    assert_eq!(report.results().len(), untimed.len(), "{report}");
}
