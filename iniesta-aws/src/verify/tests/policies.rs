//! Checks 4 and 5 on hand-built facts: the filter policy compared as a set,
//! and the queue policy's statements, actions and source condition.

use super::*;

#[test]
fn filter_policy_is_compared_as_a_set() {
    let same = r#"{ "iniesta_pass" : [ {"prefix": "Order."}, "UserCreated.users" ] }"#;
    let result = check_filter_policy(&request(), &with_filter_policy(Some(same)));
    assert_eq!(
        passed(&result),
        format!("filter policy {}", filters(FILTERS).to_json_string())
    );

    let other = r#"{"iniesta_pass": ["UserCreated.users", "Payment.billing"]}"#;
    let result = check_filter_policy(&request(), &with_filter_policy(Some(other)));
    let (reason, fix) = failed(&result);
    assert_eq!(
        reason,
        format!("subscription filter policy {other} differs from the configured filters (missing Order.*; extra Payment.billing)")
    );
    assert!(fix.contains(&filters(FILTERS).to_json_string()), "{fix}");

    let expected = filters(FILTERS);
    let diff = |got: &str| filter_policy_difference(&expected, got);
    assert_eq!(
        diff(r#"{"iniesta_pass": ["UserCreated.users"]}"#),
        "missing Order.*"
    );
    assert_eq!(
        diff(r#"{"iniesta_pass": ["UserCreated.users", {"prefix": "Order."}, "X.y"]}"#),
        "extra X.y"
    );
    assert_eq!(
        diff(r#"{"other": ["UserCreated.users"]}"#),
        r#"it filters on attribute "other", the consumer on "iniesta_pass""#
    );
    assert!(diff(r#"{"iniesta_pass": [{"numeric": [">", 1]}]}"#).contains("not valid"));
}

#[test]
fn filter_policy_failures_and_skips() {
    for absent in [None, Some(""), Some("  ")] {
        let result = check_filter_policy(&request(), &with_filter_policy(absent));
        assert!(failed(&result)
            .0
            .ends_with("has no filter policy, so the queue receives every event"));
    }
    let mut body = healthy();
    subscription_attributes(&mut body).filter_policy_scope = Some("MessageBody".into());
    let result = check_filter_policy(&request(), &body);
    assert_eq!(
        failed(&result).1,
        format!("set FilterPolicyScope=MessageAttributes on subscription {SUBSCRIPTION}")
    );
    subscription_attributes(&mut body).filter_policy_scope = Some("MessageAttributes".into());
    passed(&check_filter_policy(&request(), &body));

    let unread = Facts {
        subscription: Some(SubscriptionLookup::Confirmed {
            arn: SUBSCRIPTION.into(),
            attributes: Err(denied()),
        }),
        ..healthy()
    };
    assert!(failed(&check_filter_policy(&request(), &unread))
        .1
        .contains("sns:GetSubscriptionAttributes"));
    assert!(failed(&check_delivery_mode(&request(), &unread))
        .0
        .starts_with("cannot read the attributes"));

    let lenient = VerifyRequest {
        assert_filter_policies: false,
        ..request()
    };
    let wrong = with_filter_policy(Some(r#"{"iniesta_pass": ["Other.svc"]}"#));
    assert_eq!(
        skipped(&check_filter_policy(&lenient, &wrong)),
        "INIESTA_ASSERT_FILTER_POLICIES is false"
    );

    // No filters configured fails even before the subscription is known.
    let unfiltered = VerifyRequest {
        filter_policy: None,
        ..request()
    };
    let facts = Facts {
        subscription: Some(SubscriptionLookup::Missing),
        ..healthy()
    };
    assert_eq!(
        failed(&check_filter_policy(&unfiltered, &facts)).0,
        "no filters are configured"
    );
    assert_eq!(
        skipped(&check_filter_policy(&request(), &facts)),
        "not checked because the queue is not subscribed to the topic"
    );
}

fn policy(statements: &[String]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

fn statement(sid: &str, action: &str, source: Option<&str>) -> String {
    let condition = source
        .map(|arn| format!(r#","Condition":{{"ArnEquals":{{"aws:SourceArn":"{arn}"}}}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"Sid":"{sid}","Effect":"Allow","Principal":{{"Service":"sns.amazonaws.com"}},"Action":"{action}","Resource":"{QUEUE_ARN}"{condition}}}"#
    )
}

#[test]
fn any_queue_policy_statement_may_allow_not_only_the_first() {
    let receive = statement("Receive", "sqs:ReceiveMessage", Some(TOPIC));
    let send = statement("TopicSend", "sqs:SendMessage", Some(TOPIC));
    for statements in [
        vec![send.clone(), receive.clone()],
        vec![receive.clone(), send.clone()],
    ] {
        let result = check_queue_policy(&request(), &with_queue_policy(&policy(&statements)));
        assert_eq!(
            passed(&result),
            format!("statement \"TopicSend\" allows topic {TOPIC}")
        );
    }
    // A later statement naming the topic outranks an earlier open one.
    let open = statement("Open", "sqs:SendMessage", None);
    let result = check_queue_policy(&request(), &with_queue_policy(&policy(&[open, send])));
    assert!(passed(&result).contains("\"TopicSend\""));
    // Only unrelated statements: nothing allows.
    let result = check_queue_policy(&request(), &with_queue_policy(&policy(&[receive])));
    let (reason, fix) = failed(&result);
    assert!(
        reason.starts_with("no statement allows sns.amazonaws.com"),
        "{reason}"
    );
    assert!(fix.contains(&queue_policy_json(QUEUE_ARN, TOPIC)), "{fix}");
}

#[test]
fn queue_policy_actions_are_case_insensitive() {
    for action in [
        "SQS:SendMessage",
        "sqs:sendmessage",
        "Sqs:SENDMESSAGE",
        "sqs:*",
        "SQS:*",
        "*",
    ] {
        let facts = with_queue_policy(&policy(&[statement("S", action, Some(TOPIC))]));
        passed(&check_queue_policy(&request(), &facts));
    }
    for action in ["sqs:ReceiveMessage", "sns:Publish"] {
        let facts = with_queue_policy(&policy(&[statement("S", action, Some(TOPIC))]));
        failed(&check_queue_policy(&request(), &facts));
    }
}

#[test]
fn queue_policy_without_source_arn_is_a_warning() {
    let facts = with_queue_policy(&policy(&[statement("Open", "SQS:SendMessage", None)]));
    let result = check_queue_policy(&request(), &facts);
    let (reason, fix) = warned(&result);
    assert!(
        reason.starts_with(
            "statement \"Open\" allows sqs:SendMessage without an aws:SourceArn condition"
        ),
        "{reason}"
    );
    assert!(
        reason.ends_with("any SNS topic may send to this queue"),
        "{reason}"
    );
    assert_eq!(
        fix,
        format!(r#"add the condition {{"ArnEquals": {{"aws:SourceArn": "{TOPIC}"}}}} to it"#)
    );
    let report = judge(&request(), &facts);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.warnings().len(), 1, "{report}");
}

#[test]
fn queue_policy_failures_and_skips() {
    let other = with_queue_policy(&queue_policy_json(QUEUE_ARN, OTHER_TOPIC));
    let reason = failed(&check_queue_policy(&request(), &other)).0.to_owned();
    assert_eq!(
        reason,
        format!("the queue policy only allows aws:SourceArn {OTHER_TOPIC}, not topic {TOPIC}")
    );

    let deny = r#"{"Statement":[{"Sid":"Block","Effect":"Deny","Principal":"*","Action":"sqs:SendMessage"}]}"#;
    let reason = failed(&check_queue_policy(&request(), &with_queue_policy(deny)))
        .0
        .to_owned();
    assert!(reason.contains("\"Block\" denies"), "{reason}");

    let mut none = healthy();
    queue_attributes(&mut none).policy = None;
    assert_eq!(
        failed(&queue_policy_result(None, QUEUE_ARN, TOPIC)).0,
        "the queue has no access policy, so SNS cannot deliver to it"
    );
    assert_eq!(
        check_queue_policy(&request(), &none),
        queue_policy_result(None, QUEUE_ARN, TOPIC)
    );

    let no_topic = VerifyRequest {
        topic_arn: None,
        ..request()
    };
    assert_eq!(
        skipped(&check_queue_policy(&no_topic, &healthy())),
        "not checked because no topic is configured"
    );
    let gone = Facts {
        topic: Some(Err(denied())),
        ..healthy()
    };
    assert_eq!(
        skipped(&check_queue_policy(&request(), &gone)),
        "not checked because the topic could not be verified"
    );
    let unresolved = Facts {
        queue: None,
        ..healthy()
    };
    assert_eq!(
        skipped(&check_queue_policy(&request(), &unresolved)),
        "not checked because the queue could not be resolved"
    );
    let out = check_queue_policy(&scoped(VerifyScope::SnsProducer), &healthy());
    assert_eq!(skipped(&out), "not part of SNS_PRODUCER");
}
