//! FIFO topics: the topic's options, what a publish must carry, and what
//! each subscribed queue gets.
//!
//! The rules, as the SNS developer guide and API reference state them:
//! - a FIFO topic's name ends in `.fifo`, a standard topic's does not
//!   (`InvalidParameter`); `ContentBasedDeduplication` exists only on FIFO
//!   topics;
//! - a publish to a FIFO topic names a `MessageGroupId`, and a
//!   `MessageDeduplicationId` unless the topic has content-based
//!   deduplication (the SHA-256 of the body); otherwise `InvalidParameter`.
//!   A duplicate within five minutes is accepted, answered with the first
//!   publish's message id, and delivered to nobody;
//! - a publish to a standard topic MAY name a `MessageGroupId` (since SNS's
//!   fair-queue support: "For standard topics: the MessageGroupId is
//!   optional and is forwarded only to Amazon SQS standard subscriptions",
//!   SNS `Publish` API reference); it is checked like a FIFO one and handed
//!   to the subscribed standard queues. A `MessageDeduplicationId` there is
//!   `InvalidParameter` ("not valid for this topic type");
//! - a FIFO topic hands its group id and deduplication id to the
//!   subscribed FIFO queues (so a queue without content-based
//!   deduplication takes the messages of a content-deduplicated topic), in
//!   raw and in envelope delivery; the envelope carries the topic's
//!   `SequenceNumber`. A FIFO queue cannot subscribe to a standard topic
//!   (`InvalidParameter`). A standard queue can subscribe to a FIFO topic
//!   (SNS: "Amazon SNS FIFO topics support delivery to both Amazon SQS
//!   standard and FIFO queues"); it gets the messages without group or
//!   deduplication id ("Message group ID is not passed to Amazon SQS
//!   standard queues") and without FIFO order.

use std::sync::Arc;

use iniesta_core::{BackendError, OutgoingMessage};

use crate::codes;
use crate::queue::{check_id, content_hash};

/// The message group and deduplication id a publish carries.
pub(crate) type PublishIds = (Option<Arc<str>>, Option<Arc<str>>);

/// How a [`MockTopic`](crate::MockTopic) behaves: a standard topic by
/// default. `#[non_exhaustive]`: start from the default and use the
/// `with_*` methods.
///
/// ```
/// use iniesta_mock::{Clock, MockTopic, TopicOptions};
///
/// let clock = Clock::virtual_clock();
/// let options = TopicOptions::default().with_fifo(true).with_content_based_deduplication(true);
/// let topic = MockTopic::with_options("prices.fifo", &clock, options);
/// assert!(topic.options().fifo);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicOptions {
    /// SNS's `FifoTopic`: publishes need a message group, duplicates within
    /// five minutes are dropped, and FIFO queues may subscribe. The name
    /// MUST end in `.fifo` (and a standard topic's MUST NOT).
    pub fifo: bool,
    /// SNS's `ContentBasedDeduplication` (FIFO topics only): a publish
    /// without a deduplication id gets the SHA-256 of its body (hex).
    pub content_based_deduplication: bool,
}

impl TopicOptions {
    /// These options for a FIFO topic or a standard one
    /// ([`fifo`](Self::fifo)).
    pub fn with_fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// These options with content-based deduplication on or off
    /// ([`content_based_deduplication`](Self::content_based_deduplication)).
    pub fn with_content_based_deduplication(mut self, on: bool) -> Self {
        self.content_based_deduplication = on;
        self
    }

    /// `Ok` when SNS's `CreateTopic` takes these options for `name`.
    pub(crate) fn check(&self, name: &str) -> Result<(), BackendError> {
        let bad = |what: String| Err(BackendError::new(codes::INVALID_PARAMETER, what));
        match (self.fifo, name.ends_with(".fifo")) {
            (true, false) => {
                return bad(format!(
                    "Invalid parameter: Topic Name: FIFO topic names must end with .fifo; \
                     got {name:?}"
                ))
            }
            (false, true) => {
                return bad(format!(
                    "Invalid parameter: Topic Name: {name:?} ends in .fifo, which only FIFO \
                     topics may (TopicOptions::with_fifo)"
                ))
            }
            _ => {}
        }
        if self.content_based_deduplication && !self.fifo {
            return bad(format!(
                "Invalid parameter: Attributes Reason: ContentBasedDeduplication is only \
                 valid for FIFO topics; {name:?} is a standard topic"
            ));
        }
        Ok(())
    }

    /// The group and deduplication id a publish of `message` carries, or
    /// SNS's error for it: `(group, None)` on a standard topic,
    /// `(Some(group), Some(dedup))` on a FIFO one.
    pub(crate) fn ids(&self, message: &OutgoingMessage) -> Result<PublishIds, BackendError> {
        let bad = codes::INVALID_PARAMETER;
        if let Some(g) = &message.group_id {
            check_id("MessageGroupId", g, bad)?;
        }
        if let Some(d) = &message.deduplication_id {
            check_id("MessageDeduplicationId", d, bad)?;
        }
        let group = message.group_id.as_deref().map(Arc::from);
        if !self.fifo {
            if message.deduplication_id.is_some() {
                return Err(BackendError::new(
                    bad,
                    "Invalid parameter: MessageDeduplicationId Reason: The request includes \
                     MessageDeduplicationId parameter that is not valid for this topic type \
                     (a standard topic)",
                ));
            }
            return Ok((group, None));
        }
        let Some(group) = group else {
            return Err(BackendError::new(
                bad,
                "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
            ));
        };
        let dedup =
            match &message.deduplication_id {
                Some(d) => Arc::from(d.as_str()),
                None if self.content_based_deduplication => Arc::from(content_hash(&message.body)),
                None => return Err(BackendError::new(
                    bad,
                    "Invalid parameter: The topic should either have ContentBasedDeduplication \
                     enabled or MessageDeduplicationId provided explicitly",
                )),
            };
        Ok((Some(group), Some(dedup)))
    }
}

/// Adds a FIFO topic's `SequenceNumber` to an envelope of
/// [`envelope_json`](iniesta_core::publish::envelope_json), in its sorted
/// place (after `MessageId`). Every string in the envelope is JSON-escaped,
/// so the first `,"SignatureVersion":` is the key itself.
pub(crate) fn with_sequence_number(envelope: &str, sequence: u128) -> String {
    const KEY: &str = ",\"SignatureVersion\":";
    match envelope.find(KEY) {
        Some(i) => format!(
            "{},\"SequenceNumber\":\"{sequence}\"{}",
            &envelope[..i],
            &envelope[i..]
        ),
        None => envelope.to_owned(),
    }
}

/// The SNS error for subscribing a FIFO queue to a standard topic.
pub(crate) fn fifo_queue_on_standard_topic(queue: &str, topic: &str) -> BackendError {
    BackendError::new(
        codes::INVALID_PARAMETER,
        format!(
            "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to \
             standard SNS topics ({queue} on {topic})"
        ),
    )
}

#[cfg(test)]
#[path = "topic_fifo_tests.rs"]
mod tests;
