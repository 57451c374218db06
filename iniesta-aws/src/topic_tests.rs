//! The SNS topic's unit tests: size limits checked before sending and
//! message attributes keeping their type.

use super::*;
use std::collections::BTreeMap;

#[test]
fn oversized_messages_are_refused_before_sending() {
    let big = OutgoingMessage {
        body: "x".repeat(MAX_MESSAGE_BYTES + 1),
        attributes: BTreeMap::new(),
        ..Default::default()
    };
    assert!(size_error(&big).is_some());
    let small = OutgoingMessage {
        body: "x".into(),
        attributes: BTreeMap::from([("a".into(), AttributeValue::Binary(vec![1]))]),
        ..Default::default()
    };
    assert!(size_error(&small).is_none());
}

#[test]
fn attributes_keep_their_type() {
    let v = attribute_to_sns(&AttributeValue::StringArray("[1]".into())).unwrap();
    assert_eq!(v.data_type(), "String.Array");
    assert_eq!(v.string_value(), Some("[1]"));
    let v = attribute_to_sns(&AttributeValue::Binary(vec![7])).unwrap();
    assert_eq!(v.binary_value().map(|b| b.as_ref().to_vec()), Some(vec![7]));
}
