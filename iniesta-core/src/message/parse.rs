//! Parsing a delivery into a [`Message`]: what parsing needs to know, what
//! can go wrong, and raw delivery, where the body is the published message.

use std::collections::BTreeMap;

use super::envelope::parse_envelope;
use super::model::assemble;
use super::{AttributeValue, Message, ReceiptHandle, ReceivedMessage};

/// How SNS hands messages to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// `RawMessageDelivery=true`: the body is the published message and the
    /// SNS message attributes are SQS message attributes.
    Raw,
    /// `RawMessageDelivery=false` (the SNS default): the body is the SNS JSON
    /// envelope.
    Envelope,
}

/// Why a received message could not be turned into a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Envelope delivery, but the body is not an SNS notification envelope.
    #[error("body is not an SNS notification envelope: {0}")]
    NotAnEnvelope(String),
    /// The envelope came from another topic than the configured one.
    #[error("envelope is from topic {got:?}, expected {expected:?}")]
    WrongTopic {
        /// The configured topic.
        expected: String,
        /// The envelope's `TopicArn`.
        got: String,
    },
    /// The event-name attribute is missing.
    #[error("message has no {0:?} attribute naming its event")]
    MissingEvent(String),
    /// The event-name attribute is not a string.
    #[error("attribute {0:?} must be a String naming the event")]
    EventNotString(String),
    /// A message attribute could not be read.
    #[error("attribute {name:?}: {reason}")]
    BadAttribute {
        /// The attribute's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What parsing needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseConfig {
    /// How SNS delivers to the queue.
    pub mode: DeliveryMode,
    /// The attribute naming the event (`INIESTA_SNS_EVENT_KEY`).
    pub event_key: String,
    /// The topic envelopes must come from; `None` accepts any topic (queue
    /// polling without a topic).
    pub topic_arn: Option<String>,
}

/// Parses one delivery into a [`Message`].
///
/// Never panics: any input that cannot be understood is a [`ParseError`].
pub fn parse(raw: &ReceivedMessage, config: &ParseConfig) -> Result<Message, ParseError> {
    parse_owned(raw.clone(), config)
        .map(|(message, _)| message)
        .map_err(|(error, _)| error)
}

/// [`parse`] for a delivery the caller owns: the body, the attributes and
/// the message id move into the [`Message`] instead of being copied, and the
/// receipt handle is handed back beside it. On failure the delivery is
/// handed back unchanged with the error.
#[allow(clippy::result_large_err)]
pub fn parse_owned(
    raw: ReceivedMessage,
    config: &ParseConfig,
) -> Result<(Message, ReceiptHandle), (ParseError, ReceivedMessage)> {
    match config.mode {
        DeliveryMode::Raw => parse_raw(raw, config),
        DeliveryMode::Envelope => parse_envelope(raw, config),
    }
}

/// Raw delivery: the body is the published message, and the message
/// attributes are the event's.
#[allow(clippy::result_large_err)]
fn parse_raw(
    raw: ReceivedMessage,
    config: &ParseConfig,
) -> Result<(Message, ReceiptHandle), (ParseError, ReceivedMessage)> {
    let event = match event_of(&raw.message_attributes, config) {
        Ok(event) => event,
        Err(e) => return Err((e, raw)),
    };
    let ReceivedMessage {
        sqs_message_id: message_id,
        receipt_handle,
        body,
        attributes: system,
        message_attributes,
    } = raw;
    let message = assemble(
        event,
        body,
        message_id,
        None,
        None,
        message_attributes,
        &system,
    );
    Ok((message, receipt_handle))
}

/// The event name: the string attribute named by the configured key.
pub(super) fn event_of(
    attributes: &BTreeMap<String, AttributeValue>,
    config: &ParseConfig,
) -> Result<String, ParseError> {
    match attributes.get(&config.event_key) {
        None => Err(ParseError::MissingEvent(config.event_key.clone())),
        Some(AttributeValue::String(s)) => Ok(s.clone()),
        Some(_) => Err(ParseError::EventNotString(config.event_key.clone())),
    }
}
