//! The report's JSON, which CI pipelines read: exact field names and
//! values for a healthy setup, a warning and failures.

use serde_json::{json, Value};

use super::*;

fn to_json(report: &VerificationReport) -> Value {
    serde_json::to_value(report).expect("a report serializes")
}

#[test]
fn a_healthy_report_as_json() {
    let report = judge(&request(), &healthy());
    let v = to_json(&report);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected_keys = vec![
        "scope",
        "status",
        "failed",
        "warnings",
        "checks",
        "queue_url",
        "queue_arn",
        "subscription_arn",
        "delivery_mode",
        "queue_kind",
    ];
    expected_keys.sort_unstable();
    assert_eq!(keys, expected_keys, "{v}");
    assert_eq!(v["scope"], "EVENT_POLLING");
    assert_eq!(v["status"], "pass");
    assert_eq!(v["failed"], 0);
    assert_eq!(v["warnings"], 0);
    assert_eq!(v["queue_url"], QUEUE_URL);
    assert_eq!(v["queue_arn"], QUEUE_ARN);
    assert_eq!(v["subscription_arn"], SUBSCRIPTION);
    assert_eq!(v["delivery_mode"], "envelope");
    assert_eq!(v["queue_kind"], "standard");

    let checks = v["checks"].as_array().expect("checks is a list");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "topic_exists",
            "queue_resolves",
            "subscribed",
            "filter_policy",
            "queue_policy",
            "delivery_mode",
            "dead_letter_queue",
            "visibility_timeout",
        ]
    );
    assert_eq!(
        checks[0],
        json!({
            "name": "topic_exists",
            "title": "1. topic exists",
            "status": "pass",
            "message": format!("topic {TOPIC} exists"),
            "fix": null,
        })
    );
    for (check, result) in checks.iter().zip(report.results()) {
        assert_eq!(check["status"], "pass", "{check}");
        assert_eq!(check["message"], result.status.message(), "{check}");
        assert_eq!(check["title"], result.check.title(), "{check}");
        assert!(check["fix"].is_null(), "{check}");
    }
}

#[test]
fn failures_warnings_and_skips_as_json() {
    // No subscription, and a queue without a dead-letter queue.
    let mut facts = healthy();
    facts.subscription = Some(SubscriptionLookup::Missing);
    queue_attributes(&mut facts).redrive_policy = None;
    let report = judge(&request(), &facts);
    let v = to_json(&report);
    assert_eq!(v["status"], "fail");
    assert_eq!(v["failed"], 1);
    assert_eq!(v["warnings"], 1);
    assert!(v["subscription_arn"].is_null(), "{v}");
    assert!(v["delivery_mode"].is_null(), "{v}");

    let by_name = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {v}"))
            .clone()
    };
    let subscribed = by_name("subscribed");
    let (reason, fix) = failed(report.result(Check::Subscribed).unwrap());
    assert_eq!(
        subscribed,
        json!({
            "name": "subscribed",
            "title": "3. queue is subscribed to the topic",
            "status": "fail",
            "message": reason,
            "fix": fix,
        })
    );
    let dlq = by_name("dead_letter_queue");
    assert_eq!(dlq["status"], "warn");
    assert!(
        dlq["fix"]
            .as_str()
            .is_some_and(|f| f.contains("RedrivePolicy")),
        "{dlq}"
    );
    let filter = by_name("filter_policy");
    assert_eq!(filter["status"], "skip");
    assert_eq!(
        filter["message"],
        skipped(report.result(Check::FilterPolicy).unwrap())
    );
    assert!(filter["fix"].is_null(), "{filter}");

    // Only warnings: `warn`, which `iniesta verify` still exits 0 on.
    let mut facts = healthy();
    queue_attributes(&mut facts).redrive_policy = None;
    let report = judge(&request(), &facts);
    assert!(report.is_ok());
    assert_eq!(to_json(&report)["status"], "warn");

    // The scope is the request's.
    let report = judge(&scoped(VerifyScope::SnsProducer), &healthy());
    assert_eq!(to_json(&report)["scope"], "SNS_PRODUCER");
}
