//! The queue policy provisioning writes: IAM lets the topic send, and the
//! first statement passes the original Python Iniesta's permission check.

use serde_json::{json, Value};

use super::*;
use crate::policy::queue_policy_json;

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:iniesta-test-users";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:global";

fn statements(policy: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(policy).expect("the policy is JSON");
    doc["Statement"]
        .as_array()
        .expect("Statement is a list")
        .clone()
}

/// A statement another sender relies on; provisioning must keep it.
fn other_statement() -> Value {
    json!({
        "Sid": "Audit",
        "Effect": "Allow",
        "Principal": { "AWS": "arn:aws:iam::123456789012:root" },
        "Action": "sqs:ReceiveMessage",
        "Resource": QUEUE,
    })
}

/// The statement a provision of an earlier version wrote: IAM accepts the
/// lower-case action, the original's check does not.
fn lower_case_statement() -> Value {
    let mut st = crate::policy::send_statement(QUEUE, TOPIC);
    st["Action"] = json!("sqs:SendMessage");
    st
}

fn policy_of(list: Vec<Value>) -> String {
    json!({ "Version": "2012-10-17", "Statement": list }).to_string()
}

#[test]
fn a_new_policy_has_one_statement_the_original_accepts() {
    let written = queue_policy_to_write(None, QUEUE, TOPIC).expect("a queue without a policy");
    assert_eq!(written, queue_policy_json(QUEUE, TOPIC));
    let doc: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(doc["Version"], "2012-10-17");
    assert_eq!(
        statements(&written),
        vec![json!({
            "Sid": "IniestaSnsglobal",
            "Effect": "Allow",
            "Principal": { "Service": "sns.amazonaws.com" },
            "Action": "SQS:SendMessage",
            "Resource": QUEUE,
            "Condition": { "ArnEquals": { "aws:SourceArn": TOPIC } },
        })]
    );
    assert!(first_statement_allows_send(&written));
    assert!(matches!(
        evaluate_queue_policy(&written, QUEUE, TOPIC),
        PolicyVerdict::Allowed { .. }
    ));
    // Written once, it is left alone.
    assert_eq!(queue_policy_to_write(Some(&written), QUEUE, TOPIC), None);
}

#[test]
fn a_policy_iam_accepts_but_the_original_refuses_is_repaired_with_the_statement_first() {
    for existing in [
        // The topic's statement second.
        policy_of(vec![
            other_statement(),
            crate::policy::send_statement(QUEUE, TOPIC),
        ]),
        // Spelled in lower case, first or second.
        policy_of(vec![lower_case_statement()]),
        policy_of(vec![other_statement(), lower_case_statement()]),
    ] {
        assert!(
            evaluate_queue_policy(&existing, QUEUE, TOPIC).allows(),
            "IAM lets the topic send: {existing}"
        );
        assert!(!first_statement_allows_send(&existing), "{existing}");
        let written = queue_policy_to_write(Some(&existing), QUEUE, TOPIC)
            .unwrap_or_else(|| panic!("{existing} must be repaired"));
        let list = statements(&written);
        assert_eq!(list[0], crate::policy::send_statement(QUEUE, TOPIC));
        assert_eq!(list[0]["Action"], "SQS:SendMessage");
        // The topic's statement once; every other statement kept.
        let others: Vec<&Value> = list[1..].iter().collect();
        let expected_others = statements(&existing)
            .into_iter()
            .filter(|s| s["Sid"] != "IniestaSnsglobal")
            .count();
        assert_eq!(others.len(), expected_others, "{written}");
        assert!(others.iter().all(|s| s["Sid"] != "IniestaSnsglobal"));
        assert!(first_statement_allows_send(&written), "{written}");
        assert_eq!(
            queue_policy_to_write(Some(&written), QUEUE, TOPIC),
            None,
            "a repaired policy is not written again"
        );
    }
}

#[test]
fn a_policy_both_accept_is_left_as_it_is() {
    let existing = policy_of(vec![
        crate::policy::send_statement(QUEUE, TOPIC),
        other_statement(),
    ]);
    assert_eq!(queue_policy_to_write(Some(&existing), QUEUE, TOPIC), None);
    // A list action with the exact spelling passes the original's check too.
    let mut listed = crate::policy::send_statement(QUEUE, TOPIC);
    listed["Action"] = json!(["SQS:ReceiveMessage", "SQS:SendMessage"]);
    assert_eq!(
        queue_policy_to_write(Some(&policy_of(vec![listed])), QUEUE, TOPIC),
        None
    );
}

#[test]
fn the_original_check_reads_only_the_first_statement_and_is_case_sensitive() {
    let allow = |action: Value| {
        policy_of(vec![
            json!({ "Effect": "Allow", "Action": action, "Resource": "*" }),
        ])
    };
    assert!(first_statement_allows_send(&allow(json!(
        "SQS:SendMessage"
    ))));
    assert!(first_statement_allows_send(&allow(json!([
        "SQS:SendMessage"
    ]))));
    for refused in [
        allow(json!("sqs:SendMessage")),
        allow(json!(["sqs:SendMessage", "SQS:sendmessage"])),
        allow(json!("SQS:*")),
        policy_of(vec![
            json!({ "Effect": "Deny", "Action": "SQS:SendMessage" }),
        ]),
        policy_of(vec![]),
        // A single statement not in a list: the original indexes it with 0.
        json!({ "Statement": { "Effect": "Allow", "Action": "SQS:SendMessage" } }).to_string(),
        "not json".to_owned(),
    ] {
        assert!(!first_statement_allows_send(&refused), "{refused}");
    }
}

#[test]
fn a_fifo_topic_takes_a_fifo_queue_and_a_standard_one_a_standard_queue() {
    let fifo = TopicRef::Arn("arn:aws:sns:us-east-1:123456789012:orders.fifo".into());
    let standard = TopicRef::Name("orders".into());
    assert_eq!(fifo_kind(&fifo, "q.fifo"), Ok(true));
    assert_eq!(fifo_kind(&standard, "q"), Ok(false));

    let e = fifo_kind(&fifo, "iniesta-dev-users")
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a FIFO topic"), "{e}");
    assert!(
        e.contains("set INIESTA_SQS_QUEUE_NAME to iniesta-dev-users.fifo"),
        "{e}"
    );
    let e = fifo_kind(&standard, "q.fifo").unwrap_err().to_string();
    assert!(
        e.contains("SNS delivers nothing from a standard topic to a FIFO queue"),
        "{e}"
    );
}

#[test]
fn a_fifo_queues_dead_letter_queue_is_fifo_too() {
    assert_eq!(dead_letter_queue_name("users"), "users-dlq");
    assert_eq!(dead_letter_queue_name("users.fifo"), "users-dlq.fifo");
}
