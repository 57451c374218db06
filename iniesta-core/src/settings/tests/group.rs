//! `INIESTA_SNS_FIFO_GROUP`: reading the rule, the group it gives a
//! message, and the checks of group and deduplication ids.

use std::collections::BTreeMap;

use super::*;
use crate::message::AttributeValue;
use crate::ports::OutgoingMessage;

fn message(body: &str, attributes: &[(&str, AttributeValue)]) -> OutgoingMessage {
    let attributes: BTreeMap<String, AttributeValue> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    OutgoingMessage::new(body, attributes)
}

#[test]
fn unset_means_no_rule() {
    assert_eq!(load(&[]).unwrap().fifo_group, None);
    assert_eq!(
        load(&[("INIESTA_SNS_FIFO_GROUP", "  ")])
            .unwrap()
            .fifo_group,
        None
    );
}

#[test]
fn the_three_rules_are_read() {
    let rule = |v: &str| load(&[("INIESTA_SNS_FIFO_GROUP", v)]).unwrap().fifo_group;
    assert_eq!(
        rule("fixed:orders"),
        Some(FifoGroup::Fixed("orders".into()))
    );
    assert_eq!(
        rule("attribute:iniesta_pass"),
        Some(FifoGroup::Attribute("iniesta_pass".into()))
    );
    assert_eq!(
        rule("JSON: /order/id"),
        Some(FifoGroup::JsonField("/order/id".into()))
    );
    // Written back as read.
    assert_eq!(FifoGroup::JsonField("/a".into()).to_string(), "json:/a");
}

#[test]
fn bad_rules_name_the_variable_the_value_and_what_was_expected() {
    for (value, expected) in [
        ("orders", "expected fixed:GROUP"),
        ("group:orders", "expected fixed:GROUP"),
        ("fixed:", "the group of fixed: is empty"),
        ("fixed:two words", "contains ' '"),
        ("attribute:", "expected a message attribute name"),
        (
            "json:user_id",
            "expected a JSON Pointer starting with `/` after json: (e.g. json:/user_id)",
        ),
    ] {
        let e = load(&[("INIESTA_SNS_FIFO_GROUP", value)]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("INIESTA_SNS_FIFO_GROUP"), "{value}: {text}");
        assert!(text.contains(&format!("{value:?}")), "{value}: {text}");
        assert!(text.contains(expected), "{value}: {text}");
    }
    let long = format!("fixed:{}", "g".repeat(129));
    let text = load(&[("INIESTA_SNS_FIFO_GROUP", &long)])
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("has 129 characters; expected at most 128"),
        "{text}"
    );
}

#[test]
fn a_fixed_rule_groups_everything_together() {
    let rule = FifoGroup::Fixed("all".into());
    assert_eq!(rule.group_for(&message("{}", &[])), Ok("all".into()));
}

#[test]
fn an_attribute_rule_takes_a_string_or_number_attribute() {
    let rule = FifoGroup::Attribute("tenant".into());
    let m = message("x", &[("tenant", AttributeValue::String("acme".into()))]);
    assert_eq!(rule.group_for(&m), Ok("acme".into()));
    let m = message("x", &[("tenant", AttributeValue::Number("42".into()))]);
    assert_eq!(rule.group_for(&m), Ok("42".into()));

    let e = rule.group_for(&message("x", &[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "INIESTA_SNS_FIFO_GROUP=attribute:tenant: the message has no attribute \"tenant\" \
         to take its group from"
    );
    let m = message("x", &[("tenant", AttributeValue::Binary(vec![1]))]);
    let e = rule.group_for(&m).unwrap_err().to_string();
    assert!(e.contains("of type Binary"), "{e}");
}

#[test]
fn a_json_rule_takes_a_scalar_field_of_the_payload() {
    let rule = FifoGroup::JsonField("/order/customer".into());
    let group = |body: &str| rule.group_for(&message(body, &[]));
    assert_eq!(group(r#"{"order": {"customer": "c-7"}}"#), Ok("c-7".into()));
    assert_eq!(group(r#"{"order": {"customer": 7}}"#), Ok("7".into()));
    assert_eq!(group(r#"{"order": {"customer": true}}"#), Ok("true".into()));

    let reason = |body: &str| group(body).unwrap_err().reason;
    assert_eq!(
        reason(r#"{"order": {}}"#),
        "the payload has no field /order/customer"
    );
    assert!(reason("not json").starts_with("the payload is not JSON"));
    assert!(reason(r#"{"order": {"customer": null}}"#).contains("is null"));
    assert!(reason(r#"{"order": {"customer": {"id": 1}}}"#).contains("a group comes from"));
}

#[test]
fn a_group_a_rule_gives_must_be_a_valid_id() {
    let rule = FifoGroup::JsonField("/name".into());
    let e = rule
        .group_for(&message(r#"{"name": "José"}"#, &[]))
        .unwrap_err();
    assert!(e.reason.contains("contains 'é'"), "{e}");
    let e = rule
        .group_for(&message(r#"{"name": ""}"#, &[]))
        .unwrap_err();
    assert!(e.reason.contains("is empty"), "{e}");
}

#[test]
fn fifo_ids_are_1_to_128_ascii_letters_digits_and_punctuation() {
    assert_eq!(check_fifo_id("a"), Ok(()));
    assert_eq!(check_fifo_id(&"x".repeat(128)), Ok(()));
    assert_eq!(
        check_fifo_id("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~09AZaz"),
        Ok(())
    );
    assert!(check_fifo_id("").unwrap_err().starts_with("is empty"));
    assert_eq!(
        check_fifo_id(&"x".repeat(129)).unwrap_err(),
        "has 129 characters; expected at most 128"
    );
    assert!(check_fifo_id("a b").unwrap_err().contains("' '"));
    assert!(check_fifo_id("tab\t").is_err());
    assert!(check_fifo_id("ü").is_err());
}
