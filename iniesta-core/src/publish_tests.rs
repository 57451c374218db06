//! The publisher's wire format: event names, attributes and the size
//! limit, and the SNS envelope around a delivered message.

use std::collections::BTreeMap;

use super::*;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:global";

#[test]
fn suffix_rule() {
    assert_eq!(
        qualify_event("Created", Some("users"), false).unwrap(),
        "Created.users"
    );
    assert_eq!(
        qualify_event("Created.users", Some("users"), false).unwrap(),
        "Created.users"
    );
    assert_eq!(
        qualify_event("Createdusers", Some("users"), false).unwrap(),
        "Createdusers.users"
    );
    assert_eq!(
        qualify_event("Created.other", Some("other2"), true).unwrap(),
        "Created.other"
    );
    assert!(matches!(
        qualify_event("Created", None, false),
        Err(PublishError::NoServiceName(_))
    ));
    assert_eq!(
        qualify_event("", Some("s"), false),
        Err(PublishError::EmptyEvent)
    );
}

#[test]
fn wire_format_and_limit() {
    let m = event_message("iniesta_pass", "Created.users", "{}", 1).unwrap();
    assert_eq!(
        m.attributes["iniesta_pass"],
        AttributeValue::String("Created.users".into())
    );
    assert_eq!(m.attributes["version"], AttributeValue::Number("1".into()));
    let big = "x".repeat(MAX_MESSAGE_BYTES);
    assert!(matches!(
        event_message("iniesta_pass", "E.s", big, 1),
        Err(PublishError::TooLarge { .. })
    ));
}

#[test]
fn envelope_json_is_the_json_of_the_envelope() {
    let attrs: BTreeMap<_, _> = [
        (
            "iniesta_pass".to_string(),
            AttributeValue::String("E.svc".into()),
        ),
        (
            "q\"uote".to_string(),
            AttributeValue::String("\\n\u{1}é".into()),
        ),
        ("bin".to_string(), AttributeValue::Binary(vec![0, 1, 255])),
    ]
    .into_iter()
    .collect();
    let message = "line\none \"two\" \u{7f}";
    let text = envelope_json(TOPIC, "sns-1", message, &attrs);
    let expected = serde_json::json!({
        "Type": "Notification",
        "MessageId": "sns-1",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "1970-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "MessageAttributes": {
            "iniesta_pass": {"Type": "String", "Value": "E.svc"},
            "q\"uote": {"Type": "String", "Value": "\\n\u{1}é"},
            "bin": {"Type": "Binary", "Value": "AAH/"},
        },
    });
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, expected);
    assert_eq!(text, expected.to_string());
    assert_eq!(
        envelope_json(TOPIC, "m", "", &BTreeMap::new()),
        serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": TOPIC, "Message": "",
            "Timestamp": "1970-01-01T00:00:00.000Z", "SignatureVersion": "1",
            "MessageAttributes": {},
        })
        .to_string()
    );
}
