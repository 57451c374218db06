//! Parsing both delivery modes: events from attributes, envelopes read and
//! checked, payloads, and input that is an error rather than a panic.

use std::collections::BTreeMap;

use super::*;
use crate::publish::envelope_json;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:global";

fn raw(body: &str, attrs: &[(&str, AttributeValue)]) -> ReceivedMessage {
    ReceivedMessage {
        sqs_message_id: "sqs-1".into(),
        receipt_handle: ReceiptHandle::new("rh"),
        body: body.into(),
        attributes: [
            (ATTR_RECEIVE_COUNT, "3"),
            (ATTR_SENT_TIMESTAMP, "1700000000000"),
        ]
        .into_iter()
        .collect(),
        message_attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn cfg(mode: DeliveryMode) -> ParseConfig {
    ParseConfig {
        mode,
        event_key: "iniesta_pass".into(),
        topic_arn: Some(TOPIC.into()),
    }
}

#[test]
fn raw_delivery_reads_event_from_attribute() {
    let m = parse(
        &raw(
            r#"{"a":1}"#,
            &[
                (
                    "iniesta_pass",
                    AttributeValue::String("Happened.svc".into()),
                ),
                ("version", AttributeValue::Number("1".into())),
            ],
        ),
        &cfg(DeliveryMode::Raw),
    )
    .unwrap();
    assert_eq!(m.event, "Happened.svc");
    assert_eq!(m.key(), "sqs-1");
    assert_eq!(*m.payload(), Payload::Json(serde_json::json!({"a": 1})));
    assert_eq!(m.receive_count, 3);
    assert_eq!(m.sent_timestamp, Some(1_700_000_000_000));
    assert_eq!(m.version(), Some(1.0));
    assert_eq!(m.sns_message_id, None);
}

#[test]
fn system_attributes_type_the_known_ones_and_keep_the_rest() {
    let attrs: SystemAttributes = [
        (ATTR_RECEIVE_COUNT, "x"),
        (ATTR_SENT_TIMESTAMP, "5"),
        (ATTR_FIRST_RECEIVE_TIMESTAMP, "-1"),
        ("SenderId", "me"),
    ]
    .into_iter()
    .collect();
    assert_eq!(attrs.receive_count, None);
    assert_eq!(attrs.sent_timestamp, Some(5));
    assert_eq!(attrs.first_receive_timestamp, None);
    assert_eq!(
        attrs.other,
        BTreeMap::from([
            (ATTR_RECEIVE_COUNT.to_owned(), "x".to_owned()),
            (ATTR_FIRST_RECEIVE_TIMESTAMP.to_owned(), "-1".to_owned()),
            ("SenderId".to_owned(), "me".to_owned()),
        ])
    );
    let m = ReceivedMessage {
        sqs_message_id: "m".into(),
        receipt_handle: ReceiptHandle::new("h"),
        body: String::new(),
        attributes: attrs,
        message_attributes: Attributes::new(),
    };
    assert_eq!(m.receive_count(), 1, "an unreadable count reads as 1");
}

#[test]
fn raw_delivery_without_event_is_an_error() {
    let e = parse(&raw("x", &[]), &cfg(DeliveryMode::Raw)).unwrap_err();
    assert_eq!(e, ParseError::MissingEvent("iniesta_pass".into()));
    let e = parse(
        &raw("x", &[("iniesta_pass", AttributeValue::Number("1".into()))]),
        &cfg(DeliveryMode::Raw),
    )
    .unwrap_err();
    assert_eq!(e, ParseError::EventNotString("iniesta_pass".into()));
}

#[test]
fn envelope_round_trips() {
    let attrs: BTreeMap<_, _> = [
        (
            "iniesta_pass".to_string(),
            AttributeValue::String("E.svc".into()),
        ),
        ("version".to_string(), AttributeValue::Number("1".into())),
        ("bin".to_string(), AttributeValue::Binary(vec![0, 1, 255])),
        (
            "arr".to_string(),
            AttributeValue::StringArray(r#"["a",1]"#.into()),
        ),
        // Escaped in the JSON: read into owned text, not borrowed.
        (
            "q\"uote\u{e9}".to_string(),
            AttributeValue::String("line\none \"two\"".into()),
        ),
    ]
    .into_iter()
    .collect();
    let body = envelope_json(TOPIC, "sns-9", "plain text", &attrs);
    let m = parse(&raw(&body, &[]), &cfg(DeliveryMode::Envelope)).unwrap();
    assert_eq!(m.event, "E.svc");
    assert_eq!(m.key(), "sns-9");
    assert_eq!(m.sns_message_id.as_deref(), Some("sns-9"));
    assert_eq!(*m.payload(), Payload::Text("plain text".into()));
    assert_eq!(m.attributes, attrs);
}

#[test]
fn plain_text_payload_is_text_and_json_payload_is_json() {
    for (body, json) in [
        ("hello", false),
        ("", false),
        ("  {\"a\":1} ", true),
        ("\n[1]", true),
        ("\"s\"", true),
        ("-1", true),
        ("42", true),
        ("true", true),
        ("null", true),
        ("nope", false),
        ("{broken", false),
        ("Ünïcode", false),
    ] {
        let m = parse(
            &raw(
                body,
                &[("iniesta_pass", AttributeValue::String("E.svc".into()))],
            ),
            &cfg(DeliveryMode::Raw),
        )
        .unwrap();
        assert_eq!(matches!(*m.payload(), Payload::Json(_)), json, "{body:?}");
        if !json {
            assert_eq!(*m.payload(), Payload::Text(body.into()));
        }
    }
}

#[test]
fn parse_owned_hands_back_the_delivery_on_error() {
    let r = raw("x", &[]);
    let (e, back) = parse_owned(r.clone(), &cfg(DeliveryMode::Raw)).unwrap_err();
    assert_eq!(e, ParseError::MissingEvent("iniesta_pass".into()));
    assert_eq!(back, r);
    let r = raw("{", &[]);
    let (_, back) = parse_owned(r.clone(), &cfg(DeliveryMode::Envelope)).unwrap_err();
    assert_eq!(back, r);
    let ok = raw(
        "b",
        &[("iniesta_pass", AttributeValue::String("E.svc".into()))],
    );
    let (m, handle) = parse_owned(ok.clone(), &cfg(DeliveryMode::Raw)).unwrap();
    assert_eq!(handle, ok.receipt_handle);
    assert_eq!(m, parse(&ok, &cfg(DeliveryMode::Raw)).unwrap());
}

#[test]
fn envelope_from_other_topic_is_rejected() {
    let attrs: BTreeMap<_, _> = [(
        "iniesta_pass".to_string(),
        AttributeValue::String("E.svc".into()),
    )]
    .into();
    let body = envelope_json("arn:aws:sns:us-east-1:1:other", "m", "{}", &attrs);
    let e = parse(&raw(&body, &[]), &cfg(DeliveryMode::Envelope)).unwrap_err();
    assert!(matches!(e, ParseError::WrongTopic { .. }), "{e}");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for body in ["", "{", "[]", "null", r#"{"Type":"Notification"}"#, "\u{0}"] {
        assert!(parse(&raw(body, &[]), &cfg(DeliveryMode::Envelope)).is_err());
    }
    let body =
        r#"{"Type":"SubscriptionConfirmation","MessageId":"m","TopicArn":"t","Message":"x"}"#;
    assert!(matches!(
        parse(&raw(body, &[]), &cfg(DeliveryMode::Envelope)),
        Err(ParseError::NotAnEnvelope(_))
    ));
    let body = r#"{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:123456789012:global","Message":"x","MessageAttributes":{"b":{"Type":"Binary","Value":"!!"}}}"#;
    assert!(matches!(
        parse(&raw(body, &[]), &cfg(DeliveryMode::Envelope)),
        Err(ParseError::BadAttribute { name, .. }) if name == "b"
    ));
}
