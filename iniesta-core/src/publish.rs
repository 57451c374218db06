//! The original publisher's wire format.
//!
//! An event is published with two message attributes: `iniesta_pass` (String,
//! the event name `"{Event}.{SERVICE_NAME}"`) and `version` (Number, default
//! 1). Python Iniesta consumers and this crate's consumer both read it.
//!
//! What SNS then delivers when raw delivery is off, the JSON envelope around
//! the published message, is written by [`envelope_json`].

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::message::AttributeValue;
use crate::ports::OutgoingMessage;

/// The largest SNS message: 256 KiB, body and attributes together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Why an event could not be built for publishing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// No event name.
    #[error("event name is empty")]
    EmptyEvent,
    /// A service suffix is needed but no service name is configured.
    #[error("event {0:?} needs a service suffix but SERVICE_NAME is not set (or publish it as a raw name)")]
    NoServiceName(String),
    /// Over the SNS limit.
    #[error("message is {size} bytes with its attributes; SNS takes at most {MAX_MESSAGE_BYTES}")]
    TooLarge {
        /// The size of body plus attributes.
        size: usize,
    },
}

/// Builds the full event name: `"{event}.{service}"`, unless `event` already
/// ends in `.{service}` or `raw` asks for the name as given.
pub fn qualify_event(
    event: &str,
    service: Option<&str>,
    raw: bool,
) -> Result<String, PublishError> {
    if event.is_empty() {
        return Err(PublishError::EmptyEvent);
    }
    if raw {
        return Ok(event.to_owned());
    }
    let service = service
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PublishError::NoServiceName(event.to_owned()))?;
    if event
        .strip_suffix(service)
        .is_some_and(|rest| rest.ends_with('.'))
    {
        Ok(event.to_owned())
    } else {
        Ok(format!("{event}.{service}"))
    }
}

/// Builds the message the original publisher sends for `event` (already
/// qualified), checking the SNS size limit.
pub fn event_message(
    event_key: &str,
    event: &str,
    body: impl Into<String>,
    version: u32,
) -> Result<OutgoingMessage, PublishError> {
    if event.is_empty() {
        return Err(PublishError::EmptyEvent);
    }
    let body = body.into();
    let attributes = BTreeMap::from([
        (
            event_key.to_owned(),
            AttributeValue::String(event.to_owned()),
        ),
        (
            "version".to_owned(),
            AttributeValue::Number(version.to_string()),
        ),
    ]);
    let message = OutgoingMessage::new(body, attributes);
    let size = message_size(&message);
    if size > MAX_MESSAGE_BYTES {
        return Err(PublishError::TooLarge { size });
    }
    Ok(message)
}

/// The size SNS counts for a message: body plus, per attribute, its name,
/// type and value.
pub fn message_size(message: &OutgoingMessage) -> usize {
    message.body.len()
        + message
            .attributes
            .iter()
            .map(|(k, v)| {
                k.len()
                    + v.data_type().len()
                    + match v {
                        AttributeValue::String(s)
                        | AttributeValue::Number(s)
                        | AttributeValue::StringArray(s) => s.len(),
                        AttributeValue::Binary(b) => b.len(),
                    }
            })
            .sum::<usize>()
}

/// Builds the SNS JSON envelope SNS wraps a message in when raw delivery is
/// off. Used by in-memory topics and by tests that write such messages
/// straight to a queue.
pub fn envelope_json(
    topic_arn: &str,
    sns_message_id: &str,
    message: &str,
    attributes: &BTreeMap<String, AttributeValue>,
) -> String {
    // Written directly, each string escaped by serde_json, with the keys in
    // the sorted order a JSON object built with serde_json has.
    fn string(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(&mut *out, s).expect("a string serialises to a Vec");
    }
    let mut out = Vec::with_capacity(192 + message.len() + topic_arn.len());
    out.extend_from_slice(b"{\"Message\":");
    string(&mut out, message);
    out.extend_from_slice(b",\"MessageAttributes\":{");
    for (i, (k, v)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(&mut out, k);
        out.extend_from_slice(b":{\"Type\":");
        string(&mut out, v.data_type());
        out.extend_from_slice(b",\"Value\":");
        match v {
            AttributeValue::String(s)
            | AttributeValue::Number(s)
            | AttributeValue::StringArray(s) => string(&mut out, s),
            AttributeValue::Binary(b) => {
                string(
                    &mut out,
                    &base64::engine::general_purpose::STANDARD.encode(b),
                );
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"},\"MessageId\":");
    string(&mut out, sns_message_id);
    out.extend_from_slice(
        b",\"SignatureVersion\":\"1\",\"Timestamp\":\"1970-01-01T00:00:00.000Z\",\"TopicArn\":",
    );
    string(&mut out, topic_arn);
    out.extend_from_slice(b",\"Type\":\"Notification\"}");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod tests;
