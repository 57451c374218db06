//! Bulk publishing: many events through SNS PublishBatch, with retries.
//!
//! [`BulkPublisher::publish`] groups the entries into calls of at most
//! [`MAX_PUBLISH_BATCH`] entries and [`MAX_MESSAGE_BYTES`] in total (the
//! SNS limits), and retries what failed:
//!
//! - an entry SNS lists as failed is sent again after a backoff, unless SNS
//!   says the fault is the sender's (`SenderFault`: a bad attribute, a group
//!   id on a standard topic, …), which another try would not change;
//! - a call that fails as a whole (throttling, a server error, the network)
//!   ends the round: after the backoff it is sent again, then the calls
//!   that were still to come. When one call has failed that way as often
//!   as an entry may be tried, the topic is taken to be out of reach and
//!   every entry not yet published fails at once, rather than each being
//!   tried in turn against it;
//! - a call that fails as a whole because of what it carried (a 4xx answer)
//!   is split: each of its entries is tried again alone, so that one bad
//!   entry does not fail the nine others.
//!
//! An entry over the size limit fails at once, without a call, and so does
//! one without the message group a FIFO topic needs (its own, else the
//! [rule](BulkPublisher::with_group_rule)'s) or with an id SNS would refuse
//! (see [`fifo`]). A call that
//! failed in a way SNS does not describe (a timeout after SNS took it) may
//! have published its entries; its retry then publishes them a second time,
//! as new SNS messages.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sns::config::AsyncSleep;
use aws_sdk_sns::types::PublishBatchRequestEntry;
use iniesta_core::publish::{message_size, PublishError, MAX_MESSAGE_BYTES};
use iniesta_core::settings::FifoGroup;
use iniesta_core::{BackendError, OutgoingMessage};

use crate::error::backend_error;
use crate::fifo;
use crate::topic::{attribute_to_sns, MAX_PUBLISH_BATCH};

/// One event to publish in bulk: the message, and the FIFO message group
/// when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkEntry {
    /// Body and attributes, e.g. from [`iniesta_core::publish::event_message`];
    /// its deduplication id is sent as `MessageDeduplicationId`.
    pub message: OutgoingMessage,
    /// Sent as `MessageGroupId` when set (else the message's own group, else
    /// on a FIFO topic the [rule](BulkPublisher::with_group_rule)'s). A
    /// standard topic forwards it to SQS fair queues only.
    pub group_id: Option<String>,
}

impl BulkEntry {
    /// An entry without a message group.
    pub fn new(message: OutgoingMessage) -> Self {
        BulkEntry {
            message,
            group_id: None,
        }
    }

    /// The entry in the message group `group_id`.
    pub fn with_group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }
}

/// Why an entry was not published, after every try it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({})", tries(*.attempts, *.sender_fault))]
#[non_exhaustive]
pub struct BulkFailure {
    /// The last error, with its SNS code when there was one.
    pub error: BackendError,
    /// How many calls carried the entry; 0 when it was refused before any.
    pub attempts: u32,
    /// Whether the entry itself was at fault (not retried).
    pub sender_fault: bool,
}

/// How a failure's tries read: "rejected, not retried", "after 4 attempts".
fn tries(attempts: u32, sender_fault: bool) -> String {
    match (attempts, sender_fault) {
        (0, _) => "not sent".to_owned(),
        (_, true) => "rejected, not retried".to_owned(),
        (1, false) => "after 1 attempt".to_owned(),
        (n, false) => format!("after {n} attempts"),
    }
}

/// The outcome of one entry: its SNS message id, or why it failed.
pub type BulkResult = Result<String, BulkFailure>;

/// How failed entries are retried: at most `max_attempts` calls per entry,
/// waiting `first_backoff` before the second, twice as long before each
/// next one, never longer than `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkRetry {
    /// Calls per entry, the first one included (at least 1).
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub first_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for BulkRetry {
    /// 4 attempts, waiting 200 ms, 400 ms, 800 ms between them.
    fn default() -> Self {
        BulkRetry {
            max_attempts: 4,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl BulkRetry {
    /// `max_attempts` calls per entry (at least 1), the first retry after
    /// `first_backoff`.
    pub fn new(max_attempts: u32, first_backoff: Duration) -> Self {
        BulkRetry {
            max_attempts: max_attempts.max(1),
            first_backoff,
            ..BulkRetry::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Publishes many entries to one SNS topic with PublishBatch (see the
/// [module](self) for the grouping and the retries).
#[derive(Debug, Clone)]
pub struct BulkPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    retry: BulkRetry,
    group_rule: Option<FifoGroup>,
}

impl BulkPublisher {
    /// A publisher to `topic_arn`, with the default [`BulkRetry`].
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        BulkPublisher {
            client,
            topic_arn: topic_arn.into(),
            retry: BulkRetry::default(),
            group_rule: None,
        }
    }

    /// Gives an entry to a FIFO topic that has no group of its own the one
    /// `rule` picks (`INIESTA_SNS_FIFO_GROUP`); `None` requires every entry
    /// to bring its own. Not applied on a standard topic.
    pub fn with_group_rule(mut self, rule: Option<FifoGroup>) -> Self {
        self.group_rule = rule;
        self
    }

    /// Retries failed entries as `retry` says.
    pub fn with_retry(mut self, retry: BulkRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Publishes `entries` and returns one result per entry, in their order.
    /// `on_done` is called once per entry, with its index, as soon as its
    /// outcome is final (for a progress display).
    ///
    /// Waits between retries with the SNS client's sleep (the SDK's tokio
    /// sleep); a client built without one retries at once.
    pub async fn publish(
        &self,
        entries: &[BulkEntry],
        mut on_done: impl FnMut(usize, &BulkResult) + Send,
    ) -> Vec<BulkResult> {
        let mut results: Vec<Option<BulkResult>> = vec![None; entries.len()];
        let mut ready = Vec::with_capacity(entries.len());
        let mut index = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            match self.prepare(entry) {
                Ok(entry) => {
                    ready.push(entry);
                    index.push(i);
                }
                Err(failure) => {
                    let failure = Err(failure);
                    on_done(i, &failure);
                    results[i] = Some(failure);
                }
            }
        }
        let sent = publish_all(self, &ready, &self.retry, |j, result| {
            on_done(index[j], result)
        })
        .await;
        for (j, result) in sent.into_iter().enumerate() {
            results[index[j]] = Some(result);
        }
        results.into_iter().flatten().collect()
    }

    /// The entry as it is sent: its group in [`BulkEntry::group_id`] (see
    /// there for where it comes from) and its ids checked; or why it cannot
    /// be sent, without a call.
    fn prepare(&self, entry: &BulkEntry) -> Result<BulkEntry, BulkFailure> {
        let mut message = entry.message.clone();
        if entry.group_id.is_some() {
            message.group_id.clone_from(&entry.group_id);
        }
        match fifo::prepare(&self.topic_arn, self.group_rule.as_ref(), message) {
            Ok(message) => Ok(BulkEntry {
                group_id: message.group_id.clone(),
                message,
            }),
            Err(e) => Err(BulkFailure {
                error: BackendError::message(e.to_string()),
                attempts: 0,
                sender_fault: true,
            }),
        }
    }
}

/// How one entry or one whole call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) error: BackendError,
    /// The request was wrong (SNS's `SenderFault`, or a 4xx answer to the
    /// whole call): sending it again the same way would fail again.
    pub(crate) sender_fault: bool,
}

/// One PublishBatch call and the wait between tries: the seam through which
/// the grouping and retries are tested without SNS.
#[async_trait]
pub(crate) trait BatchCall: Sync {
    /// Publishes `entries` (at most 10, within the size limit) in one call;
    /// one answer per entry in their order, or the failure of the call.
    async fn call(&self, entries: &[&BulkEntry]) -> Result<Vec<Result<String, Fault>>, Fault>;
    /// Waits `duration`.
    async fn sleep(&self, duration: Duration);
}

#[async_trait]
impl BatchCall for BulkPublisher {
    async fn call(&self, entries: &[&BulkEntry]) -> Result<Vec<Result<String, Fault>>, Fault> {
        let request = request_entries(entries).map_err(|e| Fault {
            error: BackendError::message(e.to_string()),
            sender_fault: true,
        })?;
        tracing::debug!(topic = %self.topic_arn, entries = entries.len(), "sns:PublishBatch");
        let out = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(request))
            .send()
            .await
            .map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let error = backend_error(&e);
                Fault {
                    sender_fault: is_sender_fault(status, error.code.as_deref()),
                    error,
                }
            })?;
        Ok(answers(
            entries.len(),
            out.successful().iter().map(|s| (s.id(), s.message_id())),
            out.failed()
                .iter()
                .map(|f| (f.id(), f.code(), f.message(), f.sender_fault())),
        ))
    }

    async fn sleep(&self, duration: Duration) {
        if let Some(sleep) = self.client.config().sleep_impl() {
            sleep.sleep(duration).await;
        }
    }
}

/// Whether a failed call's answer blames the request: a 4xx status that is
/// not throttling.
fn is_sender_fault(status: Option<u16>, code: Option<&str>) -> bool {
    let throttled = code.is_some_and(|c| c.contains("Throttl") || c == "TooManyRequestsException");
    status.is_some_and(|s| (400..500).contains(&s) && s != 429) && !throttled
}

/// The request entries: ids are the indices, the group id only when set.
pub(crate) fn request_entries(
    entries: &[&BulkEntry],
) -> Result<Vec<PublishBatchRequestEntry>, aws_sdk_sns::error::BuildError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(&e.message.body)
                .set_message_group_id(e.group_id.clone())
                .set_message_deduplication_id(e.message.deduplication_id.clone());
            for (name, value) in &e.message.attributes {
                entry = entry.message_attributes(name, attribute_to_sns(value)?);
            }
            entry.build()
        })
        .collect()
}

/// A PublishBatch answer in request order. `successful` gives `(id, message
/// id)`, `failed` `(id, code, message, sender fault)`; an entry the answer
/// does not mention failed in a way worth retrying.
pub(crate) fn answers<'a>(
    len: usize,
    successful: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    failed: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>, bool)>,
) -> Vec<Result<String, Fault>> {
    let index = |id: &str| id.parse::<usize>().ok().filter(|&i| i < len);
    let mut out: Vec<Result<String, Fault>> = vec![
        Err(Fault {
            error: BackendError::message(
                "the batch answer did not mention this entry; it may or may not be published"
            ),
            sender_fault: false,
        });
        len
    ];
    for (id, message_id) in successful {
        if let Some(i) = id.and_then(index) {
            out[i] = message_id.map(str::to_owned).ok_or_else(|| Fault {
                error: BackendError::message("sns:PublishBatch answered without a MessageId"),
                sender_fault: false,
            });
        }
    }
    for (id, code, message, sender_fault) in failed {
        if let Some(i) = index(id) {
            out[i] = Err(Fault {
                error: BackendError::new(code, message.unwrap_or("the entry failed")),
                sender_fault,
            });
        }
    }
    out
}

/// Splits consecutive entries of `sizes` bytes into calls of at most
/// `max_entries` entries and `max_bytes` in total; an entry larger than
/// `max_bytes` gets a call of its own.
pub(crate) fn plan_batches(
    sizes: &[usize],
    max_entries: usize,
    max_bytes: usize,
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < sizes.len() && end - start < max_entries.max(1) {
            if end > start && bytes + sizes[end] > max_bytes {
                break;
            }
            bytes += sizes[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// The grouping and retry loop behind [`BulkPublisher::publish`], over any
/// [`BatchCall`]. Each round sends every pending entry once (or up to a
/// call that failed as a whole); what is to be retried goes in the next
/// round, after the backoff of the entry tried most.
pub(crate) async fn publish_all(
    caller: &impl BatchCall,
    entries: &[BulkEntry],
    retry: &BulkRetry,
    mut on_done: impl FnMut(usize, &BulkResult) + Send,
) -> Vec<BulkResult> {
    let sizes: Vec<usize> = entries.iter().map(|e| message_size(&e.message)).collect();
    let mut results: Vec<Option<BulkResult>> = vec![None; entries.len()];
    let mut finish = |i: usize, result: BulkResult, results: &mut Vec<Option<BulkResult>>| {
        on_done(i, &result);
        results[i] = Some(result);
    };
    let mut pending = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        if size > MAX_MESSAGE_BYTES {
            let error = BackendError::message(PublishError::TooLarge { size }.to_string());
            let failure = BulkFailure {
                error,
                attempts: 0,
                sender_fault: true,
            };
            finish(i, Err(failure), &mut results);
        } else {
            pending.push(i);
        }
    }
    let mut attempts = vec![0u32; entries.len()];
    // Entries of a call rejected as a whole: each goes alone next time.
    let mut alone = vec![false; entries.len()];
    while !pending.is_empty() {
        pending.sort_unstable();
        let retries = pending.iter().map(|&i| attempts[i]).max().unwrap_or(0);
        if retries > 0 {
            caller.sleep(retry.backoff(retries)).await;
        }
        let (together, solo): (Vec<usize>, Vec<usize>) = pending.iter().partition(|&&i| !alone[i]);
        let together_sizes: Vec<usize> = together.iter().map(|&i| sizes[i]).collect();
        let mut calls: Vec<&[usize]> =
            plan_batches(&together_sizes, MAX_PUBLISH_BATCH, MAX_MESSAGE_BYTES)
                .into_iter()
                .map(|r| &together[r])
                .collect();
        calls.extend(solo.chunks(1));
        let mut again = Vec::new();
        let mut calls = calls.into_iter();
        while let Some(call) = calls.next() {
            let batch: Vec<&BulkEntry> = call.iter().map(|&i| &entries[i]).collect();
            let answers = match caller.call(&batch).await {
                Ok(answers) => answers,
                Err(fault)
                    if fault.sender_fault
                        && call.len() > 1
                        && call.iter().all(|&i| attempts[i] + 1 < retry.max_attempts) =>
                {
                    for &i in call {
                        attempts[i] += 1;
                        alone[i] = true;
                    }
                    again.extend_from_slice(call);
                    continue;
                }
                Err(fault) if fault.sender_fault => vec![Err(fault); call.len()],
                Err(fault) => {
                    // The topic or the network failed, not the entries: the
                    // other calls of this round would most likely fail too.
                    // Wait, then go on; give everything up when one call has
                    // failed as often as an entry may be tried.
                    for &i in call {
                        attempts[i] += 1;
                    }
                    let unsent = calls.by_ref().flatten().copied();
                    if call.iter().any(|&i| attempts[i] >= retry.max_attempts) {
                        let stopped = BackendError {
                            code: fault.error.code.clone(),
                            message: format!(
                                "publishing stopped after a call failed {} times: {}",
                                retry.max_attempts, fault.error.message
                            ),
                        };
                        for i in call.iter().copied().chain(unsent).chain(again.drain(..)) {
                            let error = match attempts[i] {
                                0 => stopped.clone(),
                                _ => fault.error.clone(),
                            };
                            let failure = BulkFailure {
                                error,
                                attempts: attempts[i],
                                sender_fault: false,
                            };
                            finish(i, Err(failure), &mut results);
                        }
                    } else {
                        again.extend(call.iter().copied().chain(unsent));
                    }
                    break;
                }
            };
            for (&i, answer) in call.iter().zip(answers) {
                attempts[i] += 1;
                match answer {
                    Ok(id) => finish(i, Ok(id), &mut results),
                    Err(fault) if !fault.sender_fault && attempts[i] < retry.max_attempts => {
                        again.push(i);
                    }
                    Err(fault) => {
                        let failure = BulkFailure {
                            error: fault.error,
                            attempts: attempts[i],
                            sender_fault: fault.sender_fault,
                        };
                        finish(i, Err(failure), &mut results);
                    }
                }
            }
        }
        pending = again;
    }
    // Every entry was finished before `pending` ran out.
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(BulkFailure {
                    error: BackendError::message("not published"),
                    attempts: 0,
                    sender_fault: false,
                })
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "publish_batch_tests.rs"]
mod tests;
