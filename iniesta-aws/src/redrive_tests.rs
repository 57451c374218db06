use std::collections::HashMap;

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;

use super::*;

fn attribute(kind: &str, value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type(kind)
        .string_value(value)
        .build()
        .unwrap()
}

fn dead_letter(body: &str) -> Message {
    Message::builder()
        .message_id("m-1")
        .receipt_handle("r-1")
        .body(body)
        .message_attributes("iniesta_pass", attribute("String", "Created.orders"))
        .message_attributes("version", attribute("Number", "2"))
        .message_attributes(
            "blob",
            MessageAttributeValue::builder()
                .data_type("Binary.gz")
                .binary_value(Blob::new(vec![0, 1, 2]))
                .build()
                .unwrap(),
        )
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "5")
        .build()
}

#[test]
fn the_dead_letter_target_is_read_from_the_redrive_policy() {
    let arn = "arn:aws:sqs:us-east-1:123456789012:orders-dlq";
    let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#);
    assert_eq!(dead_letter_target_arn(&policy).as_deref(), Ok(arn));
    assert_eq!(
        dead_letter_target_arn(r#"{"maxReceiveCount":5}"#),
        Err("has no deadLetterTargetArn".to_owned())
    );
    assert!(dead_letter_target_arn(r#"{"deadLetterTargetArn":7}"#)
        .unwrap_err()
        .contains("not an ARN"));
    assert!(dead_letter_target_arn("{")
        .unwrap_err()
        .starts_with("is not JSON"));
}

#[test]
fn a_queue_arn_gives_its_account_and_name() {
    assert_eq!(
        queue_arn_parts("arn:aws:sqs:eu-west-1:123456789012:orders-dlq"),
        Some(("123456789012", "orders-dlq"))
    );
    assert_eq!(
        queue_arn_parts("arn:aws-cn:sqs:cn-north-1:1:q.fifo"),
        Some(("1", "q.fifo"))
    );
    assert_eq!(queue_arn_parts("arn:aws:sns:us-east-1:1:topic"), None);
    assert_eq!(queue_arn_parts("arn:aws:sqs:us-east-1::q"), None);
    assert_eq!(queue_arn_parts("orders-dlq"), None);
}

#[test]
fn the_copy_keeps_body_and_message_attributes_but_no_receive_count() {
    let m = dead_letter(r#"{"n":1}"#);
    let entry = send_entry(3, &m).unwrap();
    assert_eq!(entry.id(), "3");
    assert_eq!(entry.message_body(), r#"{"n":1}"#);
    let attrs = entry.message_attributes().unwrap();
    assert_eq!(attrs.len(), 3);
    assert_eq!(attrs["iniesta_pass"], attribute("String", "Created.orders"));
    assert_eq!(attrs["version"], attribute("Number", "2"));
    assert_eq!(attrs["blob"].data_type(), "Binary.gz");
    assert_eq!(attrs["blob"].binary_value().unwrap().as_ref(), &[0, 1, 2]);
    // A standard queue's message has no group; SQS rejects one there.
    assert_eq!(entry.message_group_id(), None);
    assert_eq!(entry.message_deduplication_id(), None);
}

#[test]
fn a_fifo_copy_keeps_its_group_and_deduplication_id() {
    let m = Message::builder()
        .message_id("m-1")
        .receipt_handle("r-1")
        .body("x")
        .set_attributes(Some(HashMap::from([
            (MessageSystemAttributeName::MessageGroupId, "g-1".to_owned()),
            (
                MessageSystemAttributeName::MessageDeduplicationId,
                "d-1".to_owned(),
            ),
        ])))
        .build();
    let entry = send_entry(0, &m).unwrap();
    assert_eq!(entry.message_group_id(), Some("g-1"));
    assert_eq!(entry.message_deduplication_id(), Some("d-1"));
    assert_eq!(entry.message_attributes(), None);
}

#[test]
fn the_size_counts_the_body_and_every_attribute() {
    let m = dead_letter("12345");
    // body 5; "iniesta_pass" 12 + "String" 6 + 14; "version" 7 + "Number" 6
    // + 1; "blob" 4 + "Binary.gz" 9 + 3 bytes.
    assert_eq!(
        message_size(&m),
        5 + (12 + 6 + 14) + (7 + 6 + 1) + (4 + 9 + 3)
    );
    assert_eq!(message_size(&Message::builder().build()), 0);
}

#[test]
fn dead_letters_are_sent_in_calls_within_the_sqs_limits() {
    // Ten 30 KiB messages are 300 KiB: more than one call takes.
    let sizes = vec![30 * 1024; 10];
    assert_eq!(
        plan_batches(&sizes, MAX_BATCH, MAX_SEND_BATCH_BYTES),
        vec![0..8, 8..10]
    );
}

#[test]
fn a_report_is_complete_only_when_every_message_moved() {
    let mut report = RedriveReport {
        moved: 3,
        ..RedriveReport::default()
    };
    assert!(report.is_complete());
    assert_eq!(report.sent(), 3);
    report.not_deleted.push(RedriveFailure {
        message_id: "m".into(),
        error: BackendError::message("x"),
    });
    assert!(!report.is_complete());
    assert_eq!(
        report.sent(),
        4,
        "sent, though still in the dead-letter queue"
    );
}

#[test]
fn the_no_dead_letter_queue_error_says_how_to_get_one() {
    let e = RedriveError::NoDeadLetterQueue {
        queue: "http://q".into(),
    };
    let text = e.to_string();
    assert!(text.contains("has no dead-letter queue"), "{text}");
    assert!(text.contains("RedrivePolicy"), "{text}");
    assert!(text.contains("--dead-letter-after"), "{text}");
}
