//! Envelope delivery: reading the SNS JSON envelope a message arrives in
//! when raw delivery is off.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::model::assemble;
use super::parse::event_of;
use super::{
    AttributeValue, Attributes, Message, ParseConfig, ParseError, ReceiptHandle, ReceivedMessage,
};

/// The fields of an SNS envelope the consumer reads. Text that is only
/// compared or converted is borrowed from the body (copied only when it
/// holds JSON escapes).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Cow<'a, str>,
    message_id: String,
    #[serde(borrow)]
    topic_arn: Cow<'a, str>,
    message: String,
    #[serde(default, borrow)]
    message_attributes: BTreeMap<Cow<'a, str>, EnvelopeAttribute<'a>>,
}

#[derive(Deserialize)]
struct EnvelopeAttribute<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "Value", borrow)]
    value: Cow<'a, str>,
}

/// Reads and checks an SNS envelope; returns it with its attributes decoded.
fn unwrap_envelope<'a>(
    body: &'a str,
    config: &ParseConfig,
) -> Result<(Envelope<'a>, BTreeMap<String, AttributeValue>), ParseError> {
    let mut env: Envelope<'a> =
        serde_json::from_str(body).map_err(|e| ParseError::NotAnEnvelope(e.to_string()))?;
    if env.kind != "Notification" {
        return Err(ParseError::NotAnEnvelope(format!(
            "Type is {:?}, expected \"Notification\"",
            env.kind
        )));
    }
    if let Some(expected) = &config.topic_arn {
        if env.topic_arn != expected.as_str() {
            return Err(ParseError::WrongTopic {
                expected: expected.clone(),
                got: env.topic_arn.into_owned(),
            });
        }
    }
    let mut attributes = BTreeMap::new();
    for (name, a) in std::mem::take(&mut env.message_attributes) {
        let v = AttributeValue::from_wire(&a.kind, &a.value).map_err(|e| match e {
            ParseError::BadAttribute { reason, .. } => ParseError::BadAttribute {
                name: name.clone().into_owned(),
                reason,
            },
            other => other,
        })?;
        attributes.insert(name.into_owned(), v);
    }
    Ok((env, attributes))
}

/// Envelope delivery: the body is the SNS envelope, which holds the
/// published message, its id, its topic and the event's attributes.
#[allow(clippy::result_large_err)]
pub(super) fn parse_envelope(
    raw: ReceivedMessage,
    config: &ParseConfig,
) -> Result<(Message, ReceiptHandle), (ParseError, ReceivedMessage)> {
    let (env, attributes) = match unwrap_envelope(&raw.body, config) {
        Ok(parts) => parts,
        Err(e) => return Err((e, raw)),
    };
    let event = match event_of(&attributes, config) {
        Ok(event) => event,
        Err(e) => return Err((e, raw)),
    };
    let ReceivedMessage {
        sqs_message_id: message_id,
        receipt_handle,
        attributes: system,
        ..
    } = raw;
    let message = assemble(
        event,
        env.message,
        message_id,
        Some(env.message_id),
        Some(env.topic_arn.into_owned()),
        Attributes::from(attributes),
        &system,
    );
    Ok((message, receipt_handle))
}
