//! Verification and provisioning against a real moto_server: every check
//! passes on provisioned resources and fails with its own message when its
//! resource is broken.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_aws::{
    provision, verify, Check, CheckStatus, ProvisionRequest, TopicRef, VerificationReport,
    VerifyRequest, VerifyScope,
};
use iniesta_core::DeliveryMode;

use common::aws::{policy, setup, Moto};

const FILTERS: &[&str] = &["UserCreated.users", "Order.*"];

fn request(topic_arn: &str, queue: &str) -> VerifyRequest {
    VerifyRequest::event_polling(topic_arn, queue, policy(FILTERS))
}

fn status(report: &VerificationReport, check: Check) -> &CheckStatus {
    &report
        .result(check)
        .unwrap_or_else(|| panic!("{check:?} missing from\n{report}"))
        .status
}

/// The failure reason and fix of `check`, failing the test when it did not
/// fail.
fn failure(report: &VerificationReport, check: Check) -> (String, String) {
    match status(report, check) {
        CheckStatus::Failed { reason, fix } => (reason.clone(), fix.clone()),
        other => panic!("{check:?} should fail, got {other:?}\n{report}"),
    }
}

fn skipped_because(report: &VerificationReport, check: Check, why: &str) {
    match status(report, check) {
        CheckStatus::Skipped { reason } => assert!(
            reason.contains(why),
            "{check:?} skipped for {reason:?}, expected {why:?}"
        ),
        other => panic!("{check:?} should be skipped, got {other:?}\n{report}"),
    }
}

fn passed(report: &VerificationReport, check: Check) {
    assert!(
        matches!(status(report, check), CheckStatus::Passed { .. }),
        "{check:?} should pass\n{report}"
    );
}

async fn set_queue_policy(moto: &Moto, queue_url: &str, policy: &str) {
    moto.clients
        .sqs
        .set_queue_attributes()
        .queue_url(queue_url)
        .attributes(QueueAttributeName::Policy, policy)
        .send()
        .await
        .expect("set queue policy");
}

async fn set_subscription_attribute(moto: &Moto, arn: &str, name: &str, value: &str) {
    moto.clients
        .sns
        .set_subscription_attributes()
        .subscription_arn(arn)
        .attribute_name(name)
        .attribute_value(value)
        .send()
        .await
        .expect("set subscription attribute");
}

async fn unsubscribe(moto: &Moto, arn: &str) {
    moto.clients
        .sns
        .unsubscribe()
        .subscription_arn(arn)
        .send()
        .await
        .expect("unsubscribe");
}

#[tokio::test]
async fn provision_then_verify_passes_in_both_delivery_modes() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    for (raw, queue, mode) in [
        (false, "iniesta-test-envelope", DeliveryMode::Envelope),
        (true, "iniesta-test-raw", DeliveryMode::Raw),
    ] {
        let p = setup(&moto, "global", queue, FILTERS, raw).await;
        let report = verify(&moto.clients, &request(&p.topic_arn, queue)).await;
        assert!(report.is_ok(), "{report}");
        assert!(report.warnings().is_empty(), "{report}");
        for check in [
            Check::TopicExists,
            Check::QueueResolves,
            Check::Subscribed,
            Check::FilterPolicy,
            Check::QueuePolicy,
            Check::DeliveryMode,
            Check::DeadLetterQueue,
            Check::VisibilityTimeout,
        ] {
            passed(&report, check);
        }
        assert_eq!(report.delivery_mode(), Some(mode));
        assert_eq!(report.queue_url(), Some(p.queue_url.as_str()));
        assert_eq!(report.queue_arn(), Some(p.queue_arn.as_str()));
        assert_eq!(report.subscription_arn(), Some(p.subscription_arn.as_str()));
        let text = report.to_string();
        assert_eq!(text.matches("PASS").count(), 8, "{text}");

        // Provisioning again changes nothing and fails nothing.
        let again = setup(&moto, "global", queue, FILTERS, raw).await;
        assert_eq!(again, p);
        assert!(verify(&moto.clients, &request(&p.topic_arn, queue))
            .await
            .is_ok());
    }
}

#[tokio::test]
async fn missing_topic_fails_check_1_and_skips_what_depends_on_it() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, false).await;
    let missing = p.topic_arn.replace("global", "no-such-topic");
    let report = verify(&moto.clients, &request(&missing, "q1")).await;
    assert!(!report.is_ok());
    let (reason, fix) = failure(&report, Check::TopicExists);
    assert!(
        reason.contains("does not exist") && reason.contains(&missing),
        "{reason}"
    );
    assert!(fix.contains("iniesta provision"), "{fix}");
    passed(&report, Check::QueueResolves);
    skipped_because(&report, Check::Subscribed, "not checked because the topic");
    skipped_because(
        &report,
        Check::FilterPolicy,
        "not checked because the topic",
    );
    skipped_because(&report, Check::QueuePolicy, "not checked because the topic");
    skipped_because(
        &report,
        Check::DeliveryMode,
        "not checked because the topic",
    );
    assert_eq!(report.failures().len(), 1, "{report}");
    assert_eq!(report.delivery_mode(), None);
    assert!(
        report.to_string().contains("FAIL 1. topic exists"),
        "{report}"
    );

    // No topic configured at all is a failure that names the setting.
    let mut no_topic = request(&p.topic_arn, "q1");
    no_topic.topic_arn = None;
    let report = verify(&moto.clients, &no_topic).await;
    let (_, fix) = failure(&report, Check::TopicExists);
    assert!(
        fix.contains("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN"),
        "{fix}"
    );
}

#[tokio::test]
async fn missing_queue_fails_check_2_and_skips_what_depends_on_it() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, false).await;
    let report = verify(&moto.clients, &request(&p.topic_arn, "no-such-queue")).await;
    let (reason, fix) = failure(&report, Check::QueueResolves);
    assert!(
        reason.contains("no-such-queue") && reason.contains("does not exist"),
        "{reason}"
    );
    assert!(fix.contains("INIESTA_SQS_QUEUE_NAME"), "{fix}");
    passed(&report, Check::TopicExists);
    skipped_because(&report, Check::Subscribed, "queue could not be resolved");
    skipped_because(&report, Check::QueuePolicy, "queue could not be resolved");
    skipped_because(
        &report,
        Check::DeadLetterQueue,
        "queue could not be resolved",
    );
    assert_eq!(report.failures().len(), 1, "{report}");
    assert_eq!(report.queue_url(), None);
}

#[tokio::test]
async fn missing_subscription_fails_check_3() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, true).await;
    unsubscribe(&moto, &p.subscription_arn).await;
    let report = verify(&moto.clients, &request(&p.topic_arn, "q1")).await;
    let (reason, fix) = failure(&report, Check::Subscribed);
    assert!(reason.contains(&p.queue_arn), "{reason}");
    assert!(fix.contains("iniesta provision"), "{fix}");
    skipped_because(&report, Check::FilterPolicy, "not subscribed");
    skipped_because(&report, Check::DeliveryMode, "not subscribed");
    passed(&report, Check::QueuePolicy);
    assert_eq!(report.failures().len(), 1, "{report}");

    // Provisioning repairs it.
    setup(&moto, "global", "q1", FILTERS, true).await;
    assert!(verify(&moto.clients, &request(&p.topic_arn, "q1"))
        .await
        .is_ok());
}

#[tokio::test]
async fn subscription_is_found_beyond_the_first_page() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q-last", FILTERS, false).await;
    // moto pages ListSubscriptionsByTopic by 100; put our subscription last.
    unsubscribe(&moto, &p.subscription_arn).await;
    for i in 0..105 {
        moto.clients
            .sns
            .subscribe()
            .topic_arn(&p.topic_arn)
            .protocol("sqs")
            .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:other-{i}"))
            .send()
            .await
            .expect("subscribe filler");
    }
    let p = setup(&moto, "global", "q-last", FILTERS, false).await;
    let report = verify(&moto.clients, &request(&p.topic_arn, "q-last")).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.subscription_arn(), Some(p.subscription_arn.as_str()));
}

#[tokio::test]
async fn mismatched_filter_policy_fails_check_4_with_the_policy_to_set() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, false).await;
    set_subscription_attribute(
        &moto,
        &p.subscription_arn,
        "FilterPolicy",
        r#"{"iniesta_pass": ["UserCreated.users", "Payment.billing"]}"#,
    )
    .await;
    let report = verify(&moto.clients, &request(&p.topic_arn, "q1")).await;
    let (reason, fix) = failure(&report, Check::FilterPolicy);
    assert!(reason.contains("missing Order.*"), "{reason}");
    assert!(reason.contains("extra Payment.billing"), "{reason}");
    assert!(fix.contains(&policy(FILTERS).to_json_string()), "{fix}");
    assert_eq!(report.failures().len(), 1, "{report}");

    // The same policy in another order and spacing passes.
    set_subscription_attribute(
        &moto,
        &p.subscription_arn,
        "FilterPolicy",
        r#"{ "iniesta_pass" : [ {"prefix": "Order."}, "UserCreated.users" ] }"#,
    )
    .await;
    assert!(verify(&moto.clients, &request(&p.topic_arn, "q1"))
        .await
        .is_ok());

    // INIESTA_ASSERT_FILTER_POLICIES=false skips the comparison.
    set_subscription_attribute(
        &moto,
        &p.subscription_arn,
        "FilterPolicy",
        r#"{"iniesta_pass": ["Other.svc"]}"#,
    )
    .await;
    let mut lenient = request(&p.topic_arn, "q1");
    lenient.assert_filter_policies = false;
    let report = verify(&moto.clients, &lenient).await;
    assert!(report.is_ok(), "{report}");
    skipped_because(
        &report,
        Check::FilterPolicy,
        "INIESTA_ASSERT_FILTER_POLICIES",
    );
}

#[tokio::test]
async fn broken_queue_policies_fail_check_5() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, false).await;
    let req = request(&p.topic_arn, "q1");
    let verify_q1 = || verify(&moto.clients, &req);

    // No policy at all.
    set_queue_policy(&moto, &p.queue_url, "").await;
    let report = verify_q1().await;
    let (reason, fix) = failure(&report, Check::QueuePolicy);
    assert!(reason.contains("no access policy"), "{reason}");
    assert!(
        fix.contains("aws:SourceArn") && fix.contains(&p.topic_arn),
        "{fix}"
    );
    assert_eq!(report.failures().len(), 1, "{report}");

    // Another topic's ARN in the condition.
    let other = p.topic_arn.replace("global", "other");
    set_queue_policy(
        &moto,
        &p.queue_url,
        &iniesta_aws::queue_policy_json(&p.queue_arn, &other),
    )
    .await;
    let (reason, _) = failure(&verify_q1().await, Check::QueuePolicy);
    assert!(reason.contains(&other), "{reason}");

    // A Deny.
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Block","Effect":"Deny","Principal":"*",
            "Action":"sqs:SendMessage","Resource":"{}"}}]}}"#,
        p.queue_arn
    );
    set_queue_policy(&moto, &p.queue_url, &deny).await;
    let (reason, _) = failure(&verify_q1().await, Check::QueuePolicy);
    assert!(
        reason.contains("Block") && reason.contains("denies"),
        "{reason}"
    );

    // No SourceArn condition: works, with a warning.
    let open = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*",
            "Action":"SQS:SendMessage","Resource":"{}"}}]}}"#,
        p.queue_arn
    );
    set_queue_policy(&moto, &p.queue_url, &open).await;
    let report = verify_q1().await;
    assert!(report.is_ok(), "{report}");
    assert!(
        matches!(status(&report, Check::QueuePolicy), CheckStatus::Warning { reason, .. } if reason.contains("any SNS topic")),
        "{report}"
    );
    assert_eq!(report.warnings().len(), 1, "{report}");

    // Provisioning adds the topic's statement next to the existing one.
    setup(&moto, "global", "q1", FILTERS, false).await;
    let report = verify_q1().await;
    assert!(report.is_ok() && report.warnings().is_empty(), "{report}");
}

#[tokio::test]
async fn delivery_mode_is_detected_and_follows_the_attribute() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, true).await;
    let report = verify(&moto.clients, &request(&p.topic_arn, "q1")).await;
    assert_eq!(report.delivery_mode(), Some(DeliveryMode::Raw));
    assert!(
        report.to_string().contains("RawMessageDelivery=true"),
        "{report}"
    );

    set_subscription_attribute(&moto, &p.subscription_arn, "RawMessageDelivery", "false").await;
    let report = verify(&moto.clients, &request(&p.topic_arn, "q1")).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.delivery_mode(), Some(DeliveryMode::Envelope));

    // A consumer configured for raw delivery fails check 6, and the report
    // still states the detected mode.
    let mut expect_raw = request(&p.topic_arn, "q1");
    expect_raw.expected_delivery_mode = Some(DeliveryMode::Raw);
    let report = verify(&moto.clients, &expect_raw).await;
    let (reason, fix) = failure(&report, Check::DeliveryMode);
    assert!(reason.contains("RawMessageDelivery=false"), "{reason}");
    assert!(fix.contains("RawMessageDelivery=true"), "{fix}");
    assert_eq!(report.delivery_mode(), Some(DeliveryMode::Envelope));

    // Provisioning switches it back.
    setup(&moto, "global", "q1", FILTERS, true).await;
    let report = verify(&moto.clients, &expect_raw).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.delivery_mode(), Some(DeliveryMode::Raw));
}

#[tokio::test]
async fn warnings_and_scopes() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    // A queue without a dead-letter queue and a short visibility timeout.
    let mut req = ProvisionRequest::new(TopicRef::Name("global".into()), "q1", policy(FILTERS));
    req.visibility_timeout = Some(Duration::from_secs(5));
    let p = provision(&moto.clients, &req).await.expect("provision");
    let report = verify(&moto.clients, &request(&p.topic_arn, "q1")).await;
    assert!(report.is_ok(), "{report}");
    let warned: Vec<Check> = report.warnings().iter().map(|r| r.check).collect();
    assert_eq!(
        warned,
        vec![Check::DeadLetterQueue, Check::VisibilityTimeout],
        "{report}"
    );

    // QUEUE_POLLING: only the queue.
    let mut queue_only = request("", "q1");
    queue_only.scope = VerifyScope::QueuePolling;
    queue_only.topic_arn = None;
    let report = verify(&moto.clients, &queue_only).await;
    assert!(report.is_ok(), "{report}");
    passed(&report, Check::QueueResolves);
    for check in [
        Check::TopicExists,
        Check::Subscribed,
        Check::FilterPolicy,
        Check::QueuePolicy,
        Check::DeliveryMode,
    ] {
        skipped_because(&report, check, "QUEUE_POLLING");
    }

    // SNS_PRODUCER: only the topic.
    let mut producer = request(&p.topic_arn, "");
    producer.scope = VerifyScope::SnsProducer;
    let report = verify(&moto.clients, &producer).await;
    assert!(report.is_ok(), "{report}");
    passed(&report, Check::TopicExists);
    for check in [
        Check::QueueResolves,
        Check::Subscribed,
        Check::QueuePolicy,
        Check::DeliveryMode,
    ] {
        skipped_because(&report, check, "SNS_PRODUCER");
    }
    producer.topic_arn = Some(p.topic_arn.replace("global", "gone"));
    assert!(!verify(&moto.clients, &producer).await.is_ok());
}

#[tokio::test]
async fn unreachable_endpoint_fails_every_check_without_panicking() {
    // No server needed: nothing listens on this port.
    let port = iniesta_tests::servers::free_port();
    let clients = iniesta_aws::AwsClients::with_static_credentials(
        "AKIDSECRETLOOKING",
        "very-secret-key-material",
        "us-east-1",
        Some(&format!("http://127.0.0.1:{port}")),
    );
    let report = verify(
        &clients,
        &request("arn:aws:sns:us-east-1:123456789012:global", "q1"),
    )
    .await;
    assert!(!report.is_ok());
    failure(&report, Check::TopicExists);
    failure(&report, Check::QueueResolves);
    let text = report.to_string();
    assert!(
        text.contains("endpoint") && text.contains("Connection refused"),
        "{text}"
    );
    assert!(
        !text.contains("DispatchFailure {"),
        "no Debug dumps: {text}"
    );
    assert!(!text.contains("very-secret-key-material"), "{text}");
    assert!(!format!("{clients:?}").contains("very-secret-key-material"));
}
