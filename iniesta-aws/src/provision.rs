//! Provisioning: create the topic, the queue, the queue policy and the
//! subscription a consumer needs, for development and tests.
//!
//! Idempotent: every step looks at what exists and changes only what
//! differs, so running it twice changes nothing the second time, and running
//! it over resources that drifted (another filter policy, raw delivery
//! switched) puts them back as requested.
//!
//! The resources also pass the original Python Iniesta's start-up checks, so
//! that a Python service and this one can share a queue during a migration.
//! Its permission check reads only the first statement of the queue policy
//! and wants `"Effect": "Allow"` and the action spelled `SQS:SendMessage`
//! there (case-sensitive): provision puts the topic's statement first with
//! that spelling, and repairs a policy that IAM accepts but that check does
//! not (the statement second, or spelled `sqs:SendMessage`).
//!
//! A topic whose name ends in `.fifo` is made a FIFO topic with
//! content-based deduplication (so that a publisher need not give
//! deduplication ids), and then the queue must be FIFO too (its name ends in
//! `.fifo`): it is made with `FifoQueue` and content-based deduplication
//! (for messages sent to it directly without an id), and its dead-letter
//! queue is FIFO as SQS requires, named `{stem}-dlq.fifo`. A standard topic
//! takes a standard queue. Mixing the kinds is refused before any call: SNS
//! delivers nothing from a standard topic to a FIFO queue, and a standard
//! queue would lose a FIFO topic's order.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_core::FilterPolicy;

use crate::clients::AwsClients;
use crate::error::{backend_error, has_code, AwsError, SNS_NOT_FOUND, SQS_NO_QUEUE};
use crate::fifo::{is_fifo_name, FIFO_SUFFIX};
use crate::policy::{evaluate_queue_policy, merge_send_statement, PolicyVerdict};
use crate::verify::{find_subscription, subscription_attributes};

/// The topic to provision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicRef {
    /// Create (or find) the topic with this name in the clients' account and
    /// region.
    Name(String),
    /// Use this topic, creating it by its name when it does not exist (the
    /// ARN's account and region must be the clients').
    Arn(String),
}

/// What to provision: [`ProvisionRequest::new`], then set the fields that
/// differ from its defaults (the struct is `#[non_exhaustive]`, so that new
/// resources can be asked for without breaking callers).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProvisionRequest {
    /// The topic.
    pub topic: TopicRef,
    /// The queue name.
    pub queue_name: String,
    /// The subscription's filter policy.
    pub filter_policy: FilterPolicy,
    /// `RawMessageDelivery` on the subscription.
    pub raw_delivery: bool,
    /// The queue's visibility timeout, rounded up to whole seconds and at
    /// most 12 hours; `None` leaves it as it is (30 s for a new queue).
    pub visibility_timeout: Option<Duration>,
    /// Give the queue a dead-letter queue `{queue_name}-dlq` (for a FIFO
    /// queue `{stem}-dlq.fifo`) that takes a message after this many
    /// receives; `None` leaves the redrive policy as it is.
    pub dead_letter_after: Option<u32>,
}

impl ProvisionRequest {
    /// A request for the named topic and queue, envelope delivery, no
    /// dead-letter queue, default visibility timeout.
    pub fn new(
        topic: TopicRef,
        queue_name: impl Into<String>,
        filter_policy: FilterPolicy,
    ) -> Self {
        ProvisionRequest {
            topic,
            queue_name: queue_name.into(),
            filter_policy,
            raw_delivery: false,
            visibility_timeout: None,
            dead_letter_after: None,
        }
    }
}

/// What [`provision`] set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provisioned {
    /// The topic ARN.
    pub topic_arn: String,
    /// The queue URL.
    pub queue_url: String,
    /// The queue ARN.
    pub queue_arn: String,
    /// The subscription ARN.
    pub subscription_arn: String,
    /// The dead-letter queue's ARN, when one was requested.
    pub dead_letter_queue_arn: Option<String>,
    /// Whether the topic and the queue (and the dead-letter queue) are FIFO.
    pub fifo: bool,
}

/// Creates or updates the topic, the queue (with its policy and, if asked,
/// its dead-letter queue) and the subscription with its filter policy and
/// delivery mode, all FIFO when the topic's name ends in `.fifo` (see the
/// [module](self)). Idempotent.
pub async fn provision(
    clients: &AwsClients,
    request: &ProvisionRequest,
) -> Result<Provisioned, AwsError> {
    if request.queue_name.is_empty() {
        return Err(AwsError::Invalid(
            "the queue name is empty: set INIESTA_SQS_QUEUE_NAME, or SERVICE_NAME and ENVIRONMENT"
                .into(),
        ));
    }
    let fifo = fifo_kind(&request.topic, &request.queue_name)?;
    let topic_arn = ensure_topic(&clients.sns, &request.topic, fifo).await?;
    let create_attrs = if fifo {
        vec![
            (QueueAttributeName::FifoQueue, "true".to_owned()),
            (
                QueueAttributeName::ContentBasedDeduplication,
                "true".to_owned(),
            ),
        ]
    } else {
        Vec::new()
    };

    let mut dead_letter_queue_arn = None;
    let mut queue_attrs = Vec::new();
    if let Some(v) = request.visibility_timeout {
        // Rounded up like every visibility sent to SQS: a queue timeout
        // shorter than asked would let messages reappear early.
        let secs = iniesta_core::sqs::visibility_seconds(v);
        queue_attrs.push((QueueAttributeName::VisibilityTimeout, secs.to_string()));
    }
    if let Some(max_receives) = request.dead_letter_after {
        let dlq_name = dead_letter_queue_name(&request.queue_name);
        let (_, dlq_arn, _) =
            ensure_queue(&clients.sqs, &dlq_name, Vec::new(), create_attrs.clone()).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives.max(1),
        });
        queue_attrs.push((QueueAttributeName::RedrivePolicy, redrive.to_string()));
        dead_letter_queue_arn = Some(dlq_arn);
    }
    let (queue_url, queue_arn, policy) =
        ensure_queue(&clients.sqs, &request.queue_name, queue_attrs, create_attrs).await?;

    if let Some(merged) = queue_policy_to_write(policy.as_deref(), &queue_arn, &topic_arn) {
        tracing::debug!(queue = %queue_url, "sqs:SetQueueAttributes Policy");
        clients
            .sqs
            .set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::Policy, merged)
            .send()
            .await
            .map_err(|e| AwsError::call("sqs:SetQueueAttributes", backend_error(&e)))?;
    }

    let subscription_arn = ensure_subscription(clients, &topic_arn, &queue_arn, request).await?;
    Ok(Provisioned {
        topic_arn,
        queue_url,
        queue_arn,
        subscription_arn,
        dead_letter_queue_arn,
        fifo,
    })
}

/// Whether to provision FIFO resources: the topic's name ends in `.fifo`.
/// The queue must then be FIFO too, and standard otherwise; the error says
/// which name to change.
fn fifo_kind(topic: &TopicRef, queue_name: &str) -> Result<bool, AwsError> {
    let (TopicRef::Name(t) | TopicRef::Arn(t)) = topic;
    match (is_fifo_name(t), is_fifo_name(queue_name)) {
        (true, false) => Err(AwsError::Invalid(format!(
            "topic {t} is a FIFO topic, so its queue must be a FIFO queue, whose name ends in \
             .fifo: set INIESTA_SQS_QUEUE_NAME to {queue_name}.fifo (or end the queue name \
             template in .fifo)"
        ))),
        (false, true) => Err(AwsError::Invalid(format!(
            "queue {queue_name} is a FIFO queue, but topic {t} is a standard topic and SNS \
             delivers nothing from a standard topic to a FIFO queue: use a topic whose name \
             ends in .fifo, or a queue name without .fifo"
        ))),
        (fifo, _) => Ok(fifo),
    }
}

/// The dead-letter queue of `queue_name`: `{queue_name}-dlq`, or for a FIFO
/// queue `{stem}-dlq.fifo` (a FIFO queue's dead-letter queue is FIFO, and
/// its name must end in `.fifo`).
pub(crate) fn dead_letter_queue_name(queue_name: &str) -> String {
    match queue_name.strip_suffix(FIFO_SUFFIX) {
        Some(stem) => format!("{stem}-dlq{FIFO_SUFFIX}"),
        None => format!("{queue_name}-dlq"),
    }
}

/// The queue policy to write, or `None` when `current` already lets the
/// topic send (by IAM's reading, with an `aws:SourceArn` condition naming
/// it) *and* passes the original Python Iniesta's first-statement check.
/// What it writes is `current` with the topic's statement first, so other
/// senders keep their permissions.
fn queue_policy_to_write(
    current: Option<&str>,
    queue_arn: &str,
    topic_arn: &str,
) -> Option<String> {
    let fine = current.is_some_and(|p| {
        matches!(
            evaluate_queue_policy(p, queue_arn, topic_arn),
            PolicyVerdict::Allowed { .. }
        ) && first_statement_allows_send(p)
    });
    (!fine).then(|| merge_send_statement(current, queue_arn, topic_arn))
}

/// The original Python Iniesta's permission check
/// (`SQSClient.confirm_permission`): the policy's `Statement` is a list
/// whose first entry has `"Effect": "Allow"` and an `Action` that contains
/// `SQS:SendMessage`, case-sensitive (a substring of a string action, an
/// element of a list). Nothing else of the policy is read.
fn first_statement_allows_send(policy: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let Some(first) = doc
        .get("Statement")
        .and_then(serde_json::Value::as_array)
        .and_then(|list| list.first())
    else {
        return false;
    };
    let action_ok = match first.get("Action") {
        Some(serde_json::Value::String(a)) => a.contains(ORIGINAL_SEND_ACTION),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(ORIGINAL_SEND_ACTION)),
        _ => false,
    };
    first.get("Effect").and_then(serde_json::Value::as_str) == Some("Allow") && action_ok
}

/// The action as the original Python Iniesta's permission check spells it.
const ORIGINAL_SEND_ACTION: &str = "SQS:SendMessage";

/// Finds or creates the topic (FIFO when `fifo`, with content-based
/// deduplication turned on); returns its ARN.
async fn ensure_topic(
    sns: &aws_sdk_sns::Client,
    topic: &TopicRef,
    fifo: bool,
) -> Result<String, AwsError> {
    let arn = find_or_create_topic(sns, topic, fifo).await?;
    if fifo {
        ensure_content_based_deduplication(sns, &arn).await?;
    }
    Ok(arn)
}

/// Turns on a FIFO topic's `ContentBasedDeduplication` unless it is on, so
/// that a message published without a deduplication id is accepted (SNS
/// refuses it otherwise).
async fn ensure_content_based_deduplication(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
) -> Result<(), AwsError> {
    tracing::debug!(topic = topic_arn, "sns:GetTopicAttributes");
    let out = sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(|e| AwsError::call("sns:GetTopicAttributes", backend_error(&e)))?;
    let on = out
        .attributes()
        .and_then(|a| a.get("ContentBasedDeduplication"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !on {
        tracing::debug!(
            topic = topic_arn,
            "sns:SetTopicAttributes ContentBasedDeduplication"
        );
        sns.set_topic_attributes()
            .topic_arn(topic_arn)
            .attribute_name("ContentBasedDeduplication")
            .attribute_value("true")
            .send()
            .await
            .map_err(|e| AwsError::call("sns:SetTopicAttributes", backend_error(&e)))?;
    }
    Ok(())
}

async fn find_or_create_topic(
    sns: &aws_sdk_sns::Client,
    topic: &TopicRef,
    fifo: bool,
) -> Result<String, AwsError> {
    let name = match topic {
        TopicRef::Name(name) => name.as_str(),
        TopicRef::Arn(arn) => {
            tracing::debug!(topic = arn.as_str(), "sns:GetTopicAttributes");
            match sns.get_topic_attributes().topic_arn(arn).send().await {
                Ok(_) => return Ok(arn.clone()),
                Err(e) => {
                    let e = backend_error(&e);
                    if !has_code(&e, &[SNS_NOT_FOUND]) {
                        return Err(AwsError::call("sns:GetTopicAttributes", e));
                    }
                }
            }
            arn.rsplit(':').next().unwrap_or_default()
        }
    };
    if name.is_empty() {
        return Err(AwsError::Invalid(format!(
            "cannot tell a topic name from {topic:?}"
        )));
    }
    tracing::debug!(topic = name, fifo, "sns:CreateTopic");
    // Only `FifoTopic`: CreateTopic of an existing topic fails when an
    // attribute given differs from the topic's, and the deduplication is
    // set apart, when it is off.
    let out = sns
        .create_topic()
        .name(name)
        .set_attributes(fifo.then(|| [("FifoTopic".to_owned(), "true".to_owned())].into()))
        .send()
        .await
        .map_err(|e| AwsError::call("sns:CreateTopic", backend_error(&e)))?;
    let created = out
        .topic_arn()
        .ok_or(AwsError::MissingField {
            operation: "sns:CreateTopic",
            field: "TopicArn",
        })?
        .to_owned();
    if let TopicRef::Arn(arn) = topic {
        if &created != arn {
            return Err(AwsError::Invalid(format!(
                "topic {arn} does not exist and cannot be created with these credentials: \
                 they create {created} (another account or region)"
            )));
        }
    }
    Ok(created)
}

/// Finds or creates the queue and sets `attrs` on it, creating it with
/// `create_attrs` too (the ones SQS sets only at creation, like
/// `FifoQueue`); returns its URL, ARN and current policy.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attrs: Vec<(QueueAttributeName, String)>,
    create_attrs: Vec<(QueueAttributeName, String)>,
) -> Result<(String, String, Option<String>), AwsError> {
    tracing::debug!(queue = name, "sqs:GetQueueUrl");
    let url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => {
            let url = out.queue_url().unwrap_or_default().to_owned();
            if !attrs.is_empty() {
                tracing::debug!(queue = %url, "sqs:SetQueueAttributes");
                sqs.set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(attrs.into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| AwsError::call("sqs:SetQueueAttributes", backend_error(&e)))?;
            }
            url
        }
        Err(e) => {
            let e = backend_error(&e);
            if !has_code(&e, &SQS_NO_QUEUE) {
                return Err(AwsError::call("sqs:GetQueueUrl", e));
            }
            tracing::debug!(queue = name, "sqs:CreateQueue");
            let out = sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attrs.into_iter().chain(create_attrs).collect()))
                .send()
                .await
                .map_err(|e| AwsError::call("sqs:CreateQueue", backend_error(&e)))?;
            out.queue_url().unwrap_or_default().to_owned()
        }
    };
    if url.is_empty() {
        return Err(AwsError::MissingField {
            operation: "sqs:GetQueueUrl",
            field: "QueueUrl",
        });
    }
    tracing::debug!(queue = %url, "sqs:GetQueueAttributes");
    let out = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .map_err(|e| AwsError::call("sqs:GetQueueAttributes", backend_error(&e)))?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    let arn = attrs
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .ok_or(AwsError::MissingField {
            operation: "sqs:GetQueueAttributes",
            field: "QueueArn",
        })?;
    let policy = attrs
        .get(&QueueAttributeName::Policy)
        .filter(|p| !p.trim().is_empty())
        .cloned();
    Ok((url, arn, policy))
}

async fn ensure_subscription(
    clients: &AwsClients,
    topic_arn: &str,
    queue_arn: &str,
    request: &ProvisionRequest,
) -> Result<String, AwsError> {
    let policy = request.filter_policy.to_json_string();
    let raw = if request.raw_delivery {
        "true"
    } else {
        "false"
    };
    let existing = find_subscription(&clients.sns, topic_arn, queue_arn)
        .await
        .map_err(|e| AwsError::call("sns:ListSubscriptionsByTopic", e))?
        .filter(|arn| !arn.is_empty() && !arn.eq_ignore_ascii_case("PendingConfirmation"));
    let Some(arn) = existing else {
        tracing::debug!(topic = topic_arn, queue = queue_arn, "sns:Subscribe");
        let out = clients
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("FilterPolicy", policy)
            .attributes("RawMessageDelivery", raw)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| AwsError::call("sns:Subscribe", backend_error(&e)))?;
        return out
            .subscription_arn()
            .map(str::to_owned)
            .ok_or(AwsError::MissingField {
                operation: "sns:Subscribe",
                field: "SubscriptionArn",
            });
    };
    let attrs = subscription_attributes(&clients.sns, &arn)
        .await
        .map_err(|e| AwsError::call("sns:GetSubscriptionAttributes", e))?;
    let mut changes: Vec<(&str, String)> = Vec::new();
    if attrs
        .get("FilterPolicyScope")
        .is_some_and(|s| s == "MessageBody")
    {
        changes.push(("FilterPolicyScope", "MessageAttributes".into()));
    }
    if !attrs
        .get("FilterPolicy")
        .is_some_and(|p| request.filter_policy.same_as_json(p))
    {
        changes.push(("FilterPolicy", policy));
    }
    if crate::verify::delivery_mode_of(&attrs) != delivery_mode(request.raw_delivery) {
        changes.push(("RawMessageDelivery", raw.into()));
    }
    for (name, value) in changes {
        tracing::debug!(subscription = %arn, attribute = name, "sns:SetSubscriptionAttributes");
        clients
            .sns
            .set_subscription_attributes()
            .subscription_arn(&arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(|e| AwsError::call("sns:SetSubscriptionAttributes", backend_error(&e)))?;
    }
    Ok(arn)
}

fn delivery_mode(raw: bool) -> iniesta_core::DeliveryMode {
    if raw {
        iniesta_core::DeliveryMode::Raw
    } else {
        iniesta_core::DeliveryMode::Envelope
    }
}

#[cfg(test)]
#[path = "provision_tests.rs"]
mod tests;
