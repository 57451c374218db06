//! The original publisher's wire format.
//!
//! An event is published with two message attributes: `iniesta_pass` (String,
//! the event name `"{Event}.{SERVICE_NAME}"`) and `version` (Number, default
//! 1). Python Iniesta consumers and this crate's consumer both read it.

use std::collections::BTreeMap;

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
    let message = OutgoingMessage { body, attributes };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_rule() {
        assert_eq!(
            qualify_event("Created", Some("users"), false).unwrap(),
            "Created.users"
        );
        assert_eq!(
            qualify_event("Created.users", Some("users"), false).unwrap(),
            "Created.users"
        );
        assert_eq!(
            qualify_event("Createdusers", Some("users"), false).unwrap(),
            "Createdusers.users"
        );
        assert_eq!(
            qualify_event("Created.other", Some("other2"), true).unwrap(),
            "Created.other"
        );
        assert!(matches!(
            qualify_event("Created", None, false),
            Err(PublishError::NoServiceName(_))
        ));
        assert_eq!(
            qualify_event("", Some("s"), false),
            Err(PublishError::EmptyEvent)
        );
    }

    #[test]
    fn wire_format_and_limit() {
        let m = event_message("iniesta_pass", "Created.users", "{}", 1).unwrap();
        assert_eq!(
            m.attributes["iniesta_pass"],
            AttributeValue::String("Created.users".into())
        );
        assert_eq!(m.attributes["version"], AttributeValue::Number("1".into()));
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        assert!(matches!(
            event_message("iniesta_pass", "E.s", big, 1),
            Err(PublishError::TooLarge { .. })
        ));
    }
}
