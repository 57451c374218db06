//! Gathering: what AWS says about the topic, the queue and the
//! subscription, call by call, with no judgement. A failed call is kept as a
//! fact (its [`BackendError`]), never raised; a call that was not made is
//! `None`.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_core::{BackendError, DeliveryMode};

use super::checks::subscription_target;
use super::VerifyRequest;
use crate::clients::AwsClients;
use crate::error::backend_error;
use crate::fifo::is_fifo_name;

/// The answer of one AWS call.
pub(super) type Answer<T> = Result<T, BackendError>;

/// Everything [`verify`](super::verify()) asked AWS, and the answers. Which
/// calls are made depends on the request's scope and on earlier answers
/// (no subscription lookup without a topic and a queue ARN), so that a
/// missing resource costs no further calls. `None`: the call was not made.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Facts {
    /// `sns:GetTopicAttributes` on the configured topic: `Ok` when it
    /// exists. Not asked outside the scope or without a topic ARN.
    pub topic: Option<Answer<()>>,
    /// Whether that answer says the topic is FIFO (`FifoTopic`, or a name
    /// ending in `.fifo`); `None` when the topic was not read.
    pub topic_fifo: Option<bool>,
    /// `sqs:GetQueueUrl`, then `sqs:GetQueueAttributes`, on the configured
    /// queue name. Not asked outside the scope or without a queue name.
    pub queue: Option<QueueLookup>,
    /// `sns:ListSubscriptionsByTopic` (every page), then
    /// `sns:GetSubscriptionAttributes`. Asked only when
    /// [`subscription_target`] gives a topic and a queue ARN.
    pub subscription: Option<SubscriptionLookup>,
}

/// What SQS said about the configured queue.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum QueueLookup {
    /// GetQueueUrl failed.
    Unresolved(BackendError),
    /// GetQueueUrl answered without a URL.
    NoUrl,
    /// GetQueueUrl gave the URL; GetQueueAttributes answered.
    Resolved {
        /// The queue URL.
        url: String,
        /// Its attributes.
        attributes: Answer<QueueAttributes>,
    },
}

/// The queue attributes verification reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct QueueAttributes {
    /// `QueueArn`.
    pub arn: Option<String>,
    /// `Policy`; an empty or blank policy counts as none.
    pub policy: Option<String>,
    /// `RedrivePolicy`, as SQS returned it.
    pub redrive_policy: Option<String>,
    /// `VisibilityTimeout` in seconds; `None` when absent or not a number.
    pub visibility_timeout: Option<u64>,
    /// `FifoQueue` is `true`, or the URL ends in `.fifo` (SQS requires the
    /// suffix of FIFO queues, and of them only).
    pub fifo: bool,
}

/// What SNS said about the queue's subscription to the topic.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SubscriptionLookup {
    /// ListSubscriptionsByTopic failed.
    Failed(BackendError),
    /// The topic has no `sqs` subscription whose endpoint is the queue ARN.
    Missing,
    /// There is one, waiting for confirmation (SNS lists it as
    /// `PendingConfirmation`, some emulators as an empty ARN).
    Pending,
    /// There is one, confirmed; GetSubscriptionAttributes answered.
    Confirmed {
        /// The subscription ARN.
        arn: String,
        /// Its attributes.
        attributes: Answer<SubscriptionAttributes>,
    },
}

/// The subscription attributes verification reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SubscriptionAttributes {
    /// `FilterPolicy`, as SNS returned it.
    pub filter_policy: Option<String>,
    /// `FilterPolicyScope` (`MessageAttributes` or `MessageBody`).
    pub filter_policy_scope: Option<String>,
    /// What `RawMessageDelivery` selects.
    pub delivery_mode: DeliveryMode,
}

impl SubscriptionAttributes {
    /// The attributes in a GetSubscriptionAttributes answer.
    pub(super) fn from_map(attributes: &HashMap<String, String>) -> Self {
        SubscriptionAttributes {
            filter_policy: attributes.get("FilterPolicy").cloned(),
            filter_policy_scope: attributes.get("FilterPolicyScope").cloned(),
            delivery_mode: delivery_mode_of(attributes),
        }
    }
}

impl Facts {
    /// Whether the topic was found.
    pub(super) fn topic_exists(&self) -> bool {
        matches!(self.topic, Some(Ok(())))
    }

    /// The queue URL, when GetQueueUrl gave one.
    pub(super) fn queue_url(&self) -> Option<&str> {
        match &self.queue {
            Some(QueueLookup::Resolved { url, .. }) => Some(url),
            _ => None,
        }
    }

    /// The queue's attributes, when they were read.
    pub(super) fn queue_attributes(&self) -> Option<&QueueAttributes> {
        match &self.queue {
            Some(QueueLookup::Resolved {
                attributes: Ok(attributes),
                ..
            }) => Some(attributes),
            _ => None,
        }
    }

    /// The queue ARN, when the queue reported it.
    pub(super) fn queue_arn(&self) -> Option<&str> {
        self.queue_attributes().and_then(|q| q.arn.as_deref())
    }

    /// The confirmed subscription's ARN and the answer to reading its
    /// attributes.
    pub(super) fn subscription(&self) -> Option<(&str, &Answer<SubscriptionAttributes>)> {
        match &self.subscription {
            Some(SubscriptionLookup::Confirmed { arn, attributes }) => Some((arn, attributes)),
            _ => None,
        }
    }
}

/// Whether a subscription ARN from ListSubscriptionsByTopic stands for a
/// subscription still waiting for confirmation.
pub(super) fn is_pending(subscription_arn: &str) -> bool {
    subscription_arn.is_empty() || subscription_arn.eq_ignore_ascii_case("PendingConfirmation")
}

/// Asks AWS everything the checks of `request.scope` need.
pub(super) async fn gather(clients: &AwsClients, request: &VerifyRequest) -> Facts {
    let scope = request.scope;
    let mut facts = Facts::default();
    if scope.wants_topic() {
        if let Some(arn) = request.topic_arn.as_deref().filter(|t| !t.is_empty()) {
            let answer = topic_exists(&clients.sns, arn).await;
            facts.topic_fifo = answer.as_ref().ok().copied();
            facts.topic = Some(answer.map(|_| ()));
        }
    }
    if scope.wants_queue() && !request.queue_name.is_empty() {
        facts.queue = Some(look_up_queue(&clients.sqs, &request.queue_name).await);
    }
    if let Ok((topic, queue_arn)) = subscription_target(request, &facts) {
        facts.subscription = Some(look_up_subscription(&clients.sns, topic, queue_arn).await);
    }
    facts
}

/// GetTopicAttributes: `Ok` when the topic exists, with whether it is FIFO.
async fn topic_exists(sns: &aws_sdk_sns::Client, topic_arn: &str) -> Answer<bool> {
    tracing::debug!(topic = topic_arn, "sns:GetTopicAttributes");
    let out = sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(|e| backend_error(&e))?;
    let attributes = out.attributes().cloned().unwrap_or_default();
    Ok(is_true(attributes.get("FifoTopic")) || is_fifo_name(topic_arn))
}

/// Whether an attribute reads as `true` (SNS and SQS write `true`; some
/// emulators `True`).
fn is_true(value: Option<&String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// GetQueueUrl, then GetQueueAttributes once the URL is known.
async fn look_up_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> QueueLookup {
    tracing::debug!(queue = name, "sqs:GetQueueUrl");
    let url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => match out.queue_url() {
            Some(url) => url.to_owned(),
            None => return QueueLookup::NoUrl,
        },
        Err(e) => return QueueLookup::Unresolved(backend_error(&e)),
    };
    let attributes = queue_attributes(sqs, &url).await;
    QueueLookup::Resolved { url, attributes }
}

/// GetQueueAttributes: the attributes verification reads.
async fn queue_attributes(sqs: &aws_sdk_sqs::Client, url: &str) -> Answer<QueueAttributes> {
    tracing::debug!(queue = %url, "sqs:GetQueueAttributes");
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::Policy)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::FifoQueue)
        .send()
        .await
        .map_err(|e| backend_error(&e))?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    Ok(QueueAttributes {
        arn: attrs.get(&QueueAttributeName::QueueArn).cloned(),
        policy: attrs
            .get(&QueueAttributeName::Policy)
            .filter(|p| !p.trim().is_empty())
            .cloned(),
        redrive_policy: attrs.get(&QueueAttributeName::RedrivePolicy).cloned(),
        visibility_timeout: attrs
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.trim().parse().ok()),
        fifo: is_true(attrs.get(&QueueAttributeName::FifoQueue)) || is_fifo_name(url),
    })
}

/// ListSubscriptionsByTopic for the queue's subscription, then
/// GetSubscriptionAttributes once it is confirmed.
async fn look_up_subscription(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
) -> SubscriptionLookup {
    let arn = match find_subscription(sns, topic_arn, queue_arn).await {
        Ok(Some(arn)) if is_pending(&arn) => return SubscriptionLookup::Pending,
        Ok(Some(arn)) => arn,
        Ok(None) => return SubscriptionLookup::Missing,
        Err(e) => return SubscriptionLookup::Failed(e),
    };
    let attributes = subscription_attributes(sns, &arn)
        .await
        .map(|a| SubscriptionAttributes::from_map(&a));
    SubscriptionLookup::Confirmed { arn, attributes }
}

/// Whether a subscription listed by ListSubscriptionsByTopic delivers to
/// the queue `queue_arn`: protocol `sqs` and exactly that endpoint.
pub(super) fn delivers_to_queue(
    protocol: Option<&str>,
    endpoint: Option<&str>,
    queue_arn: &str,
) -> bool {
    endpoint == Some(queue_arn) && protocol.is_some_and(|p| p.eq_ignore_ascii_case("sqs"))
}

/// The topic's subscriptions with protocol `sqs` and endpoint `queue_arn`,
/// following every page of ListSubscriptionsByTopic. Returns the
/// subscription ARN of the first, or `None`.
pub(crate) async fn find_subscription(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
) -> Result<Option<String>, BackendError> {
    let mut next: Option<String> = None;
    loop {
        tracing::debug!(topic = topic_arn, "sns:ListSubscriptionsByTopic");
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| backend_error(&e))?;
        if let Some(s) = page
            .subscriptions()
            .iter()
            .find(|s| delivers_to_queue(s.protocol(), s.endpoint(), queue_arn))
        {
            return Ok(Some(s.subscription_arn().unwrap_or_default().to_owned()));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(None),
        }
    }
}

/// A subscription's attributes (GetSubscriptionAttributes).
pub(crate) async fn subscription_attributes(
    sns: &aws_sdk_sns::Client,
    subscription_arn: &str,
) -> Result<HashMap<String, String>, BackendError> {
    tracing::debug!(
        subscription = subscription_arn,
        "sns:GetSubscriptionAttributes"
    );
    let out = sns
        .get_subscription_attributes()
        .subscription_arn(subscription_arn)
        .send()
        .await
        .map_err(|e| backend_error(&e))?;
    Ok(out.attributes().cloned().unwrap_or_default())
}

/// The delivery mode a subscription's attributes select.
pub(crate) fn delivery_mode_of(attributes: &HashMap<String, String>) -> DeliveryMode {
    match attributes.get("RawMessageDelivery") {
        Some(v) if v.trim().eq_ignore_ascii_case("true") => DeliveryMode::Raw,
        _ => DeliveryMode::Envelope,
    }
}
