//! The queue access policy: does it let the topic send to the queue?
//!
//! SNS delivers to SQS as the service principal `sns.amazonaws.com`, and the
//! queue's policy must allow `sqs:SendMessage` for it, normally with an
//! `aws:SourceArn` condition naming the topic. Real-world policies come in
//! many shapes (an action as a string or a list, `SQS:SendMessage` in
//! capitals, `sqs:*`, `ArnLike` with wildcards, several statements), so this
//! module reads them the way IAM does for the parts that matter here:
//!
//! - a statement counts when its `Effect`, `Action`, `Resource` and
//!   `Principal` cover SNS sending to this queue;
//! - an `Allow` whose `aws:SourceArn` condition (`ArnEquals`, `ArnLike`,
//!   `StringEquals`, `StringLike`; key case-insensitive) names the topic
//!   allows it;
//! - an `Allow` without any `aws:SourceArn` condition allows it too, but lets
//!   *any* topic send: [`PolicyVerdict::AllowedFromAnySource`], a warning;
//! - a `Deny` covering the topic wins over every `Allow`; a `Deny` for other
//!   sources is ignored.
//!
//! Statements using `NotAction`, `NotResource` or `NotPrincipal` are not
//! evaluated (they never count as allowing).

use serde_json::{json, Value};

/// The condition key naming the sender.
const SOURCE_ARN: &str = "aws:sourcearn";

/// The answer of [`evaluate_queue_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyVerdict {
    /// A statement allows this topic to send.
    Allowed {
        /// The statement (`Sid`, or its position `#1`).
        statement: String,
    },
    /// A statement allows sending without an `aws:SourceArn` condition: this
    /// topic can send, and so can any other.
    AllowedFromAnySource {
        /// The statement (`Sid`, or its position `#1`).
        statement: String,
    },
    /// SNS cannot deliver this topic's messages to the queue.
    NotAllowed {
        /// Why, naming the statement when one is to blame.
        reason: String,
    },
}

impl PolicyVerdict {
    /// Whether the topic can send (with or without a source condition).
    pub fn allows(&self) -> bool {
        !matches!(self, PolicyVerdict::NotAllowed { .. })
    }
}

/// What a statement's condition says about the sender.
enum SourceMatch {
    /// An `aws:SourceArn` condition names the topic.
    Names,
    /// No `aws:SourceArn` condition.
    Unconditioned,
    /// `aws:SourceArn` conditions that do not name the topic.
    Other(Vec<String>),
}

/// Decides whether `policy` (the queue's `Policy` attribute) lets the SNS
/// topic `topic_arn` send to the queue `queue_arn`. Never panics; a policy
/// that is not JSON is [`PolicyVerdict::NotAllowed`].
pub fn evaluate_queue_policy(policy: &str, queue_arn: &str, topic_arn: &str) -> PolicyVerdict {
    let doc: Value = match serde_json::from_str(policy) {
        Ok(v) => v,
        Err(e) => {
            return PolicyVerdict::NotAllowed {
                reason: format!("the queue policy is not valid JSON ({e})"),
            }
        }
    };
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => {
            return PolicyVerdict::NotAllowed {
                reason: "the queue policy has no Statement".into(),
            }
        }
    };

    let mut allowed = None;
    let mut any_source = None;
    let mut denied = None;
    let mut other_sources: Vec<String> = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let name = match st.get("Sid").and_then(Value::as_str) {
            Some(sid) if !sid.is_empty() => format!("{sid:?}"),
            _ => format!("#{}", i + 1),
        };
        if !covers_send(st, queue_arn) {
            continue;
        }
        let effect = st.get("Effect").and_then(Value::as_str).unwrap_or("");
        let source = source_match(st.get("Condition"), topic_arn);
        if effect.eq_ignore_ascii_case("Deny") {
            if matches!(source, SourceMatch::Names | SourceMatch::Unconditioned) {
                denied.get_or_insert(name);
            }
        } else if effect.eq_ignore_ascii_case("Allow") {
            match source {
                SourceMatch::Names => {
                    allowed.get_or_insert(name);
                }
                SourceMatch::Unconditioned => {
                    any_source.get_or_insert(name);
                }
                SourceMatch::Other(arns) => other_sources.extend(arns),
            }
        }
    }

    if let Some(statement) = denied {
        return PolicyVerdict::NotAllowed {
            reason: format!("statement {statement} denies sqs:SendMessage from topic {topic_arn}"),
        };
    }
    if let Some(statement) = allowed {
        return PolicyVerdict::Allowed { statement };
    }
    if let Some(statement) = any_source {
        return PolicyVerdict::AllowedFromAnySource { statement };
    }
    let reason = if other_sources.is_empty() {
        format!(
            "no statement allows sns.amazonaws.com to sqs:SendMessage to {queue_arn} from topic {topic_arn}"
        )
    } else {
        format!(
            "the queue policy only allows aws:SourceArn {}, not topic {topic_arn}",
            other_sources.join(", ")
        )
    };
    PolicyVerdict::NotAllowed { reason }
}

/// Whether a statement's action, resource and principal cover SNS sending to
/// the queue.
fn covers_send(st: &Value, queue_arn: &str) -> bool {
    if st.get("NotAction").is_some()
        || st.get("NotResource").is_some()
        || st.get("NotPrincipal").is_some()
    {
        return false;
    }
    let action_ok = strings(st.get("Action"))
        .iter()
        .any(|a| glob(&a.to_ascii_lowercase(), "sqs:sendmessage"));
    let resource_ok = match st.get("Resource") {
        None => true,
        r => strings(r).iter().any(|p| glob(p, queue_arn)),
    };
    let principal_ok = match st.get("Principal") {
        None => true,
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(p)) => p.iter().any(|(kind, v)| {
            let values = strings(Some(v));
            (kind.eq_ignore_ascii_case("AWS") && values.iter().any(|s| s == "*"))
                || (kind.eq_ignore_ascii_case("Service")
                    && values
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case("sns.amazonaws.com")))
        }),
        Some(_) => false,
    };
    action_ok && resource_ok && principal_ok
}

/// What the `aws:SourceArn` conditions of a statement say about `topic_arn`.
/// All conditions must hold (IAM ANDs them); any value of one condition may
/// match (IAM ORs them).
fn source_match(condition: Option<&Value>, topic_arn: &str) -> SourceMatch {
    let Some(Value::Object(ops)) = condition else {
        return SourceMatch::Unconditioned;
    };
    let mut found = false;
    let mut all_name_topic = true;
    let mut values_seen = Vec::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else { continue };
        let op = op.to_ascii_lowercase();
        let op = op.strip_suffix("ifexists").unwrap_or(&op);
        for (key, values) in keys {
            if !key.eq_ignore_ascii_case(SOURCE_ARN) {
                continue;
            }
            found = true;
            let values = strings(Some(values));
            let names = match op {
                "arnequals" | "arnlike" | "stringlike" => values.iter().any(|v| glob(v, topic_arn)),
                "stringequals" => values.iter().any(|v| v == topic_arn),
                _ => false,
            };
            if !names {
                all_name_topic = false;
                values_seen.extend(values);
            }
        }
    }
    match (found, all_name_topic) {
        (false, _) => SourceMatch::Unconditioned,
        (true, true) => SourceMatch::Names,
        (true, false) => SourceMatch::Other(values_seen),
    }
}

/// A JSON string or list of strings as a list (anything else: empty).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM wildcard matching: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The statement [`queue_policy_json`] writes: allow the SNS service to send
/// to the queue, only for this topic.
///
/// The action is spelled `SQS:SendMessage`: IAM reads actions without
/// regard to case, and the original Python Iniesta's start-up check looks
/// for exactly this spelling (in the policy's first statement only), so a
/// queue shared with a Python service during a migration passes its check.
pub fn send_statement(queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Sid": statement_id(topic_arn),
        "Effect": "Allow",
        "Principal": { "Service": "sns.amazonaws.com" },
        "Action": "SQS:SendMessage",
        "Resource": queue_arn,
        "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } },
    })
}

/// A queue policy letting the topic send to the queue, and nothing else:
/// what `provision` sets and what a failed check tells to set.
pub fn queue_policy_json(queue_arn: &str, topic_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [send_statement(queue_arn, topic_arn)],
    })
    .to_string()
}

/// The `Sid` of the statement for `topic_arn` (letters and digits only, as
/// IAM requires).
fn statement_id(topic_arn: &str) -> String {
    let name = topic_arn.rsplit(':').next().unwrap_or(topic_arn);
    let clean: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("IniestaSns{clean}")
}

/// `existing` with the statement for this topic added (replacing an earlier
/// one with the same `Sid`), so that other senders keep their permissions.
/// The statement goes first: the original Python Iniesta reads only the
/// first statement. An absent or unreadable policy is replaced by
/// [`queue_policy_json`].
pub(crate) fn merge_send_statement(
    existing: Option<&str>,
    queue_arn: &str,
    topic_arn: &str,
) -> String {
    let doc = existing.and_then(|p| serde_json::from_str::<Value>(p).ok());
    let Some(Value::Object(mut doc)) = doc else {
        return queue_policy_json(queue_arn, topic_arn);
    };
    let ours = send_statement(queue_arn, topic_arn);
    let sid = ours["Sid"].clone();
    let mut statements = match doc.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements.retain(|s| s.get("Sid") != Some(&sid));
    statements.insert(0, ours);
    doc.insert("Statement".into(), Value::Array(statements));
    doc.entry("Version").or_insert_with(|| json!("2012-10-17"));
    Value::Object(doc).to_string()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
