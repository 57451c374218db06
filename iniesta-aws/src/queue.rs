//! [`SqsQueue`]: the core's [`Queue`] port on SQS, plus queue naming and URL
//! resolution.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
};
use iniesta_core::sqs::{self, MAX_BATCH, MAX_WAIT_TIME};
use iniesta_core::{
    AttributeValue, BackendError, EntryResult, Queue, ReceiptHandle, ReceiveRequest,
    ReceivedMessage, SystemAttributes,
};

use crate::batch;
use crate::error::{backend_error, has_code, AwsError, SQS_NO_QUEUE};

/// The default queue name template (`INIESTA_SQS_QUEUE_NAME_TEMPLATE`).
pub const DEFAULT_QUEUE_NAME_TEMPLATE: &str = "iniesta-{env}-{service_name}";

/// The queue name: `explicit` (`INIESTA_SQS_QUEUE_NAME`) when given and not
/// empty, else `template` with `{env}` and `{service_name}` filled in (the
/// original's `iniesta-{env}-{service_name}`).
pub fn queue_name(explicit: Option<&str>, template: &str, env: &str, service: &str) -> String {
    match explicit.filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => template
            .replace("{env}", env)
            .replace("{service_name}", service),
    }
}

/// Looks up a queue's URL by name (GetQueueUrl).
///
/// A missing queue is [`AwsError::QueueNotFound`], which says how to create
/// it.
pub async fn resolve_queue_url(
    client: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<String, AwsError> {
    tracing::debug!(queue = name, "sqs:GetQueueUrl");
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| backend_error(&e))
        .map_err(|e| {
            if has_code(&e, &SQS_NO_QUEUE) {
                AwsError::QueueNotFound {
                    name: name.to_owned(),
                }
            } else {
                AwsError::call("sqs:GetQueueUrl", e)
            }
        })?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or(AwsError::MissingField {
            operation: "sqs:GetQueueUrl",
            field: "QueueUrl",
        })
}

/// An SQS queue as the core's [`Queue`].
///
/// Receives with long polling, all system attributes and all message
/// attributes; deletes and changes visibility in batches, reporting each
/// entry's result in request order.
///
/// Visibility timeouts go out as [`sqs::visibility_seconds`] gives them:
/// rounded **up** to whole seconds and clamped to 12 hours, so a message is
/// never hidden for less than the caller asked (a 0.8 s heartbeat extension
/// is sent as 1 s, not 0).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    /// A queue at `queue_url` (see [`resolve_queue_url`]).
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Resolves the queue named `name` and returns it.
    pub async fn connect(client: aws_sdk_sqs::Client, name: &str) -> Result<Self, AwsError> {
        let url = resolve_queue_url(&client, name).await?;
        Ok(SqsQueue::new(client, url))
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The SQS client.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    async fn delete_chunk(&self, handles: &[ReceiptHandle]) -> Vec<EntryResult> {
        let entries: Result<Vec<_>, _> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h.as_str())
                    .build()
            })
            .collect();
        batch::call(handles.len(), entries, |entries| async move {
            tracing::debug!(queue = %self.queue_url, entries = handles.len(), "sqs:DeleteMessageBatch");
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map(|out| {
                    batch_results(
                        handles.len(),
                        out.successful().iter().map(|s| s.id()),
                        out.failed(),
                    )
                })
        })
        .await
    }

    async fn change_visibility_chunk(
        &self,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Vec<EntryResult> {
        batch::call(entries.len(), visibility_entries(entries), |request| async move {
            tracing::debug!(queue = %self.queue_url, entries = entries.len(), "sqs:ChangeMessageVisibilityBatch");
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(request))
                .send()
                .await
                .map(|out| {
                    batch_results(
                        entries.len(),
                        out.successful().iter().map(|s| s.id()),
                        out.failed(),
                    )
                })
        })
        .await
    }
}

/// The entries of a ChangeMessageVisibilityBatch call; ids are the request
/// indices, timeouts in whole seconds rounded up.
fn visibility_entries(
    entries: &[(ReceiptHandle, Duration)],
) -> Result<Vec<ChangeMessageVisibilityBatchRequestEntry>, aws_sdk_sqs::error::BuildError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, (h, d))| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(h.as_str())
                .visibility_timeout(sdk_visibility(*d))
                .build()
        })
        .collect()
}

/// A visibility timeout as the SDK takes it: [`sqs::visibility_seconds`]
/// (rounded up, at most 43 200, so it always fits an `i32`).
fn sdk_visibility(d: Duration) -> i32 {
    i32::try_from(sqs::visibility_seconds(d)).unwrap_or(i32::MAX)
}

/// Maps an SQS batch answer back to request order (see
/// [`batch::in_request_order`]); an entry the answer does not mention is
/// reported as failed.
fn batch_results<'a>(
    len: usize,
    successful: impl Iterator<Item = &'a str>,
    failed: &'a [BatchResultErrorEntry],
) -> Vec<EntryResult> {
    batch::in_request_order(
        len,
        successful.map(|id| (Some(id), Ok(()))),
        failed.iter().map(|f| (f.id(), f.code(), f.message())),
        "the batch answer did not mention this entry; retry it",
    )
}

/// Converts an SQS message attribute. Custom labels (`Number.float`) fall
/// to their base type; `String.Array` keeps its JSON text. `None` for a value
/// of an unknown type or without content.
fn attribute_from_sqs(value: &MessageAttributeValue) -> Option<AttributeValue> {
    let data_type = value.data_type();
    if data_type == "String.Array" {
        return value
            .string_value()
            .map(|s| AttributeValue::StringArray(s.to_owned()));
    }
    match data_type.split('.').next().unwrap_or(data_type) {
        "String" => value
            .string_value()
            .map(|s| AttributeValue::String(s.to_owned())),
        "Number" => value
            .string_value()
            .map(|s| AttributeValue::Number(s.to_owned())),
        "Binary" => value
            .binary_value()
            .map(|b| AttributeValue::Binary(b.as_ref().to_vec())),
        _ => None,
    }
}

fn received_from_sqs(m: &aws_sdk_sqs::types::Message) -> Option<ReceivedMessage> {
    let (Some(message_id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
        tracing::warn!("SQS returned a message without id or receipt handle; ignored");
        return None;
    };
    let attributes: SystemAttributes = m
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .unwrap_or_default();
    let mut message_attributes = BTreeMap::new();
    for (name, value) in m.message_attributes().into_iter().flatten() {
        match attribute_from_sqs(value) {
            Some(v) => {
                message_attributes.insert(name.clone(), v);
            }
            None => tracing::warn!(
                message_id,
                attribute = name.as_str(),
                data_type = value.data_type(),
                "message attribute of an unknown type or without value; ignored"
            ),
        }
    }
    Some(ReceivedMessage {
        sqs_message_id: message_id.to_owned(),
        receipt_handle: ReceiptHandle::new(receipt),
        body: m.body().unwrap_or_default().to_owned(),
        attributes,
        message_attributes: message_attributes.into(),
    })
}

/// The system attributes every receive asks for: `All`, and by name the
/// ones the consumer reads, the FIFO ones included (`MessageGroupId` orders
/// a FIFO queue's messages; `SequenceNumber` and `MessageDeduplicationId`
/// are handed to handlers and logs). Named as well as `All` so that an
/// endpoint that reads only the names it knows still returns them.
fn system_attribute_names() -> Vec<MessageSystemAttributeName> {
    use iniesta_core::message::{
        ATTR_DEDUPLICATION_ID, ATTR_FIRST_RECEIVE_TIMESTAMP, ATTR_MESSAGE_GROUP_ID,
        ATTR_RECEIVE_COUNT, ATTR_SENT_TIMESTAMP, ATTR_SEQUENCE_NUMBER,
    };
    std::iter::once(MessageSystemAttributeName::All)
        .chain(
            [
                ATTR_RECEIVE_COUNT,
                ATTR_SENT_TIMESTAMP,
                ATTR_FIRST_RECEIVE_TIMESTAMP,
                ATTR_MESSAGE_GROUP_ID,
                ATTR_SEQUENCE_NUMBER,
                ATTR_DEDUPLICATION_ID,
            ]
            .into_iter()
            .map(MessageSystemAttributeName::from),
        )
        .collect()
}

#[async_trait]
impl Queue for SqsQueue {
    /// Long-polls the queue. Out-of-range parameters are clamped to what SQS
    /// accepts (1..=10 messages, 0..=20 s wait, at most 12 h visibility); a
    /// visibility timeout is rounded up to whole seconds, a wait is rounded
    /// down (a shorter wait only returns earlier).
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, BackendError> {
        let max = request.max_messages.clamp(1, MAX_BATCH as u32) as i32;
        let wait = request.wait_time.min(MAX_WAIT_TIME).as_secs() as i32;
        tracing::debug!(queue = %self.queue_url, max, wait, "sqs:ReceiveMessage");
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .set_visibility_timeout(request.visibility_timeout.map(sdk_visibility))
            .set_message_system_attribute_names(Some(system_attribute_names()))
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| backend_error(&e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(received_from_sqs)
            .collect())
    }

    async fn delete_batch(&self, handles: Vec<ReceiptHandle>) -> Vec<EntryResult> {
        let mut out = Vec::with_capacity(handles.len());
        for chunk in handles.chunks(MAX_BATCH) {
            out.extend(self.delete_chunk(chunk).await);
        }
        out
    }

    async fn change_visibility_batch(
        &self,
        entries: Vec<(ReceiptHandle, Duration)>,
    ) -> Vec<EntryResult> {
        let mut out = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(MAX_BATCH) {
            out.extend(self.change_visibility_chunk(chunk).await);
        }
        out
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
