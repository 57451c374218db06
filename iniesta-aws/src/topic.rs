//! [`SnsTopic`]: the core's [`Topic`] port on SNS, and the original
//! publisher's wire format on top of it.

use async_trait::async_trait;
use aws_sdk_sns::primitives::Blob;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use iniesta_core::publish::{event_message, message_size, PublishError, MAX_MESSAGE_BYTES};
use iniesta_core::{AttributeValue, BackendError, OutgoingMessage, Topic};

use crate::batch;
use crate::error::{backend_error, AwsError};

/// The most entries one PublishBatch call takes.
pub const MAX_PUBLISH_BATCH: usize = 10;

/// The default event-name attribute (`INIESTA_SNS_EVENT_KEY`).
pub const DEFAULT_EVENT_KEY: &str = "iniesta_pass";

/// An SNS topic as the core's [`Topic`].
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    event_key: String,
}

impl SnsTopic {
    /// The topic `topic_arn`, naming events with the default attribute
    /// `iniesta_pass`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsTopic {
            client,
            topic_arn: topic_arn.into(),
            event_key: DEFAULT_EVENT_KEY.to_owned(),
        }
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
    pub async fn publish_event(
        &self,
        event: &str,
        body: impl Into<String>,
        version: u32,
    ) -> Result<String, AwsError> {
        let message = event_message(&self.event_key, event, body, version)?;
        self.publish(message)
            .await
            .map_err(|e| AwsError::call("sns:Publish", e))
    }

    async fn publish_chunk(&self, chunk: &[OutgoingMessage]) -> Vec<Result<String, BackendError>> {
        let entries: Result<Vec<_>, _> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut entry = PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(&m.body);
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
    /// attributes); returns the SNS message id.
    async fn publish(&self, message: OutgoingMessage) -> Result<String, BackendError> {
        if let Some(e) = size_error(&message) {
            return Err(e);
        }
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.body);
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

    /// Publishes with PublishBatch, at most 10 messages and 256 KiB per
    /// call. A message over the size limit fails on its own without being
    /// sent; the results are in the order of `messages`.
    async fn publish_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<String, BackendError>> {
        let mut results: Vec<Option<Result<String, BackendError>>> = vec![None; messages.len()];
        let mut sendable = Vec::new();
        for (i, m) in messages.into_iter().enumerate() {
            match size_error(&m) {
                Some(e) => results[i] = Some(Err(e)),
                None => sendable.push((i, m)),
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
