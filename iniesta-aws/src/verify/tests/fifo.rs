//! Check 3 on the kinds of topic and queue: FIFO feeds FIFO, standard feeds
//! standard, and the report says which kind the queue is.

use super::*;

fn kinds(topic_fifo: Option<bool>, queue_fifo: bool) -> Facts {
    let mut facts = Facts {
        topic_fifo,
        ..healthy()
    };
    queue_attributes(&mut facts).fifo = queue_fifo;
    facts
}

#[test]
fn a_fifo_topic_feeding_a_fifo_queue_passes_and_says_so() {
    let facts = kinds(Some(true), true);
    let detail = passed(&check_subscription(&request(), &facts)).to_owned();
    assert_eq!(
        detail,
        format!("subscription {SUBSCRIPTION} (FIFO topic to FIFO queue)")
    );
    let report = judge(&request(), &facts);
    assert_eq!(report.queue_is_fifo(), Some(true));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["queue_kind"], "fifo", "{json}");
}

#[test]
fn a_fifo_topic_feeding_a_standard_queue_fails_with_the_reason_and_the_fix() {
    let report = judge(&request(), &kinds(Some(true), false));
    assert!(!report.is_ok());
    let result = report.result(Check::Subscribed).unwrap();
    let (reason, fix) = failed(result);
    assert_eq!(
        reason,
        format!(
            "topic {TOPIC} is a FIFO topic but queue {QUEUE_ARN} is a standard queue: \
             the order of each message group would be lost"
        )
    );
    assert!(fix.contains("FIFO queue (its name ends in .fifo)"), "{fix}");
    assert!(fix.contains("INIESTA_SQS_QUEUE_NAME"), "{fix}");
    assert_eq!(report.queue_is_fifo(), Some(false));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["status"], "fail", "{json}");
    assert_eq!(json["queue_kind"], "standard", "{json}");
}

#[test]
fn a_standard_topic_feeding_a_fifo_queue_fails_even_without_a_subscription() {
    // SNS refuses that subscription, so there is none to find: the kinds
    // explain why better than "not subscribed" would.
    let facts = Facts {
        subscription: Some(SubscriptionLookup::Missing),
        ..kinds(Some(false), true)
    };
    let result = check_subscription(&request(), &facts);
    let (reason, fix) = failed(&result);
    assert!(
        reason.contains("SNS delivers nothing from a standard topic to a FIFO queue"),
        "{reason}"
    );
    assert!(
        fix.contains("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN"),
        "{fix}"
    );
}

#[test]
fn without_the_topic_attribute_its_name_tells_the_kind() {
    let fifo_topic = VerifyRequest {
        topic_arn: Some(format!("{TOPIC}.fifo")),
        ..request()
    };
    let facts = kinds(None, false);
    let result = check_subscription(&fifo_topic, &facts);
    let (reason, _) = failed(&result);
    assert!(reason.contains("is a FIFO topic"), "{reason}");
    passed(&check_subscription(&request(), &facts));
}

#[test]
fn standard_to_standard_passes_as_before() {
    let report = judge(&request(), &healthy());
    let result = report.result(Check::Subscribed).unwrap();
    assert_eq!(passed(result), format!("subscription {SUBSCRIPTION}"));
    assert_eq!(report.queue_is_fifo(), Some(false));
}
