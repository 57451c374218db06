//! Verification's judgement on hand-built facts: each check's pass, fail,
//! warning and skip, and the assembled report. No AWS here; the same checks
//! against moto_server are in the crate's `tests/verify.rs`.
//!
//! This module holds the facts of healthy resources, which each test
//! breaks in one place, and the tests of the whole report.

use iniesta_core::BackendError;

use super::checks::*;
use super::facts::*;
use super::*;
use crate::policy::queue_policy_json;

mod fifo;
mod json;
mod policies;
mod resources;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:global";
const OTHER_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:other";
const QUEUE: &str = "iniesta-test-users";
const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:iniesta-test-users";
const QUEUE_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/iniesta-test-users";
const SUBSCRIPTION: &str = "arn:aws:sns:us-east-1:123456789012:global:0f1e2d3c";
const FILTERS: &[&str] = &["UserCreated.users", "Order.*"];

fn filters(list: &[&str]) -> FilterPolicy {
    FilterPolicy::from_filters("iniesta_pass", list).expect("valid filters")
}

fn request() -> VerifyRequest {
    VerifyRequest::event_polling(TOPIC, QUEUE, filters(FILTERS))
}

fn scoped(scope: VerifyScope) -> VerifyRequest {
    VerifyRequest { scope, ..request() }
}

/// What AWS says about resources `iniesta provision` set up.
fn healthy() -> Facts {
    Facts {
        topic: Some(Ok(())),
        topic_fifo: Some(false),
        queue: Some(QueueLookup::Resolved {
            url: QUEUE_URL.into(),
            attributes: Ok(QueueAttributes {
                arn: Some(QUEUE_ARN.into()),
                policy: Some(queue_policy_json(QUEUE_ARN, TOPIC)),
                redrive_policy: Some(
                    r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":5}"#
                        .into(),
                ),
                visibility_timeout: Some(30),
                fifo: false,
            }),
        }),
        subscription: Some(SubscriptionLookup::Confirmed {
            arn: SUBSCRIPTION.into(),
            attributes: Ok(SubscriptionAttributes {
                filter_policy: Some(filters(FILTERS).to_json_string()),
                filter_policy_scope: None,
                delivery_mode: DeliveryMode::Envelope,
            }),
        }),
    }
}

fn queue_attributes(facts: &mut Facts) -> &mut QueueAttributes {
    match &mut facts.queue {
        Some(QueueLookup::Resolved {
            attributes: Ok(a), ..
        }) => a,
        other => panic!("no queue attributes in {other:?}"),
    }
}

fn subscription_attributes(facts: &mut Facts) -> &mut SubscriptionAttributes {
    match &mut facts.subscription {
        Some(SubscriptionLookup::Confirmed {
            attributes: Ok(a), ..
        }) => a,
        other => panic!("no subscription attributes in {other:?}"),
    }
}

fn with_queue_policy(policy: &str) -> Facts {
    let mut facts = healthy();
    queue_attributes(&mut facts).policy = Some(policy.into());
    facts
}

fn with_filter_policy(policy: Option<&str>) -> Facts {
    let mut facts = healthy();
    subscription_attributes(&mut facts).filter_policy = policy.map(str::to_owned);
    facts
}

fn denied() -> BackendError {
    BackendError::new("AccessDenied", "not authorized")
}

fn passed(r: &CheckResult) -> &str {
    match &r.status {
        CheckStatus::Passed { detail } => detail,
        other => panic!("{:?} should pass, got {other:?}", r.check),
    }
}

fn failed(r: &CheckResult) -> (&str, &str) {
    match &r.status {
        CheckStatus::Failed { reason, fix } => (reason, fix),
        other => panic!("{:?} should fail, got {other:?}", r.check),
    }
}

fn warned(r: &CheckResult) -> (&str, &str) {
    match &r.status {
        CheckStatus::Warning { reason, fix } => (reason, fix),
        other => panic!("{:?} should warn, got {other:?}", r.check),
    }
}

fn skipped(r: &CheckResult) -> &str {
    match &r.status {
        CheckStatus::Skipped { reason } => reason,
        other => panic!("{:?} should be skipped, got {other:?}", r.check),
    }
}

#[test]
fn healthy_resources_pass_every_check() {
    let report = judge(&request(), &healthy());
    assert!(report.is_ok(), "{report}");
    assert!(
        report.results().iter().all(CheckResult::is_passed),
        "{report}"
    );
    let order: Vec<Check> = report.results().iter().map(|r| r.check).collect();
    assert_eq!(
        order,
        [
            Check::TopicExists,
            Check::QueueResolves,
            Check::Subscribed,
            Check::FilterPolicy,
            Check::QueuePolicy,
            Check::DeliveryMode,
            Check::DeadLetterQueue,
            Check::VisibilityTimeout,
        ]
    );
    assert_eq!(report.queue_url(), Some(QUEUE_URL));
    assert_eq!(report.queue_arn(), Some(QUEUE_ARN));
    assert_eq!(report.subscription_arn(), Some(SUBSCRIPTION));
    assert_eq!(report.delivery_mode(), Some(DeliveryMode::Envelope));
    let text = report.to_string();
    assert!(text.starts_with("iniesta verification: ok\n"), "{text}");
    assert!(text.contains(&format!("  PASS 1. topic exists: topic {TOPIC} exists\n")));
    assert!(text.ends_with("  0 failed, 0 warning(s)"), "{text}");
}

#[test]
fn every_failure_is_reported_not_only_the_first() {
    let facts = Facts {
        topic: Some(Err(BackendError::new("NotFound", "Topic does not exist"))),
        queue: Some(QueueLookup::Unresolved(BackendError::new(
            "QueueDoesNotExist",
            "no queue",
        ))),
        subscription: None,
        topic_fifo: None,
    };
    let report = judge(&request(), &facts);
    let failed_checks: Vec<Check> = report.failures().iter().map(|r| r.check).collect();
    assert_eq!(failed_checks, [Check::TopicExists, Check::QueueResolves]);
    assert_eq!(report.queue_url(), None);
    assert_eq!(report.delivery_mode(), None);
    let text = report.to_string();
    assert!(text.starts_with("iniesta verification: FAILED\n"), "{text}");
    assert!(text.ends_with("  2 failed, 0 warning(s)"), "{text}");
    assert!(text.contains("  SKIP 3. queue is subscribed to the topic: not checked because the topic could not be verified\n"), "{text}");
}

#[test]
fn scopes_select_the_checks() {
    let queue_only = Facts {
        topic: None,
        subscription: None,
        ..healthy()
    };
    let report = judge(
        &VerifyRequest {
            topic_arn: None,
            ..scoped(VerifyScope::QueuePolling)
        },
        &queue_only,
    );
    assert!(report.is_ok(), "{report}");
    for r in report.results() {
        match r.check {
            Check::QueueResolves | Check::DeadLetterQueue | Check::VisibilityTimeout => {
                passed(r);
            }
            _ => assert_eq!(skipped(r), "not part of QUEUE_POLLING"),
        }
    }
    let topic_only = Facts {
        topic: Some(Ok(())),
        ..Facts::default()
    };
    let report = judge(&scoped(VerifyScope::SnsProducer), &topic_only);
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.results().iter().filter(|r| r.is_passed()).count(),
        1,
        "{report}"
    );
    assert_eq!(report.queue_url(), None);
}
