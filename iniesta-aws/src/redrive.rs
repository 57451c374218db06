//! Dead-letter redrive: messages moved from a queue's dead-letter queue back
//! to the queue, for another try once what made them fail is fixed.
//!
//! [`redrive`] reads the dead-letter queue from the queue's `RedrivePolicy`
//! (`deadLetterTargetArn`), then repeats: receive up to 10 messages from it,
//! send them to the queue with SendMessageBatch (body and message attributes
//! as they were; a FIFO message keeps its group and deduplication id), and
//! delete from the dead-letter queue only the ones that were sent.
//!
//! Sending comes first, so an interrupted move never loses a message: at
//! worst a message is in both queues, and the next redrive sends it again.
//! Such a copy is harmless to a consumer in envelope delivery (the default):
//! its idempotency key is the SNS message id inside the body, which the copy
//! keeps, so the completion record of the first copy makes the second a
//! no-op. In raw delivery the key is the SQS message id, which a copy does
//! not keep.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use iniesta_core::sqs::MAX_BATCH;
use iniesta_core::BackendError;

use crate::batch;
use crate::error::{backend_error, AwsError};
use crate::publish_batch::plan_batches;

/// The most bytes one SendMessageBatch call carries (bodies and attributes
/// together).
pub const MAX_SEND_BATCH_BYTES: usize = 256 * 1024;

/// After this many receives in a row that moved nothing, a redrive stops:
/// the queue is gone, or every message left is one the queue refuses.
const FRUITLESS_ROUNDS: u32 = 3;

/// Why a redrive could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedriveError {
    /// The queue has no `RedrivePolicy`, so no dead-letter queue.
    #[error(
        "queue {queue} has no dead-letter queue (its RedrivePolicy attribute is not set), so \
         there is nothing to redrive; give it one with `iniesta provision --dead-letter-after N` \
         or a RedrivePolicy with a deadLetterTargetArn"
    )]
    NoDeadLetterQueue {
        /// The queue URL.
        queue: String,
    },
    /// The `RedrivePolicy` does not name a dead-letter queue this can use.
    #[error("queue {queue} has a RedrivePolicy that {reason}: {policy}")]
    BadRedrivePolicy {
        /// The queue URL.
        queue: String,
        /// The policy as SQS gave it.
        policy: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What to move and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedriveOptions {
    /// Move at most this many messages; `None`: all of them.
    pub max: Option<u64>,
    /// How long a received dead letter stays hidden: if the move is
    /// interrupted, it is back in the dead-letter queue after this.
    pub visibility_timeout: Duration,
    /// The long-poll wait of each receive; an empty receive ends the move.
    pub wait_time: Duration,
}

impl Default for RedriveOptions {
    /// Everything, hidden 60 s while moved, 1 s long polls.
    fn default() -> Self {
        RedriveOptions {
            max: None,
            visibility_timeout: Duration::from_secs(60),
            wait_time: Duration::from_secs(1),
        }
    }
}

impl RedriveOptions {
    /// Moves at most `max` messages (`None`: all).
    pub fn with_max(mut self, max: Option<u64>) -> Self {
        self.max = max;
        self
    }
}

/// A message a redrive could not finish moving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveFailure {
    /// Its SQS message id in the dead-letter queue.
    pub message_id: String,
    /// Why.
    pub error: BackendError,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedriveReport {
    /// The dead-letter queue the messages came from.
    pub dead_letter_queue_url: String,
    /// Sent to the queue and deleted from the dead-letter queue.
    pub moved: u64,
    /// Sent to the queue but not deleted from the dead-letter queue: they are
    /// in both, and the next redrive sends them again.
    pub not_deleted: Vec<RedriveFailure>,
    /// Not sent: still in the dead-letter queue, visible again after the
    /// visibility timeout.
    pub not_sent: Vec<RedriveFailure>,
}

impl RedriveReport {
    /// Whether every message taken was moved.
    pub fn is_complete(&self) -> bool {
        self.not_deleted.is_empty() && self.not_sent.is_empty()
    }

    /// Messages sent to the queue, deleted from the dead-letter queue or not.
    pub fn sent(&self) -> u64 {
        self.moved + self.not_deleted.len() as u64
    }
}

/// The `deadLetterTargetArn` of a `RedrivePolicy` attribute.
pub fn dead_letter_target_arn(policy: &str) -> Result<String, String> {
    let json: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| format!("is not JSON ({e})"))?;
    match json.get("deadLetterTargetArn") {
        Some(serde_json::Value::String(arn)) if !arn.is_empty() => Ok(arn.clone()),
        Some(_) => Err("has a deadLetterTargetArn that is not an ARN".to_owned()),
        None => Err("has no deadLetterTargetArn".to_owned()),
    }
}

/// The account and queue name of an SQS queue ARN
/// (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub(crate) fn queue_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
            Some((account, name))
        }
        _ => None,
    }
}

/// The URL of the dead-letter queue of the queue at `queue_url`.
pub async fn dead_letter_queue_url(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<String, RedriveError> {
    tracing::debug!(queue = queue_url, "sqs:GetQueueAttributes");
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| AwsError::call("sqs:GetQueueAttributes", backend_error(&e)))?;
    let policy = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| RedriveError::NoDeadLetterQueue {
            queue: queue_url.to_owned(),
        })?;
    let bad = |reason: String| RedriveError::BadRedrivePolicy {
        queue: queue_url.to_owned(),
        policy: policy.clone(),
        reason,
    };
    let arn = dead_letter_target_arn(policy).map_err(bad)?;
    let (account, name) = queue_arn_parts(&arn)
        .ok_or_else(|| bad(format!("names {arn:?}, which is not an SQS queue ARN")))?;
    tracing::debug!(queue = name, "sqs:GetQueueUrl");
    let out = sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| AwsError::call("sqs:GetQueueUrl", backend_error(&e)))?;
    let url = out.queue_url().ok_or(AwsError::MissingField {
        operation: "sqs:GetQueueUrl",
        field: "QueueUrl",
    })?;
    if url == queue_url {
        return Err(bad("names the queue itself".to_owned()));
    }
    Ok(url.to_owned())
}

/// Moves messages from the dead-letter queue of the queue at `queue_url`
/// back to it (see the [module](self)): all of them, or at most
/// `options.max`. Fails only when the dead-letter queue cannot be found or
/// the first receive fails; what could not be moved is in the report.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    options: &RedriveOptions,
) -> Result<RedriveReport, RedriveError> {
    let dlq = dead_letter_queue_url(sqs, queue_url).await?;
    let mut report = RedriveReport {
        dead_letter_queue_url: dlq.clone(),
        ..RedriveReport::default()
    };
    // A message seen once is not taken again in this run: it failed, or it
    // is a copy SQS hands out again after its delete.
    let mut seen: HashSet<String> = HashSet::new();
    let mut fruitless = 0;
    loop {
        let wanted = match options.max {
            Some(max) => max.saturating_sub(report.sent()),
            None => MAX_BATCH as u64,
        }
        .min(MAX_BATCH as u64);
        if wanted == 0 {
            break;
        }
        let received = receive(sqs, &dlq, wanted, options).await;
        let received = match received {
            Ok(r) => r,
            Err(e) if report.sent() == 0 && report.not_sent.is_empty() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "receive from the dead-letter queue failed; stopping");
                break;
            }
        };
        let fresh: Vec<Message> = received
            .into_iter()
            .filter(|m| m.receipt_handle().is_some())
            .filter(|m| m.message_id().is_some_and(|id| seen.insert(id.to_owned())))
            .collect();
        if fresh.is_empty() {
            break;
        }
        let before = report.sent();
        move_messages(sqs, queue_url, &dlq, &fresh, &mut report).await;
        fruitless = if report.sent() == before {
            fruitless + 1
        } else {
            0
        };
        if fruitless >= FRUITLESS_ROUNDS {
            tracing::warn!("nothing could be sent {FRUITLESS_ROUNDS} times in a row; stopping");
            break;
        }
    }
    Ok(report)
}

/// One receive from the dead-letter queue, with every attribute.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    dlq: &str,
    max: u64,
    options: &RedriveOptions,
) -> Result<Vec<Message>, AwsError> {
    tracing::debug!(queue = dlq, max, "sqs:ReceiveMessage");
    let out = sqs
        .receive_message()
        .queue_url(dlq)
        .max_number_of_messages(max as i32)
        .wait_time_seconds(options.wait_time.as_secs().min(20) as i32)
        .visibility_timeout(options.visibility_timeout.as_secs().clamp(1, 43_200) as i32)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| AwsError::call("sqs:ReceiveMessage", backend_error(&e)))?;
    Ok(out.messages().to_vec())
}

/// Sends `messages` to the queue, then deletes the sent ones from the
/// dead-letter queue, recording the outcome in `report`.
async fn move_messages(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    dlq: &str,
    messages: &[Message],
    report: &mut RedriveReport,
) {
    let sizes: Vec<usize> = messages.iter().map(message_size).collect();
    let mut sent: Vec<&Message> = Vec::new();
    for range in plan_batches(&sizes, MAX_BATCH, MAX_SEND_BATCH_BYTES) {
        let chunk: Vec<&Message> = messages[range].iter().collect();
        let results = match send(sqs, queue_url, &chunk).await {
            // One message the queue refuses (too large for it, …) fails the
            // whole call: try each alone so the others still go.
            Err(_) if chunk.len() > 1 => {
                let mut each = Vec::with_capacity(chunk.len());
                for m in &chunk {
                    each.push(match send(sqs, queue_url, &[m]).await {
                        Ok(mut r) => r.pop().unwrap_or_else(|| Err(unmentioned())),
                        Err(e) => Err(e),
                    });
                }
                each
            }
            Err(e) => vec![Err(e); chunk.len()],
            Ok(results) => results,
        };
        for (m, result) in chunk.into_iter().zip(results) {
            match result {
                Ok(()) => sent.push(m),
                Err(error) => report.not_sent.push(failure(m, error)),
            }
        }
    }
    for chunk in sent.chunks(MAX_BATCH) {
        for (m, result) in chunk.iter().zip(delete(sqs, dlq, chunk).await) {
            match result {
                Ok(()) => report.moved += 1,
                Err(error) => report.not_deleted.push(failure(m, error)),
            }
        }
    }
}

fn failure(m: &Message, error: BackendError) -> RedriveFailure {
    RedriveFailure {
        message_id: m.message_id().unwrap_or_default().to_owned(),
        error,
    }
}

/// What an entry a batch answer does not mention becomes: failed, and so
/// left where it was.
const UNMENTIONED: &str = "the batch answer did not mention this entry; it was left where it was";

fn unmentioned() -> BackendError {
    BackendError::message(UNMENTIONED)
}

/// The SendMessageBatch entry that copies `m`: ids are the indices.
pub(crate) fn send_entry(
    i: usize,
    m: &Message,
) -> Result<SendMessageBatchRequestEntry, aws_sdk_sqs::error::BuildError> {
    let system = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(m.body().unwrap_or_default())
        .set_message_attributes(m.message_attributes().filter(|a| !a.is_empty()).cloned())
        .set_message_group_id(system(MessageSystemAttributeName::MessageGroupId))
        .set_message_deduplication_id(system(MessageSystemAttributeName::MessageDeduplicationId))
        .build()
}

/// The bytes SQS counts for a message: body plus, per attribute, its name,
/// type and value.
pub(crate) fn message_size(m: &Message) -> usize {
    m.body().map_or(0, str::len)
        + m.message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, v)| {
                name.len()
                    + v.data_type().len()
                    + v.string_value().map_or(0, str::len)
                    + v.binary_value().map_or(0, |b| b.as_ref().len())
            })
            .sum::<usize>()
}

/// One SendMessageBatch call; one result per message in order.
async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[&Message],
) -> Result<Vec<Result<(), BackendError>>, BackendError> {
    let entries: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| send_entry(i, m))
        .collect::<Result<_, _>>()
        .map_err(|e| BackendError::message(e.to_string()))?;
    tracing::debug!(
        queue = queue_url,
        entries = messages.len(),
        "sqs:SendMessageBatch"
    );
    let out = sqs
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| backend_error(&e))?;
    Ok(batch::in_request_order(
        messages.len(),
        out.successful().iter().map(|s| (Some(s.id()), Ok(()))),
        out.failed().iter().map(|f| (f.id(), f.code(), f.message())),
        UNMENTIONED,
    ))
}

/// One DeleteMessageBatch call; one result per message in order (a failed
/// call fails each).
async fn delete(
    sqs: &aws_sdk_sqs::Client,
    dlq: &str,
    messages: &[&Message],
) -> Vec<Result<(), BackendError>> {
    let entries: Result<Vec<_>, _> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
        })
        .collect();
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return vec![Err(BackendError::message(e.to_string())); messages.len()],
    };
    tracing::debug!(
        queue = dlq,
        entries = messages.len(),
        "sqs:DeleteMessageBatch"
    );
    match sqs
        .delete_message_batch()
        .queue_url(dlq)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(out) => batch::in_request_order(
            messages.len(),
            out.successful().iter().map(|s| (Some(s.id()), Ok(()))),
            out.failed().iter().map(|f| (f.id(), f.code(), f.message())),
            UNMENTIONED,
        ),
        Err(e) => vec![Err(backend_error(&e)); messages.len()],
    }
}

#[cfg(test)]
#[path = "redrive_tests.rs"]
mod tests;
