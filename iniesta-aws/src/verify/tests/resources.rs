//! Checks 1, 2, 3 and 6 and the advisory checks on hand-built facts, and
//! the fixes suggested for failed calls.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

#[test]
fn topic_check() {
    assert_eq!(
        passed(&check_topic(&request(), &healthy())),
        format!("topic {TOPIC} exists")
    );

    let mut facts = healthy();
    facts.topic = Some(Err(BackendError::new("NotFound", "Topic does not exist")));
    let result = check_topic(&request(), &facts);
    let (reason, fix) = failed(&result);
    assert_eq!(
        reason,
        format!("topic {TOPIC} does not exist (NotFound: Topic does not exist)")
    );
    assert!(
        fix.contains("iniesta provision") && fix.contains("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN")
    );

    facts.topic = Some(Err(denied()));
    let result = check_topic(&request(), &facts);
    let (reason, fix) = failed(&result);
    assert!(
        reason.starts_with(&format!("cannot read topic {TOPIC}: AccessDenied")),
        "{reason}"
    );
    assert_eq!(
        fix,
        "grant sns:GetTopicAttributes to the credentials this service runs with"
    );

    for topic in [None, Some(String::new())] {
        let req = VerifyRequest {
            topic_arn: topic,
            ..request()
        };
        let result = check_topic(&req, &Facts::default());
        let (_, fix) = failed(&result);
        assert!(
            fix.contains("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN"),
            "{fix}"
        );
    }
    let out = check_topic(&scoped(VerifyScope::QueuePolling), &Facts::default());
    assert_eq!(skipped(&out), "not part of QUEUE_POLLING");
}

#[test]
fn fixes_follow_the_error_code() {
    let fix = |code: Option<&str>| {
        let e = BackendError {
            code: code.map(str::to_owned),
            message: "m".into(),
        };
        fix_for(&e, "sqs:GetQueueUrl", "INIESTA_SQS_ENDPOINT_URL")
    };
    assert!(fix(Some("AuthorizationError")).starts_with("grant sqs:GetQueueUrl"));
    assert!(fix(Some("ExpiredToken")).contains("AWS credentials"));
    assert_eq!(
        fix(Some("Throttling")),
        "see the error above; the call needs sqs:GetQueueUrl"
    );
    assert!(fix(None).contains("(INIESTA_SQS_ENDPOINT_URL, if set)"));
}

#[test]
fn queue_check() {
    let result = check_queue(&request(), &healthy());
    assert_eq!(passed(&result), format!("queue {QUEUE_URL} ({QUEUE_ARN})"));

    let resolve = |lookup: QueueLookup| {
        let facts = Facts {
            queue: Some(lookup),
            ..healthy()
        };
        check_queue(&request(), &facts)
    };
    for code in [
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    ] {
        let result = resolve(QueueLookup::Unresolved(BackendError::new(code, "gone")));
        let (reason, fix) = failed(&result);
        assert!(
            reason.starts_with(&format!("queue {QUEUE:?} does not exist")),
            "{reason}"
        );
        assert!(fix.contains("INIESTA_SQS_QUEUE_NAME"), "{fix}");
    }
    let result = resolve(QueueLookup::Unresolved(denied()));
    assert_eq!(
        failed(&result).1,
        "grant sqs:GetQueueUrl to the credentials this service runs with"
    );
    let result = resolve(QueueLookup::NoUrl);
    assert!(failed(&result).0.contains("answered without a URL"));
    let result = resolve(QueueLookup::Resolved {
        url: QUEUE_URL.into(),
        attributes: Err(denied()),
    });
    let (reason, fix) = failed(&result);
    assert!(
        reason.contains("exists but its attributes cannot be read"),
        "{reason}"
    );
    assert!(fix.contains("sqs:GetQueueAttributes"), "{fix}");
    let no_arn = Ok(QueueAttributes::default());
    let result = resolve(QueueLookup::Resolved {
        url: QUEUE_URL.into(),
        attributes: no_arn,
    });
    assert!(failed(&result).0.contains("did not report its QueueArn"));

    let nameless = VerifyRequest {
        queue_name: String::new(),
        ..request()
    };
    assert_eq!(
        failed(&check_queue(&nameless, &Facts::default())).0,
        "no queue name is configured"
    );
    let out = check_queue(&scoped(VerifyScope::SnsProducer), &Facts::default());
    assert_eq!(skipped(&out), "not part of SNS_PRODUCER");
}

#[test]
fn subscription_check_and_its_prerequisites() {
    assert_eq!(
        subscription_target(&request(), &healthy()),
        Ok((TOPIC, QUEUE_ARN))
    );
    assert_eq!(
        passed(&check_subscription(&request(), &healthy())),
        format!("subscription {SUBSCRIPTION}")
    );

    let lookup = |found: SubscriptionLookup| {
        let facts = Facts {
            subscription: Some(found),
            ..healthy()
        };
        check_subscription(&request(), &facts)
    };
    let result = lookup(SubscriptionLookup::Missing);
    let (reason, fix) = failed(&result);
    assert_eq!(
        reason,
        format!("topic {TOPIC} has no sqs subscription with endpoint {QUEUE_ARN}")
    );
    assert!(fix.contains("iniesta provision"), "{fix}");
    assert!(failed(&lookup(SubscriptionLookup::Pending))
        .0
        .ends_with("is pending confirmation"));
    let result = lookup(SubscriptionLookup::Failed(denied()));
    assert!(failed(&result).1.contains("sns:ListSubscriptionsByTopic"));

    // Without a lookup there is no subscription to judge.
    let unlooked = || Facts {
        subscription: None,
        ..healthy()
    };
    let no_topic = Facts {
        topic: Some(Err(BackendError::new("NotFound", "gone"))),
        ..unlooked()
    };
    let no_queue = Facts {
        queue: Some(QueueLookup::NoUrl),
        ..unlooked()
    };
    for (req, facts, why) in [
        (
            request(),
            no_topic,
            "not checked because the topic could not be verified",
        ),
        (
            request(),
            no_queue,
            "not checked because the queue could not be resolved",
        ),
        (
            scoped(VerifyScope::QueuePolling),
            unlooked(),
            "not part of QUEUE_POLLING",
        ),
    ] {
        assert_eq!(subscription_target(&req, &facts), Err(why.to_owned()));
        assert_eq!(skipped(&check_subscription(&req, &facts)), why);
        // Checks 4 and 6 give the same reason.
        assert_eq!(skipped(&check_filter_policy(&req, &facts)), why);
        assert_eq!(skipped(&check_delivery_mode(&req, &facts)), why);
    }
}

#[test]
fn delivery_mode_is_detected_and_compared_with_the_expected_one() {
    let mut raw = healthy();
    subscription_attributes(&mut raw).delivery_mode = DeliveryMode::Raw;
    let result = check_delivery_mode(&request(), &raw);
    assert_eq!(
        passed(&result),
        "raw message delivery (RawMessageDelivery=true)"
    );
    assert_eq!(
        judge(&request(), &raw).delivery_mode(),
        Some(DeliveryMode::Raw)
    );

    let expect_raw = VerifyRequest {
        expected_delivery_mode: Some(DeliveryMode::Raw),
        ..request()
    };
    passed(&check_delivery_mode(&expect_raw, &raw));
    let result = check_delivery_mode(&expect_raw, &healthy());
    let (reason, fix) = failed(&result);
    assert_eq!(reason, "the subscription delivers as SNS envelope (RawMessageDelivery=false), but the consumer expects Raw");
    assert_eq!(fix, format!("set RawMessageDelivery=true on subscription {SUBSCRIPTION}, or configure the consumer for Envelope delivery"));
    // The detected mode is reported even when it is not the expected one.
    assert_eq!(
        judge(&expect_raw, &healthy()).delivery_mode(),
        Some(DeliveryMode::Envelope)
    );

    let mode = |value: &str| {
        SubscriptionAttributes::from_map(&HashMap::from([(
            "RawMessageDelivery".to_owned(),
            value.to_owned(),
        )]))
        .delivery_mode
    };
    assert_eq!(mode(" TRUE "), DeliveryMode::Raw);
    assert_eq!(mode("false"), DeliveryMode::Envelope);
    assert_eq!(
        SubscriptionAttributes::from_map(&HashMap::new()).delivery_mode,
        DeliveryMode::Envelope
    );
}

#[test]
fn no_redrive_policy_is_a_warning() {
    assert!(
        passed(&check_dead_letter_queue(&request(), &healthy())).starts_with("redrive policy {")
    );
    for redrive in [None, Some(" ")] {
        let mut facts = healthy();
        queue_attributes(&mut facts).redrive_policy = redrive.map(str::to_owned);
        let result = check_dead_letter_queue(&request(), &facts);
        let (reason, fix) = warned(&result);
        assert!(
            reason.starts_with("the queue has no redrive policy"),
            "{reason}"
        );
        assert!(fix.contains("deadLetterTargetArn"), "{fix}");
        assert!(judge(&request(), &facts).is_ok());
    }
    let unresolved = Facts {
        queue: Some(QueueLookup::NoUrl),
        ..healthy()
    };
    assert_eq!(
        skipped(&check_dead_letter_queue(&request(), &unresolved)),
        "not checked because the queue could not be resolved"
    );
    let producer = scoped(VerifyScope::SnsProducer);
    assert_eq!(
        skipped(&check_dead_letter_queue(&producer, &Facts::default())),
        "not part of SNS_PRODUCER"
    );
}

#[test]
fn visibility_shorter_than_the_lock_is_a_warning() {
    let with = |visibility: Option<u64>, lock: Option<Duration>| {
        let mut facts = healthy();
        queue_attributes(&mut facts).visibility_timeout = visibility;
        check_visibility_timeout(
            &VerifyRequest {
                lock_timeout: lock,
                ..request()
            },
            &facts,
        )
    };
    let result = with(Some(5), Some(Duration::from_secs(10)));
    let (reason, fix) = warned(&result);
    assert!(
        reason.starts_with(
            "the queue's visibility timeout (5 s) is shorter than the lock timeout (10 s)"
        ),
        "{reason}"
    );
    assert!(
        fix.starts_with("raise the queue's VisibilityTimeout to at least 10 s"),
        "{fix}"
    );
    let result = with(Some(45), Some(Duration::from_millis(45_500)));
    let (reason, fix) = warned(&result);
    assert!(
        reason.contains("(45.5 s)") && fix.contains("at least 46 s"),
        "{reason} / {fix}"
    );

    assert_eq!(
        passed(&with(Some(10), Some(Duration::from_secs(10)))),
        "visibility timeout 10 s"
    );
    passed(&with(Some(30), Some(Duration::from_secs(10))));
    assert_eq!(skipped(&with(Some(5), None)), "no lock timeout given");
    assert_eq!(
        skipped(&with(None, Some(Duration::from_secs(10)))),
        "the queue did not report its VisibilityTimeout"
    );
}

#[test]
fn subscriptions_match_the_queue_exactly() {
    assert!(delivers_to_queue(Some("sqs"), Some(QUEUE_ARN), QUEUE_ARN));
    assert!(delivers_to_queue(Some("SQS"), Some(QUEUE_ARN), QUEUE_ARN));
    assert!(!delivers_to_queue(
        Some("lambda"),
        Some(QUEUE_ARN),
        QUEUE_ARN
    ));
    assert!(!delivers_to_queue(
        Some("sqs"),
        Some(&format!("{QUEUE_ARN}-dlq")),
        QUEUE_ARN
    ));
    assert!(!delivers_to_queue(Some("sqs"), None, QUEUE_ARN));
    assert!(!delivers_to_queue(None, Some(QUEUE_ARN), QUEUE_ARN));
    assert!(
        is_pending("PendingConfirmation") && is_pending("pendingconfirmation") && is_pending("")
    );
    assert!(!is_pending(SUBSCRIPTION));
}
