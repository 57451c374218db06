//! The queue-policy module's unit tests: IAM wildcard matching and merging
//! the topic's statement into an existing policy.

use super::*;

#[test]
fn glob_matches_like_iam() {
    assert!(glob(
        "arn:aws:sns:*:123:topic",
        "arn:aws:sns:us-east-1:123:topic"
    ));
    assert!(glob("*", "anything"));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(!glob(
        "arn:aws:sns:*:123:topic",
        "arn:aws:sns:us-east-1:123:topic2"
    ));
    assert!(glob(
        "arn:aws:sns:*:123:topic*",
        "arn:aws:sns:us-east-1:123:topic2"
    ));
}

#[test]
fn merge_keeps_other_statements_and_is_idempotent() {
    let q = "arn:aws:sqs:us-east-1:1:q";
    let t = "arn:aws:sns:us-east-1:1:t";
    let other = r#"{"Version":"2012-10-17","Statement":{"Sid":"Other","Effect":"Allow","Principal":"*","Action":"sqs:ReceiveMessage","Resource":"*"}}"#;
    let once = merge_send_statement(Some(other), q, t);
    let twice = merge_send_statement(Some(&once), q, t);
    assert_eq!(once, twice);
    let v: Value = serde_json::from_str(&twice).unwrap();
    assert_eq!(v["Statement"].as_array().unwrap().len(), 2);
    assert!(matches!(
        evaluate_queue_policy(&twice, q, t),
        PolicyVerdict::Allowed { .. }
    ));
    assert_eq!(
        merge_send_statement(Some("garbage"), q, t),
        queue_policy_json(q, t)
    );
}
