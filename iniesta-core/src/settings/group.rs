//! `INIESTA_SNS_FIFO_GROUP`: how a message published to a FIFO topic gets
//! its message group when the publishing call names none.
//!
//! The rule and its checks are on [`FifoGroup`].

use std::fmt;

use crate::message::AttributeValue;
use crate::ports::OutgoingMessage;

/// The longest message group or deduplication id SNS and SQS accept.
pub const MAX_FIFO_ID_CHARS: usize = 128;

/// How a message gets its FIFO message group when the call names none
/// (`INIESTA_SNS_FIFO_GROUP`).
///
/// A FIFO topic delivers the messages of one group in order, one at a time,
/// and refuses a message without a group. The group is the unit of order
/// (and of parallelism: different groups are handled at the same time), so
/// it is usually a property of the event: the entity it is about, or its
/// name. The rule is one of:
///
/// - `fixed:NAME`: every message in the group `NAME` (one order for the
///   whole topic, and so one message at a time);
/// - `attribute:NAME`: the value of the message attribute `NAME` (String or
///   Number), e.g. `attribute:iniesta_pass` to order each event name on its
///   own;
/// - `json:POINTER`: a field of the JSON payload, named by a JSON Pointer
///   (RFC 6901), e.g. `json:/user_id` or `json:/order/customer/id`; a
///   string is taken as it is, a number or a boolean as its JSON text.
///
/// Unset, a publishing call to a FIFO topic must name its group itself
/// (`--group-id` on the command line); publishing without one is an error
/// before any call to SNS. The rule is never applied on a standard topic.
///
/// A group (or deduplication) id is 1 to 128 characters of ASCII letters,
/// digits and punctuation ([`check_fifo_id`]); a rule that produces anything
/// else fails the message before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FifoGroup {
    /// `fixed:NAME`: always this group.
    Fixed(String),
    /// `attribute:NAME`: the value of this message attribute.
    Attribute(String),
    /// `json:POINTER`: the payload's field at this JSON Pointer.
    JsonField(String),
}

/// Why a rule gave no group for a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("INIESTA_SNS_FIFO_GROUP={rule}: {reason}")]
pub struct FifoGroupError {
    /// The rule as written (`attribute:tenant`).
    pub rule: String,
    /// What was missing or wrong in the message.
    pub reason: String,
}

impl FifoGroup {
    /// Reads a rule as the setting writes it (`fixed:NAME`,
    /// `attribute:NAME`, `json:/POINTER`); the error says what was expected.
    pub fn parse(text: &str) -> Result<FifoGroup, String> {
        const EXPECTED: &str = "expected fixed:GROUP (one group for every message), \
             attribute:NAME (a message attribute's value) or json:/POINTER (a field of \
             the JSON payload, e.g. json:/user_id)";
        let Some((kind, arg)) = text.split_once(':') else {
            return Err(EXPECTED.to_owned());
        };
        let arg = arg.trim();
        match kind.trim().to_ascii_lowercase().as_str() {
            "fixed" => check_fifo_id(arg)
                .map(|()| FifoGroup::Fixed(arg.to_owned()))
                .map_err(|e| format!("the group of fixed:{arg} {e}")),
            "attribute" if arg.is_empty() => {
                Err("expected a message attribute name after attribute:".to_owned())
            }
            "attribute" => Ok(FifoGroup::Attribute(arg.to_owned())),
            "json" if arg.starts_with('/') => Ok(FifoGroup::JsonField(arg.to_owned())),
            "json" => Err(format!(
                "expected a JSON Pointer starting with `/` after json: (e.g. json:/{})",
                if arg.is_empty() { "user_id" } else { arg }
            )),
            _ => Err(EXPECTED.to_owned()),
        }
    }

    /// The group of `message` by this rule, checked with [`check_fifo_id`].
    pub fn group_for(&self, message: &OutgoingMessage) -> Result<String, FifoGroupError> {
        let fail = |reason: String| FifoGroupError {
            rule: self.to_string(),
            reason,
        };
        let group = match self {
            FifoGroup::Fixed(group) => group.clone(),
            FifoGroup::Attribute(name) => match message.attributes.get(name) {
                Some(AttributeValue::String(v) | AttributeValue::Number(v)) => v.clone(),
                Some(other) => {
                    return Err(fail(format!(
                        "the message attribute {name:?} is of type {}; a group comes from a \
                         String or Number attribute",
                        other.data_type()
                    )))
                }
                None => {
                    return Err(fail(format!(
                        "the message has no attribute {name:?} to take its group from"
                    )))
                }
            },
            FifoGroup::JsonField(pointer) => {
                let payload: serde_json::Value = serde_json::from_str(&message.body)
                    .map_err(|e| fail(format!("the payload is not JSON ({e})")))?;
                match payload.pointer(pointer) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        v.to_string()
                    }
                    Some(other) => {
                        return Err(fail(format!(
                            "the payload's {pointer} is {other}; a group comes from a string, \
                             number or boolean"
                        )))
                    }
                    None => return Err(fail(format!("the payload has no field {pointer}"))),
                }
            }
        };
        check_fifo_id(&group).map_err(|e| fail(format!("the group {group:?} {e}")))?;
        Ok(group)
    }
}

impl fmt::Display for FifoGroup {
    /// The rule as the setting writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FifoGroup::Fixed(group) => write!(f, "fixed:{group}"),
            FifoGroup::Attribute(name) => write!(f, "attribute:{name}"),
            FifoGroup::JsonField(pointer) => write!(f, "json:{pointer}"),
        }
    }
}

/// Checks a message group or deduplication id by the SNS and SQS rule: 1
/// to 128 characters, each an ASCII letter, digit or punctuation mark (what
/// [`char::is_ascii_punctuation`] accepts: no space, no accented letter).
/// Checked before sending so that a bad id fails alone, with its reason,
/// instead of failing the call. The error completes a sentence naming the
/// id ("is empty", "has 130 characters; …").
pub fn check_fifo_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty; expected 1 to 128 ASCII letters, digits or punctuation".into());
    }
    let chars = id.chars().count();
    if chars > MAX_FIFO_ID_CHARS {
        return Err(format!(
            "has {chars} characters; expected at most {MAX_FIFO_ID_CHARS}"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || c.is_ascii_punctuation()))
    {
        return Err(format!(
            "contains {c:?}; expected only ASCII letters, digits and punctuation"
        ));
    }
    Ok(())
}
