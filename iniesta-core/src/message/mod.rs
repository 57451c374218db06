//! The message model: what a queue hands over ([`ReceivedMessage`]), what a
//! handler sees ([`Message`]), and the parsing between them for both SNS
//! delivery modes.
//!
//! Writing the envelope SNS delivers a published message in is the
//! publisher's side: [`publish::envelope_json`](crate::publish::envelope_json).

// Typed attribute values and the shared map of them.
mod attributes;
// Envelope delivery: the SNS JSON envelope, read and checked.
mod envelope;
// The parsed message and its payload.
mod model;
// Parsing, its settings and errors, and raw delivery.
mod parse;
// A delivery as a queue returns it: receipt handle, system attributes.
mod received;
#[cfg(test)]
mod tests;

pub use attributes::{AttributeValue, Attributes};
pub(crate) use model::assemble;
pub use model::{Message, Payload, SharedMessage};
pub use parse::{parse, parse_owned, DeliveryMode, ParseConfig, ParseError};
pub use received::{
    ReceiptHandle, ReceivedMessage, SystemAttributes, ATTR_DEDUPLICATION_ID,
    ATTR_FIRST_RECEIVE_TIMESTAMP, ATTR_MESSAGE_GROUP_ID, ATTR_RECEIVE_COUNT, ATTR_SENT_TIMESTAMP,
    ATTR_SEQUENCE_NUMBER,
};
