//! The SQS queue's unit tests: queue names, whole-second visibility, batch
//! results and message attribute conversion.

use super::*;

/// Converts an attribute to its SQS form (the inverse of
/// `attribute_from_sqs`), to test the round trip.
fn attribute_to_sqs(
    value: &AttributeValue,
) -> Result<MessageAttributeValue, aws_sdk_sqs::error::BuildError> {
    let builder = MessageAttributeValue::builder().data_type(value.data_type());
    match value {
        AttributeValue::String(s) | AttributeValue::Number(s) | AttributeValue::StringArray(s) => {
            builder.string_value(s)
        }
        AttributeValue::Binary(b) => {
            builder.binary_value(aws_sdk_sqs::primitives::Blob::new(b.clone()))
        }
    }
    .build()
}

#[test]
fn queue_name_prefers_explicit_then_template() {
    assert_eq!(
        queue_name(None, DEFAULT_QUEUE_NAME_TEMPLATE, "prod", "users"),
        "iniesta-prod-users"
    );
    assert_eq!(
        queue_name(Some("q"), DEFAULT_QUEUE_NAME_TEMPLATE, "prod", "users"),
        "q"
    );
    assert_eq!(
        queue_name(Some(""), "{service_name}_{env}", "dev", "x"),
        "x_dev"
    );
}

#[test]
fn visibility_is_rounded_up_and_clamped() {
    assert_eq!(sdk_visibility(Duration::ZERO), 0);
    assert_eq!(sdk_visibility(Duration::from_millis(800)), 1);
    assert_eq!(sdk_visibility(Duration::from_secs(5)), 5);
    assert_eq!(sdk_visibility(Duration::from_millis(5001)), 6);
    assert_eq!(sdk_visibility(Duration::from_secs(1 << 40)), 43_200);
    assert_eq!(sdk_visibility(Duration::MAX), 43_200);
}

#[test]
fn change_visibility_entries_carry_rounded_seconds() {
    let entries = visibility_entries(&[
        // A heartbeat extension of a 0.8 s lock timeout.
        (ReceiptHandle::new("a"), Duration::from_millis(800)),
        (ReceiptHandle::new("b"), Duration::ZERO),
        (ReceiptHandle::new("c"), Duration::from_millis(2500)),
        (ReceiptHandle::new("d"), Duration::from_secs(13 * 3600)),
    ])
    .unwrap();
    let sent: Vec<(&str, &str, Option<i32>)> = entries
        .iter()
        .map(|e| (e.id(), e.receipt_handle(), e.visibility_timeout()))
        .collect();
    assert_eq!(
        sent,
        [
            ("0", "a", Some(1)),
            ("1", "b", Some(0)),
            ("2", "c", Some(3)),
            ("3", "d", Some(43_200)),
        ]
    );
}

#[test]
fn batch_results_keep_order_and_flag_missing_entries() {
    let failed = [BatchResultErrorEntry::builder()
        .id("1")
        .code("ReceiptHandleIsInvalid")
        .message("bad handle")
        .sender_fault(true)
        .build()
        .unwrap()];
    let r = batch_results(3, ["0"].into_iter(), &failed);
    assert_eq!(r[0], Ok(()));
    assert_eq!(
        r[1],
        Err(BackendError::new("ReceiptHandleIsInvalid", "bad handle"))
    );
    assert!(r[2].is_err());
}

#[test]
fn attributes_fall_to_base_type() {
    let v = |t: &str, s: &str| {
        MessageAttributeValue::builder()
            .data_type(t)
            .string_value(s)
            .build()
            .unwrap()
    };
    assert_eq!(
        attribute_from_sqs(&v("Number.float", "1.5")),
        Some(AttributeValue::Number("1.5".into()))
    );
    assert_eq!(
        attribute_from_sqs(&v("String.uuid", "u")),
        Some(AttributeValue::String("u".into()))
    );
    assert_eq!(
        attribute_from_sqs(&v("String.Array", "[\"a\"]")),
        Some(AttributeValue::StringArray("[\"a\"]".into()))
    );
    let b = MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![1, 2]))
        .build()
        .unwrap();
    assert_eq!(
        attribute_from_sqs(&b),
        Some(AttributeValue::Binary(vec![1, 2]))
    );
    assert_eq!(attribute_from_sqs(&v("Weird", "x")), None);
    for a in [
        AttributeValue::String("s".into()),
        AttributeValue::Number("2".into()),
        AttributeValue::Binary(vec![9]),
        AttributeValue::StringArray("[1]".into()),
    ] {
        assert_eq!(attribute_from_sqs(&attribute_to_sqs(&a).unwrap()), Some(a));
    }
}

#[test]
fn receive_asks_for_the_fifo_system_attributes_by_name() {
    let names = system_attribute_names();
    assert!(names.contains(&MessageSystemAttributeName::All));
    for name in [
        MessageSystemAttributeName::MessageGroupId,
        MessageSystemAttributeName::SequenceNumber,
        MessageSystemAttributeName::MessageDeduplicationId,
        MessageSystemAttributeName::ApproximateReceiveCount,
        MessageSystemAttributeName::SentTimestamp,
    ] {
        assert!(names.contains(&name), "{name:?} missing from {names:?}");
    }
    // Each is a name the SDK (and so SQS) knows, not an unknown spelling.
    for name in &names {
        assert!(
            MessageSystemAttributeName::values().contains(&name.as_str()),
            "{name:?}"
        );
    }
}
