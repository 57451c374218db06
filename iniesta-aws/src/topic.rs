//! [`SnsTopic`]: the core's [`Topic`] port on SNS, and the original
//! publisher's wire format on top of it. A FIFO topic's messages get their
//! message group and deduplication id as [`fifo`] says.

use async_trait::async_trait;
use aws_sdk_sns::primitives::Blob;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use iniesta_core::publish::{event_message, message_size, PublishError, MAX_MESSAGE_BYTES};
use iniesta_core::settings::FifoGroup;
use iniesta_core::{AttributeValue, BackendError, OutgoingMessage, Topic};

use crate::batch;
use crate::error::{backend_error, AwsError};
use crate::fifo;

/// The most entries one PublishBatch call takes.
pub const MAX_PUBLISH_BATCH: usize = 10;

/// The default event-name attribute (`INIESTA_SNS_EVENT_KEY`).
pub const DEFAULT_EVENT_KEY: &str = "iniesta_pass";

/// An SNS topic as the core's [`Topic`].
///
/// On a FIFO topic (its name ends in `.fifo`) every message needs a message
/// group: the message's own ([`OutgoingMessage::with_group_id`],
/// [`publish_event_in_group`](Self::publish_event_in_group)), else the one
/// the [rule](Self::with_group_rule) gives; a message with neither fails
/// before any call. See [`fifo`] for what each kind of topic
/// takes.
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    event_key: String,
    group_rule: Option<FifoGroup>,
}

impl SnsTopic {
    /// The topic `topic_arn`, naming events with the default attribute
    /// `iniesta_pass`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsTopic {
            client,
            topic_arn: topic_arn.into(),
            event_key: DEFAULT_EVENT_KEY.to_owned(),
            group_rule: None,
        }
    }

    /// Gives a message to a FIFO topic that has no group of its own the one
    /// `rule` picks (`INIESTA_SNS_FIFO_GROUP`); `None` requires every
    /// message to bring its own. Not applied on a standard topic.
    pub fn with_group_rule(mut self, rule: Option<FifoGroup>) -> Self {
        self.group_rule = rule;
        self
    }

    /// Whether the topic is FIFO (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        fifo::is_fifo_name(&self.topic_arn)
    }

    /// Uses another event-name attribute (`INIESTA_SNS_EVENT_KEY`) for
    /// [`publish_event`](Self::publish_event); consumers must use the same.
    pub fn with_event_key(mut self, event_key: impl Into<String>) -> Self {
        self.event_key = event_key.into();
        self
    }

    /// The topic ARN.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// The event-name attribute.
    pub fn event_key(&self) -> &str {
        &self.event_key
    }

    /// Publishes `event` in the original Iniesta wire format: `body` as the
    /// message, the event name in the event-key attribute (String) and
    /// `version` (Number). Python Iniesta consumers read it unchanged.
    ///
    /// `event` is sent as given; qualify it first with
    /// [`iniesta_core::publish::qualify_event`] to add the service suffix.
    /// Returns the SNS message id.
    ///
    /// On a FIFO topic the message's group comes from the
    /// [rule](Self::with_group_rule); without one this fails with
    /// [`AwsError::Fifo`] before any call (use
    /// [`publish_event_in_group`](Self::publish_event_in_group)).
    pub async fn publish_event(
        &self,
        event: &str,
        body: impl Into<String>,
        version: u32,
    ) -> Result<String, AwsError> {
        let message = event_message(&self.event_key, event, body, version)?;
        self.publish_checked(message).await
    }

    /// [`publish_event`](Self::publish_event) in the message group
    /// `group_id`, with an explicit deduplication id when given (a FIFO
    /// topic drops a second message with the same id within five minutes;
    /// without one, its content-based deduplication hashes the body). A
    /// deduplication id on a standard topic, or an id SNS would refuse (over
    /// 128 characters, not ASCII letters, digits or punctuation), fails with
    /// [`AwsError::Fifo`] before any call.
    pub async fn publish_event_in_group(
        &self,
        event: &str,
        body: impl Into<String>,
        version: u32,
        group_id: impl Into<String>,
        deduplication_id: Option<&str>,
    ) -> Result<String, AwsError> {
        let mut message =
            event_message(&self.event_key, event, body, version)?.with_group_id(group_id);
        message.deduplication_id = deduplication_id.map(str::to_owned);
        self.publish_checked(message).await
    }

    /// Completes and checks the FIFO ids of `message`, then publishes it.
    async fn publish_checked(&self, message: OutgoingMessage) -> Result<String, AwsError> {
        let message = fifo::prepare(&self.topic_arn, self.group_rule.as_ref(), message)?;
        self.send(message)
            .await
            .map_err(|e| AwsError::call("sns:Publish", e))
    }

    /// One Publish call, after checking the SNS size limit (body plus
    /// attributes); returns the SNS message id.
    async fn send(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        if let Some(e) = size_error(&message) {
            return Err(e);
        }
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.body)
            .set_message_group_id(message.group_id)
            .set_message_deduplication_id(message.deduplication_id);
        for (name, value) in &message.attributes {
            let value =
                attribute_to_sns(value).map_err(|e| BackendError::message(e.to_string()))?;
            request = request.message_attributes(name, value);
        }
        tracing::debug!(topic = %self.topic_arn, "sns:Publish");
        let out = request.send().await.map_err(|e| backend_error(&e))?;
        out.message_id()
            .map(str::to_owned)
            .ok_or_else(|| BackendError::message("sns:Publish answered without a MessageId"))
    }

    async fn publish_chunk(&self, chunk: &[OutgoingMessage]) -> Vec<Result<String, BackendError>> {
        let entries: Result<Vec<_>, _> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut entry = PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(&m.body)
                    .set_message_group_id(m.group_id.clone())
                    .set_message_deduplication_id(m.deduplication_id.clone());
                for (name, value) in &m.attributes {
                    entry = entry.message_attributes(name, attribute_to_sns(value)?);
                }
                entry.build()
            })
            .collect();
        batch::call(chunk.len(), entries, |entries| async move {
            tracing::debug!(topic = %self.topic_arn, entries = chunk.len(), "sns:PublishBatch");
            self.client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map(|out| {
                    batch::in_request_order(
                        chunk.len(),
                        out.successful().iter().map(|s| {
                            let id = s.message_id().map(str::to_owned).ok_or_else(|| {
                                BackendError::message(
                                    "sns:PublishBatch answered without a MessageId",
                                )
                            });
                            (s.id(), id)
                        }),
                        out.failed().iter().map(|f| (f.id(), f.code(), f.message())),
                        "the batch answer did not mention this entry; it may or may not be published",
                    )
                })
        })
        .await
    }
}

/// Converts an attribute to its SNS form.
pub(crate) fn attribute_to_sns(
    value: &AttributeValue,
) -> Result<MessageAttributeValue, aws_sdk_sns::error::BuildError> {
    let builder = MessageAttributeValue::builder().data_type(value.data_type());
    match value {
        AttributeValue::String(s) | AttributeValue::Number(s) | AttributeValue::StringArray(s) => {
            builder.string_value(s)
        }
        AttributeValue::Binary(b) => builder.binary_value(Blob::new(b.clone())),
    }
    .build()
}

/// The size error for a message over the SNS limit, before any call.
fn size_error(message: &OutgoingMessage) -> Option<BackendError> {
    let size = message_size(message);
    (size > MAX_MESSAGE_BYTES)
        .then(|| BackendError::message(PublishError::TooLarge { size }.to_string()))
}

#[async_trait]
impl Topic for SnsTopic {
    /// Publishes one message after checking the SNS size limit (body plus
    /// attributes) and its FIFO ids (see [`SnsTopic`]); returns the SNS
    /// message id.
    async fn publish(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        let message = fifo::prepare(&self.topic_arn, self.group_rule.as_ref(), message)
            .map_err(|e| BackendError::message(e.to_string()))?;
        self.send(message).await
    }

    /// Publishes with PublishBatch, at most 10 messages and 256 KiB per
    /// call. A message over the size limit, or without the FIFO ids the
    /// topic needs, fails on its own without being sent; the results are in
    /// the order of `messages`.
    async fn publish_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<String, BackendError>> {
        let mut results: Vec<Option<Result<String, BackendError>>> = vec![None; messages.len()];
        let mut sendable = Vec::new();
        for (i, m) in messages.into_iter().enumerate() {
            let prepared = fifo::prepare(&self.topic_arn, self.group_rule.as_ref(), m)
                .map_err(|e| BackendError::message(e.to_string()));
            match prepared.and_then(|m| size_error(&m).map_or(Ok(m), Err)) {
                Err(e) => results[i] = Some(Err(e)),
                Ok(m) => sendable.push((i, m)),
            }
        }
        // Group into calls of at most 10 entries and 256 KiB in total.
        let mut start = 0;
        while start < sendable.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < sendable.len() && end - start < MAX_PUBLISH_BATCH {
                let size = message_size(&sendable[end].1);
                if end > start && bytes + size > MAX_MESSAGE_BYTES {
                    break;
                }
                bytes += size;
                end += 1;
            }
            let chunk: Vec<OutgoingMessage> = sendable[start..end]
                .iter()
                .map(|(_, m)| m.clone())
                .collect();
            let answers = self.publish_chunk(&chunk).await;
            for ((i, _), answer) in sendable[start..end].iter().zip(answers) {
                results[*i] = Some(answer);
            }
            start = end;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(BackendError::message("not published"))))
            .collect()
    }
}

#[cfg(test)]
#[path = "topic_tests.rs"]
mod tests;
