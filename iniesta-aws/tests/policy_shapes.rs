//! The queue-policy evaluator against policy shapes found in real accounts.
//! No server needed.

use iniesta_aws::{evaluate_queue_policy, queue_policy_json, PolicyVerdict};

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:iniesta-dev-users";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:global";
const OTHER_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:other";

fn verdict(policy: &str) -> PolicyVerdict {
    evaluate_queue_policy(policy, QUEUE, TOPIC)
}

fn allowed(policy: &str) -> bool {
    matches!(verdict(policy), PolicyVerdict::Allowed { .. })
}

#[test]
fn the_provisioned_policy_allows_exactly_its_topic() {
    let p = queue_policy_json(QUEUE, TOPIC);
    assert!(allowed(&p), "{:?}", verdict(&p));
    assert!(matches!(
        evaluate_queue_policy(&p, QUEUE, OTHER_TOPIC),
        PolicyVerdict::NotAllowed { .. }
    ));
}

#[test]
fn console_shape_with_action_list_and_capitals() {
    // What the SQS console writes when subscribing a queue to a topic.
    let p = format!(
        r#"{{
          "Version": "2012-10-17",
          "Id": "{QUEUE}/SQSDefaultPolicy",
          "Statement": [{{
            "Sid": "topic-subscription-{TOPIC}",
            "Effect": "Allow",
            "Principal": {{"AWS": "*"}},
            "Action": ["SQS:SendMessage", "SQS:ReceiveMessage"],
            "Resource": "{QUEUE}",
            "Condition": {{"ArnLike": {{"aws:SourceArn": "{TOPIC}"}}}}
          }}]
        }}"#
    );
    assert!(allowed(&p), "{:?}", verdict(&p));
}

#[test]
fn string_action_wildcards_and_single_statement_object() {
    for action in ["sqs:*", "*", "sqs:Send*", "SQS:SENDMESSAGE"] {
        let p = format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"Service": "sns.amazonaws.com"}},
                "Action": "{action}", "Resource": "*",
                "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}}}}"#
        );
        assert!(allowed(&p), "{action}: {:?}", verdict(&p));
    }
    let p = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "sqs:ReceiveMessage",
            "Resource": "{QUEUE}", "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}}]}}"#
    );
    assert!(
        !verdict(&p).allows(),
        "ReceiveMessage does not allow sending"
    );
}

#[test]
fn arn_like_with_wildcards_and_case_insensitive_key() {
    let p = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
            "Resource": "arn:aws:sqs:*:123456789012:iniesta-*",
            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:sns:*:123456789012:*"}}}]}"#;
    assert!(allowed(p), "{:?}", verdict(p));
    let p = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
            "Resource": "{QUEUE}",
            "Condition": {{"StringLike": {{"aws:sourcearn": ["arn:aws:sns:*:999:*", "{TOPIC}"]}}}}}}]}}"#
    );
    assert!(allowed(&p), "{:?}", verdict(&p));
}

#[test]
fn statement_for_another_queue_or_topic_does_not_count() {
    let p = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
            "Resource": "arn:aws:sqs:us-east-1:123456789012:another-queue",
            "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}}]}}"#
    );
    assert!(!verdict(&p).allows());
    let p = queue_policy_json(QUEUE, OTHER_TOPIC);
    match verdict(&p) {
        PolicyVerdict::NotAllowed { reason } => {
            assert!(
                reason.contains(OTHER_TOPIC),
                "names the allowed source: {reason}"
            )
        }
        v => panic!("expected NotAllowed, got {v:?}"),
    }
}

#[test]
fn missing_source_condition_is_a_warning_not_a_failure() {
    let p = format!(
        r#"{{"Statement": [{{"Sid": "Open", "Effect": "Allow", "Principal": "*",
            "Action": "sqs:SendMessage", "Resource": "{QUEUE}"}}]}}"#
    );
    assert_eq!(
        verdict(&p),
        PolicyVerdict::AllowedFromAnySource {
            statement: "\"Open\"".into()
        }
    );
    assert!(verdict(&p).allows());
}

#[test]
fn deny_never_allows_and_beats_allow() {
    let deny_only = format!(
        r#"{{"Statement": [{{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage",
            "Resource": "{QUEUE}", "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}}]}}"#
    );
    assert!(!verdict(&deny_only).allows());

    let allow_and_deny = format!(
        r#"{{"Statement": [
            {{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "{QUEUE}",
              "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}},
            {{"Sid": "NoSns", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*"}}
        ]}}"#
    );
    match verdict(&allow_and_deny) {
        PolicyVerdict::NotAllowed { reason } => assert!(reason.contains("NoSns"), "{reason}"),
        v => panic!("expected NotAllowed, got {v:?}"),
    }

    // A Deny aimed at another topic is ignored.
    let deny_other = format!(
        r#"{{"Statement": [
            {{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "{QUEUE}",
              "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}},
            {{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "{QUEUE}",
              "Condition": {{"ArnEquals": {{"aws:SourceArn": "{OTHER_TOPIC}"}}}}}}
        ]}}"#
    );
    assert!(allowed(&deny_other), "{:?}", verdict(&deny_other));
}

#[test]
fn principal_must_include_sns() {
    let p = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::123456789012:root"}},
            "Action": "sqs:SendMessage", "Resource": "{QUEUE}",
            "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}}]}}"#
    );
    assert!(!verdict(&p).allows());
    let p = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"Service": ["lambda.amazonaws.com", "sns.amazonaws.com"]}},
            "Action": "sqs:SendMessage", "Resource": "{QUEUE}",
            "Condition": {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}}}}]}}"#
    );
    assert!(allowed(&p), "{:?}", verdict(&p));
}

#[test]
fn garbage_is_not_allowed_and_does_not_panic() {
    for p in [
        "",
        "{",
        "null",
        "[]",
        r#"{"Statement": 3}"#,
        r#"{"Statement": [1, "x", null]}"#,
    ] {
        assert!(!verdict(p).allows(), "{p:?}");
    }
}
