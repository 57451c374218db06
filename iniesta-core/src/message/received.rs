//! What a queue hands over: one delivery of a message ([`ReceivedMessage`]),
//! its receipt handle and its SQS system attributes.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Attributes;

/// An opaque SQS receipt handle: the right to delete or hide one delivery of
/// a message. It goes stale when the message is received again.
///
/// Shared text: the consumer keeps it while the message is in progress and
/// hands it to delete and visibility calls without copying it. A queue
/// makes one with [`ReceiptHandle::new`] and reads it back with
/// [`as_str`](ReceiptHandle::as_str) (or `Display`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiptHandle(Arc<str>);

shared_text!(ReceiptHandle);

/// The SQS system attribute carrying how often a message was received.
pub const ATTR_RECEIVE_COUNT: &str = "ApproximateReceiveCount";
/// The SQS system attribute carrying when the message was sent (epoch ms).
pub const ATTR_SENT_TIMESTAMP: &str = "SentTimestamp";
/// The SQS system attribute carrying when the message was first received
/// (epoch ms).
pub const ATTR_FIRST_RECEIVE_TIMESTAMP: &str = "ApproximateFirstReceiveTimestamp";
/// The SQS system attribute naming a FIFO message's group.
pub const ATTR_MESSAGE_GROUP_ID: &str = "MessageGroupId";
/// The SQS system attribute carrying a FIFO message's sequence number (a
/// decimal number of up to 128 bits, increasing within a group).
pub const ATTR_SEQUENCE_NUMBER: &str = "SequenceNumber";
/// The SQS system attribute carrying a FIFO message's deduplication id.
pub const ATTR_DEDUPLICATION_ID: &str = "MessageDeduplicationId";

/// The SQS system attributes of one delivery. The three the consumer reads
/// are typed (so a queue hands them over without a string per value and the
/// consumer reads them without parsing); any other goes to
/// [`other`](Self::other) as text.
///
/// Collecting `(name, value)` pairs sorts them out:
///
/// ```
/// use iniesta_core::SystemAttributes;
///
/// let attrs: SystemAttributes = [
///     ("ApproximateReceiveCount", "3"),
///     ("SentTimestamp", "1700000000000"),
///     ("SenderId", "AIDAEXAMPLE"),
/// ]
/// .into_iter()
/// .collect();
/// assert_eq!(attrs.receive_count, Some(3));
/// assert_eq!(attrs.sent_timestamp, Some(1_700_000_000_000));
/// assert_eq!(attrs.other["SenderId"], "AIDAEXAMPLE");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemAttributes {
    /// `ApproximateReceiveCount`: how often the message was received,
    /// counting this delivery.
    pub receive_count: Option<u32>,
    /// `SentTimestamp`: when the message was sent, in ms since the Unix
    /// epoch.
    pub sent_timestamp: Option<u64>,
    /// `ApproximateFirstReceiveTimestamp`: when the message was first
    /// received, in ms since the Unix epoch.
    pub first_receive_timestamp: Option<u64>,
    /// Every other system attribute (`SenderId`, `AWSTraceHeader`, …), and a
    /// known one whose value is not a number, as the queue gave it.
    pub other: BTreeMap<String, String>,
}

impl SystemAttributes {
    /// `MessageGroupId`: the message group of a FIFO queue's message.
    /// Standard queues may carry one too (fair queues), where it orders
    /// nothing: only a consumer that knows its queue is FIFO reads it as an
    /// ordering key.
    pub fn message_group_id(&self) -> Option<&str> {
        self.other.get(ATTR_MESSAGE_GROUP_ID).map(String::as_str)
    }

    /// `SequenceNumber`: a FIFO message's place in its group, as SQS wrote
    /// it (compare by length, then text: it is an unpadded decimal).
    pub fn sequence_number(&self) -> Option<&str> {
        self.other.get(ATTR_SEQUENCE_NUMBER).map(String::as_str)
    }

    /// Records one attribute: a known name with a numeric value goes to its
    /// typed field, anything else to [`other`](Self::other).
    pub fn insert(
        &mut self,
        name: impl AsRef<str> + Into<String>,
        value: impl AsRef<str> + Into<String>,
    ) {
        let text = value.as_ref();
        let typed = match name.as_ref() {
            ATTR_RECEIVE_COUNT => text.parse().ok().map(|n| self.receive_count = Some(n)),
            ATTR_SENT_TIMESTAMP => text.parse().ok().map(|n| self.sent_timestamp = Some(n)),
            ATTR_FIRST_RECEIVE_TIMESTAMP => text
                .parse()
                .ok()
                .map(|n| self.first_receive_timestamp = Some(n)),
            _ => None,
        };
        if typed.is_none() {
            self.other.insert(name.into(), value.into());
        }
    }
}

impl<K, V> FromIterator<(K, V)> for SystemAttributes
where
    K: AsRef<str> + Into<String>,
    V: AsRef<str> + Into<String>,
{
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut attrs = SystemAttributes::default();
        for (name, value) in iter {
            attrs.insert(name, value);
        }
        attrs
    }
}

/// One delivery of one message, as a [`Queue`](crate::Queue) returns it:
/// nothing parsed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The SQS message id.
    pub sqs_message_id: String,
    /// The handle for deleting or hiding this delivery.
    pub receipt_handle: ReceiptHandle,
    /// The body as received.
    pub body: String,
    /// SQS system attributes (`ApproximateReceiveCount`, `SentTimestamp`, …).
    pub attributes: SystemAttributes,
    /// SQS message attributes (in raw delivery, the SNS message attributes).
    pub message_attributes: Attributes,
}

impl ReceivedMessage {
    /// `ApproximateReceiveCount`, or 1 when absent or unreadable.
    pub fn receive_count(&self) -> u32 {
        self.attributes.receive_count.unwrap_or(1)
    }
}
