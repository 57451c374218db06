//! The message model: what a queue hands over ([`ReceivedMessage`]), what a
//! handler sees ([`Message`]), and the parsing between them for both SNS
//! delivery modes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use serde::Deserialize;

/// A typed SQS/SNS message attribute value.
///
/// SQS and SNS allow custom type labels after a dot (`Number.float`,
/// `String.uuid`); the label is kept in `custom` so that a value read from one
/// side can be sent again unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `String` (or `String.label`).
    String(String),
    /// `Number` (or `Number.label`), kept as the decimal text SQS carries.
    Number(String),
    /// `Binary` (or `Binary.label`): raw bytes (base64 on the wire in SNS
    /// envelopes).
    Binary(Vec<u8>),
    /// `String.Array`: a JSON array of strings, numbers, booleans or null,
    /// kept as the JSON text SNS carries.
    StringArray(String),
}

impl AttributeValue {
    /// The value as text, when it is a string or a number.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::String(s) | AttributeValue::Number(s) => Some(s),
            _ => None,
        }
    }

    /// The SQS/SNS `DataType` / `Type` name of this value.
    pub fn data_type(&self) -> &'static str {
        match self {
            AttributeValue::String(_) => "String",
            AttributeValue::Number(_) => "Number",
            AttributeValue::Binary(_) => "Binary",
            AttributeValue::StringArray(_) => "String.Array",
        }
    }

    /// Builds a value from an SNS/SQS type name and its text form, as found in
    /// an SNS envelope (`Binary` values are base64 there).
    pub fn from_wire(data_type: &str, value: &str) -> Result<Self, ParseError> {
        let base = data_type.split('.').next().unwrap_or(data_type);
        match (base, data_type) {
            (_, "String.Array") => Ok(AttributeValue::StringArray(value.to_owned())),
            ("String", _) => Ok(AttributeValue::String(value.to_owned())),
            ("Number", _) => Ok(AttributeValue::Number(value.to_owned())),
            ("Binary", _) => base64::engine::general_purpose::STANDARD
                .decode(value)
                .map(AttributeValue::Binary)
                .map_err(|e| ParseError::BadAttribute {
                    name: String::new(),
                    reason: format!("binary value is not base64: {e}"),
                }),
            _ => Err(ParseError::BadAttribute {
                name: String::new(),
                reason: format!("unknown attribute type {data_type:?}"),
            }),
        }
    }
}

/// Message attributes: name → typed value, in name order.
///
/// Read like a map (it derefs to `BTreeMap<String, AttributeValue>`), and
/// cheap to clone: the map is shared, because attributes do not change after
/// a message is received. An in-memory queue hands out the same map on every
/// receive instead of copying it.
///
/// ```
/// use std::collections::BTreeMap;
/// use iniesta_core::{AttributeValue, Attributes};
///
/// let attrs: Attributes = [("version".to_owned(), AttributeValue::Number("2".into()))]
///     .into_iter()
///     .collect();
/// assert_eq!(attrs.get("version").and_then(AttributeValue::as_str), Some("2"));
/// let copy = attrs.clone(); // no copy of the map
/// assert_eq!(copy, attrs);
///
/// let mut changed = copy;
/// changed.to_mut().remove("version"); // copies, once, on first change
/// assert!(changed.is_empty() && !attrs.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attributes(Arc<BTreeMap<String, AttributeValue>>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes::default()
    }

    /// The map, for changing: copied first if it is shared.
    pub fn to_mut(&mut self) -> &mut BTreeMap<String, AttributeValue> {
        Arc::make_mut(&mut self.0)
    }

    /// The map itself (copied if it is shared).
    pub fn into_map(self) -> BTreeMap<String, AttributeValue> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl std::ops::Deref for Attributes {
    type Target = BTreeMap<String, AttributeValue>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<BTreeMap<String, AttributeValue>> for Attributes {
    fn from(map: BTreeMap<String, AttributeValue>) -> Self {
        Attributes(Arc::new(map))
    }
}

impl<const N: usize> From<[(String, AttributeValue); N]> for Attributes {
    fn from(pairs: [(String, AttributeValue); N]) -> Self {
        Attributes(Arc::new(BTreeMap::from(pairs)))
    }
}

impl FromIterator<(String, AttributeValue)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, AttributeValue)>>(iter: I) -> Self {
        Attributes(Arc::new(iter.into_iter().collect()))
    }
}

impl PartialEq<BTreeMap<String, AttributeValue>> for Attributes {
    fn eq(&self, other: &BTreeMap<String, AttributeValue>) -> bool {
        *self.0 == *other
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a AttributeValue);
    type IntoIter = std::collections::btree_map::Iter<'a, String, AttributeValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// An opaque SQS receipt handle: the right to delete or hide one delivery of
/// a message. It goes stale when the message is received again.
///
/// Shared text: the consumer keeps it while the message is in progress and
/// hands it to delete and visibility calls without copying it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiptHandle(pub Arc<str>);

shared_text!(ReceiptHandle);

/// The SQS system attribute carrying how often a message was received.
pub const ATTR_RECEIVE_COUNT: &str = "ApproximateReceiveCount";
/// The SQS system attribute carrying when the message was sent (epoch ms).
pub const ATTR_SENT_TIMESTAMP: &str = "SentTimestamp";
/// The SQS system attribute carrying when the message was first received
/// (epoch ms).
pub const ATTR_FIRST_RECEIVE_TIMESTAMP: &str = "ApproximateFirstReceiveTimestamp";

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
    pub message_id: String,
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

/// The payload of a message: JSON when the text parses as JSON, else text.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The payload parsed as JSON.
    Json(serde_json::Value),
    /// The payload is not JSON.
    Text(String),
}

impl Payload {
    fn from_text(text: &str) -> Payload {
        if !may_be_json(text) {
            return Payload::Text(text.to_owned());
        }
        match serde_json::from_str(text) {
            Ok(v) => Payload::Json(v),
            Err(_) => Payload::Text(text.to_owned()),
        }
    }
}

/// Whether `text` can be JSON at all, judged by its first byte that is not
/// JSON whitespace: a JSON text starts with a value, and every value starts
/// with `{`, `[`, `"`, `-`, a digit, `t`, `f` or `n`. Plain text is then
/// taken as text without running the JSON parser on it.
fn may_be_json(text: &str) -> bool {
    let first = text
        .bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    matches!(
        first,
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// A parsed event, as a handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event name (the value of the `INIESTA_SNS_EVENT_KEY` attribute).
    pub event: String,
    /// The published message text (the envelope's `Message`, or the body in
    /// raw delivery).
    pub body: String,
    /// The SQS message id of this delivery.
    pub sqs_message_id: String,
    /// The SNS message id, when the message came in an envelope.
    pub sns_message_id: Option<String>,
    /// The topic the envelope named, when there was one.
    pub topic_arn: Option<String>,
    /// The event's message attributes (SNS attributes from the envelope, or
    /// SQS message attributes in raw delivery).
    pub attributes: Attributes,
    /// `ApproximateReceiveCount` of this delivery (1 on the first).
    pub receive_count: u32,
    /// When the message was sent to the queue, in ms since the Unix epoch.
    pub sent_timestamp: Option<u64>,
    /// When the message was first received, in ms since the Unix epoch.
    pub first_receive_timestamp: Option<u64>,
    /// [`body`](Self::body) as JSON or text, parsed on first use: a handler
    /// that decodes the body itself (or ignores it) does not pay for a
    /// `serde_json::Value`.
    payload: LazyPayload,
}

/// The payload, parsed on first use. It follows from the body, so whether it
/// was parsed yet never makes two messages differ: every two are equal.
#[derive(Debug, Clone, Default)]
struct LazyPayload(OnceLock<Payload>);

impl PartialEq for LazyPayload {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Message {
    /// The idempotency key: the SNS `MessageId` when there was an envelope,
    /// else the SQS message id. Copies of one published event share it
    /// (SNS fan-out and SQS redelivery keep the id), so it names the lock and
    /// the completion record.
    pub fn key(&self) -> &str {
        self.sns_message_id
            .as_deref()
            .unwrap_or(&self.sqs_message_id)
    }

    /// [`body`](Self::body) as JSON when it parses, else as text. Parsed on
    /// the first call and kept.
    ///
    /// ```
    /// # use iniesta_core::{parse, AttributeValue, DeliveryMode, ParseConfig, Payload, ReceivedMessage, ReceiptHandle};
    /// # let raw = ReceivedMessage {
    /// #     message_id: "m-1".into(),
    /// #     receipt_handle: ReceiptHandle("h".into()),
    /// #     body: r#"{"user_id": 7}"#.into(),
    /// #     attributes: Default::default(),
    /// #     message_attributes: [("iniesta_pass".to_owned(), AttributeValue::String("UserCreated.users".into()))].into(),
    /// # };
    /// # let config = ParseConfig { mode: DeliveryMode::Raw, event_key: "iniesta_pass".into(), topic_arn: None };
    /// let message = parse(&raw, &config).unwrap();
    /// match message.payload() {
    ///     Payload::Json(value) => assert_eq!(value["user_id"], 7),
    ///     Payload::Text(text) => panic!("not JSON: {text}"),
    /// }
    /// ```
    pub fn payload(&self) -> &Payload {
        self.payload
            .0
            .get_or_init(|| Payload::from_text(&self.body))
    }

    /// Decodes [`body`](Self::body) as JSON into `T`, without building a
    /// `serde_json::Value` first: the cheapest way for a handler to read a
    /// typed event.
    ///
    /// ```
    /// # use iniesta_core::{parse, AttributeValue, DeliveryMode, ParseConfig, ReceivedMessage, ReceiptHandle};
    /// # let raw = ReceivedMessage {
    /// #     message_id: "m-1".into(),
    /// #     receipt_handle: ReceiptHandle("h".into()),
    /// #     body: r#"{"user_id": 7, "name": "Ada"}"#.into(),
    /// #     attributes: Default::default(),
    /// #     message_attributes: [("iniesta_pass".to_owned(), AttributeValue::String("UserCreated.users".into()))].into(),
    /// # };
    /// # let config = ParseConfig { mode: DeliveryMode::Raw, event_key: "iniesta_pass".into(), topic_arn: None };
    /// #[derive(serde::Deserialize)]
    /// struct UserCreated {
    ///     user_id: u64,
    ///     name: String,
    /// }
    ///
    /// let message = parse(&raw, &config).unwrap();
    /// let event: UserCreated = message.json().unwrap();
    /// assert_eq!((event.user_id, event.name.as_str()), (7, "Ada"));
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The `version` attribute as a number, when present (the original
    /// publisher sets it, default 1).
    pub fn version(&self) -> Option<f64> {
        self.attributes
            .get("version")
            .and_then(AttributeValue::as_str)
            .and_then(|v| v.parse().ok())
    }
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
        DeliveryMode::Raw => {
            let event = match event_of(&raw.message_attributes, config) {
                Ok(event) => event,
                Err(e) => return Err((e, raw)),
            };
            let ReceivedMessage {
                message_id,
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
        DeliveryMode::Envelope => {
            let (env, attributes) = match unwrap_envelope(&raw.body, config) {
                Ok(parts) => parts,
                Err(e) => return Err((e, raw)),
            };
            let event = match event_of(&attributes, config) {
                Ok(event) => event,
                Err(e) => return Err((e, raw)),
            };
            let ReceivedMessage {
                message_id,
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
    }
}

/// The event name: the string attribute named by the configured key.
fn event_of(
    attributes: &BTreeMap<String, AttributeValue>,
    config: &ParseConfig,
) -> Result<String, ParseError> {
    match attributes.get(&config.event_key) {
        None => Err(ParseError::MissingEvent(config.event_key.clone())),
        Some(AttributeValue::String(s)) => Ok(s.clone()),
        Some(_) => Err(ParseError::EventNotString(config.event_key.clone())),
    }
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

#[allow(clippy::too_many_arguments)]
fn assemble(
    event: String,
    body: String,
    sqs_message_id: String,
    sns_message_id: Option<String>,
    topic_arn: Option<String>,
    attributes: Attributes,
    system: &SystemAttributes,
) -> Message {
    Message {
        event,
        body,
        sqs_message_id,
        sns_message_id,
        topic_arn,
        attributes,
        receive_count: system.receive_count.unwrap_or(1),
        sent_timestamp: system.sent_timestamp,
        first_receive_timestamp: system.first_receive_timestamp,
        payload: LazyPayload::default(),
    }
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

/// A message shared between the machine, the driver and the handler.
pub type SharedMessage = Arc<Message>;

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:global";

    fn raw(body: &str, attrs: &[(&str, AttributeValue)]) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "sqs-1".into(),
            receipt_handle: ReceiptHandle("rh".into()),
            body: body.into(),
            attributes: [
                (ATTR_RECEIVE_COUNT, "3"),
                (ATTR_SENT_TIMESTAMP, "1700000000000"),
            ]
            .into_iter()
            .collect(),
            message_attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn cfg(mode: DeliveryMode) -> ParseConfig {
        ParseConfig {
            mode,
            event_key: "iniesta_pass".into(),
            topic_arn: Some(TOPIC.into()),
        }
    }

    #[test]
    fn raw_delivery_reads_event_from_attribute() {
        let m = parse(
            &raw(
                r#"{"a":1}"#,
                &[
                    (
                        "iniesta_pass",
                        AttributeValue::String("Happened.svc".into()),
                    ),
                    ("version", AttributeValue::Number("1".into())),
                ],
            ),
            &cfg(DeliveryMode::Raw),
        )
        .unwrap();
        assert_eq!(m.event, "Happened.svc");
        assert_eq!(m.key(), "sqs-1");
        assert_eq!(*m.payload(), Payload::Json(serde_json::json!({"a": 1})));
        assert_eq!(m.receive_count, 3);
        assert_eq!(m.sent_timestamp, Some(1_700_000_000_000));
        assert_eq!(m.version(), Some(1.0));
        assert_eq!(m.sns_message_id, None);
    }

    #[test]
    fn system_attributes_type_the_known_ones_and_keep_the_rest() {
        let attrs: SystemAttributes = [
            (ATTR_RECEIVE_COUNT, "x"),
            (ATTR_SENT_TIMESTAMP, "5"),
            (ATTR_FIRST_RECEIVE_TIMESTAMP, "-1"),
            ("SenderId", "me"),
        ]
        .into_iter()
        .collect();
        assert_eq!(attrs.receive_count, None);
        assert_eq!(attrs.sent_timestamp, Some(5));
        assert_eq!(attrs.first_receive_timestamp, None);
        assert_eq!(
            attrs.other,
            BTreeMap::from([
                (ATTR_RECEIVE_COUNT.to_owned(), "x".to_owned()),
                (ATTR_FIRST_RECEIVE_TIMESTAMP.to_owned(), "-1".to_owned()),
                ("SenderId".to_owned(), "me".to_owned()),
            ])
        );
        let m = ReceivedMessage {
            message_id: "m".into(),
            receipt_handle: ReceiptHandle("h".into()),
            body: String::new(),
            attributes: attrs,
            message_attributes: Attributes::new(),
        };
        assert_eq!(m.receive_count(), 1, "an unreadable count reads as 1");
    }

    #[test]
    fn raw_delivery_without_event_is_an_error() {
        let e = parse(&raw("x", &[]), &cfg(DeliveryMode::Raw)).unwrap_err();
        assert_eq!(e, ParseError::MissingEvent("iniesta_pass".into()));
        let e = parse(
            &raw("x", &[("iniesta_pass", AttributeValue::Number("1".into()))]),
            &cfg(DeliveryMode::Raw),
        )
        .unwrap_err();
        assert_eq!(e, ParseError::EventNotString("iniesta_pass".into()));
    }

    #[test]
    fn envelope_round_trips() {
        let attrs: BTreeMap<_, _> = [
            (
                "iniesta_pass".to_string(),
                AttributeValue::String("E.svc".into()),
            ),
            ("version".to_string(), AttributeValue::Number("1".into())),
            ("bin".to_string(), AttributeValue::Binary(vec![0, 1, 255])),
            (
                "arr".to_string(),
                AttributeValue::StringArray(r#"["a",1]"#.into()),
            ),
            // Escaped in the JSON: read into owned text, not borrowed.
            (
                "q\"uote\u{e9}".to_string(),
                AttributeValue::String("line\none \"two\"".into()),
            ),
        ]
        .into_iter()
        .collect();
        let body = envelope_json(TOPIC, "sns-9", "plain text", &attrs);
        let m = parse(&raw(&body, &[]), &cfg(DeliveryMode::Envelope)).unwrap();
        assert_eq!(m.event, "E.svc");
        assert_eq!(m.key(), "sns-9");
        assert_eq!(m.sns_message_id.as_deref(), Some("sns-9"));
        assert_eq!(*m.payload(), Payload::Text("plain text".into()));
        assert_eq!(m.attributes, attrs);
    }

    #[test]
    fn envelope_json_is_the_json_of_the_envelope() {
        let attrs: BTreeMap<_, _> = [
            (
                "iniesta_pass".to_string(),
                AttributeValue::String("E.svc".into()),
            ),
            (
                "q\"uote".to_string(),
                AttributeValue::String("\\n\u{1}é".into()),
            ),
            ("bin".to_string(), AttributeValue::Binary(vec![0, 1, 255])),
        ]
        .into_iter()
        .collect();
        let message = "line\none \"two\" \u{7f}";
        let text = envelope_json(TOPIC, "sns-1", message, &attrs);
        let expected = serde_json::json!({
            "Type": "Notification",
            "MessageId": "sns-1",
            "TopicArn": TOPIC,
            "Message": message,
            "Timestamp": "1970-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "MessageAttributes": {
                "iniesta_pass": {"Type": "String", "Value": "E.svc"},
                "q\"uote": {"Type": "String", "Value": "\\n\u{1}é"},
                "bin": {"Type": "Binary", "Value": "AAH/"},
            },
        });
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, expected);
        assert_eq!(text, expected.to_string());
        assert_eq!(
            envelope_json(TOPIC, "m", "", &BTreeMap::new()),
            serde_json::json!({
                "Type": "Notification", "MessageId": "m", "TopicArn": TOPIC, "Message": "",
                "Timestamp": "1970-01-01T00:00:00.000Z", "SignatureVersion": "1",
                "MessageAttributes": {},
            })
            .to_string()
        );
    }

    #[test]
    fn plain_text_payload_is_text_and_json_payload_is_json() {
        for (body, json) in [
            ("hello", false),
            ("", false),
            ("  {\"a\":1} ", true),
            ("\n[1]", true),
            ("\"s\"", true),
            ("-1", true),
            ("42", true),
            ("true", true),
            ("null", true),
            ("nope", false),
            ("{broken", false),
            ("Ünïcode", false),
        ] {
            let m = parse(
                &raw(
                    body,
                    &[("iniesta_pass", AttributeValue::String("E.svc".into()))],
                ),
                &cfg(DeliveryMode::Raw),
            )
            .unwrap();
            assert_eq!(matches!(*m.payload(), Payload::Json(_)), json, "{body:?}");
            if !json {
                assert_eq!(*m.payload(), Payload::Text(body.into()));
            }
        }
    }

    #[test]
    fn parse_owned_hands_back_the_delivery_on_error() {
        let r = raw("x", &[]);
        let (e, back) = parse_owned(r.clone(), &cfg(DeliveryMode::Raw)).unwrap_err();
        assert_eq!(e, ParseError::MissingEvent("iniesta_pass".into()));
        assert_eq!(back, r);
        let r = raw("{", &[]);
        let (_, back) = parse_owned(r.clone(), &cfg(DeliveryMode::Envelope)).unwrap_err();
        assert_eq!(back, r);
        let ok = raw(
            "b",
            &[("iniesta_pass", AttributeValue::String("E.svc".into()))],
        );
        let (m, handle) = parse_owned(ok.clone(), &cfg(DeliveryMode::Raw)).unwrap();
        assert_eq!(handle, ok.receipt_handle);
        assert_eq!(m, parse(&ok, &cfg(DeliveryMode::Raw)).unwrap());
    }

    #[test]
    fn envelope_from_other_topic_is_rejected() {
        let attrs: BTreeMap<_, _> = [(
            "iniesta_pass".to_string(),
            AttributeValue::String("E.svc".into()),
        )]
        .into();
        let body = envelope_json("arn:aws:sns:us-east-1:1:other", "m", "{}", &attrs);
        let e = parse(&raw(&body, &[]), &cfg(DeliveryMode::Envelope)).unwrap_err();
        assert!(matches!(e, ParseError::WrongTopic { .. }), "{e}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in ["", "{", "[]", "null", r#"{"Type":"Notification"}"#, "\u{0}"] {
            assert!(parse(&raw(body, &[]), &cfg(DeliveryMode::Envelope)).is_err());
        }
        let body =
            r#"{"Type":"SubscriptionConfirmation","MessageId":"m","TopicArn":"t","Message":"x"}"#;
        assert!(matches!(
            parse(&raw(body, &[]), &cfg(DeliveryMode::Envelope)),
            Err(ParseError::NotAnEnvelope(_))
        ));
        let body = r#"{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:123456789012:global","Message":"x","MessageAttributes":{"b":{"Type":"Binary","Value":"!!"}}}"#;
        assert!(matches!(
            parse(&raw(body, &[]), &cfg(DeliveryMode::Envelope)),
            Err(ParseError::BadAttribute { name, .. }) if name == "b"
        ));
    }
}
